package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// The deletion of a Key waits while Aliases or Grants of its namespace
// still reference it (spec.deletionProtection.references, Wait by
// default): scheduling the key's deletion would break them, and what they
// protect goes with it. The operator never deletes them itself; the wait
// ends when they are deleted or reference another key, which the watch
// below notices.

// keyIDField indexes the Keys being deleted by their KMS key id, so that an
// Alias or Grant that names the key by id (or recorded it) finds the Key
// waiting for it. Only those: an index entry of every Key cost about half a
// kilobyte each (a namespaced and a cluster-wide value), 5 MB at 10,000.
const keyIDField = ".status.keyID"

func indexKeyID(o client.Object) []string {
	key := o.(*kmsv1alpha1.Key)
	if id := key.Status.KeyID; id != "" && !key.DeletionTimestamp.IsZero() {
		return []string{id}
	}
	return nil
}

// referenceField indexes Aliases and Grants by what they reference:
// "name:<Key>" and "id:<key id>", so that a Key being deleted finds its
// referrers without reading every object of its namespace.
const referenceField = ".keyReference"

func indexReference(o client.Object) []string {
	ref := referenceOf(o)
	var values []string
	if ref.name != "" {
		values = append(values, "name:"+ref.name)
	}
	if ref.keyID != "" {
		values = append(values, "id:"+ref.keyID)
	}
	return values
}

// indexReferrers registers the indexes the Key reconciler reads.
func indexReferrers(ctx context.Context, indexer client.FieldIndexer) error {
	return errors.Join(
		indexer.IndexField(ctx, &kmsv1alpha1.Key{}, keyIDField, indexKeyID),
		indexer.IndexField(ctx, &kmsv1alpha1.Alias{}, referenceField, indexReference),
		indexer.IndexField(ctx, &kmsv1alpha1.Grant{}, referenceField, indexReference),
	)
}

// keyReference is what an Alias or Grant references: a Key by name, and a
// KMS key by the id and region recorded in its status.
type keyReference struct {
	name, keyID, region string
	deleting            bool
}

func referenceOf(o client.Object) keyReference {
	ref := keyReference{deleting: !o.GetDeletionTimestamp().IsZero()}
	switch o := o.(type) {
	case *kmsv1alpha1.Alias:
		if o.Spec.TargetKeyRef != nil {
			ref.name = o.Spec.TargetKeyRef.Name
		}
		ref.keyID, ref.region = o.Status.TargetKeyID, regionOfARN(o.Status.ARN)
	case *kmsv1alpha1.Grant:
		if o.Spec.KeyRef != nil {
			ref.name = o.Spec.KeyRef.Name
		}
		ref.keyID, ref.region = o.Status.KeyID, regionOfARN(o.Status.KeyARN)
	}
	return ref
}

// references reports whether ref holds key: by its name, or by its KMS key
// (a multi-Region key's replicas share its id: the region decides). An
// object being deleted holds nothing: it is on its way out, and its own
// deletion does not need the Key object.
func (ref keyReference) references(key *kmsv1alpha1.Key) bool {
	switch {
	case ref.deleting:
		return false
	case ref.name == key.Name:
		return true
	}
	return ref.keyID != "" && ref.keyID == key.Status.KeyID && (ref.region == "" || ref.region == regionOfARN(key.Status.ARN))
}

// holdForReferences holds the deletion of key's KMS key id while objects of
// its namespace reference the Key, naming them. It reads only the cache.
func (r *KeyReconciler) holdForReferences(ctx context.Context, key *kmsv1alpha1.Key, id string) error {
	found := map[string]bool{}
	for _, value := range []string{"name:" + key.Name, "id:" + id} {
		var aliases kmsv1alpha1.AliasList
		var grants kmsv1alpha1.GrantList
		for _, l := range []client.ObjectList{&aliases, &grants} {
			if err := r.client.List(ctx, l, client.InNamespace(key.Namespace), client.MatchingFields{referenceField: value}); err != nil {
				return err
			}
		}
		for i := range aliases.Items {
			found["Alias "+aliases.Items[i].Name] = found["Alias "+aliases.Items[i].Name] || referenceOf(&aliases.Items[i]).references(key)
		}
		for i := range grants.Items {
			found["Grant "+grants.Items[i].Name] = found["Grant "+grants.Items[i].Name] || referenceOf(&grants.Items[i]).references(key)
		}
	}
	var names []string
	for name, refers := range found {
		if refers {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	if len(names) > 10 {
		names = append(names[:10], fmt.Sprintf("and %d more", len(names)-10))
	}
	return heldDeletion(kmsv1alpha1.ReasonStillReferenced, fmt.Sprintf(
		"the Key is still referenced by %s in namespace %s: the deletion of KMS key %s waits until they are deleted or reference another key. "+
			"To delete the key anyway, set spec.deletionProtection.references: Ignore (the operator never deletes them itself)",
		strings.Join(names, ", "), key.Namespace, id))
}

// heldKeysOf maps an Alias or Grant to the Keys being deleted that it
// references (by name or by key id), so that a Key waiting for its
// referrers goes on as soon as one is deleted or moves elsewhere. For an
// update, the old object is mapped too (controller-runtime maps both).
func (r *KeyReconciler) heldKeysOf(ctx context.Context, o client.Object) []reconcile.Request {
	ref := referenceOf(o)
	var keys []kmsv1alpha1.Key
	if ref.name != "" {
		var key kmsv1alpha1.Key
		if err := r.client.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: ref.name}, &key); err == nil {
			keys = append(keys, key)
		}
	}
	if ref.keyID != "" {
		var byID kmsv1alpha1.KeyList
		if err := r.client.List(ctx, &byID, client.InNamespace(o.GetNamespace()), client.MatchingFields{keyIDField: ref.keyID}); err == nil {
			keys = append(keys, byID.Items...)
		}
	}
	var reqs []reconcile.Request
	for i := range keys {
		if !keys[i].DeletionTimestamp.IsZero() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&keys[i])})
		}
	}
	return reqs
}

// referenceReleased lets through the changes of an Alias or Grant that can
// end a Key's wait: its deletion, or a reference that changed. Creations
// cannot, and other updates (status conditions) would cost lookups for
// nothing.
var referenceReleased = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return referenceOf(e.ObjectOld) != referenceOf(e.ObjectNew)
	},
}
