package kmsclient

import (
	"context"
	"maps"
	"math"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// DefaultQuotas are AWS KMS's default request quotas, in requests per second
// per account and region (the "Request quotas" page of the KMS developer
// guide). Each operation has its own quota, shared with every other client of
// the account; the cryptographic operations the operator never calls are left
// out. An account's applied quotas, raised or not, come from Service Quotas
// when it can be read (quotas.go).
var DefaultQuotas = map[string]float64{
	"CreateKey": 5, "CreateAlias": 5, "UpdateAlias": 5, "DeleteAlias": 5,
	"EnableKey": 5, "DisableKey": 5, "EnableKeyRotation": 5, "DisableKeyRotation": 5,
	"RotateKeyOnDemand": 5, "PutKeyPolicy": 5, "TagResource": 5, "UntagResource": 5,
	"UpdateKeyDescription": 5, "ScheduleKeyDeletion": 5, "CancelKeyDeletion": 5,
	"CreateGrant": 50, "RetireGrant": 30, "RevokeGrant": 30,
	"DescribeKey": 2000, "ListResourceTags": 2000,
	"GetKeyPolicy": 1000, "GetKeyRotationStatus": 1000,
	"ListKeys": 500, "ListAliases": 500, "ListGrants": 100, "ListKeyRotations": 100,
	"ReplicateKey": 5, "UpdatePrimaryRegion": 5, "GetParametersForImport": 1,
	"ImportKeyMaterial": 15, "DeleteImportedKeyMaterial": 15, "GetKeyLastUsage": 5,
}

// Pacing says how the operator paces its KMS requests: at Share of each
// operation's quota, so that it does not provoke ThrottlingException in the
// first place and leaves the rest of the account's quota to other clients.
type Pacing struct {
	// Share of each quota the operator uses; 0 turns pacing off (but for
	// Overrides).
	Share float64
	// Overrides are requests per second per operation, taken as they are:
	// for an account whose quota is known to be raised.
	Overrides map[string]float64
	// FromServiceQuotas: pace to the account's applied quotas, read from
	// Service Quotas, instead of AWS's defaults.
	FromServiceQuotas bool
}

// Quotas scales quotas by share (the part of the account's quota this
// operator may use) and applies per-operation overrides, which are taken as
// they are: an account whose quota was raised names its own numbers.
func Quotas(base map[string]float64, share float64, overrides map[string]float64) map[string]float64 {
	q := make(map[string]float64, len(base)+len(overrides))
	for op, n := range base {
		q[op] = n * share
	}
	for op, n := range overrides {
		q[op] = n
	}
	return q
}

// pace is the rate per operation for an account and region whose applied
// quotas are applied (nil: unknown, AWS's defaults).
func (p Pacing) pace(applied map[string]float64) map[string]float64 {
	base := maps.Clone(DefaultQuotas)
	maps.Copy(base, applied)
	return Quotas(base, p.Share, p.Overrides)
}

// limiterMetrics are shared by every limiter of the process.
type limiterMetrics struct {
	wait  *prometheus.HistogramVec
	quota *prometheus.GaugeVec
}

func newLimiterMetrics(reg prometheus.Registerer) (*limiterMetrics, error) {
	m := &limiterMetrics{
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_operator_kms_ratelimit_wait_seconds",
			Help:    "Time KMS requests waited for the client-side quota pacing, by account, region and operation.",
			Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120},
		}, []string{"account", "region", "operation"}),
		quota: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kms_operator_kms_quota_requests_per_second",
			Help: "The pace of KMS requests in use per account, region and operation: the account's quota times --kms-quota-share, or an override.",
		}, []string{"account", "region", "operation"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.wait, err = register(reg, m.wait); err != nil {
		return nil, err
	}
	m.quota, err = register(reg, m.quota)
	return m, err
}

// limiter paces the KMS requests of one account and region (KMS quotas are
// per account and region) per operation. Requests are spaced evenly (burst
// 1): KMS counts quotas in one-second windows, and a burst at the end of one
// window plus the steady rate in the next would exceed it.
//
// An evenly spaced stream at r requests per second puts up to ceil(r) of them
// in some one-second window, so operators sharing an account (sharded by
// namespace, --kms-quota-share 0.5 each) could together exceed a quota of 5
// although their shares add up to it: 3+3 requests in one window. So each
// operation is paced to whole requests per window, floor(r) (r below 1 is kept:
// it never puts two in one window), spaced a little wider than 1/floor(r)
// (windowMargin) so that scheduling jitter cannot pull the next request into
// the window before. The sum of floors never exceeds the floor of the sum.
type limiter struct {
	account, region string
	metrics         *limiterMetrics

	mu     sync.RWMutex
	limits map[string]*rate.Limiter // nil: not paced
}

func newLimiter(account, region string, m *limiterMetrics) *limiter {
	return &limiter{account: account, region: region, metrics: m, limits: map[string]*rate.Limiter{}}
}

// set paces each operation to quotas (requests per second; missing or 0: not
// paced), keeping the limiters' state so a change takes effect smoothly.
func (l *limiter) set(quotas map[string]float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for op, lim := range l.limits {
		if quotas[op] <= 0 {
			delete(l.limits, op)
			lim.SetLimit(rate.Inf)
			l.metrics.quota.DeleteLabelValues(l.account, l.region, op)
		}
	}
	for op, n := range quotas {
		if n <= 0 {
			continue
		}
		if lim := l.limits[op]; lim != nil {
			lim.SetLimit(perWindow(n))
		} else {
			l.limits[op] = rate.NewLimiter(perWindow(n), 1)
		}
		l.metrics.quota.WithLabelValues(l.account, l.region, op).Set(n)
	}
}

// windowMargin widens the spacing of paced requests by 2%: 4 ms at 5 requests
// per second, 20 ms over a window.
const windowMargin = 0.98

// perWindow is the limiter rate for a pace of n requests per second: at most
// floor(n) requests in any one-second window (see limiter).
func perWindow(n float64) rate.Limit {
	if n >= 1 {
		n = math.Floor(n)
	}
	return rate.Limit(n * windowMargin)
}

func (l *limiter) limit(op string) *rate.Limiter {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.limits[op]
}

// addTo inserts the limiter right after the SDK's retry middleware, so that
// every attempt, retries included, takes a token (each one counts against
// the quota), and before the metrics middleware, whose latency then excludes
// the wait.
func (l *limiter) addTo(stack *middleware.Stack) error {
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("KMSOperatorRateLimit", l.take), "Retry", middleware.After)
}

func (l *limiter) take(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	op := awsmiddleware.GetOperationName(ctx)
	if lim := l.limit(op); lim != nil {
		start := time.Now()
		if err := lim.Wait(ctx); err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, err
		}
		l.metrics.wait.WithLabelValues(l.account, l.region, op).Observe(time.Since(start).Seconds())
	}
	return next.HandleFinalize(ctx, in)
}
