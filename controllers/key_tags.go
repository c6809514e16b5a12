package controllers

import (
	"maps"
	"slices"
	"strings"
	"time"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// ownerTagKeys are the ownership tags the operator puts on every key it
// creates or adopts; Retain removes them.
var ownerTagKeys = []string{kmsv1alpha1.TagOwnerUID, kmsv1alpha1.TagOwnerNS, kmsv1alpha1.TagOwnerName, kmsv1alpha1.TagOwnerCluster, kmsv1alpha1.TagOwnerKind}

// desiredTags is the spec's tags plus the ownership tags that tie the key to
// this object: they make crash recovery and tenancy checks possible. An
// observed key is never claimed, so it wants the spec's tags only.
func desiredTags(key *kmsv1alpha1.Key, cluster string) map[string]string {
	tags := maps.Clone(key.Spec.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	if key.Spec.Observes() {
		return tags
	}
	maps.Copy(tags, ownerOf(kmsv1alpha1.KindKey, key, cluster).tags())
	return tags
}

// changedTags are the wanted tags that are missing or have another value.
func changedTags(want, got map[string]string) map[string]string {
	set := map[string]string{}
	for k, v := range want {
		if cur, ok := got[k]; !ok || cur != v {
			set[k] = v
		}
	}
	return set
}

// extraTags are tags the spec does not declare. Reserved operator tags are
// never removed: they may belong to another object's claim.
func extraTags(want, got map[string]string) []string {
	var del []string
	for k := range got {
		if _, ok := want[k]; !ok && !strings.HasPrefix(k, kmsv1alpha1.TagPrefix) {
			del = append(del, k)
		}
	}
	slices.Sort(del)
	return del
}

// otherOwner reports whether a key's ownership tags name an object other than
// key (another cluster, namespace, name or kind). A Key re-created with the
// same namespace and name (a new UID) is the same owner: that is how a
// deleted and re-applied Key gets its key back. Refusals built on it never
// name the other owner: that would disclose another tenant's objects.
func otherOwner(tags map[string]string, key *kmsv1alpha1.Key, cluster string) bool {
	return ownerOf(kmsv1alpha1.KindKey, key, cluster).otherOwner(tags)
}

// awaitTags turns a key this operator created that KMS lists without its
// ownership tags, less than the consistency window after its creation, into
// a wait. CreateKey wrote those tags, but ListResourceTags lags behind it
// (kms-notes.md; the KMS server's tagLag shows a new key with no tags), and
// writing them again would be a KMS write no difference justifies. The
// key's creation date comes from KMS, so the rule holds after a restart,
// when the operator remembers none of its writes. Past the window, missing
// ownership tags are drift and are written back. An adopted key
// (spec.keyID) is not waited for: its ownership tags are the operator's to
// add.
func (r *KeyReconciler) awaitTags(key *kmsv1alpha1.Key, k *kmsclient.Key, tags map[string]string) error {
	if key.Spec.KeyID != "" || tags[kmsv1alpha1.TagOwnerName] != "" {
		return nil
	}
	age := time.Since(k.CreationDate)
	if age >= r.consistencyWindow() {
		return nil
	}
	return propagating("KMS lists none of the tags of key %s, created %s ago, yet; looking again before writing them", k.ID, age.Round(time.Second))
}
