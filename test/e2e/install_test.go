//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// writeOps are the KMS operations that change something.
var writeOps = []string{
	"CreateKey", "UpdateKeyDescription", "EnableKey", "DisableKey", "EnableKeyRotation", "DisableKeyRotation",
	"RotateKeyOnDemand", "PutKeyPolicy", "TagResource", "UntagResource", "ScheduleKeyDeletion", "CancelKeyDeletion",
	"CreateAlias", "UpdateAlias", "DeleteAlias", "CreateGrant", "RevokeGrant", "RetireGrant",
}

func kmsWrites(t *testing.T) int {
	t.Helper()
	n := 0
	counts := kmsCounts(t)
	for _, op := range writeOps {
		n += counts[op].Requests
	}
	return n
}

// samples reads config/samples as a user would apply them into ns, with the
// alias name made unique to this run (alias names are global in a region).
func samples(t *testing.T, ns string) []byte {
	t.Helper()
	out, err := exec.Command("kubectl", "kustomize", "../../config/samples").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/samples: %v", err)
	}
	var docs [][]byte
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
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	return bytes.Join(docs, []byte("\n---\n"))
}

func kubectl(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSamplesGitOps applies config/samples the way a GitOps tool does (server
// side, one apply for all kinds), waits with kubectl wait, re-applies the
// unchanged manifests and checks that this costs no KMS write at all.
func TestSamplesGitOps(t *testing.T) {
	explainFailure(t)
	manifests := samples(t, nsMain)
	kubectl(t, manifests, "apply", "--server-side", "--field-manager=gitops", "-f", "-")
	for _, kind := range []string{"key/app-data", "alias/app-data", "grant/app-data-worker"} {
		kubectl(t, nil, "wait", "-n", nsMain, "--for=condition=Ready", "--timeout=60s", kind)
	}

	key := &kmsv1alpha1.Key{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: nsMain, Name: "app-data"}, key); err != nil {
		t.Fatal(err)
	}
	generation, before := key.Generation, kmsWrites(t)
	for range 3 {
		kubectl(t, manifests, "apply", "--server-side", "--field-manager=gitops", "-f", "-")
	}
	time.Sleep(2 * 4 * time.Second) // two sync periods: resyncs happen, and must not write
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(key), key); err != nil {
		t.Fatal(err)
	}
	if key.Generation != generation {
		t.Errorf("re-applying unchanged manifests changed the generation %d -> %d", generation, key.Generation)
	}
	if w := kmsWrites(t) - before; w != 0 {
		t.Errorf("re-applying unchanged manifests cost %d KMS writes, want 0", w)
	}
}

// TestServerSideApply: two field managers share an object; maps and the
// operations set merge instead of one manager wiping the other's entries.
func TestServerSideApply(t *testing.T) {
	explainFailure(t)
	ctx := context.Background()
	apply := func(manager string, obj map[string]any) {
		t.Helper()
		u := &unstructured.Unstructured{Object: obj}
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(manager), client.ForceOwnership); err != nil {
			t.Fatalf("apply by %s: %v", manager, err)
		}
	}
	meta := map[string]any{"namespace": nsMain, "name": "ssa"}
	gv := kmsv1alpha1.GroupVersion.String()
	apply("team-a", map[string]any{"apiVersion": gv, "kind": "Key", "metadata": meta,
		"spec": map[string]any{"tags": map[string]any{"owner": "a"}}})
	apply("team-b", map[string]any{"apiVersion": gv, "kind": "Key", "metadata": meta,
		"spec": map[string]any{"tags": map[string]any{"cost-center": "b"}}})
	key := &kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: nsMain, Name: "ssa"}}
	waitReady(t, key)
	if key.Spec.Tags["owner"] != "a" || key.Spec.Tags["cost-center"] != "b" {
		t.Errorf("tags of two managers did not merge: %v", key.Spec.Tags)
	}
	waitKMS(t, key.Status.KeyID, "both managers' tags in KMS", func(k kmsKey) bool {
		return k.tags["owner"] == "a" && k.tags["cost-center"] == "b"
	})

	grant := func(ops ...any) map[string]any {
		return map[string]any{"apiVersion": gv, "kind": "Grant", "metadata": meta, "spec": map[string]any{
			"keyRef": map[string]any{"name": "ssa"}, "granteePrincipal": "arn:aws:iam::111122223333:role/ssa", "operations": ops}}
	}
	apply("team-a", grant("Encrypt"))
	apply("team-b", grant("Decrypt"))
	g := &kmsv1alpha1.Grant{ObjectMeta: metav1.ObjectMeta{Namespace: nsMain, Name: "ssa"}}
	waitReady(t, g)
	ops := make([]string, len(g.Spec.Operations))
	for i, o := range g.Spec.Operations {
		ops[i] = string(o)
	}
	slices.Sort(ops)
	if !slices.Equal(ops, []string{"Decrypt", "Encrypt"}) {
		t.Errorf("operations set of two managers: %v, want both", ops)
	}
}

