package kmsclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// ProviderOptions configures NewProvider.
type ProviderOptions struct {
	// Region is the default region; "" leaves it to the SDK (AWS_REGION, the
	// shared config file).
	Region string
	// Endpoint overrides the KMS endpoint, e.g. a local KMS server. "" keeps
	// the SDK's resolution, which honours AWS_ENDPOINT_URL_KMS.
	Endpoint string
	// TaggingEndpoint overrides the Resource Groups Tagging API endpoint; ""
	// keeps the SDK's resolution (AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API).
	// Service Quotas is reached through the SDK's resolution
	// (AWS_ENDPOINT_URL_SERVICE_QUOTAS).
	TaggingEndpoint string
	// Registerer receives the KMS request metrics; nil disables them.
	Registerer prometheus.Registerer
	// Pacing paces requests per operation (ratelimit.go).
	Pacing Pacing
	// Log receives what the provider decides about pacing; the zero Logger
	// discards it.
	Log logr.Logger
	// AppID is the SDK application id in every request's User-Agent; ""
	// is the operator's, AppID() (tests and tools name themselves).
	AppID string
}

// quotaRefresh is how often an account's applied quotas are read again.
const quotaRefresh = time.Hour

// SDKProvider hands out one KMS client per account and region: the
// operator's own identity (the default credential chain: environment, IRSA
// web identity, Pod Identity, IMDS), account "", and the AWSAccounts set with
// SetAccount, whose credentials come from STS AssumeRole (accounts.go). Each
// account and region is paced on its own: KMS quotas are per account and
// region.
type SDKProvider struct {
	opts ProviderOptions

	metrics        *metrics
	limiterMetrics *limiterMetrics

	own *identity

	mu       sync.Mutex
	accounts map[string]*identity // by AWSAccount name
}

// identity is one set of credentials (one AWS account) and its clients.
type identity struct {
	name  string     // the AWSAccount's name, "" for the operator's own
	cfg   aws.Config // credentials, default region, application id
	creds *aws.CredentialsCache
	// endpoint overrides the KMS endpoint; "" keeps the SDK's resolution.
	endpoint string
	pacing   Pacing
	account  AccountConfig                // of an AWSAccount
	sts      *sts.Client                  // of an AWSAccount
	assume   *stscreds.AssumeRoleProvider // of an AWSAccount: creds' source

	mu      sync.Mutex
	regions map[string]*regionClient
}

// regionClient is the client of one region and the pacing of its requests.
type regionClient struct {
	api     *sdkClient
	limiter *limiter
	quotas  serviceQuotasAPI
}

var _ Provider = (*SDKProvider)(nil)

// NewProvider loads the default AWS configuration. Credentials are resolved
// lazily, on the first KMS call.
func NewProvider(ctx context.Context, opts ProviderOptions) (*SDKProvider, error) {
	if opts.AppID == "" {
		opts.AppID = AppID()
	}
	loadOpts := []func(*config.LoadOptions) error{config.WithAppID(opts.AppID)}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	// The default HTTP client is kept on purpose: a custom one would make the
	// SDK ignore AWS_CA_BUNDLE.
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS config: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering KMS metrics: %w", err)
	}
	lm, err := newLimiterMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering KMS rate limiter metrics: %w", err)
	}
	own := &identity{cfg: cfg, endpoint: opts.Endpoint, pacing: opts.Pacing, regions: map[string]*regionClient{}}
	return &SDKProvider{opts: opts, metrics: m, limiterMetrics: lm, own: own, accounts: map[string]*identity{}}, nil
}

