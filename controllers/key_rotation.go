package controllers

import (
	"context"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// An on-demand rotation is asked for by a new spec.rotation.onDemandRequest
// value. KMS allows only a few per key, and RotateKeyOnDemand is not
// idempotent: a lost answer or a crash before the status write must not
// rotate twice. So the request is marked on the object (an annotation) before
// it is sent, and a marked request is looked for in KMS before it is sent
// again.

// clockSkew allows for the operator's and KMS's clocks to disagree when a
// rotation's date is compared with the mark's.
const clockSkew = 2 * time.Minute

// diffOnDemandRotation adds the on-demand rotation a new request asks for.
func (r *KeyReconciler) diffOnDemandRotation(ds *diffs, key *kmsv1alpha1.Key, obs *observed) {
	req := key.Spec.OnDemandRotationRequest()
	if obs.rotation == nil || req == "" || req == statusRotation(key).LastOnDemandRequest {
		return
	}
	ds.addShared("on-demand rotation", func(ctx context.Context, api kmsclient.API) error {
		return r.rotateOnce(ctx, api, key, obs, req)
	})
}

// rotateOnce makes at most one on-demand rotation per request value.
func (r *KeyReconciler) rotateOnce(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, obs *observed, req string) error {
	if at, ok := onDemandMark(key, req); ok {
		done, err := rotatedSince(ctx, api, obs, at)
		if err != nil {
			return err
		}
		if done {
			statusRotation(key).LastOnDemandRequest = req
			return nil
		}
		if until := at.Add(r.consistencyWindow()); time.Now().Before(until) {
			return propagating("an on-demand rotation for request %q was sent at %s; waiting until %s for KMS to show it before sending another",
				req, at.Format(time.RFC3339), until.UTC().Format(time.RFC3339))
		}
	}
	if err := r.setOnDemandMark(ctx, key, req+"@"+time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	if err := api.RotateOnDemand(ctx, obs.key.ID); err != nil {
		if kmsclient.ClassOf(err) != kmsclient.Transient {
			// Refused: no rotation happened, so no mark should make the
			// next attempt wait for one.
			_ = r.setOnDemandMark(ctx, key, "")
		}
		return err
	}
	statusRotation(key).LastOnDemandRequest = req
	return nil
}

// onDemandMark is when an on-demand rotation for req was last sent.
func onDemandMark(key *kmsv1alpha1.Key, req string) (time.Time, bool) {
	value, at, ok := strings.Cut(key.Annotations[kmsv1alpha1.AnnotationOnDemandRotation], "@")
	if !ok || value != req {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, at)
	return t, err == nil
}

// setOnDemandMark writes the mark ("" removes it) before the call it guards.
func (r *KeyReconciler) setOnDemandMark(ctx context.Context, key *kmsv1alpha1.Key, mark string) error {
	base := key.DeepCopy()
	if mark == "" {
		delete(key.Annotations, kmsv1alpha1.AnnotationOnDemandRotation)
	} else {
		metav1.SetMetaDataAnnotation(&key.ObjectMeta, kmsv1alpha1.AnnotationOnDemandRotation, mark)
	}
	return r.client.Patch(ctx, key, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// rotatedSince reports whether KMS shows an on-demand rotation begun at or
// after at: in progress (GetKeyRotationStatus, already read) or completed
// (ListKeyRotations).
func rotatedSince(ctx context.Context, api kmsclient.API, obs *observed, at time.Time) (bool, error) {
	from := at.Add(-clockSkew)
	if s := obs.rotation.OnDemandStartDate; s != nil && !s.Before(from) {
		return true, nil
	}
	rotations, err := api.ListKeyRotations(ctx, obs.key.ID)
	if err != nil {
		return false, err
	}
	for _, rot := range rotations {
		if rot.Type == "ON_DEMAND" && !rot.Date.Before(from) {
			return true, nil
		}
	}
	return false, nil
}
