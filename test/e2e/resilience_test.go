//go:build e2e

package e2e

// Resilience: the operator under KMS faults, crashes, a leader failover, a
// kube-apiserver restart and AWS's request quotas. Each test runs operators
// of its own on a namespace of its own, and resets the KMS server's quota and
// fault configuration when it ends: that configuration is global, and other
// tests (and other runs) share the server.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

// kmsStat is the KMS server's count of one operation, throttles and injected
// faults included.
type kmsStat struct {
	Requests  int `json:"requests"`
	Errors    int `json:"errors"`
	Throttled int `json:"throttled"`
	Faulted   int `json:"faulted"`
}

type kmsStats map[string]kmsStat

func readKMSStats(t *testing.T) kmsStats {
	t.Helper()
	resp, err := http.Get(kmsServerURL("/_counts"))
	if err != nil {
		t.Fatalf("reading KMS counts: %v", err)
	}
	defer resp.Body.Close()
	s := kmsStats{}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("decoding KMS counts: %v", err)
	}
	return s
}

func (s kmsStats) requests() int {
	n := 0
	for _, c := range s {
		n += c.Requests
	}
	return n
}

// minus is the counts since before.
func (s kmsStats) minus(before kmsStats) kmsStats {
	d := kmsStats{}
	for op, c := range s {
		b := before[op]
		if c.Requests != b.Requests {
			d[op] = kmsStat{c.Requests - b.Requests, c.Errors - b.Errors, c.Throttled - b.Throttled, c.Faulted - b.Faulted}
		}
	}
	return d
}

func (s kmsStats) String() string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(s)) {
		c := s[op]
		parts = append(parts, fmt.Sprintf("%s=%d(err %d, throttled %d, faulted %d)", op, c.Requests, c.Errors, c.Throttled, c.Faulted))
	}
	return strings.Join(parts, " ")
}

// ---------------------------------------------------------------- environment

// resEnv is one resilience test's namespace, operators and object sets. Set i
// is Key k<i> (rotation, policy, tags), Alias a<i> targeting it by reference
// and Grant g<i> on it by reference.
type resEnv struct {
	t    *testing.T
	name string
	ns   string

	mu      sync.Mutex
	ops     []*operator
	offsets map[*operator]int64 // log size when the operator was first started
	sets    int
}

const resRotationDays = 180

func newResEnv(t *testing.T, name string) *resEnv {
	t.Helper()
	e := &resEnv{t: t, name: name, ns: "e2e-res-" + name + "-" + runID, offsets: map[*operator]int64{}}
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}})
	// Cleanups run last registered first: explain, reset KMS, then delete
	// the objects while the operators still run, and only then stop them.
	t.Cleanup(e.teardown)
	t.Cleanup(func() {
		if err := putKMSConfig("{}"); err != nil {
			t.Errorf("resetting the KMS server configuration: %v", err)
		}
	})
	t.Cleanup(e.explain)
	return e
}

// operator starts an operator (supervised or not) watching the namespace.
func (e *resEnv) operator(suffix string, supervised bool, args ...string) *operator {
	e.t.Helper()
	name := "res-" + e.name + suffix + "-" + runID
	args = append([]string{"--watch-namespaces=" + e.ns}, args...)
	o := newOperator(name, args...)
	o.supervise = supervised
	e.mu.Lock()
	e.offsets[o] = logSize(o)
	e.ops = append(e.ops, o)
	e.mu.Unlock()
	if err := o.start(); err != nil {
		e.t.Fatal(err)
	}
	return o
}

