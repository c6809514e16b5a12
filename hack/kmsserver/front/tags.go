package front

import (
	"strings"
	"unicode/utf8"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/nsmithuk/local-kms/src/handler"
)

// maxTagsPerKey is AWS's limit of tags on a resource ("Maximum number of
// tags per resource – 50", https://docs.aws.amazon.com/general/latest/gr/aws_tagging.html;
// TagResource's TagException and LimitExceededException,
// https://docs.aws.amazon.com/kms/latest/APIReference/API_TagResource.html).
const maxTagsPerKey = 50

type tag struct {
	TagKey   *string
	TagValue *string
}

// checkTags validates the tags of CreateKey, TagResource and ReplicateKey
// as AWS does: keys of 1 to 128 characters and values of up to 256 are
// ValidationExceptions (local-kms counts bytes, and panics on a missing
// value); the reserved "aws:" prefix in any case, a key given twice and
// more than 50 tags on the key (existing ones counted, as the limit is per
// key) are TagExceptions. The exception types and messages are AWS's as
// recorded in LocalStack's AWS-validated snapshots
// (test_create_key_with_too_many_tags_raises_error,
// test_tag_key_with_duplicate_tag_keys_raises_error,
// test_create_key_with_invalid_tag_key, test_key_with_long_tag_value_raises_error in
// https://github.com/localstack/localstack/blob/main/tests/aws/services/kms/test_kms.snapshot.json).
func checkTags(tags []tag, existing map[string]bool) handler.Response {
	for i, t := range tags {
		if resp := checkTag(i+1, t); !resp.Empty() {
			return resp
		}
	}
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case strings.HasPrefix(strings.ToLower(*t.TagKey), "aws:"):
			return errorResponse(400, "TagException", "Tags beginning with aws: are reserved")
		case seen[*t.TagKey]:
			return errorResponse(400, "TagException", "Duplicate tag keys")
		}
		seen[*t.TagKey] = true
	}
	for k := range existing {
		seen[k] = true
	}
	if len(seen) > maxTagsPerKey {
		return errorResponse(400, "TagException", "Too many tags")
	}
	return handler.Response{}
}

// checkTag checks the lengths of the i-th tag (1-based, as AWS counts).
func checkTag(i int, t tag) handler.Response {
	const prefix = "1 validation error detected: "
	switch {
	case t.TagKey == nil:
		return validationError(prefix+"Value null at 'tags.%d.member.tagKey' failed to satisfy constraint: Member must not be null", i)
	case t.TagValue == nil:
		return validationError(prefix+"Value null at 'tags.%d.member.tagValue' failed to satisfy constraint: Member must not be null", i)
	case *t.TagKey == "":
		return validationError(prefix+"Value '' at 'tags.%d.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1", i)
	case utf8.RuneCountInString(*t.TagKey) > 128:
		return validationError(prefix+"Value '%s' at 'tags.%d.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128", *t.TagKey, i)
	case utf8.RuneCountInString(*t.TagValue) > 256:
		return validationError(prefix+"Value '%s' at 'tags.%d.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256", *t.TagValue, i)
	}
	return handler.Response{}
}

// tagResource replaces local-kms's, which checks the lengths of tags in
// bytes: it checks the tags against AWS's rules, counting the key's
// existing tags towards the limit.
func (f *Front) tagResource(c *call) handler.Response {
	var in struct {
		KeyId string
		Tags  []tag
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if in.Tags == nil {
		return validationError("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	if resp := checkTags(in.Tags, nil); !resp.Empty() {
		return resp
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	if pendingDeletion(key) {
		return invalidState("%s is pending deletion.", key.GetArn())
	}
	existing := map[string]bool{}
	current, _ := c.t.db.ListTags(key.GetArn(), maxTagsPerKey+1, "")
	for _, t := range current {
		existing[t.TagKey] = true
	}
	if resp := checkTags(in.Tags, existing); !resp.Empty() {
		return resp
	}
	if err := saveTags(c.t, key, in.Tags); err != nil {
		return saveFailed(err)
	}
	return handler.Response{Code: 200}
}

// saveTags adds tags to a key, or gives existing tags new values.
func saveTags(t *tenant, key cmk.Key, tags []tag) error {
	for _, tg := range tags {
		if err := t.db.SaveTag(key, &data.Tag{TagKey: *tg.TagKey, TagValue: *tg.TagValue}); err != nil {
			return err
		}
	}
	return nil
}
