package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// primaryKey is the multi-Region key a ReplicaKey replicates.
type primaryKey struct {
	id string
	// created is when the primary was made: KMS may answer calls on a key
	// made moments ago as if it did not exist yet.
	created time.Time
	// region is where the family's primary key is now: ReplicateKey goes
	// there, which after a failover is not the Key's own region.
	region string
}

// primary finds the multi-Region key rk replicates, under the tenancy rules
// of key references (key_reference.go): a Key of the namespace
// (primaryKeyRef), or a key ARN whose ownership tags are checked. What only
// the primary can tell (a Key that is not multi-Region, a replica region
// equal to the primary's) is refused here, since admission cannot see it.
func (r *ReplicaKeyReconciler) primary(ctx context.Context, rk *kmsv1alpha1.ReplicaKey) (*primaryKey, error) {
	arn, id := rk.Spec.PrimaryKeyARN, ""
	if ref := rk.Spec.PrimaryKeyRef; ref != nil {
		key, err := r.primaryKeyObject(ctx, rk.Namespace, ref.Name)
		if err != nil {
			return nil, err
		}
		if key.Status.Account != rk.Status.Account {
			return nil, newSpecError(kmsv1alpha1.ReasonReferenceRefused, fmt.Sprintf(
				"Key %s is in %s and this ReplicaKey in %s: a replica lives in its primary's account", ref.Name, accountName(key.Status.Account), accountName(rk.Status.Account)))
		}
		arn, id = key.Status.ARN, key.Status.KeyID
	}
	if regionOfARN(arn) == rk.Spec.Region {
		return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"spec.region %s is the primary key's region: a replica lives in another region", rk.Spec.Region))
	}
	api, err := r.KMS.For(rk.Status.Account, regionOfARN(arn))
	if err != nil {
		return nil, err
	}
	var k *kmsclient.Key
	if id != "" {
		k, err = api.DescribeKey(ctx, id)
	} else {
		k, err = checkTenancy(ctx, api, r.Options, rk.Namespace, arn)
	}
	if err != nil {
		return nil, err
	}
	if k.MultiRegionType == "" {
		return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf("KMS key %s is not a multi-Region key: only a multi-Region key has replicas", k.ID))
	}
	return &primaryKey{id: k.ID, region: k.PrimaryRegion, created: k.CreationDate}, nil
}

// primaryKeyObject is the Key named by primaryKeyRef, once it has a
// multi-Region KMS key; until then the ReplicaKey waits, and the Key watch
// brings it back.
func (r *ReplicaKeyReconciler) primaryKeyObject(ctx context.Context, ns, name string) (*kmsv1alpha1.Key, error) {
	var key kmsv1alpha1.Key
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &key); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, waitingForKey("Key %s does not exist in namespace %s", name, ns)
		}
		return nil, err
	}
	switch {
	case !key.Spec.MultiRegion:
		return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"spec.primaryKeyRef: Key %s is not a multi-Region key (spec.multiRegion: true): only a multi-Region key has replicas", name))
	case key.Spec.Observes() && !r.AllowUnmanagedKeyReferences:
		return nil, newSpecError(kmsv1alpha1.ReasonReferenceRefused, fmt.Sprintf(
			"Key %s only observes its KMS key (managementPolicy Observe); replicating a key the operator does not manage needs the operator flag --allow-unmanaged-key-references", name))
	case !key.DeletionTimestamp.IsZero():
		return nil, waitingForKey("Key %s is being deleted", name)
	case key.Status.KeyID == "" || key.Status.ARN == "":
		return nil, waitingForKey("Key %s has no KMS key yet", name)
	}
	return &key, nil
}
