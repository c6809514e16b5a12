package front

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/google/go-cmp/cmp"
)

// consistencyServer serves with the switches of c on a clock the test moves.
func consistencyServer(t *testing.T, c Consistency) (*server, *fakeClock, *kms.Client) {
	clock := newFakeClock()
	s := startWith(t, Options{Config: Config{Consistency: c}}, clock)
	return s, clock, s.kmsAs(testRegion, "local")
}

// onAndOff runs a test of a switch with it off, then set to lag.
func onAndOff(t *testing.T, lag time.Duration, test func(t *testing.T, lag time.Duration)) {
	t.Run("off", func(t *testing.T) { test(t, 0) })
	t.Run("on", func(t *testing.T) { test(t, lag) })
}

func TestKeyListLag(t *testing.T) {
	onAndOff(t, 3*time.Second, func(t *testing.T, lag time.Duration) {
		_, clock, c := consistencyServer(t, Consistency{KeyListLag: Duration(lag)})
		key := createKey(t, c, nil)
		listed := func() bool {
			out := must(c.ListKeys(context.Background(), &kms.ListKeysInput{}))(t)
			return len(out.Keys) == 1 && *out.Keys[0].KeyId == *key.KeyId
		}
		if got, want := listed(), lag == 0; got != want {
			t.Errorf("listed right after CreateKey: %v, want %v", got, want)
		}
		describe(t, c, *key.KeyId) // DescribeKey by id is immediate
		clock.Advance(lag - time.Second)
		if got, want := listed(), lag == 0; got != want {
			t.Errorf("listed a second before the lag: %v, want %v", got, want)
		}
		clock.Advance(time.Second)
		if !listed() {
			t.Error("not listed after the lag")
		}
	})
}

// step is one write of a consistency test and what reads show right after
// it (with the switch on) and once it has settled.
type step struct {
	name    string
	do      func(t *testing.T)
	now     any
	settled any
}

// runSteps runs steps with a switch set to lag (or off): right after each
// write, reads show now (settled when off); lag later, settled.
func runSteps(t *testing.T, clock *fakeClock, lag time.Duration, read func(t *testing.T) any, steps []step) {
	t.Helper()
	for _, st := range steps {
		st.do(t)
		want := st.now
		if lag == 0 {
			want = st.settled
		}
		if diff := cmp.Diff(want, read(t)); diff != "" {
			t.Errorf("right after %s (-want +got):\n%s", st.name, diff)
		}
		clock.Advance(lag)
		if diff := cmp.Diff(st.settled, read(t)); diff != "" {
			t.Errorf("%s settled (-want +got):\n%s", st.name, diff)
		}
	}
}

func TestTagLag(t *testing.T) {
	ctx := context.Background()
	onAndOff(t, 3*time.Second, func(t *testing.T, lag time.Duration) {
		_, clock, c := consistencyServer(t, Consistency{TagLag: Duration(lag)})
		var keyID *string
		read := func(t *testing.T) any { return tagMap(t, c, *keyID) }
		runSteps(t, clock, lag, read, []step{{
			name: "CreateKey",
			do: func(t *testing.T) {
				keyID = createKey(t, c, &kms.CreateKeyInput{Tags: tags("a", "1")}).KeyId
			},
			now: map[string]string{}, settled: map[string]string{"a": "1"},
		}, {
			name: "TagResource",
			do: func(t *testing.T) {
				must(c.TagResource(ctx, &kms.TagResourceInput{KeyId: keyID, Tags: tags("b", "2", "a", "one")}))(t)
			},
			now: map[string]string{"a": "1"}, settled: map[string]string{"a": "one", "b": "2"},
		}, {
			name: "UntagResource",
			do: func(t *testing.T) {
				must(c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: keyID, TagKeys: []string{"a"}}))(t)
			},
			now: map[string]string{"a": "one", "b": "2"}, settled: map[string]string{"b": "2"},
		}})
	})
}

