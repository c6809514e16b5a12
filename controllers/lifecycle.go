package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"sync"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// object is what every kind the operator reconciles is: a namespaced object
// whose status has Ready and Synced conditions and an observedGeneration.
type object interface {
	client.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
	SetObservedGeneration(int64)
}

// steps are what a kind adds to the lifecycle: everything else (reading the
// object, the finalizer, errors, status, events, metrics) is shared.
type steps[T object] interface {
	// newObject returns an empty object of the kind.
	newObject() T
	// prepare says what obj's metadata needs before the kind writes to KMS:
	// whether it needs the finalizer, and any other change (nil for none).
	// The lifecycle writes both in one patch before reconcileNormal runs.
	prepare(obj T) (finalizer bool, mutate func())
	// reconcileNormal makes KMS match obj and sets its success conditions.
	reconcileNormal(ctx context.Context, obj T) (ctrl.Result, error)
	// reconcileDelete releases obj's KMS resources; the lifecycle then drops
	// the finalizer. It runs only while the finalizer is there.
	reconcileDelete(ctx context.Context, obj T) error
}

// lifecycle is the one reconcile loop every kind goes through, in the shape
// of Cluster API's reconcileNormal/reconcileDelete with a status write at the
// end of every path:
//
//  1. get the object (gone: nothing to do);
//  2. being deleted: the kind's delete step, then drop the finalizer;
//     otherwise: the finalizer (and the kind's metadata) before any KMS write,
//     then the kind's normal step;
//  3. finish: map an error to conditions, an event and a retry decision
//     (errors.go), count the outcome, and write status once, only when it
//     changed.
type lifecycle[T object] struct {
	kind     string // "Key", "Alias", "Grant": metrics and messages
	client   client.Client
	recorder events.EventRecorder
	steps    steps[T]
	options  Options
}

// Reconcile implements reconcile.Reconciler.
func (l *lifecycle[T]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := l.steps.newObject()
	if err := l.client.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		if !controllerutil.ContainsFinalizer(obj, kmsv1alpha1.Finalizer) {
			l.count(obj)
			return ctrl.Result{}, nil // released; nothing left to write
		}
		orig := obj.DeepCopyObject().(T)
		err := l.releaseAccount(ctx, obj)
		if err == nil {
			err = l.steps.reconcileDelete(ctx, obj)
		}
		if err == nil {
			err = l.dropFinalizer(ctx, obj)
		}
		return l.finish(ctx, orig, obj, ctrl.Result{}, err)
	}
	if wait := l.firstResyncAfterStart(obj); wait > 0 {
		return ctrl.Result{RequeueAfter: wait, Priority: ptr.To(handler.LowPriority)}, nil
	}
	orig := obj.DeepCopyObject().(T)
	account, err := l.useAccount(ctx, obj)
	if err != nil {
		return l.finish(ctx, orig, obj, ctrl.Result{}, err)
	}
	if err := l.prepare(ctx, obj); err != nil {
		// Most often a conflict with a stale cache: no KMS call was made and
		// nothing is known about KMS, so there is nothing to report.
		return ctrl.Result{}, err
	}
	// After prepare: its patch answers the stored object, whose status
	// does not name the account yet.
	if ao, ok := any(obj).(accountObject); ok {
		ao.SetAccount(account)
	}
	res, err := l.steps.reconcileNormal(ctx, obj)
	return l.finish(ctx, orig, obj, res, err)
}

// useAccount resolves and checks the account of the kinds whose KMS
// resources live in an AWS account: every kind but the AWSAccount itself.
func (l *lifecycle[T]) useAccount(ctx context.Context, obj T) (string, error) {
	ao, ok := any(obj).(accountObject)
	if !ok {
		return "", nil
	}
	return useAccount(ctx, l.client, l.options, ao)
}

// releaseAccount sets up the clients of the account an object being deleted
// has its KMS resource in.
func (l *lifecycle[T]) releaseAccount(ctx context.Context, obj T) error {
	ao, ok := any(obj).(accountObject)
	if !ok {
		return nil
	}
	return releaseAccount(ctx, l.client, l.options, ao)
}

// processStart is when this process started watching objects.
var processStart = time.Now()

// resyncBase is when this process first reconciled: its caches had synced.
// The first resyncs are spread from then on, not from processStart: listing
// ten thousand objects takes seconds, and every offset shorter than that
// would fall due at once.
var resyncBase = sync.OnceValue(time.Now)

