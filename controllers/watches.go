package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// Aliases and Grants watch the Key they reference, so that one applied
// together with its Key converges as soon as the Key has a KMS key, without
// waiting in the error backoff.

// keyReferenceChanged lets through the Key updates that change what a
// reference resolves to; other Key updates would cost the referencing objects
// a KMS read each for nothing.
var keyReferenceChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		oldKey, okOld := e.ObjectOld.(*kmsv1alpha1.Key)
		newKey, okNew := e.ObjectNew.(*kmsv1alpha1.Key)
		if !okOld || !okNew {
			return true
		}
		return oldKey.Status.KeyID != newKey.Status.KeyID || oldKey.Status.ARN != newKey.Status.ARN ||
			oldKey.DeletionTimestamp.IsZero() != newKey.DeletionTimestamp.IsZero()
	},
}

// referrersOf maps a Key (a ReplicaKey, a Secret) to the objects of its
// namespace that reference it, found through the field index on list's kind.
func referrersOf(c client.Client, list client.ObjectList, field string) handler.MapFunc {
	return func(ctx context.Context, key client.Object) []reconcile.Request {
		return requestsOf(ctx, c, list, client.InNamespace(key.GetNamespace()), client.MatchingFields{field: refIndexValueOf(key)})
	}
}
