package controllers

import (
	"context"
	"errors"
	"time"

	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=replicakeys,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=replicakeys/status,verbs=patch

// ReplicaKeyReconciler makes a replica of a multi-Region key match its
// ReplicaKey. It goes through the shared lifecycle and shares the Key's
// steps for what both kinds manage (managed_key.go: ownership tags,
// description, policy, tags, state, release); its own are finding the
// primary (replica_primary.go), creating, recovering or adopting the replica
// (replica_observe.go) and its status (replica_status.go).
type ReplicaKeyReconciler struct {
	Options
	client   client.Client
	recorder events.EventRecorder
	// memory holds this process's last writes of each replica, for answers
	// KMS may give from before them.
	memory *keyMemory
}

// SetupWithManager registers the reconciler, its index and the Key watch:
// a Key's key id, deletion or failover wakes its ReplicaKeys.
func (r *ReplicaKeyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.client = mgr.GetClient()
	r.recorder = mgr.GetEventRecorder("kms-operator")
	r.memory = newKeyMemory()
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kmsv1alpha1.ReplicaKey{}, replicaPrimaryField, indexReplicaPrimary); err != nil {
		return err
	}
	b, err := newController(mgr, "ReplicaKey", &kmsv1alpha1.ReplicaKey{}, &kmsv1alpha1.ReplicaKeyList{}, r.Options)
	if err != nil {
		return err
	}
	return b.
		Watches(&kmsv1alpha1.Key{}, handler.EnqueueRequestsFromMapFunc(referrersOf(r.client, &kmsv1alpha1.ReplicaKeyList{}, replicaPrimaryField)), builder.WithPredicates(primaryChanged)).
		Complete(r)
}

// Reconcile runs the shared lifecycle with the ReplicaKey's steps.
func (r *ReplicaKeyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	l := &lifecycle[*kmsv1alpha1.ReplicaKey]{kind: "ReplicaKey", client: r.client, recorder: r.recorder, steps: r, options: r.Options}
	return l.Reconcile(ctx, req)
}

func (r *ReplicaKeyReconciler) newObject() *kmsv1alpha1.ReplicaKey { return &kmsv1alpha1.ReplicaKey{} }

// prepare: a managed replica needs the finalizer before ReplicateKey; an
// observed one is never written. ReplicateKey needs no create-started
// guard: the replica's id and region are known, so a lost answer is found
// by DescribeKey (and a second attempt is AlreadyExists, not a duplicate).
func (r *ReplicaKeyReconciler) prepare(rk *kmsv1alpha1.ReplicaKey) (bool, func()) {
	return !rk.Spec.Observes(), nil
}

// reconcileNormal observes (or creates) the replica, changes what differs
// from the spec and reports.
func (r *ReplicaKeyReconciler) reconcileNormal(ctx context.Context, rk *kmsv1alpha1.ReplicaKey) (ctrl.Result, error) {
	if rk.Spec.Policy != "" && !rk.Spec.Observes() {
		if err := policy.Validate(rk.Spec.Policy); err != nil {
			return ctrl.Result{}, newSpecError(kmsv1alpha1.ReasonInvalidSpec, "spec.policy: "+err.Error())
		}
	}
	api, err := r.KMS.For(rk.Status.Account, rk.Spec.Region)
	if err != nil {
		return ctrl.Result{}, newSpecError(kmsv1alpha1.ReasonInvalidSpec, err.Error())
	}
	obs, err := r.observe(ctx, api, rk)
	if err != nil {
		return ctrl.Result{}, err
	}
	recordReplica(rk, obs)
	ds := r.diff(rk, obs)
	if rk.Spec.Observes() {
		return reportDrift(r.recorder, rk, ds, r.SyncPeriod), nil
	}
	applied, err := applyDiffs(ctx, keyAPIs{regional: api}, ds,
		func(err error) error { return awaitPrincipal(rk, r.stale(rk, err)) },
		func() { r.memory.wrote(rk.UID) })
	eventApplied(r.recorder, rk, rk.Status.ObservedGeneration, rk.Status.KeyID, applied)
	if err != nil {
		return ctrl.Result{}, err
	}
	recordReplicaApplied(rk, obs)
	r.memory.settle(rk.UID, r.consistencyWindow())
	return r.report(rk, obs, applied), nil
}

// diff lists what differs, in the order the calls must go: a deletion is
// cancelled first (the replica is then read again), a state change last.
func (r *ReplicaKeyReconciler) diff(rk *kmsv1alpha1.ReplicaKey, obs *observed) []difference {
	var ds diffs
	if cancelDeletion(&ds, obs, rk.Spec.WantsEnabled()) {
		return ds
	}
	diffAspects(&ds, keyAspects{rk.Spec.Description, rk.Spec.Policy, rk.Spec.BypassPolicyLockoutSafetyCheck}, obs)
	diffTags(&ds, replicaTags(rk, r.ClusterName), obs)
	if stateDiffers(obs, rk.Spec.WantsEnabled()) {
		if rk.Spec.WantsEnabled() {
			addEnable(&ds, obs.key.ID)
		} else {
			addDisable(&ds, obs.key.ID)
		}
	}
	return ds
}

// reconcileDelete releases the replica as spec.deletionPolicy says; an
// observed replica is never touched.
func (r *ReplicaKeyReconciler) reconcileDelete(ctx context.Context, rk *kmsv1alpha1.ReplicaKey) error {
	defer r.memory.forget(rk.UID)
	if rk.Spec.Observes() {
		return nil
	}
	api, err := r.KMS.For(rk.Status.Account, rk.Spec.Region)
	if err != nil {
		return newSpecError(kmsv1alpha1.ReasonInvalidSpec, err.Error())
	}
	id, err := r.replicaToRelease(ctx, api, rk)
	if err != nil || id == "" {
		return err
	}
	rel := releaser{Options: r.Options, recorder: r.recorder, obj: rk, stale: func(err error) error { return r.stale(rk, err) }}
	if rk.Spec.DeletionPolicy == kmsv1alpha1.DeletionPolicyRetain {
		return rel.retain(ctx, api, id)
	}
	return rel.schedule(ctx, api, id, nil, rk.Spec.EffectivePendingWindowInDays())
}

// replicaToRelease is the replica this object holds: recorded, or, when a
// ReplicateKey's answer was lost before its id was recorded, the key in the
// region that carries this object's ownership tags.
func (r *ReplicaKeyReconciler) replicaToRelease(ctx context.Context, api kmsclient.API, rk *kmsv1alpha1.ReplicaKey) (string, error) {
	if rk.Status.KeyID != "" {
		return rk.Status.KeyID, nil
	}
	p, err := r.primary(ctx, rk)
	var se *specError
	if errors.As(err, &se) {
		return "", nil // no primary to have replicated
	}
	if err != nil {
		return "", err
	}
	tags, err := api.ListTags(ctx, p.id)
	if kmsclient.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if tags[kmsv1alpha1.TagOwnerUID] != string(rk.UID) {
		return "", nil
	}
	return p.id, nil
}

// stale turns an answer KMS may give from before this object's last write
// of its replica (or the replica's creation) into a wait.
func (r *ReplicaKeyReconciler) stale(rk *kmsv1alpha1.ReplicaKey, err error) error {
	last := r.memory.lastWrite(rk.UID)
	if c := rk.Status.CreationDate; c != nil && c.After(last) {
		last = c.Time
	}
	return staleAfterWrite(err, last, r.consistencyWindow())
}

// replicaCreatingRecheck is when a Creating replica is looked at again: KMS
// documents "a few seconds".
const replicaCreatingRecheck = 5 * time.Second
