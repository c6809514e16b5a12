package kmsclient

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestQuotas(t *testing.T) {
	cases := map[string]struct {
		reason    string
		share     float64
		overrides map[string]float64
		want      map[string]float64
	}{
		"Share": {
			reason: "every default quota is scaled by the share",
			share:  0.5,
			want:   map[string]float64{"CreateKey": 2.5, "DescribeKey": 1000},
		},
		"Override": {
			reason:    "an override is the operation's own number, not scaled",
			share:     0.5,
			overrides: map[string]float64{"CreateKey": 20, "Encrypt": 100},
			want:      map[string]float64{"CreateKey": 20, "DescribeKey": 1000, "Encrypt": 100},
		},
	}
	base := map[string]float64{"CreateKey": 5, "DescribeKey": 2000}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Quotas(base, tc.share, tc.overrides)); diff != "" {
				t.Errorf("%s: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestAppliedQuotas: the account's applied KMS quotas are read from Service
// Quotas by name ("CreateKey request rate"), and the pacing follows them times
// the share; overrides win; other services' or operations' quotas are ignored.
func TestAppliedQuotas(t *testing.T) {
	page := func(next string, quotas ...string) reply {
		body := `{"Quotas":[` + strings.Join(quotas, ",") + `]`
		if next != "" {
			body += `,"NextToken":"` + next + `"`
		}
		return reply{body: body + `}`}
	}
	quota := func(name string, v float64) string {
		return fmt.Sprintf(`{"ServiceCode":"kms","QuotaName":%q,"QuotaCode":"L-1","Value":%g}`, name, v)
	}
	srv := &kmsServer{t: t, replies: map[string][]reply{"ListServiceQuotas": {
		page("p2", quota("CreateKey request rate", 20), quota("Cryptographic operations (symmetric) request rate", 50000)),
		page("", quota("DescribeKey request rate", 3000), quota("NoSuchOperation request rate", 1)),
	}}}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	c := servicequotas.New(servicequotas.Options{Credentials: aws.AnonymousCredentials{}, Region: "us-east-1", BaseEndpoint: aws.String(ts.URL)})
	applied, err := appliedQuotas(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]float64{"CreateKey": 20, "DescribeKey": 3000}, applied); diff != "" {
		t.Errorf("applied quotas, -want +got:\n%s", diff)
	}
	paced := Pacing{Share: 0.5, Overrides: map[string]float64{"DescribeKey": 100}}.pace(applied)
	got := map[string]float64{"CreateKey": paced["CreateKey"], "DescribeKey": paced["DescribeKey"], "CreateGrant": paced["CreateGrant"]}
	if diff := cmp.Diff(map[string]float64{"CreateKey": 10, "DescribeKey": 100, "CreateGrant": 25}, got); diff != "" {
		t.Errorf("pace: half the applied quota, the override as it is, half the default where none was read; -want +got:\n%s", diff)
	}
}

// TestNonIdempotentCallsAreNotRetried: a CreateKey (or RotateKeyOnDemand)
// that failed may have taken effect; only the reconciler, which can look for
// the key by its tags, may try again. Idempotent calls are retried.
func TestNonIdempotentCallsAreNotRetried(t *testing.T) {
	internal := reply{status: http.StatusInternalServerError, body: `{"__type":"KMSInternalException","message":"boom"}`}
	cases := map[string]struct {
		reason string
		call   func(c *sdkClient) error
		op     string
		want   int
	}{
		"CreateKey": {
			reason: "a lost CreateKey response must not become a second key",
			call: func(c *sdkClient) error {
				_, err := c.CreateKey(context.Background(), CreateKeyInput{KeySpec: "SYMMETRIC_DEFAULT"})
				return err
			},
			op: "CreateKey", want: 1,
		},
		"RotateKeyOnDemand": {
			reason: "a retried on-demand rotation would rotate twice and spend the key's limited rotations",
			call:   func(c *sdkClient) error { return c.RotateOnDemand(context.Background(), testID) },
			op:     "RotateKeyOnDemand", want: 1,
		},
		"DescribeKey": {
			reason: "reads are retried by the SDK (three attempts)",
			call: func(c *sdkClient) error {
				_, err := c.DescribeKey(context.Background(), testID)
				return err
			},
			op: "DescribeKey", want: 3,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, srv, _ := newTestClient(t, map[string][]reply{tc.op: {internal, internal, internal}})
			if err := tc.call(c); ClassOf(err) != Transient {
				t.Fatalf("got %v, want a transient error", err)
			}
			if got := len(srv.requests); got != tc.want {
				t.Errorf("%s: %d attempts, want %d", tc.reason, got, tc.want)
			}
		})
	}
}

