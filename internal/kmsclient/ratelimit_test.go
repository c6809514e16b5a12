package kmsclient

import (
	"context"
	"net/http"
	"testing"

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
