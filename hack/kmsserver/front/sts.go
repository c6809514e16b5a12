package front

// STS, for an operator that works in many accounts: AssumeRole of the IAM
// roles the configuration lists, and GetCallerIdentity. STS speaks the Query
// protocol: a form-encoded POST with Action and Version=2011-06-15, answered
// with an XML document, errors in an ErrorResponse
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html,
// https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
// The SDK reaches it with AWS_ENDPOINT_URL_STS.
//
// The temporary access keys AssumeRole issues are kept in
// <data-dir>/sts-sessions.json, so that they outlive a restart as they
// outlive nothing in AWS but their expiry.

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nsmithuk/local-kms/src/handler"
)

// stsActions are the STS operations served.
var stsActions = map[string]bool{"AssumeRole": true, "GetCallerIdentity": true}

// Role is an IAM role that AssumeRole can assume.
type Role struct {
	// ARN is the role's ARN; its account is the account its sessions act
	// in.
	ARN string `json:"arn"`
	// Trust lists the principals its trust policy allows: an account's root
	// ARN (or bare account id) trusts every principal of that account; a
	// role ARN the sessions of that role; any other ARN that principal.
	Trust []string `json:"trust"`
	// ExternalID, if set, must be given by AssumeRole.
	ExternalID string `json:"externalID,omitempty"`
	// MaxSessionDuration is 1h to 12h; 1h if unset, as in IAM
	// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
	MaxSessionDuration Duration `json:"maxSessionDuration,omitempty"`
}

var roleARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/(?:.*/)?([\w+=,.@-]{1,64})$`)

// check validates a role and fills in its defaults.
func (r *Role) check() error {
	if !roleARNPattern.MatchString(r.ARN) {
		return fmt.Errorf("role %q is not an IAM role ARN", r.ARN)
	}
	if r.MaxSessionDuration == 0 {
		r.MaxSessionDuration = Duration(time.Hour)
	}
	if d := time.Duration(r.MaxSessionDuration); d < time.Hour || d > 12*time.Hour {
		return fmt.Errorf("role %s: maxSessionDuration %s is not between 1h and 12h", r.ARN, d)
	}
	if len(r.Trust) == 0 {
		return fmt.Errorf("role %s trusts nobody", r.ARN)
	}
	return nil
}

// session is the identity a temporary access key stands for.
type session struct {
	Account        string    `json:"account"`
	RoleARN        string    `json:"roleArn"`
	AssumedRoleARN string    `json:"assumedRoleArn"`
	AssumedRoleID  string    `json:"assumedRoleId"`
	Expiration     time.Time `json:"expiration"`
}

type sessionData struct {
	// Sessions are by access key id.
	Sessions map[string]*session `json:"sessions"`
}

func openSessions(path string) (*store[sessionData], error) {
	return openStore(path, func(d *sessionData) {
		if d.Sessions == nil {
			d.Sessions = map[string]*session{}
		}
	})
}

// lookupSession returns the session of a temporary access key, nil if the
// key is not one the server issued.
func (f *Front) lookupSession(accessKey string) *session {
	var s *session
	f.sessions.view(func(d *sessionData) { s = d.Sessions[accessKey] })
	return s
}

// serveSTS answers an STS request.
func (f *Front) serveSTS(who caller, op string, r *http.Request) handler.Response {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return stsError(400, "MalformedInput", err.Error())
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return stsError(400, "MalformedInput", err.Error())
	}
	switch op {
	case "AssumeRole":
		return f.assumeRole(who, form)
	default:
		return f.getCallerIdentity(who)
	}
}

// getCallerIdentity answers the caller's account, ARN and user id: for an
// account's root user the account id, for an assumed-role session
// "AROA...:session" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#principaltable).
func (f *Front) getCallerIdentity(who caller) handler.Response {
	type result struct {
		Account, Arn, UserId string
	}
	res := result{Account: who.account, Arn: who.principal, UserId: who.account}
	if who.session != nil {
		res.UserId = who.session.AssumedRoleID
	}
	return stsResponse("GetCallerIdentity", who.requestID, res)
}

// sessionNamePattern is RoleSessionName's constraint.
var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// assumeRole issues temporary credentials for a configured role to a caller
// its trust policy allows. Untrusted callers, unknown roles and a wrong
// external id are all 403 AccessDenied "User: <caller> is not authorized to
// perform: sts:AssumeRole on resource: <role>", as AWS answers (e.g.
// https://github.com/amzn/selling-partner-api-models/issues/2523; an
// external id the role's trust policy asks for is a condition of it,
// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-user_externalid.html);
// an external id given for a role that has none is accepted
// (https://github.com/aws/aws-sdk-js/issues/3869). DurationSeconds is 900
// up to the role's maximum, and at most an hour for a session that assumes a
// role (role chaining), else 400 ValidationError (API reference above;
// https://github.com/kreuzwerker/awsu/issues/27 for the message).
func (f *Front) assumeRole(who caller, form url.Values) handler.Response {
	roleARN, name, externalID := form.Get("RoleArn"), form.Get("RoleSessionName"), form.Get("ExternalId")
	duration := 3600
	if v := form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return stsError(400, "ValidationError", "DurationSeconds must be a number: "+v)
		}
		duration = n
	}
	switch {
	case len(roleARN) < 20:
		return stsError(400, "ValidationError", "1 validation error detected: Value at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20")
	case !sessionNamePattern.MatchString(name):
		return stsError(400, "ValidationError", fmt.Sprintf("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", name))
	case duration < 900:
		return stsError(400, "ValidationError", fmt.Sprintf("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900", duration))
	case duration > 43200:
		return stsError(400, "ValidationError", fmt.Sprintf("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200", duration))
	}
	roles := f.policy.Load().cfg.Roles
	i := slices.IndexFunc(roles, func(r Role) bool { return r.ARN == roleARN })
	if i < 0 || !trusted(roles[i], who) || (roles[i].ExternalID != "" && roles[i].ExternalID != externalID) {
		return stsError(403, "AccessDenied", fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", who.principal, roleARN))
	}
	role := roles[i]
	switch {
	case time.Duration(duration)*time.Second > time.Duration(role.MaxSessionDuration):
		return stsError(400, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	case who.session != nil && duration > 3600:
		return stsError(400, "ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}

	parts := strings.SplitN(role.ARN, ":", 6)
	roleName := roleARNPattern.FindStringSubmatch(role.ARN)[1]
	s := &session{
		Account:        parts[4],
		RoleARN:        role.ARN,
		AssumedRoleARN: "arn:" + parts[1] + ":sts::" + parts[4] + ":assumed-role/" + roleName + "/" + name,
		AssumedRoleID:  uniqueID(role.ARN) + ":" + name,
		Expiration:     f.now().Add(time.Duration(duration) * time.Second).Truncate(time.Second),
	}
	// Temporary access key ids start with ASIA
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).
	accessKey := "ASIA" + randomString(10, base32.StdEncoding.EncodeToString)[:16]
	now := f.now()
	err := f.sessions.update(func(d *sessionData) bool {
		for key, old := range d.Sessions {
			if now.Sub(old.Expiration) > 24*time.Hour {
				delete(d.Sessions, key)
			}
		}
		d.Sessions[accessKey] = s
		return true
	})
	if err != nil {
		return stsError(500, "InternalFailure", err.Error())
	}
	type credentials struct {
		AccessKeyId, SecretAccessKey, SessionToken string
		Expiration                                 string
	}
	type assumedRoleUser struct{ Arn, AssumedRoleId string }
	return stsResponse("AssumeRole", who.requestID, struct {
		Credentials     credentials
		AssumedRoleUser assumedRoleUser
	}{
		credentials{accessKey, randomString(30, base64.StdEncoding.EncodeToString),
			randomString(192, base64.StdEncoding.EncodeToString), s.Expiration.UTC().Format(time.RFC3339)},
		assumedRoleUser{s.AssumedRoleARN, s.AssumedRoleID},
	})
}

// trusted reports whether a role's trust policy allows the caller: an
// account principal (its root ARN or id) stands for every principal of the
// account (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts),
// a role ARN for its sessions.
func trusted(role Role, who caller) bool {
	for _, p := range role.Trust {
		if account, ok := rootAccount(p); ok && account == who.account {
			return true
		}
		if p == who.principal || (who.session != nil && p == who.session.RoleARN) {
			return true
		}
	}
	return false
}

var rootPattern = regexp.MustCompile(`^(?:arn:aws[a-z-]*:iam::)?([0-9]{12})(?::root)?$`)

// rootAccount is the account of an account principal: its id, or its root
// user's ARN.
func rootAccount(principal string) (string, bool) {
	m := rootPattern.FindStringSubmatch(principal)
	if m == nil || (strings.HasPrefix(principal, "arn:") != strings.HasSuffix(principal, ":root")) {
		return "", false
	}
	return m[1], true
}

const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// stsResponse is the XML document of a successful answer:
// <OpResponse><OpResult>...</OpResult><ResponseMetadata>...</ResponseMetadata></OpResponse>.
func stsResponse(op, requestID string, result any) handler.Response {
	type metadata struct {
		RequestId string
	}
	doc := struct {
		XMLName  xml.Name
		Xmlns    string `xml:"xmlns,attr"`
		Result   any
		Metadata metadata `xml:"ResponseMetadata"`
	}{XMLName: xml.Name{Local: op + "Response"}, Xmlns: stsNamespace, Result: result, Metadata: metadata{requestID}}
	b, err := xml.Marshal(doc)
	if err != nil {
		return stsError(500, "InternalFailure", err.Error())
	}
	// The result element is named for the operation.
	body := strings.Replace(string(b), "<Result>", "<"+op+"Result>", 1)
	body = strings.Replace(body, "</Result>", "</"+op+"Result>", 1)
	return handler.Response{Code: 200, Body: body}
}

type stsErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string
		Code    string
		Message string
	}
}

// stsError is an STS error answer. The common errors that KMS names
// ...Exception are STS's plain codes: an expired session token is 403
// ExpiredToken (https://github.com/miquella/vaulted/issues/107,
// https://github.com/miasma-rb/miasma/issues/23 for the status).
func stsError(code int, errType, message string) handler.Response {
	if errType == errExpiredToken.code {
		code, errType = 403, "ExpiredToken"
	}
	e := stsErrorResponse{Xmlns: stsNamespace}
	e.Error.Type, e.Error.Code, e.Error.Message = "Sender", errType, message
	if code >= 500 {
		e.Error.Type = "Receiver"
	}
	b, _ := xml.Marshal(e)
	return handler.Response{Code: code, Body: string(b)}
}

// newUUID is a random (version 4) UUID, the form of AWS request ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
