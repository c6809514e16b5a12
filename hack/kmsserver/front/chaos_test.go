package front

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// noRetry is a client of s that makes a single attempt per call, so that the
// test sees every throttle and fault.
func (s *server) noRetry() *kms.Client {
	return kms.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
		Retryer:     func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewStandard(), 1) },
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(s.http.URL) })
}

// configure replaces the server's quota and fault configuration and its
// counts.
func (s *server) configure(t *testing.T, cfg Config) {
	t.Helper()
	if err := s.front.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodDelete, s.http.URL+"/_counts", nil)
	must(http.DefaultClient.Do(req))(t).Body.Close()
}

func (s *server) counts(t *testing.T) map[string]opCount {
	t.Helper()
	resp := must(http.Get(s.http.URL + "/_counts"))(t)
	defer resp.Body.Close()
	got := map[string]opCount{}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

func statusCode(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func listKeys(ctx context.Context, c *kms.Client) error {
	_, err := c.ListKeys(ctx, &kms.ListKeysInput{})
	return err
}

func generateRandom(ctx context.Context, c *kms.Client) error {
	_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	return err
}

func TestQuotas(t *testing.T) {
	ctx := context.Background()
	newKey := func(ctx context.Context, c *kms.Client) error {
		_, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
		return err
	}
	var keyID *string
	encrypt := func(ctx context.Context, c *kms.Client) error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: keyID, Plaintext: []byte("x")})
		return err
	}
	type step struct {
		name string
		call func(context.Context, *kms.Client) error
	}
	tests := []struct {
		name string
		cfg  Config
		// calls are made in turn, n times in all, in well under a second.
		calls []step
		n     int
		// throttled is how many of them are throttled, per operation.
		throttled map[string]int
		// refill: a second later, the same burst is throttled the same way.
		refill bool
	}{{
		name:      "aws CreateKey",
		cfg:       Config{Quotas: QuotasAWS},
		calls:     []step{{"CreateKey", newKey}},
		n:         8,
		throttled: map[string]int{"CreateKey": 3},
		refill:    true,
	}, {
		name:      "aws reads are larger",
		cfg:       Config{Quotas: QuotasAWS},
		calls:     []step{{"ListKeys", listKeys}},
		n:         20,
		throttled: map[string]int{},
	}, {
		name:      "override without aws",
		cfg:       Config{Quota: map[string]int{"ListKeys": 3}},
		calls:     []step{{"ListKeys", listKeys}, {"GenerateRandom", generateRandom}},
		n:         10,
		throttled: map[string]int{"ListKeys": 2},
	}, {
		name:      "override removes an aws quota",
		cfg:       Config{Quotas: QuotasAWS, Quota: map[string]int{"CreateKey": 0}},
		calls:     []step{{"CreateKey", newKey}},
		n:         7,
		throttled: map[string]int{},
	}, {
		name:      "cryptographic operations share a quota",
		cfg:       Config{Quota: map[string]int{cryptoQuota: 4}},
		calls:     []step{{"Encrypt", encrypt}, {"GenerateRandom", generateRandom}},
		n:         6,
		throttled: map[string]int{"Encrypt": 1, "GenerateRandom": 1},
	}, {
		name:      "a cryptographic operation with its own quota",
		cfg:       Config{Quota: map[string]int{cryptoQuota: 2, "GenerateRandom": 3}},
		calls:     []step{{"Encrypt", encrypt}, {"GenerateRandom", generateRandom}},
		n:         8,
		throttled: map[string]int{"Encrypt": 2, "GenerateRandom": 1},
	}}
	s := newTestServer(t)
	keyID = createKey(t, s.client, nil).KeyId
	c := s.noRetry()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.configure(t, tt.cfg)
			burst := func() {
				t.Helper()
				start := time.Now()
				got := map[string]int{}
				for i := range tt.n {
					st := tt.calls[i%len(tt.calls)]
					err := st.call(ctx, c)
					switch {
					case err == nil:
					case hasCode("ThrottlingException")(err):
						got[st.name]++
						if statusCode(err) != 400 {
							t.Errorf("%s: status %d, want 400", st.name, statusCode(err))
						}
						if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary {
							t.Errorf("%s: the SDK does not classify %v as throttling", st.name, err)
						}
					default:
						t.Fatalf("%s: %v", st.name, err)
					}
				}
				if d := time.Since(start); d > 800*time.Millisecond {
					t.Skipf("burst took %s: too slow to test a 1-second window", d)
				}
				if !reflect.DeepEqual(got, tt.throttled) {
					t.Errorf("throttled %v, want %v", got, tt.throttled)
				}
			}
			burst()
			counts := s.counts(t)
			for op, n := range tt.throttled {
				if c := counts[op]; c.Throttled != n || c.Errors != n || c.Faulted != 0 {
					t.Errorf("counts[%s] = %+v, want %d throttled and errors", op, c, n)
				}
			}
			if tt.refill {
				time.Sleep(time.Second)
				burst()
			}
		})
	}
}

