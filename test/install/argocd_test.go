package install

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

var kinds = []string{"Key", "ReplicaKey", "Alias", "Grant"}

// Ready=False reasons the health script calls Progressing (the operator is
// working on it or retrying) and those it calls Degraded (a person must act).
// Every Reason* constant of api/v1alpha1 must be in one of the three lists
// below, so a new reason cannot be added without deciding its health.
var (
	waitingReasons  = []string{"Updating", "WaitingForKey", "Throttled", "ReconcileError", "Propagating", "WaitingForSecret", "WaitingForReplicas"}
	terminalReasons = []string{"InvalidSpec", "InvalidKeyState", "Conflict", "AdoptionRefused", "ReferenceRefused", "NotFound", "Drifted", "AccessDenied",
		"DeletionProtected", "StillReferenced", "AccountNotAllowed", "AccountNotReady", "AccountChanged", "AssumeRoleFailed", "InUse"}
	// Terminal reasons that hold an object's deletion back: Degraded even
	// while it is being deleted.
	heldReasons = []string{"DeletionProtected", "StillReferenced", "InUse"}
	// Reasons of Ready=True or of the Synced condition only.
	otherReasons = []string{"Available", "ReconcileSuccess", "ObserveOnly"}
)

func healthScript(t *testing.T) string {
	t.Helper()
	return string(readFile(t, "config", "argocd", "health.lua"))
}

// toLua converts an unstructured value the way Argo CD hands objects to its
// health scripts: maps become tables, lists 1-based arrays, numbers numbers.
func toLua(ls *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case map[string]any:
		t := ls.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(ls, e))
		}
		return t
	case []any:
		t := ls.NewTable()
		for _, e := range v {
			t.Append(toLua(ls, e))
		}
		return t
	default:
		panic(fmt.Sprintf("toLua: unsupported %T", v))
	}
}

// health runs script on obj like Argo CD does (a global obj; the script
// returns a table with status and message), with Argo CD's libraries only.
func health(t *testing.T, script string, obj *unstructured.Unstructured) (status, message string) {
	t.Helper()
	ls := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer ls.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		ls.Push(ls.NewFunction(lib.fn))
		ls.Push(lua.LString(lib.name))
		ls.Call(1, 0)
	}
	ls.SetGlobal("obj", toLua(ls, obj.Object))
	if err := ls.DoString(script); err != nil {
		t.Fatalf("the health script fails: %v", err)
	}
	hs, ok := ls.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the health script returned %v, want a table", ls.Get(-1))
	}
	st, _ := hs.RawGetString("status").(lua.LString)
	msg, _ := hs.RawGetString("message").(lua.LString)
	return string(st), string(msg)
}

