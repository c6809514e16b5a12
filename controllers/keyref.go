package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// This file holds what the Alias and Grant reconcilers share: resolving their
// key reference under the tenancy rules, and the finalizer and status
// reporting around it.

// keyTarget is the KMS key a reference resolved to.
type keyTarget struct {
	api kmsclient.API // of the key's region
	id  string        // the key id, never an ARN or alias
	arn string
}

// resolveKeyReference resolves a Key reference (ref) or a raw key id, ARN or
// alias name (rawID) declared by an object in namespace ns. A ref costs no KMS
// call; a raw id costs one DescribeKey and one ListTags (the tenancy check), so
// call it once per reconcile.
func resolveKeyReference(ctx context.Context, c client.Reader, o Options, ns string, ref *kmsv1alpha1.LocalObjectReference, rawID string) (*keyTarget, error) {
	if ref != nil {
		return resolveKeyRef(ctx, c, o, ns, ref.Name)
	}
	api, err := o.KMS.For(regionOfARN(rawID))
	if err != nil {
		return nil, err
	}
	key, err := checkKeyTenancy(ctx, api, o, ns, rawID)
	if err != nil {
		return nil, err
	}
	return &keyTarget{api: api, id: key.ID, arn: key.ARN}, nil
}

// resolveKeyRef follows a Key in namespace ns (references never cross
// namespaces) to its KMS key. A Key that is missing, being deleted or not yet
// created in KMS is a wait, not an error: the Key watch brings the object back
// as soon as the Key changes.
func resolveKeyRef(ctx context.Context, c client.Reader, o Options, ns, name string) (*keyTarget, error) {
	var key kmsv1alpha1.Key
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &key); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, waitingForKey("Key %s does not exist in namespace %s", name, ns)
		}
		return nil, err
	}
	switch {
	case !key.DeletionTimestamp.IsZero():
		return nil, waitingForKey("Key %s is being deleted", name)
	case key.Status.KeyID == "" || key.Status.ARN == "":
		return nil, waitingForKey("Key %s has no KMS key yet", name)
	}
	api, err := o.KMS.For(key.Spec.Region)
	if err != nil {
		return nil, err
	}
	return &keyTarget{api: api, id: key.Status.KeyID, arn: key.Status.ARN}, nil
}

func waitingForKey(format string, args ...any) error {
	return newSpecError(kmsv1alpha1.ReasonWaitingForKey, "waiting for Key: "+fmt.Sprintf(format, args...))
}

// checkKeyTenancy enforces the tenancy rule on a raw key id: a key whose
// ownership tags name another namespace or another cluster is refused, and a
// key without them (not managed by the operator) is refused unless
// --allow-unmanaged-key-references is on. DescribeKey also turns an ARN or
// alias into the key id.
func checkKeyTenancy(ctx context.Context, api kmsclient.API, o Options, ns, keyID string) (*kmsclient.Key, error) {
	key, err := api.DescribeKey(ctx, keyID)
	if kmsclient.IsNotFound(err) {
		return nil, newSpecError(kmsv1alpha1.ReasonNotFound, fmt.Sprintf("key %s does not exist in KMS", keyID))
	}
	if err != nil {
		return nil, err
	}
	tags, err := api.ListTags(ctx, key.ID)
	if err != nil {
		return nil, err
	}
	ownerNS, cluster := tags[kmsv1alpha1.TagOwnerNS], tags[kmsv1alpha1.TagOwnerCluster]
	var refusal string
	switch {
	case tags[kmsv1alpha1.TagOwnerUID] == "" && ownerNS == "" && cluster == "":
		if !o.AllowUnmanagedKeyReferences {
			refusal = fmt.Sprintf("key %s is not managed by kms-operator; referencing it by id needs the operator flag --allow-unmanaged-key-references", key.ID)
		}
	case cluster != o.ClusterName:
		refusal = fmt.Sprintf("key %s is managed by another cluster (%q); reference keys of this cluster only", key.ID, cluster)
	case ownerNS != ns:
		refusal = fmt.Sprintf("key %s belongs to a Key in another namespace; reference keys of namespace %s only", key.ID, ns)
	}
	if refusal != "" {
		return nil, newSpecError(kmsv1alpha1.ReasonReferenceRefused, refusal)
	}
	return key, nil
}