func TestThrottlingAnswer(t *testing.T) {
	s := newTestServer(t)
	s.configure(t, Config{Quota: map[string]int{"ListKeys": 1}})
	post := func() (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/", strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp := must(http.DefaultClient.Do(req))(t)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post(); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	code, body := post()
	if want := `{"__type":"ThrottlingException","message":"Rate exceeded"}`; code != 400 || body != want {
		t.Errorf("answer %d %s, want 400 %s", code, body, want)
	}
	var apiErr smithy.APIError
	err := listKeys(context.Background(), s.noRetry())
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" || apiErr.ErrorMessage() != "Rate exceeded" {
		t.Errorf("SDK error %v, want a ThrottlingException APIError", err)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	s := newTestServer(t)
	c := s.noRetry()
	keyCount := func(t *testing.T) int {
		return len(must(s.client.ListKeys(ctx, &kms.ListKeysInput{}))(t).Keys)
	}
	tests := []struct {
		name  string
		fault string // in the --fault syntax
		op    string
		call  func(context.Context, *kms.Client) error
		check func(t *testing.T, err error, took time.Duration)
		// keysAdded is the change of the key count, for CreateKey.
		keysAdded int
		want      opCount
	}{{
		name: "internal", fault: "ListKeys=internal:1", op: "ListKeys", call: listKeys,
		check: func(t *testing.T, err error, _ time.Duration) {
			if !isErr[*types.KMSInternalException](err) || statusCode(err) != 500 {
				t.Errorf("err = %v (status %d), want 500 KMSInternalException", err, statusCode(err))
			}
		},
		want: opCount{Requests: 1, Errors: 1, Faulted: 1},
	}, {
		name: "timeout", fault: "ListKeys=timeout", op: "ListKeys", call: listKeys,
		check: func(t *testing.T, err error, _ time.Duration) {
			if !isErr[*types.DependencyTimeoutException](err) || statusCode(err) != 503 {
				t.Errorf("err = %v (status %d), want 503 DependencyTimeoutException", err, statusCode(err))
			}
		},
		want: opCount{Requests: 1, Errors: 1, Faulted: 1},
	}, {
		name: "throttle", fault: "GenerateRandom=throttle:1", op: "GenerateRandom", call: generateRandom,
		check: func(t *testing.T, err error, _ time.Duration) {
			if !hasCode("ThrottlingException")(err) || statusCode(err) != 400 {
				t.Errorf("err = %v (status %d), want 400 ThrottlingException", err, statusCode(err))
			}
		},
		want: opCount{Requests: 1, Errors: 1, Throttled: 1},
	}, {
		name: "reset", fault: "*=reset:1", op: "ListKeys", call: listKeys,
		check: func(t *testing.T, err error, _ time.Duration) {
			var sendErr *smithyhttp.RequestSendError
			var apiErr smithy.APIError
			if !errors.As(err, &sendErr) || errors.As(err, &apiErr) {
				t.Errorf("err = %v, want a network error", err)
			}
		},
		want: opCount{Requests: 1, Errors: 1, Faulted: 1},
	}, {
		name: "lost", fault: "CreateKey=lost:1", op: "CreateKey",
		call: func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
			return err
		},
		check: func(t *testing.T, err error, _ time.Duration) {
			if !isErr[*types.KMSInternalException](err) || statusCode(err) != 500 {
				t.Errorf("err = %v (status %d), want 500 KMSInternalException", err, statusCode(err))
			}
		},
		keysAdded: 1,
		want:      opCount{Requests: 1, Errors: 1, Faulted: 1},
	}, {
		name: "latency", fault: "ListKeys=latency=150ms:1", op: "ListKeys", call: listKeys,
		check: func(t *testing.T, err error, took time.Duration) {
			if err != nil || took < 150*time.Millisecond {
				t.Errorf("err = %v after %s, want success after 150ms", err, took)
			}
		},
		want: opCount{Requests: 1, Faulted: 1},
	}, {
		name: "rate 0", fault: "ListKeys=internal:0", op: "ListKeys", call: listKeys,
		check: func(t *testing.T, err error, _ time.Duration) {
			if err != nil {
				t.Error(err)
			}
		},
		want: opCount{Requests: 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft, err := ParseFault(tt.fault)
			if err != nil {
				t.Fatal(err)
			}
			before := keyCount(t)
			s.configure(t, Config{Faults: []Fault{ft}})
			start := time.Now()
			err = tt.call(ctx, c)
			took := time.Since(start)
			got := s.counts(t)[tt.op]
			s.configure(t, Config{})
			tt.check(t, err, took)
			if got != tt.want {
				t.Errorf("counts[%s] = %+v, want %+v", tt.op, got, tt.want)
			}
			if n := keyCount(t) - before; n != tt.keysAdded {
				t.Errorf("%d keys added, want %d", n, tt.keysAdded)
			}
		})
	}

	t.Run("rate", func(t *testing.T) {
		cfg := Config{Faults: []Fault{{Op: "ListKeys", Kind: FaultInternal, Rate: 0.5}}, Seed: 1}
		run := func() (faulted []int) {
			s.configure(t, cfg)
			for i := range 200 {
				if err := listKeys(ctx, c); err != nil {
					if !isErr[*types.KMSInternalException](err) {
						t.Fatal(err)
					}
					faulted = append(faulted, i)
				}
			}
			if got := s.counts(t)["ListKeys"]; got.Faulted != len(faulted) || got.Errors != len(faulted) || got.Requests != 200 {
				t.Errorf("counts %+v, want %d faulted of 200", got, len(faulted))
			}
			return faulted
		}
		first := run()
		if n := len(first); n < 60 || n > 140 {
			t.Errorf("%d of 200 faulted at rate 0.5", n)
		}
		if second := run(); !reflect.DeepEqual(first, second) {
			t.Errorf("the same seed faulted requests %v, then %v", first, second)
		}
	})

	t.Run("own faults come before *", func(t *testing.T) {
		s.configure(t, Config{Faults: []Fault{
			{Op: AllOps, Kind: FaultTimeout, Rate: 1},
			{Op: "ListKeys", Kind: FaultInternal, Rate: 1},
		}})
		defer s.configure(t, Config{})
		if err := listKeys(ctx, c); !isErr[*types.KMSInternalException](err) {
			t.Errorf("ListKeys: %v, want KMSInternalException", err)
		}
		if err := generateRandom(ctx, c); !isErr[*types.DependencyTimeoutException](err) {
			t.Errorf("GenerateRandom: %v, want DependencyTimeoutException", err)
		}
	})
}

