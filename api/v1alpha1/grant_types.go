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
// context (at most one of the two), and a grant to an AWS service to
// requests it makes on behalf of one resource (sourceArn).
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
	// SourceArn: the AWS service of granteeServicePrincipal may use the key
	// only on behalf of the resource with this ARN (for example its log
	// group). Required with granteeServicePrincipal, and only allowed with
	// it: KMS evaluates it only for requests an AWS service makes.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^arn:[a-z0-9-]+:[a-z0-9-]+:')",message="spec.constraints.sourceArn must be an ARN: arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE"
	// +optional
	SourceArn string `json:"sourceArn,omitempty"`
}

// GrantSpec is the declared state of a KMS grant. KMS grants cannot be
// changed: a change to the spec replaces the grant (the new one is created
// before the old one is revoked).
// +kubebuilder:validation:XValidation:rule="has(self.keyRef) != has(self.keyID)",message="exactly one of spec.keyRef or spec.keyID must be set"
// +kubebuilder:validation:XValidation:rule="has(self.granteePrincipal) != has(self.granteeServicePrincipal)",message="exactly one of spec.granteePrincipal (an IAM ARN) or spec.granteeServicePrincipal (an AWS service such as logs.amazonaws.com) must be set"
// +kubebuilder:validation:XValidation:rule="!(has(self.retiringPrincipal) && has(self.retiringServicePrincipal))",message="set spec.retiringPrincipal or spec.retiringServicePrincipal, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.granteeServicePrincipal) || has(self.retiringPrincipal) || has(self.retiringServicePrincipal)",message="spec.granteeServicePrincipal needs spec.retiringPrincipal or spec.retiringServicePrincipal: KMS requires one for a grant to an AWS service"
// +kubebuilder:validation:XValidation:rule="!has(self.granteeServicePrincipal) || (has(self.constraints) && has(self.constraints.sourceArn))",message="spec.granteeServicePrincipal needs spec.constraints.sourceArn: KMS lets an AWS service use the key only on behalf of the resource it names"
// +kubebuilder:validation:XValidation:rule="has(self.granteeServicePrincipal) || !has(self.constraints) || !has(self.constraints.sourceArn)",message="spec.constraints.sourceArn is only for a grant to an AWS service (spec.granteeServicePrincipal): KMS evaluates it only for requests a service makes"
// +kubebuilder:validation:XValidation:rule="has(self.accountRef) == has(oldSelf.accountRef) && (!has(self.accountRef) || self.accountRef.name == oldSelf.accountRef.name)",message="spec.accountRef is immutable: a KMS resource cannot move between accounts"
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

	// GranteePrincipal receives the permissions: the ARN of an IAM role,
	// user, assumed role, federated user or account. For an AWS service use
	// granteeServicePrincipal. Exactly one of the two.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +optional
	GranteePrincipal string `json:"granteePrincipal,omitempty"`

	// GranteeServicePrincipal is an AWS service principal that receives the
	// permissions, such as logs.amazonaws.com. It needs constraints.sourceArn
	// and a retiring principal (KMS requires both).
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9-]+)\.([A-Za-z0-9-]+)(\.[A-Za-z0-9-]+)+$`
	// +optional
	GranteeServicePrincipal string `json:"granteeServicePrincipal,omitempty"`

	// RetiringPrincipal may retire the grant: an IAM ARN.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +optional
	RetiringPrincipal string `json:"retiringPrincipal,omitempty"`

	// RetiringServicePrincipal is an AWS service principal that may retire
	// the grant, such as logs.amazonaws.com. At most one of retiringPrincipal
	// and retiringServicePrincipal.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9-]+)\.([A-Za-z0-9-]+)(\.[A-Za-z0-9-]+)+$`
	// +optional
	RetiringServicePrincipal string `json:"retiringServicePrincipal,omitempty"`

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

	// AccountRef names the AWSAccount whose role the operator assumes to
	// manage this object in KMS. Without it: the namespace's default
	// (annotation kms.kmsoperator.io/default-account), else the operator's
	// own identity. Immutable.
	// +optional
	AccountRef *AccountReference `json:"accountRef,omitempty"`
}

// GrantStatus is the observed state of a KMS grant. The grant token is never
// stored here: it is a secret.
type GrantStatus struct {
	// Account is the AWSAccount whose credentials manage the KMS resource;
	// empty for the operator's own identity. Once the resource exists the
	// object stays in that account.
	// +optional
	Account string `json:"account,omitempty"`
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
