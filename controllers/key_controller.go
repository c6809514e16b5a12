package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

// malformedPolicyGrace is how long a policy KMS calls malformed is retried
// before it is reported as invalid: a principal created seconds ago can be
// unknown to KMS until IAM propagates it.
const malformedPolicyGrace = 2 * time.Minute

// transitionalRecheck is when a key in a passing state (Creating, Updating,
// Unavailable, ...) is looked at again.
const transitionalRecheck = 30 * time.Second

// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=keys,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=keys/status,verbs=patch

// KeyReconciler makes a KMS key match a Key object.
type KeyReconciler struct {
	Options
	client   client.Client
	recorder events.EventRecorder
	states   stateTracker

	mu sync.Mutex
	// created holds key ids this process created, for the moment between the
	// status write and the informer cache showing it: a reconcile that reads
	// the stale object must not create the key again.
	created map[types.UID]string
	// refused holds the Keys whose last CreateKey KMS refused with an error
	// answer (throttled, invalid: no key was made) while no earlier key could
	// exist (it followed a recovery scan, a first attempt or another
	// refusal): the next attempt skips the scan of the account's keys. A
	// restart forgets it, which only costs a scan.
	refused map[types.UID]bool
	// malformedSince holds when KMS first called a generation's policy
	// malformed (see malformedPolicyGrace).
	malformedSince map[types.UID]generationTime
}

type generationTime struct {
	generation int64
	since      time.Time
}

// SetupWithManager registers the reconciler. Only spec changes (generation)
// trigger it: status and annotation writes of its own would otherwise cost a
// full KMS observation each. Drift is caught by the resync period.
func (r *KeyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.client = mgr.GetClient()
	r.recorder = mgr.GetEventRecorder("kms-operator")
	r.created = map[types.UID]string{}
	r.refused = map[types.UID]bool{}
	r.malformedSince = map[types.UID]generationTime{}
	return ctrl.NewControllerManagedBy(mgr).
		Named("key").
		For(&kmsv1alpha1.Key{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controllerOptions(r.Options)).
		Complete(r)
}

// Reconcile observes the key in KMS, changes what differs from the spec and
// reports the outcome in status.
func (r *KeyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	key := &kmsv1alpha1.Key{}
	if err := r.client.Get(ctx, req.NamespacedName, key); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := key.DeepCopy()
	api, err := r.KMS.For(key.Spec.Region)
	if err != nil {
		return r.finish(ctx, orig, key, ctrl.Result{}, newSpecError(kmsv1alpha1.ReasonInvalidSpec, err.Error()))
	}
	if !key.DeletionTimestamp.IsZero() {
		return r.finish(ctx, orig, key, ctrl.Result{}, r.reconcileDelete(ctx, api, key))
	}
	res, err := r.reconcileNormal(ctx, api, key)
	return r.finish(ctx, orig, key, res, err)
}

func (r *KeyReconciler) reconcileNormal(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (ctrl.Result, error) {
	manage := key.Spec.ManagementPolicy != kmsv1alpha1.ManagementPolicyObserve
	// An earlier attempt may have created a key without recording it: the
	// annotation was there before this reconcile wrote anything.
	_, mayHaveCreated := key.Annotations[kmsv1alpha1.AnnotationCreateStarted]
	creating := manage && !mayHaveCreated && key.Status.KeyID == "" && r.createdID(key.UID) == "" && key.Spec.KeyID == ""
	if manage && (creating || !controllerutil.ContainsFinalizer(key, kmsv1alpha1.Finalizer)) {
		// One write for both: the finalizer before any KMS write, and the
		// annotation before CreateKey.
		err := r.patchMeta(ctx, key, func() {
			controllerutil.AddFinalizer(key, kmsv1alpha1.Finalizer)
			if creating {
				metav1.SetMetaDataAnnotation(&key.ObjectMeta, kmsv1alpha1.AnnotationCreateStarted, time.Now().UTC().Format(time.RFC3339))
			}
		})
		if err != nil {
			return ctrl.Result{}, err
		}
	}

	obs, err := r.observe(ctx, api, key, mayHaveCreated)
	if err != nil {
		return ctrl.Result{}, err
	}
	recordObservation(key, obs)
	r.states.set(key.UID, obs.key.State)
	if err := checkImmutable(key, obs.key); err != nil {
		return ctrl.Result{}, err
	}

	diffs := r.diff(key, obs)
	if !manage {
		return r.reportObserved(key, diffs), nil
	}

	var applied []string
	for _, d := range diffs {
		if err := d.apply(ctx, api); err != nil {
			r.eventChanges(key, applied)
			return ctrl.Result{}, r.policyGrace(key, err)
		}
		applied = append(applied, d.aspect)
	}
	r.eventChanges(key, applied)
	r.forgetMalformed(key.UID)
	recordApplied(key, obs)
	r.states.set(key.UID, key.Status.KeyState)

	if obs.key.State == kmsclient.StatePendingDeletion {
		// The other aspects could not be read while the deletion was pending.
		msg := "the key's scheduled deletion was cancelled; reading the key again"
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionReady, false, kmsv1alpha1.ReasonUpdating, msg)
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionSynced, true, kmsv1alpha1.ReasonReconcileSuccess, syncedMessage(applied))
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}

	switch key.Status.KeyState {
	case kmsclient.StateEnabled, kmsclient.StateDisabled:
		msg := "the KMS key matches the spec"
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionReady, true, kmsv1alpha1.ReasonAvailable, msg)
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionSynced, true, kmsv1alpha1.ReasonReconcileSuccess, syncedMessage(applied))
		return resync(r.SyncPeriod), nil
	case kmsclient.StatePendingImport:
		msg := "the key waits for its key material: import it with GetParametersForImport and ImportKeyMaterial (origin EXTERNAL)"
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionReady, false, kmsv1alpha1.ReasonInvalidKeyState, msg)
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionSynced, true, kmsv1alpha1.ReasonReconcileSuccess, syncedMessage(applied))
		return resync(r.SyncPeriod), nil
	default:
		msg := fmt.Sprintf("the key is %s in KMS; waiting for it to settle", key.Status.KeyState)
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionReady, false, kmsv1alpha1.ReasonInvalidKeyState, msg)
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionSynced, true, kmsv1alpha1.ReasonReconcileSuccess, syncedMessage(applied))
		return ctrl.Result{RequeueAfter: transitionalRecheck}, nil
	}
}