// object builds a Key/Alias/Grant from YAML (metadata and status only matter).
func object(t *testing.T, kind, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	j, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.UnmarshalJSON(fmt.Appendf(nil, `{"apiVersion":"kms.kmsoperator.io/v1alpha1","kind":%q,%s`, kind, strings.TrimPrefix(string(j), "{"))); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestArgoCDHealth(t *testing.T) {
	script := healthScript(t)
	type tc struct {
		name, obj, status, message string
	}
	cond := func(typ, status, reason, msg string, gen int) string {
		return fmt.Sprintf("{type: %s, status: %q, reason: %s, message: %q, observedGeneration: %d, lastTransitionTime: '2026-11-27T08:50:00Z'}", typ, status, reason, msg, gen)
	}
	tests := []tc{
		{"no status", "metadata: {name: a, generation: 1}", "Progressing", "Waiting for the operator to report status"},
		{"status without observedGeneration", "metadata: {name: a, generation: 1}\nstatus: {conditions: [" + cond("Ready", "True", "Available", "ok", 1) + "]}",
			"Progressing", "Waiting for the operator to observe generation 1"},
		{"generation not observed yet", "metadata: {name: a, generation: 3}\nstatus: {observedGeneration: 2, conditions: [" + cond("Ready", "True", "Available", "ok", 2) + "]}",
			"Progressing", "Waiting for the operator to observe generation 3"},
		{"no Ready condition", "metadata: {name: a, generation: 2}\nstatus: {observedGeneration: 2, conditions: [" + cond("Synced", "True", "ReconcileSuccess", "", 2) + "]}",
			"Progressing", "Waiting for the Ready condition"},
		{"Ready condition behind", "metadata: {name: a, generation: 2}\nstatus: {observedGeneration: 2, conditions: [" + cond("Ready", "True", "Available", "ok", 1) + "]}",
			"Progressing", "Ready condition describes generation 1, not 2"},
		{"ready", "metadata: {name: a, generation: 2}\nstatus: {observedGeneration: 2, conditions: [" + cond("Ready", "True", "Available", "the KMS key matches the spec", 2) + ", " + cond("Synced", "True", "ReconcileSuccess", "", 2) + "]}",
			"Healthy", "Available: the KMS key matches the spec"},
		{"ready without a message", "metadata: {name: a, generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Ready, status: 'True', reason: Available, observedGeneration: 1}]}",
			"Healthy", "Available"},
		{"ready, last sync throttled", "metadata: {name: a, generation: 2}\nstatus: {observedGeneration: 2, conditions: [" + cond("Synced", "False", "Throttled", "slow down", 2) + ", " + cond("Ready", "True", "Available", "ok", 2) + "]}",
			"Healthy", "Available: ok (last sync failed, retrying: Throttled: slow down)"},
		{"ready in Observe mode", "metadata: {name: a, generation: 1}\nstatus: {observedGeneration: 1, conditions: [" + cond("Ready", "True", "Available", "the KMS key matches the spec", 1) + ", " + cond("Synced", "True", "ObserveOnly", "read only", 1) + "]}",
			"Healthy", "Available: the KMS key matches the spec"},
		{"Ready Unknown", "metadata: {name: a, generation: 1}\nstatus: {observedGeneration: 1, conditions: [" + cond("Ready", "Unknown", "Updating", "", 1) + "]}",
			"Progressing", "Updating"},
		{"terminal reason of an older generation", "metadata: {name: a, generation: 2}\nstatus: {observedGeneration: 1, conditions: [" + cond("Ready", "False", "InvalidSpec", "bad", 1) + "]}",
			"Progressing", "Waiting for the operator to observe generation 2"},
		{"a reason this script does not know", "metadata: {name: a, generation: 1}\nstatus: {observedGeneration: 1, conditions: [" + cond("Ready", "False", "SomethingNew", "?", 1) + "]}",
			"Degraded", "SomethingNew: ?"},
		{"being deleted", "metadata: {name: a, generation: 2, deletionTimestamp: '2026-11-27T09:00:00Z'}\nstatus: {observedGeneration: 2, conditions: [" + cond("Ready", "True", "Available", "ok", 2) + "]}",
			"Progressing", "Being deleted: the operator is cleaning up the KMS resource"},
		{"being deleted, waiting for KMS", "metadata: {name: a, generation: 2, deletionTimestamp: '2026-11-27T09:00:00Z'}\nstatus: {observedGeneration: 2, conditions: [" + cond("Ready", "False", "Propagating", "wait", 2) + "]}",
			"Progressing", "Being deleted: the operator is cleaning up the KMS resource"},
		{"deletion held for an older generation", "metadata: {name: a, generation: 3, deletionTimestamp: '2026-11-27T09:00:00Z'}\nstatus: {observedGeneration: 2, conditions: [" + cond("Ready", "False", "DeletionProtected", "used", 2) + "]}",
			"Progressing", "Being deleted: the operator is cleaning up the KMS resource"},
	}
	for _, r := range heldReasons {
		tests = append(tests, tc{"deletion held: " + r, "metadata: {name: a, generation: 2, deletionTimestamp: '2026-11-27T09:00:00Z'}\nstatus: {observedGeneration: 2, conditions: [" + cond("Ready", "False", r, "msg of "+r, 2) + "]}",
			"Degraded", "Deletion held: " + r + ": msg of " + r})
	}
	for _, r := range waitingReasons {
		tests = append(tests, tc{"Ready=False " + r, "metadata: {name: a, generation: 4}\nstatus: {observedGeneration: 4, conditions: [" + cond("Ready", "False", r, "msg of "+r, 4) + "]}",
			"Progressing", r + ": msg of " + r})
	}
	for _, r := range terminalReasons {
		tests = append(tests, tc{"Ready=False " + r, "metadata: {name: a, generation: 4}\nstatus: {observedGeneration: 4, conditions: [" + cond("Ready", "False", r, "msg of "+r, 4) + "]}",
			"Degraded", r + ": msg of " + r})
	}
	for _, kind := range kinds {
		for _, tc := range tests {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				status, message := health(t, script, object(t, kind, tc.obj))
				if status != tc.status || message != tc.message {
					t.Errorf("health = %s %q, want %s %q", status, message, tc.status, tc.message)
				}
			})
		}
	}
}

