//go:build cluster

package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// TestKustomize installs config/default as `make deploy` does (kubectl
// kustomize, then a server-side apply), pointed at the built image and the
// in-cluster KMS server.
func TestKustomize(t *testing.T) {
	ctx := context.Background()
	const (
		system     = "kms-operator-system"
		deployment = "kms-operator-controller-manager"
	)
	ns := "cluster-kustomize-" + runID
	createNamespaces(t, ns)
	manifest := filepath.Join(t.TempDir(), "install.yaml")
	applied := false
	t.Cleanup(func() {
		if applied {
			_ = exec.Command("kubectl", "delete", "--ignore-not-found", "--wait=false", "-f", manifest).Run()
		}
		deleteNamespaces(ctx, ns, system)
	})

	steps(t, "kustomize",
		step{"apply config/default: Deployment Available, runs as its ServiceAccount", func(t *testing.T) {
			writeInstall(t, manifest, ns)
			kubectl(t, "apply", "--server-side", "--force-conflicts", "-f", manifest)
			applied = true
			d := waitAvailable(t, system, deployment)
			checkPodIdentity(t, operatorPods(t, d), deployment)
		}},
		step{"samples Ready, metrics through the metrics Service", func(t *testing.T) {
			applySamples(t, ns)
			scrapeMetrics(t, system, "kms-operator-metrics", `kms_operator_kms_requests_total{account="",operation="CreateKey",region="us-east-1",result="success"}`)
		}},
		step{"delete: the samples' keys released, the install removed", func(t *testing.T) {
			objs := sampleObjects(t, ns)
			var keyID string
			for _, u := range objs {
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
					t.Fatal(err)
				}
				if u.GetKind() == "Key" {
					keyID, _, _ = unstructured.NestedString(u.Object, "status", "keyID")
				}
				if err := k8s.Delete(ctx, u); err != nil {
					t.Fatal(err)
				}
			}
			for _, u := range objs {
				waitGone(t, u)
			}
			if k := describeKMSKey(t, keyID); k.State != "PendingDeletion" {
				t.Errorf("key %s of the deleted sample Key is %s, want PendingDeletion", keyID, k.State)
			}
			kubectl(t, "delete", "--wait=false", "-f", manifest)
			applied = false
		}},
	)
}

// writeInstall renders config/default into file without the CRDs (local-up
// installed them, and deleting them would delete every Key), the Deployment
// patched for this platform: the built image, never pulled; the in-cluster
// KMS server; static credentials; watching ns only; no pacing.
func writeInstall(t *testing.T, file, ns string) {
	t.Helper()
	out := kubectl(t, "kustomize", filepath.Join(repoRoot(t), "config", "default"))
	var docs []string
	for _, doc := range strings.Split(string(out), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		switch u.GetKind() {
		case "CustomResourceDefinition":
			continue
		case "Deployment":
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
				t.Fatal(err)
			}
			c := &d.Spec.Template.Spec.Containers[0]
			c.Image, c.ImagePullPolicy = img, corev1.PullNever
			c.Args = append(c.Args, "--kms-endpoint="+kmsURL, "--tagging-endpoint="+kmsURL, "--cluster-name=cluster-"+runID+"-kustomize",
				"--watch-namespaces="+ns, "--kms-quota-share=0", "--kms-consistency-window=20s")
			c.Env = append(c.Env,
				corev1.EnvVar{Name: "AWS_ACCESS_KEY_ID", Value: "local"},
				corev1.EnvVar{Name: "AWS_SECRET_ACCESS_KEY", Value: "local"},
				corev1.EnvVar{Name: "AWS_EC2_METADATA_DISABLED", Value: "true"},
				corev1.EnvVar{Name: "AWS_ENDPOINT_URL_SERVICE_QUOTAS", Value: kmsURL})
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
			if err != nil {
				t.Fatal(err)
			}
			delete(m, "status")
			u.Object = m
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	if !slices.ContainsFunc(docs, func(d string) bool { return strings.Contains(d, "kind: Deployment") }) {
		t.Fatalf("config/default has no Deployment:\n%s", out)
	}
	if err := os.WriteFile(file, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}
