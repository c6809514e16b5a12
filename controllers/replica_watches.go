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

// A Key and its ReplicaKeys wake each other: a ReplicaKey waits for its Key's
// multi-Region key and shows the family's primary region; a Key's failover
// and deletion wait for its replicas.

// replicaPrimaryField indexes ReplicaKeys by the Key they replicate.
const replicaPrimaryField = ".spec.primaryKeyRef.name"

func indexReplicaPrimary(o client.Object) []string {
	if ref := o.(*kmsv1alpha1.ReplicaKey).Spec.PrimaryKeyRef; ref != nil {
		return []string{ref.Name}
	}
	return nil
}

// primaryChanged lets through the Key updates a ReplicaKey cares about: its
// key (id, ARN, deletion) and the family's primary region.
var primaryChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		oldKey, okOld := e.ObjectOld.(*kmsv1alpha1.Key)
		newKey, okNew := e.ObjectNew.(*kmsv1alpha1.Key)
		if !okOld || !okNew {
			return true
		}
		return keyReferenceChanged.Update(e) || oldKey.Status.PrimaryRegion != newKey.Status.PrimaryRegion
	},
}

// replicaChanged lets through the ReplicaKey events a primary Key may be
// waiting for: a replica made (a failover to its region) and a ReplicaKey
// gone (the primary's deletion). Others would cost the Key a KMS read each.
var replicaChanged = predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, okOld := e.ObjectOld.(*kmsv1alpha1.ReplicaKey)
		n, okNew := e.ObjectNew.(*kmsv1alpha1.ReplicaKey)
		return !okOld || !okNew || o.Status.KeyID != n.Status.KeyID
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// primaryKeyOf maps a ReplicaKey to the Key it replicates, when that Key
// waits for its replicas: it declares a failover, or it is being deleted.
func primaryKeyOf(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		rk, ok := o.(*kmsv1alpha1.ReplicaKey)
		if !ok || rk.Spec.PrimaryKeyRef == nil {
			return nil
		}
		name := client.ObjectKey{Namespace: rk.Namespace, Name: rk.Spec.PrimaryKeyRef.Name}
		var key kmsv1alpha1.Key
		if err := c.Get(ctx, name, &key); err != nil || (key.Spec.PrimaryRegion == "" && key.DeletionTimestamp.IsZero()) {
			return nil
		}
		return []reconcile.Request{{NamespacedName: name}}
	}
}

// refIndexValue is the index value of a key reference: the Key's name, or
// for a ReplicaKey "ReplicaKey/<name>", so that a Key and a ReplicaKey of
// the same name wake only their own referrers.
func refIndexValue(ref *kmsv1alpha1.LocalObjectReference) string {
	if ref.IsReplicaKey() {
		return kmsv1alpha1.KindReplicaKey + "/" + ref.Name
	}
	return ref.Name
}

// refIndexValueOf is refIndexValue of a reference to obj.
func refIndexValueOf(obj client.Object) string {
	if _, ok := obj.(*kmsv1alpha1.ReplicaKey); ok {
		return kmsv1alpha1.KindReplicaKey + "/" + obj.GetName()
	}
	return obj.GetName()
}

// replicaReferenceChanged lets through the ReplicaKey updates that change
// what an Alias's or Grant's reference resolves to.
var replicaReferenceChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, okOld := e.ObjectOld.(*kmsv1alpha1.ReplicaKey)
		n, okNew := e.ObjectNew.(*kmsv1alpha1.ReplicaKey)
		if !okOld || !okNew {
			return true
		}
		return o.Status.KeyID != n.Status.KeyID || o.Status.ARN != n.Status.ARN || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
	},
}
