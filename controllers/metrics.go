package controllers

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// KMS calls are counted by internal/kmsclient; reconcile counts and durations
// by controller-runtime (controller_runtime_reconcile_total). These add what
// neither knows: why reconciles ended as they did, and keys by KMS state.
var (
	reconcileOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kms_operator_reconcile_outcomes_total",
		Help: "Reconciles by kind and the reason of their Synced condition.",
	}, []string{"kind", "reason"})

	keysByState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kms_operator_keys",
		Help: "Key objects by the KMS key state last observed.",
	}, []string{"state"})

	accountReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kms_operator_account_ready",
		Help: "1 while an AWSAccount's role can be assumed, 0 when it cannot.",
	}, []string{"account"})

	objectsByReadiness = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kms_operator_objects",
		Help: "Objects by kind and whether their Ready condition is True.",
	}, []string{"kind", "ready"})
)

func init() {
	metrics.Registry.MustRegister(reconcileOutcomes, keysByState, objectsByReadiness, accountReady)
}

// readiness keeps objectsByReadiness right as objects change or go away.
var readiness = map[string]*gaugeTracker{
	"Key":        {gauge: objectsByReadiness, fixed: []string{"Key"}},
	"Alias":      {gauge: objectsByReadiness, fixed: []string{"Alias"}},
	"Grant":      {gauge: objectsByReadiness, fixed: []string{"Grant"}},
	"ReplicaKey": {gauge: objectsByReadiness, fixed: []string{"ReplicaKey"}},
	"AWSAccount": {gauge: objectsByReadiness, fixed: []string{"AWSAccount"}},
}

// count records obj's readiness in the objects gauge.
func (l *lifecycle[T]) count(obj T) {
	t := readiness[l.kind]
	if t == nil {
		return
	}
	if released(obj) {
		t.set(obj.GetUID(), "")
		return
	}
	ready := "false"
	if c := findCondition(obj, kmsv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
		ready = "true"
	}
	t.set(obj.GetUID(), ready)
}

// gaugeTracker keeps a gauge of objects by one label's value (after fixed
// label values) right: each object counts once, under its latest value.
type gaugeTracker struct {
	gauge *prometheus.GaugeVec
	fixed []string

	mu     sync.Mutex
	values map[types.UID]string
}

// set records uid's value; "" forgets uid.
func (t *gaugeTracker) set(uid types.UID, value string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.values[uid]
	if old == value {
		return
	}
	if old != "" {
		t.gauge.WithLabelValues(append(t.fixed, old)...).Dec()
	}
	if value == "" {
		delete(t.values, uid)
		return
	}
	if t.values == nil {
		t.values = map[types.UID]string{}
	}
	t.values[uid] = value
	t.gauge.WithLabelValues(append(t.fixed, value)...).Inc()
}

// keyStates keeps keysByState right as keys change state or go away.
var keyStates = &gaugeTracker{gauge: keysByState}
