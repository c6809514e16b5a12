package front

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/handler"
)

// grantOperations is the GrantOperation enum of the KMS API.
var grantOperations = []string{
	"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
	"ReEncryptFrom", "ReEncryptTo", "Sign", "Verify", "GetPublicKey",
	"CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
	"GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac",
	"DeriveSharedSecret", "Encapsulate", "Decapsulate",
}

var grantNamePattern = regexp.MustCompile(`^[a-zA-Z0-9:/_-]{1,256}$`)

type grant struct {
	GrantId                  string
	KeyId                    string // the key's ARN
	Name                     string `json:",omitempty"`
	GranteePrincipal         string `json:",omitempty"`
	GranteeServicePrincipal  string `json:",omitempty"`
	RetiringPrincipal        string `json:",omitempty"`
	RetiringServicePrincipal string `json:",omitempty"`
	Operations               []string
	Constraints              *grantConstraints `json:",omitempty"`
	CreationDate             time.Time
	Token                    string
}

type grantConstraints struct {
	EncryptionContextSubset map[string]string `json:",omitempty"`
	EncryptionContextEquals map[string]string `json:",omitempty"`
	SourceArn               string            `json:",omitempty"`
}

// servicePrincipalPattern is GranteeServicePrincipal's and
// RetiringServicePrincipal's constraint: a dotted service name such as
// acm.amazonaws.com, up to 128 characters
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html).
var servicePrincipalPattern = regexp.MustCompile(`^([A-Za-z0-9-]+)\.([A-Za-z0-9-]+)(\.[A-Za-z0-9-]+)+$`)

// sameParameters reports whether a CreateGrant retry with g's name would be
// answered with g, the order of operations aside.
func (g *grant) sameParameters(o *grant) bool {
	return g.GranteePrincipal == o.GranteePrincipal &&
		g.GranteeServicePrincipal == o.GranteeServicePrincipal &&
		g.RetiringPrincipal == o.RetiringPrincipal &&
		g.RetiringServicePrincipal == o.RetiringServicePrincipal &&
		slices.Equal(slices.Sorted(slices.Values(g.Operations)), slices.Sorted(slices.Values(o.Operations))) &&
		reflect.DeepEqual(g.Constraints, o.Constraints)
}

// revokedGrant is a grant revoked or retired at a moment.
type revokedGrant struct {
	grant *grant
	at    time.Time
}

// listEntry is the GrantListEntry shape of ListGrants and ListRetirableGrants.
// A grant to a service principal shows GranteeServicePrincipal (and
// RetiringServicePrincipal) instead of GranteePrincipal, as in the Developer
// Guide's example (https://docs.aws.amazon.com/kms/latest/developerguide/create-grant-overview.html#grant-constraints-source-arn).
func (c *call) listEntry(g *grant) map[string]any {
	e := map[string]any{
		"GrantId":        g.GrantId,
		"KeyId":          g.KeyId,
		"IssuingAccount": c.t.rootARN(),
		"Operations":     g.Operations,
		"CreationDate":   g.CreationDate.Unix(),
	}
	if g.GranteeServicePrincipal != "" {
		e["GranteeServicePrincipal"] = g.GranteeServicePrincipal
	} else {
		e["GranteePrincipal"] = c.displayPrincipal(g.GranteePrincipal)
	}
	if g.Name != "" {
		e["Name"] = g.Name
	}
	if g.RetiringPrincipal != "" {
		e["RetiringPrincipal"] = c.displayPrincipal(g.RetiringPrincipal)
	}
	if g.RetiringServicePrincipal != "" {
		e["RetiringServicePrincipal"] = g.RetiringServicePrincipal
	}
	if g.Constraints != nil {
		e["Constraints"] = g.Constraints
	}
	return e
}

