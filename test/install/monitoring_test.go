package install

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The metrics the dashboard and the alerts are written for, by type. Some are
// the operator's own (internal/kmsclient, controllers/metrics.go), the rest
// controller-runtime's.
var operatorMetrics = map[string]string{
	"kms_operator_kms_requests_total":            "counter",
	"kms_operator_kms_request_duration_seconds":  "histogram",
	"kms_operator_kms_ratelimit_wait_seconds":    "histogram",
	"kms_operator_kms_quota_requests_per_second": "gauge",
	"kms_operator_reconcile_outcomes_total":      "counter",
	"kms_operator_objects":                       "gauge",
	"kms_operator_keys":                          "gauge",
	"kms_operator_account_ready":                 "gauge",
	"controller_runtime_reconcile_total":         "counter",
	"controller_runtime_reconcile_time_seconds":  "histogram",
	"workqueue_depth":                            "gauge",
	"workqueue_queue_duration_seconds":           "histogram",
}

const dashboardFile = "charts/kms-operator/dashboards/kms-operator.json"

// promtool returns $PROMTOOL, else ./bin/promtool. It is built from the
// pinned hack/prometheus module by `make bin/promtool`, so a missing one is a
// failure, not a skip.
func promtool(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PROMTOOL")
	if bin == "" {
		bin = path(t, "bin", "promtool")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no promtool at %s (%v): run `make test-unit`, which builds it into bin/ and sets PROMTOOL", bin, err)
	}
	return bin
}