func logSize(o *operator) int64 {
	fi, err := os.Stat(o.log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logFrom is the operator's log from offset on, lower-cased.
func logFrom(o *operator, offset int64) string {
	b, err := os.ReadFile(o.log)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return strings.ToLower(string(b[offset:]))
}

func (e *resEnv) objects(i int) (*kmsv1alpha1.Key, *kmsv1alpha1.Alias, *kmsv1alpha1.Grant) {
	kn := fmt.Sprintf("k%02d", i)
	k := newKey(e.ns, kn, func(k *kmsv1alpha1.Key) {
		k.Spec.Description = "resilience " + e.name
		k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true, PeriodInDays: resRotationDays}
		k.Spec.Policy = rootPolicy
		k.Spec.Tags = map[string]string{"suite": "resilience", "set": strconv.Itoa(i)}
		k.Spec.PendingWindowInDays = 7
	})
	a := newAlias(e.ns, fmt.Sprintf("a%02d", i), e.aliasName(i), targetKey(kn))
	g := newGrant(e.ns, fmt.Sprintf("g%02d", i), func(g *kmsv1alpha1.Grant) {
		g.Spec.KeyRef = &kmsv1alpha1.LocalObjectReference{Name: kn}
		g.Spec.GranteePrincipal = grantee
		g.Spec.Operations = []kmsv1alpha1.GrantOperation{"Decrypt", "Encrypt"}
	})
	return k, a, g
}

func (e *resEnv) aliasName(i int) string { return aliasName(fmt.Sprintf("res-%s-%02d", e.name, i)) }

// createSet creates set i; an object that already exists counts as created,
// so that a retry after an API server error is harmless.
func (e *resEnv) createSet(i int) error {
	k, a, g := e.objects(i)
	for _, obj := range []client.Object{k, a, g} {
		if err := k8s.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s: %w", obj.GetName(), err)
		}
	}
	e.mu.Lock()
	e.sets = max(e.sets, i+1)
	e.mu.Unlock()
	return nil
}

func (e *resEnv) createSets(from, to int) {
	e.t.Helper()
	for i := from; i < to; i++ {
		if err := e.createSet(i); err != nil {
			e.t.Fatal(err)
		}
	}
}

// state is the namespace's objects as the API server has them.
type resState struct {
	keys    map[string]*kmsv1alpha1.Key
	aliases map[string]*kmsv1alpha1.Alias
	grants  map[string]*kmsv1alpha1.Grant
}

func (e *resEnv) list() (*resState, error) {
	ctx := context.Background()
	var keys kmsv1alpha1.KeyList
	var aliases kmsv1alpha1.AliasList
	var grants kmsv1alpha1.GrantList
	if err := errors.Join(
		k8s.List(ctx, &keys, client.InNamespace(e.ns)),
		k8s.List(ctx, &aliases, client.InNamespace(e.ns)),
		k8s.List(ctx, &grants, client.InNamespace(e.ns)),
	); err != nil {
		return nil, err
	}
	s := &resState{map[string]*kmsv1alpha1.Key{}, map[string]*kmsv1alpha1.Alias{}, map[string]*kmsv1alpha1.Grant{}}
	for i := range keys.Items {
		s.keys[keys.Items[i].Name] = &keys.Items[i]
	}
	for i := range aliases.Items {
		s.aliases[aliases.Items[i].Name] = &aliases.Items[i]
	}
	for i := range grants.Items {
		s.grants[grants.Items[i].Name] = &grants.Items[i]
	}
	return s, nil
}

// settled reports whether obj is Ready and Synced for its current generation.
func settled(obj object) (bool, string) {
	for _, typ := range []string{kmsv1alpha1.ConditionReady, kmsv1alpha1.ConditionSynced} {
		c := meta.FindStatusCondition(obj.GetConditions(), typ)
		switch {
		case c == nil:
			return false, typ + " missing"
		case c.ObservedGeneration != obj.GetGeneration():
			return false, fmt.Sprintf("%s for generation %d, not %d", typ, c.ObservedGeneration, obj.GetGeneration())
		case c.Status != metav1.ConditionTrue:
			return false, fmt.Sprintf("%s=%s %s: %s", typ, c.Status, c.Reason, c.Message)
		}
	}
	return true, ""
}