// checkGrantees applies CreateGrant's rules on principals: exactly one of
// GranteePrincipal and GranteeServicePrincipal; at most one of
// RetiringPrincipal and RetiringServicePrincipal, and one of them with a
// grantee service principal; service principals in their dotted form
// (CreateGrant API reference above; "Grant concepts",
// https://docs.aws.amazon.com/kms/latest/developerguide/grants.html#grant-concepts).
func checkGrantees(grantee, granteeService, retiring, retiringService string) handler.Response {
	switch {
	case grantee == "" && granteeService == "":
		return validationError("You must specify either GranteePrincipal or GranteeServicePrincipal")
	case grantee != "" && granteeService != "":
		return validationError("You must specify either GranteePrincipal or GranteeServicePrincipal, but not both")
	case retiring != "" && retiringService != "":
		return validationError("You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both")
	case granteeService != "" && retiring == "" && retiringService == "":
		return validationError("When you specify a GranteeServicePrincipal, you must also specify either a RetiringPrincipal or a RetiringServicePrincipal")
	}
	for field, p := range map[string]string{"granteeServicePrincipal": granteeService, "retiringServicePrincipal": retiringService} {
		if p != "" && (len(p) > 128 || !servicePrincipalPattern.MatchString(p)) {
			return validationError("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([A-Za-z0-9\\-]+)\\.([A-Za-z0-9\\-]+)(\\.[A-Za-z0-9\\-]+)+$", p, field)
		}
	}
	return handler.Response{}
}

// keyOperations are the grant operations a key supports, by its usage:
// "The grant operations that you allow must be supported by the KMS key in
// the grant ... grants for symmetric encryption KMS keys cannot allow the
// Sign, Verify, GenerateMac or VerifyMac operations. Grants for asymmetric
// KMS keys cannot allow any operations that generate data keys or data key
// pairs" (https://docs.aws.amazon.com/kms/latest/developerguide/grants.html#terms-grant-operations).
// CreateGrant, DescribeKey and RetireGrant suit every key.
var keyOperations = map[string][]string{
	"symmetric":           {"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"},
	"ENCRYPT_DECRYPT":     {"Decrypt", "Encrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"},
	"SIGN_VERIFY":         {"Sign", "Verify", "GetPublicKey"},
	"GENERATE_VERIFY_MAC": {"GenerateMac", "VerifyMac"},
	"KEY_AGREEMENT":       {"DeriveSharedSecret", "GetPublicKey"},
	"KEY_ENCAPSULATION":   {"Encapsulate", "Decapsulate", "GetPublicKey"},
}

// checkGrantOperations refuses operations the key does not support with the
// ValidationException the Developer Guide names (above).
func checkGrantOperations(key cmk.Key, ops []string) handler.Response {
	md := key.GetMetadata()
	usage := string(md.KeyUsage)
	if md.KeySpec == cmk.SpecSymmetricDefault {
		usage = "symmetric"
	}
	supported, known := keyOperations[usage]
	for _, op := range ops {
		switch op {
		case "CreateGrant", "DescribeKey", "RetireGrant":
			continue
		}
		if known && !slices.Contains(supported, op) {
			return validationError("Grant operation %s is not supported by %s (%s)", op, key.GetArn(), md.KeySpec)
		}
	}
	return handler.Response{}
}

func randomString(n int, encode func([]byte) string) string {
	b := make([]byte, n)
	rand.Read(b)
	return encode(b)
}

