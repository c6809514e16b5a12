package kmsclient

import (
	"context"
	"net/http"
	"testing"
	"time"

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

// TestFindKeysByTagReadsEachKeyOnce: a key's tags are read once when they
// hold the searched tag (the owner UID, fixed at creation), and otherwise
// until they are settled (tagSettle after the key was first listed: a new key
// may be listed before its tags can be read). A key whose tags cannot be read
// does not stop the scan: a match is still found, and absence is only
// reported once every key was read.
func TestFindKeysByTagReadsEachKeyOnce(t *testing.T) {
	keys := func(ids ...string) reply {
		body := `{"Keys":[`
		for i, id := range ids {
			if i > 0 {
				body += ","
			}
			body += `{"KeyId":"` + id + `"}`
		}
		return reply{body: body + `],"Truncated":false}`}
	}
	owned := reply{body: `{"Tags":[{"TagKey":"owner","TagValue":"me"}]}`}
	none := reply{body: `{"Tags":[]}`}
	internal := reply{status: http.StatusInternalServerError, body: `{"__type":"KMSInternalException","message":"boom"}`}
	c, srv, _ := newTestClient(t, map[string][]reply{
		"ListKeys": {keys("d"), keys("a", "b"), keys("a", "b", "c"), keys("a", "b", "c"), keys("a", "b", "c")},
		"ListResourceTags": {
			internal, internal, internal, // scan 1: d cannot be read
			internal, internal, internal, owned, // scan 2: a cannot be read, b is ours
			none, none, // scan 3: a and c, not settled yet
			none, none, // scan 4, 20 s later: a and c once more, now settled
		},
	})
	now := time.Unix(0, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	if ids, err := c.FindKeysByTag(ctx, "owner", "me"); ClassOf(err) != Transient {
		t.Fatalf("scan 1: got %v %v, want the transient error: with d unread, absence is not proven", ids, err)
	}
	for scan, at := range []time.Duration{0, 0, 20 * time.Second, 20 * time.Second} {
		now = time.Unix(0, 0).Add(at)
		ids, err := c.FindKeysByTag(ctx, "owner", "me")
		if err != nil {
			t.Fatalf("scan %d: %v", scan+2, err)
		}
		if diff := cmp.Diff([]string{"b"}, ids); diff != "" {
			t.Errorf("scan %d: -want +got:\n%s", scan+2, diff)
		}
	}
	var read []string
	for _, r := range srv.requests {
		if r.Op == "ListResourceTags" {
			read = append(read, r.Body["KeyId"].(string))
		}
	}
	// Scan 5 reads nothing: b holds the owner tag, a and c are settled.
	if diff := cmp.Diff([]string{"d", "d", "d", "a", "a", "a", "b", "a", "c", "a", "c"}, read); diff != "" {
		t.Errorf("tag reads, -want +got:\n%s", diff)
	}
}