// waitSettled waits until every object of the created sets is Ready and
// Synced, and returns them.
func (e *resEnv) waitSettled(timeout time.Duration) *resState {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		s, err := e.list()
		if err == nil {
			var pending []string
			for i := range e.sets {
				k, a, g := e.objects(i)
				for _, want := range []client.Object{k, a, g} {
					var got object
					switch want.(type) {
					case *kmsv1alpha1.Key:
						if v := s.keys[want.GetName()]; v != nil {
							got = v
						}
					case *kmsv1alpha1.Alias:
						if v := s.aliases[want.GetName()]; v != nil {
							got = v
						}
					case *kmsv1alpha1.Grant:
						if v := s.grants[want.GetName()]; v != nil {
							got = v
						}
					}
					if got == nil {
						pending = append(pending, want.GetName()+": missing")
					} else if ok, why := settled(got); !ok {
						pending = append(pending, want.GetName()+": "+why)
					}
				}
			}
			if len(pending) == 0 {
				return s
			}
			last = fmt.Sprintf("%d objects not settled: %s", len(pending), strings.Join(pending[:min(len(pending), 8)], "; "))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %d object sets to be Ready and Synced; last: %s", timeout, e.sets, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// assertKMS checks KMS itself: per Key exactly one KMS key tagged with its
// UID, the one in its status, matching the spec; per Alias the alias pointing
// at its Key's key; per Key exactly one grant, the Grant's.
func (e *resEnv) assertKMS(s *resState) {
	t := e.t
	t.Helper()
	awaitLists(t)
	for i := range e.sets {
		kw, aw, gw := e.objects(i)
		k, a, g := s.keys[kw.Name], s.aliases[aw.Name], s.grants[gw.Name]
		id := k.Status.KeyID
		ids := ownedKeys(t, k.UID)
		if len(ids) != 1 || ids[0] != id {
			t.Errorf("Key %s: KMS keys tagged with its UID: %v; want exactly its status.keyID %q", k.Name, ids, id)
			continue
		}
		got := readKMS(t, id)
		switch {
		case got.key.State != kmsclient.StateEnabled:
			t.Errorf("Key %s: KMS key %s is %s, want Enabled", k.Name, id, got.key.State)
		case got.rotation == nil || !got.rotation.Enabled || got.rotation.PeriodInDays != resRotationDays:
			t.Errorf("Key %s: KMS key %s rotation %+v, want enabled every %d days", k.Name, id, got.rotation, resRotationDays)
		case got.tags["suite"] != "resilience" || got.tags["set"] != strconv.Itoa(i):
			t.Errorf("Key %s: KMS key %s tags %v, want the spec's", k.Name, id, got.tags)
		}
		if eq, err := policy.Equal(rootPolicy, got.policy); err != nil || !eq {
			t.Errorf("Key %s: KMS key %s policy %s, want the spec's (%v)", k.Name, id, got.policy, err)
		}
		if target := kmsAlias(t, aw.Spec.Name); target != id || a.Status.TargetKeyID != id {
			t.Errorf("Alias %s: %s points at %q in KMS, status.targetKeyID %q; want %s", a.Name, aw.Spec.Name, target, a.Status.TargetKeyID, id)
		}
		grants := listedGrants(t, id) // after the awaitLists above
		want := "kms-operator-" + string(g.UID)
		if len(grants) != 1 || grants[0].Name != want || grants[0].GrantID != g.Status.GrantID || g.Status.KeyID != id {
			t.Errorf("Grant %s: grants on key %s: %+v; want exactly one, named %s with id status.grantID %q (status.keyID %q)",
				g.Name, id, grants, want, g.Status.GrantID, g.Status.KeyID)
		}
	}
}

// events counts the namespace's events by reason.
func (e *resEnv) eventReasons() map[string]int {
	n := map[string]int{}
	var evs corev1.EventList
	if err := k8s.List(context.Background(), &evs, client.InNamespace(e.ns)); err == nil {
		for _, ev := range evs.Items {
			n[ev.Reason] += max(int(ev.Count), 1)
		}
	}
	return n
}

func (e *resEnv) explain() {
	if !e.t.Failed() {
		return
	}
	e.t.Logf("KMS call counts: %s", readKMSStats(e.t))
	for _, o := range e.ops {
		e.t.Logf("operator %s log (last 40 lines):\n%s", o.name, o.tail(40))
	}
}

// teardown deletes the objects while the operators run, waits until their
// finalizers released the KMS resources, then stops the operators.
func (e *resEnv) teardown() {
	t := e.t
	ctx := context.Background()
	_ = putKMSConfig("{}")
	for _, obj := range []client.Object{&kmsv1alpha1.Grant{}, &kmsv1alpha1.Alias{}, &kmsv1alpha1.Key{}} {
		if err := k8s.DeleteAllOf(ctx, obj, client.InNamespace(e.ns)); err != nil {
			t.Errorf("deleting the %T objects of %s: %v", obj, e.ns, err)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		s, err := e.list()
		if err == nil && len(s.keys)+len(s.aliases)+len(s.grants) == 0 {
			break
		}
		if time.Now().After(deadline) {
			left := ""
			if s != nil {
				left = fmt.Sprintf("%d keys, %d aliases, %d grants", len(s.keys), len(s.aliases), len(s.grants))
			}
			t.Errorf("objects of %s still there after %s: %s %v", e.ns, timeout, left, err)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, o := range e.ops {
		o.stop()
	}
	_ = k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}})
}

// ---------------------------------------------------------------- tests

// TestResilienceFaults creates object sets while KMS fails a fifth of all
// requests in one way, then checks that every object converged to exactly
// one KMS resource each, and that the operator did not loop hot.
func TestResilienceFaults(t *testing.T) {
	const m = 6
	all := func(kind string) string {
		return fmt.Sprintf(`[{"op":"*","kind":%q,"rate":0.2}]`, kind)
	}
	cases := []struct{ name, faults string }{
		{"throttle", all("throttle")},
		{"internal", all("internal")},
		{"timeout", all("timeout")},
		{"latency", `[{"op":"*","kind":"latency","latency":"300ms","rate":0.2}]`},
		{"reset", all("reset")},
		{"lost", all("lost")},
		// Lost responses to the two creating calls, half the time: neither
		// may leave a second key or grant behind.
		{"lostcreate", `[{"op":"CreateKey","kind":"lost","rate":0.5},{"op":"CreateGrant","kind":"lost","rate":0.5}]`},
	}

	// The suite's own operators resync their namespaces every few seconds,
	// and under faults their retries would count against this test's bound:
	// they pause meanwhile.
	mainOperator.stop()
	openOperator.stop()
	t.Cleanup(func() {
		for _, o := range []*operator{mainOperator, openOperator} {
			if err := o.start(); err != nil {
				t.Error(err)
			}
		}
	})
	// What other clients of the server (another run sharing it) cost.
	b0, t0 := readKMSStats(t).requests(), time.Now()
	time.Sleep(3 * time.Second)
	baseline := float64(readKMSStats(t).requests()-b0) / time.Since(t0).Seconds()
	t.Logf("baseline: %.1f KMS requests/s from other clients", baseline)

	for seed, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newResEnv(t, "f"+tc.name)
			e.operator("", false)
			setKMSConfig(t, fmt.Sprintf(`{"quotas":"none","faults":%s,"seed":%d}`, tc.faults, seed+1))
			before, start := readKMSStats(t), time.Now()
			e.createSets(0, m)
			e.waitSettled(90 * time.Second)
			converged := time.Since(start)
			ready := readKMSStats(t)
			setKMSConfig(t, "{}")

			// One resync period with the faults cleared: each object is
			// observed about once; a hot loop would show here.
			time.Sleep(4*time.Second + 500*time.Millisecond)
			after := readKMSStats(t)
			steadyFor := time.Since(start) - converged
			s := e.waitSettled(10 * time.Second)
			e.assertKMS(s)

			creation, steady := ready.minus(before), after.minus(ready)
			other := func(d time.Duration) int { return int(baseline * d.Seconds()) }
			total := after.requests() - before.requests() - other(converged+steadyFor)
			// The operator resyncs every object each period however long
			// the faults make convergence take; a hot loop is what comes on
			// top of those reads.
			resyncRate := float64(steady.requests()-other(steadyFor)) / steadyFor.Seconds()
			perSet := (float64(total) - resyncRate*converged.Seconds()) / m
			t.Logf("%s: converged in %s; %d KMS requests (%.1f per object set beyond %.1f/s of resync reads; steady %d in %s); faulted %d",
				tc.name, converged.Round(100*time.Millisecond), total, perSet, resyncRate,
				steady.requests()-other(steadyFor), steadyFor.Round(100*time.Millisecond), faulted(creation))
			t.Logf("%s: creation: %s", tc.name, creation)
			t.Logf("%s: steady: %s", tc.name, steady)
			if perSet >= 60 {
				t.Errorf("%.1f KMS requests per object set beyond the resync reads; want < 60 (a hot loop?)", perSet)
			}
			// Steady state: about 6 requests per set and resync period (Key 4,
			// Alias 1, Grant 1).
			if n := steady.requests() - other(steadyFor); n > 20*m {
				t.Errorf("%d KMS requests in the %s after convergence for %d object sets; want <= %d (a hot loop?)", n, steadyFor, m, 20*m)
			}
			if faulted(creation) == 0 {
				t.Errorf("no request was faulted: the fault injection did not work")
			}
		})
	}
}

