package front

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/smithy-go"
)

// fakeClock is a server clock that tests move by hand, so that windows are
// met exactly.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// awsConfig signs as accessKey for region, making one attempt per call
// so that tests see every answer.
func awsConfig(region, accessKey string) aws.Config {
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, "secret", ""),
		Retryer:     func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewStandard(), 1) },
	}
}

// kmsAs is a KMS client of s for region, signing with accessKey.
func (s *server) kmsAs(region, accessKey string) *kms.Client {
	return kms.NewFromConfig(awsConfig(region, accessKey), func(o *kms.Options) { o.BaseEndpoint = aws.String(s.http.URL) })
}

// taggingAs is a Resource Groups Tagging API client of s for region.
func (s *server) taggingAs(region, accessKey string) *tagging.Client {
	return tagging.NewFromConfig(awsConfig(region, accessKey), func(o *tagging.Options) { o.BaseEndpoint = aws.String(s.http.URL) })
}

// do sends an HTTP request to one of the server's own endpoints.
func (s *server) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.http.URL+path, strings.NewReader(body))
	resp := must(http.DefaultClient.Do(req))(t)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// getJSON decodes the answer of GET path into v.
func (s *server) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, body := s.do(t, http.MethodGet, path, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func tags(kv ...string) []types.Tag {
	var list []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		list = append(list, types.Tag{TagKey: aws.String(kv[i]), TagValue: aws.String(kv[i+1])})
	}
	return list
}

// tagMap reads a key's tags.
func tagMap(t *testing.T, c *kms.Client, keyID string) map[string]string {
	t.Helper()
	out := must(c.ListResourceTags(context.Background(), &kms.ListResourceTagsInput{KeyId: &keyID}))(t)
	m := map[string]string{}
	for _, tg := range out.Tags {
		m[*tg.TagKey] = *tg.TagValue
	}
	return m
}

// errCode is the AWS error code of err, "" for none.
func errCode(err error) string {
	var apiErr smithy.APIError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &apiErr):
		return apiErr.ErrorCode()
	}
	return err.Error()
}

// post sends a raw KMS request, unsigned, as a client other than the SDK
// may.
func (s *server) post(t *testing.T, op, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp := must(http.DefaultClient.Do(req))(t)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
