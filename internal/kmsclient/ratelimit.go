package kmsclient

import (
	"context"
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
// out.
var DefaultQuotas = map[string]float64{
	"CreateKey": 5, "CreateAlias": 5, "UpdateAlias": 5, "DeleteAlias": 5,
	"EnableKey": 5, "DisableKey": 5, "EnableKeyRotation": 5, "DisableKeyRotation": 5,
	"RotateKeyOnDemand": 5, "PutKeyPolicy": 5, "TagResource": 5, "UntagResource": 5,
	"UpdateKeyDescription": 5, "ScheduleKeyDeletion": 5, "CancelKeyDeletion": 5,
	"CreateGrant": 50, "RetireGrant": 30, "RevokeGrant": 30,
	"DescribeKey": 2000, "ListResourceTags": 2000,
	"GetKeyPolicy": 1000, "GetKeyRotationStatus": 1000,
	"ListKeys": 500, "ListAliases": 500, "ListGrants": 100,
	// Multi-Region keys and imported key material.
	"ReplicateKey": 5, "UpdatePrimaryRegion": 5, "GetParametersForImport": 1,
	"ImportKeyMaterial": 15, "DeleteImportedKeyMaterial": 15, "ListKeyRotations": 100,
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

// limiter paces KMS requests per operation so that the operator stays under
// the account's quotas instead of provoking ThrottlingException. Requests are
// spaced evenly (burst 1): KMS counts quotas in one-second windows, and a burst
// at the end of one window plus the steady rate in the next would exceed it.
type limiter struct {
	limits map[string]*rate.Limiter // read-only after construction
	wait   *prometheus.HistogramVec
}

func newLimiter(quotas map[string]float64, reg prometheus.Registerer) (*limiter, error) {
	l := &limiter{limits: map[string]*rate.Limiter{}, wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kms_operator_kms_ratelimit_wait_seconds",
		Help:    "Time KMS requests waited for the client-side rate limiter, by operation.",
		Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120},
	}, []string{"operation"})}
	for op, n := range quotas {
		if n > 0 {
			l.limits[op] = rate.NewLimiter(rate.Limit(n), 1)
		}
	}
	if reg != nil {
		var err error
		if l.wait, err = register(reg, l.wait); err != nil {
			return nil, err
		}
	}
	return l, nil
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
	if lim := l.limits[op]; lim != nil {
		start := time.Now()
		if err := lim.Wait(ctx); err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, err
		}
		l.wait.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
	return next.HandleFinalize(ctx, in)
}
