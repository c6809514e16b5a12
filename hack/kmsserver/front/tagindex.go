package front

// The tenant's keys with their current tags, for tag:GetResources. Reading
// every key and its tags from the database on every call made GetResources
// cost O(keys) database reads, which dominated a bench creating thousands of
// keys (one GetResources per new key). The index is built on the first call
// and kept up to date by the writes that change a key's tags or deletion
// date: they mark the key, and the next call reads just the marked keys
// again. It lives in memory only; a restart rebuilds it.

import (
	"maps"
	"math"
	"slices"

	"github.com/nsmithuk/local-kms/src/cmk"
)

type tagIndex struct {
	built bool
	keys  map[string]indexedKey // by key ARN
	dirty map[string]bool
	// byTag is the ARNs of the keys with each tag ("key=value"): a call
	// filtered by tags reads only those keys.
	byTag map[string]map[string]bool
	// sorted is every ARN in order, nil when keys changed since.
	sorted []string
}

type indexedKey struct {
	md   cmk.KeyMetadata
	tags map[string]string
}

// markChanged marks a key whose tags or deletion date may have changed.
func (t *tenant) markChanged(arn string) {
	if t.index.built {
		t.index.dirty[arn] = true
	}
}

// indexedKeys returns, sorted by ARN, the tenant's keys that may match
// filters now or as of the tagging API's lag (the keys written within it,
// whose past tags may differ), and every key's current tags and metadata.
func (t *tenant) indexedKeys(filters []tagFilter) ([]string, map[string]indexedKey, error) {
	ix := &t.index
	if err := t.refreshIndex(); err != nil {
		return nil, nil, err
	}
	candidates := ix.candidates(filters)
	if candidates == nil {
		if ix.sorted == nil {
			ix.sorted = slices.Sorted(maps.Keys(ix.keys))
		}
		return ix.sorted, ix.keys, nil
	}
	for arn := range t.history {
		candidates[arn] = true
	}
	return slices.Sorted(maps.Keys(candidates)), ix.keys, nil
}

// candidates are the keys with one of the values of the most selective
// filter that names values (an owner's name, not its cluster), nil when no
// filter names any (every key is a candidate).
func (ix *tagIndex) candidates(filters []tagFilter) map[string]bool {
	best, size := -1, 0
	for i, f := range filters {
		n := 0
		for _, v := range f.Values {
			n += len(ix.byTag[f.Key+"="+v])
		}
		if len(f.Values) > 0 && (best < 0 || n < size) {
			best, size = i, n
		}
	}
	if best < 0 {
		return nil
	}
	out := make(map[string]bool, size)
	for _, v := range filters[best].Values {
		for arn := range ix.byTag[filters[best].Key+"="+v] {
			out[arn] = true
		}
	}
	return out
}

// refreshIndex builds the index, or reads the keys marked since again.
func (t *tenant) refreshIndex() error {
	ix := &t.index
	if !ix.built {
		keys, err := t.db.ListKeys(t.arnPrefix()+"key/", math.MaxInt64, "")
		if err != nil {
			return err
		}
		ix.keys, ix.dirty, ix.byTag = map[string]indexedKey{}, map[string]bool{}, map[string]map[string]bool{}
		for _, key := range keys {
			ix.put(key.GetArn(), t.indexEntry(key))
		}
		ix.built = true
	}
	for arn := range ix.dirty {
		key, err := t.db.LoadKey(arn)
		if err != nil || key == nil {
			ix.remove(arn)
		} else {
			ix.put(arn, t.indexEntry(key))
		}
		delete(ix.dirty, arn)
	}
	return nil
}

func (ix *tagIndex) put(arn string, e indexedKey) {
	if _, ok := ix.keys[arn]; !ok {
		ix.sorted = nil
	}
	ix.remove(arn)
	ix.keys[arn] = e
	for k, v := range e.tags {
		set := ix.byTag[k+"="+v]
		if set == nil {
			set = map[string]bool{}
			ix.byTag[k+"="+v] = set
		}
		set[arn] = true
	}
}

func (ix *tagIndex) remove(arn string) {
	old, ok := ix.keys[arn]
	if !ok {
		return
	}
	for k, v := range old.tags {
		delete(ix.byTag[k+"="+v], arn)
		if len(ix.byTag[k+"="+v]) == 0 {
			delete(ix.byTag, k+"="+v)
		}
	}
	delete(ix.keys, arn)
	ix.sorted = nil
}

func (t *tenant) indexEntry(key cmk.Key) indexedKey {
	e := indexedKey{md: *key.GetMetadata(), tags: map[string]string{}}
	tags, _ := t.db.ListTags(key.GetArn(), maxTagsPerKey+1, "")
	for _, tg := range tags {
		e.tags[tg.TagKey] = tg.TagValue
	}
	return e
}
