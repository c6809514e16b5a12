// Package kmsclient is the only package that talks to the AWS KMS SDK. It
// exposes KMS in plain Go types (no SDK or CRD types leak out), classifies SDK
// errors in one place (errors.go) and counts every call in metrics.
package kmsclient

import (
	"context"
	"time"
)

// API is what the reconcilers need from KMS. Every method is one KMS call unless
// its comment says otherwise, so a reconciler's calls can be counted and
// justified one by one.
type API interface {
	// DescribeKey returns the key's metadata (no policy, tags or rotation).
	// keyID may be an id, an ARN or an alias name ("alias/...").
	DescribeKey(ctx context.Context, keyID string) (*Key, error)
	// GetKeyPolicy returns the key's "default" policy document.
	GetKeyPolicy(ctx context.Context, keyID string) (string, error)
	// GetRotation returns the automatic rotation settings.
	GetRotation(ctx context.Context, keyID string) (*Rotation, error)
	// ListTags returns all tags of the key (pages through ListResourceTags).
	ListTags(ctx context.Context, keyID string) (map[string]string, error)
	// FindKeys returns the keys carrying every one of tags, with one paginated
	// tag:GetResources call of the Resource Groups Tagging API instead of
	// reading every key's tags. Like every list in KMS it can lag behind a
	// new key or a tag change: "not found" right after a write is no proof.
	FindKeys(ctx context.Context, tags map[string]string) ([]TaggedKey, error)

	// CreateKey creates a key with everything KMS accepts at creation.
	CreateKey(ctx context.Context, in CreateKeyInput) (*Key, error)
	UpdateDescription(ctx context.Context, keyID, description string) error
	EnableKey(ctx context.Context, keyID string) error
	DisableKey(ctx context.Context, keyID string) error
	// EnableRotation turns automatic rotation on with the given period.
	EnableRotation(ctx context.Context, keyID string, periodInDays int32) error
	DisableRotation(ctx context.Context, keyID string) error
	RotateOnDemand(ctx context.Context, keyID string) error
	// ListKeyRotations returns the key's completed rotations, oldest first.
	ListKeyRotations(ctx context.Context, keyID string) ([]KeyRotation, error)
	PutKeyPolicy(ctx context.Context, keyID, policy string, bypassLockoutCheck bool) error
	TagKey(ctx context.Context, keyID string, tags map[string]string) error
	UntagKey(ctx context.Context, keyID string, tagKeys []string) error
	// ScheduleDeletion returns what KMS scheduled: a multi-Region primary
	// with replicas waits in PendingReplicaDeletion with no date yet.
	ScheduleDeletion(ctx context.Context, keyID string, pendingWindowInDays int32) (*Deletion, error)
	CancelDeletion(ctx context.Context, keyID string) error

	// GetAlias returns the alias with the given name ("alias/..."), found with
	// one DescribeKey of the alias name, never by listing every alias.
	GetAlias(ctx context.Context, name string) (*Alias, error)
	CreateAlias(ctx context.Context, name, keyID string) error
	UpdateAlias(ctx context.Context, name, keyID string) error
	DeleteAlias(ctx context.Context, name string) error

	// CreateGrant creates a grant and returns its id. The grant token KMS
	// returns is a secret and is dropped here, so no caller can leak it.
	CreateGrant(ctx context.Context, in GrantInput) (string, error)
	// ListGrants returns the grants on a key (pages through ListGrants).
	ListGrants(ctx context.Context, keyID string) ([]Grant, error)
	RevokeGrant(ctx context.Context, keyID, grantID string) error
	RetireGrant(ctx context.Context, keyID, grantID string) error

	// GetKeyLastUsage returns the key's last cryptographic use as KMS
	// tracks it. Alias names are refused.
	GetKeyLastUsage(ctx context.Context, keyID string) (*LastUsage, error)
	// ReplicateKey makes a replica of the multi-Region primary key in.KeyID,
	// sent to the primary's region, with everything ReplicateKey accepts.
	// The replica has the primary's key id; KMS answers while it is still
	// Creating.
	ReplicateKey(ctx context.Context, in ReplicateKeyInput) (*Key, error)
	// UpdatePrimaryRegion makes the replica in region the primary key and
	// the primary a replica; it is sent to the current primary's region.
	UpdatePrimaryRegion(ctx context.Context, keyID, region string) error

	// GetParametersForImport returns a wrapping public key and an import
	// token for importing key material into an EXTERNAL key.
	GetParametersForImport(ctx context.Context, keyID, wrappingAlgorithm, wrappingKeySpec string) (*ImportParameters, error)
	// ImportKeyMaterial imports key material wrapped with the public key of
	// the import parameters, and returns its key material id (symmetric
	// keys; "" for others).
	ImportKeyMaterial(ctx context.Context, in ImportKeyMaterialInput) (string, error)
	// ListKeyMaterials returns every key material of an EXTERNAL symmetric
	// key, oldest first (ListKeyRotations with IncludeKeyMaterial
	// ALL_KEY_MATERIAL, paged).
	ListKeyMaterials(ctx context.Context, keyID string) ([]KeyMaterial, error)
	// DeleteImportedKeyMaterial deletes one key material ("" the current).
	DeleteImportedKeyMaterial(ctx context.Context, keyID, keyMaterialID string) error
}