func TestStaleAfterWrite(t *testing.T) {
	ctx := context.Background()
	onAndOff(t, 2*time.Second, func(t *testing.T, lag time.Duration) {
		_, clock, c := consistencyServer(t, Consistency{StaleAfterWrite: Duration(lag)})
		var keyID *string
		// read answers what Encrypt answers and the state DescribeKey,
		// which is never stale, shows.
		read := func(t *testing.T) any {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: keyID, Plaintext: []byte("x")})
			return []string{errCode(err), string(describe(t, c, *keyID).KeyState)}
		}
		write := func(call func() error) func(t *testing.T) {
			return func(t *testing.T) {
				if err := call(); err != nil {
					t.Fatal(err)
				}
			}
		}
		runSteps(t, clock, lag, read, []step{{
			name: "CreateKey",
			do:   func(t *testing.T) { keyID = createKey(t, c, nil).KeyId },
			now:  []string{"NotFoundException", "Enabled"}, settled: []string{"", "Enabled"},
		}, {
			name: "DisableKey",
			do: write(func() error {
				_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: keyID})
				return err
			}),
			now: []string{"", "Disabled"}, settled: []string{"DisabledException", "Disabled"},
		}, {
			name: "EnableKey",
			do: write(func() error {
				_, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: keyID})
				return err
			}),
			now: []string{"DisabledException", "Enabled"}, settled: []string{"", "Enabled"},
		}, {
			name: "ScheduleKeyDeletion",
			do: write(func() error {
				_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: keyID})
				return err
			}),
			now: []string{"", "PendingDeletion"}, settled: []string{"KMSInvalidStateException", "PendingDeletion"},
		}, {
			name: "CancelKeyDeletion",
			do: write(func() error {
				_, err := c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: keyID})
				return err
			}),
			now: []string{"KMSInvalidStateException", "Disabled"}, settled: []string{"DisabledException", "Disabled"},
		}})

		// The canonical recovery, EnableKey right after CancelKeyDeletion,
		// meets the pending deletion state it left.
		must(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: keyID}))(t)
		clock.Advance(lag)
		must(c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: keyID}))(t)
		_, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: keyID})
		if want := map[bool]string{true: "", false: "KMSInvalidStateException"}[lag == 0]; errCode(err) != want {
			t.Errorf("EnableKey right after CancelKeyDeletion: %v, want %q", err, want)
		}
	})
}

func TestGrantListLag(t *testing.T) {
	ctx := context.Background()
	onAndOff(t, 3*time.Second, func(t *testing.T, lag time.Duration) {
		_, clock, c := consistencyServer(t, Consistency{GrantListLag: Duration(lag)})
		key := createKey(t, c, nil)
		var first, second *kms.CreateGrantOutput
		grant := func(name string) *kms.CreateGrantOutput {
			return must(c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: key.KeyId, Name: aws.String(name),
				GranteePrincipal: aws.String("arn:aws:iam::111122223333:role/app"), RetiringPrincipal: aws.String("arn:aws:iam::111122223333:role/admin"),
				Operations: []types.GrantOperation{types.GrantOperationDecrypt}}))(t)
		}
		read := func(t *testing.T) any {
			var names []string
			for _, g := range must(c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId}))(t).Grants {
				names = append(names, *g.Name)
			}
			retirable := must(c.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String("arn:aws:iam::111122223333:role/admin")}))(t)
			if len(retirable.Grants) != len(names) {
				t.Errorf("ListRetirableGrants shows %d grants, ListGrants %d", len(retirable.Grants), len(names))
			}
			return names
		}
		runSteps(t, clock, lag, read, []step{{
			name: "CreateGrant",
			do:   func(t *testing.T) { first = grant("first") },
			now:  []string(nil), settled: []string{"first"},
		}, {
			name: "CreateGrant again",
			do:   func(t *testing.T) { second = grant("second") },
			now:  []string{"first"}, settled: []string{"first", "second"},
		}, {
			name: "RevokeGrant",
			do: func(t *testing.T) {
				must(c.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: key.KeyId, GrantId: first.GrantId}))(t)
				// Revoking works at once: a second revoke finds nothing.
				if _, err := c.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: key.KeyId, GrantId: first.GrantId}); !isErr[*types.NotFoundException](err) {
					t.Errorf("revoking a revoked grant: %v, want NotFoundException", err)
				}
			},
			now: []string{"first", "second"}, settled: []string{"second"},
		}, {
			name: "RetireGrant",
			do: func(t *testing.T) {
				must(c.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: second.GrantToken}))(t)
			},
			now: []string{"second"}, settled: []string(nil),
		}})
	})
}

