package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationDefaultAccount on a Namespace names the AWSAccount its Keys,
// Aliases and Grants use when they set no spec.accountRef.
const AnnotationDefaultAccount = "kms.kmsoperator.io/default-account"

// AccountReference names a cluster-scoped AWSAccount.
type AccountReference struct {
	// Name of the AWSAccount.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// AWSAccountSpec is a connection to an AWS account: an IAM role the operator
// assumes with STS AssumeRole from its own identity (IRSA, Pod Identity,
// environment), and the namespaces allowed to use it.
type AWSAccountSpec struct {
	// RoleARN is the IAM role to assume, in the account the keys live in. Its
	// trust policy must allow the operator's own role (README, "Many AWS
	// accounts").
	// +kubebuilder:validation:Pattern=`^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$`
	// +kubebuilder:validation:MaxLength=2048
	RoleARN string `json:"roleARN"`

	// ExternalID is passed to AssumeRole when the role's trust policy asks
	// for one (sts:ExternalId). It is not a secret.
	// +optional
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=1224
	// +kubebuilder:validation:Pattern=`^[\w+=,.@:/-]+$`
	ExternalID string `json:"externalID,omitempty"`

	// SessionName names the assumed-role sessions, as CloudTrail shows them.
	// +optional
	// +kubebuilder:default=kms-operator
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[\w+=,.@-]+$`
	SessionName string `json:"sessionName,omitempty"`

	// SessionDuration of the assumed-role credentials, 15m to 12h (at most
	// the role's maximum session duration). They are refreshed before they
	// expire.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('15m') && duration(self) <= duration('12h')",message="sessionDuration must be between 15m and 12h"
	SessionDuration *metav1.Duration `json:"sessionDuration,omitempty"`

	// Region is the default region of the account's keys; a Key's
	// spec.region overrides it. Empty: the operator's default region.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z]{2,4}(-[a-z]+)+-[0-9]+$`
	Region string `json:"region,omitempty"`

	// Endpoints override the AWS endpoints used for this account, for VPC
	// endpoints and tests.
	// +optional
	Endpoints *AccountEndpoints `json:"endpoints,omitempty"`

	// Quotas are the account's raised KMS request quotas, in requests per
	// second by operation (e.g. CreateKey: 20). They override what Service
	// Quotas says and are taken as they are, without --kms-quota-share.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k] >= 1)",message="quotas must be at least 1 request per second"
	Quotas map[string]int32 `json:"quotas,omitempty"`

	// AllowedNamespaces are the namespaces whose objects may use this
	// account: those listed by name and those the selector matches. At least
	// one must be given; an object of any other namespace is refused.
	AllowedNamespaces AllowedNamespaces `json:"allowedNamespaces"`
}

// AccountEndpoints are endpoint URLs of the AWS services the operator calls.
type AccountEndpoints struct {
	// KMS endpoint URL.
	// +optional
	// +kubebuilder:validation:Pattern=`^https?://.+$`
	KMS string `json:"kms,omitempty"`
	// STS endpoint URL, for AssumeRole and GetCallerIdentity.
	// +optional
	// +kubebuilder:validation:Pattern=`^https?://.+$`
	STS string `json:"sts,omitempty"`
}

// AllowedNamespaces selects namespaces by name or by label.
// +kubebuilder:validation:XValidation:rule="has(self.names) || has(self.selector)",message="allowedNamespaces needs names or a selector"
type AllowedNamespaces struct {
	// Names of namespaces.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=63
	Names []string `json:"names,omitempty"`
	// Selector matches namespaces by their labels.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// AWSAccountStatus is what the operator found about the account. It never
// holds credentials.
type AWSAccountStatus struct {
	// AccountID is the account the role belongs to, as STS
	// GetCallerIdentity answers for the assumed role.
	// +optional
	AccountID string `json:"accountID,omitempty"`
	// ARN of the assumed-role session (arn:aws:sts::<account>:assumed-role/...).
	// +optional
	ARN string `json:"arn,omitempty"`
	// CredentialsExpiry is when the credentials in use expire; they are
	// refreshed before.
	// +optional
	CredentialsExpiry *metav1.Time `json:"credentialsExpiry,omitempty"`
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready is True while the role can be assumed.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AWSAccount is a connection to an AWS account through an IAM role, and the
// namespaces allowed to use it. Cluster-scoped: only cluster administrators
// create them; tenants name them in spec.accountRef.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=awsacct,categories=kms
// +kubebuilder:printcolumn:name="Account",type=string,JSONPath=`.status.accountID`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.roleARN`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=`.status.credentialsExpiry`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AWSAccount struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AWSAccountSpec   `json:"spec,omitempty"`
	Status AWSAccountStatus `json:"status,omitempty"`
}

// AWSAccountList is a list of AWSAccounts.
// +kubebuilder:object:root=true
type AWSAccountList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AWSAccount `json:"items"`
}

// GetConditions returns the status conditions.
func (a *AWSAccount) GetConditions() []metav1.Condition { return a.Status.Conditions }

// SetConditions replaces the status conditions.
func (a *AWSAccount) SetConditions(c []metav1.Condition) { a.Status.Conditions = c }

// SetObservedGeneration records the generation the status describes.
func (a *AWSAccount) SetObservedGeneration(g int64) { a.Status.ObservedGeneration = g }
