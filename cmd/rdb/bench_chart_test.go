package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// syntheticReports returns reports of the sweep that scripts/bench-sweep.sh
// runs, with made-up figures.
func syntheticReports() []*benchReport {
	var out []*benchReport
	for _, s := range []struct{ workload, consistency, target string }{
		{workloadInsert, "", targetLeader},
		{workloadPointRead, "none", targetLeader},
		{workloadPointRead, "weak", targetLeader},
		{workloadPointRead, "linearizable", targetLeader},
		{workloadPointRead, "strong", targetLeader},
		{workloadPointRead, "linearizable", targetFollower},
	} {
		for i, c := range []int{1, 2, 4, 8, 16, 32, 64} {
			base := float64(500 * (len(s.consistency) + 1))
			out = append(out, &benchReport{
				Workload: s.workload, Consistency: s.consistency, Target: s.target, Concurrency: c,
				OpsPerSec: base * float64(i+1), P99ms: 1.5 * float64(c) / float64(len(s.target)),
				Errors: map[string]int64{},
			})
		}
	}
	return out
}

// writeReports writes reports to a file in dir as bench prints them
// (indented), or one per line with oneLine.
func writeReports(t testing.TB, dir, name string, oneLine bool, reports ...*benchReport) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if !oneLine {
		enc.SetIndent("", "  ")
	}
	for _, r := range reports {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// svgDoc is the part of the chart the tests look at.
type svgDoc struct {
	XMLName xml.Name `xml:"svg"`
	Title   string   `xml:"title"`
	Groups  []svgG   `xml:"g"`
}

type svgG struct {
	Class     string        `xml:"class,attr"`
	Polylines []svgPolyline `xml:"polyline"`
	Texts     []svgText     `xml:"text"`
	Circles   []struct{}    `xml:"circle"`
}

type svgPolyline struct {
	Series string `xml:"data-series,attr"`
	Points string `xml:"points,attr"`
}

type svgText struct {
	Class string `xml:"class,attr"`
	Text  string `xml:",chardata"`
}

func parseSVG(t testing.TB, b []byte) svgDoc {
	t.Helper()
	var doc svgDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("chart is not well-formed XML: %v", err)
	}
	// xml.Unmarshal stops at the root; decode every token too.
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
	return doc
}

func TestRenderBenchChart(t *testing.T) {
	reports := syntheticReports()
	slices.Reverse(reports) // the series order does not depend on the input's
	var buf bytes.Buffer
	if err := renderBenchChart(&buf, benchChartOptions{title: `3 nodes <loopback> & "quotes"`, latencyScale: chartScaleLinear}, reports); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	if doc.Title != `3 nodes <loopback> & "quotes"` {
		t.Errorf("title = %q", doc.Title)
	}
	wantSeries := []string{
		"insert → leader",
		"point-read none → leader",
		"point-read weak → leader",
		"point-read linearizable → leader",
		"point-read linearizable → follower",
		"point-read strong → leader",
	}
	panels := map[string]svgG{}
	var legend []string
	for _, g := range doc.Groups {
		panels[g.Class] = g
		if g.Class == "legend" {
			for _, tx := range g.Texts {
				legend = append(legend, tx.Text)
			}
		}
	}
	if strings.Join(legend, "|") != strings.Join(wantSeries, "|") {
		t.Errorf("legend = %q, want %q", legend, wantSeries)
	}
	for _, class := range []string{"panel throughput", "panel latency"} {
		g, ok := panels[class]
		if !ok {
			t.Fatalf("no group %q", class)
		}
		if len(g.Polylines) != len(wantSeries) {
			t.Errorf("%s: %d polylines, want one per series (%d)", class, len(g.Polylines), len(wantSeries))
		}
		for i, pl := range g.Polylines {
			if i < len(wantSeries) && pl.Series != wantSeries[i] {
				t.Errorf("%s: polyline %d is %q, want %q", class, i, pl.Series, wantSeries[i])
			}
			if n := len(strings.Fields(pl.Points)); n != 7 {
				t.Errorf("%s: %s has %d points, want 7", class, pl.Series, n)
			}
		}
		if len(g.Circles) != 7*len(wantSeries) {
			t.Errorf("%s: %d markers, want %d", class, len(g.Circles), 7*len(wantSeries))
		}
		var xticks []string
		labels := map[string]bool{}
		for _, tx := range g.Texts {
			switch tx.Class {
			case "xtick":
				xticks = append(xticks, tx.Text)
			case "xlabel", "ylabel":
				labels[tx.Text] = true
			}
		}
		if got := strings.Join(xticks, " "); got != "1 2 4 8 16 32 64" {
			t.Errorf("%s: x ticks %q, want 1 2 4 ... 64", class, got)
		}
		want := "throughput (ops/s)"
		if class == "panel latency" {
			want = "p99 latency (ms)"
		}
		if !labels[want] || !labels["concurrency (workers, log2 scale)"] {
			t.Errorf("%s: axis labels %v, want %q and the concurrency label", class, labels, want)
		}
	}
}

