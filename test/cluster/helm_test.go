//go:build cluster

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

const (
	leaseName = "kms-operator.kms.kmsoperator.io"
	// loadKeys is how many Keys the memory limit must hold.
	loadKeys = 1000
)

// TestHelm installs the chart with two replicas, then takes it through a
// leader failover, an upgrade, 1,000 Keys and an uninstall.
func TestHelm(t *testing.T) {
	ctx := context.Background()
	release := "kms-" + runID
	ns := "cluster-helm-" + runID
	// The operator watches nsA; the upgrade adds nsB.
	nsA, nsB := "cluster-a-"+runID, "cluster-b-"+runID
	fullname := release + "-kms-operator"
	// helm -f splits at commas, which subtest names (and so their
	// TempDirs) may contain.
	valuesDir := t.TempDir()
	createNamespaces(t, nsA, nsB)
	installed := false
	t.Cleanup(func() {
		start := time.Now()
		if installed {
			_ = helmCmd(t, "uninstall", release, "-n", ns, "--wait", "--timeout", "60s").Run()
		}
		deleteNamespaces(ctx, nsA, nsB, ns)
		record("helm: clean-up (namespaces with 1,000 Keys)", time.Since(start))
	})

	var (
		deploy     *appsv1.Deployment
		sample     *kmsv1alpha1.Key
		kept       *kmsv1alpha1.Key
		failoverID string
	)
	steps(t, "helm",
		step{"install: Deployment Available, runs as its ServiceAccount", func(t *testing.T) {
			helm(t, "install", release, filepath.Join(repoRoot(t), "charts", "kms-operator"), "-n", ns, "--create-namespace",
				"-f", helmValues(t, valuesDir, "10m", nsA), "--wait", "--timeout", "2m")
			installed = true
			deploy = waitAvailable(t, ns, fullname)
			pods := operatorPods(t, deploy)
			if len(pods) != 2 {
				t.Fatalf("want 2 operator Pods, got %d", len(pods))
			}
			checkPodIdentity(t, pods, fullname)
		}},
		step{"samples Ready against the KMS server", func(t *testing.T) {
			before := createKeyCount(t)
			sample, _, _ = applySamples(t, nsA)
			kept = &kmsv1alpha1.Key{
				ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "kept"},
				Spec:       kmsv1alpha1.KeySpec{Description: "outlives its object", DeletionPolicy: kmsv1alpha1.DeletionPolicyRetain},
			}
			if err := k8s.Create(ctx, kept); err != nil {
				t.Fatal(err)
			}
			waitReady(t, kept)
			if n := createKeyCount(t) - before; n != 2 {
				t.Errorf("CreateKey called %d times for 2 Keys", n)
			}
		}},
		step{"metrics through the metrics Service", func(t *testing.T) {
			scrapeMetrics(t, ns, fullname+"-metrics", `kms_operator_kms_requests_total{account="",operation="CreateKey",region="us-east-1",result="success"}`)
		}},
		step{"leader Pod deleted: handover within the lease, nothing created twice", func(t *testing.T) {
			old, lease := leader(t, ns)
			before := createKeyCount(t)
			// Keys in flight while the leader goes.
			const n = 20
			createKeys(t, nsA, "failover", n)
			start := time.Now()
			if err := k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: old}}); err != nil {
				t.Fatal(err)
			}
			var next string
			var handover time.Duration
			eventually(t, "a new leader", timeout, func() (bool, string) {
				l := &coordinationv1.Lease{}
				if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, l); err != nil {
					return false, err.Error()
				}
				next, _, _ = strings.Cut(ptrValue(l.Spec.HolderIdentity), "_")
				handover = time.Since(start)
				return next != "" && next != old, "holder " + next
			})
			t.Logf("leader failover: Pod %s deleted, %s leads after %.1fs (lease duration %ds)", old, next, handover.Seconds(), lease)
			note(fmt.Sprintf("    leader failover: new leader %.1fs after the Pod's deletion (lease %ds)", handover.Seconds(), lease))
			if handover > time.Duration(lease)*time.Second {
				t.Errorf("handover took %s, more than the lease duration %ds", handover, lease)
			}
			ids := waitKeysReady(t, nsA, "failover-", n, timeout)
			if got := createKeyCount(t) - before; got != n {
				t.Errorf("CreateKey called %d times for %d Keys across the failover", got, n)
			}
			if distinct := len(slices.Compact(slices.Sorted(slices.Values(ids)))); distinct != n {
				t.Errorf("%d distinct KMS keys for %d Keys", distinct, n)
			}
			failoverID = ids[0]
			deploy = waitAvailable(t, ns, fullname)
		}},
		step{"upgrade: sync period and namespaces change, the Deployment rolls, objects stay Ready", func(t *testing.T) {
			gen := deploy.Generation
			oldPods := map[string]bool{}
			for _, p := range operatorPods(t, deploy) {
				oldPods[p.Name] = true
			}
			before := createKeyCount(t)
			stop := watchReady(t, sample, kept)
			helm(t, "upgrade", release, filepath.Join(repoRoot(t), "charts", "kms-operator"), "-n", ns,
				"-f", helmValues(t, valuesDir, "5m", nsA, nsB), "--wait", "--timeout", "2m")
			deploy = waitAvailable(t, ns, fullname)
			// --wait returns once the new Pods are ready; the old ones may
			// still be terminating.
			eventually(t, "the old Pods gone", timeout, func() (bool, string) {
				for _, p := range operatorPods(t, deploy) {
					if oldPods[p.Name] {
						return false, p.Name
					}
				}
				return true, ""
			})
			if deploy.Generation == gen {
				t.Errorf("the Deployment was not changed (generation %d)", gen)
			}
			for _, p := range operatorPods(t, deploy) {
				args := strings.Join(p.Spec.Containers[0].Args, " ")
				for _, want := range []string{"--sync-period=5m", "--watch-namespaces=" + nsA + "," + nsB} {
					if !strings.Contains(args, want) {
						t.Errorf("Pod %s args %q lack %s", p.Name, args, want)
					}
				}
			}
			if notReady := stop(); len(notReady) > 0 {
				t.Errorf("objects not Ready during the upgrade: %v", notReady)
			}
			// The new namespace is watched.
			key := &kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "after-upgrade"}}
			if err := k8s.Create(ctx, key); err != nil {
				t.Fatal(err)
			}
			waitReady(t, key)
			if n := createKeyCount(t) - before; n != 1 {
				t.Errorf("CreateKey called %d times across the upgrade and one new Key", n)
			}
		}},
		step{fmt.Sprintf("%d Keys within the memory limit", loadKeys), func(t *testing.T) {
			before := createKeyCount(t)
			start := time.Now()
			createKeys(t, nsB, "load", loadKeys)
			waitKeysReady(t, nsB, "load-", loadKeys, 6*time.Minute)
			took := time.Since(start)
			if n := createKeyCount(t) - before; n != loadKeys {
				t.Errorf("CreateKey called %d times for %d Keys", n, loadKeys)
			}
			limit := deploy.Spec.Template.Spec.Containers[0].Resources.Limits.Memory()
			lead, _ := leader(t, ns)
			for _, p := range operatorPods(t, deploy) {
				peak, rss := memoryOf(t, p, "manager")
				role := "standby"
				if p.Name == lead {
					role = "leader"
				}
				t.Logf("%d Keys Ready in %.1fs (%.0f/s); Pod %s (%s): cgroup peak %.1f MiB of its %s limit, process peak RSS %.1f MiB",
					loadKeys, took.Seconds(), float64(loadKeys)/took.Seconds(), p.Name, role, mib(peak), limit, mib(rss))
				note(fmt.Sprintf("    %d Keys Ready in %.1fs; %s Pod: cgroup peak %.1f MiB of its %s limit, process peak RSS %.1f MiB",
					loadKeys, took.Seconds(), role, mib(peak), limit, mib(rss)))
				if peak >= limit.Value() {
					t.Errorf("Pod %s peaked at %.1f MiB, at its limit %s", p.Name, mib(peak), limit)
				}
				for _, s := range p.Status.ContainerStatuses {
					if s.RestartCount > 0 {
						t.Errorf("Pod %s container %s restarted %d times (last: %+v)", p.Name, s.Name, s.RestartCount, s.LastTerminationState.Terminated)
					}
				}
			}
		}},
		step{"uninstall: keys as their deletion policies say, CRDs stay", func(t *testing.T) {
			deleted, retained := sample.Status.KeyID, kept.Status.KeyID
			// Deletion policies act on the objects deleted while the operator runs.
			for _, u := range sampleObjects(t, nsA) {
				if err := k8s.Delete(ctx, u); err != nil {
					t.Fatal(err)
				}
				waitGone(t, u)
			}
			if err := k8s.Delete(ctx, kept); err != nil {
				t.Fatal(err)
			}
			waitGone(t, kept)
			if k := describeKMSKey(t, deleted); k.State != "PendingDeletion" {
				t.Errorf("key %s of the deleted Key (deletionPolicy Delete) is %s, want PendingDeletion", deleted, k.State)
			}
			k := describeKMSKey(t, retained)
			if k.State != "Enabled" {
				t.Errorf("key %s of the deleted Key (deletionPolicy Retain) is %s, want Enabled", retained, k.State)
			}
			for tag := range k.Tags {
				if strings.HasPrefix(tag, "kms.kmsoperator.io/") {
					t.Errorf("retained key %s still has the ownership tag %s", retained, tag)
				}
			}

			helm(t, "uninstall", release, "-n", ns, "--wait", "--timeout", "60s")
			installed = false
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fullname}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
				t.Errorf("the Deployment is still there after helm uninstall: %v", err)
			}
			for _, crd := range []string{"keys", "aliases", "grants"} {
				u := &unstructured.Unstructured{}
				u.SetAPIVersion("apiextensions.k8s.io/v1")
				u.SetKind("CustomResourceDefinition")
				if err := k8s.Get(ctx, client.ObjectKey{Name: crd + ".kms.kmsoperator.io"}, u); err != nil {
					t.Errorf("CRD %s.kms.kmsoperator.io after helm uninstall: %v", crd, err)
				}
			}
			// Objects left behind keep their keys: no operator, no deletion.
			if k := describeKMSKey(t, failoverID); k.State != "Enabled" || k.Tags["kms.kmsoperator.io/owner-namespace"] != nsA {
				t.Errorf("key %s of a Key left in place is %s with tags %v, want Enabled and still owned", failoverID, k.State, k.Tags)
			}
		}},
	)
}

