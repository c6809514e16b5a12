// Command bench measures the operator against the local platform (make bench),
// with the KMS server's realistic eventual consistency on:
//   - N Keys (rotation, policy, tags): time to all Ready, Keys/s, Kubernetes API
//     writes and events per Key, KMS calls per Key, peak RSS, CPU seconds; for
//     the largest N also new work under resyncs (100 new Keys while N resync,
//     against an idle operator), a restart (KMS reads per second over one sync
//     period, Keys turning un-Ready) and the heap profile's top entries;
//   - N Key+Alias+Grant sets: calls per set and steady-state reads per object;
//   - sets under AWS's default quotas and under a raised CreateKey quota that
//     the operator learns from Service Quotas: time against the floor,
//     throttles;
//   - sets under injected faults.
//
// It prints a table; nothing is asserted.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

type options struct {
	keys         []int // N for the Keys runs at the bench's sync period
	keysDefault  int   // N for a Keys run at the default 10m sync period (0 skips)
	sets         int   // N of Key+Alias+Grant sets without quotas
	quotaSets    int   // N of sets under AWS's default quotas
	raisedSets   int   // N of sets under a raised CreateKey quota from Service Quotas
	faultSets    int   // N of sets with injected faults
	quotaShare   string
	syncPeriod   time.Duration
	newWork      int  // new Keys created while the largest N resync
	restart      bool // restart the operator with the largest N Ready
	workers      int
	replicas     int // N of ReplicaKeys (one per multi-Region Key; multiregion.go)
	imports      int // N of Keys with imported material, then rotated (multiregion.go)
	extraOperArg []string
}

