//go:build e2e

// Package e2e runs the operator binary against a real kube-apiserver and a
// KMS-compatible server: `make test-e2e` starts the local platform and runs
// this suite. Any cluster reachable by KUBECONFIG and any KMS endpoint in
// AWS_ENDPOINT_URL_KMS will do.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// The suite's operators. Flags differ per operator, so each watches its own
// namespaces: nsMain and nsOther get the defaults (adoption and unmanaged
// references off); nsOpen gets both flags on.
var (
	k8s         client.Client
	kms         kmsclient.API
	kmsProvider kmsclient.Provider
	runID       = fmt.Sprintf("%04x", rand.IntN(1<<16))
	nsMain      = "e2e-main-" + runID
	nsOther     = "e2e-other-" + runID
	nsOpen      = "e2e-open-" + runID
	// nsDelete is created and deleted by TestNamespaceDeletion.
	nsDelete = "e2e-nsdel-" + runID
	// nsSystem holds the operators' ServiceAccount and leader election lease.
	nsSystem = "e2e-system-" + runID
	prefix   = "e2e-" + runID

	// realAWS: make test-aws runs the suite against a real AWS account
	// (E2E_REAL_AWS=1), with a cluster name of its own for the run.
	realAWS     = os.Getenv("E2E_REAL_AWS") == "1"
	clusterName = map[bool]string{false: "e2e", true: "e2e-aws-" + runID}[realAWS]

	restConfig         *rest.Config
	operatorKubeconfig string

	mainOperator, openOperator *operator
)

const (
	// syncPeriod is short so that drift tests see corrections quickly.
	syncPeriod = "4s"
	timeout    = 60 * time.Second
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	required := []string{"KUBECONFIG", "AWS_ENDPOINT_URL_KMS", "OPERATOR_BIN", "LOCAL_DIR"}
	if realAWS {
		required = []string{"KUBECONFIG", "OPERATOR_BIN", "LOCAL_DIR"}
	}
	for _, v := range required {
		if os.Getenv(v) == "" {
			fmt.Fprintf(os.Stderr, "e2e: %s is not set: run `make test-e2e`, which starts the local platform\n", v)
			return 1
		}
	}
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = kmsv1alpha1.AddToScheme(scheme)
	cfg, err := ctrl.GetConfig()
	restConfig = cfg
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: kubeconfig:", err)
		return 1
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: client:", err)
		return 1
	}
	kmsProvider, err = kmsclient.NewProvider(ctx, kmsclient.ProviderOptions{AppID: "kms-operator-e2e"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: kms:", err)
		return 1
	}
	if kms, err = kmsProvider.For("", ""); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: kms:", err)
		return 1
	}
	for _, ns := range []string{nsMain, nsOther, nsOpen, nsSystem} {
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: namespace:", err)
			return 1
		}
	}
	for _, role := range longLivedRoles {
		if realAWS {
			break
		}
		if err := registerPrincipal("arn:aws:iam::111122223333:role/"+role, "24h"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	if operatorKubeconfig, err = installRBAC(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: rbac:", err)
		return 1
	}
	mainOperator = newOperator("main", "--watch-namespaces="+nsMain+","+nsOther+","+nsDelete)
	openOperator = newOperator("open", "--watch-namespaces="+nsOpen, "--allow-adoption", "--allow-unmanaged-key-references")
	for _, o := range []*operator{mainOperator, openOperator} {
		if err := o.start(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	code := m.Run()
	if realAWS {
		defer cleanupAWS(ctx)
	}
	cleanup(ctx)
	mainOperator.stop()
	openOperator.stop()
	_ = k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsSystem}})
	removeRBAC(ctx)
	return code
}