// TestArgoCDHealthCoversReasons: every condition reason of the API is sorted
// into waiting, terminal or other above (and so exercised by TestArgoCDHealth).
func TestArgoCDHealthCoversReasons(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), path(t, "api", "v1alpha1", "common_types.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if strings.HasPrefix(name.Name, "Reason") && i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					reasons = append(reasons, v)
				}
			}
		}
		return true
	})
	if len(reasons) < 10 {
		t.Fatalf("found only %d Reason constants in api/v1alpha1/common_types.go", len(reasons))
	}
	known := slices.Concat(waitingReasons, terminalReasons, otherReasons)
	for _, r := range reasons {
		if !slices.Contains(known, r) {
			t.Errorf("reason %s (api/v1alpha1/common_types.go) is not classified: decide whether Ready=False with it is Progressing (add it to `waiting` in config/argocd/health.lua, docs/argocd-health.md and waitingReasons here) or Degraded (terminalReasons here)", r)
		}
	}
	// And no reason is classified that no controller can set.
	for _, r := range slices.Concat(waitingReasons, terminalReasons) {
		if !slices.Contains(reasons, r) {
			t.Errorf("reason %s is classified here but not a Reason constant in api/v1alpha1/common_types.go: remove it from the script, the docs and this test", r)
		}
	}
	// The script's own list of waiting reasons is the test's.
	m := regexp.MustCompile(`(?s)local waiting = \{(.*?)\n\}`).FindStringSubmatch(healthScript(t))
	if m == nil {
		t.Fatal("config/argocd/health.lua has no `local waiting = {...}` table")
	}
	var inScript []string
	for _, e := range regexp.MustCompile(`(\w+) = true`).FindAllStringSubmatch(m[1], -1) {
		inScript = append(inScript, e[1])
	}
	if !sameSet(inScript, waitingReasons) {
		t.Errorf("the script's waiting reasons %v differ from the test's %v", inScript, waitingReasons)
	}
	m = regexp.MustCompile(`(?s)local held = \{(.*?)\n\}`).FindStringSubmatch(healthScript(t))
	if m == nil {
		t.Fatal("config/argocd/health.lua has no `local held = {...}` table")
	}
	inScript = nil
	for _, e := range regexp.MustCompile(`(\w+) = true`).FindAllStringSubmatch(m[1], -1) {
		inScript = append(inScript, e[1])
	}
	if !sameSet(inScript, heldReasons) {
		t.Errorf("the script's held reasons %v differ from the test's %v", inScript, heldReasons)
	}
}

// TestArgoCDHealthDoc: the argocd-cm snippet in docs/argocd-health.md is valid
// YAML and holds config/argocd/health.lua, unchanged, for each of the four kinds.
func TestArgoCDHealthDoc(t *testing.T) {
	doc := string(readFile(t, "docs", "argocd-health.md"))
	var snippet string
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		if strings.Contains(block[1], "name: argocd-cm") {
			snippet = block[1]
			break
		}
	}
	if snippet == "" {
		t.Fatal("docs/argocd-health.md has no ```yaml block with the argocd-cm ConfigMap")
	}
	var cm struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   map[string]any    `json:"metadata"`
		Data       map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict([]byte(snippet), &cm); err != nil {
		t.Fatalf("the argocd-cm snippet is not valid YAML: %v", err)
	}
	if cm.Kind != "ConfigMap" || cm.Metadata["name"] != "argocd-cm" {
		t.Errorf("the snippet is a %s named %v, want the ConfigMap argocd-cm", cm.Kind, cm.Metadata["name"])
	}
	script := healthScript(t)
	for _, kind := range kinds {
		key := "resource.customizations.health.kms.kmsoperator.io_" + kind
		got, ok := cm.Data[key]
		if !ok {
			t.Errorf("the snippet has no %s", key)
			continue
		}
		if got != script {
			t.Errorf("%s in docs/argocd-health.md differs from config/argocd/health.lua; paste the script again (indented by four spaces)", key)
		}
	}
	if len(cm.Data) != len(kinds) {
		t.Errorf("the snippet has %d keys, want %d", len(cm.Data), len(kinds))
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
