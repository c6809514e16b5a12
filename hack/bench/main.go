// Command bench measures the operator against the local platform (make bench):
// time for N Keys (with rotation, policy and tags) plus an Alias and a Grant
// each to become Ready, with and without AWS's default quotas, KMS calls per
// object, steady-state calls per resync, peak RSS and CPU of the operator, and
// convergence under injected faults. It prints a table; nothing is asserted.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

const policy = `{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

type options struct {
	sets       []int // N for the no-quota create runs (Key + Alias + Grant each)
	quotaSets  int   // N for the run under AWS default quotas
	keysOnly   []int // N for the memory runs (Keys only)
	faultSets  int   // N for the run with injected faults
	replicas   int   // N of ReplicaKeys (one per multi-Region Key; multiregion.go)
	imports    int   // N of Keys with imported material, then rotated (multiregion.go)
	quotaShare string
	syncPeriod time.Duration
}

func main() {
	var o options
	var sets, keysOnly string
	flag.StringVar(&sets, "sets", "100,1000", "N of Key+Alias+Grant sets to create without quotas (comma-separated)")
	flag.IntVar(&o.quotaSets, "quota-sets", 500, "N of sets to create under AWS default quotas (0 skips)")
	flag.StringVar(&keysOnly, "keys", "1000,10000", "N of Keys for the memory and CPU runs (comma-separated; empty skips)")
	flag.IntVar(&o.faultSets, "fault-sets", 100, "N of sets to create with 20% injected faults (0 skips)")
	flag.StringVar(&o.quotaShare, "quota-share", "0.8", "operator --kms-quota-share for the run under AWS quotas")
	flag.DurationVar(&o.syncPeriod, "sync-period", 20*time.Second, "operator resync period for the steady-state measurement")
	flag.IntVar(&o.replicas, "replicas", 10, "N of ReplicaKeys to create, one per multi-Region Key (0 skips)")
	flag.IntVar(&o.imports, "imports", 10, "N of Keys with imported key material to create and then rotate (0 skips)")
	flag.Parse()
	o.sets, o.keysOnly = ints(sets), ints(keysOnly)
	b, err := newBench()
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
	kmsURL   string
	operator string
	logDir   string
	rows     []row
}

// row is one line of the results table.
type row struct {
	scenario  string
	n         int
	ready     time.Duration
	floor     time.Duration // N/5 s under quotas: CreateKey's default quota
	calls     map[string]int
	throttled int
	rssMiB    float64
	cpuSec    float64
	note      string
}

func newBench() (*bench, error) {
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
	return &bench{k8s: c, kmsURL: strings.TrimSuffix(os.Getenv("AWS_ENDPOINT_URL_KMS"), "/"),
		operator: os.Getenv("OPERATOR_BIN"), logDir: filepath.Join(os.Getenv("LOCAL_DIR"), "logs")}, nil
}

// run runs the scenarios smallest account first: a scenario's recovery scans
// cost more the more keys earlier ones left in the KMS server.
// run returns how many scenarios failed.
func (b *bench) run(ctx context.Context, o options) int {
	type scenario struct {
		name   string
		n      int
		sets   bool
		kms    map[string]any
		share  string
		steady bool
	}
	var all []scenario
	for _, n := range o.sets {
		all = append(all, scenario{"create sets, no quotas", n, true, nil, "0", true})
	}
	if o.faultSets > 0 {
		faults := map[string]any{"faults": []map[string]any{
			{"op": "*", "kind": "internal", "rate": 0.05}, {"op": "*", "kind": "throttle", "rate": 0.05},
			{"op": "*", "kind": "timeout", "rate": 0.04}, {"op": "*", "kind": "reset", "rate": 0.03},
			{"op": "*", "kind": "lost", "rate": 0.03},
		}, "seed": 7}
		all = append(all, scenario{"create sets, 20% faults", o.faultSets, true, faults, "0", false})
	}
	if o.quotaSets > 0 {
		all = append(all, scenario{"create sets, AWS quotas, share " + o.quotaShare, o.quotaSets, true, map[string]any{"quotas": "aws"}, o.quotaShare, false})
	}
	for _, n := range o.keysOnly {
		all = append(all, scenario{"create Keys only, no quotas", n, false, nil, "0", false})
	}
	failed := 0
	for _, sc := range all {
		// A scenario that fails is a result too: it is reported, and the
		// others still run.
		if err := b.scenario(ctx, sc.name, sc.n, sc.sets, sc.kms, "--kms-quota-share="+sc.share, o.syncPeriod, sc.steady); err != nil {
			b.rows = append(b.rows, row{scenario: sc.name, n: sc.n, note: "FAILED: " + err.Error()})
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

// scenario starts an operator for a fresh namespace, creates n objects (sets:
// Key+Alias+Grant, else Keys only) under the KMS server config kmsConfig, and
// records time to all Ready, calls, RSS and CPU. With steady it also measures
// the calls of idle resyncs.
func (b *bench) scenario(ctx context.Context, name string, n int, sets bool, kmsConfig map[string]any, share string, sync time.Duration, steady bool) error {
	ns := fmt.Sprintf("bench-%d-%d", n, time.Now().Unix()%100000)
	fmt.Printf("== %s, N=%d (namespace %s)\n", name, n, ns)
	if err := b.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if err := b.kmsConfig(kmsConfig); err != nil {
		return err
	}
	defer func() { _ = b.kmsConfig(nil) }()

	op, err := b.startOperator(ns, share, sync)
	if err != nil {
		return err
	}
	defer op.stop()

	before, err := b.counts()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := b.createObjects(ctx, ns, n, sets); err != nil {
		return err
	}
	if err := b.waitReady(ctx, ns, n, sets); err != nil {
		return fmt.Errorf("%s N=%d: %w (operator log: %s)", name, n, err, op.log)
	}
	r := row{scenario: name, n: n, ready: time.Since(start), calls: map[string]int{}}
	if kmsConfig["quotas"] == "aws" {
		r.floor = time.Duration(n) * time.Second / 5
	}
	after, err := b.counts()
	if err != nil {
		return err
	}
	for opName, c := range after {
		if d := c.Requests - before[opName].Requests; d > 0 {
			r.calls[opName] = d
		}
		r.throttled += c.Throttled - before[opName].Throttled
	}
	r.rssMiB, r.cpuSec = op.usage()
	b.rows = append(b.rows, r)
	fmt.Printf("  all Ready in %s; KMS calls per set: %s; throttled %d; peak RSS %.0f MiB; CPU %.1f s\n",
		r.ready.Round(100*time.Millisecond), perObject(r), r.throttled, r.rssMiB, r.cpuSec)

	if steady {
		// Idle resyncs: every object is re-read once per sync period (with
		// 10% jitter), so a window of three periods holds about three rounds.
		before, _ := b.counts()
		window := 3 * sync
		time.Sleep(window)
		after, _ := b.counts()
		s := row{scenario: "steady state, per object per resync", n: n, calls: map[string]int{}}
		rounds := float64(window) / float64(sync)
		for opName, c := range after {
			if d := c.Requests - before[opName].Requests; d > 0 {
				s.calls[opName] = int(math.Round(float64(d) / rounds))
			}
		}
		total := 0
		for _, d := range s.calls {
			total += d
		}
		perKey := float64(total) / float64(n)
		s.note = fmt.Sprintf("%.2f calls per Key+Alias+Grant per resync; %.0f per set per hour at the default 10m", perKey, perKey*6)
		s.rssMiB, s.cpuSec = op.usage()
		b.rows = append(b.rows, s)
		fmt.Printf("  steady state: %s (%s)\n", perObject(s), s.note)
	}
	return b.cleanup(ctx, ns)
}

func (b *bench) createObjects(ctx context.Context, ns string, n int, sets bool) error {
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				name := fmt.Sprintf("k%05d", i)
				objs := []client.Object{&kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
					Spec: kmsv1alpha1.KeySpec{
						Description: "bench", Policy: policy, Tags: map[string]string{"bench": ns},
						Rotation: &kmsv1alpha1.KeyRotation{Enabled: true},
					}}}
				if sets {
					objs = append(objs,
						&kmsv1alpha1.Alias{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
							Spec: kmsv1alpha1.AliasSpec{Name: "alias/" + ns + "/" + name, TargetKeyRef: &kmsv1alpha1.LocalObjectReference{Name: name}}},
						&kmsv1alpha1.Grant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
							Spec: kmsv1alpha1.GrantSpec{KeyRef: &kmsv1alpha1.LocalObjectReference{Name: name},
								GranteePrincipal: "arn:aws:iam::111122223333:role/bench", Operations: []kmsv1alpha1.GrantOperation{"Decrypt"}}})
				}
				for _, o := range objs {
					if err := b.k8s.Create(ctx, o); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for i := range n {
		select {
		case work <- i:
		case err := <-errs:
			close(work)
			return err
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// waitReady polls the lists (cheap: three LISTs a second) until every object
// is Ready for its current generation.
func (b *bench) waitReady(ctx context.Context, ns string, n int, sets bool) error {
	deadline := time.Now().Add(time.Duration(n)*time.Second + 10*time.Minute)
	for time.Now().Before(deadline) {
		ready := 0
		var keys kmsv1alpha1.KeyList
		if err := b.k8s.List(ctx, &keys, client.InNamespace(ns)); err != nil {
			return err
		}
		for i := range keys.Items {
			ready += isReady(&keys.Items[i])
		}
		want := n
		if sets {
			want = 3 * n
			var aliases kmsv1alpha1.AliasList
			var grants kmsv1alpha1.GrantList
			if err := b.k8s.List(ctx, &aliases, client.InNamespace(ns)); err != nil {
				return err
			}
			if err := b.k8s.List(ctx, &grants, client.InNamespace(ns)); err != nil {
				return err
			}
			for i := range aliases.Items {
				ready += isReady(&aliases.Items[i])
			}
			for i := range grants.Items {
				ready += isReady(&grants.Items[i])
			}
		}
		if ready == want {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("not all Ready by the deadline")
}

type conditioned interface {
	client.Object
	GetConditions() []metav1.Condition
}

func isReady(o conditioned) int {
	c := meta.FindStatusCondition(o.GetConditions(), kmsv1alpha1.ConditionReady)
	if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == o.GetGeneration() {
		return 1
	}
	return 0
}

// cleanup removes the namespace without waiting for KMS: the finalizers are
// dropped once the operator has stopped, since the bench platform is purged
// afterwards anyway.
func (b *bench) cleanup(ctx context.Context, ns string) error {
	drop := func(list client.ObjectList) error {
		if err := b.k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		return meta.EachListItem(list, func(o runtime.Object) error {
			obj := o.(client.Object)
			if len(obj.GetFinalizers()) == 0 {
				return nil
			}
			patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`))
			return client.IgnoreNotFound(b.k8s.Patch(ctx, obj, patch))
		})
	}
	if err := b.k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	for _, l := range []client.ObjectList{&kmsv1alpha1.KeyList{}, &kmsv1alpha1.AliasList{}, &kmsv1alpha1.GrantList{}} {
		if err := drop(l); err != nil {
			return err
		}
	}
	for range 120 {
		if err := b.k8s.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
			return nil
		}
		time.Sleep(time.Second)
	}
	return nil
}

