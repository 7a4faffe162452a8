package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// errNoReports is returned when the chart would have no data.
var errNoReports = errors.New("no bench reports")

// Scales of the latency panel (--latency-scale).
const (
	chartScaleLinear = "linear"
	chartScaleLog    = "log"
)

// benchChartOptions holds the flags of `rdb bench chart`.
type benchChartOptions struct {
	out          string // SVG file to write; empty or "-" means stdout
	title        string
	latencyScale string // chartScaleLinear or chartScaleLog
}

// validate checks the options.
func (o benchChartOptions) validate() error {
	switch o.latencyScale {
	case chartScaleLinear, chartScaleLog:
		return nil
	}
	return fmt.Errorf("--latency-scale %q: want linear or log", o.latencyScale)
}

// benchChartCommand returns `rdb bench chart`, a child of `rdb bench`.
// Cobra resolves a child by name before the parent's RunE sees any
// argument, and bench itself takes no arguments, so the two do not
// conflict; the child has flags of its own.
func benchChartCommand() *cobra.Command {
	o := &benchChartOptions{}
	cmd := &cobra.Command{
		Use:   "chart [--out FILE.svg] [--title T] JSON_FILE...",
		Short: "Draw an SVG chart of throughput and p99 latency against concurrency from bench JSON reports",
		Long: `Draw an SVG chart of throughput and p99 latency against concurrency from
the reports of 'rdb bench --format json'.

Each file holds one report or several (one after another, e.g. one per
line). Reports are grouped into series by workload, consistency, target
and batch size; each series is one coloured line in both panels:
throughput (ops/s) and p99 latency (ms, on a log10 axis unless
--latency-scale linear), against concurrency on a log2 axis. Repeated
reports of a series at the same concurrency are averaged.
The SVG is self-contained and goes to --out (default: stdout).

  rdb bench chart --out chart.svg --title "3 nodes, loopback" results/*.json

scripts/bench-sweep.sh (make bench-chart) runs the whole sweep against a
fresh local cluster and draws the chart.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if len(args) == 0 {
				return fmt.Errorf("%w: give one or more JSON files written by 'rdb bench --format json'", errNoReports)
			}
			return runBenchChart(o, args, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "out", "o", "", "SVG file to write (default: stdout)")
	f.StringVar(&o.title, "title", "rdb bench", "chart title")
	f.StringVar(&o.latencyScale, "latency-scale", chartScaleLog, "y axis of the latency panel: log or linear")
	return cmd
}

// runBenchChart reads the report files and writes the chart to o.out,
// or to stdout.
func runBenchChart(o *benchChartOptions, files []string, stdout io.Writer) error {
	var reports []*benchReport
	for _, name := range files {
		rs, err := readBenchReportFile(name)
		if err != nil {
			return err
		}
		reports = append(reports, rs...)
	}
	var buf bytes.Buffer
	if err := renderBenchChart(&buf, *o, reports); err != nil {
		return err
	}
	if o.out == "" || o.out == "-" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	return writeFileAtomic(o.out, buf.Bytes())
}

// writeFileAtomic writes data to a temporary file beside name, syncs it
// and renames it over name.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write chart %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write chart %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write chart %s: %w", name, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write chart %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write chart %s: %w", name, err)
	}
	return nil
}

// readBenchReportFile reads every bench report in the named file.
func readBenchReportFile(name string) ([]*benchReport, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err // *PathError names the file
	}
	defer f.Close()
	return readBenchReports(name, f)
}

// readBenchReports decodes the JSON objects of r, one after another
// (indented as bench prints them, or one per line), and checks that each
// is a bench report. name is used in errors. A stream with no object is
// an error.
func readBenchReports(name string, r io.Reader) ([]*benchReport, error) {
	dec := json.NewDecoder(r)
	var out []*benchReport
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: report %d: not valid JSON: %w", name, n, err)
		}
		rep, err := parseBenchReport(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: report %d: %w", name, n, err)
		}
		out = append(out, rep)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w (the file holds no JSON object)", name, errNoReports)
	}
	return out, nil
}

// parseBenchReport decodes one JSON value and checks that it is a bench
// report that can be charted.
func parseBenchReport(raw json.RawMessage) (*benchReport, error) {
	// Fields that every report has: their absence means some other JSON.
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("not a bench report: want a JSON object from 'rdb bench --format json'")
	}
	for _, k := range []string{"workload", "concurrency", "target", "ops_per_sec", "p99_ms"} {
		if _, ok := probe[k]; !ok {
			return nil, fmt.Errorf("not a bench report: no %q field", k)
		}
	}
	var rep benchReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("not a bench report: %w", err)
	}
	switch {
	case rep.Workload == "":
		return nil, errors.New("not a bench report: empty workload")
	case rep.Concurrency < 1:
		return nil, fmt.Errorf("concurrency %d: want at least 1", rep.Concurrency)
	case !(rep.OpsPerSec >= 0) || math.IsInf(rep.OpsPerSec, 0):
		return nil, fmt.Errorf("ops_per_sec %v: want a finite number, at least 0", rep.OpsPerSec)
	case !(rep.P99ms >= 0) || math.IsInf(rep.P99ms, 0):
		return nil, fmt.Errorf("p99_ms %v: want a finite number, at least 0", rep.P99ms)
	}
	return &rep, nil
}

// chartKey identifies a series: the reports that differ only in
// concurrency.
type chartKey struct {
	workload    string
	consistency string
	target      string
	batch       int
}

// label names the series in the legend, e.g. "point-read linearizable →
// follower".
func (k chartKey) label() string {
	var b strings.Builder
	b.WriteString(k.workload)
	if k.batch > 0 {
		fmt.Fprintf(&b, " %d rows", k.batch)
	}
	if k.consistency != "" {
		b.WriteString(" " + k.consistency)
	}
	b.WriteString(" → " + k.target)
	return b.String()
}

// chartPoint is one concurrency of a series, averaged over its reports.
type chartPoint struct {
	concurrency int
	opsPerSec   float64
	p99ms       float64
	runs        int
}

// chartSeries is one line of the chart.
type chartSeries struct {
	key    chartKey
	points []chartPoint // by increasing concurrency
}

// groupBenchReports groups reports into series, each with its points
// sorted by concurrency; repeated reports at one concurrency are
// averaged. Series come in a fixed order: by workload (insert, batch,
// point-read, mixed), consistency (none to strong), target (leader,
// follower, all), batch, and unknown values after known ones in order
// of first appearance.
func groupBenchReports(reports []*benchReport) []*chartSeries {
	var series []*chartSeries
	byKey := map[chartKey]*chartSeries{}
	for _, r := range reports {
		k := chartKey{workload: r.Workload, consistency: r.Consistency, target: r.Target, batch: r.Batch}
		s := byKey[k]
		if s == nil {
			s = &chartSeries{key: k}
			byKey[k] = s
			series = append(series, s)
		}
		i := slices.IndexFunc(s.points, func(p chartPoint) bool { return p.concurrency == r.Concurrency })
		if i < 0 {
			s.points = append(s.points, chartPoint{concurrency: r.Concurrency})
			i = len(s.points) - 1
		}
		p := &s.points[i]
		p.opsPerSec += r.OpsPerSec
		p.p99ms += r.P99ms
		p.runs++
	}
	for _, s := range series {
		for i := range s.points {
			p := &s.points[i]
			p.opsPerSec /= float64(p.runs)
			p.p99ms /= float64(p.runs)
		}
		slices.SortFunc(s.points, func(a, b chartPoint) int { return a.concurrency - b.concurrency })
	}
	rank := func(order []string, v string) int {
		if i := slices.Index(order, v); i >= 0 {
			return i
		}
		return len(order)
	}
	workloads := []string{workloadInsert, workloadBatch, workloadPointRead, workloadMixed}
	consistencies := []string{"", "none", "weak", "linearizable", "strong"}
	targets := []string{targetLeader, targetFollower, targetAll}
	slices.SortStableFunc(series, func(a, b *chartSeries) int {
		return cmp.Or(
			cmp.Compare(rank(workloads, a.key.workload), rank(workloads, b.key.workload)),
			cmp.Compare(rank(consistencies, a.key.consistency), rank(consistencies, b.key.consistency)),
			cmp.Compare(rank(targets, a.key.target), rank(targets, b.key.target)),
			cmp.Compare(a.key.batch, b.key.batch))
	})
	return series
}

// Chart geometry, in SVG user units (pixels).
const (
	chartPanelW    = 520 // width of one panel, plot area and its margins
	chartPanelH    = 400
	chartMarginL   = 78 // room for y tick labels and the y axis title
	chartMarginR   = 22
	chartMarginT   = 34 // room for the panel title
	chartMarginB   = 54 // room for x tick labels and the x axis title
	chartTop       = 56 // below the chart title
	chartLegendRow = 22
	chartLegendCol = 520
	chartPad       = 20
)

// chartPalette is the colour of each series in turn (Tableau 10); past
// its end colours repeat with a dashed line.
var chartPalette = []string{
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
}

// chartDashes are the dash patterns of successive rounds of the palette.
var chartDashes = []string{"", "6 4", "2 3", "10 3 2 3"}

// renderBenchChart writes an SVG of two panels, throughput and p99
// latency against concurrency, with one line per series of reports.
// It returns errNoReports when reports is empty.
func renderBenchChart(w io.Writer, o benchChartOptions, reports []*benchReport) error {
	if err := o.validate(); err != nil {
		return err
	}
	if len(reports) == 0 {
		return errNoReports
	}
	title := o.title
	minC, maxC := math.MaxInt, 0
	for _, r := range reports {
		if r.Concurrency < 1 {
			return fmt.Errorf("a %s report has concurrency %d, want at least 1", r.Workload, r.Concurrency)
		}
		minC, maxC = min(minC, r.Concurrency), max(maxC, r.Concurrency)
	}
	series := groupBenchReports(reports)
	// The x axis spans whole powers of two around the data.
	x0 := math.Floor(math.Log2(float64(minC)))
	x1 := math.Ceil(math.Log2(float64(maxC)))
	if x1 <= x0 {
		x1 = x0 + 1
	}

	legendCols := 2
	legendRows := (len(series) + legendCols - 1) / legendCols
	width := 2*chartPanelW + 3*chartPad
	height := chartTop + chartPanelH + chartPad + legendRows*chartLegendRow + chartPad

	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, "<title>%s</title>\n", xmlEscape(title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="30" text-anchor="middle" font-size="18" font-weight="bold">%s</text>`+"\n", width/2, xmlEscape(title))

	panels := []struct {
		class, title, yName, yUnit string
		value                      func(chartPoint) float64
		format                     func(v, step float64) string
		log                        bool
	}{
		{"throughput", "Throughput", "throughput", "ops/s", func(p chartPoint) float64 { return p.opsPerSec }, formatOps, false},
		{"latency", "p99 latency", "p99 latency", "ms", func(p chartPoint) float64 { return p.p99ms }, formatMs, o.latencyScale == chartScaleLog},
	}
	for pi, pn := range panels {
		left := float64(chartPad + pi*(chartPanelW+chartPad))
		px0, px1 := left+chartMarginL, left+chartPanelW-chartMarginR
		py0, py1 := float64(chartTop+chartMarginT), float64(chartTop+chartPanelH-chartMarginB)
		yTitle := fmt.Sprintf("%s (%s)", pn.yName, pn.yUnit)
		if pn.log {
			yTitle = fmt.Sprintf("%s (%s, log scale)", pn.yName, pn.yUnit)
		}
		var ymin, ymax float64 // ymin: the smallest positive value
		for _, s := range series {
			for _, p := range s.points {
				v := pn.value(p)
				ymax = max(ymax, v)
				if v > 0 && (ymin == 0 || v < ymin) {
					ymin = v
				}
			}
		}
		axis := linearAxis(ymax, pn.format)
		if pn.log {
			axis = logAxis(ymin, ymax)
		}
		xPos := func(c float64) float64 { return px0 + (math.Log2(c)-x0)/(x1-x0)*(px1-px0) }
		yPos := func(v float64) float64 { return py1 - axis.frac(v)*(py1-py0) }

		fmt.Fprintf(&b, `<g class="panel %s">`+"\n", pn.class)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="14" font-weight="bold">%s</text>`+"\n",
			(px0+px1)/2, py0-12, xmlEscape(pn.title))
		// Grid and tick labels.
		for i, t := range axis.ticks {
			y := yPos(t)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", px0, y, px1, y)
			fmt.Fprintf(&b, `<text class="ytick" x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n",
				px0-6, y, axis.labels[i])
		}
		xstep := max(1, int(math.Ceil((x1-x0)/10))) // at most ~10 x labels
		for e := int(x0); e <= int(x1); e += xstep {
			c := math.Exp2(float64(e))
			x := xPos(c)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", x, py0, x, py1)
			fmt.Fprintf(&b, `<text class="xtick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n",
				x, py1+18, strconv.FormatFloat(c, 'f', -1, 64))
		}
		// Axes and their titles.
		fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fH%.1f" fill="none" stroke="#333333"/>`+"\n", px0, py0, py1, px1)
		fmt.Fprintf(&b, `<text class="xlabel" x="%.1f" y="%.1f" text-anchor="middle">concurrency (workers, log2 scale)</text>`+"\n",
			(px0+px1)/2, py1+40)
		fmt.Fprintf(&b, `<text class="ylabel" x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
			left+16, (py0+py1)/2, left+16, (py0+py1)/2, xmlEscape(yTitle))
		// One line per series, with a marker and a tooltip per point.
		for si, s := range series {
			colour, dash := chartStyle(si)
			pts := make([]string, len(s.points))
			for i, p := range s.points {
				pts[i] = fmt.Sprintf("%.1f,%.1f", xPos(float64(p.concurrency)), yPos(pn.value(p)))
			}
			fmt.Fprintf(&b, `<polyline class="series" data-series="%s" points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n",
				xmlEscape(s.key.label()), strings.Join(pts, " "), colour, dashAttr(dash))
			for _, p := range s.points {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s, concurrency %d: %s ops/s, p99 %.3f ms (%d run%s)</title></circle>`+"\n",
					xPos(float64(p.concurrency)), yPos(pn.value(p)), colour, xmlEscape(s.key.label()),
					p.concurrency, thousands(int64(math.Round(p.opsPerSec))), p.p99ms, p.runs, plural(p.runs))
			}
		}
		b.WriteString("</g>\n")
	}

	// Legend below the panels, in columns filled top to bottom.
	b.WriteString(`<g class="legend">` + "\n")
	for si, s := range series {
		colour, dash := chartStyle(si)
		x := float64(chartPad + (si/legendRows)*chartLegendCol + chartMarginL)
		y := float64(chartTop+chartPanelH+chartPad) + float64(si%legendRows)*chartLegendRow
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", x, y, x+28, y, colour, dashAttr(dash))
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", x+14, y, colour)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", x+36, y, xmlEscape(s.key.label()))
	}
	b.WriteString("</g>\n</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// chartAxis is a y axis: where a value goes and the ticks to draw.
type chartAxis struct {
	log    bool
	lo, hi float64 // values at the bottom and the top
	ticks  []float64
	labels []string
}

// frac returns the height of v on the axis, 0 at the bottom and 1 at the
// top. On a log axis values below the bottom (zero) sit at the bottom.
func (a chartAxis) frac(v float64) float64 {
	if a.log {
		v = max(v, a.lo)
		return (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	}
	return (v - a.lo) / (a.hi - a.lo)
}

// linearAxis returns an axis from 0 to a round value at least maxV.
func linearAxis(maxV float64, format func(v, step float64) string) chartAxis {
	ticks, top := niceTicks(maxV)
	a := chartAxis{lo: 0, hi: top, ticks: ticks}
	for _, t := range ticks {
		a.labels = append(a.labels, format(t, ticks[1]-ticks[0]))
	}
	return a
}

// logAxis returns a log10 axis from a 1-2-5 value at most minPos (the
// smallest positive value) to one at least maxV, with a tick at each
// 1-2-5 value between, or only at powers of ten when that would make
// more than 12 ticks. With no positive value it is linearAxis.
func logAxis(minPos, maxV float64) chartAxis {
	if !(minPos > 0) || !(maxV > 0) {
		return linearAxis(maxV, formatMs)
	}
	kLo, kHi := int(math.Floor(math.Log10(minPos))), int(math.Ceil(math.Log10(maxV)))
	var cands []float64
	for k := kLo; k <= kHi; k++ {
		for _, m := range []int{1, 2, 5} {
			// Parsed from decimal so that labels are exact (0.2, not 0.2000001).
			v, _ := strconv.ParseFloat(fmt.Sprintf("%de%d", m, k), 64)
			cands = append(cands, v)
		}
	}
	lo := cands[0]
	for _, c := range cands {
		if c <= minPos {
			lo = c
		}
	}
	hi := cands[len(cands)-1]
	for i := len(cands) - 1; i >= 0; i-- {
		if cands[i] >= maxV && cands[i] > lo {
			hi = cands[i]
		}
	}
	var ticks []float64
	for _, c := range cands {
		if c >= lo && c <= hi {
			ticks = append(ticks, c)
		}
	}
	if len(ticks) > 12 {
		lo, hi = math.Pow(10, float64(kLo)), math.Pow(10, float64(kHi))
		ticks = ticks[:0]
		for k := kLo; k <= kHi; k++ {
			v, _ := strconv.ParseFloat(fmt.Sprintf("1e%d", k), 64)
			ticks = append(ticks, v)
		}
	}
	a := chartAxis{log: true, lo: lo, hi: hi, ticks: ticks}
	for _, t := range ticks {
		if t >= 1000 {
			a.labels = append(a.labels, thousands(int64(t)))
		} else {
			a.labels = append(a.labels, strconv.FormatFloat(t, 'f', -1, 64))
		}
	}
	return a
}

// chartStyle returns the colour and dash pattern of series i.
func chartStyle(i int) (colour, dash string) {
	n := len(chartPalette)
	return chartPalette[i%n], chartDashes[(i/n)%len(chartDashes)]
}

func dashAttr(dash string) string {
	if dash == "" {
		return ""
	}
	return fmt.Sprintf(` stroke-dasharray="%s"`, dash)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// niceTicks returns y ticks from 0 to a round number at least max, with a
// step of 1, 2 or 5 times a power of ten and 4 to 10 intervals, and that
// top value.
func niceTicks(maxV float64) (ticks []float64, top float64) {
	if !(maxV > 0) {
		return []float64{0, 1}, 1
	}
	raw := maxV / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	var step float64
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	n := int(math.Ceil(maxV/step - 1e-9))
	for i := 0; i <= n; i++ {
		ticks = append(ticks, float64(i)*step)
	}
	return ticks, float64(n) * step
}

// formatOps labels a throughput tick: 1,500 or 12k.
func formatOps(v, step float64) string {
	if v == 0 {
		return "0"
	}
	if step >= 1000 && math.Mod(v, 1000) == 0 {
		return thousands(int64(v/1000)) + "k"
	}
	if step >= 1 {
		return thousands(int64(math.Round(v)))
	}
	return formatMs(v, step)
}

// formatMs labels a latency tick with as many decimals as the step needs.
func formatMs(v, step float64) string {
	if v == 0 {
		return "0"
	}
	dec := 0
	if step > 0 && step < 1 {
		dec = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

// xmlEscape escapes s for use in SVG text and attribute values.
func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		default:
			if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFD {
				continue // not allowed in XML 1.0 (or a decoding error)
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
