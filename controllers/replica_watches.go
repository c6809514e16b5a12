package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
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

// replicaChanged lets through the ReplicaKey updates its primary Key cares
// about: a replica made, settled, failed over to, or going away.
var replicaChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, okOld := e.ObjectOld.(*kmsv1alpha1.ReplicaKey)
		n, okNew := e.ObjectNew.(*kmsv1alpha1.ReplicaKey)
		if !okOld || !okNew {
			return true
		}
		return o.Status.KeyID != n.Status.KeyID || o.Status.KeyState != n.Status.KeyState ||
			o.Status.PrimaryRegion != n.Status.PrimaryRegion || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
	},
}

// primaryKeyOf maps a ReplicaKey to the Key it replicates.
func primaryKeyOf(_ context.Context, o client.Object) []reconcile.Request {
	rk, ok := o.(*kmsv1alpha1.ReplicaKey)
	if !ok || rk.Spec.PrimaryKeyRef == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: rk.Namespace, Name: rk.Spec.PrimaryKeyRef.Name}}}
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