// helmValues writes the chart values for this platform: the built image
// (never pulled), the in-cluster KMS server, static credentials, and no
// pacing (the KMS server has no quotas).
func helmValues(t *testing.T, dir, syncPeriod string, namespaces ...string) string {
	t.Helper()
	repo, tag := img, "latest"
	if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
		repo, tag = img[:i], img[i+1:]
	}
	values := map[string]any{
		"image":           map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"replicaCount":    2,
		"region":          "us-east-1",
		"kmsEndpoint":     kmsURL,
		"taggingEndpoint": kmsURL,
		"clusterName":     "cluster-" + runID,
		"syncPeriod":      syncPeriod,
		"watchNamespaces": namespaces,
		// The KMS server's lags are seconds, not AWS's minutes: a CreateKey
		// cut off by the leader's deletion is settled after 20 s of
		// --kms-consistency-window instead of the default 5 minutes.
		"extraArgs": []string{"--kms-quota-share=0", "--kms-consistency-window=20s"},
		"extraEnv": []map[string]string{
			{"name": "AWS_ACCESS_KEY_ID", "value": "local"},
			{"name": "AWS_SECRET_ACCESS_KEY", "value": "local"},
			{"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
			// Service Quotas has no flag: the SDK's variable reaches it.
			{"name": "AWS_ENDPOINT_URL_SERVICE_QUOTAS", "value": kmsURL},
		},
	}
	b, err := json.Marshal(values) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "values-"+syncPeriod+".yaml")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// leader is the Pod holding the leader lease in ns, and the lease's duration.
