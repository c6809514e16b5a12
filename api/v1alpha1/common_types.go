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

// Condition reasons, shared by the three kinds.
const (
	ReasonAvailable          = "Available"
	ReasonReconcileSuccess   = "ReconcileSuccess"
	ReasonCreating           = "Creating"
	ReasonUpdating           = "Updating"
	ReasonDeleting           = "Deleting"
	ReasonDrifted            = "Drifted"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonInvalidKeyState    = "InvalidKeyState"
	ReasonThrottled          = "Throttled"
	ReasonKMSError           = "KMSError"
	ReasonNotFound           = "NotFound"
	ReasonConflict           = "Conflict"
	ReasonAdoptionRefused    = "AdoptionRefused"
	ReasonReferenceRefused   = "ReferenceRefused"
	ReasonWaitingForKey      = "WaitingForKey"
	ReasonObserveOnly        = "ObserveOnly"
	ReasonPendingDeletion    = "PendingDeletion"
	ReasonDisabled           = "Disabled"
	ReasonKeyNotReady        = "KeyNotReady"
	ReasonReconcileError     = "ReconcileError"
	ReasonDeletionInProgress = "DeletionInProgress"
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

// GetConditions returns the Alias's conditions.
func (a *Alias) GetConditions() []metav1.Condition { return a.Status.Conditions }

// GetConditions returns the Grant's conditions.
func (g *Grant) GetConditions() []metav1.Condition { return g.Status.Conditions }