func (f *Front) createGrant(c *call) handler.Response {
	var in struct {
		KeyId                    string
		GranteePrincipal         string
		GranteeServicePrincipal  string
		RetiringPrincipal        string
		RetiringServicePrincipal string
		Operations               []string
		Constraints              *grantConstraints
		Name                     string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if resp := checkGrantees(in.GranteePrincipal, in.GranteeServicePrincipal, in.RetiringPrincipal, in.RetiringServicePrincipal); !resp.Empty() {
		return resp
	}
	if len(in.Operations) == 0 {
		return validationError("1 validation error detected: Value null at 'operations' failed to satisfy constraint: Member must not be null")
	}
	for _, op := range in.Operations {
		if !slices.Contains(grantOperations, op) {
			return validationError("1 validation error detected: Value '%s' at 'operations' failed to satisfy constraint: Member must satisfy enum value set: %v", op, grantOperations)
		}
	}
	if in.Name != "" && !grantNamePattern.MatchString(in.Name) {
		return validationError("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$", in.Name)
	}
	if cs := in.Constraints; cs != nil {
		// Empty and absent constraints are the same, also for idempotency.
		if len(cs.EncryptionContextSubset) == 0 {
			cs.EncryptionContextSubset = nil
		}
		if len(cs.EncryptionContextEquals) == 0 {
			cs.EncryptionContextEquals = nil
		}
		switch {
		case cs.EncryptionContextSubset != nil && cs.EncryptionContextEquals != nil:
			return validationError("A grant constraint cannot contain both EncryptionContextSubset and EncryptionContextEquals")
		case cs.EncryptionContextSubset == nil && cs.EncryptionContextEquals == nil && cs.SourceArn == "":
			in.Constraints = nil
		}
	}
	// "When you specify a grantee service principal, you must include a
	// SourceArn grant constraint"; with a grantee principal it is optional
	// (create-grant-overview.html above).
	if in.GranteeServicePrincipal != "" && (in.Constraints == nil || in.Constraints.SourceArn == "") {
		return validationError("A SourceArn grant constraint is required when GranteeServicePrincipal is specified")
	}
	if in.Constraints != nil && in.Constraints.SourceArn != "" && !strings.HasPrefix(in.Constraints.SourceArn, "arn:") {
		return validationError("1 validation error detected: Value '%s' at 'constraints.sourceArn' failed to satisfy constraint: Member must be an ARN", in.Constraints.SourceArn)
	}
	if resp := c.checkGrantPrincipals(in.GranteePrincipal, in.RetiringPrincipal); !resp.Empty() {
		return resp
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	if pendingDeletion(key) {
		return invalidState("%s is pending deletion.", key.GetArn())
	}
	if resp := checkGrantOperations(key, in.Operations); !resp.Empty() {
		return resp
	}

	g := &grant{
		KeyId:                    key.GetArn(),
		Name:                     in.Name,
		GranteePrincipal:         in.GranteePrincipal,
		GranteeServicePrincipal:  in.GranteeServicePrincipal,
		RetiringPrincipal:        in.RetiringPrincipal,
		RetiringServicePrincipal: in.RetiringServicePrincipal,
		Operations:               in.Operations,
		Constraints:              in.Constraints,
	}
	err := c.t.state.update(func(d *storeData) bool {
		// A named grant is idempotent: a retry with the same parameters gets
		// the existing grant; different parameters make a new grant.
		if g.Name != "" {
			for _, old := range d.Grants {
				if old.KeyId == g.KeyId && old.Name == g.Name && old.sameParameters(g) {
					g = old
					return false
				}
			}
		}
		g.GrantId = randomString(32, hex.EncodeToString)
		g.Token = randomString(96, base64.RawURLEncoding.EncodeToString)
		g.CreationDate = c.now
		d.Grants = append(d.Grants, g)
		return true
	})
	if err != nil {
		return saveFailed(err)
	}
	return jsonResponse(200, map[string]string{"GrantId": g.GrantId, "GrantToken": g.Token})
}

func (f *Front) listGrants(c *call) handler.Response {
	var in struct {
		KeyId                   string
		GrantId                 string
		GranteePrincipal        string
		GranteeServicePrincipal string
		Limit                   *int
		Marker                  string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in.GranteePrincipal != "" && in.GranteeServicePrincipal != "" {
		return validationError("You can specify either GranteePrincipal or GranteeServicePrincipal, but not both")
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	return c.grantPage(in.Limit, in.Marker, func(g *grant) bool {
		return g.KeyId == key.GetArn() &&
			(in.GrantId == "" || g.GrantId == in.GrantId) &&
			(in.GranteePrincipal == "" || g.GranteePrincipal == in.GranteePrincipal) &&
			(in.GranteeServicePrincipal == "" || g.GranteeServicePrincipal == in.GranteeServicePrincipal)
	})
}

func (f *Front) listRetirableGrants(c *call) handler.Response {
	var in struct {
		RetiringPrincipal string
		Limit             *int
		Marker            string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in.RetiringPrincipal == "" {
		return validationError("1 validation error detected: Value null at 'retiringPrincipal' failed to satisfy constraint: Member must not be null")
	}
	return c.grantPage(in.Limit, in.Marker, func(g *grant) bool {
		return g.RetiringPrincipal == in.RetiringPrincipal || g.RetiringServicePrincipal == in.RetiringPrincipal
	})
}

// grantPage answers one page of the grants that match, as they were
// grantListLag ago: without the grants created since, with the grants
// revoked or retired since.
func (c *call) grantPage(limit *int, marker string, match func(*grant) bool) handler.Response {
	then := c.now.Add(-time.Duration(c.cfg.GrantListLag))
	var grants []*grant
	c.t.state.view(func(d *storeData) {
		for _, g := range d.Grants {
			if match(g) && !g.CreationDate.After(then) {
				grants = append(grants, g)
			}
		}
	})
	revoked := false
	for _, r := range c.t.revoked {
		if r.at.After(then) && match(r.grant) && !r.grant.CreationDate.After(then) {
			grants, revoked = append(grants, r.grant), true
		}
	}
	if revoked {
		slices.SortStableFunc(grants, func(a, b *grant) int { return a.CreationDate.Compare(b.CreationDate) })
	}
	p, resp := paginate(len(grants), limit, 50, 100, marker)
	if !resp.Empty() {
		return resp
	}
	entries := []map[string]any{}
	for _, g := range grants[p.start:p.end] {
		entries = append(entries, c.listEntry(g))
	}
	return jsonResponse(200, p.output("Grants", entries))
}

// retireGrant finds the grant by its token or by key and grant id.
func (f *Front) retireGrant(c *call) handler.Response {
	var in struct {
		GrantToken string
		KeyId      string
		GrantId    string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in.GrantToken != "" {
		return c.deleteGrant(func(g *grant) bool { return g.Token == in.GrantToken },
			errorResponse(400, "InvalidGrantTokenException", "The grant token is not valid"))
	}
	if in.KeyId == "" || in.GrantId == "" {
		return validationError("Either GrantToken, or both KeyId and GrantId, must be specified")
	}
	return f.revokeGrant(c)
}

func (f *Front) revokeGrant(c *call) handler.Response {
	var in struct {
		KeyId   string
		GrantId string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in.GrantId == "" {
		return validationError("1 validation error detected: Value null at 'grantId' failed to satisfy constraint: Member must not be null")
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	return c.deleteGrant(func(g *grant) bool { return g.KeyId == key.GetArn() && g.GrantId == in.GrantId },
		notFound("Grant ID %s not found for key %s", in.GrantId, key.GetArn()))
}

// deleteGrant removes the grant that matches, answering missing if none does:
// revoking a grant that does not exist (any more) is NotFoundException
// (https://github.com/getmoto/moto/issues/5411 shows AWS's answer). The
// grant stays listed for grantListLag.
func (c *call) deleteGrant(match func(*grant) bool, missing handler.Response) handler.Response {
	var gone *grant
	err := c.t.state.update(func(d *storeData) bool {
		i := slices.IndexFunc(d.Grants, match)
		if i < 0 {
			return false
		}
		gone = d.Grants[i]
		d.Grants = slices.Delete(d.Grants, i, i+1)
		return true
	})
	switch {
	case err != nil:
		return saveFailed(err)
	case gone == nil:
		return missing
	}
	then := c.now.Add(-time.Duration(c.cfg.GrantListLag))
	c.t.revoked = slices.DeleteFunc(c.t.revoked, func(r revokedGrant) bool { return !r.at.After(then) })
	if c.cfg.GrantListLag > 0 {
		c.t.revoked = append(c.t.revoked, revokedGrant{grant: gone, at: c.now})
	}
	return handler.Response{Code: 200}
}
