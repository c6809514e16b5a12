package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=grants,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=grants/status,verbs=patch
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=keys;replicakeys,verbs=get;list;watch

// grantKeyRefField indexes Grants by the Key they reference, so Key events
// find the Grants to wake.
const grantKeyRefField = ".spec.keyRef.name"

func indexGrantKeyRef(o client.Object) []string {
	if ref := o.(*kmsv1alpha1.Grant).Spec.KeyRef; ref != nil {
		return []string{refIndexValue(ref)}
	}
	return nil
}

// GrantReconciler keeps a KMS grant matching its Grant.
//
// The grant's name in KMS is spec.name, else kms-operator-<uid>: CreateGrant
// with a name is idempotent, so a retry or a crash after CreateGrant never
// makes a second grant, and the grants this object made can be found again in
// ListGrants. KMS grants cannot change: a spec change creates the new grant,
// then revokes the old ones, so the grantee keeps access throughout.
type GrantReconciler struct {
	Options
	client   client.Client
	recorder events.EventRecorder
}

// SetupWithManager registers the reconciler, its field index and the Key
// watch (watches.go).
func (r *GrantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.client = mgr.GetClient()
	r.recorder = mgr.GetEventRecorder("kms-operator")
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kmsv1alpha1.Grant{}, grantKeyRefField, indexGrantKeyRef); err != nil {
		return err
	}
	b, err := newController(mgr, "Grant", &kmsv1alpha1.Grant{}, &kmsv1alpha1.GrantList{}, r.Options)
	if err != nil {
		return err
	}
	return b.
		Watches(&kmsv1alpha1.Key{}, handler.EnqueueRequestsFromMapFunc(referrersOf(r.client, &kmsv1alpha1.GrantList{}, grantKeyRefField)), builder.WithPredicates(keyReferenceChanged)).
		Watches(&kmsv1alpha1.ReplicaKey{}, handler.EnqueueRequestsFromMapFunc(referrersOf(r.client, &kmsv1alpha1.GrantList{}, grantKeyRefField)), builder.WithPredicates(replicaReferenceChanged)).
		Complete(r)
}

// Reconcile runs the shared lifecycle with the Grant's steps.
func (r *GrantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	l := &lifecycle[*kmsv1alpha1.Grant]{kind: "Grant", client: r.client, recorder: r.recorder, steps: r, options: r.Options}
	return l.Reconcile(ctx, req)
}

func (r *GrantReconciler) newObject() *kmsv1alpha1.Grant { return &kmsv1alpha1.Grant{} }

// prepare: a Grant always needs the finalizer; nothing else.
func (r *GrantReconciler) prepare(*kmsv1alpha1.Grant) (bool, func()) { return true, nil }

// reconcileNormal observes the grants on the key, creates or replaces ours,
// and reports.
func (r *GrantReconciler) reconcileNormal(ctx context.Context, g *kmsv1alpha1.Grant) (ctrl.Result, error) {
	target, err := resolveTarget(ctx, r.client, r.Options, g.Namespace, g.Status.Account, g.Spec.KeyRef, g.Spec.KeyID)
	if err != nil {
		return ctrl.Result{}, err
	}
	want := grantInput(g, target.id)
	// KMS cannot look a grant up by name: one ListGrants of the key shows ours.
	grants, err := target.api.ListGrants(ctx, target.id)
	if err != nil {
		return ctrl.Result{}, target.stale(err, r.Options)
	}
	found := sortGrants(grants, want, g.Status.GrantID, g.Spec.Name == "")
	currentID := found.current
	if currentID == "" {
		// New grants show in ListGrants late; CreateGrant with our name and
		// parameters returns the existing grant's id, so it is safe to send
		// whatever the list showed.
		if currentID, err = target.api.CreateGrant(ctx, want); err != nil {
			return ctrl.Result{}, awaitPrincipal(g, target.stale(err, r.Options))
		}
		r.eventCreated(g, currentID, target.id, len(found.stale) > 0)
	}
	if err := r.revokeStale(ctx, g, target, staleWithRecorded(found, g, target.id, currentID), currentID); err != nil {
		return ctrl.Result{}, err
	}

	// Recorded only once the old grants are gone: until then the record
	// still finds the old grant, even on another key or under another name.
	g.Status.GrantID, g.Status.KeyID, g.Status.KeyARN = currentID, target.id, target.arn
	if found.unsure {
		reportSuccess(g, fmt.Sprintf("grant %s on key %s matches the spec; KMS shows a principal by its unique id until IAM propagates it, so it is looked at again soon", currentID, target.id))
		return ctrl.Result{RequeueAfter: min(principalRecheck, r.SyncPeriod)}, nil
	}
	reportSuccess(g, fmt.Sprintf("grant %s on key %s matches the spec", currentID, target.id))
	return resync(r.SyncPeriod), nil
}