// runPromtool runs promtool in dir, failing the test with its output.
func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestHelmLintMonitoring lints the chart with the dashboard and the alerts on.
func TestHelmLintMonitoring(t *testing.T) {
	values := valuesFile(t, map[string]any{
		"clusterName":    "prod",
		"grafana":        map[string]any{"dashboard": map[string]any{"enabled": true}},
		"prometheusRule": map[string]any{"enabled": true},
	})
	if out, err := run(helmCmd(t, "lint", "--strict", chartDir, "--kube-version", kubeVersion, "-f", values)); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

func TestGrafanaDashboardConfigMap(t *testing.T) {
	dashboard := string(readFile(t, dashboardFile))
	tests := []struct {
		name, reason string
		values       map[string]any
		// want is the ConfigMap's namespace, labels and annotations; nil: no ConfigMap.
		want *configMapWant
	}{{
		name:   "off by default",
		reason: "a cluster without Grafana's sidecar has no use for it",
		values: minimalValues,
	}, {
		name:   "enabled",
		reason: "the label Grafana's sidecar selects on by default, in the release namespace",
		values: map[string]any{"grafana": map[string]any{"dashboard": map[string]any{"enabled": true}}},
		want:   &configMapWant{namespace: releaseNS, labels: map[string]string{"grafana_dashboard": "1", "app.kubernetes.io/name": "kms-operator"}},
	}, {
		name:   "labels annotations and namespace",
		reason: "a sidecar that watches Grafana's namespace and files dashboards in folders by annotation",
		values: map[string]any{"grafana": map[string]any{"dashboard": map[string]any{
			"enabled": true, "namespace": "monitoring",
			"labels":      map[string]any{"team": "platform"},
			"annotations": map[string]any{"grafana_folder": "KMS"},
		}}},
		want: &configMapWant{namespace: "monitoring",
			labels:      map[string]string{"grafana_dashboard": "1", "team": "platform"},
			annotations: map[string]string{"grafana_folder": "KMS"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := helmTemplate(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			cms := parseObjects(t, out).ofKind("ConfigMap")
			if tc.want == nil {
				if len(cms) != 0 {
					t.Fatalf("%s: want no ConfigMap, got %v", tc.reason, cms.names())
				}
				return
			}
			cm := cms.one(t, "ConfigMap")
			if cm.GetName() != releaseName+"-dashboard" || cm.GetNamespace() != tc.want.namespace {
				t.Errorf("%s: ConfigMap %s/%s, want %s/%s-dashboard", tc.reason, cm.GetNamespace(), cm.GetName(), tc.want.namespace, releaseName)
			}
			if missing := subsetDiff(tc.want.labels, cm.GetLabels()); missing != "" {
				t.Errorf("%s: labels (-want +got):\n%s", tc.reason, missing)
			}
			if diff := cmp.Diff(tc.want.annotations, cm.GetAnnotations()); diff != "" {
				t.Errorf("%s: annotations (-want +got):\n%s", tc.reason, diff)
			}
			data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
			if diff := cmp.Diff(map[string]string{"kms-operator.json": strings.TrimRight(dashboard, "\n")}, data); diff != "" {
				t.Errorf("the ConfigMap must hold %s as it is (-want +got):\n%s", dashboardFile, diff)
			}
		})
	}
}

type configMapWant struct {
	namespace           string
	labels, annotations map[string]string
}

// subsetDiff reports the entries of want that got lacks or has otherwise.
func subsetDiff(want, got map[string]string) string {
	sub := map[string]string{}
	for k := range want {
		if v, ok := got[k]; ok {
			sub[k] = v
		}
	}
	return cmp.Diff(want, sub)
}

// grafanaDashboard is the part of Grafana's dashboard model the tests check.
type grafanaDashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name, Type string
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		GridPos    struct{ X, Y, W, H int }
		Datasource struct{ Type, UID string }
		Targets    []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	var d grafanaDashboard
	if err := json.Unmarshal(readFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// TestGrafanaDashboard checks the dashboard's shape: what Grafana needs to
// load it from a sidecar into any Prometheus data source, and panels that
// cover every metric and do not overlap.
func TestGrafanaDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for a stable URL", d.UID, d.Title)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name+":"+v.Type)
	}
	if diff := cmp.Diff([]string{"datasource:datasource", "job:query", "account:query", "region:query"}, vars); diff != "" {
		t.Errorf("variables (-want +got):\n%s", diff)
	}
	ids, used := map[int]bool{}, map[string]bool{}
	cells := map[[2]int]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is not unique", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.X < 0 || g.W < 1 || g.X+g.W > 24 || g.H < 1 {
			t.Errorf("panel %q: gridPos %+v is off Grafana's 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		// A sidecar-loaded dashboard cannot ask for a data source at import
		// (__inputs): every panel uses the variable.
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d queries; want ${datasource} and a query", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			for _, m := range metricNames(tg.Expr) {
				if m == "" {
					t.Errorf("panel %q, query %s: a metric the operator does not export: %s", p.Title, tg.RefID, tg.Expr)
				}
				used[m] = true
			}
		}
	}
	for m := range operatorMetrics {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

// metricRef is a metric name of the operator's or controller-runtime's.
var metricRef = regexp.MustCompile(`\b(kms_operator|controller_runtime|workqueue)_[a-z0-9_]+\b`)

// metricNames returns the metrics expr reads (a histogram's series named by
// the histogram); "" for a name that is none of operatorMetrics'.
func metricNames(expr string) []string {
	var out []string
	for _, name := range metricRef.FindAllString(expr, -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && operatorMetrics[b] == "histogram" {
				base = b
			}
		}
		if _, ok := operatorMetrics[base]; !ok {
			base = ""
		}
		out = append(out, base)
	}
	return out
}

// TestGrafanaDashboardQueries has promtool parse every query of the
// dashboard, with the variables set as Grafana sets them at "All", by
// making each a recording rule.
func TestGrafanaDashboardQueries(t *testing.T) {
	d := loadDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "1m", "$job", ".*", "$account", ".*", "$region", ".*")
	var rules []map[string]any
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			expr := vars.Replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q, query %s: an unknown variable in %s", p.Title, tg.RefID, tg.Expr)
			}
			rules = append(rules, map[string]any{"record": fmt.Sprintf("dashboard:panel%d_%s", p.ID, tg.RefID), "expr": expr})
		}
	}
	dir := t.TempDir()
	writeYAML(t, filepath.Join(dir, "dashboard-queries.yaml"), map[string]any{
		"groups": []any{map[string]any{"name": "dashboard", "rules": rules}},
	})
	runPromtool(t, dir, "check", "rules", "--lint=none", "dashboard-queries.yaml")
}

func writeYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

var ruleEnabled = map[string]any{"prometheusRule": map[string]any{"enabled": true}}

// renderRule renders the chart with values and returns its PrometheusRules.
func renderRule(t *testing.T, values map[string]any) objects {
	t.Helper()
	out, err := helmTemplate(t, values)
	if err != nil {
		t.Fatal(err)
	}
	return parseObjects(t, out).ofKind("PrometheusRule")
}

// alertRule is one alerting rule of the PrometheusRule.
type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func alertRules(t *testing.T, rule *unstructured.Unstructured) map[string]alertRule {
	t.Helper()
	var spec struct {
		Groups []struct {
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	s, _, _ := unstructured.NestedMap(rule.Object, "spec")
	into(t, &unstructured.Unstructured{Object: s}, &spec)
	out := map[string]alertRule{}
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r
		}
	}
	return out
}