// observed is a key as KMS has it: only the aspects the spec manages are read.
type observed struct {
	key      *kmsclient.Key
	policy   *string             // nil when the spec declares no policy
	rotation *kmsclient.Rotation // nil when the key cannot rotate
	tags     map[string]string
}

// observe finds the key this object manages (creating or adopting it when
// there is none yet) and reads the aspects the spec declares.
func (r *KeyReconciler) observe(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, mayHaveCreated bool) (*observed, error) {
	id := key.Status.KeyID
	if id == "" {
		id = r.createdID(key.UID)
	}
	switch {
	case id != "":
		if s := key.Spec.KeyID; s != "" && s != id && s != key.Status.ARN {
			return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
				"spec.keyID is %s but this object already manages KMS key %s; one object manages one key", s, id))
		}
		k, err := api.DescribeKey(ctx, id)
		if kmsclient.IsNotFound(err) {
			return nil, newSpecError(kmsv1alpha1.ReasonNotFound, fmt.Sprintf(
				"KMS key %s recorded in status no longer exists; delete and re-create the Key object to create a new key", id))
		}
		if err != nil {
			return nil, err
		}
		return r.readAspects(ctx, api, key, k)
	case key.Spec.KeyID != "":
		k, tags, err := r.adopt(ctx, api, key)
		if err != nil {
			return nil, err
		}
		key.Status.KeyID, key.Status.ARN = k.ID, k.ARN
		obs, err := r.readAspectsWithTags(ctx, api, key, k, tags)
		if err == nil {
			r.event(key, corev1.EventTypeNormal, "Adopted", "Adopt", "adopted KMS key %s", k.ID)
		}
		return obs, err
	}
	if mayHaveCreated && !r.wasRefused(key.UID) {
		k, err := r.recover(ctx, api, key)
		if err != nil {
			return nil, err
		}
		if k != nil {
			key.Status.KeyID, key.Status.ARN = k.ID, k.ARN
			return r.readAspects(ctx, api, key, k)
		}
	}
	return r.create(ctx, api, key)
}

