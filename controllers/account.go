package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// The AWS account an object's KMS resource lives in: its spec.accountRef,
// else its namespace's default (annotation), else the operator's own
// identity. An AWSAccount names the namespaces that may use it; its role must
// be assumable (Ready). Once the resource exists the object stays in its
// account: status.account records it, written with the resource's id.

// accountObject is what Keys, Aliases and Grants tell about their account.
type accountObject interface {
	object
	GetAccountRef() *kmsv1alpha1.AccountReference
	GetAccount() string
	SetAccount(string)
	HasKMSResource() bool
}

// accountNotReadyError is a wait for an AWSAccount to turn Ready: retried
// with backoff, and at once when the AWSAccount's readiness changes (watch).
type accountNotReadyError struct{ msg string }

func (e *accountNotReadyError) Error() string { return e.msg }

// useAccount resolves the account obj uses and checks that it may use it;
// the caller records it in status.account. The account's clients are set up
// from the AWSAccount's spec, so that they exist even before the AWSAccount
// reconciler ran in this process. While the AWSAccount is not Ready, the
// object records it at once (the AWSAccount watch finds it by it).
func useAccount(ctx context.Context, c client.Reader, o Options, obj accountObject) (string, error) {
	name, err := declaredAccount(ctx, c, obj)
	if err != nil {
		return "", err
	}
	if obj.HasKMSResource() && name != obj.GetAccount() {
		return "", newSpecError(kmsv1alpha1.ReasonAccountChanged, fmt.Sprintf(
			"the KMS resource is in %s, but the object now resolves to %s (was the namespace's %s annotation changed?); set spec.accountRef to %q or restore the annotation",
			accountName(obj.GetAccount()), accountName(name), kmsv1alpha1.AnnotationDefaultAccount, obj.GetAccount()))
	}
	if name == "" {
		return "", nil
	}
	acct, err := getAccount(ctx, c, name)
	if err != nil {
		return "", err
	}
	if err := checkAllowed(ctx, c, acct, obj.GetNamespace()); err != nil {
		return "", err
	}
	if ready := meta.FindStatusCondition(acct.Status.Conditions, kmsv1alpha1.ConditionReady); ready == nil ||
		ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != acct.Generation {
		why := "not verified yet"
		if ready != nil && ready.Status == metav1.ConditionFalse {
			why = ready.Message
		}
		obj.SetAccount(name)
		return "", &accountNotReadyError{fmt.Sprintf("AWSAccount %s is not Ready: %s", name, why)}
	}
	if o.Accounts != nil {
		o.Accounts.SetAccount(name, accountConfig(acct))
	}
	return name, nil
}

// releaseAccount sets up the clients of the account obj's KMS resource is in,
// for its deletion: no tenancy check (an account that stopped allowing the
// namespace must still let its resources go).
func releaseAccount(ctx context.Context, c client.Reader, o Options, obj accountObject) error {
	name := obj.GetAccount()
	if name == "" || o.Accounts == nil {
		return nil
	}
	acct, err := getAccount(ctx, c, name)
	if err != nil {
		return err
	}
	o.Accounts.SetAccount(name, accountConfig(acct))
	return nil
}

// declaredAccount is spec.accountRef's name, else the namespace's default,
// else "" (the operator's own identity).
func declaredAccount(ctx context.Context, c client.Reader, obj accountObject) (string, error) {
	if ref := obj.GetAccountRef(); ref != nil {
		return ref.Name, nil
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.Get(ctx, client.ObjectKey{Name: obj.GetNamespace()}, ns); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	return ns.GetAnnotations()[kmsv1alpha1.AnnotationDefaultAccount], nil
}

// getAccount reads the AWSAccount name; a missing one refuses the object
// (the AWSAccount watch brings it back when one is created).
func getAccount(ctx context.Context, c client.Reader, name string) (*kmsv1alpha1.AWSAccount, error) {
	acct := &kmsv1alpha1.AWSAccount{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, acct); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, newSpecError(kmsv1alpha1.ReasonAccountNotAllowed, fmt.Sprintf("AWSAccount %s does not exist", name))
		}
		return nil, err
	}
	return acct, nil
}

// checkAllowed refuses a namespace the AWSAccount does not list or select.
// The message names the AWSAccount only: a tenant learns nothing about the
// account behind it.
func checkAllowed(ctx context.Context, c client.Reader, acct *kmsv1alpha1.AWSAccount, ns string) error {
	allowed := acct.Spec.AllowedNamespaces
	if slices.Contains(allowed.Names, ns) {
		return nil
	}
	if allowed.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(allowed.Selector)
		if err != nil {
			return newSpecError(kmsv1alpha1.ReasonAccountNotAllowed, fmt.Sprintf("AWSAccount %s has an invalid namespace selector: %v", acct.Name, err))
		}
		nsObj := &metav1.PartialObjectMetadata{}
		nsObj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := c.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
			return client.IgnoreNotFound(err)
		}
		if sel.Matches(labels.Set(nsObj.GetLabels())) {
			return nil
		}
	}
	return newSpecError(kmsv1alpha1.ReasonAccountNotAllowed, fmt.Sprintf("namespace %s may not use AWSAccount %s", ns, acct.Name))
}

// accountConfig is what the KMS clients of acct need.
func accountConfig(acct *kmsv1alpha1.AWSAccount) kmsclient.AccountConfig {
	s := acct.Spec
	cfg := kmsclient.AccountConfig{RoleARN: s.RoleARN, ExternalID: s.ExternalID, SessionName: s.SessionName, Region: s.Region}
	if cfg.SessionName == "" {
		cfg.SessionName = "kms-operator"
	}
	if s.SessionDuration != nil {
		cfg.SessionDuration = s.SessionDuration.Duration
	}
	if e := s.Endpoints; e != nil {
		cfg.KMSEndpoint, cfg.STSEndpoint = e.KMS, e.STS
	}
	if len(s.Quotas) > 0 {
		cfg.Quotas = map[string]float64{}
		for op, n := range s.Quotas {
			cfg.Quotas[op] = float64(n)
		}
	}
	return cfg
}

// accountOfARN is the account id in an ARN, "" for anything else.
func accountOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return ""
	}
	return parts[4]
}

// accountOf is the account obj's KMS resource lives in ("" the operator's
// own).
func accountOf(obj object) string {
	if ao, ok := obj.(accountObject); ok {
		return ao.GetAccount()
	}
	return ""
}

// accountName names an account in messages.
func accountName(name string) string {
	if name == "" {
		return "the operator's own account"
	}
	return "AWSAccount " + name
}
