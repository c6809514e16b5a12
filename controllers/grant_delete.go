package controllers

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// reconcileDelete revokes or retires, per spec.onDelete, every grant this
// object made. New grants show in ListGrants late, so the recorded grant is
// revoked by its id, not because the list shows it; and the finalizer stays
// until a list no longer shows a grant of ours (KMS lists revoked grants for a
// while too), for at most the consistency window. A grant already gone counts
// as done, and so does a key that is gone or pending deletion: its grants die
// with it.
func (r *GrantReconciler) reconcileDelete(ctx context.Context, g *kmsv1alpha1.Grant) error {
	api, keyID, err := r.recordedKey(ctx, g)
	var se *specError
	switch {
	case errors.As(err, &se):
		return nil // the reference never resolved, or was refused: we made no grant
	case g.Status.GrantID == "" && kmsclient.ClassOf(err) == kmsclient.AccessDenied:
		return nil // no grant recorded, and no access that could have made one
	case err != nil:
		return err
	}
	ids, err := r.ownGrantIDs(ctx, api, g, keyID)
	if err != nil || ids == nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if gone, err := r.removeOnDelete(ctx, g, api, keyID, id); err != nil || gone == keyIsGone {
			return err
		}
	}
	return r.waitUnlisted(ctx, g, api, keyID, ids)
}

// ownGrantIDs is the grant this object made: the recorded id, or, when a
// crash lost the record after CreateGrant, the id CreateGrant answers for our
// name and parameters (it is idempotent, so it names the existing grant; if
// there was none, the grant it makes is revoked at once). nil: no grant can
// exist (the key is gone, or KMS refuses such a grant).
func (r *GrantReconciler) ownGrantIDs(ctx context.Context, api kmsclient.API, g *kmsv1alpha1.Grant, keyID string) (map[string]bool, error) {
	if g.Status.GrantID != "" {
		return map[string]bool{g.Status.GrantID: true}, nil
	}
	id, err := api.CreateGrant(ctx, grantInput(g, keyID))
	switch {
	case err == nil:
		return map[string]bool{id: true}, nil
	case grantGone(ctx, api, keyID, err):
		return nil, nil
	}
	switch kmsclient.ClassOf(err) {
	case kmsclient.Invalid, kmsclient.UnknownPrincipal, kmsclient.MalformedPolicy:
		return nil, nil
	}
	return nil, err
}

// waitUnlisted lists the key's grants, removes any of ours still there, and
// keeps the finalizer while one is listed, up to the consistency window after
// the deletion began.
func (r *GrantReconciler) waitUnlisted(ctx context.Context, g *kmsv1alpha1.Grant, api kmsclient.API, keyID string, removed map[string]bool) error {
	grants, err := api.ListGrants(ctx, keyID)
	if grantGone(ctx, api, keyID, err) {
		return nil
	} else if err != nil {
		return err
	}
	want := grantInput(g, keyID)
	var listed []string
	for _, gr := range grants {
		if !ownGrant(gr, want, removed, g.Spec.Name == "") {
			continue
		}
		listed = append(listed, gr.GrantID)
		if !removed[gr.GrantID] {
			if gone, err := r.removeOnDelete(ctx, g, api, keyID, gr.GrantID); err != nil || gone == keyIsGone {
				return err
			}
		}
	}
	if len(listed) == 0 || keyGone(ctx, api, keyID) {
		return nil
	}
	if since := time.Since(g.DeletionTimestamp.Time); since < r.consistencyWindow() {
		return propagating("KMS still lists grant(s) %v on key %s after their removal; waiting until it no longer does", listed, keyID)
	}
	r.recorder.Eventf(g, nil, corev1.EventTypeWarning, "StillListed", "ListGrants",
		"KMS still lists grant(s) %v on key %s %s after their removal; releasing the object", listed, keyID, r.consistencyWindow())
	return nil
}

// removeOnDelete revokes or retires one grant as spec.onDelete says.
func (r *GrantReconciler) removeOnDelete(ctx context.Context, g *kmsv1alpha1.Grant, api kmsclient.API, keyID, id string) (removal, error) {
	done, err := removeGrant(ctx, api, g.Spec.OnDelete, keyID, id)
	if done != removed {
		return done, err
	}
	reason, op := "Revoked", "RevokeGrant"
	if g.Spec.OnDelete == kmsv1alpha1.GrantOnDeleteRetire {
		reason, op = "Retired", "RetireGrant"
	}
	r.recorder.Eventf(g, nil, corev1.EventTypeNormal, reason, op, "%s of grant %s on key %s: the Grant was deleted", op, id, keyID)
	return done, nil
}

// recordedKey is the key our grants are on: the recorded one (checked when it
// was recorded), else the reference resolved again, with the tenancy check, in
// case a crash lost the record after CreateGrant.
func (r *GrantReconciler) recordedKey(ctx context.Context, g *kmsv1alpha1.Grant) (kmsclient.API, string, error) {
	if g.Status.KeyID == "" {
		target, err := resolveTarget(ctx, r.client, r.Options, g.Namespace, g.Status.Account, g.Spec.KeyRef, g.Spec.KeyID)
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
	} else if ref := g.Spec.KeyRef; ref != nil && !ref.IsReplicaKey() {
		var key kmsv1alpha1.Key
		if err := r.client.Get(ctx, client.ObjectKey{Namespace: g.Namespace, Name: ref.Name}, &key); err == nil {
			region = keyRegion(&key)
		} else if client.IgnoreNotFound(err) != nil {
			return nil, "", err
		}
	}
	api, err := r.KMS.For(g.Status.Account, region)
	return api, g.Status.KeyID, err
}

// removal is what removing a grant came to.
type removal int

const (
	notRemoved   removal = iota // failed: see the error
	removed                     // revoked or retired now
	grantMissing                // already gone
	keyIsGone                   // the key is gone or on its way out, and its grants with it
)

// removeGrant revokes or retires a grant. A grant already gone, or on a key
// gone or pending deletion, is no error. A key refusing the call in another
// state (Disabled) is: its grants work again once it is enabled.
func removeGrant(ctx context.Context, api kmsclient.API, how kmsv1alpha1.GrantOnDelete, keyID, grantID string) (removal, error) {
	var err error
	if how == kmsv1alpha1.GrantOnDeleteRetire {
		err = api.RetireGrant(ctx, keyID, grantID)
	} else {
		err = api.RevokeGrant(ctx, keyID, grantID)
	}
	switch {
	case err == nil:
		return removed, nil
	case kmsclient.ClassOf(err) == kmsclient.NotFound:
		return grantMissing, nil
	case kmsclient.ClassOf(err) == kmsclient.InvalidState && keyGone(ctx, api, keyID):
		return keyIsGone, nil
	}
	return notRemoved, err
}

// grantGone reports whether err says there is nothing left to remove: the
// key or grant does not exist, or the key is on its way out.
func grantGone(ctx context.Context, api kmsclient.API, keyID string, err error) bool {
	if err == nil {
		return false
	}
	switch kmsclient.ClassOf(err) {
	case kmsclient.NotFound:
		return true
	case kmsclient.InvalidState:
		return keyGone(ctx, api, keyID)
	}
	return false
}

// keyGone reports whether the key no longer exists or is on its way out:
// its grants die with it.
func keyGone(ctx context.Context, api kmsclient.API, keyID string) bool {
	key, err := api.DescribeKey(ctx, keyID)
	return kmsclient.IsNotFound(err) || (err == nil && kmsclient.PendingDeletion(key.State))
}
