package kmsclient

import (
	"context"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

func TestVersion(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "dev"},
		{"tagged", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, true, "v1.2.3"},
		{"tagged prerelease", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0-rc.1"}}, true, "v1.3.0-rc.1"},
		{"pseudo-version: the commit", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261130231500-9829f70abcde"},
			Settings: vcs("9829f70abcdef0123456789", "false")}, true, "9829f70abcde"},
		{"modified tree", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261130231500-9829f70abcde+dirty"},
			Settings: vcs("9829f70abcdef0123456789", "true")}, true, "9829f70abcde-dirty"},
		{"devel without vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "dev"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := version(tc.info, tc.ok)
			if got != tc.want {
				t.Errorf("version = %q, want %q", got, tc.want)
			}
			if n := len("kms-operator#" + got); n > 50 {
				t.Errorf("app id is %d characters, AWS allows 50", n)
			}
		})
	}
}

// TestAppIDInUserAgent: every request of a provider's client names the
// operator in its User-Agent, which CloudTrail records.
func TestAppIDInUserAgent(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	srv := &kmsServer{t: t, replies: map[string][]reply{"DescribeKey": {{body: keyMetadata}}}}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	p, err := NewProvider(context.Background(), ProviderOptions{Region: "eu-west-1", Endpoint: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	api, err := p.For("", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.DescribeKey(context.Background(), testID); err != nil {
		t.Fatal(err)
	}
	want := "app/" + AppID()
	if len(srv.userAgents) != 1 || !strings.Contains(srv.userAgents[0], want) {
		t.Errorf("User-Agent %q, want it to contain %q", srv.userAgents, want)
	}
}

// TestWritesAreLogged: a KMS write is logged with the reconcile's logger
// (which names the object) and AWS's request id; a read is not logged.
func TestWritesAreLogged(t *testing.T) {
	c, _, _ := newTestClient(t, map[string][]reply{
		"DescribeKey": {{body: keyMetadata}},
		"CreateAlias": {{body: `{}`}},
	})
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	ctx := logr.NewContext(context.Background(), log.WithValues("Key", "team-a/orders"))
	if _, err := c.DescribeKey(ctx, testID); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateAlias(ctx, "alias/orders", testID); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 {
		t.Fatalf("logged %q, want one line: for the write only", lines)
	}
	for _, want := range []string{`"Key"="team-a/orders"`, `"operation"="CreateAlias"`, `"requestID"="req-2"`, `"result"="success"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line %s lacks %s", lines[0], want)
		}
	}
}