// principalRecheck is when a grant whose principal KMS shows by its unique id
// is looked at again.
const principalRecheck = 30 * time.Second

// eventCreated tells why a grant was created. CreateGrant answering the
// recorded id means the grant was there all along, just not listed yet.
func (r *GrantReconciler) eventCreated(g *kmsv1alpha1.Grant, id, keyID string, replacing bool) {
	note := "Created grant %s on key %s"
	switch {
	case id == g.Status.GrantID:
		return
	case replacing || (g.Status.KeyID != "" && g.Status.KeyID != keyID):
		note = "Created grant %s on key %s to replace the one that no longer matches the spec"
	case g.Status.GrantID != "":
		note = "Re-created grant %s on key %s, revoked outside Kubernetes"
	}
	r.recorder.Eventf(g, nil, corev1.EventTypeNormal, "Created", "CreateGrant", note, id, keyID)
}

// revokeStale revokes our grants that no longer match the spec, now that the
// current one exists, and the recorded grant of a key the reference moved
// away from. It never revokes currentID, the grant the spec has now: a stale
// list can show it under another principal form.
func (r *GrantReconciler) revokeStale(ctx context.Context, g *kmsv1alpha1.Grant, target *keyTarget, stale []string, currentID string) error {
	for _, old := range stale {
		if old == currentID {
			continue
		}
		if err := r.revokeReplaced(ctx, g, target.api, target.id, old); err != nil {
			return err
		}
	}
	if g.Status.KeyID != "" && g.Status.KeyID != target.id && g.Status.GrantID != "" && g.Status.GrantID != currentID {
		// The reference moved to another key; the old grant is on the old one.
		return r.revokeReplaced(ctx, g, target.api, g.Status.KeyID, g.Status.GrantID)
	}
	return nil
}

// staleWithRecorded adds the recorded grant to the stale ones when the spec
// changed since it was recorded and the list did not show it: ListGrants
// lags behind CreateGrant (a spec changed right after the grant was made),
// and a grant left for a later list to show would keep its old permissions
// meanwhile, while the status says the spec is met. Revoked by id, it goes
// now; one already gone answers NotFound, which is no error. With the spec
// unchanged the recorded grant is not stale: had it been there, CreateGrant
// would have answered its id.
func staleWithRecorded(found grantsFound, g *kmsv1alpha1.Grant, keyID, currentID string) []string {
	rec := g.Status.GrantID
	if rec == "" || rec == currentID || g.Status.KeyID != keyID || g.Status.ObservedGeneration == g.Generation || slices.Contains(found.stale, rec) {
		return found.stale
	}
	return append(slices.Clone(found.stale), rec)
}

func (r *GrantReconciler) revokeReplaced(ctx context.Context, g *kmsv1alpha1.Grant, api kmsclient.API, keyID, grantID string) error {
	if done, err := removeGrant(ctx, api, kmsv1alpha1.GrantOnDeleteRevoke, keyID, grantID); done != removed {
		return err
	}
	r.recorder.Eventf(g, nil, corev1.EventTypeNormal, "Revoked", "RevokeGrant", "Revoked grant %s on key %s: replaced", grantID, keyID)
	return nil
}
