package front

// Multi-Region keys, minimal: an mrk- key id, ReplicateKey into another
// region of the same account and partition, decryption in any region of
// what any related key encrypted, and PendingReplicaDeletion
// (https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html).
//
// Which keys are related is kept per account (<data-dir>/<account>/multi-region.json):
// a multi-Region key id, its primary region and its replica regions, and
// the keys in a transient state (Creating, Updating). UpdatePrimaryRegion
// swaps the primary region with a replica's there (primary.go).

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/handler"
	"github.com/nsmithuk/local-kms/src/service"
)

// multiRegionPrefix starts the id of every multi-Region key: "multi-Region
// keys have a distinctive key ID that begins with mrk-" (overview above).
const multiRegionPrefix = "mrk-"

// pendingReplicaDeletionDate stands in the DeletionDate of a primary key
// waiting for its replicas' deletion: local-kms then treats the key as
// pending deletion (refusing most operations with KMSInvalidStateException)
// and never deletes it. Answers leave it out.
const pendingReplicaDeletionDate int64 = 253402300799 // 9999-12-31T23:59:59Z

// accountData is an account's state that spans its regions.
// keyStatePendingReplicaDeletion is a key state local-kms does not know.
const keyStatePendingReplicaDeletion cmk.KeyState = "PendingReplicaDeletion"

type accountData struct {
	// MultiRegion relates multi-Region keys, by key id.
	MultiRegion map[string]*multiRegionKey `json:"multiRegion"`
}

type multiRegionKey struct {
	PrimaryRegion  string   `json:"primaryRegion"`
	ReplicaRegions []string `json:"replicaRegions,omitempty"`
	// CreatingUntil holds, by region, replicas still Creating.
	CreatingUntil map[string]time.Time `json:"creatingUntil,omitempty"`
	// Updating holds the two regions whose keys are Updating after
	// UpdatePrimaryRegion, until UpdatingUntil.
	Updating      []string  `json:"updating,omitempty"`
	UpdatingUntil time.Time `json:"updatingUntil,omitzero"`
}

func isMultiRegion(keyID string) bool { return strings.HasPrefix(keyID, multiRegionPrefix) }