func TestPrometheusRuleTemplate(t *testing.T) {
	tests := []struct {
		name, reason string
		values       map[string]any
		check        func(t *testing.T, rules objects)
	}{{
		name:   "off by default",
		reason: "the CRD exists only where prometheus-operator runs",
		values: minimalValues,
		check: func(t *testing.T, rules objects) {
			if len(rules) != 0 {
				t.Errorf("want no PrometheusRule, got %v", rules.names())
			}
		},
	}, {
		name:   "defaults",
		reason: "the documented durations and severities",
		values: ruleEnabled,
		check: func(t *testing.T, rules objects) {
			r := rules.one(t, "PrometheusRule")
			if r.GetNamespace() != releaseNS || r.GetLabels()["app.kubernetes.io/name"] != "kms-operator" {
				t.Errorf("PrometheusRule %s/%s labels %v", r.GetNamespace(), r.GetName(), r.GetLabels())
			}
			got := map[string]string{}
			for name, a := range alertRules(t, r) {
				got[name] = a.For + " " + a.Labels["severity"]
				if a.Annotations["summary"] == "" || a.Annotations["description"] == "" {
					t.Errorf("%s: annotations %v lack a summary or a description", name, a.Annotations)
				}
			}
			want := map[string]string{
				"KMSOperatorThrottled": "15m warning", "KMSOperatorReconcileErrors": "15m warning",
				"KMSOperatorAccessDenied": "15m warning", "KMSOperatorObjectsNotReady": "30m warning",
				"KMSOperatorKeysPendingDeletion": "5m warning", "KMSOperatorCredentialsFailing": "5m critical",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("alerts' for and severity (-want +got):\n%s", diff)
			}
		},
	}, {
		name:   "values",
		reason: "labels for the Prometheus's ruleSelector, alert labels for routing, thresholds per alert",
		values: map[string]any{"prometheusRule": map[string]any{
			"enabled": true, "labels": map[string]any{"release": "prometheus"}, "alertLabels": map[string]any{"team": "platform"},
			"alerts": map[string]any{"throttled": map[string]any{"ratio": 0.2, "for": "1h", "severity": "critical"}},
		}},
		check: func(t *testing.T, rules objects) {
			r := rules.one(t, "PrometheusRule")
			if r.GetLabels()["release"] != "prometheus" {
				t.Errorf("PrometheusRule labels %v lack release=prometheus", r.GetLabels())
			}
			alerts := alertRules(t, r)
			th := alerts["KMSOperatorThrottled"]
			if th.For != "1h" || th.Labels["severity"] != "critical" || !strings.Contains(th.Expr, "> 0.2") {
				t.Errorf("KMSOperatorThrottled: for %s, labels %v, expr %s; want 1h, critical, > 0.2", th.For, th.Labels, th.Expr)
			}
			for name, a := range alerts {
				if a.Labels["team"] != "platform" {
					t.Errorf("%s: labels %v lack team=platform", name, a.Labels)
				}
			}
			if got := alerts["KMSOperatorObjectsNotReady"].For; got != "30m" {
				t.Errorf("KMSOperatorObjectsNotReady: for %s, want the default 30m kept", got)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Log(tc.reason)
			tc.check(t, renderRule(t, tc.values))
		})
	}
}

// TestPrometheusRuleAlerts runs the chart's alerts through `promtool test
// rules` on the synthetic series of testdata/prometheusrule-tests.yaml, and
// checks that every alert fires in some test there.
func TestPrometheusRuleAlerts(t *testing.T) {
	rule := renderRule(t, ruleEnabled).one(t, "PrometheusRule")
	spec, _, _ := unstructured.NestedMap(rule.Object, "spec")
	dir := t.TempDir()
	writeYAML(t, filepath.Join(dir, "rules.yaml"), spec)
	tests := readFile(t, "test", "install", "testdata", "prometheusrule-tests.yaml")
	if err := os.WriteFile(filepath.Join(dir, "tests.yaml"), tests, 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "check", "rules", "rules.yaml")
	runPromtool(t, dir, "test", "rules", "tests.yaml")

	var file struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tests, &file); err != nil {
		t.Fatal(err)
	}
	fired := map[string]bool{}
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			fired[a.Alertname] = fired[a.Alertname] || len(a.ExpAlerts) > 0
		}
	}
	var untested []string
	for name := range alertRules(t, rule) {
		if !fired[name] {
			untested = append(untested, name)
		}
	}
	sort.Strings(untested)
	if len(untested) > 0 {
		t.Errorf("alerts no test sees firing: %v", untested)
	}
}
