package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// namespace creates a fresh namespace for a scenario.
func (b *bench) namespace(ctx context.Context, what string) (string, error) {
	ns := fmt.Sprintf("bench-%s-%d", what, time.Now().UnixNano()%1000000)
	return ns, b.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
}

// measure is what creating n objects (sets: n Key+Alias+Grant sets) costs: time, KMS calls, API requests.
func (b *bench) measure(ctx context.Context, op *operatorProc, ns string, n int, sets bool) (row, error) {
	before, err := b.counts()
	if err != nil {
		return row{}, err
	}
	writes0, events0 := op.apiRequests()
	start := time.Now()
	if err := b.createObjects(ctx, ns, 0, n, sets); err != nil {
		return row{}, err
	}
	if err := b.waitReady(ctx, ns, n, sets); err != nil {
		return row{}, fmt.Errorf("%w (operator log: %s)", err, op.log)
	}
	r := row{n: n, ready: time.Since(start)}
	if r.calls, r.throttled, err = b.callsSince(before); err != nil {
		return row{}, err
	}
	objects := float64(n)
	if sets {
		objects *= 3
	}
	writes, events := op.apiRequests()
	r.writes, r.events = (writes-writes0)/objects, (events-events0)/objects
	r.rssMiB, r.cpuSec = op.usage()
	return r, nil
}

// keys creates n Keys and measures them; for the largest run it goes on with
// new work under resyncs, a restart and the heap profile.
func (b *bench) keys(ctx context.Context, n int, sync time.Duration, largest bool) error {
	ns, err := b.namespace(ctx, fmt.Sprintf("keys%d", n))
	if err != nil {
		return err
	}
	fresh := ns + "-new"
	if err := b.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fresh}}); err != nil {
		return err
	}
	if err := b.kmsConfig(nil); err != nil {
		return err
	}
	op, err := b.startOperator(ns+","+fresh, sync, "--kms-quota-share=0")
	if err != nil {
		return err
	}
	defer func() { op.stop() }()
	name := fmt.Sprintf("Keys, no quotas, sync %s", sync)
	fmt.Printf("== %s, N=%d\n", name, n)
	r, err := b.measure(ctx, op, ns, n, false)
	if err != nil {
		return err
	}
	r.scenario = name
	b.rows = append(b.rows, r)
	fmt.Printf("  all Ready in %s (%.1f/s); KMS calls per Key: %s; API writes %.2f, events %.2f per Key; peak RSS %.0f MiB; CPU %.1f s\n",
		r.ready.Round(100*time.Millisecond), float64(n)/r.ready.Seconds(), perObject(r), r.writes, r.events, r.rssMiB, r.cpuSec)
	if largest {
		if b.opts.newWork > 0 {
			if err := b.underResync(ctx, op, fresh, n, sync); err != nil {
				return err
			}
		}
		b.notes = append(b.notes, fmt.Sprintf("\nheap profile with %d Keys (in use, top entries):\n%s", n, op.heapTop(15)))
		if b.opts.restart {
			if op, err = b.restart(ctx, op, ns, fresh, n, sync); err != nil {
				return err
			}
		}
	}
	return b.cleanup(ctx, ns, fresh)
}

// underResync creates new Keys while n Keys resync, once resyncs are in full
// swing (one sync period after all were Ready).
func (b *bench) underResync(ctx context.Context, op *operatorProc, fresh string, n int, sync time.Duration) error {
	time.Sleep(sync)
	before, _ := b.counts()
	time.Sleep(sync)
	calls, _, _ := b.callsSince(before)
	r, err := b.measure(ctx, op, fresh, b.opts.newWork, false)
	if err != nil {
		return err
	}
	r.scenario = fmt.Sprintf("new Keys while %d Keys resync every %s", n, sync)
	r.note = fmt.Sprintf("%.2f KMS reads per Key per resync", float64(reads(calls))/float64(n))
	b.rows = append(b.rows, r)
	fmt.Printf("  %d new Keys Ready in %s while %d resync (%s)\n", b.opts.newWork, r.ready.Round(100*time.Millisecond), n, r.note)
	return nil
}

// idleNewWork is the reference for new work under resyncs: the same number of
// new Keys on an operator with nothing else to do.
func (b *bench) idleNewWork(ctx context.Context, n int) error {
	ns, err := b.namespace(ctx, "idle")
	if err != nil {
		return err
	}
	if err := b.kmsConfig(nil); err != nil {
		return err
	}
	op, err := b.startOperator(ns, b.opts.syncPeriod, "--kms-quota-share=0")
	if err != nil {
		return err
	}
	defer op.stop()
	time.Sleep(2 * time.Second) // the operator's caches
	r, err := b.measure(ctx, op, ns, n, false)
	if err != nil {
		return err
	}
	r.scenario = "new Keys on an idle operator"
	b.rows = append(b.rows, r)
	fmt.Printf("== %s: %d Ready in %s\n", r.scenario, n, r.ready.Round(100*time.Millisecond))
	return b.cleanup(ctx, ns)
}