func TestPrincipalIDWindow(t *testing.T) {
	ctx := context.Background()
	const (
		role    = "arn:aws:iam::111122223333:role/new-app"
		user    = "arn:aws:iam::111122223333:user/new-admin"
		unknown = "arn:aws:iam::111122223333:role/unknown"
	)
	tests := []struct {
		name     string
		window   time.Duration
		firstUse bool
		grantee  string
		retiring string
		// want is the grantee and retiring principal ListGrants shows now,
		// then once the window has passed.
		want, settled [2]string
	}{{
		name: "new role and user show as unique ids", window: 10 * time.Second, grantee: role, retiring: user,
		want: [2]string{uniqueID(role), uniqueID(user)}, settled: [2]string{role, user},
	}, {
		name: "off", grantee: role, retiring: user,
		want: [2]string{role, user}, settled: [2]string{role, user},
	}, {
		name: "unknown principal", window: 10 * time.Second, grantee: unknown, retiring: user,
		want: [2]string{unknown, uniqueID(user)}, settled: [2]string{unknown, user},
	}, {
		name: "unknown principal created on first use", window: 10 * time.Second, firstUse: true, grantee: unknown, retiring: user,
		want: [2]string{uniqueID(unknown), uniqueID(user)}, settled: [2]string{unknown, user},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock, c := consistencyServer(t, Consistency{PrincipalIDWindow: Duration(tt.window), PrincipalsCreatedOnFirstUse: tt.firstUse})
			for _, arn := range []string{role, user} {
				if code, body := s.do(t, http.MethodPost, "/_principals", `{"arn":"`+arn+`"}`); code != 200 {
					t.Fatalf("POST /_principals: %d %s", code, body)
				}
			}
			key := createKey(t, c, nil)
			must(c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: &tt.grantee, RetiringPrincipal: &tt.retiring,
				Operations: []types.GrantOperation{types.GrantOperationDecrypt}}))(t)
			shown := func() [2]string {
				g := must(c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId}))(t).Grants[0]
				return [2]string{*g.GranteePrincipal, *g.RetiringPrincipal}
			}
			if got := shown(); got != tt.want {
				t.Errorf("principals %v, want %v", got, tt.want)
			}
			clock.Advance(tt.window)
			if got := shown(); got != tt.settled {
				t.Errorf("principals after the window %v, want %v", got, tt.settled)
			}
		})
	}

	t.Run("unique ids", func(t *testing.T) {
		for arn, prefix := range map[string]string{role: "AROA", user: "AIDA"} {
			id := uniqueID(arn)
			if len(id) != 21 || !strings.HasPrefix(id, prefix) || strings.ToUpper(id) != id || id != uniqueID(arn) || id == uniqueID(arn+"x") {
				t.Errorf("uniqueID(%s) = %s", arn, id)
			}
		}
	})
}

func TestFreshPrincipals(t *testing.T) {
	ctx := context.Background()
	const role = "arn:aws:iam::111122223333:role/fresh"
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","` + role + `"]},"Action":"kms:*","Resource":"*"}]}`
	tests := []struct {
		name     string
		window   time.Duration
		firstUse bool
		// createdAgo registers the role as created that long ago; "" leaves
		// it unknown.
		createdAgo string
		// wait is how long until the role is usable; 0: at once.
		wait time.Duration
	}{
		{name: "role created now", window: 2 * time.Second, createdAgo: "0s", wait: 2 * time.Second},
		{name: "role created a second ago", window: 2 * time.Second, createdAgo: "1s", wait: time.Second},
		{name: "role created long ago", window: 2 * time.Second, createdAgo: "1h"},
		{name: "unknown role", window: 2 * time.Second},
		{name: "unknown role created on first use", window: 2 * time.Second, firstUse: true, wait: 2 * time.Second},
		{name: "off", createdAgo: "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock, c := consistencyServer(t, Consistency{FreshPrincipalWindow: Duration(tt.window), PrincipalsCreatedOnFirstUse: tt.firstUse})
			if tt.createdAgo != "" {
				if code, body := s.do(t, http.MethodPost, "/_principals", `{"arn":"`+role+`","createdAgo":"`+tt.createdAgo+`"}`); code != 200 {
					t.Fatalf("POST /_principals: %d %s", code, body)
				}
			}
			key := createKey(t, c, nil)
			calls := map[string]func() error{
				"CreateGrant": func() error {
					_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String(role),
						Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
					return err
				},
				"CreateKey": func() error {
					_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(policy)})
					return err
				},
				"PutKeyPolicy": func() error {
					_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: key.KeyId, Policy: aws.String(policy)})
					return err
				},
			}
			want := map[string]string{"CreateGrant": "InvalidArnException", "CreateKey": "MalformedPolicyDocumentException", "PutKeyPolicy": "MalformedPolicyDocumentException"}
			for op, call := range calls {
				code := errCode(call())
				if tt.wait == 0 && code != "" || tt.wait > 0 && code != want[op] {
					t.Errorf("%s right away: %q, want %q", op, code, map[bool]string{true: "", false: want[op]}[tt.wait == 0])
				}
			}
			clock.Advance(tt.wait)
			for op, call := range calls {
				if err := call(); err != nil {
					t.Errorf("%s once the role is visible: %v", op, err)
				}
			}
		})
	}
}

