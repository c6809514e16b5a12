package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GrantOperation is an operation a grant allows (KMS's GrantOperation enum).
// +kubebuilder:validation:Enum=Decrypt;Encrypt;GenerateDataKey;GenerateDataKeyWithoutPlaintext;ReEncryptFrom;ReEncryptTo;Sign;Verify;GetPublicKey;CreateGrant;RetireGrant;DescribeKey;GenerateDataKeyPair;GenerateDataKeyPairWithoutPlaintext;GenerateMac;VerifyMac;DeriveSharedSecret;Encapsulate;Decapsulate
type GrantOperation string

// GrantOnDelete says how the grant is removed when the object is deleted.
// +kubebuilder:validation:Enum=Revoke;Retire
type GrantOnDelete string

const (
	GrantOnDeleteRevoke GrantOnDelete = "Revoke"
	GrantOnDeleteRetire GrantOnDelete = "Retire"
)

// GrantConstraints limit the grant to requests with a matching encryption
// context. At most one of the two may be set.
// +kubebuilder:validation:XValidation:rule="!(has(self.encryptionContextSubset) && has(self.encryptionContextEquals))",message="spec.constraints: set encryptionContextSubset or encryptionContextEquals, not both"
type GrantConstraints struct {
	// EncryptionContextSubset: the request's encryption context must include
	// these pairs.
	// +optional
	EncryptionContextSubset map[string]string `json:"encryptionContextSubset,omitempty"`
	// EncryptionContextEquals: the request's encryption context must be exactly
	// these pairs.
	// +optional
	EncryptionContextEquals map[string]string `json:"encryptionContextEquals,omitempty"`
}

// GrantSpec is the declared state of a KMS grant. KMS grants cannot be
// changed: a change to the spec replaces the grant (the new one is created
// before the old one is revoked).
// +kubebuilder:validation:XValidation:rule="has(self.keyRef) != has(self.keyID)",message="exactly one of spec.keyRef or spec.keyID must be set"
type GrantSpec struct {
	// KeyRef names a Key (or, with kind ReplicaKey, a ReplicaKey) in the
	// same namespace; the grant is on its key, in its region.
	// +optional
	KeyRef *LocalObjectReference `json:"keyRef,omitempty"`

	// KeyID is a key id or ARN. A key owned by an object in another namespace
	// is refused; a key the operator does not own needs the operator flag
	// --allow-unmanaged-key-references.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	KeyID string `json:"keyID,omitempty"`

	// GranteePrincipal receives the permissions: an IAM ARN or an AWS service
	// principal.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	GranteePrincipal string `json:"granteePrincipal"`

	// RetiringPrincipal may retire the grant.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +optional
	RetiringPrincipal string `json:"retiringPrincipal,omitempty"`

	// Operations the grant allows.
	// +kubebuilder:validation:MinItems=1
	// +listType=set
	Operations []GrantOperation `json:"operations"`

	// Constraints on the encryption context.
	// +optional
	Constraints *GrantConstraints `json:"constraints,omitempty"`

	// Name of the grant in KMS. When omitted the operator derives one from the
	// object's UID, which makes creation safe to retry.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9:/_-]+$`
	// +optional
	Name string `json:"name,omitempty"`

	// OnDelete: Revoke (default) or Retire the grant when the object is deleted.
	// +kubebuilder:default=Revoke
	// +optional
	OnDelete GrantOnDelete `json:"onDelete,omitempty"`
}

// GrantStatus is the observed state of a KMS grant. The grant token is never
// stored here: it is a secret.
type GrantStatus struct {
	// GrantID of the current grant.
	// +optional
	GrantID string `json:"grantID,omitempty"`
	// KeyID the grant is on.
	// +optional
	KeyID string `json:"keyID,omitempty"`
	// KeyARN of the key the grant is on: its region is where the grant is
	// revoked, even after the Key object is gone.
	// +optional
	KeyARN string `json:"keyARN,omitempty"`
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready and Synced.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Grant is an AWS KMS grant.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kmsgrant,categories=kms
// +kubebuilder:printcolumn:name="Grant ID",type=string,JSONPath=`.status.grantID`
// +kubebuilder:printcolumn:name="Key ID",type=string,JSONPath=`.status.keyID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Grant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec GrantSpec `json:"spec"`
	// +optional
	Status GrantStatus `json:"status,omitempty"`
}

// GrantList is a list of Grants.
// +kubebuilder:object:root=true
type GrantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Grant `json:"items"`
}