// restart stops the operator with n Keys Ready and starts another: over one
// sync period it records the KMS reads per second (their peak and mean) and
// how many Keys turned un-Ready.
func (b *bench) restart(ctx context.Context, op *operatorProc, ns, fresh string, n int, sync time.Duration) (*operatorProc, error) {
	op.stop()
	next, err := b.startOperator(ns+","+fresh, sync, "--kms-quota-share=0")
	if err != nil {
		return op, err
	}
	start := time.Now()
	peak, total, unready := 0, 0, 0
	prev, _ := b.counts()
	for time.Since(start) < sync+sync/10 {
		time.Sleep(time.Second)
		calls, _, _ := b.callsSince(prev)
		prev, _ = b.counts()
		r := reads(calls)
		peak, total = max(peak, r), total+r
		if u := b.unready(ctx, ns); u > unready {
			unready = u
		}
	}
	rss, cpu := next.usage()
	b.rows = append(b.rows, row{scenario: fmt.Sprintf("restart with %d Ready Keys, one sync period (%s)", n, sync), n: n, rssMiB: rss, cpuSec: cpu,
		note: fmt.Sprintf("KMS reads/s: peak %d, mean %.0f (an even spread is %.0f); Keys un-Ready at once: %d",
			peak, float64(total)/time.Since(start).Seconds(), float64(4*n)/sync.Seconds(), unready)})
	fmt.Println("  " + b.rows[len(b.rows)-1].note)
	return next, nil
}

// unready counts the Keys of ns not Ready.
func (b *bench) unready(ctx context.Context, ns string) int {
	var keys kmsv1alpha1.KeyList
	if err := b.reader.List(ctx, &keys, client.UnsafeDisableDeepCopy); err != nil {
		return 0
	}
	n := 0
	for i := range keys.Items {
		if keys.Items[i].Namespace == ns && isReady(&keys.Items[i]) == 0 {
			n++
		}
	}
	return n
}

// sets creates n Key+Alias+Grant sets under the KMS server config cfg and an
// operator pacing at share; floorRate (CreateKey's quota) gives the floor.
func (b *bench) sets(ctx context.Context, name string, n int, cfg map[string]any, share string, floorRate float64, steady bool) error {
	ns, err := b.namespace(ctx, "sets")
	if err != nil {
		return err
	}
	if err := b.kmsConfig(cfg); err != nil {
		return err
	}
	defer func() { _ = b.kmsConfig(nil) }()
	op, err := b.startOperator(ns, b.opts.syncPeriod, "--kms-quota-share="+share)
	if err != nil {
		return err
	}
	defer op.stop()
	fmt.Printf("== %s, N=%d\n", name, n)
	r, err := b.measure(ctx, op, ns, n, true)
	if err != nil {
		return err
	}
	r.scenario = name
	if floorRate > 0 {
		r.floor = time.Duration(float64(n)/floorRate*1000) * time.Millisecond
	}
	b.rows = append(b.rows, r)
	fmt.Printf("  all Ready in %s; KMS calls per set: %s; throttled %d\n", r.ready.Round(100*time.Millisecond), perObject(r), r.throttled)
	if steady {
		b.steady(op, n)
	}
	return b.cleanup(ctx, ns)
}

// steady measures the reads of idle resyncs: three sync periods hold about
// three rounds.
func (b *bench) steady(op *operatorProc, n int) {
	before, _ := b.counts()
	window := 3 * b.opts.syncPeriod
	time.Sleep(window)
	calls, _, _ := b.callsSince(before)
	rounds := float64(window) / float64(b.opts.syncPeriod)
	s := row{scenario: "steady state, per set per resync", n: n, calls: map[string]int{}}
	for op, c := range calls {
		s.calls[op] = int(float64(c) / rounds)
	}
	var parts []string
	for _, op := range []string{"DescribeKey", "ListResourceTags", "GetKeyPolicy", "GetKeyRotationStatus", "ListGrants"} {
		parts = append(parts, fmt.Sprintf("%s %.2f", op, float64(s.calls[op])/float64(n)))
	}
	s.note = "Key: DescribeKey (2, one is the Alias's), ListResourceTags, GetKeyPolicy, GetKeyRotationStatus; Grant: ListGrants: " + strings.Join(parts, ", ")
	s.rssMiB, s.cpuSec = op.usage()
	b.rows = append(b.rows, s)
	fmt.Printf("  steady state: %s\n", perObject(s))
}
