package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// An Alias or a Grant names its KMS key by a Key object of its namespace
// (keyRef) or by a raw key id, ARN or alias name. This file resolves either
// under the tenancy rules (see the README's tenancy model).

// keyTarget is the KMS key a reference resolved to.
type keyTarget struct {
	api kmsclient.API // of the key's region
	id  string        // the key id, never an ARN or alias
	arn string
	// created is when the key was made, if known: KMS may answer calls on a
	// key made moments ago as if it did not exist yet.
	created time.Time
}

// stale turns an answer KMS may give about target from before its creation
// into a wait (consistency.go).
func (t *keyTarget) stale(err error, o Options) error {
	return staleAfterWrite(err, t.created, o.consistencyWindow())
}

// resolveTarget resolves a Key reference (ref) or a raw key id, ARN or alias
// name (rawID) declared by an object in namespace ns that uses account (an
// AWSAccount's name, "" for the operator's own). A ref costs no KMS call; a
// raw id costs one DescribeKey and one ListTags (the tenancy check), so call
// it once per reconcile. References never cross accounts.
func resolveTarget(ctx context.Context, c client.Reader, o Options, ns, account string, ref *kmsv1alpha1.LocalObjectReference, rawID string) (*keyTarget, error) {
	if ref != nil && ref.IsReplicaKey() {
		return targetOfReplicaKeyObject(ctx, c, o, ns, account, ref.Name)
	}
	if ref != nil {
		return targetOfKeyObject(ctx, c, o, ns, account, ref.Name)
	}
	if err := checkARNAccount(ctx, c, account, rawID); err != nil {
		return nil, err
	}
	api, err := o.KMS.For(account, regionOfARN(rawID))
	if err != nil {
		return nil, err
	}
	key, err := checkTenancy(ctx, api, o, ns, rawID)
	if err != nil {
		return nil, err
	}
	return &keyTarget{api: api, id: key.ID, arn: key.ARN, created: key.CreationDate}, nil
}

// targetOfKeyObject follows the Key object ns/name (references never cross
// namespaces) to its KMS key. A Key that is missing, being deleted or not yet
// created in KMS is a wait, not an error: the Key watch brings the referring
// object back as soon as the Key changes.
func targetOfKeyObject(ctx context.Context, c client.Reader, o Options, ns, account, name string) (*keyTarget, error) {
	var key kmsv1alpha1.Key
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &key); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, waitingForKey("Key %s does not exist in namespace %s", name, ns)
		}
		return nil, err
	}
	switch {
	case key.Spec.Observes() && !o.AllowUnmanagedKeyReferences:
		// An observed key is not managed by the operator: referencing it is
		// what --allow-unmanaged-key-references guards, whichever way it is named.
		return nil, newSpecError(kmsv1alpha1.ReasonReferenceRefused, fmt.Sprintf(
			"Key %s only observes its KMS key (managementPolicy Observe); referencing a key the operator does not manage needs the operator flag --allow-unmanaged-key-references", name))
	case !key.DeletionTimestamp.IsZero():
		return nil, waitingForKey("Key %s is being deleted", name)
	case key.Status.KeyID == "" || key.Status.ARN == "":
		return nil, waitingForKey("Key %s has no KMS key yet", name)
	case key.Status.Account != account:
		return nil, newSpecError(kmsv1alpha1.ReasonReferenceRefused, fmt.Sprintf(
			"Key %s is in %s and this object in %s: references cannot cross accounts", name, accountName(key.Status.Account), accountName(account)))
	}
	api, err := o.KMS.For(account, regionOfARN(key.Status.ARN))
	if err != nil {
		return nil, err
	}
	t := &keyTarget{api: api, id: key.Status.KeyID, arn: key.Status.ARN}
	if c := key.Status.CreationDate; c != nil {
		t.created = c.Time
	}
	return t, nil
}

// checkARNAccount refuses a key ARN of another AWS account than the
// AWSAccount the referring object uses. (A key id or alias name is looked up
// in that account anyway.)
func checkARNAccount(ctx context.Context, c client.Reader, account, rawID string) error {
	arnAccount := accountOfARN(rawID)
	if account == "" || arnAccount == "" {
		return nil
	}
	acct, err := getAccount(ctx, c, account)
	if err != nil {
		return err
	}
	if id := acct.Status.AccountID; id != "" && id != arnAccount {
		return newSpecError(kmsv1alpha1.ReasonReferenceRefused, fmt.Sprintf(
			"key %s is in AWS account %s, not in AWSAccount %s's: references cannot cross accounts", rawID, arnAccount, account))
	}
	return nil
}

func waitingForKey(format string, args ...any) error {
	return newSpecError(kmsv1alpha1.ReasonWaitingForKey, "waiting for Key: "+fmt.Sprintf(format, args...))
}

// checkTenancy enforces the tenancy rule on a raw key id: a key whose
// ownership tags name another namespace or another cluster is refused, and a
// key without them (not managed by the operator) is refused unless
// --allow-unmanaged-key-references is on. DescribeKey also turns an ARN or
// alias into the key id.
func checkTenancy(ctx context.Context, api kmsclient.API, o Options, ns, keyID string) (*kmsclient.Key, error) {
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
		if age := time.Since(key.CreationDate); !o.AllowUnmanagedKeyReferences && age < o.consistencyWindow() {
			// KMS lists a new key's tags late: a key made moments ago
			// by a Key elsewhere would look unmanaged.
			return nil, propagating("KMS shows no ownership tags on key %s, created %s ago; it may not show them yet",
				key.ID, age.Round(time.Second))
		}
		if !o.AllowUnmanagedKeyReferences {
			refusal = fmt.Sprintf("key %s is not managed by kms-operator; referencing it by id needs the operator flag --allow-unmanaged-key-references", key.ID)
		}
	case cluster != o.ClusterName:
		refusal = fmt.Sprintf("key %s is managed by another cluster; reference keys of this cluster only", key.ID)
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
