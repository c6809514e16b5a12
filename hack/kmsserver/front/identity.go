package front

// Who is calling, from the request's SigV4 Authorization header
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html):
//
//	AWS4-HMAC-SHA256 Credential=AKID/20261130/eu-west-1/kms/aws4_request, SignedHeaders=..., Signature=...
//
// The signature is not checked: this is a test server.

import (
	"net/http"
	"strings"
)

// caller is the identity and tenant of a request.
type caller struct {
	account, region string
	accessKey       string
	principal       string
	// session is the STS session of a temporary access key, nil for
	// others.
	session *session
	// requestID is the id of the request's answer.
	requestID string
}

// authError is an answer to a request whose credential cannot be used,
// in the form of AWS's common errors
// (https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html).
type authError struct {
	status        int
	code, message string
}

func (e *authError) Error() string { return e.code + ": " + e.message }

// credential returns the access key id and region of the request's
// credential scope; both are "" when the request is not signed.
func credential(r *http.Request) (accessKey, region string, err error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return "", "", nil
	}
	_, rest, ok := strings.Cut(auth, "Credential=")
	scope, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(strings.TrimSpace(scope), "/")
	if !ok || len(parts) != 5 || parts[0] == "" {
		return "", "", &authError{400, "IncompleteSignatureException", "Authorization header requires a Credential=<access key>/<date>/<region>/<service>/aws4_request parameter."}
	}
	if !regionPattern.MatchString(parts[2]) {
		return "", "", &authError{400, "InvalidSignatureException", "Credential should be scoped to a valid region."}
	}
	return parts[0], parts[2], nil
}

// errExpiredToken is what a request signed with an expired temporary
// access key gets from KMS: 400 ExpiredTokenException "The security token
// included in the request is expired" (https://github.com/boto/boto3/issues/1127,
// https://github.com/getsops/sops/issues/621 for the status); STS answers
// it as ExpiredToken (see stsError).
var errExpiredToken = &authError{400, "ExpiredTokenException", "The security token included in the request is expired"}

// caller identifies a request's tenant and principal. The region is the
// credential scope's, or the default region for an unsigned request. A
// temporary access key that AssumeRole issued acts in its role's account as
// the assumed-role session until it expires by the server's clock; an access
// key listed in the configuration's accessKeys belongs to that account; any
// other key to the default account, so that setups signing with any key
// (AWS_ACCESS_KEY_ID=local) keep working. Those two are the account's root
// user.
func (f *Front) caller(r *http.Request) (caller, error) {
	c := caller{account: f.defaultAccount, region: f.defaultRegion}
	accessKey, region, err := credential(r)
	if err != nil {
		return c, err
	}
	c.accessKey = accessKey
	if region != "" {
		c.region = region
	}
	if s := f.lookupSession(accessKey); s != nil {
		c.account, c.principal = s.Account, s.AssumedRoleARN
		if !f.now().Before(s.Expiration) {
			return c, errExpiredToken
		}
		c.session = s
		return c, nil
	}
	if a, ok := f.policy.Load().cfg.AccessKeys[accessKey]; ok {
		c.account = a
	}
	c.principal = "arn:" + partitionOf(c.region) + ":iam::" + c.account + ":root"
	return c, nil
}
