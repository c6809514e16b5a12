package front

// The tenant's keys with their current tags, for tag:GetResources. Reading
// every key and its tags from the database on every call made GetResources
// cost O(keys) database reads, which dominated a bench creating thousands of
// keys (one GetResources per new key). The index is built on the first call
// and kept up to date by the writes that change a key's tags or deletion
// date: they mark the key, and the next call reads just the marked keys
// again. It lives in memory only; a restart rebuilds it.

import (
	"math"
	"slices"

	"github.com/nsmithuk/local-kms/src/cmk"
)

type tagIndex struct {
	built bool
	keys  map[string]indexedKey // by key ARN
	dirty map[string]bool
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

// indexedKeys returns the tenant's keys, sorted by ARN, with their current
// tags and metadata.
func (t *tenant) indexedKeys() ([]string, map[string]indexedKey, error) {
	ix := &t.index
	if !ix.built {
		keys, err := t.db.ListKeys(t.arnPrefix()+"key/", math.MaxInt64, "")
		if err != nil {
			return nil, nil, err
		}
		ix.keys, ix.dirty = map[string]indexedKey{}, map[string]bool{}
		for _, key := range keys {
			ix.keys[key.GetArn()] = t.indexEntry(key)
		}
		ix.built = true
	}
	for arn := range ix.dirty {
		key, err := t.db.LoadKey(arn)
		if err != nil || key == nil {
			delete(ix.keys, arn)
		} else {
			ix.keys[arn] = t.indexEntry(key)
		}
		delete(ix.dirty, arn)
	}
	arns := make([]string, 0, len(ix.keys))
	for arn := range ix.keys {
		arns = append(arns, arn)
	}
	slices.Sort(arns)
	return arns, ix.keys, nil
}

func (t *tenant) indexEntry(key cmk.Key) indexedKey {
	e := indexedKey{md: *key.GetMetadata(), tags: map[string]string{}}
	tags, _ := t.db.ListTags(key.GetArn(), maxTagsPerKey+1, "")
	for _, tg := range tags {
		e.tags[tg.TagKey] = tg.TagValue
	}
	return e
}
