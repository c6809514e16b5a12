package install

import (
	"os/exec"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestKustomizeDefault renders config/default (what `make deploy` applies)
// with kubectl's built-in kustomize.
func TestKustomizeDefault(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is not on PATH (it renders config/default with `kubectl kustomize`): %v", err)
	}
	cmd := exec.Command(kubectl, "kustomize", "config/default")
	cmd.Dir = repoRoot(t)
	out, err := run(cmd)
	if err != nil {
		t.Fatal(err)
	}
	objs := parseObjects(t, out)

	const ns = "kms-operator-system"
	find := func(kind, name string) {
		t.Helper()
		for _, u := range objs.ofKind(kind) {
			if u.GetName() == name {
				return
			}
		}
		t.Errorf("config/default renders no %s %s; it renders %v", kind, name, objs.names())
	}
	find("Namespace", ns)
	find("ServiceAccount", "kms-operator-controller-manager")
	find("ClusterRole", "kms-operator-manager-role")
	find("ClusterRoleBinding", "kms-operator-manager-rolebinding")
	find("Role", "kms-operator-leader-election-role")
	find("RoleBinding", "kms-operator-leader-election-rolebinding")
	find("Service", "kms-operator-metrics")

	var crds []string
	for _, u := range objs.ofKind("CustomResourceDefinition") {
		crds = append(crds, u.GetName())
	}
	slices.Sort(crds)
	if want := []string{"aliases.kms.kmsoperator.io", "awsaccounts.kms.kmsoperator.io", "grants.kms.kmsoperator.io", "keys.kms.kmsoperator.io", "replicakeys.kms.kmsoperator.io"}; !slices.Equal(crds, want) {
		t.Errorf("CRDs = %v, want %v", crds, want)
	}
	for _, u := range objs {
		switch u.GetKind() {
		case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding":
		default:
			if u.GetNamespace() != ns {
				t.Errorf("%s/%s is in namespace %q, want %s", u.GetKind(), u.GetName(), u.GetNamespace(), ns)
			}
		}
	}

	var d appsv1.Deployment
	into(t, objs.one(t, "Deployment"), &d)
	if d.Name != "kms-operator-controller-manager" || d.Namespace != ns {
		t.Errorf("Deployment %s/%s", d.Namespace, d.Name)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	checkHardening(t, d)
	wantResources(t, c, "50m", "64Mi", "1", "256Mi")
	if d.Spec.Template.Spec.ServiceAccountName != "kms-operator-controller-manager" {
		t.Errorf("serviceAccountName = %q", d.Spec.Template.Spec.ServiceAccountName)
	}
	if missing := containsAll(c.Args, "--leader-elect", "--cluster-name=$(CLUSTER_NAME)"); len(missing) > 0 {
		t.Errorf("args %q lack %q", c.Args, missing)
	}
	checkFlagsOnce(t, c.Args)
	// The cluster name has no default: it comes from config/manager/cluster.env,
	// empty until set, and the operator refuses to start without one.
	if name := clusterName(t, objs, c); name != "" {
		t.Errorf("config/default ships cluster name %q; want none, so that clusters never share one by accident", name)
	}
}

// clusterName is the value the rendered Deployment's CLUSTER_NAME takes from
// its ConfigMap.
func clusterName(t *testing.T, objs objects, c corev1.Container) string {
	t.Helper()
	for _, e := range c.Env {
		if e.Name != "CLUSTER_NAME" || e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.ConfigMapKeyRef
		for _, u := range objs.ofKind("ConfigMap") {
			if u.GetName() == ref.Name {
				var cm corev1.ConfigMap
				into(t, u, &cm)
				if v, ok := cm.Data[ref.Key]; ok {
					return v
				}
			}
		}
		t.Fatalf("CLUSTER_NAME refers to ConfigMap %s key %s, which is not rendered", ref.Name, ref.Key)
	}
	t.Fatal("the container has no CLUSTER_NAME from a ConfigMap")
	return ""
}

// TestKustomizeKindOverlay: make test-e2e-kind cannot run without Docker, so
// its overlay is at least rendered here: the locally built image, never
// pulled, pointed at the in-cluster KMS server, watching its smoke namespace.
func TestKustomizeKindOverlay(t *testing.T) {
	cmd := exec.Command("kubectl", "kustomize", "test/e2e/kind")
	cmd.Dir = repoRoot(t)
	out, err := run(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	objs := parseObjects(t, out)
	into(t, objs.one(t, "Deployment"), &d)
	c := d.Spec.Template.Spec.Containers[0]
	if name := clusterName(t, objs, c); name != "kind-e2e" {
		t.Errorf("cluster name %q, want kind-e2e", name)
	}
	if c.Image != "kms-operator:e2e" || c.ImagePullPolicy != "Never" {
		t.Errorf("image %s pull %s, want kms-operator:e2e never pulled", c.Image, c.ImagePullPolicy)
	}
	if !slices.Contains(c.Args, "--watch-namespaces=kind-smoke") {
		t.Errorf("args %v lack --watch-namespaces=kind-smoke", c.Args)
	}
	endpoint := ""
	for _, e := range c.Env {
		if e.Name == "AWS_ENDPOINT_URL_KMS" {
			endpoint = e.Value
		}
	}
	if endpoint != "http://kms-server.kms-e2e.svc:14599" {
		t.Errorf("AWS_ENDPOINT_URL_KMS = %q, want the in-cluster KMS server", endpoint)
	}
}
