package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// writeArtifacts writes a run's seed and configuration, result, history
// and fault timeline into its directory (which already holds the node
// logs and data directories).
func writeArtifacts(dir string, cfg Config, res *Result, rec *Recorder, tl *timeline) error {
	var errs []error
	meta := struct {
		Seed     int64    `json:"seed"`
		Scenario Scenario `json:"scenario"`
		Duration string   `json:"duration"`
		Clients  int      `json:"clients"`
		Binary   string   `json:"binary"`
		Result   *Result  `json:"result"`
	}{cfg.Seed, cfg.Scenario, cfg.Duration.String(), cfg.Clients, cfg.Binary, res}
	b, err := json.MarshalIndent(meta, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "run.json"), b, 0o644)
	}
	errs = append(errs, err)
	errs = append(errs, rec.WriteJSON(dir))
	var sb strings.Builder
	for _, ev := range tl.events() {
		fmt.Fprintf(&sb, "%10.3fs  %s\n", ev.At.Seconds(), ev.What)
	}
	errs = append(errs, os.WriteFile(filepath.Join(dir, "timeline.txt"), []byte(sb.String()), 0o644))
	for _, e := range errs {
		if e != nil {
			return fmt.Errorf("chaos: artifacts: %w", e)
		}
	}
	return nil
}

// containsLine reports whether any line of b contains marker.
func containsLine(b []byte, marker string) bool {
	return bytes.Contains(b, []byte(marker))
}

// Summary aggregates runs.
type Summary struct {
	Runs      int
	Failed    int
	Errors    int // runs the harness could not complete
	Ops       int
	Checked   int
	Unknown   int
	Elapsed   time.Duration
	runs      map[Scenario]int
	faults    map[Scenario]int
	anomalies map[Scenario]int
	// Findings lists each failed run: scenario, seed, directory and its
	// first anomalies.
	Findings []string
}

// Add counts one run's result, or the harness error of a run.
func (s *Summary) Add(sc Scenario, seed int64, res *Result, err error) {
	if s.runs == nil {
		s.runs, s.faults, s.anomalies = make(map[Scenario]int), make(map[Scenario]int), make(map[Scenario]int)
	}
	s.Runs++
	s.runs[sc]++
	if err != nil {
		s.Errors++
		dir := ""
		if res != nil {
			dir = res.Dir
		}
		s.Findings = append(s.Findings, fmt.Sprintf("%s seed %d: harness error: %v %s", sc, seed, err, dir))
		return
	}
	s.Ops += res.Ops
	s.Checked += res.Checked
	s.Unknown += res.Unknown
	s.Elapsed += res.Elapsed
	s.faults[sc] += res.Faults
	if res.Failed() {
		s.Failed++
		s.anomalies[sc] += len(res.Anomalies)
		first := res.Anomalies[:min(3, len(res.Anomalies))]
		s.Findings = append(s.Findings, fmt.Sprintf("%s seed %d (%s): %s; kept in %s", sc, seed, res.Timing, strings.Join(first, "; "), res.Dir))
	}
}

// Write prints the summary table: per scenario the runs, faults injected
// and anomalies, then totals and each failed run.
func (s *Summary) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\truns\tfaults\tanomalies\t")
	var names []Scenario
	for sc := range s.runs {
		names = append(names, sc)
	}
	slices.Sort(names)
	for _, sc := range names {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", sc, s.runs[sc], s.faults[sc], s.anomalies[sc])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "runs %d (failed %d, harness errors %d), operations %d (unknown outcome %d), checked %d, run time %s\n",
		s.Runs, s.Failed, s.Errors, s.Ops, s.Unknown, s.Checked, s.Elapsed.Round(time.Second))
	for _, f := range s.Findings {
		fmt.Fprintln(w, "FAILED:", f)
	}
	return nil
}