// adopt checks that spec.keyID may be taken over by this object.
func (r *KeyReconciler) adopt(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*kmsclient.Key, map[string]string, error) {
	if !r.AllowAdoption {
		return nil, nil, newSpecError(kmsv1alpha1.ReasonAdoptionRefused,
			"spec.keyID names an existing key, but adoption is off: start the operator with --allow-adoption")
	}
	k, err := api.DescribeKey(ctx, key.Spec.KeyID)
	if err != nil {
		return nil, nil, err
	}
	tags, err := api.ListTags(ctx, k.ID)
	if err != nil {
		return nil, nil, err
	}
	if owner, ok := otherOwner(tags, key, r.ClusterName); ok {
		return nil, nil, newSpecError(kmsv1alpha1.ReasonAdoptionRefused, fmt.Sprintf(
			"KMS key %s belongs to %s; a key is managed by one object only", k.ID, owner))
	}
	return k, tags, nil
}

// otherOwner reports whether a key's ownership tags name an object other than
// key. A Key re-created with the same namespace and name (a new UID) is the
// same owner: that is how a deleted and re-applied Key gets its key back.
func otherOwner(tags map[string]string, key *kmsv1alpha1.Key, cluster string) (string, bool) {
	ns, name := tags[kmsv1alpha1.TagOwnerNS], tags[kmsv1alpha1.TagOwnerName]
	if ns == "" && name == "" && tags[kmsv1alpha1.TagOwnerUID] == "" {
		return "", false
	}
	c := tags[kmsv1alpha1.TagOwnerCluster]
	if c != cluster || ns != key.Namespace || name != key.Name {
		return fmt.Sprintf("Key %s/%s in cluster %q", ns, name, c), true
	}
	return "", false
}

// recover looks for a key an earlier attempt created before it could record
// the id. Listing every key's tags is costly, so it only runs when the
// create-started annotation says a CreateKey may have happened.
func (r *KeyReconciler) recover(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*kmsclient.Key, error) {
	ids, err := api.FindKeysByTag(ctx, kmsv1alpha1.TagOwnerUID, string(key.UID))
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	if len(ids) > 1 {
		r.event(key, corev1.EventTypeWarning, kmsv1alpha1.ReasonConflict, "Recover",
			"found %d KMS keys tagged with this object's UID (%s); using %s", len(ids), strings.Join(ids, ", "), ids[0])
	}
	k, err := api.DescribeKey(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	r.event(key, corev1.EventTypeNormal, "Recovered", "Recover", "found KMS key %s created by an earlier attempt", k.ID)
	return k, nil
}

// create makes the key with everything CreateKey accepts, so only rotation and
// a disabled state need calls of their own. The create-started annotation is
// already written (reconcileNormal), so if this process dies before the status
// write at the end of the reconcile, the next one finds the key by its tags
// instead of making a second one.
func (r *KeyReconciler) create(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) (*observed, error) {
	if key.Spec.Policy != "" {
		if err := policy.Validate(key.Spec.Policy); err != nil {
			return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, "spec.policy: "+err.Error())
		}
	}
	tags := desiredTags(key, r.ClusterName)
	k, err := api.CreateKey(ctx, kmsclient.CreateKeyInput{
		Description:                    key.Spec.Description,
		KeySpec:                        string(key.Spec.KeySpec),
		KeyUsage:                       keyUsage(key.Spec),
		Origin:                         string(key.Spec.Origin),
		MultiRegion:                    key.Spec.MultiRegion,
		Policy:                         key.Spec.Policy,
		BypassPolicyLockoutSafetyCheck: key.Spec.BypassPolicyLockoutSafetyCheck,
		Tags:                           tags,
	})
	// CreateKey is never retried (see kmsclient), so err is the one
	// attempt's: a classified answer means KMS refused the request; only a
	// transient fault (5xx, timeout, lost connection) may hide a new key.
	r.mu.Lock()
	if r.refused == nil {
		r.refused = map[types.UID]bool{}
	}
	r.refused[key.UID] = err != nil && kmsclient.ClassOf(err) != kmsclient.Transient
	r.mu.Unlock()
	if err != nil {
		return nil, r.policyGrace(key, err)
	}
	r.mu.Lock()
	r.created[key.UID] = k.ID
	r.mu.Unlock()
	r.event(key, corev1.EventTypeNormal, "Created", "CreateKey", "created KMS key %s", k.ID)

	key.Status.KeyID, key.Status.ARN = k.ID, k.ARN
	// A new key's aspects are known from the CreateKey input: no reads.
	obs := &observed{key: k, tags: tags}
	if key.Spec.Policy != "" {
		obs.policy = &key.Spec.Policy
	}
	if canRotate(k) {
		obs.rotation = &kmsclient.Rotation{}
	}
	// A new key's material is as fresh as an on-demand rotation would make it.
	if rot := key.Spec.Rotation; rot != nil && rot.OnDemandRequest != "" {
		statusRotation(key).LastOnDemandRequest = rot.OnDemandRequest
	}
	return obs, nil
}

