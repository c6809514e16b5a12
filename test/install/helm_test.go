package install

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "charts/kms-operator"
	releaseName = "kms-operator" // the full name is then the release name
	releaseNS   = "kms-system"
	kubeVersion = "1.36.0" // helm built from source assumes v1.20 otherwise
)

// helm returns the helm binary: $HELM, else ./bin/helm. It is pinned (v3.22.0)
// and built by `make bin/helm`, so a missing one is a failure, not a skip.
func helm(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = path(t, "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no helm binary at %s (%v): run `make test-unit`, which builds helm into bin/ and sets HELM", bin, err)
	}
	return bin
}

// helmCmd runs helm with its cache, config and data kept in a temporary
// directory, so the tests neither read nor write the user's helm setup.
func helmCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helm(t), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	return cmd
}

func valuesFile(t *testing.T, values map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func helmTemplate(t *testing.T, values map[string]any, extra ...string) ([]byte, error) {
	t.Helper()
	args := []string{"template", releaseName, chartDir, "--namespace", releaseNS, "--kube-version", kubeVersion}
	if _, ok := values["clusterName"]; !ok {
		// The one value without a default; cases about it set it themselves.
		args = append(args, "--set", "clusterName="+minimalValues["clusterName"].(string))
	}
	if values != nil {
		args = append(args, "-f", valuesFile(t, values))
	}
	return run(helmCmd(t, append(args, extra...)...))
}

// minimalValues is what an install must set: clusterName has no default.
var minimalValues = map[string]any{"clusterName": "prod"}

// fullValues sets every value the chart offers to something other than its default.
var fullValues = map[string]any{
	"image":                       map[string]any{"repository": "registry.example.com/kms-operator", "tag": "v9.9.9", "pullPolicy": "Always"},
	"imagePullSecrets":            []any{map[string]any{"name": "regcred"}},
	"replicaCount":                2,
	"region":                      "eu-west-1",
	"kmsEndpoint":                 "https://kms-fips.eu-west-1.amazonaws.com",
	"taggingEndpoint":             "https://tagging.eu-west-1.amazonaws.com",
	"clusterName":                 "prod-eu",
	"syncPeriod":                  "5m",
	"maxConcurrentReconciles":     8,
	"watchNamespaces":             []any{"team-a", "team-b"},
	"allowAdoption":               true,
	"allowUnmanagedKeyReferences": true,
	"readKeyLastUsage":            true,
	"logLevel":                    "debug",
	"extraArgs":                   []any{"--zap-devel"},
	"extraEnv":                    []any{map[string]any{"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}},
	"serviceAccount": map[string]any{
		"annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/kms-operator"},
	},
	"resources": map[string]any{
		"requests": map[string]any{"cpu": "100m", "memory": "128Mi"},
		"limits":   map[string]any{"cpu": "2", "memory": "512Mi"},
	},
	"podAnnotations": map[string]any{"example.com/scrape": "false"},
	"nodeSelector":   map[string]any{"kubernetes.io/os": "linux"},
	"tolerations":    []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}},
	"affinity": map[string]any{"podAntiAffinity": map[string]any{"preferredDuringSchedulingIgnoredDuringExecution": []any{
		map[string]any{"weight": 100, "podAffinityTerm": map[string]any{
			"topologyKey":   "kubernetes.io/hostname",
			"labelSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "kms-operator"}},
		}},
	}}},
	"metrics": map[string]any{"serviceMonitor": map[string]any{
		"enabled": true, "interval": "15s", "labels": map[string]any{"release": "prometheus"},
	}},
}

