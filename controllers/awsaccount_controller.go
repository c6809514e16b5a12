package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=awsaccounts,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=awsaccounts/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// AWSAccountReconciler keeps each AWSAccount's clients set up and says
// whether its role can be assumed: a fresh AssumeRole and GetCallerIdentity
// every sync period, so a role whose trust was broken turns the AWSAccount
// (and then its objects) not Ready even while cached credentials still work.
// Its deletion waits until no object uses it.
type AWSAccountReconciler struct {
	Options
	client client.Client
	// reader reads from the API server, not the cache: an operator may
	// watch some namespaces only, and an AWSAccount is the whole cluster's.
	reader   client.Reader
	recorder events.EventRecorder
}

// SetupWithManager registers the reconciler; the deletion of an object that
// uses an AWSAccount brings the AWSAccount back, so a held deletion goes on.
func (r *AWSAccountReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.client, r.reader = mgr.GetClient(), mgr.GetAPIReader()
	r.recorder = mgr.GetEventRecorder("kms-operator")
	users := handler.EnqueueRequestsFromMapFunc(accountsOf)
	gone := builder.WithPredicates(predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("awsaccount").
		For(&kmsv1alpha1.AWSAccount{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controllerOptions(r.Options)).
		Watches(&kmsv1alpha1.Key{}, users, gone).
		Watches(&kmsv1alpha1.Alias{}, users, gone).
		Watches(&kmsv1alpha1.Grant{}, users, gone).
		Complete(r)
}

// accountsOf maps an object to the AWSAccounts it names or used.
func accountsOf(_ context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, name := range indexAccount(o) {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: name}})
	}
	return reqs
}

// Reconcile runs the shared lifecycle with the AWSAccount's steps.
func (r *AWSAccountReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	l := &lifecycle[*kmsv1alpha1.AWSAccount]{kind: "AWSAccount", client: r.client, recorder: r.recorder, steps: r, options: r.Options}
	return l.Reconcile(ctx, req)
}

func (r *AWSAccountReconciler) newObject() *kmsv1alpha1.AWSAccount { return &kmsv1alpha1.AWSAccount{} }

// prepare: the finalizer holds the deletion while objects use the account.
func (r *AWSAccountReconciler) prepare(*kmsv1alpha1.AWSAccount) (bool, func()) { return true, nil }

// assumeRoleError is an AWSAccount whose role cannot be assumed.
type assumeRoleError struct {
	role string
	err  error
}

func (e *assumeRoleError) Error() string {
	return fmt.Sprintf("cannot assume role %s: %v; check that its trust policy allows the operator's identity (and the external id)", e.role, e.err)
}

func (e *assumeRoleError) Unwrap() error { return e.err }

// reconcileNormal sets up the account's clients and verifies the role.
func (r *AWSAccountReconciler) reconcileNormal(ctx context.Context, a *kmsv1alpha1.AWSAccount) (ctrl.Result, error) {
	if r.Accounts == nil {
		return ctrl.Result{}, errors.New("this operator has no support for AWS accounts")
	}
	r.Accounts.SetAccount(a.Name, accountConfig(a))
	id, err := r.Accounts.VerifyAccount(ctx, a.Name)
	if err != nil {
		accountReady.WithLabelValues(a.Name).Set(0)
		return ctrl.Result{}, &assumeRoleError{role: a.Spec.RoleARN, err: err}
	}
	a.Status.AccountID, a.Status.ARN = id.AccountID, id.ARN
	a.Status.CredentialsExpiry = &metav1.Time{Time: id.Expires.UTC()}
	reportSuccess(a, fmt.Sprintf("role assumed as %s", id.ARN))
	accountReady.WithLabelValues(a.Name).Set(1)
	return resync(r.SyncPeriod), nil
}

// reconcileDelete forgets the account once no object uses it; until then
// the deletion is held, naming the namespaces that still use it.
func (r *AWSAccountReconciler) reconcileDelete(ctx context.Context, a *kmsv1alpha1.AWSAccount) error {
	namespaces, n, err := r.users(ctx, a.Name)
	if err != nil {
		return err
	}
	if n > 0 {
		return heldDeletion(kmsv1alpha1.ReasonInUse, fmt.Sprintf(
			"AWSAccount %s is still used by %d object(s) in namespace(s) %s: delete them (their keys are released through this account) before the AWSAccount",
			a.Name, n, strings.Join(namespaces, ", ")))
	}
	if r.Accounts != nil {
		r.Accounts.RemoveAccount(a.Name)
	}
	accountReady.DeleteLabelValues(a.Name)
	return nil
}

// users counts the Keys, Aliases and Grants of every namespace that name or
// use account, and lists their namespaces. It lists every object of the
// cluster, uncached: it runs only when an AWSAccount is deleted.
func (r *AWSAccountReconciler) users(ctx context.Context, account string) ([]string, int, error) {
	var namespaces []string
	n := 0
	for _, list := range []client.ObjectList{&kmsv1alpha1.KeyList{}, &kmsv1alpha1.AliasList{}, &kmsv1alpha1.GrantList{}} {
		if err := r.reader.List(ctx, list); err != nil {
			return nil, 0, err
		}
		err := meta.EachListItem(list, func(o runtime.Object) error {
			obj := o.(client.Object)
			if slices.Contains(indexAccount(obj), account) {
				n++
				if !slices.Contains(namespaces, obj.GetNamespace()) {
					namespaces = append(namespaces, obj.GetNamespace())
				}
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	slices.Sort(namespaces)
	return namespaces, n, nil
}