func leader(t *testing.T, ns string) (string, int32) {
	t.Helper()
	var pod string
	var duration int32
	eventually(t, "a leader in "+ns, timeout, func() (bool, string) {
		l := &coordinationv1.Lease{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: leaseName}, l); err != nil {
			return false, err.Error()
		}
		pod, _, _ = strings.Cut(ptrValue(l.Spec.HolderIdentity), "_")
		duration = ptrValue(l.Spec.LeaseDurationSeconds)
		return pod != "", "no holder"
	})
	return pod, duration
}

// createKeys creates n Keys named prefix-0000... in ns, 16 at a time.
func createKeys(t *testing.T, ns, prefix string, n int) []string {
	t.Helper()
	names := make([]string, n)
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				key := &kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names[i]}}
				if err := k8s.Create(context.Background(), key); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		names[i] = fmt.Sprintf("%s-%04d", prefix, i)
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creating Keys: %v", err)
	}
	return names
}

// waitKeysReady waits until n Keys named prefix* in ns are Ready and returns
// their KMS key ids.
func waitKeysReady(t *testing.T, ns, prefix string, n int, d time.Duration) []string {
	t.Helper()
	var ids []string
	lastLog := time.Now()
	eventually(t, fmt.Sprintf("%d Keys %s* Ready", n, prefix), d, func() (bool, string) {
		list := &kmsv1alpha1.KeyList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		ids = ids[:0]
		var waiting []string
		for i := range list.Items {
			k := &list.Items[i]
			if !strings.HasPrefix(k.Name, prefix) {
				continue
			}
			if ok, why := ready(k); ok {
				ids = append(ids, k.Status.KeyID)
			} else if len(waiting) < 3 {
				if c := meta.FindStatusCondition(k.Status.Conditions, kmsv1alpha1.ConditionSynced); c != nil {
					why += fmt.Sprintf("; Synced %s %s: %s", c.Status, c.Reason, c.Message)
				}
				waiting = append(waiting, k.Name+": "+why)
			}
		}
		if time.Since(lastLog) > 15*time.Second {
			t.Logf("%d of %d Keys Ready; waiting: %v", len(ids), n, waiting)
			lastLog = time.Now()
		}
		return len(ids) == n, fmt.Sprintf("%d of %d Ready; waiting: %v", len(ids), n, waiting)
	})
	return ids
}