// firstResyncAfterStart spreads the first observation of objects that were
// Ready when the process started over one sync period, instead of reading
// every key in KMS at once: a restart with ten thousand Ready keys would
// otherwise burst through the read quotas. Each object gets a fixed offset
// from its UID. Objects this process made Ready (their condition changed
// after it started; a second of margin for the condition's whole-second
// time), changed objects (a new generation) and objects not Ready go at once.
// It returns how long to wait, 0 for now.
func (l *lifecycle[T]) firstResyncAfterStart(obj T) time.Duration {
	period := l.options.SyncPeriod
	ready := findCondition(obj, kmsv1alpha1.ConditionReady)
	if period <= 0 || ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != obj.GetGeneration() ||
		!ready.LastTransitionTime.Time.Before(processStart.Add(-time.Second)) {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(obj.GetUID()))
	due := resyncBase().Add(time.Duration(h.Sum64() % uint64(period)))
	return time.Until(due)
}

// prepare writes, in one patch and before any KMS write, the finalizer and
// whatever else the kind needs in the object's metadata. The optimistic lock
// keeps finalizers and annotations others write meanwhile.
func (l *lifecycle[T]) prepare(ctx context.Context, obj T) error {
	finalizer, mutate := l.steps.prepare(obj)
	addFinalizer := finalizer && !controllerutil.ContainsFinalizer(obj, kmsv1alpha1.Finalizer)
	if !addFinalizer && mutate == nil {
		return nil
	}
	base := obj.DeepCopyObject().(T)
	if addFinalizer {
		controllerutil.AddFinalizer(obj, kmsv1alpha1.Finalizer)
	}
	if mutate != nil {
		mutate()
	}
	return l.client.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// dropFinalizer lets Kubernetes delete obj once its KMS resources are released.
func (l *lifecycle[T]) dropFinalizer(ctx context.Context, obj T) error {
	base := obj.DeepCopyObject().(T)
	controllerutil.RemoveFinalizer(obj, kmsv1alpha1.Finalizer)
	return client.IgnoreNotFound(l.client.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})))
}

// finish reports err (nil: the kind already set its conditions), counts the
// outcome and writes the status when it differs from orig's. It returns the
// retry decision: a retried failure goes back to the workqueue's backoff, a
// terminal one waits for the resync period or a change.
func (l *lifecycle[T]) finish(ctx context.Context, orig, obj T, res ctrl.Result, err error) (ctrl.Result, error) {
	reason := kmsv1alpha1.ReasonReconcileSuccess
	if err != nil {
		f := failureOf(err)
		reason = f.reason
		l.reportFailure(obj, f)
		if f.retry {
			res = ctrl.Result{Priority: normalPriority}
		} else {
			res, err = resync(l.options.SyncPeriod), nil
		}
	} else if c := findCondition(obj, kmsv1alpha1.ConditionSynced); c != nil {
		reason = c.Reason
	}
	if res.Priority == nil {
		res.Priority = normalPriority
	}
	reconcileOutcomes.WithLabelValues(l.kind, reason).Inc()
	l.count(obj)

	// The status describes this generation once its Synced condition does:
	// a Key's creation put off for a moment (finishCreationLater) has not
	// reported anything yet, and costs no status write.
	if c := findCondition(obj, kmsv1alpha1.ConditionSynced); c != nil && c.ObservedGeneration == obj.GetGeneration() {
		obj.SetObservedGeneration(obj.GetGeneration())
	}
	if released(obj) {
		return res, err
	}
	if perr := l.writeStatus(ctx, orig, obj); perr != nil {
		ctrl.LoggerFrom(ctx).Error(perr, "writing status")
		if err == nil {
			return ctrl.Result{}, perr
		}
	}
	return res, err
}

// writeStatus patches the status subresource with what changed since orig,
// and not at all when nothing did. Only the status is compared and sent, so a
// step may patch the object's metadata meanwhile.
func (l *lifecycle[T]) writeStatus(ctx context.Context, orig, obj T) error {
	before, err := statusJSON(orig)
	if err != nil {
		return err
	}
	after, err := statusJSON(obj)
	if err != nil || bytes.Equal(before, after) {
		return err
	}
	diff, err := jsonpatch.CreateMergePatch(before, after)
	if err != nil {
		return err
	}
	patch := client.RawPatch(types.MergePatchType, append(append([]byte(`{"status":`), diff...), '}'))
	if err := l.client.Status().Patch(ctx, obj, patch); !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// statusJSON is the JSON of obj's status ("null" without one).
func statusJSON(obj client.Object) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var v struct {
		Status json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if v.Status == nil {
		return []byte("null"), nil
	}
	return v.Status, nil
}

// released reports whether obj is on its way out with its finalizer gone:
// there is no status left to write.
func released(obj client.Object) bool {
	return !obj.GetDeletionTimestamp().IsZero() && !controllerutil.ContainsFinalizer(obj, kmsv1alpha1.Finalizer)
}