// TestLimiterPaces: requests beyond an operation's quota wait their turn
// instead of being sent (and throttled), and other operations do not wait
// behind them.
func TestLimiterPaces(t *testing.T) {
	describe := reply{body: keyMetadata}
	c, _, reg := newPacedTestClient(t, map[string][]reply{
		"DescribeKey":      {describe, describe, describe, describe, describe},
		"ListResourceTags": {{body: `{"Tags":[]}`}, {body: `{"Tags":[]}`}},
	}, map[string]float64{"DescribeKey": 20})
	for range 5 {
		if _, err := c.DescribeKey(context.Background(), testID); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := c.ListTags(context.Background(), testID); err != nil {
			t.Fatal(err)
		}
	}
	if n := testutil.CollectAndCount(reg, "kms_operator_kms_ratelimit_wait_seconds"); n != 1 {
		t.Errorf("wait histogram has %d series, want 1: only the paced operation waits", n)
	}
	// Five requests at 20/s with a burst of one are spread over at least
	// four intervals of 50 ms.
	var waited float64
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "kms_operator_kms_ratelimit_wait_seconds" {
			waited = mf.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	if waited < 0.15 {
		t.Errorf("5 DescribeKey calls at 20/s waited %.3fs in all, want at least 0.15s", waited)
	}
}

// TestPerWindow: a pace puts at most floor(n) requests in any one-second
// window, so that shards whose shares add up to a quota never exceed it
// together, and stays within 2% of n when n is whole.
func TestPerWindow(t *testing.T) {
	tests := []struct {
		pace      float64
		maxWindow int // most requests allowed in any one-second window
	}{
		{pace: 5, maxWindow: 5},
		{pace: 4, maxWindow: 4},   // 5 x share 0.8
		{pace: 2.5, maxWindow: 2}, // 5 x share 0.5: two shards stay at 4 <= 5
		{pace: 16, maxWindow: 16}, // a raised quota of 20 x 0.8
		{pace: 0.8, maxWindow: 1}, // GetParametersForImport 1 x 0.8
		{pace: 1600, maxWindow: 1600},
	}
	for _, tc := range tests {
		r := float64(perWindow(tc.pace))
		// Evenly spaced at r a second, a window holds ceil(r) requests at most.
		if inWindow := int(math.Ceil(r)); inWindow > tc.maxWindow {
			t.Errorf("perWindow(%v) = %v/s: %d requests in a window, want <= %d", tc.pace, r, inWindow, tc.maxWindow)
		}
		if want := max(1, math.Floor(tc.pace)); tc.pace >= 1 && r < want*0.97 {
			t.Errorf("perWindow(%v) = %v/s, want within 3%% of %v", tc.pace, r, want)
		}
	}
}

// TestFindKeys: one GetResources call per page, filtered by every tag (in
// a stable order) and by the KMS key type; ids come from the ARNs.
func TestFindKeys(t *testing.T) {
	page1 := reply{body: `{"PaginationToken":"p2","ResourceTagMappingList":[{"ResourceARN":"` + testARN + `","Tags":[{"Key":"owner","Value":"me"},{"Key":"team","Value":"a"}]}]}`}
	page2 := reply{body: `{"PaginationToken":"","ResourceTagMappingList":[{"ResourceARN":"arn:aws:kms:eu-west-1:111122223333:key/mrk-1","Tags":[{"Key":"owner","Value":"me"},{"Key":"team","Value":"a"}]}]}`}
	c, srv, _ := newTestClient(t, map[string][]reply{"GetResources": {page1, page2}})
	got, err := c.FindKeys(context.Background(), map[string]string{"team": "a", "owner": "me"})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{"owner": "me", "team": "a"}
	want := []TaggedKey{{ID: testID, ARN: testARN, Tags: tags}, {ID: "mrk-1", ARN: "arn:aws:kms:eu-west-1:111122223333:key/mrk-1", Tags: tags}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys, -want +got:\n%s", diff)
	}
	filters := []any{map[string]any{"Key": "owner", "Values": []any{"me"}}, map[string]any{"Key": "team", "Values": []any{"a"}}}
	wantRequests := []request{
		{"GetResources", map[string]any{"ResourceTypeFilters": []any{"kms:key"}, "TagFilters": filters}},
		{"GetResources", map[string]any{"ResourceTypeFilters": []any{"kms:key"}, "TagFilters": filters, "PaginationToken": "p2"}},
	}
	if diff := cmp.Diff(wantRequests, srv.requests); diff != "" {
		t.Errorf("requests, -want +got:\n%s", diff)
	}
}
