package front

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/handler"
)

const (
	defaultPolicyName    = "default"
	defaultPendingWindow = 30
)

type keyIDInput struct {
	KeyId string
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

func saveFailed(err error) handler.Response {
	return errorResponse(500, "KMSInternalException", "saving state: "+err.Error())
}

// defaultKeyPolicy is the policy AWS gives a key created without one: the
// account may do everything through IAM
// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html),
// its root principal in the tenant's partition. local-kms's own writes
// arn:aws whatever the partition.
func defaultKeyPolicy(t *tenant) string {
	type statement struct {
		Sid       string
		Effect    string
		Principal map[string]string
		Action    string
		Resource  string
	}
	b, _ := json.MarshalIndent(struct {
		Version   string
		Id        string
		Statement []statement
	}{"2012-10-17", "key-default-1", []statement{{
		Sid: "Enable IAM User Permissions", Effect: "Allow",
		Principal: map[string]string{"AWS": t.rootARN()}, Action: "kms:*", Resource: "*",
	}}}, "", "  ")
	return string(b)
}

// checkPolicy refuses a policy that is not JSON or names a principal KMS
// cannot see yet.
func (c *call) checkPolicy(policy string) handler.Response {
	if !json.Valid([]byte(policy)) {
		return errorResponse(400, "MalformedPolicyDocumentException", "The policy is not valid JSON")
	}
	return c.checkPolicyPrincipals(policy)
}

// withField sets a top-level field of a JSON request body.
func withField(body []byte, name string, value any) []byte {
	fields := map[string]any{}
	_ = json.Unmarshal(body, &fields)
	fields[name] = value
	b, _ := json.Marshal(fields)
	return b
}

// createKey validates what local-kms does not, gives the key AWS's default
// policy and the server's creation date, and makes multi-Region keys.
func (f *Front) createKey(c *call) handler.Response {
	var in struct {
		MultiRegion     bool
		Policy          *string
		Tags            []tag
		Origin, KeySpec string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	// local-kms makes EXTERNAL keys of SYMMETRIC_DEFAULT only: the others are
	// made with its material, then made to wait for theirs (makeExternal).
	external := in.Origin == string(cmk.KeyOriginExternal) && externalKeySpecs[in.KeySpec]
	if in.Policy != nil {
		if resp := c.checkPolicy(*in.Policy); !resp.Empty() {
			return resp
		}
	}
	if resp := checkTags(in.Tags, nil); !resp.Empty() {
		return resp
	}
	// The tags are saved below: local-kms checks their lengths in bytes.
	body := withField(c.body, "Tags", nil)
	if in.Policy == nil {
		body = withField(body, "Policy", defaultKeyPolicy(c.t))
	} else {
		body = withField(body, "Policy", storedPolicy(c.t, *in.Policy))
	}
	if external {
		body = withField(body, "Origin", string(cmk.KeyOriginAwsKms))
	}
	resp := f.local(c, body)
	if !success(resp.Code) {
		return resp
	}
	var out struct {
		KeyMetadata struct{ Arn string }
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	key, resp := c.t.loadKey(out.KeyMetadata.Arn)
	if key == nil {
		return resp
	}
	key.GetMetadata().CreationDate = c.now.Unix()
	if external {
		makeExternal(key)
	}
	var err error
	if in.MultiRegion {
		key, err = f.makeMultiRegion(c, key)
	} else {
		err = c.t.db.SaveKey(key)
	}
	if err == nil {
		err = saveTags(c.t, key, in.Tags)
	}
	if err != nil {
		return saveFailed(err)
	}
	c.t.recordCreated(key.GetArn(), c.now, c.cfg.horizon())
	return f.metadataResponse(c.t, "KeyMetadata", key, c.now)
}

// metadataResponse answers a key's metadata under name.
func (f *Front) metadataResponse(t *tenant, name string, key cmk.Key, now time.Time) handler.Response {
	md, err := metadataMap(key.GetMetadata())
	if err == nil {
		err = f.fixMetadata(t, md, now)
	}
	if err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	return jsonResponse(200, map[string]any{name: md})
}

func metadataMap(md *cmk.KeyMetadata) (map[string]any, error) {
	b, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func (f *Front) describeKey(c *call) handler.Response {
	resp := f.local(c, c.body)
	if !success(resp.Code) {
		return resp
	}
	var out struct {
		KeyMetadata map[string]any
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	if err := f.fixMetadata(c.t, out.KeyMetadata, c.now); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	return jsonResponse(resp.Code, out)
}

// fixMetadata fills in the KeyMetadata fields local-kms leaves out: AWS
// always answers a Description (empty if unset) and MultiRegion, and for a
// multi-Region key its MultiRegionConfiguration. A primary key waiting for
// its replicas' deletion has no DeletionDate but a
// PendingDeletionWindowInDays
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html).
func (f *Front) fixMetadata(t *tenant, md map[string]any, now time.Time) error {
	if md["Description"] == nil {
		md["Description"] = ""
	}
	keyID, _ := md["KeyId"].(string)
	md["MultiRegion"] = isMultiRegion(keyID)
	if isMultiRegion(keyID) {
		mrc, err := f.multiRegionConfiguration(t, keyID)
		if err != nil {
			return err
		}
		md["MultiRegionConfiguration"] = mrc
		if state := f.transientState(t, keyID, now); state != "" {
			md["KeyState"] = state
			if state == keyStateCreating {
				md["Enabled"] = false
			}
		}
	}
	// KMS gives material ids to symmetric keys only (KeyMetadata's
	// CurrentKeyMaterialId).
	if md["Origin"] == string(cmk.KeyOriginExternal) && md["KeySpec"] == string(cmk.SpecSymmetricDefault) {
		if id := t.currentMaterialID(t.keyARN(keyID)); id != "" {
			md["CurrentKeyMaterialId"] = id
		}
	}
	if md["KeyState"] == string(keyStatePendingReplicaDeletion) {
		delete(md, "DeletionDate")
		t.state.view(func(d *storeData) {
			if k := d.Keys[t.keyARN(keyID)]; k != nil {
				md["PendingDeletionWindowInDays"] = k.PendingWindowInDays
			}
		})
	}
	return nil
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
	if resp := c.checkPolicy(*in.Policy); !resp.Empty() {
		return resp
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	if pendingDeletion(key) {
		return invalidState("%s is pending deletion.", key.GetArn())
	}
	setPolicy(key, storedPolicy(c.t, *in.Policy))
	if err := c.t.db.SaveKey(key); err != nil {
		return saveFailed(err)
	}
	return handler.Response{Code: 200}
}

func setPolicy(key cmk.Key, policy string) {
	switch k := key.(type) {
	case *cmk.AesKey:
		k.Policy = policy
	case *cmk.RsaKey:
		k.Policy = policy
	case *cmk.EccKey:
		k.Policy = policy
	case *cmk.HmacKey:
		k.Policy = policy
	}
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
	return f.localJSON(c, c.op, in)
}

func (f *Front) listKeyPolicies(c *call) handler.Response {
	var in keyIDInput
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if key, resp := c.t.loadKey(in.KeyId); key == nil {
		return resp
	}
	return jsonResponse(200, map[string]any{"PolicyNames": []string{defaultPolicyName}, "Truncated": false})
}

// scheduleKeyDeletion counts the deletion date from the server's clock and
// answers the KeyState and PendingWindowInDays AWS answers. A multi-Region
// primary key with replicas waits for them (see replicas.go).
func (f *Front) scheduleKeyDeletion(c *call) handler.Response {
	var in struct {
		KeyId               string
		PendingWindowInDays *int
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	window := defaultPendingWindow
	if in.PendingWindowInDays != nil {
		window = *in.PendingWindowInDays
		if window < 7 || window > 30 {
			return validationError("1 validation error detected: Value '%d' at 'PendingWindowInDays' failed to satisfy constraint: Member must have minimum value of 7 and maximum value of 30.", window)
		}
	}
	if resp, done := f.scheduleWithReplicas(c, in.KeyId, window); done {
		return resp
	}
	resp := f.local(c, c.body)
	if !success(resp.Code) {
		return resp
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	md := key.GetMetadata()
	md.DeletionDate = c.now.Add(time.Duration(window) * 24 * time.Hour).Unix()
	if err := c.t.db.SaveKey(key); err != nil {
		return saveFailed(err)
	}
	return jsonResponse(200, map[string]any{
		"KeyId": key.GetArn(), "DeletionDate": md.DeletionDate,
		"KeyState": string(cmk.KeyStatePendingDeletion), "PendingWindowInDays": window,
	})
}

// cancelKeyDeletion leaves the key Disabled, as AWS does; local-kms enables it.
func (f *Front) cancelKeyDeletion(c *call) handler.Response {
	resp := f.local(c, c.body)
	if !success(resp.Code) {
		return resp
	}
	var out keyIDInput
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	if disable := f.localJSON(c, "DisableKey", out); !success(disable.Code) {
		return disable
	}
	err := c.t.state.update(func(d *storeData) bool {
		k := d.Keys[out.KeyId]
		if k == nil || k.PendingWindowInDays == 0 {
			return false
		}
		k.PendingWindowInDays = 0
		return true
	})
	if err != nil {
		return saveFailed(err)
	}
	return resp
}

// enableKey refuses a key waiting for its imported material, as AWS does
// ("You cannot enable a KMS key in the PendingImport state": Key states of KMS
// keys, https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html);
// local-kms enables it.
func (f *Front) enableKey(c *call) handler.Response {
	var in keyIDInput
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	if key.GetMetadata().KeyState == cmk.KeyStatePendingImport {
		return invalidState("%s is pending import.", key.GetArn())
	}
	return f.local(c, c.body)
}

// aliasNamePattern is CreateAlias's AliasName constraint in the API
// reference (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html);
// local-kms checks only the prefix.
var aliasNamePattern = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]+$`)

func (f *Front) createAlias(c *call) handler.Response {
	var in struct {
		AliasName string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if strings.HasPrefix(in.AliasName, "alias/") && !aliasNamePattern.MatchString(in.AliasName) {
		return validationError("%s contains invalid characters for an alias", in.AliasName)
	}
	return f.local(c, c.body)
}

// storedPolicy is a policy as KMS keeps it: an AWS account id given as a
// principal is stored as that account's root ARN, in the key's partition
// ("Principal": {"AWS": "123456789012"} is converted to
// arn:aws:iam::123456789012:root: IAM User Guide, AWS JSON policy elements:
// Principal, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
// A policy that does not parse as expected is stored as it was given.
func storedPolicy(t *tenant, policy string) string {
	var doc map[string]any
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return policy
	}
	statements, ok := doc["Statement"].([]any)
	if !ok {
		statements = []any{doc["Statement"]}
	}
	changed := false
	for _, st := range statements {
		s, ok := st.(map[string]any)
		if !ok {
			continue
		}
		for _, field := range []string{"Principal", "NotPrincipal"} {
			p, ok := s[field].(map[string]any)
			if !ok {
				continue
			}
			if v, ok := rootARNs(t, p["AWS"]); ok {
				p["AWS"], changed = v, true
			}
		}
	}
	if !changed {
		return policy
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return policy
	}
	return string(b)
}

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// rootARNs replaces account ids in an AWS principal value (a string or a
// list) with root ARNs; ok is false when there was none.
func rootARNs(t *tenant, v any) (any, bool) {
	switch p := v.(type) {
	case string:
		if accountIDPattern.MatchString(p) {
			return "arn:" + t.partition + ":iam::" + p + ":root", true
		}
	case []any:
		changed := false
		for i, e := range p {
			if s, ok := e.(string); ok && accountIDPattern.MatchString(s) {
				p[i], changed = "arn:"+t.partition+":iam::"+s+":root", true
			}
		}
		return p, changed
	}
	return v, false
}
