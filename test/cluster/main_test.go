//go:build cluster

// Package cluster installs the operator as users do, with the Helm chart and
// with config/default, into Pods on the local platform's node, and checks
// that the install works: probes, ServiceAccount token, samples Ready,
// metrics through the Service, leader failover, upgrade, uninstall, and the
// memory limit with 1,000 Keys. The KMS server runs in the cluster too, from
// its image. `make test-cluster` builds the images, starts the node
// (make local-up NODE=1) and runs this suite; it prints the time of each part.
package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

var (
	k8s   client.Client
	runID = fmt.Sprintf("%04x", rand.IntN(1<<16))
	// kmsNS holds the KMS server: a Deployment from its image and a Service,
	// which the operators reach by ClusterIP (the node runs no DNS) and this
	// suite from the host through kube-proxy.
	kmsNS  = "cluster-kms-" + runID
	kmsURL string
	// img is the operator image as make image tagged it (IMG).
	img string
)

// timeout bounds every wait but the 1,000 Keys.
const timeout = 90 * time.Second

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	start := time.Now()
	for _, v := range []string{"KUBECONFIG", "HELM", "IMG", "KMS_SERVER_IMG", "LOCAL_DIR"} {
		if os.Getenv(v) == "" {
			fmt.Fprintf(os.Stderr, "cluster: %s is not set: run `make test-cluster`, which builds the images and starts the node\n", v)
			return 1
		}
	}
	img = os.Getenv("IMG")
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = kmsv1alpha1.AddToScheme(scheme)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster: kubeconfig:", err)
		return 1
	}
	// Creating and cleaning up 1,000 Keys at the default 5 QPS would take minutes.
	cfg.QPS, cfg.Burst = 300, 600
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "cluster: client:", err)
		return 1
	}
	ctx := context.Background()
	t0 := time.Now()
	if err := startKMSServer(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cluster: KMS server:", err)
		deleteNamespaces(ctx, kmsNS)
		return 1
	}
	record("KMS server Pod up", time.Since(t0))
	code := m.Run()
	deleteNamespaces(ctx, kmsNS)
	record("whole suite", time.Since(start))
	printTimes()
	return code
}

// ---------------------------------------------------------------- timing

var (
	timesMu sync.Mutex
	times   []string
)

func record(part string, d time.Duration) {
	note(fmt.Sprintf("  %-84s %6.1fs", part, d.Seconds()))
}

// note adds a line (a measurement) to the summary.
func note(line string) {
	timesMu.Lock()
	defer timesMu.Unlock()
	times = append(times, line)
}

func printTimes() {
	fmt.Println("cluster: time per part")
	for _, l := range times {
		fmt.Println(l)
	}
}

// steps runs dependent steps as subtests in order, timing each; the first
// failure ends the sequence.
func steps(t *testing.T, prefix string, ss ...step) {
	for _, s := range ss {
		start := time.Now()
		ok := t.Run(s.name, s.fn)
		record(prefix+": "+s.name, time.Since(start))
		t.Logf("%s: %s took %.1fs", prefix, s.name, time.Since(start).Seconds())
		if !ok {
			return
		}
	}
}

type step struct {
	name string
	fn   func(t *testing.T)
}

// ---------------------------------------------------------------- KMS server