type opCount struct {
	Requests  int `json:"requests"`
	Throttled int `json:"throttled"`
}

func (b *bench) counts() (map[string]opCount, error) {
	resp, err := http.Get(b.kmsURL + "/_counts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]opCount{}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// kmsConfig sets the KMS server's quotas and faults (nil clears them).
func (b *bench) kmsConfig(cfg map[string]any) error {
	if cfg == nil {
		cfg = map[string]any{}
	}
	body, _ := json.Marshal(cfg)
	req, err := http.NewRequest(http.MethodPut, b.kmsURL+"/_config", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT /_config: %s", resp.Status)
	}
	return nil
}

type operatorProc struct {
	cmd *exec.Cmd
	log string
}

func (b *bench) startOperator(ns, share string, sync time.Duration) (*operatorProc, error) {
	log := filepath.Join(b.logDir, "bench-operator-"+ns+".log")
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(b.operator, "--cluster-name=bench", "--watch-namespaces="+ns, "--sync-period="+sync.String(), share,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--zap-log-level=error")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &operatorProc{cmd: cmd, log: log}, nil
}

// usage is the operator's peak resident memory (VmHWM) and CPU time so far.
func (p *operatorProc) usage() (rssMiB, cpuSec float64) {
	pid := strconv.Itoa(p.cmd.Process.Pid)
	if status, err := os.ReadFile("/proc/" + pid + "/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				rssMiB = kb / 1024
			}
		}
	}
	if stat, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
		// Fields after the command name (which may hold spaces): utime and
		// stime are the 14th and 15th fields, in clock ticks of 1/100 s.
		rest := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		if len(rest) > 12 {
			u, _ := strconv.ParseFloat(rest[11], 64)
			s, _ := strconv.ParseFloat(rest[12], 64)
			cpuSec = (u + s) / 100
		}
	}
	return rssMiB, cpuSec
}

