package front

// Multi-Region keys, complete: UpdatePrimaryRegion, the transient Creating
// and Updating states, and rotation as a property the replicas share with
// their primary key ("The primary key of a multi-Region key is the source
// for properties that are always shared by primary and replica keys,
// including the key material, key ID, key spec, key usage, key material
// origin, and automatic key rotation",
// https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdatePrimaryRegion.html).

import (
	"slices"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/handler"
)

const (
	keyStateCreating = "Creating"
	keyStateUpdating = "Updating"
)

// transientState is the state a multi-Region key of tenant t shows instead
// of its own, "" for none.
func (f *Front) transientState(t *tenant, keyID string, now time.Time) string {
	mrk, err := f.multiRegionKeyOf(t.account, keyID)
	switch {
	case err != nil || mrk == nil:
		return ""
	case now.Before(mrk.CreatingUntil[t.region]):
		return keyStateCreating
	case now.Before(mrk.UpdatingUntil) && slices.Contains(mrk.Updating, t.region):
		return keyStateUpdating
	}
	return ""
}

// refusedWhileUpdating are the operations an Updating key refuses: "you can
// use the keys in cryptographic operations, but you cannot replicate the new
// primary key or perform certain management operations, such as enabling or
// disabling these keys" (UpdatePrimaryRegion API reference above).
var refusedWhileUpdating = map[string]bool{
	"ReplicateKey": true, "UpdatePrimaryRegion": true, "EnableKey": true, "DisableKey": true,
	"ScheduleKeyDeletion": true, "CancelKeyDeletion": true,
}

// refuseTransient answers KMSInvalidStateException to what a key in a
// transient state cannot do: a Creating key only describes itself (Key
// states of KMS keys, https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html).
func (f *Front) refuseTransient(c *call, arn string) handler.Response {
	keyID := arn[len(c.t.arnPrefix()+"key/"):]
	if !isMultiRegion(keyID) || c.op == "DescribeKey" {
		return handler.Response{}
	}
	switch f.transientState(c.t, keyID, c.now) {
	case keyStateCreating:
		return invalidState("%s is creating.", arn)
	case keyStateUpdating:
		if refusedWhileUpdating[c.op] {
			return invalidState("%s is updating.", arn)
		}
	}
	return handler.Response{}
}