func startKMSServer(ctx context.Context) error {
	labels := map[string]string{"app": "kms-server"}
	nonRoot, readOnly, noEscalation := true, true, false
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kmsNS}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "kms-server", Namespace: kmsNS},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						AutomountServiceAccountToken: &noEscalation,
						Containers: []corev1.Container{{
							Name:            "kms-server",
							Image:           os.Getenv("KMS_SERVER_IMG"),
							ImagePullPolicy: corev1.PullNever,
							Ports:           []corev1.ContainerPort{{ContainerPort: 14599}},
							ReadinessProbe: &corev1.Probe{
								ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(14599)}},
								PeriodSeconds: 1,
							},
							// The same hardening as the operator's: the image
							// keeps its data in /tmp.
							SecurityContext: &corev1.SecurityContext{
								RunAsNonRoot:             &nonRoot,
								ReadOnlyRootFilesystem:   &readOnly,
								AllowPrivilegeEscalation: &noEscalation,
								Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							},
							VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
						}},
						Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
					},
				},
			},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "kms-server", Namespace: kmsNS},
			Spec: corev1.ServiceSpec{
				Selector: labels,
				Ports:    []corev1.ServicePort{{Port: 14599, TargetPort: intstr.FromInt32(14599)}},
			},
		},
	}
	for _, o := range objs {
		if err := k8s.Create(ctx, o); err != nil {
			return err
		}
	}
	svc := &corev1.Service{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: kmsNS, Name: "kms-server"}, svc); err != nil {
		return err
	}
	kmsURL = fmt.Sprintf("http://%s:14599", svc.Spec.ClusterIP)
	// Ready once kube-proxy routes the Service to a ready Pod.
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if _, last = kmsCounts(); last == nil {
			return nil
		}
	}
	return fmt.Errorf("%s not answering after %s: %w", kmsURL, timeout, last)
}

// httpClient talks to ClusterIPs from the host: never through a proxy.
var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

