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
	// FindKeysByTag returns the ids of keys carrying tag key=value, paging
	// through ListKeys. Each key's tags are read once and remembered, so it
	// is only for tags fixed at creation (the owner UID): for crash recovery.
	FindKeysByTag(ctx context.Context, key, value string) ([]string, error)

	// CreateKey creates a key with everything KMS accepts at creation.
	CreateKey(ctx context.Context, in CreateKeyInput) (*Key, error)
	UpdateDescription(ctx context.Context, keyID, description string) error
	EnableKey(ctx context.Context, keyID string) error
	DisableKey(ctx context.Context, keyID string) error
	// EnableRotation turns automatic rotation on with the given period.
	EnableRotation(ctx context.Context, keyID string, periodInDays int32) error
	DisableRotation(ctx context.Context, keyID string) error
	RotateOnDemand(ctx context.Context, keyID string) error
	PutKeyPolicy(ctx context.Context, keyID, policy string, bypassLockoutCheck bool) error
	TagKey(ctx context.Context, keyID string, tags map[string]string) error
	UntagKey(ctx context.Context, keyID string, tagKeys []string) error
	// ScheduleDeletion returns the date KMS will delete the key.
	ScheduleDeletion(ctx context.Context, keyID string, pendingWindowInDays int32) (time.Time, error)
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
}

// Provider hands out an API per region; "" is the operator's default region.
type Provider interface {
	For(region string) (API, error)
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
}

// Key states the reconcilers act on.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
	StatePendingImport   = "PendingImport"
)

// Rotation is a key's automatic rotation.
type Rotation struct {
	Enabled          bool
	PeriodInDays     int32
	NextRotationDate *time.Time
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

// GrantInput is everything CreateGrant accepts that the operator uses.
type GrantInput struct {
	KeyID                   string
	Name                    string
	GranteePrincipal        string
	RetiringPrincipal       string
	Operations              []string
	EncryptionContextSubset map[string]string
	EncryptionContextEquals map[string]string
}

// Grant is a grant as ListGrants returns it.
type Grant struct {
	GrantID                 string
	KeyID                   string
	Name                    string
	GranteePrincipal        string
	RetiringPrincipal       string
	Operations              []string
	EncryptionContextSubset map[string]string
	EncryptionContextEquals map[string]string
}