// faulted counts the injected faults; the server counts injected throttles
// as throttled.
func faulted(s kmsStats) int {
	n := 0
	for _, c := range s {
		n += c.Faulted + c.Throttled
	}
	return n
}

// TestResilienceLeaderFailover kills the leader of two replicas in the middle
// of creating keys; the other takes over and finishes without duplicates.
func TestResilienceLeaderFailover(t *testing.T) {
	const n = 20
	e := newResEnv(t, "failover")
	// Slow CreateKey a little, so that the kill lands among the creations.
	setKMSConfig(t, `{"faults":[{"op":"CreateKey","kind":"latency","latency":"300ms","rate":1}]}`)
	le := []string{"--leader-elect", "--leader-election-namespace=" + nsSystem}
	replicas := []*operator{e.operator("-a", true, le...), e.operator("-b", true, le...)}
	const acquired = "successfully acquired lease" // client-go: "Successfully acquired lease"
	var leader, follower *operator
	eventually(t, "a replica to acquire the lease", func() (bool, string) {
		for i, o := range replicas {
			if strings.Contains(logFrom(o, e.offsets[o]), acquired) {
				leader, follower = o, replicas[1-i]
				return true, ""
			}
		}
		return false, "no replica logged " + acquired
	})
	if strings.Contains(logFrom(follower, e.offsets[follower]), acquired) {
		t.Fatalf("both replicas acquired the lease")
	}

	creates := readKMSStats(t)["CreateKey"].Requests
	e.createSets(0, n)
	eventually(t, "the leader to be creating keys", func() (bool, string) {
		done := readKMSStats(t)["CreateKey"].Requests - creates
		return done >= 5, fmt.Sprintf("%d CreateKey", done)
	})
	offL, offF := logSize(leader), logSize(follower)
	killedAt := readKMSStats(t)["CreateKey"].Requests - creates
	killed := time.Now()
	leader.kill()

	var newLeader *operator
	deadline := time.Now().Add(40 * time.Second)
	for newLeader == nil {
		if strings.Contains(logFrom(follower, offF), acquired) {
			newLeader = follower
		} else if strings.Contains(logFrom(leader, offL), acquired) {
			newLeader = leader // restarted by the supervisor, and won the race
		} else if time.Now().After(deadline) {
			t.Fatalf("no replica acquired the lease within 40s of killing the leader")
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	failover := time.Since(killed)
	s := e.waitSettled(90 * time.Second)
	converged := time.Since(killed)
	e.assertKMS(s)

	if leader.restartCount() == 0 {
		t.Errorf("the killed leader was not restarted by its supervisor")
	}
	who := "the other replica"
	if newLeader == leader {
		who = "the restarted replica"
	}
	t.Logf("killed the leader (%s) after %d of %d CreateKey; %s (%s) took over after %s; all settled %s after the kill; CreateKey total %d; events %v",
		leader.name, killedAt, n, who, newLeader.name, failover.Round(100*time.Millisecond),
		converged.Round(100*time.Millisecond), readKMSStats(t)["CreateKey"].Requests-creates, e.eventReasons())
	if failover > 25*time.Second {
		t.Errorf("failover took %s; want <= 25s (lease duration 15s + retry period)", failover)
	}
}

// TestResilienceCrashLoop kills the only replica eight times at random moments
// while object sets are being created.
func TestResilienceCrashLoop(t *testing.T) {
	const n, kills = 20, 8
	e := newResEnv(t, "crashloop")
	// Slow CreateKey a little, so that kills land between CreateKey and the
	// status write.
	setKMSConfig(t, `{"faults":[{"op":"CreateKey","kind":"latency","latency":"300ms","rate":1}]}`)
	o := e.operator("", true)
	creates := readKMSStats(t)["CreateKey"].Requests

	// Objects keep arriving during the kills.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := e.createSet(i); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(400 * time.Millisecond)
		}
	}()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, seed))
	start := time.Now()
	var at []string
	for i := range kills {
		time.Sleep(300*time.Millisecond + time.Duration(rng.Int64N(int64(1700*time.Millisecond))))
		restarts := o.restartCount()
		o.kill()
		at = append(at, time.Since(start).Round(100*time.Millisecond).String())
		deadline := time.Now().Add(10 * time.Second)
		for o.restartCount() == restarts {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the supervisor did not restart the operator", i+1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	killsDone := time.Since(start)
	s := e.waitSettled(90 * time.Second)
	e.assertKMS(s)
	t.Logf("%d kills at %v (seed %d, %d restarts); settled %s after the last kill; CreateKey %d for %d keys; events %v",
		kills, at, seed, o.restartCount(), (time.Since(start) - killsDone).Round(100*time.Millisecond),
		readKMSStats(t)["CreateKey"].Requests-creates, n, e.eventReasons())
}

// TestResilienceAPIServerRestart restarts the kube-apiserver while the
// operator works, and creates more objects once it is back.
func TestResilienceAPIServerRestart(t *testing.T) {
	const n = 10
	e := newResEnv(t, "apiserver")
	// Slow KMS down, so that reconciles are in flight across the restart.
	setKMSConfig(t, `{"faults":[{"op":"*","kind":"latency","latency":"200ms","rate":1}]}`)
	o := e.operator("", true)
	e.createSets(0, n/2)
	eventually(t, "the operator to be creating keys", func() (bool, string) {
		s, err := e.list()
		if err != nil {
			return false, err.Error()
		}
		created := 0
		for _, k := range s.keys {
			if k.Status.KeyID != "" {
				created++
			}
		}
		return created >= 2, fmt.Sprintf("%d keys created", created)
	})
	down := restartAPIServer(t)

	// Objects created once the API server is back: the operator's watches
	// must have resumed.
	for i := n / 2; i < n; i++ {
		eventually(t, fmt.Sprintf("set %d to be created", i), func() (bool, string) {
			err := e.createSet(i)
			return err == nil, fmt.Sprint(err)
		})
	}
	start := time.Now()
	s := e.waitSettled(90 * time.Second)
	e.assertKMS(s)
	t.Logf("kube-apiserver down for %s; all settled %s after it was back; operator restarts %d; events %v",
		down.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond), o.restartCount(), e.eventReasons())
}