func (r *KeyReconciler) readAspects(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, k *kmsclient.Key) (*observed, error) {
	tags, err := api.ListTags(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	return r.readAspectsWithTags(ctx, api, key, k, tags)
}

// readAspectsWithTags reads the policy only when the spec declares one (an
// omitted policy is KMS's business) and rotation only for keys that rotate.
func (r *KeyReconciler) readAspectsWithTags(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, k *kmsclient.Key, tags map[string]string) (*observed, error) {
	obs := &observed{key: k, tags: tags}
	if k.State == kmsclient.StatePendingDeletion {
		// Most reads fail on a key pending deletion; the diff cancels the
		// deletion first and the next reconcile reads the rest.
		return obs, nil
	}
	if key.Spec.Policy != "" {
		p, err := api.GetKeyPolicy(ctx, k.ID)
		if err != nil {
			return nil, err
		}
		obs.policy = &p
	}
	if canRotate(k) {
		rot, err := api.GetRotation(ctx, k.ID)
		if err != nil {
			return nil, err
		}
		obs.rotation = rot
	}
	return obs, nil
}

// canRotate: KMS rotates only symmetric keys with KMS-made material, and
// answers rotation calls for other keys with UnsupportedOperationException.
func canRotate(k *kmsclient.Key) bool {
	return k.KeySpec == string(kmsv1alpha1.KeySpecSymmetricDefault) &&
		k.Origin == string(kmsv1alpha1.OriginAWSKMS) && k.State != kmsclient.StatePendingImport
}

// checkImmutable refuses a spec whose creation-time fields differ from the key:
// it can only happen with an adopted key, and no call can fix it.
func checkImmutable(key *kmsv1alpha1.Key, k *kmsclient.Key) error {
	var bad []string
	check := func(field, want, got string) {
		if got != "" && want != got {
			bad = append(bad, fmt.Sprintf("%s is %s in the spec but %s in KMS", field, want, got))
		}
	}
	check("spec.keySpec", string(key.Spec.KeySpec), k.KeySpec)
	check("spec.keyUsage", keyUsage(key.Spec), k.KeyUsage)
	check("spec.origin", string(key.Spec.Origin), k.Origin)
	if len(bad) > 0 {
		return newSpecError(kmsv1alpha1.ReasonInvalidSpec, strings.Join(bad, "; ")+": KMS fixes these at creation, so change the spec")
	}
	return nil
}

// difference is one aspect of the key that differs from the spec, and the one
// KMS call that fixes it.
type difference struct {
	aspect string
	apply  func(ctx context.Context, api kmsclient.API) error
}

// diff lists what differs, in the order the calls must go: a deletion is
// cancelled before anything else; a key is enabled before its rotation is
// changed and disabled after, since KMS refuses rotation changes on a
// disabled key.
func (r *KeyReconciler) diff(key *kmsv1alpha1.Key, obs *observed) []difference {
	id, spec := obs.key.ID, key.Spec
	var ds []difference
	add := func(aspect string, apply func(ctx context.Context, api kmsclient.API) error) {
		ds = append(ds, difference{aspect, apply})
	}

	if obs.key.State == kmsclient.StatePendingDeletion {
		add("deletion cancelled", func(ctx context.Context, api kmsclient.API) error { return api.CancelDeletion(ctx, id) })
		// KMS leaves a cancelled key Disabled; the rest is read and fixed by
		// the next reconcile.
		if wantEnabled(spec) {
			add("enabled", func(ctx context.Context, api kmsclient.API) error { return api.EnableKey(ctx, id) })
		}
		return ds
	}
	if spec.Description != obs.key.Description {
		add("description", func(ctx context.Context, api kmsclient.API) error {
			return api.UpdateDescription(ctx, id, spec.Description)
		})
	}
	if obs.policy != nil && !policyEqual(spec.Policy, *obs.policy) {
		add("policy", func(ctx context.Context, api kmsclient.API) error {
			if err := policy.Validate(spec.Policy); err != nil {
				return newSpecError(kmsv1alpha1.ReasonInvalidSpec, "spec.policy: "+err.Error())
			}
			return api.PutKeyPolicy(ctx, id, spec.Policy, spec.BypassPolicyLockoutSafetyCheck)
		})
	}
	// An observed key is never claimed, so its ownership tags are not wanted.
	want := key.Spec.Tags
	if key.Spec.ManagementPolicy != kmsv1alpha1.ManagementPolicyObserve {
		want = desiredTags(key, r.ClusterName)
	}
	if set := changedTags(want, obs.tags); len(set) > 0 {
		add("tags", func(ctx context.Context, api kmsclient.API) error { return api.TagKey(ctx, id, set) })
	}
	if del := extraTags(want, obs.tags); len(del) > 0 {
		add("tags removed", func(ctx context.Context, api kmsclient.API) error { return api.UntagKey(ctx, id, del) })
	}

	// Only a settled key can be enabled or disabled; a passing state
	// (Creating, Updating, Unavailable) is waited out instead.
	settled := obs.key.State == kmsclient.StateEnabled || obs.key.State == kmsclient.StateDisabled
	stateDiffers := settled && (obs.key.State == kmsclient.StateEnabled) != wantEnabled(spec)
	if stateDiffers && wantEnabled(spec) {
		add("enabled", func(ctx context.Context, api kmsclient.API) error { return api.EnableKey(ctx, id) })
	}
	if obs.rotation != nil {
		on, period := wantRotation(spec)
		switch {
		case on && (!obs.rotation.Enabled || obs.rotation.PeriodInDays != period):
			add("rotation", func(ctx context.Context, api kmsclient.API) error { return api.EnableRotation(ctx, id, period) })
		case !on && obs.rotation.Enabled:
			add("rotation", func(ctx context.Context, api kmsclient.API) error { return api.DisableRotation(ctx, id) })
		}
		if req := onDemandRequest(spec); req != "" && req != statusRotation(key).LastOnDemandRequest {
			add("on-demand rotation", func(ctx context.Context, api kmsclient.API) error {
				if err := api.RotateOnDemand(ctx, id); err != nil {
					return err
				}
				statusRotation(key).LastOnDemandRequest = req
				return nil
			})
		}
	}
	if stateDiffers && !wantEnabled(spec) {
		add("disabled", func(ctx context.Context, api kmsclient.API) error { return api.DisableKey(ctx, id) })
	}
	return ds
}

// policyEqual compares semantically; a policy that does not parse differs, and
// the update then reports the parse error.
func policyEqual(want, got string) bool {
	eq, err := policy.Equal(want, got)
	return err == nil && eq
}

// policyGrace turns a malformed-policy error into a retry while IAM may still
// be propagating a new principal, and into an invalid spec after that.
func (r *KeyReconciler) policyGrace(key *kmsv1alpha1.Key, err error) error {
	if kmsclient.ClassOf(err) != kmsclient.MalformedPolicy {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	first, ok := r.malformedSince[key.UID]
	if !ok || first.generation != key.Generation {
		first = generationTime{key.Generation, time.Now()}
		r.malformedSince[key.UID] = first
	}
	if time.Since(first.since) < malformedPolicyGrace {
		return &retryableError{fmt.Errorf("policy not accepted yet (IAM may still be propagating a new principal), retrying: %w", err)}
	}
	return err
}

func (r *KeyReconciler) forgetMalformed(uid types.UID) {
	r.mu.Lock()
	delete(r.malformedSince, uid)
	r.mu.Unlock()
}

// wasRefused: see KeyReconciler.refused.
func (r *KeyReconciler) wasRefused(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused[uid]
}

func (r *KeyReconciler) createdID(uid types.UID) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.created[uid]
}

// reportObserved is the Observe policy's outcome: differences are reported,
// never fixed.
func (r *KeyReconciler) reportObserved(key *kmsv1alpha1.Key, diffs []difference) ctrl.Result {
	setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionSynced, true, kmsv1alpha1.ReasonObserveOnly,
		"managementPolicy is Observe: the key is read, never written")
	if len(diffs) == 0 {
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionReady, true, kmsv1alpha1.ReasonAvailable, "the KMS key matches the spec")
		return resync(r.SyncPeriod)
	}
	aspects := make([]string, len(diffs))
	for i, d := range diffs {
		aspects[i] = d.aspect
	}
	msg := "the KMS key differs from the spec in: " + strings.Join(aspects, ", ")
	if c := meta.FindStatusCondition(key.Status.Conditions, kmsv1alpha1.ConditionReady); c == nil || c.Message != msg {
		r.event(key, corev1.EventTypeWarning, kmsv1alpha1.ReasonDrifted, "Observe", "%s", msg)
	}
	setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionReady, false, kmsv1alpha1.ReasonDrifted, msg)
	return resync(r.SyncPeriod)
}