// watchReady polls objs until the returned stop is called, which returns
// every moment one was seen not Ready.
func watchReady(t *testing.T, objs ...object) (stop func() []string) {
	t.Helper()
	done := make(chan struct{})
	var notReady []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for _, o := range objs {
				o := o.DeepCopyObject().(object)
				if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
					notReady = append(notReady, o.GetName()+": "+err.Error())
				} else if ok, msg := ready(o); !ok {
					notReady = append(notReady, o.GetName()+": "+msg)
				}
			}
			select {
			case <-done:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	})
	return func() []string {
		close(done)
		wg.Wait()
		return notReady
	}
}

// memoryOf reads a container's memory from its cgroup on the node: the peak
// the limit is enforced against (cgroup v1: memory.max_usage_in_bytes; v2:
// memory.peak), and the peak RSS of its process (VmHWM, which counts the
// binary's pages too: the bench measures that).
func memoryOf(t *testing.T, p corev1.Pod, container string) (peak, rss int64) {
	t.Helper()
	id := ""
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == container {
			_, id, _ = strings.Cut(s.ContainerID, "://")
		}
	}
	if id == "" {
		t.Fatalf("Pod %s has no running container %s", p.Name, container)
	}
	dir := []string{"kubepods"}
	if qos := strings.ToLower(string(p.Status.QOSClass)); qos != "guaranteed" {
		dir = append(dir, qos)
	}
	dir = append(dir, "pod"+string(p.UID), id)
	root, peakFile := "/sys/fs/cgroup", "memory.peak"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		root, peakFile = filepath.Join(root, "memory"), "memory.max_usage_in_bytes"
	}
	cgroup := filepath.Join(append([]string{root}, dir...)...)
	read := func(f string) string {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("memory of Pod %s: %v", p.Name, err)
		}
		return string(b)
	}
	peak, err := strconv.ParseInt(strings.TrimSpace(read(filepath.Join(cgroup, peakFile))), 10, 64)
	if err != nil {
		t.Fatalf("memory of Pod %s: %v", p.Name, err)
	}
	pid, _, _ := strings.Cut(read(filepath.Join(cgroup, "cgroup.procs")), "\n")
	for _, l := range strings.Split(read(filepath.Join("/proc", pid, "status")), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return peak, rss
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
