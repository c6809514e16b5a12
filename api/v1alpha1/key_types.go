package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KeySpec values (KMS's KeySpec enum).
// +kubebuilder:validation:Enum=SYMMETRIC_DEFAULT;RSA_2048;RSA_3072;RSA_4096;ECC_NIST_P256;ECC_NIST_P384;ECC_NIST_P521;ECC_SECG_P256K1;ECC_NIST_EDWARDS25519;HMAC_224;HMAC_256;HMAC_384;HMAC_512;SM2;ML_DSA_44;ML_DSA_65;ML_DSA_87;ML_KEM_512;ML_KEM_768;ML_KEM_1024
type KeySpecType string

// KeyUsage values (KMS's KeyUsageType enum).
// +kubebuilder:validation:Enum=ENCRYPT_DECRYPT;SIGN_VERIFY;GENERATE_VERIFY_MAC;KEY_AGREEMENT;ENCAPSULATE_DECAPSULATE
type KeyUsageType string

// Origin of the key material. Custom key stores (AWS_CLOUDHSM,
// EXTERNAL_KEY_STORE) are not supported yet.
// +kubebuilder:validation:Enum=AWS_KMS;EXTERNAL
type OriginType string

// DeletionPolicy says what happens to the KMS key when the Key object is deleted.
// +kubebuilder:validation:Enum=Delete;Retain
type DeletionPolicy string

// ManagementPolicy says whether the operator may write to KMS.
// +kubebuilder:validation:Enum=Manage;Observe
type ManagementPolicy string

// ReferencesPolicy says whether the deletion of a Key waits for the Aliases
// and Grants that reference it.
// +kubebuilder:validation:Enum=Wait;Ignore
type ReferencesPolicy string

const (
	DeletionPolicyDelete DeletionPolicy = "Delete"
	DeletionPolicyRetain DeletionPolicy = "Retain"

	ManagementPolicyManage  ManagementPolicy = "Manage"
	ManagementPolicyObserve ManagementPolicy = "Observe"

	ReferencesWait   ReferencesPolicy = "Wait"
	ReferencesIgnore ReferencesPolicy = "Ignore"

	KeySpecSymmetricDefault KeySpecType = "SYMMETRIC_DEFAULT"
	OriginAWSKMS            OriginType  = "AWS_KMS"
	OriginExternal          OriginType  = "EXTERNAL"
)

// KeyRotation declares automatic and on-demand rotation of the key material.
type KeyRotation struct {
	// Enabled turns automatic rotation on. Only symmetric-encryption keys with
	// AWS_KMS origin rotate.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// PeriodInDays between automatic rotations, 90 to 2560.
	// +kubebuilder:validation:Minimum=90
	// +kubebuilder:validation:Maximum=2560
	// +kubebuilder:default=365
	// +optional
	PeriodInDays int32 `json:"periodInDays,omitempty"`

	// OnDemandRequest asks for one on-demand rotation each time it is set to a
	// new value (a date or a counter, for example). The last value acted on is
	// status.rotation.lastOnDemandRequest. KMS limits on-demand rotations per key.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	OnDemandRequest string `json:"onDemandRequest,omitempty"`
}

// KeyDeletionProtection guards the data under a key when its Key is deleted
// with deletionPolicy Delete: a guard that holds leaves the key as it is and
// keeps the Key, being deleted, until the guard lets go or is removed.
type KeyDeletionProtection struct {
	// UnusedForDays: the key is scheduled for deletion only once KMS reports
	// no cryptographic use of it (Encrypt, Decrypt, Sign, ...) for this many
	// days. While KMS cannot tell (it has not tracked the key's use that
	// long), the deletion waits too. Each check costs a GetKeyLastUsage
	// call. Omitted: no such guard.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3650
	// +optional
	UnusedForDays int32 `json:"unusedForDays,omitempty"`

	// References: Wait (the default, also when deletionProtection is
	// omitted) keeps the key while Aliases or Grants in the namespace
	// reference the Key (by keyRef/targetKeyRef, or by its key id in their
	// status), and names them; Ignore schedules the deletion anyway. The
	// operator never deletes the referencing objects.
	// +kubebuilder:default=Wait
	// +optional
	References ReferencesPolicy `json:"references,omitempty"`
}

// KeySpec is the declared state of a KMS key.
// +kubebuilder:validation:XValidation:rule="!has(self.rotation) || !has(self.rotation.enabled) || !self.rotation.enabled || (self.keySpec == 'SYMMETRIC_DEFAULT' && self.origin == 'AWS_KMS')",message="spec.rotation.enabled: automatic rotation is only for keySpec SYMMETRIC_DEFAULT with origin AWS_KMS; an EXTERNAL key rotates when its imported material changes (spec.keyMaterial)"
// +kubebuilder:validation:XValidation:rule="!has(self.rotation) || !has(self.rotation.onDemandRequest) || self.keySpec == 'SYMMETRIC_DEFAULT'",message="spec.rotation.onDemandRequest: on-demand rotation is only for keySpec SYMMETRIC_DEFAULT (origin AWS_KMS, or EXTERNAL with new key material imported)"
// +kubebuilder:validation:XValidation:rule="!has(self.keyMaterial) || self.origin == 'EXTERNAL'",message="spec.keyMaterial is only for origin EXTERNAL: KMS makes the material of other keys"
// +kubebuilder:validation:XValidation:rule="!has(self.keyMaterial) || !self.multiRegion",message="spec.keyMaterial: imported material for multi-Region keys is not supported: each replica needs the same material imported in its region"
// +kubebuilder:validation:XValidation:rule="!has(self.keyMaterial) || self.managementPolicy != 'Observe'",message="spec.keyMaterial: managementPolicy Observe never imports key material; drop one of the two"
// +kubebuilder:validation:XValidation:rule="!has(self.primaryRegion) || self.multiRegion",message="spec.primaryRegion is only for multiRegion: true keys"
// +kubebuilder:validation:XValidation:rule="!has(self.keyUsage) || (self.keySpec == 'SYMMETRIC_DEFAULT' ? self.keyUsage == 'ENCRYPT_DECRYPT' : self.keySpec.startsWith('RSA_') ? self.keyUsage in ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'] : self.keySpec in ['ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521'] ? self.keyUsage in ['SIGN_VERIFY', 'KEY_AGREEMENT'] : self.keySpec.startsWith('HMAC_') ? self.keyUsage == 'GENERATE_VERIFY_MAC' : self.keySpec == 'SM2' ? self.keyUsage in ['ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'KEY_AGREEMENT'] : self.keySpec.startsWith('ML_KEM_') ? self.keyUsage == 'ENCAPSULATE_DECAPSULATE' : self.keyUsage == 'SIGN_VERIFY')",message="spec.keyUsage is not allowed for this keySpec: SYMMETRIC_DEFAULT allows ENCRYPT_DECRYPT; RSA_* ENCRYPT_DECRYPT or SIGN_VERIFY; ECC_NIST_P256/P384/P521 SIGN_VERIFY or KEY_AGREEMENT; ECC_SECG_P256K1, ECC_NIST_EDWARDS25519 and ML_DSA_* SIGN_VERIFY; HMAC_* GENERATE_VERIFY_MAC; SM2 ENCRYPT_DECRYPT, SIGN_VERIFY or KEY_AGREEMENT; ML_KEM_* ENCAPSULATE_DECAPSULATE"
// +kubebuilder:validation:XValidation:rule="(has(self.keyUsage) ? self.keyUsage : (self.keySpec.startsWith('HMAC_') ? 'GENERATE_VERIFY_MAC' : self.keySpec.startsWith('ML_KEM_') ? 'ENCAPSULATE_DECAPSULATE' : (self.keySpec == 'SYMMETRIC_DEFAULT' || self.keySpec.startsWith('RSA_') || self.keySpec == 'SM2') ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY')) == (has(oldSelf.keyUsage) ? oldSelf.keyUsage : (oldSelf.keySpec.startsWith('HMAC_') ? 'GENERATE_VERIFY_MAC' : oldSelf.keySpec.startsWith('ML_KEM_') ? 'ENCAPSULATE_DECAPSULATE' : (oldSelf.keySpec == 'SYMMETRIC_DEFAULT' || oldSelf.keySpec.startsWith('RSA_') || oldSelf.keySpec == 'SM2') ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY'))",message="spec.keyUsage is immutable: KMS fixes it when the key is created"
// +kubebuilder:validation:XValidation:rule="self.managementPolicy != 'Observe' || has(self.keyID)",message="spec.keyID is required with managementPolicy Observe: it names the key to observe"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.keyID) || (has(self.keyID) && self.keyID == oldSelf.keyID)",message="spec.keyID is immutable once set"
// +kubebuilder:validation:XValidation:rule="has(self.region) == has(oldSelf.region)",message="spec.region is immutable: a key cannot move between regions"
// +kubebuilder:validation:XValidation:rule="!has(self.keyID) || !has(self.region) || !self.keyID.startsWith('arn:') || self.keyID.split(':')[3] == self.region",message="spec.keyID is an ARN of another region than spec.region: a key lives in one region; drop spec.region or fix it"
// +kubebuilder:validation:XValidation:rule="has(self.accountRef) == has(oldSelf.accountRef) && (!has(self.accountRef) || self.accountRef.name == oldSelf.accountRef.name)",message="spec.accountRef is immutable: a KMS resource cannot move between accounts"
type KeySpec struct {
	// Description of the key, up to 8192 characters.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	Description string `json:"description,omitempty"`

	// KeySpec is the type of key material. Immutable.
	// +kubebuilder:default=SYMMETRIC_DEFAULT
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.keySpec is immutable: KMS fixes it when the key is created"
	// +optional
	KeySpec KeySpecType `json:"keySpec,omitempty"`

	// KeyUsage is what the key may do. When omitted the operator uses the usual
	// one for the keySpec: ENCRYPT_DECRYPT for SYMMETRIC_DEFAULT, RSA_* and SM2,
	// GENERATE_VERIFY_MAC for HMAC_*, ENCAPSULATE_DECAPSULATE for ML_KEM_*, and
	// SIGN_VERIFY for the other asymmetric specs. Immutable.
	// +optional
	KeyUsage KeyUsageType `json:"keyUsage,omitempty"`

	// Origin of the key material: AWS_KMS, or EXTERNAL for imported material.
	// Immutable.
	// +kubebuilder:default=AWS_KMS
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.origin is immutable: KMS fixes it when the key is created"
	// +optional
	Origin OriginType `json:"origin,omitempty"`

	// MultiRegion creates a multi-Region primary key. Immutable.
	// +kubebuilder:default=false
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.multiRegion is immutable: KMS fixes it when the key is created"
	// +optional
	MultiRegion bool `json:"multiRegion,omitempty"`

	// Enabled is the declared key state: true for Enabled, false for Disabled.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Rotation of the key material.
	// +optional
	Rotation *KeyRotation `json:"rotation,omitempty"`

	// Policy is the key policy as JSON. When omitted KMS applies its default
	// policy. It is compared semantically with what KMS returns, so formatting
	// never causes an update.
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	Policy string `json:"policy,omitempty"`

	// BypassPolicyLockoutSafetyCheck lets a policy through that would stop the
	// operator from changing it again. Use with care.
	// +optional
	BypassPolicyLockoutSafetyCheck bool `json:"bypassPolicyLockoutSafetyCheck,omitempty"`

	// Tags on the key, at most 46: KMS allows 50 per key and the operator adds
	// 4 ownership tags of its own. The spec is authoritative: tags it does not
	// declare are removed, except the operator's own kms.kmsoperator.io/ tags.
	// +kubebuilder:validation:MaxProperties=50
	// +kubebuilder:validation:XValidation:rule="size(self) <= 46",message="spec.tags: at most 46 tags: KMS allows 50 per key and the operator adds 4 ownership tags of its own"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('aws:'))",message="spec.tags: keys starting with 'aws:' are reserved by AWS"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('kms.kmsoperator.io/'))",message="spec.tags: keys starting with 'kms.kmsoperator.io/' are reserved by the operator"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) <= 256)",message="spec.tags: keys must be 1-128 characters and values at most 256"
	// +optional
	Tags map[string]string `json:"tags,omitempty"`

	// DeletionPolicy: Delete schedules the key's deletion when the object is
	// deleted; Retain leaves the key and removes the operator's ownership tags.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// PendingWindowInDays before KMS deletes a key scheduled for deletion, 7-30.
	// +kubebuilder:validation:Minimum=7
	// +kubebuilder:validation:Maximum=30
	// +kubebuilder:default=30
	// +optional
	PendingWindowInDays int32 `json:"pendingWindowInDays,omitempty"`

	// DeletionProtection holds back the scheduling of the key's deletion
	// (deletionPolicy Delete) while the key was used recently or is still
	// referenced. Without it, references are waited for all the same.
	// +optional
	DeletionProtection *KeyDeletionProtection `json:"deletionProtection,omitempty"`

	// KeyID adopts an existing key (id or ARN) instead of creating one. The
	// operator must run with --allow-adoption. An ARN names the key's region
	// too. Alias names are refused: an alias can be moved to another key.
	// Immutable once set.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('alias/') && !self.contains(':alias/')",message="spec.keyID must be a key id or key ARN, not an alias: an alias can move to another key. Find the key id with: aws kms describe-key --key-id alias/NAME --query KeyMetadata.KeyId"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('arn:') || self.matches('^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$')",message="spec.keyID: a key ARN looks like arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"
	// +optional
	KeyID string `json:"keyID,omitempty"`

	// ManagementPolicy: Manage makes KMS match the spec; Observe only reads the
	// key named by keyID and reports differences, never writing to KMS.
	// +kubebuilder:default=Manage
	// +optional
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`

	// Region overrides the operator's default region. Any partition's region
	// (us-east-1, cn-north-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1).
	// Immutable.
	// +kubebuilder:validation:Pattern=`^[a-z]{2,4}(-[a-z]+)+-[0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.region is immutable: a key cannot move between regions"
	// +optional
	Region string `json:"region,omitempty"`

	// AccountRef names the AWSAccount whose role the operator assumes to
	// manage this object in KMS. Without it: the namespace's default
	// (annotation kms.kmsoperator.io/default-account), else the operator's
	// own identity. Immutable.
	// +optional
	AccountRef *AccountReference `json:"accountRef,omitempty"`
	// PrimaryRegion of a multi-Region key: the region whose key of the
	// family is the primary. Setting it to the region of a replica (a
	// ReplicaKey) makes that replica the primary and this key a replica
	// (UpdatePrimaryRegion): failover is declared here, in the one object
	// that owns the family. Omitted: wherever KMS has it; never changed.
	// +kubebuilder:validation:Pattern=`^[a-z]{2,4}(-[a-z]+)+-[0-9]+$`
	// +optional
	PrimaryRegion string `json:"primaryRegion,omitempty"`

	// KeyMaterial imports the key's material from a Secret of this
	// namespace (origin EXTERNAL). A change of the material in the Secret
	// is imported as new material and the key rotated to it; the old
	// material stays for decryption.
	// +optional
	KeyMaterial *KeyMaterialSource `json:"keyMaterial,omitempty"`
}

// KeyMaterialSource is where a Key's imported material comes from.
type KeyMaterialSource struct {
	// SecretRef names the Secret, in the Key's namespace, and the entry of its
	// data that holds the material: 32 bytes for SYMMETRIC_DEFAULT, the
	// key spec's length for HMAC_*, a private key (PEM or DER PKCS #8) for
	// asymmetric keys.
	SecretRef SecretKeyReference `json:"secretRef"`

	// ValidTo is when KMS deletes the imported material (at most 365 days
	// ahead, a KMS limit); omitted: it never expires. Material that expires
	// is imported again from the Secret.
	// +optional
	ValidTo *metav1.Time `json:"validTo,omitempty"`
}

// SecretKeyReference names an entry of a Secret's data in the same namespace.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key of the entry in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// KeyRotationStatus is the rotation KMS reports.
type KeyRotationStatus struct {
	// Enabled is true when automatic rotation is on.
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// PeriodInDays between automatic rotations.
	// +optional
	PeriodInDays int32 `json:"periodInDays,omitempty"`
	// NextRotationDate of the next automatic rotation.
	// +optional
	NextRotationDate *metav1.Time `json:"nextRotationDate,omitempty"`
	// LastOnDemandRequest is the spec.rotation.onDemandRequest value last acted on.
	// +optional
	LastOnDemandRequest string `json:"lastOnDemandRequest,omitempty"`
}

// KeyLastUsage is the key's last cryptographic use as KMS reports it
// (GetKeyLastUsage).
type KeyLastUsage struct {
	// Operation of the last successful cryptographic use (Encrypt, Decrypt,
	// Sign, GenerateDataKey, ...); empty when KMS recorded none since
	// trackingStartDate.
	// +optional
	Operation string `json:"operation,omitempty"`
	// Time of that use.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
	// CloudTrailEventID of that use, to find it in CloudTrail.
	// +optional
	CloudTrailEventID string `json:"cloudTrailEventID,omitempty"`
	// TrackingStartDate is since when KMS records the key's use: the later
	// of the key's creation and the day KMS began tracking. A use before it
	// is unknown to KMS (look in CloudTrail).
	// +optional
	TrackingStartDate *metav1.Time `json:"trackingStartDate,omitempty"`
}

// KeyMaterialStatus is a key's imported material as KMS reports it. It holds
// ids and dates, never material.
type KeyMaterialStatus struct {
	// CurrentKeyMaterialID is KMS's id of the material in use (symmetric
	// keys; KMS gives HMAC and asymmetric material no id).
	// +optional
	CurrentKeyMaterialID string `json:"currentKeyMaterialID,omitempty"`
	// ImportedAt is when the operator last imported the Secret's material.
	// +optional
	ImportedAt *metav1.Time `json:"importedAt,omitempty"`
	// ValidTo is when KMS deletes the current material; nil: never.
	// +optional
	ValidTo *metav1.Time `json:"validTo,omitempty"`
	// SecretResourceVersion is the resourceVersion of the Secret whose
	// material the key was last found to hold: a new one is compared with
	// the key's material (by re-importing it) before anything else.
	// +optional
	SecretResourceVersion string `json:"secretResourceVersion,omitempty"`
	// Rotations are the key's materials as ListKeyRotations lists them,
	// oldest first: the first import, then one per rotation.
	// +optional
	Rotations []KeyMaterialEntry `json:"rotations,omitempty"`
}

// KeyMaterialEntry is one key material of a key.
type KeyMaterialEntry struct {
	// KeyMaterialID is KMS's id of the material.
	KeyMaterialID string `json:"keyMaterialID"`
	// State is CURRENT, NON_CURRENT (kept to decrypt) or PENDING_ROTATION.
	State string `json:"state"`
	// ImportState is IMPORTED, or PENDING_IMPORT once deleted or expired.
	// +optional
	ImportState string `json:"importState,omitempty"`
	// RotationDate is when the key was rotated to this material.
	// +optional
	RotationDate *metav1.Time `json:"rotationDate,omitempty"`
	// ValidTo is when KMS deletes this material; nil: never.
	// +optional
	ValidTo *metav1.Time `json:"validTo,omitempty"`
}

// KeyStatus is the observed state of a KMS key.
type KeyStatus struct {
	// Account is the AWSAccount whose credentials manage the KMS resource;
	// empty for the operator's own identity. Once the resource exists the
	// object stays in that account.
	// +optional
	Account string `json:"account,omitempty"`
	// KeyID of the KMS key.
	// +optional
	KeyID string `json:"keyID,omitempty"`
	// ARN of the KMS key.
	// +optional
	ARN string `json:"arn,omitempty"`
	// KeyState as KMS reports it (Enabled, Disabled, PendingDeletion, ...).
	// +optional
	KeyState string `json:"keyState,omitempty"`
	// CreationDate of the key.
	// +optional
	CreationDate *metav1.Time `json:"creationDate,omitempty"`
	// DeletionDate when the key is scheduled for deletion.
	// +optional
	DeletionDate *metav1.Time `json:"deletionDate,omitempty"`
	// Rotation as KMS reports it.
	// +optional
	Rotation *KeyRotationStatus `json:"rotation,omitempty"`
	// LastUsage is the key's last cryptographic use, read at most once per
	// sync period and only when the operator runs with --read-key-last-usage
	// or the spec declares deletionProtection.unusedForDays.
	// +optional
	LastUsage *KeyLastUsage `json:"lastUsage,omitempty"`
	// PrimaryRegion of a multi-Region key: where the family's primary key is.
	// +optional
	PrimaryRegion string `json:"primaryRegion,omitempty"`
	// ReplicaRegions of a multi-Region key: where its replicas are.
	// +optional
	ReplicaRegions []string `json:"replicaRegions,omitempty"`
	// KeyMaterial is the imported key material (spec.keyMaterial).
	// +optional
	KeyMaterial *KeyMaterialStatus `json:"keyMaterial,omitempty"`
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready and Synced.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Key is an AWS KMS key.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kmskey,categories=kms
// +kubebuilder:printcolumn:name="Key ID",type=string,JSONPath=`.status.keyID`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.keyState`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`,priority=1
// +kubebuilder:printcolumn:name="Last Used",type=date,JSONPath=`.status.lastUsage.time`,priority=1
// +kubebuilder:printcolumn:name="Primary Region",type=string,JSONPath=`.status.primaryRegion`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Key struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={keySpec: "SYMMETRIC_DEFAULT", managementPolicy: "Manage"}
	// +optional
	Spec KeySpec `json:"spec,omitempty"`
	// +optional
	Status KeyStatus `json:"status,omitempty"`
}

// KeyList is a list of Keys.
// +kubebuilder:object:root=true
type KeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Key `json:"items"`
}

// The defaults below are the ones the markers and CEL rules above state. The
// controllers use these methods instead of deriving them again, and
// validation_test.go checks each against the API server's own defaulting and
// CEL, so the two cannot drift apart.

// Default values of KeySpec fields.
const (
	DefaultPendingWindowInDays  int32 = 30
	DefaultRotationPeriodInDays int32 = 365
)

// EffectiveKeySpec is the key spec, SYMMETRIC_DEFAULT when omitted.
func (s *KeySpec) EffectiveKeySpec() KeySpecType {
	if s.KeySpec == "" {
		return KeySpecSymmetricDefault
	}
	return s.KeySpec
}

// EffectiveOrigin is the origin, AWS_KMS when omitted.
func (s *KeySpec) EffectiveOrigin() OriginType {
	if s.Origin == "" {
		return OriginAWSKMS
	}
	return s.Origin
}

// EffectiveKeyUsage is the declared usage, or the usual one for the key spec:
// the same default the keyUsage CEL rules compute.
func (s *KeySpec) EffectiveKeyUsage() KeyUsageType {
	if s.KeyUsage != "" {
		return s.KeyUsage
	}
	spec := string(s.EffectiveKeySpec())
	switch {
	case spec == "SYMMETRIC_DEFAULT" || spec == "SM2" || strings.HasPrefix(spec, "RSA_"):
		return "ENCRYPT_DECRYPT"
	case strings.HasPrefix(spec, "HMAC_"):
		return "GENERATE_VERIFY_MAC"
	case strings.HasPrefix(spec, "ML_KEM_"):
		return "ENCAPSULATE_DECAPSULATE"
	default:
		return "SIGN_VERIFY"
	}
}

// WantsEnabled reports whether the key should be Enabled (the default) rather
// than Disabled.
func (s *KeySpec) WantsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// EffectiveRotation reports whether automatic rotation is wanted, and its
// period (0 when off). An omitted rotation means off.
func (s *KeySpec) EffectiveRotation() (enabled bool, periodInDays int32) {
	if s.Rotation == nil || !s.Rotation.Enabled {
		return false, 0
	}
	if s.Rotation.PeriodInDays == 0 {
		return true, DefaultRotationPeriodInDays
	}
	return true, s.Rotation.PeriodInDays
}

// OnDemandRotationRequest is the current on-demand rotation request, "" for none.
func (s *KeySpec) OnDemandRotationRequest() string {
	if s.Rotation == nil {
		return ""
	}
	return s.Rotation.OnDemandRequest
}

// EffectivePendingWindowInDays is the deletion window, 30 days when omitted.
func (s *KeySpec) EffectivePendingWindowInDays() int32 {
	if s.PendingWindowInDays == 0 {
		return DefaultPendingWindowInDays
	}
	return s.PendingWindowInDays
}

// UnusedForDays is the declared deletionProtection.unusedForDays, 0 for none.
func (s *KeySpec) UnusedForDays() int32 {
	if s.DeletionProtection == nil {
		return 0
	}
	return s.DeletionProtection.UnusedForDays
}

// WaitsForReferences reports whether the key's deletion waits for the
// objects that reference it: deletionProtection.references, Wait when
// omitted.
func (s *KeySpec) WaitsForReferences() bool {
	return s.DeletionProtection == nil || s.DeletionProtection.References != ReferencesIgnore
}

// Observes reports whether the key is only read (managementPolicy Observe).
func (s *KeySpec) Observes() bool { return s.ManagementPolicy == ManagementPolicyObserve }
