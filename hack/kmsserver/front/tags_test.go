package front

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// manyTags is n tags k0=v0, k1=v1...
func manyTags(n int) []types.Tag {
	var kv []string
	for i := range n {
		kv = append(kv, fmt.Sprint("k", i), fmt.Sprint("v", i))
	}
	return tags(kv...)
}

func TestTagLimits(t *testing.T) {
	ctx := context.Background()
	s := newTestServer(t)
	full := createKey(t, s.client, &kms.CreateKeyInput{Tags: manyTags(50)})

	tests := []struct {
		name     string
		create   []types.Tag // CreateKey with these tags
		tag      []types.Tag // or TagResource of the key with 50 tags
		wantCode string
		wantMsg  string
	}{
		{name: "50 tags at creation", create: manyTags(50)},
		{name: "51 tags at creation", create: manyTags(51), wantCode: "TagException", wantMsg: "Too many tags"},
		{name: "a 51st tag", tag: tags("extra", "x"), wantCode: "TagException", wantMsg: "Too many tags"},
		{name: "new values of existing tags", tag: manyTags(50)},
		{name: "tag key of 128 characters", create: tags(strings.Repeat("k", 128), "v")},
		{name: "tag key of 129 characters", create: tags(strings.Repeat("k", 129), "v"), wantCode: "ValidationException",
			wantMsg: "at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{name: "empty tag key", create: tags("a", "1", "", "v"), wantCode: "ValidationException",
			wantMsg: "at 'tags.2.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{name: "tag value of 256 characters, not bytes", create: tags("k", strings.Repeat("é", 256))},
		{name: "empty tag value", create: tags("k", "")},
		{name: "tag value of 257 characters", tag: tags("k0", strings.Repeat("v", 257)), wantCode: "ValidationException",
			wantMsg: "at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{name: "duplicate tag keys", create: tags("k", "1", "k", "2"), wantCode: "TagException", wantMsg: "Duplicate tag keys"},
		{name: "reserved prefix", create: tags("aws:owner", "x"), wantCode: "TagException", wantMsg: "Tags beginning with aws: are reserved"},
		{name: "reserved prefix in capitals", tag: tags("AWS:owner", "x"), wantCode: "TagException", wantMsg: "Tags beginning with aws: are reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.create != nil {
				_, err = s.client.CreateKey(ctx, &kms.CreateKeyInput{Tags: tt.create})
			} else {
				_, err = s.client.TagResource(ctx, &kms.TagResourceInput{KeyId: full.KeyId, Tags: tt.tag})
			}
			if code := errCode(err); code != tt.wantCode || err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err %v, want %s %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
	if n := len(tagMap(t, s.client, *full.KeyId)); n != 50 {
		t.Errorf("the full key has %d tags, want 50", n)
	}

	// The SDK refuses these itself; other clients may send them.
	for _, body := range []string{
		`{"Tags":[{"TagKey":"k"}]}`,
		`{"KeyId":"` + *full.KeyId + `","Tags":[{"TagValue":"v"}]}`,
		`{"KeyId":"` + *full.KeyId + `"}`,
	} {
		op := map[bool]string{true: "TagResource", false: "CreateKey"}[strings.Contains(body, "KeyId")]
		if code, out := s.post(t, op, body); code != 400 || !strings.Contains(out, "ValidationException") {
			t.Errorf("%s %s: %d %s, want ValidationException", op, body, code, out)
		}
	}
}