// regionOfARN returns the region of a KMS ARN, or "" (the default region) for
// anything else.
func regionOfARN(s string) string {
	// arn:partition:kms:region:account:resource
	parts := strings.SplitN(s, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return ""
	}
	return parts[3]
}

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

// ensureFinalizer records, before any KMS write, that deleting obj must wait
// for the cleanup. The optimistic lock keeps finalizers others add meanwhile.
func ensureFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	if controllerutil.ContainsFinalizer(obj, kmsv1alpha1.Finalizer) {
		return nil
	}
	base := obj.DeepCopyObject().(client.Object)
	controllerutil.AddFinalizer(obj, kmsv1alpha1.Finalizer)
	return c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// dropFinalizer lets Kubernetes delete obj once its KMS resource is gone.
func dropFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	base := obj.DeepCopyObject().(client.Object)
	controllerutil.RemoveFinalizer(obj, kmsv1alpha1.Finalizer)
	return client.IgnoreNotFound(c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})))
}

// released reports whether obj is on its way out with its finalizer gone:
// there is no status left to write.
func released(obj client.Object) bool {
	return !obj.GetDeletionTimestamp().IsZero() && !controllerutil.ContainsFinalizer(obj, kmsv1alpha1.Finalizer)
}

// reportSuccess marks obj Ready and Synced.
func reportSuccess(obj client.Object, conds *[]metav1.Condition, kind, message string) {
	reconcileOutcomes.WithLabelValues(kind, kmsv1alpha1.ReasonReconcileSuccess).Inc()
	setCondition(conds, obj.GetGeneration(), kmsv1alpha1.ConditionReady, true, kmsv1alpha1.ReasonAvailable, message)
	setCondition(conds, obj.GetGeneration(), kmsv1alpha1.ConditionSynced, true, kmsv1alpha1.ReasonReconcileSuccess, "")
}

// reportFailure puts err on the Synced condition and says how to retry (see
// classify). Ready turns False too, unless the fault is passing (retried) and
// Ready is already known: a throttled read says nothing about the resource. The
// event is emitted only when the condition changes, so a lasting problem does
// not add an event at every resync.
func reportFailure(rec events.EventRecorder, obj client.Object, conds *[]metav1.Condition, kind string, period time.Duration, err error) (ctrl.Result, error) {
	f := classify(err)
	reconcileOutcomes.WithLabelValues(kind, f.reason).Inc()
	prev := meta.FindStatusCondition(*conds, kmsv1alpha1.ConditionSynced)
	if prev == nil || prev.Status != metav1.ConditionFalse || prev.Reason != f.reason || prev.Message != f.message {
		typ := eventType(f)
		if f.reason == kmsv1alpha1.ReasonWaitingForKey {
			typ = corev1.EventTypeNormal // expected while a Key and its users are applied together
		}
		rec.Eventf(obj, nil, typ, f.reason, "Reconcile", "%s", f.message)
	}
	gen := obj.GetGeneration()
	setCondition(conds, gen, kmsv1alpha1.ConditionSynced, false, f.reason, f.message)
	if !f.retry || meta.FindStatusCondition(*conds, kmsv1alpha1.ConditionReady) == nil {
		setCondition(conds, gen, kmsv1alpha1.ConditionReady, false, f.reason, f.message)
	}
	if f.retry {
		return ctrl.Result{}, err
	}
	return resync(period), nil
}

// referrersOf maps a Key to the objects of its namespace that reference it,
// found through the field index on list's kind.
func referrersOf(c client.Client, list client.ObjectList, field string) handler.MapFunc {
	return func(ctx context.Context, key client.Object) []reconcile.Request {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, l, client.InNamespace(key.GetNamespace()), client.MatchingFields{field: key.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing the objects referencing a Key", "field", field)
			return nil
		}
		var reqs []reconcile.Request
		_ = meta.EachListItem(l, func(o runtime.Object) error {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o.(client.Object))})
			return nil
		})
		return reqs
	}
}
