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
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
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
	// Account labels this identity's metrics; "" is the operator's own.
	Account string
	// Log receives what the provider decides about pacing; the zero Logger
	// discards it.
	Log logr.Logger
	// AppID is the SDK application id in every request's User-Agent; ""
	// is the operator's, AppID() (tests and tools name themselves).
	AppID string
}

// quotaRefresh is how often an account's applied quotas are read again.
const quotaRefresh = time.Hour

// SDKProvider hands out one KMS client per region, all sharing one identity
// (the default credential chain: environment, IRSA web identity, Pod Identity,
// IMDS). Each region's requests are paced on their own: quotas are per
// account and region.
type SDKProvider struct {
	cfg  aws.Config
	opts ProviderOptions

	metrics        *metrics
	limiterMetrics *limiterMetrics

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
	return &SDKProvider{cfg: cfg, opts: opts, metrics: m, limiterMetrics: lm, regions: map[string]*regionClient{}}, nil
}

// For returns the client of region, "" meaning the default region. The first
// call for a region reads the account's quotas there, so pacing starts right.
func (p *SDKProvider) For(region string) (API, error) {
	if region == "" {
		region = p.cfg.Region
	}
	if region == "" {
		return nil, errors.New("no AWS region: set one on the resource, in the operator configuration or in AWS_REGION")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rc, ok := p.regions[region]
	if !ok {
		rc = p.newRegionClient(region)
		p.regions[region] = rc
		p.pace(context.Background(), region, rc)
	}
	return rc.api, nil
}

func (p *SDKProvider) newRegionClient(region string) *regionClient {
	l := newLimiter(p.opts.Account, region, p.limiterMetrics)
	count := p.metrics.addTo(p.opts.Account, region)
	return &regionClient{
		limiter: l,
		api: &sdkClient{
			kms:     kms.NewFromConfig(p.cfg, clientOptions(region, p.opts.Endpoint, count, l), withRetryer),
			tagging: resourcegroupstaggingapi.NewFromConfig(p.cfg, taggingOptions(region, p.opts.TaggingEndpoint, count, l)),
		},
		quotas: servicequotas.NewFromConfig(p.cfg, func(o *servicequotas.Options) { o.Region = region }),
	}
}

// pace sets region's pacing: the account's applied quotas (Service Quotas)
// when asked for and readable, else AWS's defaults, times the share.
func (p *SDKProvider) pace(ctx context.Context, region string, rc *regionClient) {
	pacing := p.opts.Pacing
	var applied map[string]float64
	source := "AWS's default quotas"
	if pacing.FromServiceQuotas && (pacing.Share > 0 || len(pacing.Overrides) > 0) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		if applied, err = appliedQuotas(ctx, rc.quotas); err != nil {
			p.opts.Log.Info("cannot read the account's KMS quotas from Service Quotas; pacing to AWS's defaults", "region", region, "error", err.Error())
		} else {
			source = "the account's applied quotas (Service Quotas)"
		}
	}
	quotas := pacing.pace(applied)
	if pacing.Share <= 0 {
		quotas = maps.Clone(pacing.Overrides)
	}
	rc.limiter.set(quotas)
	p.opts.Log.Info("pacing KMS requests", "account", p.opts.Account, "region", region, "source", source, "share", pacing.Share,
		"CreateKey", quotas["CreateKey"], "DescribeKey", quotas["DescribeKey"], "CreateGrant", quotas["CreateGrant"])
}

// Start reads every region's quotas again each hour: an account's quotas can
// be raised while the operator runs. It implements manager.Runnable.
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
			p.mu.Lock()
			regions := maps.Clone(p.regions)
			p.mu.Unlock()
			for region, rc := range regions {
				p.pace(ctx, region, rc)
			}
		}
	}
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
func withRetryer(o *kms.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.RateLimiter = ratelimit.None })
}

// noRetry is for calls that are not idempotent: a CreateKey whose response
// was lost has created a key, and retrying it would create another. The
// reconciler recovers such a key by its ownership tags instead.
func noRetry(o *kms.Options) { o.RetryMaxAttempts = 1 }