func TestConfigEndpoint(t *testing.T) {
	s := newTestServer(t)
	do := func(method, body string) (int, string) {
		req, _ := http.NewRequest(method, s.http.URL+"/_config", strings.NewReader(body))
		resp := must(http.DefaultClient.Do(req))(t)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	decode := func(s string) Config {
		var c Config
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			t.Fatalf("%v: %s", err, s)
		}
		return c
	}

	if code, body := do(http.MethodGet, ""); code != 200 || decode(body).Quotas != QuotasNone || decode(body).Seed == 0 {
		t.Errorf("initial GET: %d %s", code, body)
	}

	put := `{"quotas":"aws","quota":{"CreateKey":7,"Cryptographic":100},` +
		`"faults":[{"op":"CreateKey","kind":"lost","rate":0.2},{"op":"*","kind":"latency=5ms","rate":0.5}],"seed":42}`
	want := Config{
		Quotas: QuotasAWS, Quota: map[string]int{"CreateKey": 7, cryptoQuota: 100},
		Faults: []Fault{
			{Op: "CreateKey", Kind: FaultLost, Rate: 0.2},
			{Op: AllOps, Kind: FaultLatency, Latency: Duration(5 * time.Millisecond), Rate: 0.5},
		},
		Seed: 42,
	}
	code, body := do(http.MethodPut, put)
	if code != 200 || !reflect.DeepEqual(decode(body), want) {
		t.Fatalf("PUT: %d %s, want %+v", code, body, want)
	}
	_, got := do(http.MethodGet, "")
	if !reflect.DeepEqual(decode(got), want) {
		t.Errorf("GET: %s, want %+v", got, want)
	}
	if !strings.Contains(got, `"latency":"5ms"`) {
		t.Errorf("GET: %s, want latency as a duration string", got)
	}
	// What GET answers can be PUT back.
	if code, body := do(http.MethodPut, got); code != 200 || body != got {
		t.Errorf("PUT of GET: %d %s, want %s", code, body, got)
	}

	for _, bad := range []string{
		`{"quotas":"some"}`,
		`{"quota":{"CreatKey":5}}`,
		`{"quota":{"CreateKey":-1}}`,
		`{"faults":[{"op":"CreateKey","kind":"boom","rate":0.5}]}`,
		`{"faults":[{"op":"CreateKey","kind":"lost","rate":1.5}]}`,
		`{"faults":[{"op":"CreateKey","kind":"latency","rate":0.5}]}`,
		`{"faults":[{"op":"Nope","kind":"lost","rate":0.5}]}`,
		`{"fault":[]}`,
		`not json`,
	} {
		if code, body := do(http.MethodPut, bad); code != 400 || !strings.Contains(body, "message") {
			t.Errorf("PUT %s: %d %s, want 400", bad, code, body)
		}
	}
	if _, after := do(http.MethodGet, ""); after != got {
		t.Errorf("after bad PUTs: %s, want %s unchanged", after, got)
	}
	if code, _ := do(http.MethodDelete, ""); code != 405 {
		t.Errorf("DELETE: %d, want 405", code)
	}
	// An empty configuration turns everything off, with a seed picked.
	if code, body := do(http.MethodPut, `{}`); code != 200 || decode(body).Quotas != QuotasNone || decode(body).Seed == 0 || len(decode(body).Faults) != 0 {
		t.Errorf("PUT {}: %d %s", code, body)
	}
}

