package kmsclient

// Accounts other than the operator's own: an AWSAccount names an IAM role the
// operator assumes with STS AssumeRole from its own identity. Each account
// gets its own credentials (cached, refreshed before they expire), clients,
// pacing and metrics label.

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// AccountConfig is how to reach one AWS account.
type AccountConfig struct {
	RoleARN         string
	ExternalID      string
	SessionName     string
	SessionDuration time.Duration
	// Region is the account's default region; "" keeps the operator's.
	Region string
	// KMSEndpoint and STSEndpoint override the SDK's resolution.
	KMSEndpoint, STSEndpoint string
	// Quotas are the account's raised quotas, taken as they are.
	Quotas map[string]float64
}

// Identity is who an account's credentials act as.
type Identity struct {
	AccountID string
	ARN       string
	// Expires is when the credentials in use expire.
	Expires time.Time
}

// Accounts is what the AWSAccount reconciler needs from the provider.
type Accounts interface {
	// SetAccount sets up (or, when cfg changed, replaces) the clients of
	// account name; calling it again with the same cfg changes nothing.
	SetAccount(name string, cfg AccountConfig)
	// RemoveAccount forgets account name.
	RemoveAccount(name string)
	// VerifyAccount assumes the account's role afresh and asks STS who it
	// is: a role whose trust was broken fails here even while cached
	// credentials still work. The credentials KMS calls use are left alone.
	VerifyAccount(ctx context.Context, name string) (*Identity, error)
}

var _ Accounts = (*SDKProvider)(nil)

// credentialsExpiryWindow is how long before their expiry credentials are
// refreshed, so no call is made with credentials about to expire.
const credentialsExpiryWindow = 5 * time.Minute

// SetAccount implements Accounts.
func (p *SDKProvider) SetAccount(name string, cfg AccountConfig) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.accounts[name]; ok && reflect.DeepEqual(old.account, cfg) {
		return
	}
	p.accounts[name] = p.newAccountIdentity(name, cfg)
}

// RemoveAccount implements Accounts.
func (p *SDKProvider) RemoveAccount(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.accounts, name)
}

// newAccountIdentity builds the identity of an account: the operator's own
// configuration with the role's credentials, region and endpoints.
func (p *SDKProvider) newAccountIdentity(name string, ac AccountConfig) *identity {
	base := p.own.cfg
	stsClient := sts.NewFromConfig(base, func(o *sts.Options) {
		if ac.Region != "" {
			o.Region = ac.Region
		}
		if ac.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(ac.STSEndpoint)
		}
	})
	assume := stscreds.NewAssumeRoleProvider(stsClient, ac.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = ac.SessionName
		o.Duration = ac.SessionDuration
		if ac.ExternalID != "" {
			o.ExternalID = aws.String(ac.ExternalID)
		}
	})
	creds := aws.NewCredentialsCache(assume, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = credentialsExpiryWindow
		o.ExpiryWindowJitterFrac = 0.5
	})
	cfg := base.Copy()
	cfg.Credentials = creds
	if ac.Region != "" {
		cfg.Region = ac.Region
	}
	pacing := p.opts.Pacing
	pacing.Overrides = maps.Clone(ac.Quotas)
	return &identity{name: name, cfg: cfg, creds: creds, assume: assume, endpoint: ac.KMSEndpoint, pacing: pacing,
		account: ac, sts: stsClient, regions: map[string]*regionClient{}}
}

// VerifyAccount implements Accounts. It assumes the role outside the cache,
// so that verifying never swaps the credentials KMS calls are using, and
// reports the expiry of those.
func (p *SDKProvider) VerifyAccount(ctx context.Context, name string) (*Identity, error) {
	id, err := p.identity(name)
	if err != nil {
		return nil, err
	}
	fresh, err := id.assume.Retrieve(ctx)
	if err != nil {
		return nil, classify("AssumeRole", err)
	}
	out, err := id.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.Options) {
		o.Credentials = credentials.StaticCredentialsProvider{Value: fresh}
	})
	if err != nil {
		return nil, classify("GetCallerIdentity", err)
	}
	inUse, err := id.creds.Retrieve(ctx)
	if err != nil {
		return nil, classify("AssumeRole", err)
	}
	return &Identity{AccountID: aws.ToString(out.Account), ARN: aws.ToString(out.Arn), Expires: inUse.Expires}, nil
}

// refreshOnExpiredToken drops the identity's cached credentials when KMS
// calls them expired, so that the retry (withRetryer) assumes the role again.
// The operator's own identity has no cache of its own to drop: the SDK's
// credential chain refreshes itself.
func (id *identity) refreshOnExpiredToken(stack *middleware.Stack) error {
	if id.creds == nil {
		return nil
	}
	drop := func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleFinalize(ctx, in)
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ExpiredTokenException" {
			id.creds.Invalidate()
		}
		return out, md, err
	}
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("KMSOperatorRefreshExpiredToken", drop), "Retry", middleware.After)
}
