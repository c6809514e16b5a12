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
}

// authError is an answer to a request whose credential cannot be used,
// in the form of AWS's common errors
// (https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html).
type authError struct{ code, message string }

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
		return "", "", &authError{"IncompleteSignatureException", "Authorization header requires a Credential=<access key>/<date>/<region>/<service>/aws4_request parameter."}
	}
	if !regionPattern.MatchString(parts[2]) {
		return "", "", &authError{"InvalidSignatureException", "Credential should be scoped to a valid region."}
	}
	return parts[0], parts[2], nil
}

// identity returns the account and principal a request is signed as. An
// access key listed in the configuration's accessKeys belongs to that
// account; any other key to the default account, so that setups signing
// with any key (AWS_ACCESS_KEY_ID=local) keep working. The caller is the
// account's root user. Phase 2 (STS) adds temporary keys to the table this
// looks up, with the principal they were issued to.
func (f *Front) identity(r *http.Request) (account, principalARN string, err error) {
	accessKey, region, err := credential(r)
	if err != nil {
		return "", "", err
	}
	account = f.defaultAccount
	if a, ok := f.policy.Load().cfg.AccessKeys[accessKey]; ok {
		account = a
	}
	if region == "" {
		region = f.defaultRegion
	}
	return account, "arn:" + partitionOf(region) + ":iam::" + account + ":root", nil
}

// caller identifies a request's tenant and principal. The region is the
// credential scope's, or the default region for an unsigned request.
func (f *Front) caller(r *http.Request) (caller, error) {
	c := caller{account: f.defaultAccount, region: f.defaultRegion}
	accessKey, region, err := credential(r)
	if err != nil {
		return c, err
	}
	account, principal, err := f.identity(r)
	if err != nil {
		return c, err
	}
	c.account, c.principal, c.accessKey = account, principal, accessKey
	if region != "" {
		c.region = region
	}
	return c, nil
}
