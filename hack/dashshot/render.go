package main

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"time"
)

// Grafana's grid: 24 columns, rows of 30 px, 8 px between panels.
const (
	gridRow    = 30
	gridMargin = 8
	headerH    = 100
	titleH     = 30
)

// palette is Grafana's classic palette, in its order.
var palette = []string{
	"#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0",
	"#508642", "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477",
	"#B7DBAB", "#F4D598", "#70DBED", "#F9BA8F", "#F29191", "#82B5D8", "#E5A8E2", "#AEA2E0",
}

// thresholdColors are Grafana's names for the colours the dashboard uses.
var thresholdColors = map[string]string{"green": "#73BF69", "red": "#F2495C", "yellow": "#FADE2A", "orange": "#FF9830"}

type pageData struct {
	dashboard  dashboard
	results    map[int][][]series
	start, end time.Time
	step       time.Duration
	width      int
	caption    string
}

// render returns the page and its height in pixels.
func (p pageData) render() (string, int) {
	colW := float64(p.width-gridMargin) / 24
	var b strings.Builder
	height := 0
	for _, pn := range p.dashboard.Panels {
		g := pn.GridPos
		left := gridMargin + int(float64(g.X)*colW)
		top := headerH + g.Y*(gridRow+gridMargin)
		w := int(float64(g.W)*colW) - gridMargin
		h := g.H*gridRow + (g.H-1)*gridMargin
		height = max(height, top+h+gridMargin)
		box := fmt.Sprintf(`left:%dpx;top:%dpx;width:%dpx;height:%dpx`, left, top, w, h)
		switch pn.Type {
		case "row":
			fmt.Fprintf(&b, `<div class="row" style="%s">%s</div>`, box, html.EscapeString(pn.Title))
		case "stat":
			b.WriteString(p.stat(pn, box, w, h))
		default:
			b.WriteString(p.timeseries(pn, box, w, h))
		}
		b.WriteString("\n")
	}
	return p.page(b.String(), height), height
}

