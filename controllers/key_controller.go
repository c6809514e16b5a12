package controllers

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=keys,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=keys/status,verbs=patch
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=replicakeys,verbs=get;list;watch

// KeyReconciler makes a KMS key match a Key object. Its steps are spread over
// files named for them: key_create.go (create, adopt, recover), key_observe.go
// (find and read the key), key_diff.go (what differs and the calls that fix
// it), key_status.go (status from an observation), key_tags.go,
// key_delete.go and key_memory.go.
type KeyReconciler struct {
	Options
	client client.Client
	// reader reads Secrets' data straight from the API server (key_secret.go).
	reader   client.Reader
	recorder events.EventRecorder
	memory   *keyMemory
}

// SetupWithManager registers the reconciler, its field indexes and the
// watches that wake a Key: the Aliases and Grants its deletion may wait for
// (key_referrers.go), its key material's Secret (key_secret.go), its
// replicas (the primary's deletion and a failover wait for them).
func (r *KeyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.client = mgr.GetClient()
	r.reader = mgr.GetAPIReader()
	r.recorder = mgr.GetEventRecorder("kms-operator")
	r.memory = newKeyMemory()
	if err := indexReferrers(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kmsv1alpha1.Key{}, keySecretField, indexKeySecret); err != nil {
		return err
	}
	referrers := handler.EnqueueRequestsFromMapFunc(r.heldKeysOf)
	b, err := newController(mgr, "Key", &kmsv1alpha1.Key{}, &kmsv1alpha1.KeyList{}, r.Options)
	if err != nil {
		return err
	}
	return b.
		Watches(&kmsv1alpha1.Alias{}, referrers, builder.WithPredicates(referenceReleased)).
		Watches(&kmsv1alpha1.Grant{}, referrers, builder.WithPredicates(referenceReleased)).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(referrersOf(r.client, &kmsv1alpha1.KeyList{}, keySecretField))).
		Watches(&kmsv1alpha1.ReplicaKey{}, handler.EnqueueRequestsFromMapFunc(primaryKeyOf(r.client)), builder.WithPredicates(replicaChanged)).
		Complete(r)
}

// Reconcile runs the shared lifecycle with the Key's steps.
func (r *KeyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	l := &lifecycle[*kmsv1alpha1.Key]{kind: "Key", client: r.client, recorder: r.recorder, steps: r, options: r.Options}
	return l.Reconcile(ctx, req)
}

func (r *KeyReconciler) newObject() *kmsv1alpha1.Key { return &kmsv1alpha1.Key{} }

// prepare: a managed Key needs the finalizer before any KMS write and, before
// its first CreateKey, the create-started annotation (key_create.go); both go
// in one patch. An observed Key writes nothing to KMS and needs neither.
func (r *KeyReconciler) prepare(key *kmsv1alpha1.Key) (bool, func()) {
	if key.Spec.Observes() {
		return false, nil
	}
	_, started := key.Annotations[kmsv1alpha1.AnnotationCreateStarted]
	if started || key.Status.KeyID != "" || key.Spec.KeyID != "" || r.memory.createdID(key.UID) != "" {
		return true, nil
	}
	return true, func() {
		value := time.Now().UTC().Format(time.RFC3339)
		metav1.SetMetaDataAnnotation(&key.ObjectMeta, kmsv1alpha1.AnnotationCreateStarted, value)
		// Written by this process before any CreateKey: none can have made
		// a key yet, so the first attempt need not wait for KMS to list one.
		r.memory.annotated(key.UID, value)
		r.memory.setNoKeyYet(key.UID, true)
	}
}