// restartAPIServer stops the local kube-apiserver with SIGTERM and starts it
// again with hack/local-up.sh; it returns how long the API server was down.
// The API server stops listening at once but then waits up to a minute for
// open connections (watches) to end: after a grace period it gets SIGKILL, as
// a kubelet would send.
func restartAPIServer(t *testing.T) time.Duration {
	t.Helper()
	local := os.Getenv("LOCAL_DIR")
	b, err := os.ReadFile(filepath.Join(local, "pids", "kube-apiserver.pid"))
	if err != nil {
		t.Fatalf("reading the kube-apiserver pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("kube-apiserver pid %q: %v", b, err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stopping kube-apiserver (pid %d): %v", pid, err)
	}
	how := "exited"
	for alive(pid) {
		if time.Since(start) > 5*time.Second {
			how = "was killed"
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Since(start) > 20*time.Second {
			break // local-up.sh below reports what it finds
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopped := time.Since(start)
	cmd := exec.Command(filepath.Join(repo, "hack", "local-up.sh"))
	cmd.Env = append(os.Environ(), "LOCAL_DIR="+local, "BIN_DIR="+filepath.Join(repo, "bin"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/local-up.sh: %v\n%s", err, out)
	}
	t.Logf("kube-apiserver (pid %d) %s %s after SIGTERM; back %s after it", pid, how,
		stopped.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	return time.Since(start)
}

// alive reports whether process pid runs (a zombie does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// TestResilienceQuotas runs against AWS's default request quotas: the
// operator's client-side pacing must keep it under them.
func TestResilienceQuotas(t *testing.T) {
	const n = 15
	e := newResEnv(t, "quotas")
	e.operator("", false) // default --kms-quota-share 0.8
	setKMSConfig(t, `{"quotas":"aws"}`)
	before, start := readKMSStats(t), time.Now()
	e.createSets(0, n)
	e.waitSettled(90 * time.Second)
	elapsed := time.Since(start)
	d := readKMSStats(t).minus(before)
	setKMSConfig(t, "{}")
	s := e.waitSettled(10 * time.Second)
	e.assertKMS(s)

	throttled := 0
	for _, c := range d {
		throttled += c.Throttled
	}
	t.Logf("%d keys with rotation, alias and grant in %s (floor %s at 5 CreateKey/s); CreateKey %d requests, %d throttled; %d throttled in all",
		n, elapsed.Round(100*time.Millisecond), time.Duration(n)*time.Second/5, d["CreateKey"].Requests, d["CreateKey"].Throttled, throttled)
	t.Logf("counts: %s", d)
	if c := d["CreateKey"].Throttled; c > 2 {
		t.Errorf("%d CreateKey requests throttled; want <= 2: the operator's pacing should stay under the quota", c)
	}
}
