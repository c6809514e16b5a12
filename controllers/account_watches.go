package controllers

import (
	"context"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// Keys, Aliases and Grants follow their account: they are looked at again
// when their AWSAccount turns Ready or not, changes or goes, and when their
// namespace's default account or labels change (allowedNamespaces may select
// by label). Updates that change none of that (a credentials refresh) cost
// nothing.

// accountField indexes objects by the AWSAccount they name or use.
const accountField = "account"

func indexAccount(o client.Object) []string {
	ao, ok := o.(accountObject)
	if !ok {
		return nil
	}
	var names []string
	if ref := ao.GetAccountRef(); ref != nil {
		names = append(names, ref.Name)
	}
	if a := ao.GetAccount(); a != "" && !slices.Contains(names, a) {
		names = append(names, a)
	}
	return names
}

// watchAccounts adds the account watches to a kind's controller. Namespaces
// are cluster-scoped and all of them are seen; only the ones this operator
// watches lead to its objects.
func watchAccounts(b *builder.Builder, c client.Client, list client.ObjectList, o Options) *builder.Builder {
	watched := predicate.NewPredicateFuncs(func(ns client.Object) bool { return o.watches(ns.GetName()) })
	return b.
		Watches(&kmsv1alpha1.AWSAccount{}, handler.EnqueueRequestsFromMapFunc(usersOf(c, list, o)), builder.WithPredicates(accountChanged)).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(inNamespace(c, list)), builder.WithPredicates(namespaceAccountChanged, watched))
}

// accountChanged lets through what changes whether an AWSAccount can be
// used: its spec, its Ready status, its deletion.
var accountChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		oldA, okOld := e.ObjectOld.(*kmsv1alpha1.AWSAccount)
		newA, okNew := e.ObjectNew.(*kmsv1alpha1.AWSAccount)
		if !okOld || !okNew {
			return true
		}
		return oldA.Generation != newA.Generation || readyStatus(oldA) != readyStatus(newA) ||
			oldA.DeletionTimestamp.IsZero() != newA.DeletionTimestamp.IsZero()
	},
}

func readyStatus(a *kmsv1alpha1.AWSAccount) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(a.Status.Conditions, kmsv1alpha1.ConditionReady); c != nil && c.ObservedGeneration == a.Generation {
		return c.Status
	}
	return metav1.ConditionUnknown
}

// namespaceAccountChanged lets through a namespace's label changes and
// changes of its default account.
var namespaceAccountChanged = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) ||
			e.ObjectOld.GetAnnotations()[kmsv1alpha1.AnnotationDefaultAccount] != e.ObjectNew.GetAnnotations()[kmsv1alpha1.AnnotationDefaultAccount]
	},
}

// usersOf maps an AWSAccount to the objects of list's kind that name or use
// it, and to every object of the namespaces whose default it is.
func usersOf(c client.Client, list client.ObjectList, o Options) handler.MapFunc {
	return func(ctx context.Context, acct client.Object) []reconcile.Request {
		reqs := requestsOf(ctx, c, list, client.MatchingFields{accountField: acct.GetName()})
		var namespaces metav1.PartialObjectMetadataList
		namespaces.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
		if err := c.List(ctx, &namespaces); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing namespaces")
			return reqs
		}
		for _, ns := range namespaces.Items {
			if ns.Annotations[kmsv1alpha1.AnnotationDefaultAccount] == acct.GetName() && o.watches(ns.Name) {
				reqs = append(reqs, requestsOf(ctx, c, list, client.InNamespace(ns.Name))...)
			}
		}
		return reqs
	}
}

// inNamespace maps a Namespace to every object of list's kind in it.
func inNamespace(c client.Client, list client.ObjectList) handler.MapFunc {
	return func(ctx context.Context, ns client.Object) []reconcile.Request {
		return requestsOf(ctx, c, list, client.InNamespace(ns.GetName()))
	}
}

// requestsOf lists objects of list's kind and returns a request for each.
func requestsOf(ctx context.Context, c client.Client, list client.ObjectList, opts ...client.ListOption) []reconcile.Request {
	l := list.DeepCopyObject().(client.ObjectList)
	if err := c.List(ctx, l, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing objects to reconcile")
		return nil
	}
	var reqs []reconcile.Request
	_ = meta.EachListItem(l, func(o runtime.Object) error {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o.(client.Object))})
		return nil
	})
	return reqs
}
