package main

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	tests := map[string]struct {
		reason       string
		step, scrape time.Duration
		expr, want   string
	}{
		"short step": {
			reason: "four scrape intervals, so a rate always has points to work with",
			step:   5 * time.Second, scrape: 5 * time.Second,
			expr: `rate(x{job=~"$job", account=~"${account}"}[$__rate_interval])`,
			want: `rate(x{job=~".*", account=~".*"}[20s])`,
		},
		"long step": {
			reason: "a step plus a scrape interval, so no sample falls between two steps",
			step:   time.Minute, scrape: 15 * time.Second,
			expr: `rate(x{region=~"$region"}[$__rate_interval])`,
			want: `rate(x{region=~".*"}[75s])`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := querier{step: tc.step, scrape: tc.scrape}.expand(tc.expr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestLegend(t *testing.T) {
	metric := map[string]string{"operation": "CreateKey", "result": "throttled", "account": ""}
	tests := map[string]struct {
		reason, format, want string
	}{
		"labels":        {"each {{label}} replaced by its value", "{{operation}} {{ result }}", "CreateKey throttled"},
		"missing label": {"an absent or empty label leaves no stray blanks at the ends", "{{account}} {{operation}}", "CreateKey"},
		"no format":     {"the series' labels, as Grafana shows them", "", `{account="", operation="CreateKey", result="throttled"}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, legend(tc.format, metric)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	two := 2
	tests := map[string]struct {
		reason   string
		v        float64
		unit     string
		decimals *int
		want     string
	}{
		"milliseconds":  {"seconds under one in ms", 0.25, "s", nil, "250 ms"},
		"microseconds":  {"under a millisecond in µs", 0.0004, "s", nil, "400 µs"},
		"minutes":       {"a minute and more in min", 90, "s", nil, "1.5 min"},
		"percent":       {"percentunit is a share of 1", 0.053, "percentunit", nil, "5.3%"},
		"requests":      {"req/s with fixed decimals", 1.5, "reqps", &two, "1.50 req/s"},
		"thousands":     {"short scales by K", 2500, "short", nil, "2.5 K"},
		"three figures": {"about three significant digits", 12.3456, "", nil, "12.3"},
		"zero":          {"no decimals for zero", 0, "short", nil, "0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, formatValue(tc.v, tc.unit, tc.decimals)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNiceTicks(t *testing.T) {
	tests := map[string]struct {
		reason string
		lo, hi float64
		n      int
		want   []float64
	}{
		"round steps":  {"1, 2, 2.5 or 5 times a power of ten, up to at least hi", 0, 37, 4, []float64{0, 10, 20, 30, 40}},
		"flat zero":    {"a series of zeros still gets an axis", 0, 0, 2, []float64{0, 0.5, 1}},
		"fractions":    {"small values keep their scale", 0, 0.9, 3, []float64{0, 0.5, 1}},
		"bounded loop": {"an infinite maximum ends, with a bounded axis", 0, math.Inf(1), 2, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := niceTicks(tc.lo, tc.hi, tc.n)
			if tc.want == nil {
				if len(got) > 2*tc.n+3 {
					t.Errorf("%s: %d ticks", tc.reason, len(got))
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestStack(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	a := series{legend: "a", points: []point{{at(0), 1}, {at(10), 2}}}
	b := series{legend: "b", points: []point{{at(10), 3}, {at(20), 4}}}
	tops, bases := stack([]series{a, b}, true)
	want := []series{a, {legend: "b", points: []point{{at(10), 5}, {at(20), 4}}}}
	if diff := cmp.Diff(want, tops, cmp.AllowUnexported(series{}, point{})); diff != "" {
		t.Errorf("stacked tops: each series on the ones before it, at the same timestamps (-want +got):\n%s", diff)
	}
	wantBase := []float64{0, 0, 2, 0}
	var gotBase []float64
	for _, s := range bases {
		for _, p := range s.points {
			gotBase = append(gotBase, p.v)
		}
	}
	if diff := cmp.Diff(wantBase, gotBase); diff != "" {
		t.Errorf("bases (-want +got):\n%s", diff)
	}
}

// TestRun renders a two-panel dashboard from a fake Prometheus: a time
// series with data (NaN samples dropped) and a stat without.
func TestRun(t *testing.T) {
	var queries []string
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		queries = append(queries, r.Form.Get("query"))
		if strings.Contains(r.Form.Get("query"), "missing") {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
			return
		}
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[
			{"metric":{"operation":"CreateKey"},"values":[[1000,"1"],[1005,"NaN"],[1010,"3"]]}]}}`)
	}))
	defer prom.Close()
	dir := t.TempDir()
	dash := `{"title":"t","panels":[
		{"id":1,"type":"timeseries","title":"Calls","gridPos":{"x":0,"y":0,"w":12,"h":8},
		 "targets":[{"refId":"A","expr":"sum by (operation) (rate(calls{job=~\"$job\"}[$__rate_interval]))","legendFormat":"{{operation}}"}]},
		{"id":2,"type":"stat","title":"Missing","gridPos":{"x":12,"y":0,"w":12,"h":4},
		 "targets":[{"refId":"A","expr":"missing"}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "d.json"), []byte(dash), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "d.html")
	end := time.Unix(1010, 0)
	if err := run(filepath.Join(dir, "d.json"), prom.URL, out, end.Add(-10*time.Second), end, 5*time.Second, 800, "caption"); err != nil {
		t.Fatal(err)
	}
	wantQueries := []string{`sum by (operation) (rate(calls{job=~".*"}[20s]))`, "missing"}
	if diff := cmp.Diff(wantQueries, queries); diff != "" {
		t.Errorf("queries sent (-want +got):\n%s", diff)
	}
	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Calls", "CreateKey", "<polyline", "Missing", "No data", "caption"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
