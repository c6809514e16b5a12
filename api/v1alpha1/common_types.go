package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Condition types. Ready and Synced follow the kstatus and Crossplane conventions
// so that `kubectl wait --for=condition=Ready` and GitOps health checks work.
const (
	// ConditionReady is True when the KMS resource exists and matches the spec.
	ConditionReady = "Ready"
	// ConditionSynced is True when the last reconcile applied the spec to KMS
	// (or, in Observe mode, observed it) without error.
	ConditionSynced = "Synced"
)

// Condition reasons, shared by every kind. Only reasons a controller sets are
// listed: the Argo CD health script and its tests classify each of them.
const (
	ReasonAvailable        = "Available"
	ReasonReconcileSuccess = "ReconcileSuccess"
	ReasonUpdating         = "Updating"
	ReasonDrifted          = "Drifted"
	ReasonInvalidSpec      = "InvalidSpec"
	ReasonInvalidKeyState  = "InvalidKeyState"
	ReasonThrottled        = "Throttled"
	ReasonNotFound         = "NotFound"
	ReasonConflict         = "Conflict"
	ReasonAdoptionRefused  = "AdoptionRefused"
	ReasonReferenceRefused = "ReferenceRefused"
	ReasonWaitingForKey    = "WaitingForKey"
	ReasonObserveOnly      = "ObserveOnly"
	ReasonReconcileError   = "ReconcileError"
)

// Finalizer is set on every object whose KMS resource the operator must clean up.
const Finalizer = "kms.kmsoperator.io/finalizer"

// AnnotationCreateStarted is written on a Key before its first CreateKey call.
// CreateKey is not idempotent: if the operator dies before it records the new
// key id, this annotation tells the next reconcile to look for the key by its
// ownership tags instead of creating a second one. It stays after creation, so
// a Key restored without its status (a backup, a GitOps re-sync) is found too.
const AnnotationCreateStarted = "kms.kmsoperator.io/create-started"

// Reserved tag keys the operator puts on the keys it creates or adopts. Users may
// not declare them; the tag reconciler never removes them.
const (
	TagPrefix       = "kms.kmsoperator.io/"
	TagOwnerUID     = TagPrefix + "owner-uid"
	TagOwnerName    = TagPrefix + "owner-name"
	TagOwnerNS      = TagPrefix + "owner-namespace"
	TagOwnerCluster = TagPrefix + "cluster"
)

// LocalObjectReference names an object in the same namespace. References across
// namespaces are deliberately impossible: see the README's tenancy model.
type LocalObjectReference struct {
	// Name of the object in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// GetConditions returns the Key's conditions.
func (k *Key) GetConditions() []metav1.Condition { return k.Status.Conditions }

// SetConditions replaces the Key's conditions.
func (k *Key) SetConditions(c []metav1.Condition) { k.Status.Conditions = c }

// SetObservedGeneration records the generation the Key's status describes.
func (k *Key) SetObservedGeneration(g int64) { k.Status.ObservedGeneration = g }

// GetConditions returns the Alias's conditions.
func (a *Alias) GetConditions() []metav1.Condition { return a.Status.Conditions }

// SetConditions replaces the Alias's conditions.
func (a *Alias) SetConditions(c []metav1.Condition) { a.Status.Conditions = c }

// SetObservedGeneration records the generation the Alias's status describes.
func (a *Alias) SetObservedGeneration(g int64) { a.Status.ObservedGeneration = g }

// GetConditions returns the Grant's conditions.
func (g *Grant) GetConditions() []metav1.Condition { return g.Status.Conditions }

// SetConditions replaces the Grant's conditions.
func (g *Grant) SetConditions(c []metav1.Condition) { g.Status.Conditions = c }

// SetObservedGeneration records the generation the Grant's status describes.
func (g *Grant) SetObservedGeneration(gen int64) { g.Status.ObservedGeneration = gen }