func TestCountsFormat(t *testing.T) {
	s := newTestServer(t)
	s.configure(t, Config{})
	must(s.client.ListKeys(context.Background(), &kms.ListKeysInput{}))(t)
	resp := must(http.Get(s.http.URL + "/_counts"))(t)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := `{"ListKeys":{"requests":1,"errors":0,"throttled":0,"faulted":0}}`; string(bytes.TrimSpace(b)) != want {
		t.Errorf("counts %s, want %s", b, want)
	}
}

func TestConfigFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    Config
		wantErr string
	}{{
		name: "defaults",
		want: Config{Quotas: QuotasNone},
	}, {
		name: "flags",
		args: []string{"--quotas=aws", "--quota", "CreateKey=10", "--quota=ListAliases=0",
			"--fault", "CreateKey=lost:0.2", "--fault", "*=latency=200ms:0.5", "--fault=ListKeys=reset", "--fault-seed=7"},
		want: Config{
			Quotas: QuotasAWS, Quota: map[string]int{"CreateKey": 10, "ListAliases": 0},
			Faults: []Fault{
				{Op: "CreateKey", Kind: FaultLost, Rate: 0.2},
				{Op: "*", Kind: FaultLatency, Latency: Duration(200 * time.Millisecond), Rate: 0.5},
				{Op: "ListKeys", Kind: FaultReset, Rate: 1},
			},
			Seed: 7,
		},
	}, {
		name: "env",
		env: map[string]string{"KMS_QUOTAS": "aws", "KMS_QUOTA": "CreateKey=1, CreateGrant=2",
			"KMS_FAULTS": "*=throttle:0.1,DescribeKey=timeout:0.3", "KMS_FAULT_SEED": "9"},
		want: Config{
			Quotas: QuotasAWS, Quota: map[string]int{"CreateKey": 1, "CreateGrant": 2},
			Faults: []Fault{{Op: "*", Kind: FaultThrottle, Rate: 0.1}, {Op: "DescribeKey", Kind: FaultTimeout, Rate: 0.3}},
			Seed:   9,
		},
	}, {
		name: "flags replace env",
		args: []string{"--quotas=none", "--quota=ListKeys=3", "--fault=ListKeys=internal:0.5"},
		env:  map[string]string{"KMS_QUOTAS": "aws", "KMS_QUOTA": "CreateKey=1", "KMS_FAULTS": "*=reset:1"},
		want: Config{
			Quotas: QuotasNone, Quota: map[string]int{"ListKeys": 3},
			Faults: []Fault{{Op: "ListKeys", Kind: FaultInternal, Rate: 0.5}},
		},
	},
		{name: "quota without =", args: []string{"--quota=CreateKey"}, wantErr: "want Op=N"},
		{name: "negative quota", args: []string{"--quota=CreateKey=-1"}, wantErr: "want Op=N"},
		{name: "unknown kind", args: []string{"--fault=CreateKey=boom:0.1"}, wantErr: "unknown kind"},
		{name: "bad rate", args: []string{"--fault=CreateKey=lost:x"}, wantErr: "bad rate"},
		{name: "rate above 1", args: []string{"--fault=CreateKey=lost:2"}, wantErr: "between 0 and 1"},
		{name: "latency without duration", args: []string{"--fault=CreateKey=latency:1"}, wantErr: "positive duration"},
		{name: "bad duration", args: []string{"--fault=CreateKey=latency=fast:1"}, wantErr: "invalid duration"},
		{name: "bad seed", env: map[string]string{"KMS_FAULT_SEED": "-3"}, wantErr: "fault seed"},
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

	t.Run("unknown operation is refused at start", func(t *testing.T) {
		_, err := New(Options{DataDir: t.TempDir(), Region: testRegion, AccountID: testAccount,
			Config: Config{Quota: map[string]int{"CreatKey": 5}}})
		if err == nil || !strings.Contains(err.Error(), "CreatKey") {
			t.Errorf("err = %v, want an unknown operation", err)
		}
	})
}

// The request path without quotas or faults costs an atomic load and a lookup
// in an empty map.
func TestNoConfigIsFree(t *testing.T) {
	f := &Front{}
	p, err := f.compile(&Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { p.decide("111122223333/us-east-1", "CreateKey", time.Now()) }); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}

func BenchmarkDecide(b *testing.B) {
	f := &Front{}
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"none", Config{}},
		{"aws", Config{Quotas: QuotasAWS}},
		{"faults", Config{Faults: []Fault{{Op: AllOps, Kind: FaultInternal, Rate: 0.01}}}},
	} {
		p, err := f.compile(&tt.cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				p.decide("111122223333/us-east-1", "DescribeKey", time.Now())
			}
		})
	}
}