// updatePrimaryRegion makes the replica in PrimaryRegion the primary key and
// the primary key a replica. It is called on the primary key, in its region;
// the region must hold a replica ("The primary Region must already have a
// replica key"). Both keys are Updating for primaryRegionUpdate; the
// rotation settings and history move to the new primary key with it.
func (f *Front) updatePrimaryRegion(c *call) handler.Response {
	var in struct {
		KeyId         string
		PrimaryRegion string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in.PrimaryRegion == "" {
		return validationError("1 validation error detected: Value null at 'primaryRegion' failed to satisfy constraint: Member must not be null")
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	keyID := key.GetMetadata().KeyId
	mrk, err := f.multiRegionKeyOf(c.t.account, keyID)
	switch {
	case err != nil:
		return errorResponse(500, "KMSInternalException", err.Error())
	case mrk == nil || mrk.PrimaryRegion != c.t.region:
		return errorResponse(400, "UnsupportedOperationException", key.GetArn()+" is not a multi-region primary key.")
	case in.PrimaryRegion == c.t.region:
		return validationError("%s is already the primary Region of %s", in.PrimaryRegion, keyID)
	case !slices.Contains(mrk.ReplicaRegions, in.PrimaryRegion):
		return notFound("Key 'arn:aws:kms:%s:%s:key/%s' does not exist", in.PrimaryRegion, c.t.account, keyID)
	case pendingDeletion(key):
		return invalidState("%s is pending deletion.", key.GetArn())
	}
	nt, err := f.tenant(c.t.account, in.PrimaryRegion)
	if err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	newPrimary, resp := nt.loadKey(keyID)
	if newPrimary == nil {
		return resp
	}
	if pendingDeletion(newPrimary) {
		return invalidState("%s is pending deletion.", newPrimary.GetArn())
	}
	if err := moveRotation(c.t, key, nt, newPrimary); err != nil {
		return saveFailed(err)
	}
	acct, err := f.account(c.t.account)
	if err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	updating := time.Duration(c.cfg.PrimaryRegionUpdate)
	err = acct.update(func(d *accountData) bool {
		k := d.MultiRegion[keyID]
		k.PrimaryRegion = in.PrimaryRegion
		k.ReplicaRegions[slices.Index(k.ReplicaRegions, in.PrimaryRegion)] = c.t.region
		k.Updating, k.UpdatingUntil = nil, time.Time{}
		if updating > 0 {
			k.Updating, k.UpdatingUntil = []string{c.t.region, in.PrimaryRegion}, c.now.Add(updating)
		}
		return true
	})
	if err != nil {
		return saveFailed(err)
	}
	return handler.Response{Code: 200}
}

// moveRotation gives the new primary key the old one's rotation settings and
// history, the primary key being their source.
func moveRotation(from *tenant, old cmk.Key, to *tenant, primary cmk.Key) error {
	var extras keyExtras
	from.state.view(func(d *storeData) {
		if k := d.Keys[old.GetArn()]; k != nil {
			extras = *k
		}
	})
	err := to.state.update(func(d *storeData) bool {
		k := d.key(primary.GetArn())
		k.RotationPeriodInDays, k.Rotations = extras.RotationPeriodInDays, slices.Clone(extras.Rotations)
		return true
	})
	if err != nil {
		return err
	}
	// local-kms keeps whether automatic rotation is on in the key.
	if o, ok := old.(*cmk.AesKey); ok {
		if p, ok := primary.(*cmk.AesKey); ok {
			p.NextKeyRotation = o.NextKeyRotation
			return to.db.SaveKey(p)
		}
	}
	return nil
}

// rotationSource is the key whose rotation a key shares: for a replica its
// primary key, in the primary's tenant; else the key itself. It reports
// whether the key is a replica.
func (f *Front) rotationSource(c *call, key cmk.Key) (*tenant, cmk.Key, bool) {
	keyID := key.GetMetadata().KeyId
	if !isMultiRegion(keyID) {
		return c.t, key, false
	}
	mrk, err := f.multiRegionKeyOf(c.t.account, keyID)
	if err != nil || mrk == nil || mrk.PrimaryRegion == c.t.region {
		return c.t, key, false
	}
	pt, err := f.tenant(c.t.account, mrk.PrimaryRegion)
	if err != nil {
		return c.t, key, true
	}
	primary, _ := pt.loadKey(keyID)
	if primary == nil {
		return c.t, key, true
	}
	return pt, primary, true
}

// replicaRotationUnsupported answers the rotation writes on a replica key:
// rotation is managed on the primary key.
func replicaRotationUnsupported(key cmk.Key) handler.Response {
	return errorResponse(400, "UnsupportedOperationException", key.GetArn()+" is a multi-Region replica key: rotation is managed on its primary key.")
}

// shareMaterial gives every replica of a multi-Region primary key its new
// backing material, so that they keep decrypting each other's ciphertexts.
func (f *Front) shareMaterial(c *call, primary cmk.Key, material [32]byte) error {
	keyID := primary.GetMetadata().KeyId
	if !isMultiRegion(keyID) {
		return nil
	}
	mrk, err := f.multiRegionKeyOf(c.t.account, keyID)
	if err != nil || mrk == nil {
		return err
	}
	for _, region := range mrk.ReplicaRegions {
		rt, err := f.tenant(c.t.account, region)
		if err != nil {
			return err
		}
		if replica, _ := rt.loadKey(keyID); replica != nil {
			if aes, ok := replica.(*cmk.AesKey); ok {
				aes.BackingKeys = append(aes.BackingKeys, material)
				if err := rt.db.SaveKey(aes); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
