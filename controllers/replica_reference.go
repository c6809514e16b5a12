package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// targetOfReplicaKeyObject follows a ReplicaKey of namespace ns to its
// replica: an Alias or a Grant on it lives in the replica's region. The
// rules are a Key's (targetOfKeyObject): missing, being deleted or not yet
// replicated is a wait; an observed replica needs
// --allow-unmanaged-key-references; another account's is refused.
func targetOfReplicaKeyObject(ctx context.Context, c client.Reader, o Options, ns, account, name string) (*keyTarget, error) {
	var rk kmsv1alpha1.ReplicaKey
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &rk); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, waitingForKey("ReplicaKey %s does not exist in namespace %s", name, ns)
		}
		return nil, err
	}
	switch {
	case rk.Spec.Observes() && !o.AllowUnmanagedKeyReferences:
		return nil, newSpecError(kmsv1alpha1.ReasonReferenceRefused, fmt.Sprintf(
			"ReplicaKey %s only observes its replica (managementPolicy Observe); referencing a key the operator does not manage needs the operator flag --allow-unmanaged-key-references", name))
	case !rk.DeletionTimestamp.IsZero():
		return nil, waitingForKey("ReplicaKey %s is being deleted", name)
	case rk.Status.KeyID == "" || rk.Status.ARN == "":
		return nil, waitingForKey("ReplicaKey %s has no replica yet", name)
	case rk.Status.Account != account:
		return nil, newSpecError(kmsv1alpha1.ReasonReferenceRefused, fmt.Sprintf(
			"ReplicaKey %s is in %s and this object in %s: references cannot cross accounts", name, accountName(rk.Status.Account), accountName(account)))
	}
	api, err := o.KMS.For(account, regionOfARN(rk.Status.ARN))
	if err != nil {
		return nil, err
	}
	t := &keyTarget{api: api, id: rk.Status.KeyID, arn: rk.Status.ARN}
	if c := rk.Status.CreationDate; c != nil {
		t.created = c.Time
	}
	return t, nil
}