func (p *operatorProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

func (b *bench) print() {
	var out bytes.Buffer
	w := tabwriter.NewWriter(&out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tN\tall Ready\tvs floor N/5s\tKMS calls per set (by operation)\tthrottled\tpeak RSS\tCPU\tnote")
	for _, r := range b.rows {
		ready, ratio := "-", "-"
		if r.ready > 0 {
			ready = r.ready.Round(100 * time.Millisecond).String()
		}
		if r.floor > 0 {
			ratio = fmt.Sprintf("%.2fx of %s", r.ready.Seconds()/r.floor.Seconds(), r.floor)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%d\t%.0f MiB\t%.1f s\t%s\n", r.scenario, r.n, ready, ratio, perObject(r), r.throttled, r.rssMiB, r.cpuSec, r.note)
	}
	_ = w.Flush()
	fmt.Println()
	fmt.Print(out.String())
	_ = os.WriteFile(filepath.Join(os.Getenv("LOCAL_DIR"), "bench-results.txt"), out.Bytes(), 0o644)
}

// perObject formats the calls per set (or per Key), largest first.
func perObject(r row) string {
	ops := make([]string, 0, len(r.calls))
	for op := range r.calls {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b string) int { return r.calls[b] - r.calls[a] })
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf("%s %.2f", op, float64(r.calls[op])/float64(r.n))
	}
	return strings.Join(parts, ", ")
}
