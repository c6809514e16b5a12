// Package controllers holds the Key, ReplicaKey, Alias and Grant reconcilers. They share
// one lifecycle (lifecycle.go); each kind adds only its own steps.
package controllers

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// Options configure every reconciler; main.go fills them from flags.
type Options struct {
	KMS kmsclient.Provider
	// Accounts sets up the clients of AWSAccounts (nil: none are used).
	Accounts                    kmsclient.Accounts
	SyncPeriod                  time.Duration
	MaxConcurrentReconciles     int
	ClusterName                 string
	AllowAdoption               bool
	AllowUnmanagedKeyReferences bool
	// ConsistencyWindow bounds how long KMS's answers may lag behind the
	// operator's own writes (consistency.go); 0 is DefaultConsistencyWindow.
	ConsistencyWindow time.Duration
	// ReadKeyLastUsage shows every Key's last use in status
	// (key_last_usage.go), at a GetKeyLastUsage call per sync period.
	ReadKeyLastUsage bool
	// WatchNamespaces are the namespaces whose objects this operator
	// manages (--watch-namespaces); empty is all of them.
	WatchNamespaces []string
}

// watches reports whether ns's objects are this operator's: its cache
// holds no others, and listing them fails.
func (o Options) watches(ns string) bool {
	return len(o.WatchNamespaces) == 0 || slices.Contains(o.WatchNamespaces, ns)
}

// The RBAC every reconciler needs besides its own kind. The reconcilers only
// ever patch (objects and their status) and set no ownerReferences, so the
// ClusterRole has no update verb and no finalizers subresource: least privilege
// that the e2e suite proves sufficient by running the operator with it.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupAll registers every controller with the manager.
func SetupAll(mgr ctrl.Manager, o Options) error {
	return errors.Join(
		(&KeyReconciler{Options: o}).SetupWithManager(mgr),
		(&AliasReconciler{Options: o}).SetupWithManager(mgr),
		(&GrantReconciler{Options: o}).SetupWithManager(mgr),
		(&AWSAccountReconciler{Options: o}).SetupWithManager(mgr),
		(&ReplicaKeyReconciler{Options: o}).SetupWithManager(mgr),
	)
}

// newController builds the controller of one kind whose objects live in an
// AWS account (list is the kind's list), triggered by spec changes only: the
// operator's own status writes would otherwise cost a KMS observation each,
// and drift is caught by the resync period. It also follows the objects'
// AWSAccounts and namespaces (account_watches.go).
func newController(mgr ctrl.Manager, kind string, forObject client.Object, list client.ObjectList, o Options) (*builder.Builder, error) {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), forObject, accountField, indexAccount); err != nil {
		return nil, err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named(strings.ToLower(kind)).
		For(forObject, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controllerOptions(o))
	return watchAccounts(b, mgr.GetClient(), list, o), nil
}

// controllerOptions are shared by the reconcilers. Failures back off from one
// second to five minutes: KMS quotas are small and shared by the whole account,
// so the default 5 ms start would turn an outage into a retry storm. The
// backoff never exceeds the sync period: a failure (an access denied until
// IAM is fixed, say) is not looked at less often than a healthy object.
func controllerOptions(o Options) controller.Options {
	n := o.MaxConcurrentReconciles
	if n < 1 {
		n = 1
	}
	maxDelay := 5 * time.Minute
	if o.SyncPeriod > time.Second && o.SyncPeriod < maxDelay {
		maxDelay = o.SyncPeriod
	}
	return controller.Options{
		MaxConcurrentReconciles: n,
		RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, maxDelay),
	}
}

// resync is when a healthy object is next observed in KMS to catch drift. The
// jitter spreads the resyncs of objects created together, so a thousand keys
// do not all hit the read quotas in the same second. Resyncs have low
// priority: a new or changed object never waits behind them.
func resync(period time.Duration) ctrl.Result {
	if period <= 0 {
		return ctrl.Result{}
	}
	jitter := time.Duration(rand.Int64N(int64(period)/5+1)) - period/10
	return ctrl.Result{RequeueAfter: period + jitter, Priority: ptr.To(handler.LowPriority)}
}

// normalPriority is the priority of everything but resyncs: a retry after an
// error, a short recheck, work that a spec change brought.
var normalPriority = ptr.To(0)
