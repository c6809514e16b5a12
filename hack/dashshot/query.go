package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// querier runs a panel's queries over one time range through Prometheus's
// HTTP API (/api/v1/query_range).
type querier struct {
	url        string
	start, end time.Time
	step       time.Duration
	scrape     time.Duration
}

// series is one line of a panel: its legend and its points.
type series struct {
	legend string
	points []point
}

type point struct {
	t time.Time
	v float64
}

// stepFor is Grafana's interval for about 300 points, never below the scrape
// interval.
func stepFor(span, scrape time.Duration) time.Duration {
	return max(scrape, (span / 300).Round(time.Second))
}

// expand substitutes what Grafana would: every variable at "All" (the
// dashboard's allValue is .*), and $__rate_interval by Grafana's rule,
// max($__interval + scrape interval, 4 × scrape interval).
func (q querier) expand(expr string) string {
	rateInterval := max(q.step+q.scrape, 4*q.scrape)
	expr = strings.ReplaceAll(expr, "$__rate_interval", fmt.Sprintf("%ds", int(rateInterval.Seconds())))
	return variable.ReplaceAllString(expr, ".*")
}

// variable is a dashboard variable reference, $name or ${name}.
var variable = regexp.MustCompile(`\$\{?[a-z]+\}?`)

func (q querier) queryRange(ctx context.Context, t target) ([]series, error) {
	form := url.Values{
		"query": {q.expand(t.Expr)},
		"start": {strconv.FormatInt(q.start.Unix(), 10)},
		"end":   {strconv.FormatInt(q.end.Unix(), 10)},
		"step":  {strconv.Itoa(int(q.step.Seconds()))},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.url+"/api/v1/query_range", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Status, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", resp.Status, body.Error)
	}
	var out []series
	for _, r := range body.Data.Result {
		s := series{legend: legend(t.LegendFormat, r.Metric)}
		for _, v := range r.Values {
			p, err := parsePoint(v)
			if err != nil {
				return nil, err
			}
			// Grafana draws NaN (a quantile of no observations, 0/0) and
			// infinities as gaps.
			if math.IsNaN(p.v) || math.IsInf(p.v, 0) {
				continue
			}
			s.points = append(s.points, p)
		}
		out = append(out, s)
	}
	// Stable colours: Grafana orders series as Prometheus returns them,
	// which is by labels; the legend is what a reader sees.
	sort.Slice(out, func(i, j int) bool { return out[i].legend < out[j].legend })
	return out, nil
}

func parsePoint(v [2]any) (point, error) {
	ts, ok := v[0].(float64)
	str, ok2 := v[1].(string)
	if !ok || !ok2 {
		return point{}, fmt.Errorf("unexpected sample %v", v)
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return point{}, err
	}
	sec := int64(ts)
	return point{t: time.Unix(sec, int64((ts-float64(sec))*1e9)), v: f}, nil
}

// legendLabel is a {{label}} of a legend format.
var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// legend fills a Grafana legend format; an empty one shows the series'
// labels, as Grafana does.
func legend(format string, metric map[string]string) string {
	if format == "" {
		var parts []string
		for k, v := range metric {
			parts = append(parts, k+"="+strconv.Quote(v))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return strings.TrimSpace(legendLabel.ReplaceAllStringFunc(format, func(m string) string {
		return metric[legendLabel.FindStringSubmatch(m)[1]]
	}))
}