// cleanup deletes the run's namespaces while the operators still run, so the
// finalizers release KMS resources as they would for a user.
func cleanup(ctx context.Context) {
	for _, ns := range []string{nsMain, nsOther, nsOpen, "e2e-crippled-" + runID} {
		_ = k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	deadline := time.Now().Add(timeout)
	for _, ns := range []string{nsMain, nsOther, nsOpen} {
		for time.Now().Before(deadline) {
			if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// operator is one operator process, started from the built binary so that a
// test can kill it as a crash would.
type operator struct {
	name string
	args []string
	log  string
	// kubeconfig the operator runs with: the ServiceAccount's by default.
	kubeconfig string
	// supervise restarts the process about restartDelay after it exits for
	// any reason but stop(), as a kubelet restarts a crashed container: kill()
	// then causes an automatic restart.
	supervise bool

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when cmd has exited.
	exited chan struct{}
	// stopped is set by stop(): the supervisor leaves the process down.
	stopped bool
	// restarts counts the supervisor's restarts.
	restarts int
}

// restartDelay is how long a supervised operator stays down after an exit.
const restartDelay = 500 * time.Millisecond

func newOperator(name string, args ...string) *operator {
	args = append([]string{
		"--sync-period=" + syncPeriod,
		"--cluster-name=" + clusterName,
		// Lags of the realistic KMS server are a few seconds; a restart after a
		// lost CreateKey then waits this long, not the 5 minutes of real AWS.
		"--kms-consistency-window=15s",
		"--metrics-bind-address=127.0.0.1:0", // port 0: concurrent runs never collide
		"--health-probe-bind-address=127.0.0.1:0",
	}, args...)
	return &operator{name: name, args: args, kubeconfig: operatorKubeconfig, log: filepath.Join(os.Getenv("LOCAL_DIR"), "logs", "e2e-operator-"+name+".log")}
}

func (o *operator) start() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopped = false
	return o.startLocked()
}

func (o *operator) startLocked() error {
	f, err := os.OpenFile(o.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(os.Getenv("OPERATOR_BIN"), o.args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+o.kubeconfig)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start operator %s: %w", o.name, err)
	}
	o.cmd = cmd
	exited := make(chan struct{})
	o.exited = exited
	go func() {
		_ = cmd.Wait()
		close(exited)
		if o.supervise {
			o.restartAfterExit(cmd)
		}
	}()
	return nil
}

// restartAfterExit starts the process again after restartDelay, unless stop()
// was called or another process was started meanwhile.
func (o *operator) restartAfterExit(cmd *exec.Cmd) {
	time.Sleep(restartDelay)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped || o.cmd != cmd {
		return
	}
	if err := o.startLocked(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: restarting operator %s: %v\n", o.name, err)
		return
	}
	o.restarts++
}

// restartCount is how many times the supervisor restarted the operator.
func (o *operator) restartCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.restarts
}

// kill ends the operator with SIGKILL: no cleanup, like a crash or OOM kill.
func (o *operator) kill() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd != nil && o.cmd.Process != nil {
		_ = o.cmd.Process.Signal(syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
	}
}

func (o *operator) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopped = true
	if o.cmd != nil && o.cmd.Process != nil {
		_ = o.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-o.exited:
		case <-time.After(10 * time.Second):
			_ = o.cmd.Process.Kill()
		}
	}
}

// tail returns the operator log's last lines, for failure reports.
func (o *operator) tail(n int) string {
	f, err := os.Open(o.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// explainFailure prints what a red run needs to explain itself: the
// operators' logs and the KMS server's call counts.
func explainFailure(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		counts, _ := json.Marshal(kmsCounts(t))
		t.Logf("KMS call counts: %s", counts)
		for _, o := range []*operator{mainOperator, openOperator} {
			t.Logf("operator %s log (last 40 lines):\n%s", o.name, o.tail(40))
		}
	})
}

// opCount is the local KMS server's count of one operation.
type opCount struct {
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
}

// kmsCounts reads the KMS server's per-operation request counts.
func kmsCounts(t *testing.T) map[string]opCount {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(os.Getenv("AWS_ENDPOINT_URL_KMS"), "/") + "/_counts")
	if err != nil {
		t.Fatalf("reading KMS counts: %v", err)
	}
	defer resp.Body.Close()
	counts := map[string]opCount{}
	if err := json.NewDecoder(resp.Body).Decode(&counts); err != nil {
		t.Fatalf("decoding KMS counts: %v", err)
	}
	return counts
}

// eventually polls check until it returns true or the timeout passes.
func eventually(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := check()
		if ok {
			return
		}
		last = msg
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

// object is any of the suite's kinds: they all carry conditions.
type object interface {
	client.Object
	GetConditions() []metav1.Condition
}

// conditionOf returns the condition of type typ, once it describes the
// object's current generation.
func conditionOf(obj object, typ string) *metav1.Condition {
	c := meta.FindStatusCondition(obj.GetConditions(), typ)
	if c == nil || c.ObservedGeneration != obj.GetGeneration() {
		return nil
	}
	return c
}

// waitCondition waits until obj's condition typ has status and, when given,
// reason; obj is left holding the latest state.
func waitCondition(t *testing.T, obj object, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s %s to be %s=%s %s", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), typ, status, reason), func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		c := conditionOf(obj, typ)
		if c == nil {
			return false, "no condition for the current generation"
		}
		return c.Status == status && (reason == "" || c.Reason == reason), fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	})
}

func waitReady(t *testing.T, obj object) {
	t.Helper()
	waitCondition(t, obj, kmsv1alpha1.ConditionReady, metav1.ConditionTrue, "")
}

// waitGone waits until obj no longer exists (its finalizer was released).
func waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	eventually(t, obj.GetName()+" to be deleted", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		return apierrors.IsNotFound(err), fmt.Sprintf("finalizers %v", obj.GetFinalizers())
	})
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

// update re-reads obj, applies mutate and writes it, retrying on conflicts.
func update[T client.Object](t *testing.T, obj T, mutate func(T)) {
	t.Helper()
	eventually(t, "update of "+obj.GetName(), func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		mutate(obj)
		err := k8s.Update(context.Background(), obj)
		return err == nil, fmt.Sprint(err)
	})
}

func remove(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Delete(context.Background(), obj); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting %s: %v", obj.GetName(), err)
	}
}