// eventChanges emits one event for the changes made: drift corrections when
// the spec had already been applied, plain updates otherwise.
func (r *KeyReconciler) eventChanges(key *kmsv1alpha1.Key, applied []string) {
	if len(applied) == 0 {
		return
	}
	synced := meta.FindStatusCondition(key.Status.Conditions, kmsv1alpha1.ConditionSynced)
	if key.Status.ObservedGeneration == key.Generation && synced != nil && synced.Status == metav1.ConditionTrue {
		r.event(key, corev1.EventTypeWarning, "DriftCorrected", "Update",
			"KMS key %s had drifted from the spec in: %s; corrected", key.Status.KeyID, strings.Join(applied, ", "))
		return
	}
	r.event(key, corev1.EventTypeNormal, "Updated", "Update", "KMS key %s updated: %s", key.Status.KeyID, strings.Join(applied, ", "))
}

func syncedMessage(applied []string) string {
	if len(applied) == 0 {
		return "the spec is applied"
	}
	return "the spec is applied; changed: " + strings.Join(applied, ", ")
}

func (r *KeyReconciler) reconcileDelete(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) error {
	if !controllerutil.ContainsFinalizer(key, kmsv1alpha1.Finalizer) {
		return nil
	}
	if key.Spec.ManagementPolicy != kmsv1alpha1.ManagementPolicyObserve {
		if err := r.releaseKey(ctx, api, key); err != nil {
			return err
		}
	}
	r.states.set(key.UID, "")
	r.mu.Lock()
	delete(r.created, key.UID)
	delete(r.refused, key.UID)
	delete(r.malformedSince, key.UID)
	r.mu.Unlock()
	return r.patchMeta(ctx, key, func() { controllerutil.RemoveFinalizer(key, kmsv1alpha1.Finalizer) })
}

