package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReplicaKeySpec is the declared state of a replica of a multi-Region KMS
// key: a key with its primary's id and material in another region, and its
// own description, policy, tags and state.
// +kubebuilder:validation:XValidation:rule="has(self.primaryKeyRef) != has(self.primaryKeyARN)",message="exactly one of spec.primaryKeyRef or spec.primaryKeyARN must be set"
// +kubebuilder:validation:XValidation:rule="has(self.primaryKeyRef) == has(oldSelf.primaryKeyRef) && has(self.primaryKeyARN) == has(oldSelf.primaryKeyARN)",message="spec.primaryKeyRef and spec.primaryKeyARN are immutable: a replica belongs to one multi-Region key"
// +kubebuilder:validation:XValidation:rule="!has(self.primaryKeyARN) || self.primaryKeyARN.split(':')[3] != self.region",message="spec.region is the region of spec.primaryKeyARN: a replica lives in another region than its primary key"
// +kubebuilder:validation:XValidation:rule="has(self.accountRef) == has(oldSelf.accountRef) && (!has(self.accountRef) || self.accountRef.name == oldSelf.accountRef.name)",message="spec.accountRef is immutable: a KMS resource cannot move between accounts"
type ReplicaKeySpec struct {
	// PrimaryKeyRef names the Key, in the same namespace, whose multi-Region
	// key (multiRegion: true) this replicates. Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.primaryKeyRef is immutable: a replica belongs to one multi-Region key"
	// +kubebuilder:validation:XValidation:rule="!has(self.kind) || self.kind == 'Key'",message="spec.primaryKeyRef names a Key: a replica replicates a primary key, not another replica"
	// +optional
	PrimaryKeyRef *LocalObjectReference `json:"primaryKeyRef,omitempty"`

	// PrimaryKeyARN is the ARN of the multi-Region key (mrk-) to replicate,
	// for a primary no Key of this namespace manages. A key owned by an
	// object of another namespace is refused; a key the operator does not
	// own needs --allow-unmanaged-key-references. Immutable.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/mrk-[0-9a-f]{32}$')",message="spec.primaryKeyARN must be the ARN of a multi-Region key: arn:aws:kms:REGION:ACCOUNT:key/mrk-..."
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.primaryKeyARN is immutable: a replica belongs to one multi-Region key"
	// +optional
	PrimaryKeyARN string `json:"primaryKeyARN,omitempty"`

	// Region of the replica: any region of the primary key's partition but
	// the primary key's own. Immutable.
	// +kubebuilder:validation:Pattern=`^[a-z]{2,4}(-[a-z]+)+-[0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.region is immutable: a replica cannot move between regions"
	Region string `json:"region"`

	// Description of the replica, up to 8192 characters.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	Description string `json:"description,omitempty"`

	// Policy is the replica's key policy as JSON. When omitted KMS applies
	// its default policy (a policy is not replicated). Compared
	// semantically, as on Key.
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	Policy string `json:"policy,omitempty"`

	// BypassPolicyLockoutSafetyCheck lets a policy through that would stop the
	// operator from changing it again. Use with care.
	// +optional
	BypassPolicyLockoutSafetyCheck bool `json:"bypassPolicyLockoutSafetyCheck,omitempty"`

	// Tags on the replica (tags are not replicated), at most 45: KMS allows
	// 50 per key and the operator adds 5 ownership tags of its own.
	// Authoritative, as on Key.
	// +kubebuilder:validation:MaxProperties=50
	// +kubebuilder:validation:XValidation:rule="size(self) <= 45",message="spec.tags: at most 45 tags: KMS allows 50 per key and the operator adds 5 ownership tags of its own"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('aws:'))",message="spec.tags: keys starting with 'aws:' are reserved by AWS"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('kms.kmsoperator.io/'))",message="spec.tags: keys starting with 'kms.kmsoperator.io/' are reserved by the operator"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) <= 256)",message="spec.tags: keys must be 1-128 characters and values at most 256"
	// +optional
	Tags map[string]string `json:"tags,omitempty"`

	// Enabled is the replica's declared state: true for Enabled, false for
	// Disabled. Each key of a multi-Region family has its own.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// DeletionPolicy: Delete schedules the replica's deletion when the
	// object is deleted; Retain leaves it and removes the ownership tags.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// PendingWindowInDays before KMS deletes a replica scheduled for
	// deletion, 7-30.
	// +kubebuilder:validation:Minimum=7
	// +kubebuilder:validation:Maximum=30
	// +kubebuilder:default=30
	// +optional
	PendingWindowInDays int32 `json:"pendingWindowInDays,omitempty"`

	// ManagementPolicy: Manage makes KMS match the spec; Observe only reads
	// the replica that exists in spec.region and reports differences. A
	// replica this object did not create is adopted (or observed) only
	// with the operator flag --allow-adoption.
	// +kubebuilder:default=Manage
	// +optional
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`

	// AccountRef names the AWSAccount whose role the operator assumes to
	// manage this object in KMS. Without it: the namespace's default
	// (annotation kms.kmsoperator.io/default-account), else the operator's
	// own identity. Immutable.
	// +optional
	AccountRef *AccountReference `json:"accountRef,omitempty"`
}

// ReplicaKeyStatus is the observed state of a replica key.
type ReplicaKeyStatus struct {
	// Account is the AWSAccount whose credentials manage the KMS resource;
	// empty for the operator's own identity. Once the resource exists the
	// object stays in that account.
	// +optional
	Account string `json:"account,omitempty"`
	// KeyID of the replica: the multi-Region key's id, the same in every region.
	// +optional
	KeyID string `json:"keyID,omitempty"`
	// ARN of the replica, in its region.
	// +optional
	ARN string `json:"arn,omitempty"`
	// KeyState as KMS reports it (Creating, Enabled, Disabled, Updating,
	// PendingDeletion, ...).
	// +optional
	KeyState string `json:"keyState,omitempty"`
	// PrimaryRegion is where the family's primary key is: spec.region once
	// a failover (the Key's spec.primaryRegion) made this key the primary.
	// +optional
	PrimaryRegion string `json:"primaryRegion,omitempty"`
	// CreationDate of the replica.
	// +optional
	CreationDate *metav1.Time `json:"creationDate,omitempty"`
	// DeletionDate when the replica is scheduled for deletion.
	// +optional
	DeletionDate *metav1.Time `json:"deletionDate,omitempty"`
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready and Synced.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ReplicaKey is a replica of a multi-Region AWS KMS key in another region.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kmsreplica,categories=kms
// +kubebuilder:printcolumn:name="Key ID",type=string,JSONPath=`.status.keyID`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`
// +kubebuilder:printcolumn:name="Primary Region",type=string,JSONPath=`.status.primaryRegion`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.keyState`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ReplicaKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ReplicaKeySpec `json:"spec"`
	// +optional
	Status ReplicaKeyStatus `json:"status,omitempty"`
}

// ReplicaKeyList is a list of ReplicaKeys.
// +kubebuilder:object:root=true
type ReplicaKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ReplicaKey `json:"items"`
}

// WantsEnabled reports whether the replica should be Enabled (the default).
func (s *ReplicaKeySpec) WantsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// EffectivePendingWindowInDays is the deletion window, 30 days when omitted.
func (s *ReplicaKeySpec) EffectivePendingWindowInDays() int32 {
	if s.PendingWindowInDays == 0 {
		return DefaultPendingWindowInDays
	}
	return s.PendingWindowInDays
}

// Observes reports whether the replica is only read (managementPolicy Observe).
func (s *ReplicaKeySpec) Observes() bool { return s.ManagementPolicy == ManagementPolicyObserve }