// Provider hands out an API per account and region: account "" is the
// operator's own identity, another an AWSAccount's name; region "" is the
// account's default region.
type Provider interface {
	For(account, region string) (API, error)
}

// Key is a KMS key's metadata.
type Key struct {
	ID           string
	ARN          string
	Description  string
	KeySpec      string
	KeyUsage     string
	Origin       string
	MultiRegion  bool
	State        string // Enabled, Disabled, PendingDeletion, PendingImport, ...
	CreationDate time.Time
	DeletionDate *time.Time

	// MultiRegionType is PRIMARY or REPLICA for a multi-Region key, "" for
	// others; PrimaryRegion and ReplicaRegions relate it to its family.
	MultiRegionType string
	PrimaryRegion   string
	ReplicaRegions  []string

	// CurrentKeyMaterialID, ExpirationModel and ValidTo describe the key
	// material of a key with imported material (origin EXTERNAL); KMS gives
	// a material id to symmetric keys only.
	CurrentKeyMaterialID string
	ExpirationModel      string
	ValidTo              *time.Time
}

// Multi-Region key types.
const (
	MultiRegionPrimary = "PRIMARY"
	MultiRegionReplica = "REPLICA"
)

// Key states the reconcilers act on.
const (
	StateEnabled                = "Enabled"
	StateDisabled               = "Disabled"
	StatePendingDeletion        = "PendingDeletion"
	StatePendingReplicaDeletion = "PendingReplicaDeletion"
	StatePendingImport          = "PendingImport"
	StateCreating               = "Creating"
	StateUpdating               = "Updating"
)

// PendingDeletion reports whether a key in state is on its way out: scheduled
// for deletion, or a multi-Region primary waiting for its replicas to go.
func PendingDeletion(state string) bool {
	return state == StatePendingDeletion || state == StatePendingReplicaDeletion
}

// TaggedKey is a key found by its tags.
type TaggedKey struct {
	ID   string
	ARN  string
	Tags map[string]string
}

// Deletion is what ScheduleDeletion scheduled.
type Deletion struct {
	State string     // PendingDeletion, or PendingReplicaDeletion
	Date  *time.Time // nil while KMS has not set one (PendingReplicaDeletion)
}

// KeyRotation is one completed rotation of a key's material.
type KeyRotation struct {
	Date time.Time
	Type string // AUTOMATIC or ON_DEMAND
}

// Rotation is a key's automatic rotation, and an on-demand rotation in
// progress.
type Rotation struct {
	Enabled          bool
	PeriodInDays     int32
	NextRotationDate *time.Time
	// OnDemandStartDate is when an on-demand rotation still in progress began.
	OnDemandStartDate *time.Time
}

// CreateKeyInput is everything CreateKey accepts that the operator uses.
type CreateKeyInput struct {
	Description                    string
	KeySpec                        string
	KeyUsage                       string
	Origin                         string
	MultiRegion                    bool
	Policy                         string // "" lets KMS apply its default policy
	BypassPolicyLockoutSafetyCheck bool
	Tags                           map[string]string
}