func (p pageData) page(body string, height int) string {
	rangeText := fmt.Sprintf("%s to %s UTC (%s)", p.start.UTC().Format("2006-01-02 15:04:05"),
		p.end.UTC().Format("15:04:05"), p.end.Sub(p.start).Round(time.Second))
	return fmt.Sprintf(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%[1]s</title><style>
body { margin: 0; background: #111217; color: #ccccdc; font: 12px "DejaVu Sans", "Liberation Sans", sans-serif; width: %[2]dpx; height: %[3]dpx; position: relative; overflow: hidden; }
.header { position: absolute; left: 8px; right: 8px; top: 8px; height: %[4]dpx; }
.header h1 { font-size: 20px; font-weight: 500; margin: 0 0 6px 0; color: #e8e8f0; }
.vars span { display: inline-block; background: #181b1f; border: 1px solid #2c3235; padding: 3px 8px; margin-right: 6px; border-radius: 2px; }
.vars b { color: #6e9fff; font-weight: normal; margin-right: 6px; }
.caption { color: #8e8e9e; margin-top: 6px; }
.row { position: absolute; font-size: 15px; font-weight: 500; color: #e8e8f0; line-height: 30px; border-bottom: 1px solid #2c3235; }
.panel { position: absolute; background: #181b1f; border: 1px solid #2c3235; border-radius: 2px; box-sizing: border-box; overflow: hidden; }
.panel .title { height: %[5]dpx; line-height: %[5]dpx; padding: 0 8px; font-weight: 500; font-size: 13px; color: #e8e8f0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.legend { padding: 0 8px; line-height: 16px; overflow: hidden; }
.legend span { display: inline-block; margin-right: 12px; white-space: nowrap; }
.legend i { display: inline-block; width: 14px; height: 4px; margin: 0 4px 2px 0; border-radius: 2px; vertical-align: middle; }
.nodata { position: absolute; left: 0; right: 0; top: 45%%; text-align: center; color: #8e8e9e; font-size: 14px; }
.stat .value { position: absolute; left: 0; right: 0; text-align: center; font-size: 34px; font-weight: 500; color: #fff; }
svg text { fill: #8e8e9e; font-size: 10px; }
</style></head><body>
<div class="header"><h1>%[1]s</h1>
<div class="vars"><span><b>Data source</b>Prometheus</span><span><b>Job</b>All</span><span><b>Account</b>All</span><span><b>Region</b>All</span><span><b>Time</b>%[6]s</span></div>
<div class="caption">%[7]s</div></div>
%[8]s</body></html>
`, html.EscapeString(p.dashboard.Title), p.width, height, headerH-16, titleH, html.EscapeString(rangeText), html.EscapeString(p.caption), body)
}

// stat draws a stat panel: the last value of its first series on the
// colour of the threshold it passes, over a sparkline.
func (p pageData) stat(pn panel, box string, w, h int) string {
	d := pn.FieldConfig.Defaults
	var s *series
	if res := p.results[pn.ID]; len(res) > 0 && len(res[0]) > 0 && len(res[0][0].points) > 0 {
		s = &res[0][0]
	}
	if s == nil {
		return fmt.Sprintf(`<div class="panel" style="%s"><div class="title">%s</div><div class="nodata">No data</div></div>`,
			box, html.EscapeString(pn.Title))
	}
	last := s.points[len(s.points)-1].v
	color := "#73BF69"
	for _, step := range d.Thresholds.Steps {
		if step.Value == nil || last >= *step.Value {
			color = thresholdColors[step.Color]
		}
	}
	plotH := h - titleH - 2
	spark := p.plot([]series{*s}, w-2, plotH, plotOptions{fill: 0.25, line: "rgba(255,255,255,0.45)", min: 0, bare: true})
	return fmt.Sprintf(`<div class="panel stat" style="%s;background:%s"><div class="title">%s</div>%s<div class="value" style="top:%dpx">%s</div></div>`,
		box, color, html.EscapeString(pn.Title), spark, titleH+plotH/2-26, html.EscapeString(formatValue(last, d.Unit, d.Decimals)))
}

// timeseries draws a time series panel with its legend below the plot.
func (p pageData) timeseries(pn panel, box string, w, h int) string {
	var all []series
	for _, res := range p.results[pn.ID] {
		all = append(all, res...)
	}
	head := fmt.Sprintf(`<div class="panel" style="%s"><div class="title">%s</div>`, box, html.EscapeString(pn.Title))
	if len(all) == 0 {
		return head + `<div class="nodata">No data</div></div>`
	}
	// At most two fifths of the panel, in whole lines: Grafana scrolls the rest.
	legendH := min(legendHeight(all, w-16), (h-titleH)*2/5/16*16)
	d := pn.FieldConfig.Defaults
	opts := plotOptions{stacked: d.Custom.Stacking.Mode == "normal", unit: d.Unit, min: 0, fill: 0.1}
	if d.Min != nil {
		opts.min = *d.Min
	}
	opts.max = d.Max
	if opts.stacked {
		opts.fill = 0.4
	}
	var legend strings.Builder
	for i, s := range all {
		fmt.Fprintf(&legend, `<span><i style="background:%s"></i>%s</span>`, palette[i%len(palette)], html.EscapeString(s.legend))
	}
	plot := p.plot(all, w-2, h-titleH-legendH-6, opts)
	return fmt.Sprintf(`%s%s<div class="legend" style="height:%dpx">%s</div></div>`, head, plot, legendH, legend.String())
}

// legendHeight is the height of the legend's wrapped lines, with the text
// width estimated at 6.6 px a character (12 px DejaVu Sans).
func legendHeight(all []series, width int) int {
	lines, x := 1, 0
	for _, s := range all {
		item := 30 + int(6.6*float64(len(s.legend)))
		if x > 0 && x+item > width {
			lines++
			x = 0
		}
		x += item
	}
	return lines * 16
}

type plotOptions struct {
	stacked bool
	unit    string
	min     float64
	max     *float64
	fill    float64
	line    string // one colour for every series; the palette if empty
	bare    bool   // no axes (a stat's sparkline)
}

// plot draws the series into an SVG of w×h pixels.
func (p pageData) plot(all []series, w, h int, o plotOptions) string {
	tops, bases := stack(all, o.stacked)
	lo, hi := o.min, o.min
	for _, s := range tops {
		for _, pt := range s.points {
			hi = max(hi, pt.v)
			lo = min(lo, pt.v)
		}
	}
	if o.max != nil {
		hi = *o.max
	}
	ticks := niceTicks(lo, hi, max(2, h/45))
	if !o.bare {
		hi = ticks[len(ticks)-1]
	} else if hi == lo {
		hi = lo + 1
	}
	left, bottom, top, right := 64.0, 18.0, 6.0, 10.0
	if o.bare {
		left, bottom, top, right = 0, 0, float64(h)/2, 0
	}
	pw, ph := float64(w)-left-right, float64(h)-top-bottom
	x := func(t time.Time) float64 {
		return left + pw*float64(t.Sub(p.start))/float64(p.end.Sub(p.start))
	}
	y := func(v float64) float64 { return top + ph - ph*(v-lo)/(hi-lo) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" style="display:block">`, w, h)
	if !o.bare {
		p.axes(&b, ticks, o.unit, x, y, left, pw, top+ph)
	}
	for i := range tops {
		color := o.line
		if color == "" {
			color = palette[i%len(palette)]
		}
		for _, seg := range p.segments(tops[i], bases[i]) {
			writeArea(&b, seg, x, y, color, o.fill)
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// axes draws the horizontal grid lines with the y axis's values, and the
// times along the x axis.
func (p pageData) axes(b *strings.Builder, ticks []float64, unit string, x func(time.Time) float64, y func(float64) float64, left, pw, bottom float64) {
	for _, v := range ticks {
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#2c3235"/>`, left, left+pw, y(v), y(v))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-6, y(v)+3, html.EscapeString(formatValue(v, unit, nil)))
	}
	every := timeStep(p.end.Sub(p.start))
	for t := p.start.Truncate(every).Add(every); t.Before(p.end); t = t.Add(every) {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x(t), bottom+13, t.UTC().Format("15:04"))
	}
}

// band is one unbroken run of a series: its top line and the base it
// is filled down to.
type band struct{ top, base []point }

// segments cuts a series where Prometheus returned no point for more than
// one and a half steps, as Grafana leaves such gaps open.
func (p pageData) segments(top, base series) []band {
	var out []band
	var cur band
	for i, pt := range top.points {
		if i > 0 && pt.t.Sub(top.points[i-1].t) > p.step*3/2 {
			out = append(out, cur)
			cur = band{}
		}
		cur.top = append(cur.top, pt)
		cur.base = append(cur.base, base.points[i])
	}
	return append(out, cur)
}

func writeArea(b *strings.Builder, seg band, x func(time.Time) float64, y func(float64) float64, color string, fill float64) {
	if len(seg.top) == 0 {
		return
	}
	var line, area strings.Builder
	for _, pt := range seg.top {
		fmt.Fprintf(&line, "%.1f,%.1f ", x(pt.t), y(pt.v))
	}
	area.WriteString(line.String())
	for i := len(seg.base) - 1; i >= 0; i-- {
		fmt.Fprintf(&area, "%.1f,%.1f ", x(seg.base[i].t), y(seg.base[i].v))
	}
	if fill > 0 {
		fmt.Fprintf(b, `<polygon points="%s" fill="%s" fill-opacity="%.2f" stroke="none"/>`, area.String(), color, fill)
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, line.String(), color)
}

// stack returns each series' top line and the base it sits on: the series
// below it summed at the same timestamps when stacked, else zero.
func stack(all []series, stacked bool) (tops, bases []series) {
	sum := map[int64]float64{}
	for _, s := range all {
		top, base := series{legend: s.legend}, series{legend: s.legend}
		for _, pt := range s.points {
			b := 0.0
			if stacked {
				b = sum[pt.t.Unix()]
				sum[pt.t.Unix()] = b + pt.v
			}
			top.points = append(top.points, point{pt.t, b + pt.v})
			base.points = append(base.points, point{pt.t, b})
		}
		tops, bases = append(tops, top), append(bases, base)
	}
	return tops, bases
}

// niceTicks returns about n round values from lo (or below) up to at
// least hi.
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; len(out) <= 2*n+2; v += step {
		out = append(out, v)
		if v >= hi-step*1e-9 {
			break
		}
	}
	return out
}

// timeStep is the x axis's label interval: about eight labels.
func timeStep(span time.Duration) time.Duration {
	steps := []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}
	i := sort.Search(len(steps), func(i int) bool { return span/steps[i] <= 8 })
	return steps[min(i, len(steps)-1)]
}

// formatValue writes v in Grafana's style for the unit.
func formatValue(v float64, unit string, decimals *int) string {
	switch unit {
	case "s":
		return seconds(v)
	case "percentunit":
		return number(v*100, decimals) + "%"
	case "reqps":
		return short(v, decimals) + " req/s"
	case "ops":
		return short(v, decimals) + " ops/s"
	default:
		return short(v, decimals)
	}
}

func seconds(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0 s"
	case a < 1e-3:
		return number(v*1e6, nil) + " µs"
	case a < 1:
		return number(v*1e3, nil) + " ms"
	case a < 60:
		return number(v, nil) + " s"
	default:
		return number(v/60, nil) + " min"
	}
}

func short(v float64, decimals *int) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return number(v/1e6, decimals) + " Mil"
	case a >= 1e3:
		return number(v/1e3, decimals) + " K"
	default:
		return number(v, decimals)
	}
}

// number keeps the given decimals, or about three significant digits.
func number(v float64, decimals *int) string {
	d := 0
	if decimals != nil {
		d = *decimals
	} else if a := math.Abs(v); a != 0 && a < 100 {
		d = min(4, 2-int(math.Floor(math.Log10(a))))
	}
	s := fmt.Sprintf("%.*f", d, v)
	if decimals == nil && strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
