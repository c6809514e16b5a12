package front

import (
	"crypto/rand"
	"encoding/json"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/handler"
)

const defaultRotationPeriod = 365

// rotationUnsupported answers the automatic rotation operations for keys that
// cannot rotate: "Automatic key rotation is supported only on symmetric
// encryption KMS keys" with KMS-made material (GetKeyRotationStatus,
// EnableKeyRotation API references); local-kms answers them for any key.
func rotationUnsupported(c *call, keyID string) handler.Response {
	key, resp := c.t.loadKey(keyID)
	if key == nil {
		return resp
	}
	if !symmetricAWSKMS(key) {
		return errorResponse(400, "UnsupportedOperationException", key.GetArn()+" does not support automatic key rotation: only symmetric encryption keys with AWS_KMS origin do")
	}
	return handler.Response{}
}

// enableKeyRotation checks and keeps RotationPeriodInDays, which local-kms
// ignores; local-kms does the rest.
func (f *Front) enableKeyRotation(c *call) handler.Response {
	var in struct {
		KeyId                string
		RotationPeriodInDays *int
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if resp := rotationUnsupported(c, in.KeyId); !resp.Empty() {
		return resp
	}
	if resp := f.refuseReplica(c, in.KeyId); !resp.Empty() {
		return resp
	}
	period := defaultRotationPeriod
	if in.RotationPeriodInDays != nil {
		period = *in.RotationPeriodInDays
		if period < 90 || period > 2560 {
			return validationError("1 validation error detected: Value '%d' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560", period)
		}
	}
	resp := f.local(c, c.body)
	if !success(resp.Code) {
		return resp
	}
	err := c.t.state.update(func(d *storeData) bool {
		d.key(c.t.keyARN(in.KeyId)).RotationPeriodInDays = period
		return true
	})
	if err != nil {
		return saveFailed(err)
	}
	return resp
}

func (f *Front) disableKeyRotation(c *call) handler.Response {
	var in keyIDInput
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if resp := rotationUnsupported(c, in.KeyId); !resp.Empty() {
		return resp
	}
	if resp := f.refuseReplica(c, in.KeyId); !resp.Empty() {
		return resp
	}
	resp := f.local(c, c.body)
	if !success(resp.Code) {
		return resp
	}
	err := c.t.state.update(func(d *storeData) bool {
		k := d.Keys[c.t.keyARN(in.KeyId)]
		if k == nil || k.RotationPeriodInDays == 0 {
			return false
		}
		k.RotationPeriodInDays = 0
		return true
	})
	if err != nil {
		return saveFailed(err)
	}
	return resp
}

// getKeyRotationStatus adds KeyId and, when rotation is enabled, the period
// and the next rotation date. This server never rotates automatically, and
// on-demand rotations do not move the automatic schedule in AWS, so the next
// date counts from the key's creation.
func (f *Front) getKeyRotationStatus(c *call) handler.Response {
	var in keyIDInput
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if resp := rotationUnsupported(c, in.KeyId); !resp.Empty() {
		return resp
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	// A replica reports its primary key's rotation.
	requested := key.GetArn()
	t, key, _ := f.rotationSource(c, key)
	source := *c
	source.t = t
	resp = f.localJSON(&source, c.op, keyIDInput{KeyId: key.GetArn()})
	if !success(resp.Code) {
		return resp
	}
	var status struct {
		KeyRotationEnabled bool
	}
	if err := json.Unmarshal([]byte(resp.Body), &status); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	out := map[string]any{"KeyId": requested, "KeyRotationEnabled": status.KeyRotationEnabled}
	if status.KeyRotationEnabled {
		period := defaultRotationPeriod
		t.state.view(func(d *storeData) {
			if k := d.Keys[key.GetArn()]; k != nil && k.RotationPeriodInDays != 0 {
				period = k.RotationPeriodInDays
			}
		})
		created := time.Unix(key.GetMetadata().CreationDate, 0)
		out["RotationPeriodInDays"] = period
		out["NextRotationDate"] = created.AddDate(0, 0, period).Unix()
	}
	return jsonResponse(200, out)
}

// rotateKeyOnDemand gives the key new backing material (local-kms encrypts
// with the newest and decrypts with any) and records the rotation.
func (f *Front) rotateKeyOnDemand(c *call) handler.Response {
	var in keyIDInput
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	if aes, ok := key.(*cmk.AesKey); ok && key.GetMetadata().Origin == cmk.KeyOriginExternal {
		switch {
		case pendingDeletion(key):
			return invalidState("%s is pending deletion.", key.GetArn())
		case key.GetMetadata().KeyState == cmk.KeyStateDisabled:
			return errorResponse(400, "DisabledException", key.GetArn()+" is disabled.")
		case key.GetMetadata().KeyState == cmk.KeyStatePendingImport:
			return invalidState("%s is pending import.", key.GetArn())
		}
		return f.rotateImported(c, aes)
	}
	switch {
	case !symmetricAWSKMS(key):
		return errorResponse(400, "UnsupportedOperationException", key.GetArn()+" does not support on-demand rotation: only symmetric encryption keys with AWS_KMS origin do")
	case pendingDeletion(key):
		return invalidState("%s is pending deletion.", key.GetArn())
	case !key.GetMetadata().Enabled:
		return errorResponse(400, "DisabledException", key.GetArn()+" is disabled.")
	}
	if _, _, replica := f.rotationSource(c, key); replica {
		return replicaRotationUnsupported(key)
	}
	aes := key.(*cmk.AesKey)
	var material [32]byte
	rand.Read(material[:])
	aes.BackingKeys = append(aes.BackingKeys, material)
	if err := c.t.db.SaveKey(aes); err != nil {
		return saveFailed(err)
	}
	if err := f.shareMaterial(c, key, material); err != nil {
		return saveFailed(err)
	}
	err := c.t.state.update(func(d *storeData) bool {
		k := d.key(key.GetArn())
		k.Rotations = append(k.Rotations, rotation{Date: c.now, Type: "ON_DEMAND"})
		return true
	})
	if err != nil {
		return saveFailed(err)
	}
	return jsonResponse(200, map[string]string{"KeyId": key.GetArn()})
}

func (f *Front) listKeyRotations(c *call) handler.Response {
	var in struct {
		KeyId              string
		IncludeKeyMaterial string
		Limit              *int
		Marker             string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	if _, aes := key.(*cmk.AesKey); aes && key.GetMetadata().Origin == cmk.KeyOriginExternal {
		entries := importedRotations(c.t, key, in.IncludeKeyMaterial == "ALL_KEY_MATERIAL")
		p, resp := paginate(len(entries), in.Limit, 100, 1000, in.Marker)
		if !resp.Empty() {
			return resp
		}
		return jsonResponse(200, p.output("Rotations", entries[p.start:p.end]))
	}
	if !symmetricAWSKMS(key) {
		return errorResponse(400, "UnsupportedOperationException", key.GetArn()+" does not support rotation")
	}
	requested := key.GetArn()
	t, key, _ := f.rotationSource(c, key)
	var rotations []rotation
	t.state.view(func(d *storeData) {
		if k := d.Keys[key.GetArn()]; k != nil {
			rotations = append(rotations, k.Rotations...)
		}
	})
	p, resp := paginate(len(rotations), in.Limit, 100, 1000, in.Marker)
	if !resp.Empty() {
		return resp
	}
	entries := []map[string]any{}
	for _, r := range rotations[p.start:p.end] {
		entries = append(entries, map[string]any{
			"KeyId":        requested,
			"RotationDate": r.Date.Unix(),
			"RotationType": r.Type,
		})
	}
	return jsonResponse(200, p.output("Rotations", entries))
}

// refuseReplica answers the rotation settings of a replica key, which its
// primary key holds.
func (f *Front) refuseReplica(c *call, keyID string) handler.Response {
	key, resp := c.t.loadKey(keyID)
	if key == nil {
		return resp
	}
	if _, _, replica := f.rotationSource(c, key); replica {
		return replicaRotationUnsupported(key)
	}
	return handler.Response{}
}
