package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

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
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=keys,verbs=get;list;watch

// grantKeyRefField indexes Grants by the Key they reference, so Key events
// find the Grants to wake.
const grantKeyRefField = ".spec.keyRef.name"

func indexGrantKeyRef(o client.Object) []string {
	if ref := o.(*kmsv1alpha1.Grant).Spec.KeyRef; ref != nil {
		return []string{ref.Name}
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
	return newController(mgr, "Grant", &kmsv1alpha1.Grant{}, r.Options).
		Watches(&kmsv1alpha1.Key{}, handler.EnqueueRequestsFromMapFunc(referrersOf(r.client, &kmsv1alpha1.GrantList{}, grantKeyRefField)), builder.WithPredicates(keyReferenceChanged)).
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
	target, err := resolveTarget(ctx, r.client, r.Options, g.Namespace, g.Spec.KeyRef, g.Spec.KeyID)
	if err != nil {
		return ctrl.Result{}, err
	}
	want := grantInput(g, target.id)
	// KMS cannot look a grant up by name: one ListGrants of the key shows ours.
	grants, err := target.api.ListGrants(ctx, target.id)
	if err != nil {
		return ctrl.Result{}, err
	}
	currentID, stale := splitGrants(grants, want, g.Status.GrantID)

	if currentID == "" {
		if currentID, err = target.api.CreateGrant(ctx, want); err != nil {
			return ctrl.Result{}, err
		}
		note := "Created grant %s on key %s"
		switch {
		case len(stale) > 0 || (g.Status.KeyID != "" && g.Status.KeyID != target.id):
			note = "Created grant %s on key %s to replace the one that no longer matches the spec"
		case g.Status.GrantID != "":
			note = "Re-created grant %s on key %s, revoked outside Kubernetes"
		}
		r.recorder.Eventf(g, nil, corev1.EventTypeNormal, "Created", "CreateGrant", note, currentID, target.id)
	}
	// Only now that the new grant exists do the old ones go.
	for _, old := range stale {
		if err := r.revokeReplaced(ctx, g, target.api, target.id, old); err != nil {
			return ctrl.Result{}, err
		}
	}
	if g.Status.KeyID != "" && g.Status.KeyID != target.id && g.Status.GrantID != "" {
		// The reference moved to another key; the old grant is on the old one.
		if err := r.revokeReplaced(ctx, g, target.api, g.Status.KeyID, g.Status.GrantID); err != nil {
			return ctrl.Result{}, err
		}
	}

	// Recorded only once the old grants are gone: until then the record
	// still finds the old grant, even on another key or under another name.
	g.Status.GrantID, g.Status.KeyID, g.Status.KeyARN = currentID, target.id, target.arn
	reportSuccess(g, fmt.Sprintf("grant %s on key %s matches the spec", currentID, target.id))
	return resync(r.SyncPeriod), nil
}

func (r *GrantReconciler) revokeReplaced(ctx context.Context, g *kmsv1alpha1.Grant, api kmsclient.API, keyID, grantID string) error {
	if removed, err := removeGrant(ctx, api, kmsv1alpha1.GrantOnDeleteRevoke, keyID, grantID); !removed {
		return err
	}
	r.recorder.Eventf(g, nil, corev1.EventTypeNormal, "Revoked", "RevokeGrant", "Revoked grant %s on key %s: replaced", grantID, keyID)
	return nil
}

// grantName is the grant's name in KMS: stable for the object's lifetime.
func grantName(g *kmsv1alpha1.Grant) string {
	if g.Spec.Name != "" {
		return g.Spec.Name
	}
	return "kms-operator-" + string(g.UID)
}

func grantInput(g *kmsv1alpha1.Grant, keyID string) kmsclient.GrantInput {
	in := kmsclient.GrantInput{
		KeyID:             keyID,
		Name:              grantName(g),
		GranteePrincipal:  g.Spec.GranteePrincipal,
		RetiringPrincipal: g.Spec.RetiringPrincipal,
	}
	for _, op := range g.Spec.Operations {
		in.Operations = append(in.Operations, string(op))
	}
	if c := g.Spec.Constraints; c != nil {
		in.EncryptionContextSubset, in.EncryptionContextEquals = c.EncryptionContextSubset, c.EncryptionContextEquals
	}
	return in
}

// splitGrants finds ours among the grants on a key (our name, or the recorded
// id) and splits them into the one matching the spec (preferring the recorded
// id) and the stale ones: older versions, or a leftover of a crash between
// creating a replacement and revoking the old grant.
func splitGrants(grants []kmsclient.Grant, want kmsclient.GrantInput, recordedID string) (currentID string, stale []string) {
	for _, gr := range grants {
		switch {
		case gr.Name != want.Name && gr.GrantID != recordedID:
			// Not ours.
		case !grantMatches(gr, want):
			stale = append(stale, gr.GrantID)
		case currentID == "":
			currentID = gr.GrantID
		case gr.GrantID == recordedID:
			stale = append(stale, currentID)
			currentID = gr.GrantID
		default:
			stale = append(stale, gr.GrantID)
		}
	}
	return currentID, stale
}

// grantMatches compares a grant with the spec: operations as a set, the
// constraints as maps (absent and empty are the same).
func grantMatches(gr kmsclient.Grant, want kmsclient.GrantInput) bool {
	return gr.Name == want.Name &&
		gr.GranteePrincipal == want.GranteePrincipal &&
		gr.RetiringPrincipal == want.RetiringPrincipal &&
		slices.Equal(slices.Sorted(slices.Values(gr.Operations)), slices.Sorted(slices.Values(want.Operations))) &&
		maps.Equal(gr.EncryptionContextSubset, want.EncryptionContextSubset) &&
		maps.Equal(gr.EncryptionContextEquals, want.EncryptionContextEquals)
}

// reconcileDelete revokes or retires, per spec.onDelete, every grant this
// object made. A grant already gone counts as done, and so does a key that is
// gone or pending deletion: its grants die with it.
func (r *GrantReconciler) reconcileDelete(ctx context.Context, g *kmsv1alpha1.Grant) error {
	return r.deleteGrants(ctx, g)
}

func (r *GrantReconciler) deleteGrants(ctx context.Context, g *kmsv1alpha1.Grant) error {
	api, keyID, err := r.recordedKey(ctx, g)
	var se *specError
	if errors.As(err, &se) {
		return nil // the reference never resolved, or was refused: we made no grant
	} else if err != nil {
		return err
	}
	grants, err := api.ListGrants(ctx, keyID)
	if grantGone(ctx, api, keyID, err) {
		return nil
	} else if err != nil {
		return err
	}
	reason, op := "Revoked", "RevokeGrant"
	if g.Spec.OnDelete == kmsv1alpha1.GrantOnDeleteRetire {
		reason, op = "Retired", "RetireGrant"
	}
	name := grantName(g)
	for _, gr := range grants {
		if gr.Name != name && gr.GrantID != g.Status.GrantID {
			continue
		}
		if removed, err := removeGrant(ctx, api, g.Spec.OnDelete, keyID, gr.GrantID); !removed {
			if err != nil {
				return err
			}
			continue
		}
		r.recorder.Eventf(g, nil, corev1.EventTypeNormal, reason, op, "%s of grant %s on key %s: the Grant was deleted", op, gr.GrantID, keyID)
	}
	return nil
}

// recordedKey is the key our grants are on: the recorded one (checked when it
// was recorded), else the reference resolved again, with the tenancy check, in
// case a crash lost the record after CreateGrant.
func (r *GrantReconciler) recordedKey(ctx context.Context, g *kmsv1alpha1.Grant) (kmsclient.API, string, error) {
	if g.Status.KeyID == "" {
		target, err := resolveTarget(ctx, r.client, r.Options, g.Namespace, g.Spec.KeyRef, g.Spec.KeyID)
		if err != nil {
			return nil, "", err
		}
		return target.api, target.id, nil
	}
	// The recorded ARN names the region. A status written before the ARN was
	// recorded takes it from the reference; a Key already deleted then leaves
	// the default region.
	region := regionOfARN(g.Spec.KeyID)
	if g.Status.KeyARN != "" {
		region = regionOfARN(g.Status.KeyARN)
	} else if ref := g.Spec.KeyRef; ref != nil {
		var key kmsv1alpha1.Key
		if err := r.client.Get(ctx, client.ObjectKey{Namespace: g.Namespace, Name: ref.Name}, &key); err == nil {
			region = key.Spec.Region
		} else if client.IgnoreNotFound(err) != nil {
			return nil, "", err
		}
	}
	api, err := r.KMS.For(region)
	return api, g.Status.KeyID, err
}

// removeGrant revokes or retires a grant and reports whether it did; a grant
// already gone, or on a key gone or pending deletion, is no error.
func removeGrant(ctx context.Context, api kmsclient.API, how kmsv1alpha1.GrantOnDelete, keyID, grantID string) (bool, error) {
	var err error
	if how == kmsv1alpha1.GrantOnDeleteRetire {
		err = api.RetireGrant(ctx, keyID, grantID)
	} else {
		err = api.RevokeGrant(ctx, keyID, grantID)
	}
	if grantGone(ctx, api, keyID, err) {
		return false, nil
	}
	return err == nil, err
}

// grantGone reports whether err means there is no grant left to remove: the
// grant or the key does not exist, or the key is pending deletion (its grants
// die with it). A key refusing the call in another state (Disabled) still
// counts: its grants work again once it is enabled.
func grantGone(ctx context.Context, api kmsclient.API, keyID string, err error) bool {
	if err == nil {
		return false
	}
	switch kmsclient.ClassOf(err) {
	case kmsclient.NotFound:
		return true
	case kmsclient.InvalidState:
		key, derr := api.DescribeKey(ctx, keyID)
		return kmsclient.IsNotFound(derr) || (derr == nil && key.State == kmsclient.StatePendingDeletion)
	}
	return false
}
