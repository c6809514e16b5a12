package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// TestOneFailureRuleForEveryKind: the same KMS error leaves the same
// conditions and retry decision on a Key, an Alias and a Grant. A passing
// fault (throttling, a transient error) keeps Ready as the last observation of
// the generation set it; anything else, or a generation not yet observed,
// turns Ready False with the failure's reason.
func TestOneFailureRuleForEveryKind(t *testing.T) {
	type outcome struct {
		Err     bool
		Synced  string
		Ready   string
		Requeue string
	}
	failing := func(class kmsclient.Class, code string) error {
		return kmsclient.NewError("", class, code, "injected")
	}
	cases := map[string]struct {
		err           error
		newGeneration bool // the spec changed before the failure
		want          outcome
	}{
		"Throttled":                {failing(kmsclient.Throttled, "ThrottlingException"), false, outcome{true, "False/Throttled", "True/Available", "none"}},
		"ThrottledNewGeneration":   {failing(kmsclient.Throttled, "ThrottlingException"), true, outcome{true, "False/Throttled", "False/Throttled", "none"}},
		"Transient":                {failing(kmsclient.Transient, "KMSInternalException"), false, outcome{true, "False/ReconcileError", "True/Available", "none"}},
		"TransientNewGeneration":   {failing(kmsclient.Transient, "KMSInternalException"), true, outcome{true, "False/ReconcileError", "False/ReconcileError", "none"}},
		"Invalid":                  {failing(kmsclient.Invalid, "ValidationException"), false, outcome{false, "False/InvalidSpec", "False/InvalidSpec", "resync"}},
		"InvalidState":             {failing(kmsclient.InvalidState, "KMSInvalidStateException"), false, outcome{false, "False/InvalidKeyState", "False/InvalidKeyState", "resync"}},
		"AlreadyExists":            {failing(kmsclient.AlreadyExists, "AlreadyExistsException"), false, outcome{false, "False/Conflict", "False/Conflict", "resync"}},
		"ThrottledWithoutReadyYet": {failing(kmsclient.Throttled, "ThrottlingException"), false, outcome{true, "False/Throttled", "False/Throttled", "none"}},
	}
	// The first KMS call each kind makes when its object is already in sync.
	firstCall := map[string]string{"Key": "DescribeKey", "Alias": "DescribeKey", "Grant": "ListGrants"}
	for name, tc := range cases {
		for kind, op := range firstCall {
			t.Run(name+"/"+kind, func(t *testing.T) {
				w := newRefWorld(t)
				key := w.keyObject("k1")
				key.Finalizers = []string{kmsv1alpha1.Finalizer}
				alias, grant := newAlias("a", "k1"), newGrant("k1")
				c := newRefClient(t, key, alias, grant)
				reconcile := reconcilerOf(kind, w, c)
				obj := map[string]object{"Key": key, "Alias": alias, "Grant": grant}[kind]
				if name != "ThrottledWithoutReadyYet" {
					if _, err := reconcile(obj); err != nil {
						t.Fatalf("first reconcile: %v", err)
					}
				}
				if tc.newGeneration {
					bumpGeneration(t, c, obj)
				}
				w.kms.Fail(op, tc.err, 1)
				res, err := reconcile(obj)
				if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
					t.Fatal(err)
				}
				got := outcome{err != nil, condition(obj.GetConditions(), kmsv1alpha1.ConditionSynced),
					condition(obj.GetConditions(), kmsv1alpha1.ConditionReady), requeueOf(res, w.opts.SyncPeriod)}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}

// reconcilerOf returns a function reconciling an object of kind in world w.
func reconcilerOf(kind string, w *refWorld, c client.Client) func(object) (ctrl.Result, error) {
	rec := events.NewFakeRecorder(100)
	var r interface {
		Reconcile(context.Context, ctrl.Request) (ctrl.Result, error)
	}
	switch kind {
	case "Key":
		r = &KeyReconciler{Options: w.opts, client: c, recorder: rec, memory: newKeyMemory()}
	case "Alias":
		r = &AliasReconciler{Options: w.opts, client: c, recorder: rec}
	default:
		r = &GrantReconciler{Options: w.opts, client: c, recorder: rec}
	}
	return func(obj object) (ctrl.Result, error) {
		return r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
	}
}

// bumpGeneration stands for a spec change (the fake client does not count
// generations).
func bumpGeneration(t *testing.T, c client.Client, obj object) {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	obj.SetGeneration(obj.GetGeneration() + 1)
	if err := c.Update(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// requeueOf summarises a result: "none", "resync" (the period with its
// jitter) or the delay.
func requeueOf(res ctrl.Result, period time.Duration) string {
	switch d := res.RequeueAfter; {
	case d == 0:
		return "none"
	case d >= period*9/10 && d <= period*11/10:
		return "resync"
	default:
		return d.String()
	}
}

// TestFirstResyncAfterStart: after a restart, the objects that were Ready
// before it are first observed at an offset within one sync period, fixed by
// their UID; anything else goes at once.
func TestFirstResyncAfterStart(t *testing.T) {
	period := 10 * time.Minute
	readySince := func(at time.Time, generation int64) *kmsv1alpha1.Alias {
		a := newAlias("a", "k1")
		a.Generation = 2
		a.Status.Conditions = []metav1.Condition{{Type: kmsv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(at), Reason: "Available"}}
		return a
	}
	cases := map[string]struct {
		obj      *kmsv1alpha1.Alias
		deferred bool
	}{
		"ReadyBeforeTheStart":         {readySince(processStart.Add(-time.Hour), 2), true},
		"MadeReadyByThisProcess":      {readySince(time.Now(), 2), false},
		"ChangedSinceItWasReady":      {readySince(processStart.Add(-time.Hour), 1), false},
		"NotReady":                    {newAlias("a", "k1"), false},
		"ReadyBeforeTheStartOtherUID": {func() *kmsv1alpha1.Alias { a := readySince(processStart.Add(-time.Hour), 2); a.UID = "other"; return a }(), true},
	}
	l := &lifecycle[*kmsv1alpha1.Alias]{options: Options{SyncPeriod: period}}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			wait := l.firstResyncAfterStart(tc.obj)
			if got := wait > 0; got != tc.deferred && time.Since(processStart) < period {
				t.Errorf("deferred %v (%s), want %v", got, wait, tc.deferred)
			}
			if wait > period {
				t.Errorf("deferred by %s, more than the sync period %s", wait, period)
			}
		})
	}
}

// TestResyncsHaveLowPriority: a resync yields to new work in the priority
// queue; a retry after an error and a short recheck do not.
func TestResyncsHaveLowPriority(t *testing.T) {
	if p := resync(time.Minute).Priority; p == nil || *p >= 0 {
		t.Errorf("resync priority %v, want low", p)
	}
	w := newRefWorld(t)
	a := newAlias("a", "k1")
	c := newRefClient(t, w.keyObject("k1"), a)
	w.kms.Fail("DescribeKey", kmsclient.NewError("", kmsclient.Throttled, "ThrottlingException", "slow down"), 1)
	r := &AliasReconciler{Options: w.opts, client: c, recorder: events.NewFakeRecorder(10)}
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(a)})
	if err == nil || res.Priority == nil || *res.Priority != 0 {
		t.Errorf("after a throttled call: %v, priority %v; want a retry at normal priority", err, res.Priority)
	}
	res, err = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(a)})
	if err != nil || res.Priority == nil || *res.Priority >= 0 || requeueOf(res, w.opts.SyncPeriod) != "resync" {
		t.Errorf("in sync: %v, %+v; want a low-priority resync", err, res)
	}
}
