//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// installRBAC applies config/rbac (the ClusterRole generated from the
// controllers' markers, its binding, the ServiceAccount and the leader
// election Role) under a per-run namespace and name prefix, exactly as
// config/default would, and returns a kubeconfig holding a token of that
// ServiceAccount. The operators of the suite run with it, not as admin, so
// the suite passing proves the role is enough.
func installRBAC(ctx context.Context, cfg *rest.Config) (string, error) {
	dir := filepath.Join(os.Getenv("LOCAL_DIR"), "e2e-rbac-"+runID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(dir, filepath.Join(repo, "config", "rbac"))
	if err != nil {
		return "", err
	}
	kustomization := fmt.Sprintf("namespace: %s\nnamePrefix: %s-\nresources:\n  - %s\n", nsSystem, prefix, rel)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		return "", err
	}
	rendered, err := exec.Command("kubectl", "kustomize", dir).Output()
	if err != nil {
		return "", fmt.Errorf("kubectl kustomize: %w", err)
	}
	apply := exec.Command("kubectl", "apply", "--server-side", "-f", "-")
	apply.Stdin = bytes.NewReader(rendered)
	if out, err := apply.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	return serviceAccountKubeconfig(ctx, cfg, nsSystem, prefix+"-controller-manager", dir)
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates with a
// token of the ServiceAccount ns/name.
func serviceAccountKubeconfig(ctx context.Context, cfg *rest.Config, ns, name, dir string) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(4 * 3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", ns, name, err)
	}
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return "", err
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["e2e"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: name}
	kc.CurrentContext = "e2e"
	path := filepath.Join(dir, name+".kubeconfig")
	return path, clientcmd.WriteToFile(*kc, path)
}

// removeRBAC deletes the run's cluster-scoped RBAC objects.
func removeRBAC(ctx context.Context) {
	for _, name := range []string{prefix + "-manager-role", prefix + "-crippled"} {
		_ = k8s.Delete(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}})
	}
	for _, name := range []string{prefix + "-manager-rolebinding", prefix + "-crippled"} {
		_ = k8s.Delete(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}})
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestLeastPrivilege shows the ClusterRole is not merely broad enough: the
// same role without the status permission for keys leaves a Key without
// status (it never becomes Ready), while KMS still has exactly one key for it.
func TestLeastPrivilege(t *testing.T) {
	explainFailure(t)
	ctx := context.Background()
	ns := "e2e-crippled-" + runID
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})

	var role rbacv1.ClusterRole
	raw, err := os.ReadFile("../../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	removed := false
	for i, r := range role.Rules {
		if j := slices.Index(r.Resources, "keys/status"); j >= 0 {
			role.Rules[i].Resources = slices.Delete(slices.Clone(r.Resources), j, j+1)
			removed = true
		}
	}
	if !removed {
		t.Fatal("config/rbac/role.yaml grants nothing on keys/status: the operator could not write Key status")
	}
	role.ObjectMeta = metav1.ObjectMeta{Name: prefix + "-crippled"}
	create(t, &role)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: nsSystem, Name: prefix + "-crippled"}}
	create(t, sa)
	create(t, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: prefix + "-crippled"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: nsSystem, Name: sa.Name}},
	})
	kubeconfig, err := serviceAccountKubeconfig(ctx, restConfig, nsSystem, sa.Name, filepath.Dir(operatorKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	crippled := newOperator("crippled", "--watch-namespaces="+ns)
	crippled.kubeconfig = kubeconfig
	if err := crippled.start(); err != nil {
		t.Fatal(err)
	}
	defer crippled.stop()

	key := newKey(ns, "no-status")
	create(t, key)
	eventually(t, "the operator to be refused writing Key status", func() (bool, string) {
		return strings.Contains(crippled.tail(200), `cannot patch resource \"keys/status\"`), "no forbidden error in the log yet"
	})
	var ids []string
	eventually(t, "the key in KMS", func() (bool, string) {
		ids = ownedKeys(t, mustGet(t, key).UID)
		return len(ids) > 0, fmt.Sprint(ids)
	})
	time.Sleep(2 * time.Second) // let it retry: no status, and still one key
	if got := mustGet(t, key); got.Status.KeyID != "" || len(got.Status.Conditions) != 0 {
		t.Errorf("status written without permission: %+v", got.Status)
	}
	awaitLists(t)
	if ids = ownedKeys(t, key.UID); len(ids) != 1 {
		t.Errorf("keys for the object: %v, want exactly one", ids)
	}
	// Deletion needs no status: the key is released and the object goes.
	remove(t, key)
	waitGone(t, key)
}

// mustGet reads obj again; obj is left holding the latest state.
func mustGet[T client.Object](t *testing.T, obj T) T {
	t.Helper()
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	return obj
}
