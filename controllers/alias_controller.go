package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=aliases,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=aliases/status,verbs=patch
// +kubebuilder:rbac:groups=kms.kmsoperator.io,resources=keys;replicakeys,verbs=get;list;watch

// Field indexes of Alias objects.
const (
	aliasTargetKeyRefField = ".spec.targetKeyRef.name" // Key events find the Aliases to wake
	aliasNameField         = ".spec.name"              // Aliases declaring the same name see each other
)

func indexAliasTargetKeyRef(o client.Object) []string {
	if ref := o.(*kmsv1alpha1.Alias).Spec.TargetKeyRef; ref != nil {
		return []string{refIndexValue(ref)}
	}
	return nil
}

func indexAliasName(o client.Object) []string {
	return []string{o.(*kmsv1alpha1.Alias).Spec.Name}
}

// AliasReconciler keeps a KMS alias pointing at the key its Alias declares.
//
// Ownership: KMS aliases carry no tags, so status.targetKeyID is the record
// that this object created or adopted the alias. An alias the object has no
// record of belongs to someone else (another Alias object, Terraform, a
// person) and is left alone: the object reports a Conflict. Two exceptions: an
// alias that already points at the declared key is taken as ours (a retry
// after a crash between CreateAlias and the status write; the result is the
// same either way), and --allow-adoption takes over an alias whose current key
// this object could reference itself.
type AliasReconciler struct {
	Options
	client   client.Client
	recorder events.EventRecorder
}

// SetupWithManager registers the reconciler, its field indexes and the Key
// watch (watches.go).
func (r *AliasReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.client = mgr.GetClient()
	r.recorder = mgr.GetEventRecorder("kms-operator")
	ctx := context.Background()
	if err := errors.Join(
		mgr.GetFieldIndexer().IndexField(ctx, &kmsv1alpha1.Alias{}, aliasTargetKeyRefField, indexAliasTargetKeyRef),
		mgr.GetFieldIndexer().IndexField(ctx, &kmsv1alpha1.Alias{}, aliasNameField, indexAliasName),
	); err != nil {
		return err
	}
	b, err := newController(mgr, "Alias", &kmsv1alpha1.Alias{}, &kmsv1alpha1.AliasList{}, r.Options)
	if err != nil {
		return err
	}
	return b.
		Watches(&kmsv1alpha1.Key{}, handler.EnqueueRequestsFromMapFunc(referrersOf(r.client, &kmsv1alpha1.AliasList{}, aliasTargetKeyRefField)), builder.WithPredicates(keyReferenceChanged)).
		Watches(&kmsv1alpha1.ReplicaKey{}, handler.EnqueueRequestsFromMapFunc(referrersOf(r.client, &kmsv1alpha1.AliasList{}, aliasTargetKeyRefField)), builder.WithPredicates(replicaReferenceChanged)).
		Complete(r)
}

// Reconcile runs the shared lifecycle with the Alias's steps.
func (r *AliasReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	l := &lifecycle[*kmsv1alpha1.Alias]{kind: "Alias", client: r.client, recorder: r.recorder, steps: r, options: r.Options}
	return l.Reconcile(ctx, req)
}

func (r *AliasReconciler) newObject() *kmsv1alpha1.Alias { return &kmsv1alpha1.Alias{} }

// prepare: an Alias always needs the finalizer; nothing else.
func (r *AliasReconciler) prepare(*kmsv1alpha1.Alias) (bool, func()) { return true, nil }

