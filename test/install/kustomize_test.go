package install

import (
	"os/exec"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
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
	if want := []string{"aliases.kms.kmsoperator.io", "grants.kms.kmsoperator.io", "keys.kms.kmsoperator.io"}; !slices.Equal(crds, want) {
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
	if missing := containsAll(c.Args, "--leader-elect"); len(missing) > 0 {
		t.Errorf("args %q lack %q", c.Args, missing)
	}
	checkFlagsOnce(t, c.Args)
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
	into(t, parseObjects(t, out).one(t, "Deployment"), &d)
	c := d.Spec.Template.Spec.Containers[0]
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