func TestPrincipalsEndpoint(t *testing.T) {
	clock := newFakeClock()
	s := startWith(t, Options{}, clock)
	const role = "arn:aws:iam::111122223333:role/app"
	const user = "arn:aws-cn:iam::111122223333:user/ops"
	created := clock.Now().Add(-time.Hour).UTC()

	for _, body := range []string{
		`{"arn":"` + role + `","createdAgo":"5s"}`,
		`{"arn":"` + user + `","created":"` + created.Format(time.RFC3339) + `"}`,
	} {
		if code, out := s.do(t, http.MethodPost, "/_principals", body); code != 200 {
			t.Fatalf("POST %s: %d %s", body, code, out)
		}
	}
	var got []principalEntry
	s.getJSON(t, "/_principals", &got)
	want := []principalEntry{{user, created}, {role, clock.Now().Add(-5 * time.Second)}} // in ARN order
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("GET /_principals (-want +got):\n%s", diff)
	}

	for _, bad := range []string{
		`{"arn":"arn:aws:iam::111122223333:root"}`,
		`{"arn":"app"}`,
		`{"arn":"` + role + `","created":"2026-01-01T00:00:00Z","createdAgo":"1s"}`,
		`{"arn":"` + role + `","createdAgo":"soon"}`,
		`{"arn":"` + role + `","extra":1}`,
		`not json`,
	} {
		if code, _ := s.do(t, http.MethodPost, "/_principals", bad); code != 400 {
			t.Errorf("POST %s: %d, want 400", bad, code)
		}
	}
	if code, _ := s.do(t, http.MethodDelete, "/_principals", ""); code != 204 {
		t.Errorf("DELETE: %d, want 204", code)
	}
	s.getJSON(t, "/_principals", &got)
	if len(got) != 0 {
		t.Errorf("after DELETE: %+v", got)
	}
	if code, _ := s.do(t, http.MethodPut, "/_principals", "{}"); code != 405 {
		t.Errorf("PUT: %d, want 405", code)
	}
}

func TestConsistencyConfig(t *testing.T) {
	s := startWith(t, Options{}, nil)
	tests := []struct {
		put  string
		want Consistency
	}{
		{`{"consistency":"realistic"}`, realistic},
		{`{"consistency":{"preset":"realistic","grantListLag":"0s","principalsCreatedOnFirstUse":false}}`,
			func() Consistency {
				c := realistic
				c.GrantListLag, c.PrincipalsCreatedOnFirstUse = 0, false
				return c
			}()},
		{`{"consistency":{"tagLag":"1s"}}`, Consistency{TagLag: Duration(time.Second)}},
		{`{"consistency":"off"}`, Consistency{}},
		{`{}`, Consistency{}},
	}
	for _, tt := range tests {
		t.Run(tt.put, func(t *testing.T) {
			if code, body := s.do(t, http.MethodPut, "/_config", tt.put); code != 200 {
				t.Fatalf("PUT: %d %s", code, body)
			}
			var got Config
			s.getJSON(t, "/_config", &got)
			if got.Consistency != tt.want {
				t.Errorf("consistency %+v, want %+v", got.Consistency, tt.want)
			}
		})
	}
	t.Run("GET shows every switch", func(t *testing.T) {
		_, body := s.do(t, http.MethodGet, "/_config", "")
		for _, field := range []string{"keyListLag", "tagLag", "taggingAPILag", "grantListLag", "staleAfterWrite",
			"principalIDWindow", "freshPrincipalWindow", "principalsCreatedOnFirstUse"} {
			if !strings.Contains(body, `"`+field+`"`) {
				t.Errorf("GET /_config lacks %s: %s", field, body)
			}
		}
	})
	for _, bad := range []string{
		`{"consistency":"fast"}`,
		`{"consistency":{"preset":"fast"}}`,
		`{"consistency":{"tagLagg":"1s"}}`,
		`{"consistency":{"tagLag":"-1s"}}`,
		`{"consistency":{"tagLag":5}}`,
		`{"accessKeys":{"AK":"12"}}`,
	} {
		if code, body := s.do(t, http.MethodPut, "/_config", bad); code != 400 {
			t.Errorf("PUT %s: %d %s, want 400", bad, code, body)
		}
	}
}

