// Command dashshot renders the chart's Grafana dashboard
// (charts/kms-operator/dashboards/kms-operator.json) as an HTML page from a
// Prometheus that scraped a run of the operator: every panel's queries are
// run as Grafana would run them (the variables at "All", $__rate_interval by
// Grafana's rule) and drawn as SVG on the dashboard's own grid. Headless
// Chromium then takes the picture (hack/dashboard-shot.sh). No Grafana is
// needed: Debian has none, and building one takes its whole frontend.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var (
		dashboardFile = flag.String("dashboard", "charts/kms-operator/dashboards/kms-operator.json", "the Grafana dashboard JSON")
		promURL       = flag.String("prometheus", "http://127.0.0.1:9090", "the Prometheus to query")
		out           = flag.String("out", "dashboard.html", "the HTML page to write")
		span          = flag.Duration("range", 10*time.Minute, "the time range shown, ending at -end")
		endFlag       = flag.String("end", "", "the end of the range, RFC 3339 (default: now)")
		scrape        = flag.Duration("scrape-interval", 5*time.Second, "Prometheus's scrape interval (Grafana's $__rate_interval is derived from it)")
		width         = flag.Int("width", 1600, "the page width in pixels")
		caption       = flag.String("caption", "", "a line under the title saying what run this is")
	)
	flag.Parse()
	end := time.Now()
	if *endFlag != "" {
		var err error
		if end, err = time.Parse(time.RFC3339, *endFlag); err != nil {
			fail(fmt.Errorf("-end: %w", err))
		}
	}
	if err := run(*dashboardFile, *promURL, *out, end.Add(-*span), end, *scrape, *width, *caption); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dashshot:", err)
	os.Exit(1)
}

// run renders the page and prints its size as WIDTHxHEIGHT, the window size
// Chromium needs to show it whole.
func run(dashboardFile, promURL, out string, start, end time.Time, scrape time.Duration, width int, caption string) error {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		return err
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("%s: %w", dashboardFile, err)
	}
	q := querier{url: promURL, start: start, end: end, scrape: scrape}
	q.step = stepFor(end.Sub(start), scrape)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results := map[int][][]series{}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			s, err := q.queryRange(ctx, t)
			if err != nil {
				return fmt.Errorf("panel %q, query %s: %w", p.Title, t.RefID, err)
			}
			results[p.ID] = append(results[p.ID], s)
		}
	}
	page := pageData{dashboard: d, results: results, start: start, end: end, step: q.step, width: width, caption: caption}
	html, height := page.render()
	if err := os.WriteFile(out, []byte(html), 0o644); err != nil {
		return err
	}
	fmt.Printf("%dx%d\n", width, height)
	return nil
}

// dashboard is the part of Grafana's dashboard model the page draws.
type dashboard struct {
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	GridPos     struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets     []target `json:"targets"`
	FieldConfig struct {
		Defaults fieldDefaults `json:"defaults"`
	} `json:"fieldConfig"`
}

type fieldDefaults struct {
	Unit       string   `json:"unit"`
	Min        *float64 `json:"min"`
	Max        *float64 `json:"max"`
	Decimals   *int     `json:"decimals"`
	Thresholds struct {
		Steps []struct {
			Color string   `json:"color"`
			Value *float64 `json:"value"`
		} `json:"steps"`
	} `json:"thresholds"`
	Custom struct {
		Stacking struct {
			Mode string `json:"mode"`
		} `json:"stacking"`
	} `json:"custom"`
}

type target struct {
	RefID        string `json:"refId"`
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
}
