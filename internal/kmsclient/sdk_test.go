package kmsclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// reply is a canned KMS answer; status 0 is 200.
type reply struct {
	status int
	body   string
	header map[string]string
}

// request is what the test server received: the operation and its JSON body.
type request struct {
	Op   string
	Body map[string]any
}

// kmsServer answers AWS JSON 1.1 requests by X-Amz-Target from per-operation
// queues of replies, and records every request.
type kmsServer struct {
	t          *testing.T
	mu         sync.Mutex
	replies    map[string][]reply
	requests   []request
	userAgents []string
}

func (s *kmsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// "TrentService.CreateKey", "ResourceGroupsTaggingAPI_20170126.GetResources".
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		s.t.Errorf("%s: request body %q: %v", op, raw, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, request{op, body})
	s.userAgents = append(s.userAgents, r.Header.Get("User-Agent"))
	q := s.replies[op]
	if len(q) == 0 {
		s.t.Errorf("unexpected call to %s", op)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.replies[op] = q[1:]
	w.Header().Set("X-Amzn-RequestId", fmt.Sprintf("req-%d", len(s.requests)))
	status := q[0].status
	if status == 0 {
		status = http.StatusOK
	}
	for k, v := range q[0].header {
		w.Header().Set(k, v)
	}
	if strings.HasPrefix(q[0].body, "{") {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	} else {
		w.Header().Set("Content-Type", "text/plain")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, q[0].body)
}

// newTestClient returns a client of the test server and the registry holding
// its metrics. Retries are immediate so throttling tests stay fast.
func newTestClient(t *testing.T, replies map[string][]reply) (*sdkClient, *kmsServer, *prometheus.Registry) {
	t.Helper()
	return newPacedTestClient(t, replies, nil)
}

// newPacedTestClient is newTestClient with the client-side rate limiter set
// to quotas.
func newPacedTestClient(t *testing.T, replies map[string][]reply, quotas map[string]float64) (*sdkClient, *kmsServer, *prometheus.Registry) {
	t.Helper()
	srv := &kmsServer{t: t, replies: replies}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := newLimiterMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	l := newLimiter("", "us-east-1", lm)
	l.set(quotas)
	count := m.addTo("", "us-east-1")
	client := kms.New(kms.Options{
		Credentials: aws.AnonymousCredentials{},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	}, clientOptions("us-east-1", ts.URL, count, l))
	tagging := resourcegroupstaggingapi.New(resourcegroupstaggingapi.Options{Credentials: aws.AnonymousCredentials{}},
		taggingOptions("us-east-1", ts.URL, count, l))
	return &sdkClient{kms: client, tagging: tagging}, srv, reg
}

const (
	testARN      = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	testID       = "1234abcd-12ab-34cd-56ef-1234567890ab"
	keyMetadata  = `{"KeyMetadata":{"KeyId":"` + testID + `","Arn":"` + testARN + `","Description":"d","KeySpec":"SYMMETRIC_DEFAULT","KeyUsage":"ENCRYPT_DECRYPT","Origin":"AWS_KMS","MultiRegion":true,"KeyState":"PendingDeletion","CreationDate":1.7e9,"DeletionDate":1700604800,"Enabled":false}}`
	notFound     = `{"__type":"NotFoundException","message":"Alias arn:aws:kms:eu-west-1:111122223333:alias/x is not found."}`
	grantToken   = "AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2I1MWM4Mzc0MWFiYjc0ZDE1ODkyNGFlNTIzODZhMzgyZjBlNGY3NiKIAgEBAgB4Pa6VDCWW"
	grantEntries = `"Grants":[{"GrantId":"g1","KeyId":"` + testARN + `","Name":"n","GranteePrincipal":"arn:aws:iam::111122223333:role/r","Operations":["Decrypt","Encrypt"],"Constraints":{"EncryptionContextSubset":{"app":"x"}}}]`
)

func TestSDKClient(t *testing.T) {
	ctx := context.Background()
	created := time.Unix(1.7e9, 0)
	deleted := time.Unix(1700604800, 0)
	cases := map[string]struct {
		reason       string
		replies      map[string][]reply
		call         func(c *sdkClient) (any, error)
		want         any
		wantClass    string
		wantRequests []request
	}{
		"DescribeKey": {
			reason:  "KeyMetadata maps onto Key: state, dates, MultiRegion and Description pointers.",
			replies: map[string][]reply{"DescribeKey": {{body: keyMetadata}}},
			call:    func(c *sdkClient) (any, error) { return c.DescribeKey(ctx, testID) },
			want: &Key{ID: testID, ARN: testARN, Description: "d", KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT",
				Origin: "AWS_KMS", MultiRegion: true, State: "PendingDeletion", CreationDate: created, DeletionDate: &deleted},
			wantRequests: []request{{"DescribeKey", map[string]any{"KeyId": testID}}},
		},
		"GetAlias": {
			reason:       "GetAlias is one DescribeKey of the alias name; the alias ARN shares the key ARN's partition, region and account.",
			replies:      map[string][]reply{"DescribeKey": {{body: keyMetadata}}},
			call:         func(c *sdkClient) (any, error) { return c.GetAlias(ctx, "alias/app/x") },
			want:         &Alias{Name: "alias/app/x", ARN: "arn:aws:kms:eu-west-1:111122223333:alias/app/x", TargetKeyID: testID},
			wantRequests: []request{{"DescribeKey", map[string]any{"KeyId": "alias/app/x"}}},
		},
		"GetAliasNotFound": {
			reason:       "A missing alias is NotFound.",
			replies:      map[string][]reply{"DescribeKey": {{status: 400, body: notFound}}},
			call:         func(c *sdkClient) (any, error) { return c.GetAlias(ctx, "alias/x") },
			want:         (*Alias)(nil),
			wantClass:    "NotFound",
			wantRequests: []request{{"DescribeKey", map[string]any{"KeyId": "alias/x"}}},
		},
		"GetAliasOfKeyID": {
			reason:    "A key id is not an alias name: Invalid, and no call.",
			call:      func(c *sdkClient) (any, error) { return c.GetAlias(ctx, testID) },
			want:      (*Alias)(nil),
			wantClass: "Invalid",
		},
		"CreateKey": {
			reason:  "CreateKey sends what is set, tags sorted by key, and no policy when KMS should apply its default.",
			replies: map[string][]reply{"CreateKey": {{body: keyMetadata}}},
			call: func(c *sdkClient) (any, error) {
				k, err := c.CreateKey(ctx, CreateKeyInput{KeySpec: "SYMMETRIC_DEFAULT", MultiRegion: true, Tags: map[string]string{"b": "2", "a": "1"}})
				return k != nil, err
			},
			want: true,
			wantRequests: []request{{"CreateKey", map[string]any{
				"KeySpec": "SYMMETRIC_DEFAULT", "MultiRegion": true,
				"Tags": []any{map[string]any{"TagKey": "a", "TagValue": "1"}, map[string]any{"TagKey": "b", "TagValue": "2"}},
			}}},
		},
		"KeyPolicyName": {
			reason:  `GetKeyPolicy and PutKeyPolicy always name the "default" policy, which local-kms requires.`,
			replies: map[string][]reply{"GetKeyPolicy": {{body: `{"Policy":"{}","PolicyName":"default"}`}}, "PutKeyPolicy": {{body: `{}`}}},
			call: func(c *sdkClient) (any, error) {
				p, err := c.GetKeyPolicy(ctx, testID)
				if err != nil {
					return nil, err
				}
				return p, c.PutKeyPolicy(ctx, testID, `{"Statement":[]}`, true)
			},
			want: "{}",
			wantRequests: []request{
				{"GetKeyPolicy", map[string]any{"KeyId": testID, "PolicyName": "default"}},
				{"PutKeyPolicy", map[string]any{"KeyId": testID, "PolicyName": "default", "Policy": `{"Statement":[]}`, "BypassPolicyLockoutSafetyCheck": true}},
			},
		},
		"Rotation": {
			reason:  "EnableRotation sends the period; GetRotation maps the status.",
			replies: map[string][]reply{"EnableKeyRotation": {{body: `{}`}}, "GetKeyRotationStatus": {{body: `{"KeyRotationEnabled":true,"RotationPeriodInDays":90,"NextRotationDate":1.7e9}`}}},
			call: func(c *sdkClient) (any, error) {
				if err := c.EnableRotation(ctx, testID, 90); err != nil {
					return nil, err
				}
				return c.GetRotation(ctx, testID)
			},
			want: &Rotation{Enabled: true, PeriodInDays: 90, NextRotationDate: &created},
			wantRequests: []request{
				{"EnableKeyRotation", map[string]any{"KeyId": testID, "RotationPeriodInDays": 90.0}},
				{"GetKeyRotationStatus", map[string]any{"KeyId": testID}},
			},
		},
		"ScheduleDeletion": {
			reason:       "ScheduleDeletion returns KMS's deletion date.",
			replies:      map[string][]reply{"ScheduleKeyDeletion": {{body: `{"KeyId":"` + testARN + `","DeletionDate":1700604800,"KeyState":"PendingDeletion","PendingWindowInDays":7}`}}},
			call:         func(c *sdkClient) (any, error) { return c.ScheduleDeletion(ctx, testID, 7) },
			want:         &Deletion{State: "PendingDeletion", Date: &deleted},
			wantRequests: []request{{"ScheduleKeyDeletion", map[string]any{"KeyId": testID, "PendingWindowInDays": 7.0}}},
		},
		"CreateGrant": {
			reason:  "CreateGrant returns the grant id and drops the token.",
			replies: map[string][]reply{"CreateGrant": {{body: `{"GrantId":"g1","GrantToken":"` + grantToken + `"}`}}},
			call: func(c *sdkClient) (any, error) {
				return c.CreateGrant(ctx, GrantInput{KeyID: testID, Name: "n", GranteePrincipal: "p", Operations: []string{"Decrypt"},
					EncryptionContextEquals: map[string]string{"app": "x"}})
			},
			want: "g1",
			wantRequests: []request{{"CreateGrant", map[string]any{"KeyId": testID, "Name": "n", "GranteePrincipal": "p",
				"Operations": []any{"Decrypt"}, "Constraints": map[string]any{"EncryptionContextEquals": map[string]any{"app": "x"}}}}},
		},
		"CreateGrantToService": {
			reason:  "A grant to a service principal sends it, the retiring service principal and the SourceArn constraint, and no empty principal ARN.",
			replies: map[string][]reply{"CreateGrant": {{body: `{"GrantId":"g1","GrantToken":"` + grantToken + `"}`}}},
			call: func(c *sdkClient) (any, error) {
				return c.CreateGrant(ctx, GrantInput{KeyID: testID, GranteeServicePrincipal: "logs.amazonaws.com",
					RetiringServicePrincipal: "logs.amazonaws.com", Operations: []string{"Encrypt"}, SourceARN: "arn:aws:logs:eu-west-1:111122223333:log-group:x"})
			},
			want: "g1",
			wantRequests: []request{{"CreateGrant", map[string]any{"KeyId": testID, "GranteeServicePrincipal": "logs.amazonaws.com",
				"RetiringServicePrincipal": "logs.amazonaws.com", "Operations": []any{"Encrypt"},
				"Constraints": map[string]any{"SourceArn": "arn:aws:logs:eu-west-1:111122223333:log-group:x"}}}},
		},
		"ListGrantsOfServices": {
			reason: "ListGrants maps the service principals and the SourceArn constraint.",
			replies: map[string][]reply{"ListGrants": {{body: `{"Grants":[{"GrantId":"g1","KeyId":"` + testARN +
				`","GranteeServicePrincipal":"logs.amazonaws.com","RetiringServicePrincipal":"logs.amazonaws.com","Operations":["Encrypt"],` +
				`"Constraints":{"SourceArn":"arn:aws:logs:eu-west-1:111122223333:log-group:x"}}],"Truncated":false}`}}},
			call: func(c *sdkClient) (any, error) { return c.ListGrants(ctx, testID) },
			want: []Grant{{GrantID: "g1", KeyID: testARN, GranteeServicePrincipal: "logs.amazonaws.com", RetiringServicePrincipal: "logs.amazonaws.com",
				Operations: []string{"Encrypt"}, SourceARN: "arn:aws:logs:eu-west-1:111122223333:log-group:x"}},
			wantRequests: []request{{"ListGrants", map[string]any{"KeyId": testID, "Limit": float64(100)}}},
		},
		"GetKeyLastUsage": {
			reason: "GetKeyLastUsage maps the last use and the tracking start, and KMS's clock from the Date header.",
			replies: map[string][]reply{"GetKeyLastUsage": {{
				body: `{"KeyId":"` + testID + `","KeyCreationDate":1.7e9,"TrackingStartDate":1700000001,` +
					`"KeyLastUsage":{"Operation":"Decrypt","Timestamp":1700604800,"KmsRequestId":"r","CloudTrailEventId":"e"}}`,
				header: map[string]string{"Date": "Wed, 22 Nov 2023 12:00:00 GMT"},
			}}},
			call: func(c *sdkClient) (any, error) { return c.GetKeyLastUsage(ctx, testID) },
			want: &LastUsage{Operation: "Decrypt", Time: &deleted, CloudTrailEventID: "e", TrackingStart: time.Unix(1700000001, 0),
				KeyCreation: created, At: time.Date(2023, 11, 22, 12, 0, 0, 0, time.UTC)},
			wantRequests: []request{{"GetKeyLastUsage", map[string]any{"KeyId": testID}}},
		},
		"GetKeyLastUsageUnused": {
			reason: "An empty KeyLastUsage object is no use.",
			replies: map[string][]reply{"GetKeyLastUsage": {{
				body:   `{"KeyId":"` + testID + `","KeyCreationDate":1.7e9,"TrackingStartDate":1.7e9,"KeyLastUsage":{}}`,
				header: map[string]string{"Date": "Wed, 22 Nov 2023 12:00:00 GMT"},
			}}},
			call:         func(c *sdkClient) (any, error) { return c.GetKeyLastUsage(ctx, testID) },
			want:         &LastUsage{TrackingStart: created, KeyCreation: created, At: time.Date(2023, 11, 22, 12, 0, 0, 0, time.UTC)},
			wantRequests: []request{{"GetKeyLastUsage", map[string]any{"KeyId": testID}}},
		},
		"CreateGrantGarbledResponse": {
			reason:  "An undecodable CreateGrant response is an error that does not carry the token.",
			replies: map[string][]reply{"CreateGrant": {{body: `{"GrantId":1,"GrantToken":"` + grantToken + `"`}}},
			call: func(c *sdkClient) (any, error) {
				return c.CreateGrant(ctx, GrantInput{KeyID: testID, GranteePrincipal: "p", Operations: []string{"Decrypt"}})
			},
			want:         "",
			wantClass:    "Transient",
			wantRequests: []request{{"CreateGrant", map[string]any{"KeyId": testID, "GranteePrincipal": "p", "Operations": []any{"Decrypt"}}}},
		},
		"ListTagsPages": {
			reason: "ListTags follows NextMarker through every page.",
			replies: map[string][]reply{"ListResourceTags": {
				{body: `{"Tags":[{"TagKey":"a","TagValue":"1"}],"Truncated":true,"NextMarker":"m1"}`},
				{body: `{"Tags":[{"TagKey":"b","TagValue":"2"}],"Truncated":false}`},
			}},
			call: func(c *sdkClient) (any, error) { return c.ListTags(ctx, testID) },
			want: map[string]string{"a": "1", "b": "2"},
			wantRequests: []request{
				{"ListResourceTags", map[string]any{"KeyId": testID}},
				{"ListResourceTags", map[string]any{"KeyId": testID, "Marker": "m1"}},
			},
		},
		"ListGrantsPages": {
			reason: "ListGrants follows NextMarker and maps constraints.",
			replies: map[string][]reply{"ListGrants": {
				{body: `{` + grantEntries + `,"Truncated":true,"NextMarker":"m1"}`},
				{body: `{"Grants":[{"GrantId":"g2","KeyId":"` + testARN + `","GranteePrincipal":"p","Operations":["Sign"]}],"Truncated":false}`},
			}},
			call: func(c *sdkClient) (any, error) { return c.ListGrants(ctx, testID) },
			want: []Grant{
				{GrantID: "g1", KeyID: testARN, Name: "n", GranteePrincipal: "arn:aws:iam::111122223333:role/r",
					Operations: []string{"Decrypt", "Encrypt"}, EncryptionContextSubset: map[string]string{"app": "x"}},
				{GrantID: "g2", KeyID: testARN, GranteePrincipal: "p", Operations: []string{"Sign"}},
			},
			wantRequests: []request{
				{"ListGrants", map[string]any{"KeyId": testID, "Limit": float64(100)}},
				{"ListGrants", map[string]any{"KeyId": testID, "Limit": float64(100), "Marker": "m1"}},
			},
		},
		"ListKeyRotations": {
			reason: "ListKeyRotations pages through the completed rotations.",
			replies: map[string][]reply{"ListKeyRotations": {
				{body: `{"Rotations":[{"KeyId":"` + testARN + `","RotationDate":1700000000,"RotationType":"ON_DEMAND"}],"Truncated":true,"NextMarker":"m1"}`},
				{body: `{"Rotations":[{"KeyId":"` + testARN + `","RotationDate":1700100000,"RotationType":"AUTOMATIC"}],"Truncated":false}`},
			}},
			call: func(c *sdkClient) (any, error) { return c.ListKeyRotations(ctx, testID) },
			want: []KeyRotation{{Date: time.Unix(1700000000, 0), Type: "ON_DEMAND"}, {Date: time.Unix(1700100000, 0), Type: "AUTOMATIC"}},
			wantRequests: []request{
				{"ListKeyRotations", map[string]any{"KeyId": testID}},
				{"ListKeyRotations", map[string]any{"KeyId": testID, "Marker": "m1"}},
			},
		},
		"ScheduleDeletionWithoutDate": {
			reason:       "A multi-Region primary with replicas is PendingReplicaDeletion with no date: none is made up.",
			replies:      map[string][]reply{"ScheduleKeyDeletion": {{body: `{"KeyId":"` + testARN + `","KeyState":"PendingReplicaDeletion","PendingWindowInDays":7}`}}},
			call:         func(c *sdkClient) (any, error) { return c.ScheduleDeletion(ctx, testID, 7) },
			want:         &Deletion{State: "PendingReplicaDeletion"},
			wantRequests: []request{{"ScheduleKeyDeletion", map[string]any{"KeyId": testID, "PendingWindowInDays": 7.0}}},
		},
		"NotImplemented": {
			reason:       "An emulator's plain-text 501 is Invalid, not retried.",
			replies:      map[string][]reply{"RotateKeyOnDemand": {{status: 501, body: "not implemented"}}},
			call:         func(c *sdkClient) (any, error) { return nil, c.RotateOnDemand(ctx, testID) },
			want:         nil,
			wantClass:    "Invalid",
			wantRequests: []request{{"RotateKeyOnDemand", map[string]any{"KeyId": testID}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, srv, _ := newTestClient(t, tc.replies)
			got, err := tc.call(c)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
			gotClass := ""
			if err != nil {
				gotClass = ClassOf(err).String()
				if strings.Contains(err.Error(), grantToken[:20]) {
					t.Errorf("error leaks the grant token: %v", err)
				}
			}
			if gotClass != tc.wantClass {
				t.Errorf("%s\nerror class: want %q, got %q (%v)", tc.reason, tc.wantClass, gotClass, err)
			}
			if diff := cmp.Diff(tc.wantRequests, srv.requests); diff != "" {
				t.Errorf("%s\nrequests -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestMetricsCountAttempts(t *testing.T) {
	throttled := reply{status: 400, body: `{"__type":"ThrottlingException","message":"Rate exceeded"}`}
	c, _, reg := newTestClient(t, map[string][]reply{
		"DescribeKey": {throttled, {body: keyMetadata}, {status: 400, body: notFound}},
	})
	if _, err := c.DescribeKey(context.Background(), testID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeKey(context.Background(), "alias/x"); !IsNotFound(err) {
		t.Fatalf("want NotFound, got %v", err)
	}
	const want = `
# HELP kms_operator_kms_requests_total KMS request attempts (retries included) by account, region, operation and result.
# TYPE kms_operator_kms_requests_total counter
kms_operator_kms_requests_total{account="",operation="DescribeKey",region="us-east-1",result="not_found"} 1
kms_operator_kms_requests_total{account="",operation="DescribeKey",region="us-east-1",result="success"} 1
kms_operator_kms_requests_total{account="",operation="DescribeKey",region="us-east-1",result="throttled"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kms_operator_kms_requests_total"); err != nil {
		t.Errorf("every attempt, the throttled retry included, is counted by result:\n%v", err)
	}
	if n := testutil.CollectAndCount(reg, "kms_operator_kms_request_duration_seconds"); n != 1 {
		t.Errorf("want one latency series for DescribeKey, got %d", n)
	}
}

func TestNewMetricsSharesRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newMetrics(reg)
	if err != nil {
		t.Fatalf("a second provider on the same registry must reuse the collectors: %v", err)
	}
	if a.requests != b.requests {
		t.Error("second provider got its own, unregistered counter")
	}
}
