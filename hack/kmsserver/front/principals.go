package front

// IAM principals the server knows the creation time of, for the
// principalIDWindow and freshPrincipalWindow switches. IAM is global, so
// this is shared by every tenant.

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nsmithuk/local-kms/src/handler"
)

// iamPrincipalPattern matches the principals that have unique ids: IAM
// roles and users.
var iamPrincipalPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$`)

type principals struct {
	mu      sync.Mutex
	created map[string]time.Time
}

// createdAt returns when an IAM role or user was created, as far as the
// server knows; with firstUse, one not seen before is created now.
func (p *principals) createdAt(arn string, now time.Time, firstUse bool) (time.Time, bool) {
	if !iamPrincipalPattern.MatchString(arn) {
		return time.Time{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.created[arn]
	if !ok && firstUse {
		t, ok = now, true
		p.created[arn] = t
	}
	return t, ok
}

// newer reports whether arn is an IAM role or user created less than
// window ago.
func (c *call) newer(arn string, window Duration) bool {
	created, ok := c.f.principals.createdAt(arn, c.now, c.cfg.PrincipalsCreatedOnFirstUse)
	return ok && c.now.Sub(created) < time.Duration(window)
}

// displayPrincipal is how ListGrants shows a grant's principal: a role or
// user created less than principalIDWindow ago as its unique id.
func (c *call) displayPrincipal(arn string) string {
	if c.cfg.PrincipalIDWindow > 0 && c.newer(arn, c.cfg.PrincipalIDWindow) {
		return uniqueID(arn)
	}
	return arn
}

// uniqueID derives a stable unique id in IAM's form for a role (AROA...) or
// user (AIDA...): 21 characters
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).
func uniqueID(arn string) string {
	prefix := "AIDA"
	if strings.Contains(arn, ":role/") {
		prefix = "AROA"
	}
	sum := sha256.Sum256([]byte(arn))
	return prefix + base32.StdEncoding.EncodeToString(sum[:])[:17]
}

// checkGrantPrincipals refuses a grant naming a principal KMS cannot see
// yet. The message is the server's own.
func (c *call) checkGrantPrincipals(arns ...string) handler.Response {
	for _, arn := range arns {
		if c.cfg.FreshPrincipalWindow > 0 && c.newer(arn, c.cfg.FreshPrincipalWindow) {
			return errorResponse(400, "InvalidArnException", "ARN does not refer to a valid principal: "+arn)
		}
	}
	return handler.Response{}
}

// checkPolicyPrincipals refuses a key policy naming a principal KMS cannot
// see yet, with the message AWS gives for a principal it does not know
// (https://repost.aws/knowledge-center/kms-policy-error-invalid-principals).
func (c *call) checkPolicyPrincipals(policy string) handler.Response {
	if c.cfg.FreshPrincipalWindow == 0 {
		return handler.Response{}
	}
	for _, arn := range policyPrincipals(policy) {
		if c.newer(arn, c.cfg.FreshPrincipalWindow) {
			return errorResponse(400, "MalformedPolicyDocumentException", "Policy contains a statement with one or more invalid principals.")
		}
	}
	return handler.Response{}
}

// policyPrincipals returns the AWS principals of a policy's statements.
func policyPrincipals(policy string) []string {
	var doc struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(policy), &doc) != nil {
		return nil
	}
	type statement struct {
		Principal json.RawMessage
	}
	var statements []statement
	if json.Unmarshal(doc.Statement, &statements) != nil {
		var one statement
		if json.Unmarshal(doc.Statement, &one) != nil {
			return nil
		}
		statements = []statement{one}
	}
	var arns []string
	for _, s := range statements {
		var p struct {
			AWS json.RawMessage
		}
		if json.Unmarshal(s.Principal, &p) != nil || p.AWS == nil {
			continue
		}
		var many []string
		if json.Unmarshal(p.AWS, &many) != nil {
			var one string
			_ = json.Unmarshal(p.AWS, &one)
			many = []string{one}
		}
		arns = append(arns, many...)
	}
	return arns
}

type principalEntry struct {
	ARN     string    `json:"arn"`
	Created time.Time `json:"created"`
}

// servePrincipals answers POST /_principals {"arn": ..., "created": RFC3339
// or "createdAgo": "5s"} by registering a role or user as created then (a
// test's "create the role now"), DELETE by forgetting them all and GET with
// the list.
func (f *Front) servePrincipals(w http.ResponseWriter, r *http.Request) {
	p := &f.principals
	switch r.Method {
	case http.MethodGet:
		p.mu.Lock()
		list := []principalEntry{}
		for _, arn := range slices.Sorted(maps.Keys(p.created)) {
			list = append(list, principalEntry{arn, p.created[arn]})
		}
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, list)
	case http.MethodPost:
		e, err := f.decodePrincipal(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
			return
		}
		p.mu.Lock()
		p.created[e.ARN] = e.Created
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, e)
	case http.MethodDelete:
		p.mu.Lock()
		p.created = map[string]time.Time{}
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (f *Front) decodePrincipal(r *http.Request) (principalEntry, error) {
	var in struct {
		ARN        string     `json:"arn"`
		Created    *time.Time `json:"created"`
		CreatedAgo *Duration  `json:"createdAgo"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return principalEntry{}, err
	}
	if !iamPrincipalPattern.MatchString(in.ARN) {
		return principalEntry{}, fmt.Errorf("arn %q is not an IAM role or user ARN", in.ARN)
	}
	e := principalEntry{ARN: in.ARN, Created: f.now()}
	switch {
	case in.Created != nil && in.CreatedAgo != nil:
		return principalEntry{}, fmt.Errorf("give created or createdAgo, not both")
	case in.Created != nil:
		e.Created = *in.Created
	case in.CreatedAgo != nil:
		e.Created = e.Created.Add(-time.Duration(*in.CreatedAgo))
	}
	return e, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
