package kmsclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// stsKMS answers STS AssumeRole and GetCallerIdentity (query protocol) and
// KMS DescribeKey, recording the access key of each KMS request; the first
// expired DescribeKey calls answer ExpiredTokenException.
type stsKMS struct {
	mu          sync.Mutex
	assumed     int
	denied      bool
	expired     int // DescribeKey calls still to answer ExpiredTokenException
	kmsKeys     []string
	externalIDs []string
}

func (s *stsKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		// Credential=<access key>/<date>/<region>/kms/aws4_request
		auth := r.Header.Get("Authorization")
		_, cred, _ := strings.Cut(auth, "Credential=")
		key, _, _ := strings.Cut(cred, "/")
		s.kmsKeys = append(s.kmsKeys, key)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if s.expired > 0 {
			s.expired--
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}`)
			return
		}
		_, _ = io.WriteString(w, keyMetadata)
		return
	}
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	w.Header().Set("Content-Type", "text/xml")
	switch form.Get("Action") {
	case "AssumeRole":
		if s.denied {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
			return
		}
		s.assumed++
		s.externalIDs = append(s.externalIDs, form.Get("ExternalId"))
		exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		fmt.Fprintf(w, `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIATEST%d</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::222233334444:assumed-role/kms-operator/op</Arn><AssumedRoleId>AROAX:op</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`, s.assumed, exp)
	case "GetCallerIdentity":
		_, _ = io.WriteString(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::222233334444:assumed-role/kms-operator/op</Arn><UserId>AROAX:op</UserId><Account>222233334444</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

func newAccountProvider(t *testing.T, srv *stsKMS) *SDKProvider {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAOPERATOR")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	p, err := NewProvider(context.Background(), ProviderOptions{Region: "us-east-1", Endpoint: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	p.SetAccount("payments", AccountConfig{RoleARN: "arn:aws:iam::222233334444:role/kms-operator", ExternalID: "ext-1",
		SessionName: "op", SessionDuration: time.Hour, KMSEndpoint: ts.URL, STSEndpoint: ts.URL})
	return p
}

// TestAccountCredentials: an AWSAccount's KMS calls are signed with the
// role's temporary credentials (with the external id), never the operator's
// own; an ExpiredTokenException drops them and the retry assumes the role
// again, so the call succeeds.
func TestAccountCredentials(t *testing.T) {
	srv := &stsKMS{expired: 1}
	p := newAccountProvider(t, srv)
	api, err := p.For("payments", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.DescribeKey(context.Background(), testID); err != nil {
		t.Fatalf("DescribeKey after an expired token: %v", err)
	}
	want := []string{"ASIATEST1", "ASIATEST2"}
	if fmt.Sprint(srv.kmsKeys) != fmt.Sprint(want) || srv.assumed != 2 || srv.externalIDs[0] != "ext-1" {
		t.Errorf("KMS requests signed with %v after %d AssumeRole calls (external ids %v); want %v after 2, ext-1",
			srv.kmsKeys, srv.assumed, srv.externalIDs, want)
	}
	if _, err := p.For("unknown", ""); err == nil {
		t.Error("an account never set up has a client")
	}
}

// TestVerifyAccount: verification assumes the role afresh and reports the
// account STS names; a role that can no longer be assumed fails it, as
// AccessDenied, even while cached credentials would still work.
func TestVerifyAccount(t *testing.T) {
	srv := &stsKMS{}
	p := newAccountProvider(t, srv)
	id, err := p.VerifyAccount(context.Background(), "payments")
	if err != nil {
		t.Fatal(err)
	}
	if id.AccountID != "222233334444" || time.Until(id.Expires) < 50*time.Minute {
		t.Errorf("identity %+v, want account 222233334444 expiring in about an hour", id)
	}
	srv.mu.Lock()
	srv.denied = true
	srv.mu.Unlock()
	if _, err := p.VerifyAccount(context.Background(), "payments"); ClassOf(err) != AccessDenied {
		t.Errorf("verify with the trust broken: %v (class %v), want AccessDenied", err, ClassOf(err))
	}
}
