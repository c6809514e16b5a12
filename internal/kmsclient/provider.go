package kmsclient

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
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
	TaggingEndpoint string
	// Registerer receives the KMS request metrics; nil disables them.
	Registerer prometheus.Registerer
	// Quotas pace requests per operation (requests per second, see Quotas
	// and DefaultQuotas); an operation not in the map is not paced, and nil
	// turns pacing off.
	Quotas map[string]float64
}

// SDKProvider hands out one KMS client per region, all sharing the default
// credential chain (environment, IRSA web identity, Pod Identity, IMDS).
type SDKProvider struct {
	cfg             aws.Config
	endpoint        string
	taggingEndpoint string
	metrics         *metrics
	limiter         *limiter

	mu      sync.Mutex
	clients map[string]API
}

var _ Provider = (*SDKProvider)(nil)

// NewProvider loads the default AWS configuration. Credentials are resolved
// lazily, on the first KMS call.
func NewProvider(ctx context.Context, opts ProviderOptions) (*SDKProvider, error) {
	var loadOpts []func(*config.LoadOptions) error
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
	l, err := newLimiter(opts.Quotas, opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering KMS rate limiter metrics: %w", err)
	}
	return &SDKProvider{cfg: cfg, endpoint: opts.Endpoint, taggingEndpoint: opts.TaggingEndpoint, metrics: m, limiter: l, clients: map[string]API{}}, nil
}

// For returns the client of region, "" meaning the default region.
func (p *SDKProvider) For(region string) (API, error) {
	if region == "" {
		region = p.cfg.Region
	}
	if region == "" {
		return nil, errors.New("no AWS region: set one on the resource, in the operator configuration or in AWS_REGION")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[region]
	if !ok {
		c = &sdkClient{
			kms:     kms.NewFromConfig(p.cfg, clientOptions(region, p.endpoint, p.metrics, p.limiter), withRetryer),
			tagging: resourcegroupstaggingapi.NewFromConfig(p.cfg, taggingOptions(region, p.taggingEndpoint, p.metrics, p.limiter)),
		}
		p.clients[region] = c
	}
	return c, nil
}

// clientOptions configures a KMS client for region. Each limiter is shared by
// the regions' clients: KMS quotas are per region, but one operator rarely
// spans many, and sharing errs on the side of fewer requests.
func clientOptions(region, endpoint string, m *metrics, l *limiter) func(*kms.Options) {
	return func(o *kms.Options) {
		o.Region = region
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		// Order matters: each insert lands right after Retry, so the stack
		// reads Retry, limiter, metrics.
		o.APIOptions = append(o.APIOptions, m.addTo, l.addTo)
	}
}

// taggingOptions configures the Resource Groups Tagging API client of region
// like the KMS one.
func taggingOptions(region, endpoint string, m *metrics, l *limiter) func(*resourcegroupstaggingapi.Options) {
	return func(o *resourcegroupstaggingapi.Options) {
		o.Region = region
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.APIOptions = append(o.APIOptions, m.addTo, l.addTo)
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
