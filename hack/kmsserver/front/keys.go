package front

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/nsmithuk/local-kms/src/handler"
	"github.com/syndtr/goleveldb/leveldb"
)

const (
	defaultPolicyName     = "default"
	defaultRotationPeriod = 365
	defaultPendingWindow  = 30
)

type keyIDInput struct {
	KeyId string
}

// loadKey finds a key by id or ARN; like the management operations of AWS KMS
// it does not resolve aliases.
func (f *Front) loadKey(keyID string) (cmk.Key, handler.Response) {
	if keyID == "" {
		return nil, validationError("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	arn := config.EnsureArn("key/", keyID)
	key, err := f.db.LoadKey(arn)
	notFoundErr := data.KeyNotFoundError
	switch {
	case err == nil && key != nil:
		return key, handler.Response{}
	case err == nil, errors.Is(err, leveldb.ErrNotFound), errors.As(err, &notFoundErr):
		return nil, notFound("Key '%s' does not exist", arn)
	default:
		return nil, errorResponse(500, "KMSInternalException", err.Error())
	}
}

func pendingDeletion(key cmk.Key) bool {
	return key.GetMetadata().DeletionDate != 0
}

// symmetricAWSKMS reports whether key can rotate: symmetric encryption keys
// whose material KMS generated.
func symmetricAWSKMS(key cmk.Key) bool {
	_, aes := key.(*cmk.AesKey)
	return aes && key.GetMetadata().Origin == cmk.KeyOriginAwsKms
}

func (f *Front) saveFailed(err error) handler.Response {
	return errorResponse(500, "KMSInternalException", "saving state: "+err.Error())
}

// createKey validates what local-kms does not and remembers MultiRegion, which
// local-kms drops.
func (f *Front) createKey(c *call) handler.Response {
	var in struct {
		MultiRegion bool
		Policy      *string
		Tags        []tag
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in.Policy != nil && !json.Valid([]byte(*in.Policy)) {
		return errorResponse(400, "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future.")
	}
	if resp := checkTags(in.Tags); !resp.Empty() {
		return resp
	}
	resp := f.local(c.op, c.body)
	if !success(resp.Code) {
		return resp
	}
	return f.editMetadata(resp, func(arn string) error {
		if !in.MultiRegion {
			return nil
		}
		return f.state.update(func(d *storeData) bool {
			d.key(arn).MultiRegion = true
			return true
		})
	})
}

type tag struct {
	TagKey string
}

// checkTags refuses the tag keys AWS reserves, which local-kms accepts.
func checkTags(tags []tag) handler.Response {
	for _, t := range tags {
		if strings.HasPrefix(t.TagKey, "aws:") {
			return errorResponse(400, "TagException", "Tag keys beginning with aws: are reserved: "+t.TagKey)
		}
	}
	return handler.Response{}
}

func (f *Front) tagResource(c *call) handler.Response {
	var in struct {
		Tags []tag
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if resp := checkTags(in.Tags); !resp.Empty() {
		return resp
	}
	return f.local(c.op, c.body)
}

func (f *Front) describeKey(c *call) handler.Response {
	resp := f.local(c.op, c.body)
	if !success(resp.Code) {
		return resp
	}
	return f.editMetadata(resp, nil)
}

// editMetadata fills in the KeyMetadata fields local-kms leaves out: AWS always
// answers a Description (empty if unset) and MultiRegion. before runs first
// with the key's ARN.
func (f *Front) editMetadata(resp handler.Response, before func(arn string) error) handler.Response {
	var out struct {
		KeyMetadata map[string]any
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	md := out.KeyMetadata
	arn, _ := md["Arn"].(string)
	if before != nil {
		if err := before(arn); err != nil {
			return f.saveFailed(err)
		}
	}
	if md["Description"] == nil {
		md["Description"] = ""
	}
	multiRegion := false
	f.state.view(func(d *storeData) {
		if k := d.Keys[arn]; k != nil {
			multiRegion = k.MultiRegion
		}
	})
	md["MultiRegion"] = multiRegion
	return jsonResponse(resp.Code, out)
}

// putKeyPolicy replaces local-kms's, which requires PolicyName (optional in
// AWS), accepts any string and panics on non-symmetric keys.
func (f *Front) putKeyPolicy(c *call) handler.Response {
	var in struct {
		KeyId      string
		Policy     *string
		PolicyName *string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in.Policy == nil {
		return validationError("1 validation error detected: Value null at 'policy' failed to satisfy constraint: Member must not be null")
	}
	if in.PolicyName != nil && *in.PolicyName != defaultPolicyName {
		return notFound("Policy %s does not exist; the only policy name is %q", *in.PolicyName, defaultPolicyName)
	}
	if !json.Valid([]byte(*in.Policy)) {
		return errorResponse(400, "MalformedPolicyDocumentException", "The policy is not valid JSON")
	}
	key, resp := f.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	if pendingDeletion(key) {
		return invalidState("%s is pending deletion.", key.GetArn())
	}
	switch k := key.(type) {
	case *cmk.AesKey:
		k.Policy = *in.Policy
	case *cmk.RsaKey:
		k.Policy = *in.Policy
	case *cmk.EccKey:
		k.Policy = *in.Policy
	case *cmk.HmacKey:
		k.Policy = *in.Policy
	}
	if err := f.db.SaveKey(key); err != nil {
		return f.saveFailed(err)
	}
	return handler.Response{Code: 200}
}

// getKeyPolicy defaults PolicyName, which AWS made optional.
func (f *Front) getKeyPolicy(c *call) handler.Response {
	var in map[string]any
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in == nil {
		in = map[string]any{}
	}
	if in["PolicyName"] == nil {
		in["PolicyName"] = defaultPolicyName
	}
	return f.localJSON(c.op, in)
}

func (f *Front) listKeyPolicies(c *call) handler.Response {
	var in keyIDInput
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if key, resp := f.loadKey(in.KeyId); key == nil {
		return resp
	}
	return jsonResponse(200, map[string]any{"PolicyNames": []string{defaultPolicyName}, "Truncated": false})
}

// scheduleKeyDeletion adds the KeyState and PendingWindowInDays AWS answers.
func (f *Front) scheduleKeyDeletion(c *call) handler.Response {
	var in struct {
		PendingWindowInDays *int
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	resp := f.local(c.op, c.body)
	if !success(resp.Code) {
		return resp
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	out["KeyState"] = string(cmk.KeyStatePendingDeletion)
	out["PendingWindowInDays"] = defaultPendingWindow
	if in.PendingWindowInDays != nil {
		out["PendingWindowInDays"] = *in.PendingWindowInDays
	}
	return jsonResponse(resp.Code, out)
}

// cancelKeyDeletion leaves the key Disabled, as AWS does; local-kms enables it.
func (f *Front) cancelKeyDeletion(c *call) handler.Response {
	resp := f.local(c.op, c.body)
	if !success(resp.Code) {
		return resp
	}
	var out keyIDInput
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	if disable := f.localJSON("DisableKey", out); !success(disable.Code) {
		return disable
	}
	return resp
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
	period := defaultRotationPeriod
	if in.RotationPeriodInDays != nil {
		period = *in.RotationPeriodInDays
		if period < 90 || period > 2560 {
			return validationError("1 validation error detected: Value '%d' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560", period)
		}
	}
	resp := f.local(c.op, c.body)
	if !success(resp.Code) {
		return resp
	}
	err := f.state.update(func(d *storeData) bool {
		d.key(config.EnsureArn("key/", in.KeyId)).RotationPeriodInDays = period
		return true
	})
	if err != nil {
		return f.saveFailed(err)
	}
	return resp
}

func (f *Front) disableKeyRotation(c *call) handler.Response {
	var in keyIDInput
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	resp := f.local(c.op, c.body)
	if !success(resp.Code) {
		return resp
	}
	err := f.state.update(func(d *storeData) bool {
		k := d.Keys[config.EnsureArn("key/", in.KeyId)]
		if k == nil || k.RotationPeriodInDays == 0 {
			return false
		}
		k.RotationPeriodInDays = 0
		return true
	})
	if err != nil {
		return f.saveFailed(err)
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
	resp := f.local(c.op, c.body)
	if !success(resp.Code) {
		return resp
	}
	var status struct {
		KeyRotationEnabled bool
	}
	if err := json.Unmarshal([]byte(resp.Body), &status); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	key, resp := f.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	out := map[string]any{"KeyId": key.GetArn(), "KeyRotationEnabled": status.KeyRotationEnabled}
	if status.KeyRotationEnabled {
		period := defaultRotationPeriod
		f.state.view(func(d *storeData) {
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
	key, resp := f.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	switch {
	case !symmetricAWSKMS(key):
		return errorResponse(400, "UnsupportedOperationException", key.GetArn()+" does not support on-demand rotation: only symmetric encryption keys with AWS_KMS origin do")
	case pendingDeletion(key):
		return invalidState("%s is pending deletion.", key.GetArn())
	case !key.GetMetadata().Enabled:
		return errorResponse(400, "DisabledException", key.GetArn()+" is disabled.")
	}
	aes := key.(*cmk.AesKey)
	var material [32]byte
	rand.Read(material[:])
	aes.BackingKeys = append(aes.BackingKeys, material)
	if err := f.db.SaveKey(aes); err != nil {
		return f.saveFailed(err)
	}
	err := f.state.update(func(d *storeData) bool {
		k := d.key(key.GetArn())
		k.Rotations = append(k.Rotations, rotation{Date: time.Now(), Type: "ON_DEMAND"})
		return true
	})
	if err != nil {
		return f.saveFailed(err)
	}
	return jsonResponse(200, map[string]string{"KeyId": key.GetArn()})
}

func (f *Front) listKeyRotations(c *call) handler.Response {
	var in struct {
		KeyId  string
		Limit  *int
		Marker string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	key, resp := f.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	if !symmetricAWSKMS(key) {
		return errorResponse(400, "UnsupportedOperationException", key.GetArn()+" does not support rotation")
	}
	var rotations []rotation
	f.state.view(func(d *storeData) {
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
			"KeyId":        key.GetArn(),
			"RotationDate": r.Date.Unix(),
			"RotationType": r.Type,
		})
	}
	return jsonResponse(200, p.output("Rotations", entries))
}

// pageBounds is one page of a list: items [start, end) and the marker of the
// next page, if any.
type pageBounds struct {
	start, end int
	next       string
}

// paginate pages a list of n items. Markers are offsets into the list, which
// is stable enough for a test server.
func paginate(n int, limit *int, defaultLimit, maxLimit int, marker string) (pageBounds, handler.Response) {
	size := defaultLimit
	if limit != nil {
		size = *limit
		if size < 1 || size > maxLimit {
			return pageBounds{}, validationError("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d", size, maxLimit)
		}
	}
	start := 0
	if marker != "" {
		var err error
		start, err = strconv.Atoi(marker)
		if err != nil || start < 0 || start > n {
			return pageBounds{}, errorResponse(400, "InvalidMarkerException", "Invalid marker: "+marker)
		}
	}
	p := pageBounds{start: start, end: min(start+size, n)}
	if p.end < n {
		p.next = strconv.Itoa(p.end)
	}
	return p, handler.Response{}
}

// output builds a list response holding items under name.
func (p pageBounds) output(name string, items any) map[string]any {
	out := map[string]any{name: items, "Truncated": p.next != ""}
	if p.next != "" {
		out["NextMarker"] = p.next
	}
	return out
}