// TestNamespaceDeletion: deleting a namespace releases everything in it in
// KMS and leaves no finalizer stuck.
func TestNamespaceDeletion(t *testing.T) {
	explainFailure(t)
	ctx := context.Background()
	ns := nsDelete
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	kubectl(t, samples(t, ns), "apply", "--server-side", "-f", "-")
	key := &kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-data"}}
	alias := &kmsv1alpha1.Alias{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-data"}}
	grant := &kmsv1alpha1.Grant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-data-worker"}}
	waitReady(t, key)
	waitReady(t, alias)
	waitReady(t, grant)

	if err := k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the namespace to be gone", func() (bool, string) {
		n := &corev1.Namespace{}
		err := k8s.Get(ctx, client.ObjectKey{Name: ns}, n)
		return apierrors.IsNotFound(err), fmt.Sprintf("phase %s, conditions %v", n.Status.Phase, n.Status.Conditions)
	})
	if k := readKMS(t, key.Status.KeyID); k.key.State != kmsclient.StatePendingDeletion {
		t.Errorf("key is %s, want PendingDeletion", k.key.State)
	}
	if _, err := kms.GetAlias(ctx, alias.Spec.Name); !kmsclient.IsNotFound(err) {
		t.Errorf("alias %s still in KMS: %v", alias.Spec.Name, err)
	}
	awaitLists(t) // ListGrants shows a revoked grant for a while
	grants, err := kms.ListGrants(ctx, key.Status.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if g.GrantID == grant.Status.GrantID {
			t.Errorf("grant %s not revoked", g.GrantID)
		}
	}
}

// TestOperatorRestart: a restarted operator re-reads everything and writes
// nothing, since nothing differs.
func TestOperatorRestart(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "restart", func(k *kmsv1alpha1.Key) {
		k.Spec.Policy = rootPolicy
		k.Spec.Rotation = &kmsv1alpha1.KeyRotation{Enabled: true}
		k.Spec.Tags = map[string]string{"a": "b"}
	})
	create(t, key)
	waitReady(t, key)
	// Other tests' objects in the namespace may still be converging (a
	// grant replaced make-before-break revokes the old grant once KMS lists
	// the new one): the restart is judged on the objects in sync before it.
	var inSync map[string]bool
	eventually(t, "Key restart to be Synced", func() (bool, string) {
		inSync = syncedObjects(t, nsMain)
		return inSync["key/"+nsMain+"/restart"], fmt.Sprintf("in sync: %v", inSync)
	})
	describes := kmsCounts(t)["DescribeKey"].Requests
	mainOperator.stop()
	offset := logSize(mainOperator)
	if err := mainOperator.start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the restarted operator to re-read the keys", func() (bool, string) {
		d := kmsCounts(t)["DescribeKey"].Requests - describes
		return d > 5, fmt.Sprintf("%d DescribeKey calls since the restart", d)
	})
	time.Sleep(4 * time.Second)
	for _, w := range restartWrites(logFrom(mainOperator, offset), inSync) {
		t.Errorf("the restart caused a KMS write: %s", w)
	}
	waitReady(t, key)
}

// syncedObjects are the objects of ns whose Synced condition is True for
// their generation, as "kind/namespace/name" (the kind lower-cased, as in
// logFrom).
func syncedObjects(t *testing.T, ns string) map[string]bool {
	t.Helper()
	synced := map[string]bool{}
	for _, kind := range []string{"Key", "Alias", "Grant", "ReplicaKey"} {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(kmsv1alpha1.GroupVersion.WithKind(kind + "List"))
		if err := k8s.List(context.Background(), l, client.InNamespace(ns)); err != nil {
			t.Fatalf("listing %ss: %v", kind, err)
		}
		for _, o := range l.Items {
			conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
			for _, c := range conds {
				c, _ := c.(map[string]any)
				if c["type"] == kmsv1alpha1.ConditionSynced && c["status"] == "True" && c["observedGeneration"] == o.GetGeneration() && o.GetDeletionTimestamp() == nil {
					synced[strings.ToLower(kind)+"/"+ns+"/"+o.GetName()] = true
				}
			}
		}
	}
	return synced
}

// restartWrites are the KMS writes in an operator's (lower-cased) log for
// objects in inSync.
func restartWrites(log string, inSync map[string]bool) []string {
	var writes []string
	for _, line := range strings.Split(log, "\n") {
		var w struct{ Msg, Namespace, Name, ControllerKind, Operation string }
		if json.Unmarshal([]byte(line), &w) != nil || w.Msg != "kms write" {
			continue
		}
		if obj := w.ControllerKind + "/" + w.Namespace + "/" + w.Name; inSync[obj] {
			writes = append(writes, w.Operation+" on "+obj)
		}
	}
	return writes
}

// TestKubectlExplain: every field is documented for kubectl explain.
func TestKubectlExplain(t *testing.T) {
	out := kubectl(t, nil, "explain", "key.spec.rotation.periodInDays")
	if !strings.Contains(out, "90 to 2560") {
		t.Errorf("kubectl explain shows no description:\n%s", out)
	}
	out = kubectl(t, nil, "get", "kms", "-n", nsMain)
	if !strings.Contains(out, "KEY ID") {
		t.Errorf("kubectl get kms lists no keys:\n%s", out)
	}
}