// kmsCounts reads the KMS server's per-operation request counts.
func kmsCounts() (map[string]int, error) {
	resp, err := httpClient.Get(kmsURL + "/_counts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /_counts: %s", resp.Status)
	}
	var counts map[string]struct {
		Requests int `json:"requests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&counts); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for op, c := range counts {
		out[op] = c.Requests
	}
	return out, nil
}

func createKeyCount(t *testing.T) int {
	t.Helper()
	c, err := kmsCounts()
	if err != nil {
		t.Fatalf("KMS counts: %v", err)
	}
	return c["CreateKey"]
}

// kmsKey is what the KMS server says about a key: its state and tags.
type kmsKey struct {
	State string
	Tags  map[string]string
}

func describeKMSKey(t *testing.T, keyID string) kmsKey {
	t.Helper()
	var desc struct {
		KeyMetadata struct{ KeyState string }
	}
	kmsCall(t, "DescribeKey", map[string]string{"KeyId": keyID}, &desc)
	var tags struct {
		Tags []struct{ TagKey, TagValue string }
	}
	kmsCall(t, "ListResourceTags", map[string]string{"KeyId": keyID}, &tags)
	k := kmsKey{State: desc.KeyMetadata.KeyState, Tags: map[string]string{}}
	for _, tag := range tags.Tags {
		k.Tags[tag.TagKey] = tag.TagValue
	}
	return k
}

// kmsCall calls the KMS API of the in-cluster server (it checks no signature).
func kmsCall(t *testing.T, op string, in, out any) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, kmsURL+"/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("KMS %s: %v", op, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("KMS %s: %s: %s", op, resp.Status, buf.String())
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		t.Fatalf("KMS %s: %v", op, err)
	}
}

// ---------------------------------------------------------------- Kubernetes

func eventually(t *testing.T, what string, d time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := check()
		if ok {
			return
		}
		last = msg
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", d, what, last)
}

func createNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatalf("namespace %s: %v", n, err)
		}
	}
}

// deleteNamespaces deletes namespaces whose operator is gone: the
// finalizers of its objects are dropped first, or the namespaces would hang
// in Terminating. It waits until they are gone.
func deleteNamespaces(ctx context.Context, names ...string) {
	for _, n := range names {
		dropFinalizers(ctx, n)
		// One call each, rather than the namespace controller's one per object.
		for _, o := range []client.Object{&kmsv1alpha1.Key{}, &kmsv1alpha1.Alias{}, &kmsv1alpha1.Grant{}} {
			_ = k8s.DeleteAllOf(ctx, o, client.InNamespace(n))
		}
		_ = k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	deadline := time.Now().Add(timeout)
	for _, n := range names {
		for time.Now().Before(deadline) {
			if err := k8s.Get(ctx, client.ObjectKey{Name: n}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
				break
			}
			dropFinalizers(ctx, n) // objects the operator was still adding
			time.Sleep(500 * time.Millisecond)
		}
	}
}

func dropFinalizers(ctx context.Context, ns string) {
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
	for _, list := range []client.ObjectList{&kmsv1alpha1.KeyList{}, &kmsv1alpha1.AliasList{}, &kmsv1alpha1.GrantList{}} {
		if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			continue
		}
		objs, _ := meta.ExtractList(list)
		work := make(chan client.Object)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for o := range work {
					_ = k8s.Patch(ctx, o, patch)
				}
			})
		}
		for _, o := range objs {
			if co := o.(client.Object); len(co.GetFinalizers()) > 0 {
				work <- co
			}
		}
		close(work)
		wg.Wait()
	}
}

// object is any of the operator's kinds: they all carry conditions.
type object interface {
	client.Object
	GetConditions() []metav1.Condition
}

// ready is whether obj is Ready for its current generation.
func ready(obj object) (bool, string) {
	c := meta.FindStatusCondition(obj.GetConditions(), kmsv1alpha1.ConditionReady)
	if c == nil || c.ObservedGeneration != obj.GetGeneration() {
		return false, "no Ready condition for the current generation"
	}
	return c.Status == metav1.ConditionTrue, fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
}

func waitReady(t *testing.T, obj object) {
	t.Helper()
	eventually(t, fmt.Sprintf("%T %s/%s Ready", obj, obj.GetNamespace(), obj.GetName()), timeout, func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		return ready(obj)
	})
}

func waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	eventually(t, obj.GetName()+" deleted", timeout, func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		return apierrors.IsNotFound(err), fmt.Sprintf("finalizers %v", obj.GetFinalizers())
	})
}

// sampleObjects are config/samples (a Key, an Alias and a Grant) as a user
// applies them into ns, the alias name made unique (alias names are global
// in a region, and both installs share the KMS server).
func sampleObjects(t *testing.T, ns string) []*unstructured.Unstructured {
	t.Helper()
	out := kubectl(t, "kustomize", filepath.Join(repoRoot(t), "config", "samples"))
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(out), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		if u.GetKind() == "Alias" {
			name, _, _ := unstructured.NestedString(u.Object, "spec", "name")
			_ = unstructured.SetNestedField(u.Object, name+"-"+ns, "spec", "name")
		}
		objs = append(objs, u)
	}
	return objs
}

// applySamples creates the samples in ns and waits until all three are Ready.
func applySamples(t *testing.T, ns string) (*kmsv1alpha1.Key, *kmsv1alpha1.Alias, *kmsv1alpha1.Grant) {
	t.Helper()
	for _, u := range sampleObjects(t, ns) {
		if err := k8s.Create(context.Background(), u); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	key := &kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-data"}}
	alias := &kmsv1alpha1.Alias{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-data"}}
	grant := &kmsv1alpha1.Grant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-data-worker"}}
	for _, o := range []object{key, alias, grant} {
		waitReady(t, o)
	}
	return key, alias, grant
}

// waitAvailable waits until the Deployment has rolled out completely: every
// replica updated, ready (its readiness probe passes) and available.
func waitAvailable(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	eventually(t, "Deployment "+ns+"/"+name+" Available", timeout, func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return false, err.Error()
		}
		want := *d.Spec.Replicas
		s := d.Status
		done := s.ObservedGeneration == d.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want &&
			s.AvailableReplicas == want && s.Replicas == want
		for _, c := range s.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status != corev1.ConditionTrue {
				done = false
			}
		}
		return done, fmt.Sprintf("%+v", s)
	})
	return d
}

// operatorPods are the Deployment's running Pods.
func operatorPods(t *testing.T, d *appsv1.Deployment) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(d.Namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	return out
}

// checkPodIdentity checks that the operator's Pods run as the ServiceAccount
// sa with a projected, Pod-bound token: in the spec, and in the token the
// kubelet mounted (read on the node).
func checkPodIdentity(t *testing.T, pods []corev1.Pod, sa string) {
	t.Helper()
	for _, p := range pods {
		if p.Spec.ServiceAccountName != sa {
			t.Errorf("Pod %s runs as ServiceAccount %q, want %q", p.Name, p.Spec.ServiceAccountName, sa)
		}
		if p.Spec.AutomountServiceAccountToken != nil && !*p.Spec.AutomountServiceAccountToken {
			t.Errorf("Pod %s does not mount a token", p.Name)
		}
		vol := ""
		for _, v := range p.Spec.Volumes {
			if v.Projected == nil {
				continue
			}
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken != nil {
					vol = v.Name
				}
			}
		}
		if vol == "" {
			t.Fatalf("Pod %s has no projected ServiceAccount token volume: %+v", p.Name, p.Spec.Volumes)
		}
		mounted := false
		for _, m := range p.Spec.Containers[0].VolumeMounts {
			mounted = mounted || (m.Name == vol && m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount")
		}
		if !mounted {
			t.Errorf("Pod %s does not mount %s at /var/run/secrets/kubernetes.io/serviceaccount", p.Name, vol)
		}
		token, err := os.ReadFile(filepath.Join(os.Getenv("LOCAL_DIR"), "node", "kubelet", "pods", string(p.UID),
			"volumes", "kubernetes.io~projected", vol, "token"))
		if err != nil {
			t.Fatalf("the token kubelet mounted for %s: %v", p.Name, err)
		}
		claims := jwtClaims(t, string(token))
		if want := "system:serviceaccount:" + p.Namespace + ":" + sa; claims.Sub != want {
			t.Errorf("Pod %s token subject %q, want %q", p.Name, claims.Sub, want)
		}
		if claims.Kubernetes.Pod.Name != p.Name {
			t.Errorf("Pod %s token is bound to Pod %q, want a token bound to the Pod", p.Name, claims.Kubernetes.Pod.Name)
		}
		t.Logf("Pod %s: ServiceAccount %s, projected token bound to the Pod, valid %s", p.Name, sa, time.Duration(claims.Exp-claims.Iat)*time.Second)
	}
}

type tokenClaims struct {
	Sub        string `json:"sub"`
	Iat        int64  `json:"iat"`
	Exp        int64  `json:"exp"`
	Kubernetes struct {
		Pod struct {
			Name string `json:"name"`
		} `json:"pod"`
	} `json:"kubernetes.io"`
}

func jwtClaims(t *testing.T, token string) tokenClaims {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("JWT claims: %v", err)
	}
	return c
}

// scrapeMetrics reads the metrics Service through its ClusterIP (kube-proxy)
// until an answer contains want: only the leader has reconciled anything, and
// the Service picks an endpoint per connection.
func scrapeMetrics(t *testing.T, ns, service, want string) {
	t.Helper()
	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: service}, svc); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s:%d/metrics", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	eventually(t, "metrics with "+want+" at "+url, timeout, func() (bool, string) {
		// A new connection each time, so that each endpoint gets its turn.
		resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}).Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(b.String(), want), resp.Status
	})
	t.Logf("scraped %s through Service %s/%s: has %s", url, ns, service, want)
}

// ---------------------------------------------------------------- commands

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func kubectl(t *testing.T, args ...string) []byte {
	t.Helper()
	return command(t, exec.Command("kubectl", args...))
}

func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	return command(t, helmCmd(t, args...))
}

// helmCmd is the built helm with its cache, config and data in a temporary
// directory, never the user's.
func helmCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(os.Getenv("HELM"), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	return cmd
}

func command(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, stderr.String())
	}
	return stdout.Bytes()
}