// releaseKey schedules the key's deletion or, with Retain, removes the
// ownership tags. A key already gone or pending deletion counts as done.
func (r *KeyReconciler) releaseKey(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key) error {
	id := key.Status.KeyID
	if id == "" {
		id = r.createdID(key.UID)
	}
	if _, started := key.Annotations[kmsv1alpha1.AnnotationCreateStarted]; id == "" && started && !r.wasRefused(key.UID) {
		k, err := r.recover(ctx, api, key)
		if err != nil {
			return err
		}
		if k != nil {
			id = k.ID
		}
	}
	if id == "" {
		return nil
	}
	if key.Spec.DeletionPolicy == kmsv1alpha1.DeletionPolicyRetain {
		err := api.UntagKey(ctx, id, ownerTagKeys)
		switch {
		case kmsclient.IsNotFound(err):
			return nil
		case kmsclient.ClassOf(err) == kmsclient.InvalidState:
			// KMS refuses to untag a key pending deletion; it is going anyway.
			if k, derr := api.DescribeKey(ctx, id); derr == nil && k.State == kmsclient.StatePendingDeletion {
				return nil
			}
		case err == nil:
			r.event(key, corev1.EventTypeNormal, "Retained", "UntagKey", "KMS key %s retained; ownership tags removed", id)
		}
		return err
	}
	k, err := api.DescribeKey(ctx, id)
	if kmsclient.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if k.State == kmsclient.StatePendingDeletion {
		return nil
	}
	when, err := api.ScheduleDeletion(ctx, id, pendingWindow(key.Spec))
	if err != nil {
		return err
	}
	r.event(key, corev1.EventTypeNormal, "DeletionScheduled", "ScheduleKeyDeletion",
		"KMS key %s scheduled for deletion on %s", id, when.UTC().Format(time.RFC3339))
	return nil
}

