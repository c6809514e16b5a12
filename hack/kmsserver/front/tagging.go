package front

// The Resource Groups Tagging API's GetResources, for the KMS keys of the
// request's tenant (the SDK sends X-Amz-Target
// ResourceGroupsTaggingAPI_20170126.GetResources, JSON 1.1)
// (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html).

import (
	"encoding/base64"
	"maps"
	"slices"
	"time"

	"github.com/nsmithuk/local-kms/src/handler"
)

// serveTagging answers a Resource Groups Tagging API request.
func (f *Front) serveTagging(c *call, body []byte) handler.Response {
	h, ok := f.tagging[c.op]
	if !ok {
		return errorResponse(400, "UnknownOperationException", "operation not supported: "+c.op)
	}
	c.body = c.t.toInternal(body)
	return h(c)
}

type tagFilter struct {
	Key    string
	Values []string
}

func invalidParameter(message string) handler.Response {
	return errorResponse(400, "InvalidParameterException", message)
}

// getResources answers the tenant's keys that have tags, filtered by tags
// (AND across filters, OR within a filter's values, any value for a filter
// without values) and by type (kms, kms:key), as they were taggingAPILag
// ago, in ARN order. GetResources "does not return untagged resources";
// keys pending deletion keep their tags and are resources until deleted, so
// they are listed (AWS even lists deleted resources for a while,
// https://github.com/aws/aws-sdk/issues/302). The pagination token is the
// last ARN answered; "" ends the list.
func (f *Front) getResources(c *call) handler.Response {
	var in struct {
		TagFilters          []tagFilter
		ResourceTypeFilters []string
		ResourceARNList     []string
		ResourcesPerPage    *int
		PaginationToken     string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	perPage := 100
	if in.ResourcesPerPage != nil {
		perPage = *in.ResourcesPerPage
	}
	if resp := checkResourceFilters(perPage, in.TagFilters); !resp.Empty() {
		return resp
	}
	after, err := base64.RawURLEncoding.DecodeString(in.PaginationToken)
	if err != nil {
		return invalidParameter("PaginationToken is not valid: " + in.PaginationToken)
	}
	page := []map[string]any{}
	if !kmsKeyType(in.ResourceTypeFilters) {
		return jsonResponse(200, map[string]any{"ResourceTagMappingList": page, "PaginationToken": ""})
	}
	c.t.purgeExpiredKeys(c.now)
	arns, keys, err := c.t.indexedKeys(in.TagFilters)
	if err != nil {
		return errorResponse(500, "InternalServiceException", err.Error())
	}
	then := c.now.Add(-time.Duration(c.cfg.TaggingAPILag))
	next := ""
	for _, arn := range arns {
		key, ok := keys[arn]
		if !ok {
			continue // a key written within the lag and gone since
		}
		if arn <= string(after) || expired(&key.md, c.now) ||
			(len(in.ResourceARNList) > 0 && !slices.Contains(in.ResourceARNList, arn)) {
			continue
		}
		tags := key.tags
		if past, changed := c.t.asOf(arn, then); changed {
			tags = past.tags
		}
		if len(tags) == 0 || !matchTags(tags, in.TagFilters) {
			continue
		}
		if len(page) == perPage {
			next = base64.RawURLEncoding.EncodeToString([]byte(page[len(page)-1]["ResourceARN"].(string)))
			break
		}
		page = append(page, map[string]any{"ResourceARN": arn, "Tags": tagList(tags)})
	}
	return jsonResponse(200, map[string]any{"ResourceTagMappingList": page, "PaginationToken": next})
}

// checkResourceFilters applies GetResources' limits: 1 to 100 resources a
// page, up to 50 tag filters of up to 20 values each.
func checkResourceFilters(perPage int, filters []tagFilter) handler.Response {
	switch {
	case perPage < 1 || perPage > 100:
		return invalidParameter("ResourcesPerPage must be between 1 and 100")
	case len(filters) > 50:
		return invalidParameter("TagFilters can have at most 50 filters")
	}
	for _, tf := range filters {
		if tf.Key == "" || len(tf.Values) > 20 {
			return invalidParameter("each TagFilter needs a Key and at most 20 Values")
		}
	}
	return handler.Response{}
}

// kmsKeyType reports whether KMS keys pass resource type filters.
func kmsKeyType(filters []string) bool {
	return len(filters) == 0 || slices.Contains(filters, "kms") || slices.Contains(filters, "kms:key")
}

func matchTags(tags map[string]string, filters []tagFilter) bool {
	for _, tf := range filters {
		v, ok := tags[tf.Key]
		if !ok || (len(tf.Values) > 0 && !slices.Contains(tf.Values, v)) {
			return false
		}
	}
	return true
}

func tagList(tags map[string]string) []map[string]string {
	list := []map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		list = append(list, map[string]string{"Key": k, "Value": tags[k]})
	}
	return list
}