// For returns the client of an account and region: account "" is the
// operator's own identity, region "" the account's default region. The first
// call for a region reads the account's quotas there, so pacing starts right.
func (p *SDKProvider) For(account, region string) (API, error) {
	id, err := p.identity(account)
	if err != nil {
		return nil, err
	}
	if region == "" {
		region = id.cfg.Region
	}
	if region == "" {
		return nil, errors.New("no AWS region: set one on the resource, the AWSAccount, in the operator configuration or in AWS_REGION")
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	rc, ok := id.regions[region]
	if !ok {
		rc = p.newRegionClient(id, region)
		id.regions[region] = rc
		p.pace(context.Background(), id, region, rc)
	}
	return rc.api, nil
}

// identity returns the identity of account ("" is the operator's own).
func (p *SDKProvider) identity(account string) (*identity, error) {
	if account == "" {
		return p.own, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.accounts[account]
	if !ok {
		return nil, fmt.Errorf("AWSAccount %s is not set up in the operator yet", account)
	}
	return id, nil
}

func (p *SDKProvider) newRegionClient(id *identity, region string) *regionClient {
	l := newLimiter(id.name, region, p.limiterMetrics)
	count := p.metrics.addTo(id.name, region)
	refresh := id.refreshOnExpiredToken
	return &regionClient{
		limiter: l,
		api: &sdkClient{
			kms:     kms.NewFromConfig(id.cfg, clientOptions(region, id.endpoint, count, l), withRetryer, withAPIOption(refresh)),
			tagging: resourcegroupstaggingapi.NewFromConfig(id.cfg, taggingOptions(region, p.taggingEndpoint(id), count, l)),
		},
		quotas: servicequotas.NewFromConfig(id.cfg, func(o *servicequotas.Options) { o.Region = region }),
	}
}

// taggingEndpoint is the Resource Groups Tagging API endpoint of id: the
// configured one for the operator's own identity, else the SDK's resolution.
func (p *SDKProvider) taggingEndpoint(id *identity) string {
	if id == p.own {
		return p.opts.TaggingEndpoint
	}
	return ""
}

// pace sets the pacing of id's region: the account's applied quotas (Service
// Quotas) when asked for and readable, else AWS's defaults, times the share.
func (p *SDKProvider) pace(ctx context.Context, id *identity, region string, rc *regionClient) {
	pacing := id.pacing
	var applied map[string]float64
	source := "AWS's default quotas"
	if pacing.FromServiceQuotas && (pacing.Share > 0 || len(pacing.Overrides) > 0) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		if applied, err = appliedQuotas(ctx, rc.quotas); err != nil {
			p.opts.Log.Info("cannot read the account's KMS quotas from Service Quotas; pacing to AWS's defaults", "account", id.name, "region", region, "error", err.Error())
		} else {
			source = "the account's applied quotas (Service Quotas)"
		}
	}
	quotas := pacing.pace(applied)
	if pacing.Share <= 0 {
		quotas = maps.Clone(pacing.Overrides)
	}
	rc.limiter.set(quotas)
	p.opts.Log.Info("pacing KMS requests", "account", id.name, "region", region, "source", source, "share", pacing.Share,
		"CreateKey", quotas["CreateKey"], "DescribeKey", quotas["DescribeKey"], "CreateGrant", quotas["CreateGrant"])
}

// Start reads every account's and region's quotas again each hour: an
// account's quotas can be raised while the operator runs. It implements
// manager.Runnable.
func (p *SDKProvider) Start(ctx context.Context) error {
	if !p.opts.Pacing.FromServiceQuotas {
		return nil
	}
	t := time.NewTicker(quotaRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, id := range p.identities() {
				id.mu.Lock()
				regions := maps.Clone(id.regions)
				id.mu.Unlock()
				for region, rc := range regions {
					p.pace(ctx, id, region, rc)
				}
			}
		}
	}
}

// identities are the operator's own and every account's.
func (p *SDKProvider) identities() []*identity {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := []*identity{p.own}
	for _, id := range p.accounts {
		ids = append(ids, id)
	}
	return ids
}

// withAPIOption adds a middleware to a KMS client's stack.
func withAPIOption(add func(*middleware.Stack) error) func(*kms.Options) {
	return func(o *kms.Options) { o.APIOptions = append(o.APIOptions, add) }
}

// clientOptions configures a KMS client for region.
func clientOptions(region, endpoint string, count func(*middleware.Stack) error, l *limiter) func(*kms.Options) {
	return func(o *kms.Options) {
		o.Region = region
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		// Order matters: each insert lands right after Retry, so the stack
		// reads Retry, limiter, metrics.
		o.APIOptions = append(o.APIOptions, count, l.addTo)
	}
}

// taggingOptions configures the Resource Groups Tagging API client of region
// like the KMS one.
func taggingOptions(region, endpoint string, count func(*middleware.Stack) error, l *limiter) func(*resourcegroupstaggingapi.Options) {
	return func(o *resourcegroupstaggingapi.Options) {
		o.Region = region
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.APIOptions = append(o.APIOptions, count, l.addTo)
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.RateLimiter = ratelimit.None })
	}
}

// withRetryer retries transient faults and throttling with the SDK's jittered
// exponential backoff, without its retry-token bucket: under a burst of faults
// that bucket fails requests client-side with "retry quota exceeded", and the
// workqueue already backs off whole reconciles.
//
// ExpiredTokenException is retried too: KMS answers it when temporary
// credentials expired earlier than the client thought (a skewed clock, a
// revoked session); refreshOnExpiredToken drops them first, so the retry
// assumes the role again.
func withRetryer(o *kms.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.RateLimiter = ratelimit.None
		so.Retryables = append(so.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{"ExpiredTokenException": {}}})
	})
}

// noRetry is for calls that are not idempotent: a CreateKey whose response
// was lost has created a key, and retrying it would create another. The
// reconciler recovers such a key by its ownership tags instead.
func noRetry(o *kms.Options) { o.RetryMaxAttempts = 1 }
