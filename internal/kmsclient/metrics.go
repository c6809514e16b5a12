package kmsclient

import (
	"context"
	"errors"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// resultLabels are the result label values of kms_operator_kms_requests_total.
var resultLabels = map[Class]string{
	Transient:        "error",
	NotFound:         "not_found",
	AlreadyExists:    "already_exists",
	InvalidState:     "invalid_state",
	Throttled:        "throttled",
	MalformedPolicy:  "malformed_policy",
	Invalid:          "invalid",
	UnknownPrincipal: "unknown_principal",
	AccessDenied:     "access_denied",
}

// metrics counts KMS request attempts, the unit KMS quotas are counted in.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the KMS metrics on reg (nil: not registered). A
// collector that reg already holds is reused, so several providers can share
// one registry.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_operator_kms_requests_total",
			Help: "KMS request attempts (retries included) by account, region, operation and result.",
		}, []string{"account", "region", "operation", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_operator_kms_request_duration_seconds",
			Help:    "Latency of KMS request attempts by account, region and operation.",
			Buckets: prometheus.DefBuckets,
		}, []string{"account", "region", "operation"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var exists prometheus.AlreadyRegisteredError
	if errors.As(err, &exists) {
		if existing, ok := exists.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// addTo returns a kms.Options.APIOptions entry counting the requests of one
// account and region. It sits in the Finalize step right after the SDK's
// retry middleware, so it sees every attempt (retries are what eat the quota)
// with its error already deserialized and classified.
func (m *metrics) addTo(account, region string) func(*middleware.Stack) error {
	observe := func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		op := awsmiddleware.GetOperationName(ctx)
		start := time.Now()
		out, md, err := next.HandleFinalize(ctx, in)
		m.duration.WithLabelValues(account, region, op).Observe(time.Since(start).Seconds())
		result := "success"
		if err != nil {
			result = resultLabels[ClassOf(classify(op, err))]
		}
		m.requests.WithLabelValues(account, region, op, result).Inc()
		if isWrite(op) {
			logWrite(ctx, op, account, region, result, md)
		}
		return out, md, err
	}
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("KMSOperatorMetrics", observe), "Retry", middleware.After)
	}
}
