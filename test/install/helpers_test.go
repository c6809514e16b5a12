package install

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// repoRoot is the main module's root (this package is test/install).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from the test directory: %v", err)
	}
	return root
}

func path(t *testing.T, rel ...string) string {
	t.Helper()
	return filepath.Join(append([]string{repoRoot(t)}, rel...)...)
}

func readFile(t *testing.T, rel ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(path(t, rel...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs a command and returns its stdout; stderr goes into the error.
func run(cmd *exec.Cmd) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(cmd.String() + ": " + err.Error() + "\n" + stderr.String())
	}
	return stdout.Bytes(), nil
}

// objects is a rendered multi-document manifest.
type objects []*unstructured.Unstructured

func parseObjects(t *testing.T, manifest []byte) objects {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var out objects
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("splitting the manifest: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue // a document holding only comments
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			t.Fatalf("a document without kind or apiVersion:\n%s", doc)
		}
		out = append(out, u)
	}
}

func (o objects) ofKind(kind string) objects {
	var out objects
	for _, u := range o {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// one returns the only object of kind, failing the test otherwise.
func (o objects) one(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	k := o.ofKind(kind)
	if len(k) != 1 {
		t.Fatalf("want one %s, got %d: %v", kind, len(k), o.names())
	}
	return k[0]
}

func (o objects) names() []string {
	var n []string
	for _, u := range o {
		n = append(n, u.GetKind()+"/"+u.GetName())
	}
	return n
}

// into converts an unstructured object into a typed one.
func into(t *testing.T, u *unstructured.Unstructured, typed any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
		t.Fatalf("%s/%s: %v", u.GetKind(), u.GetName(), err)
	}
}

// fromFile parses a one-object YAML file of the repository into typed.
func fromFile(t *testing.T, typed any, rel ...string) {
	t.Helper()
	if err := yaml.UnmarshalStrict(readFile(t, rel...), typed); err != nil {
		t.Fatalf("%s: %v", filepath.Join(rel...), err)
	}
}

func containsAll(have []string, want ...string) []string {
	var missing []string
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

func hasPrefix(have []string, prefix string) bool {
	for _, h := range have {
		if strings.HasPrefix(h, prefix) {
			return true
		}
	}
	return false
}
