package controllers

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
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
)

func init() {
	metrics.Registry.MustRegister(reconcileOutcomes, keysByState)
}

// stateTracker keeps keysByState right as keys change state or go away.
type stateTracker struct {
	mu     sync.Mutex
	states map[types.UID]string
}

// set records uid's state; "" forgets uid.
func (t *stateTracker) set(uid types.UID, state string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.states[uid]
	if old == state {
		return
	}
	if old != "" {
		keysByState.WithLabelValues(old).Dec()
	}
	if state == "" {
		delete(t.states, uid)
		return
	}
	if t.states == nil {
		t.states = map[types.UID]string{}
	}
	t.states[uid] = state
	keysByState.WithLabelValues(state).Inc()
}