func TestConsistencyAndAccessKeyFlags(t *testing.T) {
	second := Duration(time.Second)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    Config
		wantErr string
	}{{
		name: "realistic",
		args: []string{"--realistic"},
		want: Config{Quotas: QuotasNone, Consistency: realistic},
	}, {
		name: "realistic with overrides",
		args: []string{"--realistic", "--grant-list-lag=0s", "--principals-created-on-first-use=false"},
		want: Config{Quotas: QuotasNone, Consistency: func() Consistency {
			c := realistic
			c.GrantListLag, c.PrincipalsCreatedOnFirstUse = 0, false
			return c
		}()},
	}, {
		name: "switches one by one",
		args: []string{"--key-list-lag=1s", "--tag-lag=1s", "--tagging-api-lag=1s", "--grant-list-lag=1s",
			"--stale-after-write=1s", "--principal-id-window=1s", "--fresh-principal-window=1s", "--principals-created-on-first-use",
			"--replica-creation=1s", "--primary-region-update=1s"},
		want: Config{Quotas: QuotasNone, Consistency: Consistency{second, second, second, second, second, second, second, true, second, second}},
	}, {
		name: "env",
		env:  map[string]string{"KMS_REALISTIC": "true", "KMS_TAG_LAG": "1s", "KMS_ACCESS_KEYS": "AK1=222233334444, AK2=333344445555"},
		want: Config{Quotas: QuotasNone, Consistency: func() Consistency {
			c := realistic
			c.TagLag = second
			return c
		}(), AccessKeys: map[string]string{"AK1": "222233334444", "AK2": "333344445555"}},
	}, {
		name: "access keys",
		args: []string{"--access-key=AK1=222233334444", "--access-key", "AK2=333344445555"},
		want: Config{Quotas: QuotasNone, AccessKeys: map[string]string{"AK1": "222233334444", "AK2": "333344445555"}},
	},
		{name: "bad duration", args: []string{"--tag-lag=soon"}, wantErr: "tag-lag"},
		{name: "negative duration", args: []string{"--tag-lag=-1s"}, wantErr: "negative"},
		{name: "bad realistic", env: map[string]string{"KMS_REALISTIC": "maybe"}, wantErr: "realistic"},
		{name: "access key without account", args: []string{"--access-key=AK1"}, wantErr: "AKID=ACCOUNT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("kms-server", flag.ContinueOnError)
			config := ConfigFlags(fs, func(k string) string { return tt.env[k] })
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := config()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestHistoryIsBounded(t *testing.T) {
	ctx := context.Background()
	historyOf := func(s *server, arn string) (int, bool) {
		s.front.mu.Lock()
		defer s.front.mu.Unlock()
		h, ok := s.front.tenants[tenantID(testAccount, testRegion)].history[arn]
		return len(h), ok
	}
	t.Run("none when off", func(t *testing.T) {
		s, _, c := consistencyServer(t, Consistency{PrincipalIDWindow: Duration(time.Hour)})
		key := createKey(t, c, nil)
		must(c.TagResource(ctx, &kms.TagResourceInput{KeyId: key.KeyId, Tags: tags("a", "1")}))(t)
		if n, ok := historyOf(s, *key.Arn); ok {
			t.Errorf("%d snapshots kept with no lag on", n)
		}
	})
	t.Run("settled keys are forgotten", func(t *testing.T) {
		s, clock, c := consistencyServer(t, Consistency{StaleAfterWrite: Duration(time.Second)})
		old := createKey(t, c, nil)
		if n, _ := historyOf(s, *old.Arn); n != 2 {
			t.Fatalf("%d snapshots of a new key, want 2 (absent, created)", n)
		}
		clock.Advance(2 * time.Second)
		busy := createKey(t, c, nil)
		clock.Advance(time.Second)
		for i := range 1024 {
			must(c.TagResource(ctx, &kms.TagResourceInput{KeyId: busy.KeyId, Tags: tags("n", fmt.Sprint(i))}))(t)
		}
		if n, ok := historyOf(s, *old.Arn); ok {
			t.Errorf("%d snapshots kept of a key settled long ago", n)
		}
		if n, _ := historyOf(s, *busy.Arn); n > 1026 {
			t.Errorf("%d snapshots of the busy key", n)
		}
	})
}