// account returns an account's state, opening it on first use. f.mu must be
// held.
func (f *Front) account(id string) (*store[accountData], error) {
	if s := f.accounts[id]; s != nil {
		return s, nil
	}
	dir := filepath.Join(f.dataDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s, err := openStore(filepath.Join(dir, "multi-region.json"), func(d *accountData) {
		if d.MultiRegion == nil {
			d.MultiRegion = map[string]*multiRegionKey{}
		}
	})
	if err != nil {
		return nil, err
	}
	f.accounts[id] = s
	return s, nil
}

// multiRegionKeyOf returns a copy of the record of a multi-Region key, nil
// if there is none.
func (f *Front) multiRegionKeyOf(account, keyID string) (*multiRegionKey, error) {
	acct, err := f.account(account)
	if err != nil {
		return nil, err
	}
	var mrk *multiRegionKey
	acct.view(func(d *accountData) {
		if k := d.MultiRegion[keyID]; k != nil {
			mrk = &multiRegionKey{PrimaryRegion: k.PrimaryRegion, ReplicaRegions: slices.Clone(k.ReplicaRegions),
				CreatingUntil: maps.Clone(k.CreatingUntil), Updating: slices.Clone(k.Updating), UpdatingUntil: k.UpdatingUntil}
		}
	})
	return mrk, nil
}

// makeMultiRegion gives a new key, not tagged yet, a multi-Region key id
// ("mrk-" and 32 hex digits) and records it as a primary key.
func (f *Front) makeMultiRegion(c *call, key cmk.Key) (cmk.Key, error) {
	old := key.GetArn()
	id := multiRegionPrefix + randomString(16, hex.EncodeToString)
	md := key.GetMetadata()
	md.KeyId, md.Arn = id, c.t.keyARN(id)
	if err := c.t.db.SaveKey(key); err != nil {
		return nil, err
	}
	_ = c.t.db.DeleteObject(old)
	acct, err := f.account(c.t.account)
	if err != nil {
		return nil, err
	}
	return key, acct.update(func(d *accountData) bool {
		d.MultiRegion[id] = &multiRegionKey{PrimaryRegion: c.t.region}
		return true
	})
}

// multiRegionConfiguration is a multi-Region key's MultiRegionConfiguration;
// a replica's lists every replica, itself included.
func (f *Front) multiRegionConfiguration(t *tenant, keyID string) (map[string]any, error) {
	mrk, err := f.multiRegionKeyOf(t.account, keyID)
	if err != nil {
		return nil, err
	}
	if mrk == nil {
		mrk = &multiRegionKey{PrimaryRegion: t.region}
	}
	key := func(region string) map[string]string {
		return map[string]string{"Arn": "arn:aws:kms:" + region + ":" + t.account + ":key/" + keyID, "Region": region}
	}
	kind := "REPLICA"
	if mrk.PrimaryRegion == t.region {
		kind = "PRIMARY"
	}
	replicas := []map[string]string{}
	for _, r := range mrk.ReplicaRegions {
		replicas = append(replicas, key(r))
	}
	return map[string]any{"MultiRegionKeyType": kind, "PrimaryKey": key(mrk.PrimaryRegion), "ReplicaKeys": replicas}, nil
}

// replicateKey creates a replica of a multi-Region primary key in another
// region of its account: same key id and key material, its own
// description, policy and tags (tags are not replicated)
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_ReplicateKey.html).
func (f *Front) replicateKey(c *call) handler.Response {
	var in struct {
		KeyId                          string
		ReplicaRegion                  string
		Description                    *string
		Policy                         *string
		Tags                           []tag
		BypassPolicyLockoutSafetyCheck bool
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in.ReplicaRegion == "" {
		return validationError("1 validation error detected: Value null at 'replicaRegion' failed to satisfy constraint: Member must not be null")
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	if resp := f.checkReplicable(c, key, in.ReplicaRegion); !resp.Empty() {
		return resp
	}
	if in.Policy != nil {
		if resp := c.checkPolicy(*in.Policy); !resp.Empty() {
			return resp
		}
	}
	if resp := checkTags(in.Tags, nil); !resp.Empty() {
		return resp
	}
	rt, err := f.tenant(c.t.account, in.ReplicaRegion)
	if err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	policy := defaultKeyPolicy(rt)
	if in.Policy != nil {
		policy = storedPolicy(c.t, *in.Policy)
	}
	replica, err := f.saveReplica(c, rt, key, in.Description, policy, in.Tags)
	if err != nil {
		return saveFailed(err)
	}
	md, err := metadataMap(replica.GetMetadata())
	if err == nil {
		err = f.fixMetadata(rt, md, c.now)
	}
	if err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	// AWS answers while the replica is still being made; DescribeKey in its
	// region then shows it Enabled (LocalStack's AWS-validated
	// test_replicate_key snapshot), or Creating for replicaCreation.
	md["KeyState"], md["Enabled"] = keyStateCreating, false
	tags := []map[string]string{}
	for _, t := range in.Tags {
		tags = append(tags, map[string]string{"TagKey": *t.TagKey, "TagValue": *t.TagValue})
	}
	return jsonResponse(200, map[string]any{"ReplicaKeyMetadata": md, "ReplicaPolicy": policy, "ReplicaTags": tags})
}

// checkReplicable refuses to replicate what is not a multi-Region primary
// key (UnsupportedOperationException, message as AWS's in LocalStack's
// test_replicate_replica_key_should_fail snapshot), a key pending deletion,
// or into a region it cannot go to.
func (f *Front) checkReplicable(c *call, key cmk.Key, region string) handler.Response {
	keyID := key.GetMetadata().KeyId
	mrk, err := f.multiRegionKeyOf(c.t.account, keyID)
	switch {
	case err != nil:
		return errorResponse(500, "KMSInternalException", err.Error())
	case mrk == nil || mrk.PrimaryRegion != c.t.region:
		return errorResponse(400, "UnsupportedOperationException", key.GetArn()+" is not a multi-region primary key.")
	case pendingDeletion(key):
		return invalidState("%s is pending deletion.", key.GetArn())
	case !regionPattern.MatchString(region) || region == c.t.region || partitionOf(region) != c.t.partition:
		return validationError("ReplicaRegion %s must be another region of the primary key's partition %s", region, c.t.partition)
	case slices.Contains(mrk.ReplicaRegions, region):
		return errorResponse(400, "AlreadyExistsException", "arn:aws:kms:"+region+":"+c.t.account+":key/"+keyID+" already exists")
	}
	return handler.Response{}
}

// saveReplica stores the replica of key in tenant rt and relates it to key.
func (f *Front) saveReplica(c *call, rt *tenant, key cmk.Key, description *string, policy string, tags []tag) (cmk.Key, error) {
	replica, err := cloneKey(key)
	if err != nil {
		return nil, err
	}
	md := replica.GetMetadata()
	md.Arn, md.CreationDate, md.Description, md.DeletionDate = rt.keyARN(md.KeyId), c.now.Unix(), description, 0
	md.Enabled, md.KeyState = true, cmk.KeyStateEnabled
	if md.Origin == cmk.KeyOriginExternal {
		// Key material is imported into each replica separately.
		md.Enabled, md.KeyState = false, cmk.KeyStatePendingImport
	}
	setPolicy(replica, policy)
	if err := rt.db.SaveKey(replica); err != nil {
		return nil, err
	}
	if err := saveTags(rt, replica, tags); err != nil {
		return nil, err
	}
	rt.recordCreated(md.Arn, c.now, c.cfg.horizon())
	acct, err := f.account(c.t.account)
	if err != nil {
		return nil, err
	}
	creation := time.Duration(c.cfg.ReplicaCreation)
	return replica, acct.update(func(d *accountData) bool {
		k := d.MultiRegion[md.KeyId]
		k.ReplicaRegions = append(k.ReplicaRegions, rt.region)
		if creation > 0 {
			if k.CreatingUntil == nil {
				k.CreatingUntil = map[string]time.Time{}
			}
			k.CreatingUntil[rt.region] = c.now.Add(creation)
		}
		return true
	})
}

// cloneKey copies a key of any type, key material included.
func cloneKey(key cmk.Key) (cmk.Key, error) {
	b, err := json.Marshal(key)
	if err != nil {
		return nil, err
	}
	clone := reflect.New(reflect.TypeOf(key).Elem()).Interface().(cmk.Key)
	return clone, json.Unmarshal(b, clone)
}

// scheduleWithReplicas schedules the deletion of a multi-Region primary key
// that still has replicas: it waits in PendingReplicaDeletion, without a
// DeletionDate, until they are gone ("If the KMS key is a multi-Region
// primary key with replica keys, the waiting period begins when the last of
// its replica keys is deleted",
// https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html).
// It reports whether it answered.
func (f *Front) scheduleWithReplicas(c *call, keyID string, window int) (handler.Response, bool) {
	key, _ := c.t.loadKey(keyID)
	if key == nil || !isMultiRegion(key.GetMetadata().KeyId) {
		return handler.Response{}, false
	}
	mrk, err := f.multiRegionKeyOf(c.t.account, key.GetMetadata().KeyId)
	switch {
	case err != nil:
		return errorResponse(500, "KMSInternalException", err.Error()), true
	case mrk == nil || mrk.PrimaryRegion != c.t.region || len(mrk.ReplicaRegions) == 0:
		return handler.Response{}, false
	case pendingDeletion(key):
		return invalidState("%s is pending deletion.", key.GetArn()), true
	}
	md := key.GetMetadata()
	md.Enabled, md.KeyState, md.DeletionDate = false, keyStatePendingReplicaDeletion, pendingReplicaDeletionDate
	if err := c.t.db.SaveKey(key); err != nil {
		return saveFailed(err), true
	}
	err = c.t.state.update(func(d *storeData) bool {
		d.key(key.GetArn()).PendingWindowInDays = window
		return true
	})
	if err != nil {
		return saveFailed(err), true
	}
	return jsonResponse(200, map[string]any{
		"KeyId": key.GetArn(), "KeyState": string(keyStatePendingReplicaDeletion), "PendingWindowInDays": window,
	}), true
}

// settleReplicas forgets the replicas of a multi-Region key that are gone.
// When the last replica of a primary key in PendingReplicaDeletion is gone,
// the primary key moves to PendingDeletion, its waiting period counted from
// the replica's deletion (KeyMetadata's PendingDeletionWindowInDays,
// https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html).
func (f *Front) settleReplicas(c *call, keyID string) error {
	mrk, err := f.multiRegionKeyOf(c.t.account, keyID)
	if err != nil || mrk == nil || len(mrk.ReplicaRegions) == 0 {
		return err
	}
	var gone []string
	var goneAt int64
	for _, region := range mrk.ReplicaRegions {
		rt, err := f.tenant(c.t.account, region)
		if err != nil {
			return err
		}
		arn := rt.keyARN(keyID)
		deletion := c.now.Unix()
		if key, _ := rt.db.LoadKey(arn); key != nil {
			deletion = key.GetMetadata().DeletionDate
		}
		if rt.purgeExpired(arn, c.now) {
			gone, goneAt = append(gone, region), max(goneAt, deletion)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	acct, err := f.account(c.t.account)
	if err != nil {
		return err
	}
	left := 0
	err = acct.update(func(d *accountData) bool {
		k := d.MultiRegion[keyID]
		k.ReplicaRegions = slices.DeleteFunc(k.ReplicaRegions, func(r string) bool { return slices.Contains(gone, r) })
		left = len(k.ReplicaRegions)
		return true
	})
	if err != nil || left > 0 {
		return err
	}
	pt, err := f.tenant(c.t.account, mrk.PrimaryRegion)
	if err != nil {
		return err
	}
	return pt.startPrimaryDeletion(pt.keyARN(keyID), time.Unix(goneAt, 0))
}

// startPrimaryDeletion moves a primary key waiting for its replicas to
// PendingDeletion, its waiting period starting at from.
func (t *tenant) startPrimaryDeletion(arn string, from time.Time) error {
	key, err := t.db.LoadKey(arn)
	if err != nil || key == nil || key.GetMetadata().KeyState != keyStatePendingReplicaDeletion {
		return nil
	}
	window := defaultPendingWindow
	err = t.state.update(func(d *storeData) bool {
		k := d.key(arn)
		if k.PendingWindowInDays != 0 {
			window = k.PendingWindowInDays
		}
		k.PendingWindowInDays = 0
		return true
	})
	if err != nil {
		return err
	}
	md := key.GetMetadata()
	md.KeyState, md.DeletionDate = cmk.KeyStatePendingDeletion, from.Add(time.Duration(window)*24*time.Hour).Unix()
	return t.db.SaveKey(key)
}

// decrypt lets a multi-Region key decrypt what a related key of another
// region encrypted, as related keys share key id and key material.
// local-kms puts the encrypting key's ARN in the ciphertext, and this
// tenant holds the key under its own ARN.
func (f *Front) decrypt(c *call) handler.Response {
	var in struct {
		CiphertextBlob []byte
	}
	if json.Unmarshal(c.body, &in) != nil {
		return f.local(c, c.body)
	}
	ident, version, ciphertext, ok := service.UnpackCiphertextBlob(in.CiphertextBlob)
	if !ok {
		return f.local(c, c.body)
	}
	// A key waiting for its imported material cannot decrypt
	// (KMSInvalidStateException, Key states of KMS keys,
	// https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html);
	// local-kms answers AccessDeniedException.
	if key, err := c.t.db.LoadKey(ident); err == nil && key != nil && key.GetMetadata().KeyState == cmk.KeyStatePendingImport {
		return invalidState("%s is pending import.", ident)
	}
	arn := c.t.relatedKey(ident)
	if arn == "" {
		return f.local(c, c.body)
	}
	blob := append([]byte{byte(len(arn))}, arn...)
	blob = binary.LittleEndian.AppendUint32(blob, version)
	blob = append(blob, ciphertext...)
	return f.local(c, withField(c.body, "CiphertextBlob", blob))
}

// relatedKey returns the ARN of this tenant's key related to a
// multi-Region key of another region, "" if there is none.
func (t *tenant) relatedKey(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[3] == t.region || parts[4] != t.account {
		return ""
	}
	keyID, ok := strings.CutPrefix(parts[5], "key/")
	if !ok || !isMultiRegion(keyID) {
		return ""
	}
	if key, err := t.db.LoadKey(t.keyARN(keyID)); err != nil || key == nil {
		return ""
	}
	return t.keyARN(keyID)
}