func TestGroupBenchReports_AveragesRepeats(t *testing.T) {
	reports := []*benchReport{
		{Workload: workloadInsert, Target: targetLeader, Concurrency: 4, OpsPerSec: 100, P99ms: 2},
		{Workload: workloadInsert, Target: targetLeader, Concurrency: 1, OpsPerSec: 50, P99ms: 1},
		{Workload: workloadInsert, Target: targetLeader, Concurrency: 4, OpsPerSec: 300, P99ms: 4},
		{Workload: workloadBatch, Target: targetLeader, Batch: 100, Concurrency: 1, OpsPerSec: 10, P99ms: 9},
	}
	series := groupBenchReports(reports)
	if len(series) != 2 {
		t.Fatalf("%d series, want 2", len(series))
	}
	s := series[0]
	if len(s.points) != 2 || s.points[0].concurrency != 1 || s.points[1].concurrency != 4 {
		t.Fatalf("points %+v, want concurrency 1 then 4", s.points)
	}
	if p := s.points[1]; p.opsPerSec != 200 || p.p99ms != 3 || p.runs != 2 {
		t.Errorf("repeated point %+v, want the mean of two runs", p)
	}
	if got := series[1].key.label(); got != "batch 100 rows → leader" {
		t.Errorf("batch label %q", got)
	}
}

func TestReadBenchReports(t *testing.T) {
	dir := t.TempDir()
	reports := syntheticReports()
	indented := writeReports(t, dir, "one.json", false, reports[0])
	lines := writeReports(t, dir, "many.jsonl", true, reports[1:5]...)
	for _, tc := range []struct {
		file string
		want int
	}{{indented, 1}, {lines, 4}} {
		got, err := readBenchReportFile(tc.file)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if len(got) != tc.want {
			t.Errorf("%s: %d reports, want %d", tc.file, len(got), tc.want)
		}
	}
}

func TestBenchChartErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writeReports(t, dir, "good.json", false, syntheticReports()[0])
	zeroConc := *syntheticReports()[0]
	zeroConc.Concurrency = 0
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no files", nil, []string{"no bench reports"}},
		{"empty file", []string{write("empty.json", " \n")}, []string{"empty.json", "no bench reports"}},
		{"malformed", []string{good, write("bad.json", `{"workload": "insert", `)}, []string{"bad.json", "not valid JSON"}},
		{"not an object", []string{write("array.json", `[1, 2]`)}, []string{"array.json", "not a bench report"}},
		{"other json", []string{write("other.json", `{"name": "x"}`)}, []string{"other.json", "not a bench report", `"workload"`}},
		{"second object bad", []string{write("two.jsonl", `{"workload":"insert","concurrency":1,"target":"leader","ops_per_sec":1,"p99_ms":1}`+"\n"+`{"x":1}`)}, []string{"two.jsonl: report 2", "not a bench report"}},
		{"zero concurrency", []string{writeReports(t, dir, "zero.json", false, &zeroConc)}, []string{"zero.json", "concurrency 0"}},
		{"missing file", []string{filepath.Join(dir, "nope.json")}, []string{"nope.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runBenchChart(&benchChartOptions{out: filepath.Join(dir, "out.svg"), latencyScale: chartScaleLog}, tc.args, &out)
			if tc.args == nil { // through cobra, for the empty-args message
				_, err = runBenchArgs(t, "chart")
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, statErr := os.Stat(filepath.Join(dir, "out.svg")); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("out.svg written despite the error")
			}
		})
	}
	if err := renderBenchChart(io.Discard, benchChartOptions{title: "t", latencyScale: chartScaleLog}, nil); !errors.Is(err, errNoReports) {
		t.Errorf("render of no reports: %v, want errNoReports", err)
	}
	if err := renderBenchChart(io.Discard, benchChartOptions{title: "t", latencyScale: chartScaleLog}, []*benchReport{&zeroConc}); err == nil || !strings.Contains(err.Error(), "concurrency 0") {
		t.Errorf("render of concurrency 0: %v", err)
	}
}