// reconcileNormal observes the key in KMS, imports its material, changes
// what differs from the spec and reports the outcome in status.
func (r *KeyReconciler) reconcileNormal(ctx context.Context, key *kmsv1alpha1.Key) (ctrl.Result, error) {
	api, err := r.KMS.For(key.Status.Account, keyRegion(key))
	if err != nil {
		return ctrl.Result{}, newSpecError(kmsv1alpha1.ReasonInvalidSpec, err.Error())
	}
	before := key.Status.DeepCopy()
	obs, err := r.observeChecked(ctx, api, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	// An EXTERNAL key's material is imported at once all the same: its
	// Secret is checked first, and a stale answer is put off below.
	if obs.createdNow && key.Spec.KeyMaterial == nil && len(r.diff(key, obs)) > 0 {
		return r.finishCreationLater(key, before), nil
	}
	imported, err := r.reconcileMaterial(ctx, api, key, obs)
	if err = r.stale(key, err); obs.created && isPropagating(err) {
		return r.finishCreationLater(key, before), nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	ds := r.diff(key, obs)
	if key.Spec.Observes() {
		if err := r.observeLastUsage(ctx, api, key, obs); err != nil {
			return ctrl.Result{}, err
		}
		return r.reportObserved(key, ds), nil
	}
	apis, err := r.keyAPIs(key.Status.Account, api, obs.key)
	if err != nil {
		return ctrl.Result{}, err
	}
	applied, err := r.apply(ctx, apis, key, ds)
	if obs.created && isPropagating(err) {
		return r.finishCreationLater(key, before), nil
	}
	r.memory.creationFinished(key.UID)
	r.eventChanges(key, obs, applied)
	if err == nil {
		err = r.observeLastUsage(ctx, api, key, obs)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	applied = append(imported, applied...)
	recordApplied(key, obs)
	keyStates.set(key.UID, key.Status.KeyState)
	r.memory.settle(key.UID, r.consistencyWindow())
	res := r.reportApplied(key, obs, applied)
	if slices.Contains(applied, aspectPrimaryRegion) {
		key.Status.PrimaryRegion = key.Spec.PrimaryRegion
		res = ctrl.Result{RequeueAfter: failoverRecheck} // read both keys back once KMS is done
	}
	return res, nil
}

// createdRecheck is how soon a new key's creation is finished (rotation, a
// disabled state, its material): KMS shows a new key to those operations
// only after a while ("usually within seconds", the eventual consistency
// page), so trying at once would mostly spend their small quotas (5/s) on
// refusals. The realistic KMS server lags 2 s. A key still not shown then
// is tried again as often.
const createdRecheck = 2 * time.Second

// finishCreationLater puts off what a key created moments ago still needs
// (rotation, a disabled state, its material) until KMS shows the key to
// those operations (eventual consistency): no status write, no event and no
// read until then. The key is in this process's memory (its id and its
// aspects as created), and its ownership tags find it after a crash. The
// object's status is put back as it was, so the creation ends in one status
// write and one Created event naming everything it took.
//
// Finishing a creation goes before other work in the priority queue: a
// thousand new Keys applied at once would otherwise all be created before the
// first is finished, and none would be Ready until the last was created.
func (r *KeyReconciler) finishCreationLater(key *kmsv1alpha1.Key, before *kmsv1alpha1.KeyStatus) ctrl.Result {
	key.Status = *before
	return ctrl.Result{RequeueAfter: createdRecheck, Priority: ptr.To(1)}
}

// observeChecked finds and reads the key, records what KMS reported, and
// refuses a key whose creation-time fields differ from the spec.
func (r *KeyReconciler) observeChecked(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*observed, error) {
	if key.Status.KeyID != "" {
		r.memory.createRecorded(key.UID)
	}
	if key.Spec.Policy != "" && !key.Spec.Observes() {
		if err := policy.Validate(key.Spec.Policy); err != nil {
			return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, "spec.policy: "+err.Error())
		}
	}
	obs, err := r.observe(ctx, api, key)
	if err != nil {
		return nil, err
	}
	recordObservation(key, obs)
	keyStates.set(key.UID, obs.key.State)
	return obs, checkImmutable(key, obs.key)
}

// keyRegion is the region of key's KMS key: spec.region, else the region of
// an ARN in spec.keyID or in status, else "" (the operator's default).
func keyRegion(key *kmsv1alpha1.Key) string {
	if key.Spec.Region != "" {
		return key.Spec.Region
	}
	if r := regionOfARN(key.Spec.KeyID); r != "" {
		return r
	}
	return regionOfARN(key.Status.ARN)
}

func (r *KeyReconciler) event(key *kmsv1alpha1.Key, typ, reason, action, note string, args ...any) {
	r.recorder.Eventf(key, nil, typ, reason, action, note, args...)
}