// finish writes status (conditions for a failure, observedGeneration) once,
// and only when it changed, then decides about retries.
func (r *KeyReconciler) finish(ctx context.Context, orig, key *kmsv1alpha1.Key, res ctrl.Result, err error) (ctrl.Result, error) {
	reason := kmsv1alpha1.ReasonReconcileSuccess
	if err != nil {
		f := classify(err)
		reason = f.reason
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionSynced, false, f.reason, f.message)
		setCondition(&key.Status.Conditions, key.Generation, kmsv1alpha1.ConditionReady, false, f.reason, f.message)
		if c := meta.FindStatusCondition(orig.Status.Conditions, kmsv1alpha1.ConditionSynced); c == nil || c.Message != f.message {
			r.event(key, eventType(f), f.reason, "Reconcile", "%s", f.message)
		}
		if f.retry {
			res = ctrl.Result{}
		} else {
			res, err = resync(r.SyncPeriod), nil
		}
	} else if c := meta.FindStatusCondition(key.Status.Conditions, kmsv1alpha1.ConditionSynced); c != nil {
		reason = c.Reason
	}
	reconcileOutcomes.WithLabelValues("Key", reason).Inc()

	key.Status.ObservedGeneration = key.Generation
	gone := !key.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(key, kmsv1alpha1.Finalizer)
	if !gone && !equality.Semantic.DeepEqual(orig.Status, key.Status) {
		if perr := r.client.Status().Patch(ctx, key, client.MergeFrom(orig)); perr != nil && !apierrors.IsNotFound(perr) {
			log.FromContext(ctx).Error(perr, "writing status")
			if err == nil {
				return ctrl.Result{}, perr
			}
		}
	}
	return res, err
}

// patchMeta applies mutate to the object's metadata with an optimistic lock,
// so a finalizer or annotation written by someone else is never overwritten.
func (r *KeyReconciler) patchMeta(ctx context.Context, key *kmsv1alpha1.Key, mutate func()) error {
	patch := client.MergeFromWithOptions(key.DeepCopy(), client.MergeFromWithOptimisticLock{})
	mutate()
	return r.client.Patch(ctx, key, patch)
}

func (r *KeyReconciler) event(key *kmsv1alpha1.Key, typ, reason, action, note string, args ...any) {
	r.recorder.Eventf(key, nil, typ, reason, action, note, args...)
}

// recordObservation copies what KMS reported into status.
func recordObservation(key *kmsv1alpha1.Key, obs *observed) {
	k := obs.key
	key.Status.KeyID, key.Status.ARN, key.Status.KeyState = k.ID, k.ARN, k.State
	key.Status.CreationDate = timeOrNil(&k.CreationDate)
	key.Status.DeletionDate = timeOrNil(k.DeletionDate)
	if obs.rotation != nil {
		rs := statusRotation(key)
		rs.Enabled, rs.PeriodInDays = obs.rotation.Enabled, obs.rotation.PeriodInDays
		rs.NextRotationDate = timeOrNil(obs.rotation.NextRotationDate)
	}
}