func TestHelmLint(t *testing.T) {
	// clusterName is the one value without a default.
	for name, values := range map[string]map[string]any{"defaults": minimalValues, "full values": fullValues} {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir, "--kube-version", kubeVersion}
			if values != nil {
				args = append(args, "-f", valuesFile(t, values))
			}
			if out, err := run(helmCmd(t, args...)); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// rendered is the chart's output for one set of values.
type rendered struct {
	objects
	deploy    appsv1.Deployment
	container corev1.Container
}

func render(t *testing.T, values map[string]any) rendered {
	t.Helper()
	out, err := helmTemplate(t, values)
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{objects: parseObjects(t, out)}
	into(t, r.one(t, "Deployment"), &r.deploy)
	if c := r.deploy.Spec.Template.Spec.Containers; len(c) != 1 || c[0].Name != "manager" {
		t.Fatalf("want one container named manager, got %+v", c)
	}
	r.container = r.deploy.Spec.Template.Spec.Containers[0]
	for _, u := range r.objects {
		if u.GetKind() == "ClusterRole" || u.GetKind() == "ClusterRoleBinding" || u.GetKind() == "AWSAccount" {
			continue
		}
		if u.GetNamespace() != releaseNS {
			t.Errorf("%s/%s is in namespace %q, want the release namespace %q", u.GetKind(), u.GetName(), u.GetNamespace(), releaseNS)
		}
	}
	return r
}

func TestHelmTemplate(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		// args the Deployment must have, and flags (prefixes) it must not have.
		args, noFlags []string
		check         func(t *testing.T, r rendered)
	}{{
		name:   "defaults",
		values: minimalValues,
		args: []string{
			"--leader-elect", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
			"--cluster-name=prod", "--sync-period=10m", "--max-concurrent-reconciles=4",
			"--allow-adoption=false", "--allow-unmanaged-key-references=false", "--read-key-last-usage=false", "--zap-log-level=info",
		},
		noFlags: []string{"--region", "--kms-endpoint", "--tagging-endpoint", "--watch-namespaces"},
		check: func(t *testing.T, r rendered) {
			if got := *r.deploy.Spec.Replicas; got != 1 {
				t.Errorf("replicas = %d, want 1", got)
			}
			if got := r.container.Image; got != "ghcr.io/kmsoperator/kms-operator:v0.1.0" {
				t.Errorf("image = %s, want the chart's appVersion as tag", got)
			}
			wantResources(t, r.container, "50m", "64Mi", "1", "256Mi")
			if a := r.one(t, "ServiceAccount").GetAnnotations(); len(a) != 0 {
				t.Errorf("ServiceAccount annotations = %v, want none", a)
			}
			if len(r.ofKind("ServiceMonitor")) != 0 {
				t.Error("a ServiceMonitor is rendered though metrics.serviceMonitor.enabled is false")
			}
			r.one(t, "Service")
			if len(r.container.Env) != 1 {
				t.Errorf("env = %v, want only MEMORY_LIMIT", r.container.Env)
			}
		},
	}, {
		name:   "every value set",
		values: fullValues,
		args: []string{
			"--leader-elect", "--region=eu-west-1", "--kms-endpoint=https://kms-fips.eu-west-1.amazonaws.com",
			"--tagging-endpoint=https://tagging.eu-west-1.amazonaws.com",
			"--cluster-name=prod-eu", "--sync-period=5m", "--max-concurrent-reconciles=8",
			"--watch-namespaces=team-a,team-b", "--allow-adoption=true", "--allow-unmanaged-key-references=true", "--read-key-last-usage=true",
			"--zap-log-level=debug", "--zap-devel",
		},
		check: func(t *testing.T, r rendered) {
			if got := *r.deploy.Spec.Replicas; got != 2 {
				t.Errorf("replicas = %d, want 2", got)
			}
			if got := r.container.Image; got != "registry.example.com/kms-operator:v9.9.9" {
				t.Errorf("image = %s", got)
			}
			if r.container.ImagePullPolicy != corev1.PullAlways {
				t.Errorf("imagePullPolicy = %s", r.container.ImagePullPolicy)
			}
			pod := r.deploy.Spec.Template.Spec
			if len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != "regcred" {
				t.Errorf("imagePullSecrets = %v", pod.ImagePullSecrets)
			}
			wantResources(t, r.container, "100m", "128Mi", "2", "512Mi")
			sa := r.one(t, "ServiceAccount")
			if got := sa.GetAnnotations()["eks.amazonaws.com/role-arn"]; got != "arn:aws:iam::111122223333:role/kms-operator" {
				t.Errorf("ServiceAccount IRSA annotation = %q", got)
			}
			if len(r.container.Env) != 2 || r.container.Env[1].Name != "AWS_STS_REGIONAL_ENDPOINTS" || r.container.Env[1].Value != "regional" {
				t.Errorf("env = %v", r.container.Env)
			}
			if got := r.deploy.Spec.Template.Annotations["example.com/scrape"]; got != "false" {
				t.Errorf("pod annotation = %q", got)
			}
			if pod.NodeSelector["kubernetes.io/os"] != "linux" {
				t.Errorf("nodeSelector = %v", pod.NodeSelector)
			}
			if len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "dedicated" {
				t.Errorf("tolerations = %v", pod.Tolerations)
			}
			if pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil {
				t.Errorf("affinity = %v", pod.Affinity)
			}
			sm := r.one(t, "ServiceMonitor")
			if got := sm.GetLabels()["release"]; got != "prometheus" {
				t.Errorf("ServiceMonitor label release = %q", got)
			}
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(eps) != 1 || eps[0].(map[string]any)["interval"] != "15s" || eps[0].(map[string]any)["port"] != "metrics" {
				t.Errorf("ServiceMonitor endpoints = %v", eps)
			}
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			if !selects(sel, r.one(t, "Service").GetLabels()) {
				t.Errorf("the ServiceMonitor selector %v does not select the metrics Service %v", sel, r.one(t, "Service").GetLabels())
			}
		},
	}, {
		name:   "one replica still elects a leader",
		values: map[string]any{"replicaCount": 1, "watchNamespaces": []any{"only"}},
		args:   []string{"--leader-elect", "--watch-namespaces=only"},
	}, {
		name:    "metrics Service off",
		values:  map[string]any{"metrics": map[string]any{"enabled": false}},
		args:    []string{"--metrics-bind-address=:8080"},
		noFlags: []string{"--region"},
		check: func(t *testing.T, r rendered) {
			if n := len(r.ofKind("Service")) + len(r.ofKind("ServiceMonitor")); n != 0 {
				t.Errorf("metrics.enabled=false rendered %d Service/ServiceMonitor objects", n)
			}
		},
	}, {
		name: "AWSAccounts",
		values: map[string]any{"accounts": []any{map[string]any{"name": "payments-prod", "spec": map[string]any{
			"roleARN": "arn:aws:iam::222233334444:role/kms-operator", "externalID": "payments-prod-7f3a",
			"allowedNamespaces": map[string]any{"names": []any{"payments"}}}}}},
		check: func(t *testing.T, r rendered) {
			a := r.one(t, "AWSAccount")
			role, _, _ := unstructured.NestedString(a.Object, "spec", "roleARN")
			names, _, _ := unstructured.NestedStringSlice(a.Object, "spec", "allowedNamespaces", "names")
			if a.GetName() != "payments-prod" || a.GetNamespace() != "" || role != "arn:aws:iam::222233334444:role/kms-operator" || len(names) != 1 {
				t.Errorf("AWSAccount %s (namespace %q): roleARN %q, allowed %v", a.GetName(), a.GetNamespace(), role, names)
			}
		},
	}, {
		name:   "existing ServiceAccount",
		values: map[string]any{"serviceAccount": map[string]any{"create": false, "name": "kms-irsa"}},
		check: func(t *testing.T, r rendered) {
			if len(r.ofKind("ServiceAccount")) != 0 {
				t.Error("a ServiceAccount is rendered though serviceAccount.create is false")
			}
			if r.deploy.Spec.Template.Spec.ServiceAccountName != "kms-irsa" {
				t.Errorf("serviceAccountName = %q", r.deploy.Spec.Template.Spec.ServiceAccountName)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, tc.values)
			if missing := containsAll(r.container.Args, tc.args...); len(missing) > 0 {
				t.Errorf("Deployment args %q lack %q", r.container.Args, missing)
			}
			for _, f := range tc.noFlags {
				if hasPrefix(r.container.Args, f) {
					t.Errorf("Deployment args %q have %s", r.container.Args, f)
				}
			}
			checkFlagsOnce(t, r.container.Args)
			checkHardening(t, r.deploy)
			checkWiring(t, r)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// TestHelmTemplateRefuses checks the values the chart rejects with a message.
func TestHelmTemplateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"ServiceMonitor without Service", map[string]any{"metrics": map[string]any{"enabled": false, "serviceMonitor": map[string]any{"enabled": true}}}, "metrics.serviceMonitor.enabled needs metrics.enabled"},
		{"watchNamespaces as a string", map[string]any{"watchNamespaces": "a,b"}, "watchNamespaces must be a list"},
		{"no ServiceAccount name", map[string]any{"serviceAccount": map[string]any{"create": false}}, "serviceAccount.name is required"},
		{"empty clusterName", map[string]any{"clusterName": ""}, "clusterName is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helmTemplate(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// TestHelmRBAC: the chart grants exactly what config/rbac grants. The
// ClusterRole's rules come from files/role.yaml, a copy of config/rbac/role.yaml
// (generated from the +kubebuilder:rbac markers) that `make manifests` refreshes.
func TestHelmRBAC(t *testing.T) {
	if !bytes.Equal(readFile(t, "config", "rbac", "role.yaml"), readFile(t, chartDir, "files", "role.yaml")) {
		t.Errorf("%s/files/role.yaml differs from config/rbac/role.yaml: run `make manifests`, which copies it into the chart", chartDir)
	}
	r := render(t, minimalValues)
	var want, got rbacv1.ClusterRole
	fromFile(t, &want, "config", "rbac", "role.yaml")
	into(t, r.one(t, "ClusterRole"), &got)
	if diff := cmp.Diff(want.Rules, got.Rules); diff != "" {
		t.Errorf("the chart's ClusterRole differs from config/rbac/role.yaml (-role.yaml +chart):\n%s", diff)
	}
	var wantLE, gotLE rbacv1.Role
	fromFile(t, &wantLE, "config", "rbac", "leader_election_role.yaml")
	into(t, r.one(t, "Role"), &gotLE)
	if diff := cmp.Diff(wantLE.Rules, gotLE.Rules); diff != "" {
		t.Errorf("the chart's leader election Role differs from config/rbac/leader_election_role.yaml (-config +chart):\n%s", diff)
	}
	if n := len(r.ofKind("ClusterRole")) + len(r.ofKind("Role")); n != 2 {
		t.Errorf("want exactly one ClusterRole and one Role, got %v", r.names())
	}
}

// TestHelmCRDs: the chart's crds/ are config/crd/bases byte for byte.
func TestHelmCRDs(t *testing.T) {
	list := func(rel ...string) []string {
		m, err := filepath.Glob(filepath.Join(path(t, rel...), "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range m {
			names = append(names, filepath.Base(f))
		}
		return names
	}
	const fix = "run `make manifests`, which copies config/crd/bases/*.yaml into " + chartDir + "/crds/"
	want, got := list("config", "crd", "bases"), list(chartDir, "crds")
	if len(want) != 5 {
		t.Fatalf("config/crd/bases has %v, want the five CRDs", want)
	}
	if !slices.Equal(want, got) {
		t.Fatalf("%s/crds has %v, config/crd/bases has %v: %s", chartDir, got, want, fix)
	}
	for _, f := range want {
		if !bytes.Equal(readFile(t, "config", "crd", "bases", f), readFile(t, chartDir, "crds", f)) {
			t.Errorf("%s/crds/%s differs from config/crd/bases/%s: %s", chartDir, f, f, fix)
		}
	}

	out, err := helmTemplate(t, minimalValues, "--include-crds")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range parseObjects(t, out).ofKind("CustomResourceDefinition") {
		names = append(names, u.GetName())
	}
	slices.Sort(names)
	if want := []string{"aliases.kms.kmsoperator.io", "awsaccounts.kms.kmsoperator.io", "grants.kms.kmsoperator.io", "keys.kms.kmsoperator.io", "replicakeys.kms.kmsoperator.io"}; !slices.Equal(names, want) {
		t.Errorf("helm template --include-crds renders CRDs %v, want %v", names, want)
	}
}

func wantResources(t *testing.T, c corev1.Container, reqCPU, reqMem, limCPU, limMem string) {
	t.Helper()
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(reqCPU), corev1.ResourceMemory: resource.MustParse(reqMem)},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(limCPU), corev1.ResourceMemory: resource.MustParse(limMem)},
	}
	for _, l := range []struct{ want, got corev1.ResourceList }{{want.Requests, c.Resources.Requests}, {want.Limits, c.Resources.Limits}} {
		if len(l.got) != len(l.want) {
			t.Errorf("resources = %v, want %v", c.Resources, want)
			return
		}
		for k, v := range l.want {
			if g, ok := l.got[k]; !ok || g.Cmp(v) != 0 {
				t.Errorf("resources = %v, want %v", c.Resources, want)
				return
			}
		}
	}
}

// checkHardening: non-root, read-only root file system, no privilege
// escalation, no capabilities, RuntimeDefault seccomp.
func checkHardening(t *testing.T, d appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	memoryLimitFromDownwardAPI(t, c)
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		t.Fatalf("%s: pod securityContext %v, container securityContext %v", d.Name, psc, sc)
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	isFalse := func(b *bool) bool { return b != nil && !*b }
	if !isTrue(psc.RunAsNonRoot) {
		t.Errorf("%s: pod runAsNonRoot is not true", d.Name)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile = %v, want RuntimeDefault", d.Name, psc.SeccompProfile)
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Errorf("%s: readOnlyRootFilesystem is not true", d.Name)
	}
	if !isFalse(sc.AllowPrivilegeEscalation) {
		t.Errorf("%s: allowPrivilegeEscalation is not false", d.Name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", d.Name)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("%s: capabilities = %v, want drop [ALL]", d.Name, sc.Capabilities)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("%s: liveness or readiness probe missing", d.Name)
	}
}

// checkFlagsOnce: no operator flag is given twice (the last would win silently).
func checkFlagsOnce(t *testing.T, args []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if seen[name] {
			t.Errorf("flag %s given twice in %q", name, args)
		}
		seen[name] = true
	}
}

// checkWiring: the names and selectors that tie the objects together.
func checkWiring(t *testing.T, r rendered) {
	t.Helper()
	pod := r.deploy.Spec.Template
	if !selects(r.deploy.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("the Deployment selector %v does not select its pods %v", r.deploy.Spec.Selector.MatchLabels, pod.Labels)
	}
	sa := pod.Spec.ServiceAccountName
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		var b rbacv1.RoleBinding // same shape as a ClusterRoleBinding for subjects and roleRef
		into(t, r.one(t, kind), &b)
		if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sa || b.Subjects[0].Namespace != releaseNS {
			t.Errorf("%s subjects = %v, want the ServiceAccount %s/%s", kind, b.Subjects, releaseNS, sa)
		}
		role := map[string]string{"ClusterRoleBinding": "ClusterRole", "RoleBinding": "Role"}[kind]
		if b.RoleRef.Kind != role || b.RoleRef.Name != r.one(t, role).GetName() {
			t.Errorf("%s roleRef = %v, want the chart's %s", kind, b.RoleRef, role)
		}
	}
	if sas := r.ofKind("ServiceAccount"); len(sas) == 1 && sas[0].GetName() != sa {
		t.Errorf("the Deployment runs as %q, the chart creates ServiceAccount %q", sa, sas[0].GetName())
	}
	if svcs := r.ofKind("Service"); len(svcs) == 1 {
		var svc corev1.Service
		into(t, svcs[0], &svc)
		if !selects(svc.Spec.Selector, pod.Labels) {
			t.Errorf("the metrics Service selector %v does not select the pods %v", svc.Spec.Selector, pod.Labels)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
			t.Errorf("metrics Service ports = %v", svc.Spec.Ports)
		}
	}
	var named bool
	for _, p := range r.container.Ports {
		named = named || (p.Name == "metrics" && p.ContainerPort == 8080)
	}
	if !named {
		t.Errorf("container ports %v lack metrics:8080", r.container.Ports)
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// memoryLimitFromDownwardAPI: the container's memory limit reaches the
// operator as MEMORY_LIMIT, which sets its soft memory limit (GOMEMLIMIT).
func memoryLimitFromDownwardAPI(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == "MEMORY_LIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
			e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" {
			return
		}
	}
	t.Errorf("container %s has no MEMORY_LIMIT from limits.memory: %+v", c.Name, c.Env)
}