func main() {
	var o options
	var keys, extra string
	flag.StringVar(&keys, "keys", "1000,10000", "N of Keys for the Keys runs (comma-separated; empty skips)")
	flag.IntVar(&o.keysDefault, "keys-default-sync", 10000, "N of Keys for a run at the default 10m sync period (0 skips)")
	flag.IntVar(&o.sets, "sets", 100, "N of Key+Alias+Grant sets without quotas (0 skips)")
	flag.IntVar(&o.quotaSets, "quota-sets", 500, "N of sets under AWS's default quotas (0 skips)")
	flag.IntVar(&o.raisedSets, "raised-sets", 200, "N of sets under a raised CreateKey quota (20/s) the operator reads from Service Quotas (0 skips)")
	flag.IntVar(&o.faultSets, "fault-sets", 100, "N of sets with 20% injected faults (0 skips)")
	flag.StringVar(&o.quotaShare, "quota-share", "1", "operator --kms-quota-share for the runs under quotas")
	flag.DurationVar(&o.syncPeriod, "sync-period", 20*time.Second, "operator resync period of the Keys and sets runs")
	flag.IntVar(&o.newWork, "new-work", 100, "new Keys created while the largest Keys run resyncs, and on an idle operator (0 skips)")
	flag.BoolVar(&o.restart, "restart", true, "restart the operator with the largest Keys run Ready")
	flag.IntVar(&o.workers, "workers", 0, "operator --max-concurrent-reconciles (0: the operator's default)")
	flag.StringVar(&extra, "operator-args", "", "more operator flags, space-separated")
	flag.IntVar(&o.replicas, "replicas", 10, "N of ReplicaKeys to create, one per multi-Region Key (0 skips)")
	flag.IntVar(&o.imports, "imports", 10, "N of Keys with imported key material to create and then rotate (0 skips)")
	flag.Parse()
	o.keys = ints(keys)
	o.extraOperArg = strings.Fields(extra)
	b, err := newBench(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if failed := b.run(context.Background(), o); failed > 0 {
		os.Exit(1)
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

type bench struct {
	k8s      client.Client
	reader   client.Reader // the informer cache, for polling
	kmsURL   string
	operator string
	logDir   string
	opts     options
	nextPort int
	rows     []row
	notes    []string
}

// row is one line of the results table.
type row struct {
	scenario  string
	n         int
	ready     time.Duration
	floor     time.Duration // N/quota under quotas
	calls     map[string]int
	throttled int
	writes    float64 // Kubernetes API writes (PATCH, PUT) per object
	events    float64 // events per object
	rssMiB    float64
	cpuSec    float64
	note      string
}

func newBench(o options) (*bench, error) {
	for _, v := range []string{"KUBECONFIG", "AWS_ENDPOINT_URL_KMS", "OPERATOR_BIN", "LOCAL_DIR"} {
		if os.Getenv(v) == "" {
			return nil, fmt.Errorf("%s is not set: run `make bench`", v)
		}
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = kmsv1alpha1.AddToScheme(scheme)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, err
	}
	// The benchmark's own writes must not be what limits the operator.
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	// Progress is read from an informer cache: listing ten thousand objects
	// from the API server four times a second made the benchmark, not the
	// operator, what kept kube-apiserver busy.
	ctrl.SetLogger(logr.Discard())
	cached, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, err
	}
	go func() { _ = cached.Start(context.Background()) }()
	return &bench{k8s: c, reader: cached, kmsURL: strings.TrimSuffix(os.Getenv("AWS_ENDPOINT_URL_KMS"), "/"), opts: o, nextPort: 18600,
		operator: os.Getenv("OPERATOR_BIN"), logDir: filepath.Join(os.Getenv("LOCAL_DIR"), "logs")}, nil
}

// run runs every scenario and returns how many failed; a failed scenario is a
// result too: it is reported and the others still run.
func (b *bench) run(ctx context.Context, o options) int {
	type scenario struct {
		name string
		run  func(context.Context) error
	}
	var all []scenario
	if o.newWork > 0 {
		all = append(all, scenario{"new Keys on an idle operator", func(ctx context.Context) error { return b.idleNewWork(ctx, o.newWork) }})
	}
	for i, n := range o.keys {
		largest := i == len(o.keys)-1
		all = append(all, scenario{fmt.Sprintf("%d Keys", n), func(ctx context.Context) error { return b.keys(ctx, n, o.syncPeriod, largest) }})
	}
	if o.keysDefault > 0 {
		all = append(all, scenario{"Keys at the default sync period", func(ctx context.Context) error { return b.keys(ctx, o.keysDefault, 10*time.Minute, false) }})
	}
	if o.sets > 0 {
		all = append(all, scenario{"sets", func(ctx context.Context) error { return b.sets(ctx, "sets, no quotas", o.sets, nil, "0", 0, true) }})
	}
	if o.quotaSets > 0 {
		all = append(all, scenario{"sets under quotas", func(ctx context.Context) error {
			return b.sets(ctx, "sets, AWS default quotas, share "+o.quotaShare, o.quotaSets, map[string]any{"quotas": "aws"}, o.quotaShare, 5, false)
		}})
	}
	if o.raisedSets > 0 {
		all = append(all, scenario{"sets under a raised quota", func(ctx context.Context) error {
			return b.sets(ctx, "sets, CreateKey quota raised to 20/s (from Service Quotas), share "+o.quotaShare, o.raisedSets,
				map[string]any{"quotas": "aws", "quota": map[string]int{"CreateKey": 20, "EnableKeyRotation": 20, "CreateAlias": 20}}, o.quotaShare, 20, false)
		}})
	}
	if o.faultSets > 0 {
		faults := map[string]any{"faults": []map[string]any{
			{"op": "*", "kind": "internal", "rate": 0.05}, {"op": "*", "kind": "throttle", "rate": 0.05},
			{"op": "*", "kind": "timeout", "rate": 0.04}, {"op": "*", "kind": "reset", "rate": 0.03},
			{"op": "*", "kind": "lost", "rate": 0.03},
		}, "seed": 7}
		all = append(all, scenario{"sets with faults", func(ctx context.Context) error {
			return b.sets(ctx, "sets, 20% injected faults", o.faultSets, faults, "0", 0, false)
		}})
	}
	failed := 0
	for _, sc := range all {
		if err := sc.run(ctx); err != nil {
			b.rows = append(b.rows, row{scenario: sc.name, note: "FAILED: " + err.Error()})
			fmt.Println("  " + err.Error())
			failed++
		}
	}
	if o.replicas > 0 {
		failed += b.extraScenario(ctx, replicaScenario, o.replicas, b.replicas(o.replicas), o.syncPeriod)
	}
	if o.imports > 0 {
		failed += b.extraScenario(ctx, importScenario, o.imports, b.imports(o.imports), o.syncPeriod)
	}
	b.print()
	return failed
}

func (b *bench) print() {
	var out bytes.Buffer
	w := tabwriter.NewWriter(&out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tN\tall Ready\tper second\tvs floor\tKMS calls per object (by operation)\tthrottled\tAPI writes/object\tevents/object\tpeak RSS\tCPU\tnote")
	for _, r := range b.rows {
		ready, rate, ratio := "-", "-", "-"
		if r.ready > 0 {
			ready = r.ready.Round(100 * time.Millisecond).String()
			rate = fmt.Sprintf("%.1f", float64(r.n)/r.ready.Seconds())
		}
		if r.floor > 0 {
			ratio = fmt.Sprintf("%.2fx of %s", r.ready.Seconds()/r.floor.Seconds(), r.floor)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%.2f\t%.2f\t%.0f MiB\t%.1f s\t%s\n", r.scenario, r.n, ready, rate, ratio, perObject(r),
			r.throttled, r.writes, r.events, r.rssMiB, r.cpuSec, r.note)
	}
	_ = w.Flush()
	for _, n := range b.notes {
		fmt.Fprintln(&out, n)
	}
	fmt.Println()
	fmt.Print(out.String())
	_ = os.WriteFile(filepath.Join(os.Getenv("LOCAL_DIR"), "bench-results.txt"), out.Bytes(), 0o644)
}

// perObject formats the calls per object, largest first.
func perObject(r row) string {
	ops := make([]string, 0, len(r.calls))
	for op := range r.calls {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, c string) int { return r.calls[c] - r.calls[a] })
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf("%s %.2f", op, float64(r.calls[op])/float64(max(r.n, 1)))
	}
	return strings.Join(parts, ", ")
}