// reconcileNormal observes the alias, creates or re-targets it, and reports.
func (r *AliasReconciler) reconcileNormal(ctx context.Context, a *kmsv1alpha1.Alias) (ctrl.Result, error) {
	target, err := resolveTarget(ctx, r.client, r.Options, a.Namespace, a.Status.Account, a.Spec.TargetKeyRef, a.Spec.TargetKeyID)
	if err != nil {
		return ctrl.Result{}, err
	}
	arn := aliasARN(target.arn, a.Spec.Name)
	if claimed, err := r.claimedByOther(ctx, a, arn); err != nil {
		return ctrl.Result{}, err
	} else if claimed {
		if owns(a, arn) {
			a.Status.TargetKeyID, a.Status.ARN = "", ""
		}
		return ctrl.Result{}, newSpecError(kmsv1alpha1.ReasonConflict, fmt.Sprintf(
			"alias %s is managed by another Alias object; this one leaves it alone until that object is deleted", a.Spec.Name))
	}

	// One DescribeKey of the alias name: ListAliases would page through every
	// alias of the region at each reconcile.
	current, err := target.api.GetAlias(ctx, a.Spec.Name)
	if kmsclient.IsNotFound(err) {
		current = nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.converge(ctx, a, target, current, owns(a, arn)); err != nil {
		return ctrl.Result{}, target.stale(err, r.Options)
	}
	if a.Status.ARN != "" && a.Status.ARN != arn {
		// The target moved to another region; the alias in the old one is ours too.
		if err := r.deleteAlias(ctx, a); err != nil {
			return ctrl.Result{}, err
		}
	}
	a.Status.TargetKeyID, a.Status.ARN = target.id, arn
	reportSuccess(a, fmt.Sprintf("%s points at key %s", a.Spec.Name, target.id))
	return resync(r.SyncPeriod), nil
}

// converge makes the alias point at the target: created when absent,
// re-targeted when it is ours and points elsewhere, adopted (with the flag)
// when it is not ours.
func (r *AliasReconciler) converge(ctx context.Context, a *kmsv1alpha1.Alias, target *keyTarget, current *kmsclient.Alias, owned bool) error {
	switch {
	case current == nil:
		err := target.api.CreateAlias(ctx, a.Spec.Name, target.id)
		if kmsclient.ClassOf(err) == kmsclient.AlreadyExists {
			// The SDK retried a CreateAlias whose response was lost, or
			// someone created it meanwhile: one more look tells which.
			if again, gerr := target.api.GetAlias(ctx, a.Spec.Name); gerr == nil && again.TargetKeyID == target.id {
				err = nil
			}
		}
		if err != nil {
			return err
		}
		note := "Created alias %s pointing at key %s"
		if owned {
			note = "Re-created alias %s, deleted outside Kubernetes, pointing at key %s"
		}
		r.recorder.Eventf(a, nil, corev1.EventTypeNormal, "Created", "CreateAlias", note, a.Spec.Name, target.id)
	case current.TargetKeyID == target.id:
		// In sync; without a record it is our own retry after a crash.
	case !owned:
		if err := r.mayAdopt(ctx, target.api, a, current); err != nil {
			return err
		}
		if err := target.api.UpdateAlias(ctx, a.Spec.Name, target.id); err != nil {
			return err
		}
		r.recorder.Eventf(a, nil, corev1.EventTypeNormal, "Adopted", "UpdateAlias",
			"Adopted alias %s and moved it from key %s to key %s", a.Spec.Name, current.TargetKeyID, target.id)
	default:
		// The spec changed, or the alias was re-targeted outside Kubernetes.
		if err := target.api.UpdateAlias(ctx, a.Spec.Name, target.id); err != nil {
			return err
		}
		r.recorder.Eventf(a, nil, corev1.EventTypeNormal, "Updated", "UpdateAlias",
			"Re-targeted alias %s from key %s to key %s", a.Spec.Name, current.TargetKeyID, target.id)
	}
	return nil
}

// claimedByOther reports whether another Alias object holds the record of the
// alias with this ARN (same name and region): declaring an existing name never
// takes it over, whatever KMS shows meanwhile. Should two objects both hold a
// record (they observed the alias at the same moment), the older one keeps it.
func (r *AliasReconciler) claimedByOther(ctx context.Context, a *kmsv1alpha1.Alias, arn string) (bool, error) {
	var list kmsv1alpha1.AliasList
	if err := r.client.List(ctx, &list, client.MatchingFields{aliasNameField: a.Spec.Name}); err != nil {
		return false, err
	}
	for i := range list.Items {
		other := &list.Items[i]
		if other.UID == a.UID || !owns(other, arn) {
			continue
		}
		if !owns(a, arn) || olderThan(other, a) {
			return true, nil
		}
	}
	return false, nil
}

// owns reports whether a holds the record of the alias with this ARN.
func owns(a *kmsv1alpha1.Alias, arn string) bool {
	return a.Status.TargetKeyID != "" && a.Status.ARN == arn
}

func olderThan(a, b client.Object) bool {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.GetNamespace()+"/"+a.GetName() < b.GetNamespace()+"/"+b.GetName()
}

// mayAdopt allows taking over an alias this object did not create only with
// --allow-adoption, and only when the key it points at now is one this object
// could reference itself: otherwise a tenant could hijack another tenant's
// alias and have its users encrypt under a key of the tenant's choosing.
func (r *AliasReconciler) mayAdopt(ctx context.Context, api kmsclient.API, a *kmsv1alpha1.Alias, current *kmsclient.Alias) error {
	if !r.AllowAdoption {
		return newSpecError(kmsv1alpha1.ReasonConflict, fmt.Sprintf(
			"alias %s already exists and points at key %s, and this object did not create it; delete it in KMS or run the operator with --allow-adoption to take it over",
			a.Spec.Name, current.TargetKeyID))
	}
	if _, err := checkTenancy(ctx, api, r.Options, a.Namespace, current.TargetKeyID); err != nil {
		var se *specError
		if errors.As(err, &se) {
			return newSpecError(kmsv1alpha1.ReasonAdoptionRefused, fmt.Sprintf(
				"alias %s exists and points at a key this object may not reference: %s", a.Spec.Name, se.msg))
		}
		return err
	}
	return nil
}

// reconcileDelete deletes the alias if this object owns it; an alias it
// reported as a conflict is someone else's and stays.
func (r *AliasReconciler) reconcileDelete(ctx context.Context, a *kmsv1alpha1.Alias) error {
	if a.Status.TargetKeyID == "" {
		return nil
	}
	return r.deleteAlias(ctx, a)
}

func (r *AliasReconciler) deleteAlias(ctx context.Context, a *kmsv1alpha1.Alias) error {
	if claimed, err := r.claimedByOther(ctx, a, a.Status.ARN); err != nil || claimed {
		return err // claimed: another object holds it now, not ours to delete
	}
	// The record's ARN names the region: the Key may be gone already.
	api, err := r.KMS.For(a.Status.Account, regionOfARN(a.Status.ARN))
	if err != nil {
		return err
	}
	if err := api.DeleteAlias(ctx, a.Spec.Name); kmsclient.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	r.recorder.Eventf(a, nil, corev1.EventTypeNormal, "Deleted", "DeleteAlias", "Deleted alias %s", a.Spec.Name)
	return nil
}

// aliasARN is the ARN of alias name next to the key with ARN keyARN:
// arn:aws:kms:region:account:key/id gives arn:aws:kms:region:account:alias/x.
func aliasARN(keyARN, name string) string {
	return keyARN[:strings.LastIndex(keyARN, ":")+1] + name
}