func TestBenchChartCommand_WritesFile(t *testing.T) {
	dir := t.TempDir()
	rs := syntheticReports()
	a := writeReports(t, dir, "a.json", false, rs[0])
	b := writeReports(t, dir, "b.jsonl", true, rs[1:]...)
	out := filepath.Join(dir, "chart.svg")
	if _, err := runBenchArgs(t, "chart", "--out", out, "--title", "sweep", a, b); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if doc := parseSVG(t, data); doc.Title != "sweep" {
		t.Errorf("title %q", doc.Title)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	// Without --out the SVG goes to stdout.
	stdout, err := runBenchArgs(t, "chart", a)
	if err != nil {
		t.Fatal(err)
	}
	parseSVG(t, []byte(stdout))
}

func TestLogAxis(t *testing.T) {
	for _, tc := range []struct {
		min, max float64
		want     string
	}{
		{0.61, 50.07, "0.5 1 2 5 10 20 50 100"},
		{1, 10, "1 2 5 10"},
		{3, 3, "2 5"},
		{0.0004, 2000, "0.0001 0.001 0.01 0.1 1 10 100 1,000 10,000"},
		{0, 0, "0 1"}, // no positive value: linear
	} {
		a := logAxis(tc.min, tc.max)
		if got := strings.Join(a.labels, " "); got != tc.want {
			t.Errorf("logAxis(%v, %v) = %q, want %q", tc.min, tc.max, got, tc.want)
		}
		if tc.min > 0 && (a.frac(tc.min) < 0 || a.frac(tc.max) > 1 || a.frac(0) != 0) {
			t.Errorf("logAxis(%v, %v): data outside the axis [%v, %v]", tc.min, tc.max, a.lo, a.hi)
		}
	}
}

func TestBenchChartLatencyScale(t *testing.T) {
	dir := t.TempDir()
	in := writeReports(t, dir, "in.json", false, syntheticReports()...)
	for scale, want := range map[string]string{
		"log":    "p99 latency (ms, log scale)",
		"linear": "p99 latency (ms)",
	} {
		out, err := runBenchArgs(t, "chart", "--latency-scale", scale, in)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, ">"+want+"<") {
			t.Errorf("--latency-scale %s: no axis title %q", scale, want)
		}
		parseSVG(t, []byte(out))
	}
	if _, err := runBenchArgs(t, "chart", "--latency-scale", "sqrt", in); err == nil || !strings.Contains(err.Error(), "--latency-scale") {
		t.Errorf("--latency-scale sqrt: %v", err)
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		max  float64
		want string
		top  float64
	}{
		{0, "0 1", 1},
		{7, "0 2 4 6 8", 8},
		{10, "0 2 4 6 8 10", 10},
		{3665, "0 1000 2000 3000 4000", 4000},
		{0.37, "0 0.1 0.2 0.3 0.4", 0.4},
		{52.3, "0 20 40 60", 60},
	} {
		ticks, top := niceTicks(tc.max)
		var s []string
		for _, v := range ticks {
			s = append(s, formatMs(v, ticks[1]-ticks[0]))
		}
		if got := strings.Join(s, " "); got != tc.want || top != tc.top {
			t.Errorf("niceTicks(%v) = %q top %v, want %q top %v", tc.max, got, top, tc.want, tc.top)
		}
	}
	if got := formatOps(12000, 2000); got != "12k" {
		t.Errorf("formatOps(12000) = %q", got)
	}
	if got := formatOps(1500, 500); got != "1,500" {
		t.Errorf("formatOps(1500) = %q", got)
	}
}