// Alias is a KMS alias and the key it points at.
type Alias struct {
	Name        string
	ARN         string
	TargetKeyID string
}

// GrantInput is everything CreateGrant accepts that the operator uses. The
// grantee is GranteePrincipal (an IAM ARN) or GranteeServicePrincipal (an
// AWS service such as logs.amazonaws.com, which KMS lets use the key only on
// behalf of SourceARN); the retiring principal likewise, at most one.
type GrantInput struct {
	KeyID                    string
	Name                     string
	GranteePrincipal         string
	GranteeServicePrincipal  string
	RetiringPrincipal        string
	RetiringServicePrincipal string
	Operations               []string
	EncryptionContextSubset  map[string]string
	EncryptionContextEquals  map[string]string
	SourceARN                string
}

// Grant is a grant as ListGrants returns it.
type Grant struct {
	GrantID                  string
	KeyID                    string
	Name                     string
	GranteePrincipal         string
	GranteeServicePrincipal  string
	RetiringPrincipal        string
	RetiringServicePrincipal string
	Operations               []string
	EncryptionContextSubset  map[string]string
	EncryptionContextEquals  map[string]string
	SourceARN                string
}

// LastUsage is a key's last successful cryptographic use as GetKeyLastUsage
// reports it
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyLastUsage.html).
type LastUsage struct {
	// Operation (Encrypt, Decrypt, Sign, ...), Time and CloudTrailEventID of
	// the last use; empty when KMS recorded none since TrackingStart.
	Operation         string
	Time              *time.Time
	CloudTrailEventID string
	// TrackingStart is since when KMS records the key's use: the later of
	// the key's creation and the day KMS began tracking the account. A use
	// before it is unknown to KMS; while it lies ahead, KMS tracks nothing
	// yet.
	TrackingStart time.Time
	KeyCreation   time.Time
	// At is KMS's clock when it answered (the answer's Date header; the
	// local clock without one): periods since a use are measured on the
	// clock that recorded it.
	At time.Time
}

// ReplicateKeyInput is everything ReplicateKey accepts that the operator
// uses. Tags are not replicated: the replica gets these.
type ReplicateKeyInput struct {
	KeyID                          string
	Region                         string
	Description                    string
	Policy                         string // "" lets KMS apply its default policy
	BypassPolicyLockoutSafetyCheck bool
	Tags                           map[string]string
}

// ImportParameters are what GetParametersForImport answers: a wrapping
// public key (DER, SubjectPublicKeyInfo) and the import token to send with
// the material wrapped under it, both valid until ValidTo.
type ImportParameters struct {
	PublicKey   []byte
	ImportToken []byte
	ValidTo     time.Time
}

// ImportKeyMaterialInput is one ImportKeyMaterial request.
type ImportKeyMaterialInput struct {
	KeyID       string
	ImportToken []byte
	// EncryptedKeyMaterial is the material wrapped with the public key of
	// the same ImportParameters: never the material itself.
	EncryptedKeyMaterial []byte
	// ImportType is NEW_KEY_MATERIAL or EXISTING_KEY_MATERIAL (symmetric
	// keys only); "" is KMS's default.
	ImportType string
	// KeyMaterialID names the material an EXISTING_KEY_MATERIAL import must
	// be (symmetric keys only).
	KeyMaterialID string
	// ValidTo is when the material expires; nil: it does not.
	ValidTo *time.Time
}

// Import types.
const (
	ImportNewMaterial      = "NEW_KEY_MATERIAL"
	ImportExistingMaterial = "EXISTING_KEY_MATERIAL"
)

// KeyMaterial is one key material of an EXTERNAL key, as ListKeyRotations
// lists it.
type KeyMaterial struct {
	ID string
	// State is CURRENT, NON_CURRENT or PENDING_ROTATION.
	State string
	// ImportState is IMPORTED or PENDING_IMPORT (deleted or expired).
	ImportState  string
	ValidTo      *time.Time
	RotationDate *time.Time
}

// Key material states.
const (
	MaterialCurrent         = "CURRENT"
	MaterialNonCurrent      = "NON_CURRENT"
	MaterialPendingRotation = "PENDING_ROTATION"
	MaterialImported        = "IMPORTED"
)
