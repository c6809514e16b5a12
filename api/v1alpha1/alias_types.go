package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AliasSpec is the declared state of a KMS alias.
// +kubebuilder:validation:XValidation:rule="has(self.targetKeyRef) != has(self.targetKeyID)",message="exactly one of spec.targetKeyRef or spec.targetKeyID must be set"
// +kubebuilder:validation:XValidation:rule="has(self.accountRef) == has(oldSelf.accountRef) && (!has(self.accountRef) || self.accountRef.name == oldSelf.accountRef.name)",message="spec.accountRef is immutable: a KMS resource cannot move between accounts"
type AliasSpec struct {
	// Name of the alias: alias/ followed by letters, digits, '/', '_' or '-'; at
	// most 256 characters; alias/aws/ is reserved by AWS. Immutable.
	// +kubebuilder:validation:MinLength=7
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^alias/[a-zA-Z0-9/_-]+$`
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('alias/aws/')",message="spec.name: the alias/aws/ prefix is reserved by AWS"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.name is immutable: create a new Alias instead"
	Name string `json:"name"`

	// TargetKeyRef names a Key (or, with kind ReplicaKey, a ReplicaKey) in
	// the same namespace; the alias follows its status.keyID, in its region.
	// +optional
	TargetKeyRef *LocalObjectReference `json:"targetKeyRef,omitempty"`

	// TargetKeyID is a key id or ARN. A key owned by an object in another
	// namespace is refused; a key the operator does not own needs the operator
	// flag --allow-unmanaged-key-references.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	TargetKeyID string `json:"targetKeyID,omitempty"`

	// AccountRef names the AWSAccount whose role the operator assumes to
	// manage this object in KMS. Without it: the namespace's default
	// (annotation kms.kmsoperator.io/default-account), else the operator's
	// own identity. Immutable.
	// +optional
	AccountRef *AccountReference `json:"accountRef,omitempty"`
}

// AliasStatus is the observed state of a KMS alias.
type AliasStatus struct {
	// Account is the AWSAccount whose credentials manage the KMS resource;
	// empty for the operator's own identity. Once the resource exists the
	// object stays in that account.
	// +optional
	Account string `json:"account,omitempty"`
	// TargetKeyID the alias points at in KMS.
	// +optional
	TargetKeyID string `json:"targetKeyID,omitempty"`
	// ARN of the alias.
	// +optional
	ARN string `json:"arn,omitempty"`
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready and Synced.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Alias is an AWS KMS alias.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kmsalias,categories=kms
// +kubebuilder:printcolumn:name="Alias",type=string,JSONPath=`.spec.name`
// +kubebuilder:printcolumn:name="Key ID",type=string,JSONPath=`.status.targetKeyID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Alias struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AliasSpec `json:"spec"`
	// +optional
	Status AliasStatus `json:"status,omitempty"`
}

// AliasList is a list of Aliases.
// +kubebuilder:object:root=true
type AliasList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Alias `json:"items"`
}
