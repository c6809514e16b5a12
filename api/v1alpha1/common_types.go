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
	// ReasonPropagating: KMS has not caught up with a recent change yet
	// (eventual consistency, a new IAM principal); retried with backoff.
	ReasonPropagating = "Propagating"
	// ReasonAccessDenied: IAM or the key policy denies the operator a call;
	// retried with backoff until a person grants it.
	ReasonAccessDenied = "AccessDenied"
	// ReasonDeletionProtected: a deleted Key's key was used within
	// spec.deletionProtection.unusedForDays, or KMS cannot tell: its
	// deletion is not scheduled.
	ReasonDeletionProtected = "DeletionProtected"
	// ReasonStillReferenced: a deleted Key is still referenced by Aliases or
	// Grants of its namespace: its key's deletion waits for them.
	ReasonStillReferenced = "StillReferenced"
	// ReasonAccountNotAllowed: the object's namespace is not among the
	// AWSAccount's allowedNamespaces (or the AWSAccount does not exist).
	ReasonAccountNotAllowed = "AccountNotAllowed"
	// ReasonAccountNotReady: the object's AWSAccount cannot be used now (its
	// role cannot be assumed); retried when the AWSAccount turns Ready.
	ReasonAccountNotReady = "AccountNotReady"
	// ReasonAccountChanged: the object's account resolves to another account
	// than the one its KMS resource lives in (a changed namespace default).
	ReasonAccountChanged = "AccountChanged"
	// ReasonAssumeRoleFailed: an AWSAccount's role cannot be assumed.
	ReasonAssumeRoleFailed = "AssumeRoleFailed"
	// ReasonInUse: a deleted AWSAccount is still used by objects; its
	// deletion waits for them.
	ReasonInUse = "InUse"
	// ReasonWaitingForSecret: the Secret holding a Key's key material (or
	// its entry) does not exist yet; the Key is woken when it appears.
	ReasonWaitingForSecret = "WaitingForSecret"
	// ReasonWaitingForReplicas: a multi-Region primary is not deleted while
	// replicas managed by other objects are still in use.
	ReasonWaitingForReplicas = "WaitingForReplicas"
)

// Finalizer is set on every object whose KMS resource the operator must clean up.
const Finalizer = "kms.kmsoperator.io/finalizer"

// AnnotationCreateStarted holds the time of a Key's last CreateKey attempt,
// written before the attempt. CreateKey is not idempotent: if the operator
// dies or loses the answer before it records the new key id, the next
// reconcile looks for the key by its ownership tags, and waits for KMS to list
// keys made since this time before it creates another.
const AnnotationCreateStarted = "kms.kmsoperator.io/create-started"

// AnnotationOnDemandRotation is written on a Key before each
// RotateKeyOnDemand call, as "<onDemandRequest value>@<RFC3339 time>". The
// call is not idempotent and KMS limits on-demand rotations: after a lost
// answer or a crash, the operator looks for that rotation in KMS before it
// sends another for the same request.
const AnnotationOnDemandRotation = "kms.kmsoperator.io/on-demand-rotation"

// Reserved tag keys the operator puts on the keys it creates or adopts. Users may
// not declare them; the tag reconciler never removes them.
const (
	TagPrefix       = "kms.kmsoperator.io/"
	TagOwnerUID     = TagPrefix + "owner-uid"
	TagOwnerName    = TagPrefix + "owner-name"
	TagOwnerNS      = TagPrefix + "owner-namespace"
	TagOwnerCluster = TagPrefix + "cluster"
	// TagOwnerKind is on keys owned by an object of another kind than Key
	// (ReplicaKey); a key without it is a Key's.
	TagOwnerKind = TagPrefix + "owner-kind"
)

// LocalObjectReference names a Key, or a ReplicaKey, in the same namespace.
// References across namespaces are deliberately impossible: see the
// README's tenancy model.
type LocalObjectReference struct {
	// Name of the object in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Kind of the object: Key, or ReplicaKey (an Alias or a Grant on a
	// ReplicaKey lives in the replica's region).
	// +kubebuilder:validation:Enum=Key;ReplicaKey
	// +kubebuilder:default=Key
	// +optional
	Kind string `json:"kind,omitempty"`
}

// Kinds a LocalObjectReference names.
const (
	KindKey        = "Key"
	KindReplicaKey = "ReplicaKey"
)

// IsReplicaKey reports whether r names a ReplicaKey ("" is a Key).
func (r *LocalObjectReference) IsReplicaKey() bool { return r.Kind == KindReplicaKey }

// GetConditions returns the Key's conditions.
func (k *Key) GetConditions() []metav1.Condition { return k.Status.Conditions }

// SetConditions replaces the Key's conditions.
func (k *Key) SetConditions(c []metav1.Condition) { k.Status.Conditions = c }

// SetObservedGeneration records the generation the Key's status describes.
func (k *Key) SetObservedGeneration(g int64) { k.Status.ObservedGeneration = g }

// GetConditions returns the ReplicaKey's conditions.
func (r *ReplicaKey) GetConditions() []metav1.Condition { return r.Status.Conditions }

// SetConditions replaces the ReplicaKey's conditions.
func (r *ReplicaKey) SetConditions(c []metav1.Condition) { r.Status.Conditions = c }

// SetObservedGeneration records the generation the ReplicaKey's status describes.
func (r *ReplicaKey) SetObservedGeneration(g int64) { r.Status.ObservedGeneration = g }

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

// The account an object's KMS resource lives in (see AWSAccount).

// GetAccountRef returns spec.accountRef.
func (k *Key) GetAccountRef() *AccountReference { return k.Spec.AccountRef }

// GetAccount returns status.account.
func (k *Key) GetAccount() string { return k.Status.Account }

// SetAccount sets status.account.
func (k *Key) SetAccount(a string) { k.Status.Account = a }

// HasKMSResource reports whether the Key has recorded a KMS key.
func (k *Key) HasKMSResource() bool { return k.Status.KeyID != "" }

// GetAccountRef returns spec.accountRef.
func (a *Alias) GetAccountRef() *AccountReference { return a.Spec.AccountRef }

// GetAccount returns status.account.
func (a *Alias) GetAccount() string { return a.Status.Account }

// SetAccount sets status.account.
func (a *Alias) SetAccount(acct string) { a.Status.Account = acct }

// HasKMSResource reports whether the Alias has recorded a KMS alias.
func (a *Alias) HasKMSResource() bool { return a.Status.ARN != "" || a.Status.TargetKeyID != "" }

// GetAccountRef returns spec.accountRef.
func (g *Grant) GetAccountRef() *AccountReference { return g.Spec.AccountRef }

// GetAccount returns status.account.
func (g *Grant) GetAccount() string { return g.Status.Account }

// SetAccount sets status.account.
func (g *Grant) SetAccount(a string) { g.Status.Account = a }

// HasKMSResource reports whether the Grant has recorded a KMS grant.
func (g *Grant) HasKMSResource() bool { return g.Status.GrantID != "" }

// GetAccountRef returns spec.accountRef.
func (r *ReplicaKey) GetAccountRef() *AccountReference { return r.Spec.AccountRef }

// GetAccount returns status.account.
func (r *ReplicaKey) GetAccount() string { return r.Status.Account }

// SetAccount sets status.account.
func (r *ReplicaKey) SetAccount(a string) { r.Status.Account = a }

// HasKMSResource reports whether the ReplicaKey has recorded a replica.
func (r *ReplicaKey) HasKMSResource() bool { return r.Status.KeyID != "" }