// recordApplied updates status to what the applied changes made of the key,
// instead of spending reads to see it.
func recordApplied(key *kmsv1alpha1.Key, obs *observed) {
	if obs.key.State == kmsclient.StatePendingDeletion {
		key.Status.KeyState, key.Status.DeletionDate = kmsclient.StateDisabled, nil
	}
	switch key.Status.KeyState {
	case kmsclient.StateEnabled, kmsclient.StateDisabled:
		key.Status.KeyState = kmsclient.StateDisabled
		if wantEnabled(key.Spec) {
			key.Status.KeyState = kmsclient.StateEnabled
		}
	}
	if obs.rotation == nil || obs.key.State == kmsclient.StatePendingDeletion {
		return
	}
	rs := statusRotation(key)
	on, period := wantRotation(key.Spec)
	if rs.Enabled != on || (on && rs.PeriodInDays != period) {
		rs.Enabled, rs.PeriodInDays, rs.NextRotationDate = on, 0, nil
		if on {
			rs.PeriodInDays = period
			next := metav1.NewTime(time.Now().AddDate(0, 0, int(period)).UTC().Truncate(time.Second))
			rs.NextRotationDate = &next
		}
	}
}

func statusRotation(key *kmsv1alpha1.Key) *kmsv1alpha1.KeyRotationStatus {
	if key.Status.Rotation == nil {
		key.Status.Rotation = &kmsv1alpha1.KeyRotationStatus{}
	}
	return key.Status.Rotation
}

func timeOrNil(t *time.Time) *metav1.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

var ownerTagKeys = []string{kmsv1alpha1.TagOwnerUID, kmsv1alpha1.TagOwnerNS, kmsv1alpha1.TagOwnerName, kmsv1alpha1.TagOwnerCluster}

// desiredTags is the spec's tags plus the ownership tags that tie the key to
// this object: they make crash recovery and tenancy checks possible.
func desiredTags(key *kmsv1alpha1.Key, cluster string) map[string]string {
	tags := maps.Clone(key.Spec.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[kmsv1alpha1.TagOwnerUID] = string(key.UID)
	tags[kmsv1alpha1.TagOwnerNS] = key.Namespace
	tags[kmsv1alpha1.TagOwnerName] = key.Name
	tags[kmsv1alpha1.TagOwnerCluster] = cluster
	return tags
}

// changedTags are the wanted tags that are missing or have another value.
func changedTags(want, got map[string]string) map[string]string {
	set := map[string]string{}
	for k, v := range want {
		if cur, ok := got[k]; !ok || cur != v {
			set[k] = v
		}
	}
	return set
}

// extraTags are tags the spec does not declare. Reserved operator tags are
// never removed: they may belong to another object's claim.
func extraTags(want, got map[string]string) []string {
	var del []string
	for k := range got {
		if _, ok := want[k]; !ok && !strings.HasPrefix(k, kmsv1alpha1.TagPrefix) {
			del = append(del, k)
		}
	}
	slices.Sort(del)
	return del
}

func wantEnabled(spec kmsv1alpha1.KeySpec) bool { return spec.Enabled == nil || *spec.Enabled }

func wantRotation(spec kmsv1alpha1.KeySpec) (bool, int32) {
	if spec.Rotation == nil || !spec.Rotation.Enabled {
		return false, 0
	}
	if spec.Rotation.PeriodInDays == 0 {
		return true, 365
	}
	return true, spec.Rotation.PeriodInDays
}

func onDemandRequest(spec kmsv1alpha1.KeySpec) string {
	if spec.Rotation == nil {
		return ""
	}
	return spec.Rotation.OnDemandRequest
}

func pendingWindow(spec kmsv1alpha1.KeySpec) int32 {
	if spec.PendingWindowInDays == 0 {
		return 30
	}
	return spec.PendingWindowInDays
}

// keyUsage is the declared usage, or the usual one for the key spec (the same
// defaults the CRD documents and its CEL rules assume).
func keyUsage(spec kmsv1alpha1.KeySpec) string {
	if spec.KeyUsage != "" {
		return string(spec.KeyUsage)
	}
	s := string(spec.KeySpec)
	switch {
	case s == "" || s == "SYMMETRIC_DEFAULT" || s == "SM2" || strings.HasPrefix(s, "RSA_"):
		return "ENCRYPT_DECRYPT"
	case strings.HasPrefix(s, "HMAC_"):
		return "GENERATE_VERIFY_MAC"
	case strings.HasPrefix(s, "ML_KEM_"):
		return "ENCAPSULATE_DECAPSULATE"
	default:
		return "SIGN_VERIFY"
	}
}
