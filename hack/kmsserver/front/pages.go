package front

import (
	"maps"
	"slices"
	"strconv"

	"github.com/nsmithuk/local-kms/src/handler"
)

// pageBounds is one page of a list: items [start, end) and the marker of the
// next page, if any.
type pageBounds struct {
	start, end int
	next       string
}

// paginate pages a list of n items. Markers are offsets into the list, which
// is stable enough for a test server.
func paginate(n int, limit *int, defaultLimit, maxLimit int, marker string) (pageBounds, handler.Response) {
	size := defaultLimit
	if limit != nil {
		size = *limit
		if size < 1 || size > maxLimit {
			return pageBounds{}, validationError("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d", size, maxLimit)
		}
	}
	start := 0
	if marker != "" {
		var err error
		start, err = strconv.Atoi(marker)
		if err != nil || start < 0 || start > n {
			return pageBounds{}, errorResponse(400, "InvalidMarkerException", "Invalid marker: "+marker)
		}
	}
	p := pageBounds{start: start, end: min(start+size, n)}
	if p.end < n {
		p.next = strconv.Itoa(p.end)
	}
	return p, handler.Response{}
}

// output builds a list response holding items under name.
func (p pageBounds) output(name string, items any) map[string]any {
	out := map[string]any{name: items, "Truncated": p.next != ""}
	if p.next != "" {
		out["NextMarker"] = p.next
	}
	return out
}

// tagPage pages tags as local-kms does: in key order, the marker being the
// next page's first key.
func tagPage(tags map[string]string, limit *int, marker string) handler.Response {
	size := maxTagsPerKey
	if limit != nil {
		size = *limit
		if size < 1 || size > maxTagsPerKey {
			return validationError("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Minimum value of 1. Maximum value of 50.", size)
		}
	}
	keys := slices.Sorted(maps.Keys(tags))
	start := 0
	if marker != "" {
		start = slices.Index(keys, marker)
		if start < 0 {
			return errorResponse(400, "InvalidMarkerException", "")
		}
	}
	end := min(start+size, len(keys))
	out := map[string]any{"Truncated": end < len(keys)}
	if end < len(keys) {
		out["NextMarker"] = keys[end]
	}
	list := []map[string]string{}
	for _, k := range keys[start:end] {
		list = append(list, map[string]string{"TagKey": k, "TagValue": tags[k]})
	}
	out["Tags"] = list
	return jsonResponse(200, out)
}
