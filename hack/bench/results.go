/*
Copyright 2026 The Clearance Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Result is one row of bench/results.json (docs/performance.md). A timed row is judged as a
// ratio to a floor measured in the same run, interleaved with it (the best any code could do on
// the same machine in the same minute); a count, a size or a promise to users is judged as the
// value itself.
type Result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Floor is the same figure for the bare baseline, in Unit, measured in the same run.
	Floor float64 `json:"floor,omitempty"`
	// Ratio is Value/Floor (rows with a floor only).
	Ratio float64 `json:"ratio,omitempty"`
	// Judged says what Target applies to: "ratio", "value", or "none" (a figure recorded for
	// the record, with no target in the design).
	Judged string  `json:"judged"`
	Target float64 `json:"target,omitempty"`
	// Direction is "max" (the judged figure must stay at or under the target) or "min" (at or
	// over).
	Direction string `json:"direction,omitempty"`
	Pass      bool   `json:"pass"`
	// Note says how the figure was measured, with the absolute figures behind a ratio.
	Note string `json:"note,omitempty"`
}

const (
	judgedRatio = "ratio"
	judgedValue = "value"
	judgedNone  = "none"
)

// Results collects the rows in the order they are measured.
type Results struct{ Rows []Result }

// AtMost records a figure whose target is a ceiling on the value itself.
func (r *Results) AtMost(name string, value float64, unit string, target float64, note string) {
	r.add(Result{Name: name, Value: value, Unit: unit, Target: target, Judged: judgedValue, Direction: "max", Note: note})
}

// AtLeast records a figure whose target is a floor on the value itself.
func (r *Results) AtLeast(name string, value float64, unit string, target float64, note string) {
	r.add(Result{Name: name, Value: value, Unit: unit, Target: target, Judged: judgedValue, Direction: "min", Note: note})
}

// RatioAtMost records a figure against its same-run floor; value/floor must stay at or under
// target.
func (r *Results) RatioAtMost(name string, value, floor float64, unit string, target float64, note string) {
	r.add(Result{Name: name, Value: value, Floor: floor, Unit: unit, Target: target, Judged: judgedRatio, Direction: "max", Note: note})
}

// RatioAtLeast records a figure against its same-run baseline; value/floor must be at least
// target (throughput: the bare handler is the most any code could serve).
func (r *Results) RatioAtLeast(name string, value, floor float64, unit string, target float64, note string) {
	r.add(Result{Name: name, Value: value, Floor: floor, Unit: unit, Target: target, Judged: judgedRatio, Direction: "min", Note: note})
}

// AtMostWithFloor records a value judged absolutely (a bound promised to users) beside its
// same-run floor, whose ratio is recorded but not judged.
func (r *Results) AtMostWithFloor(name string, value, floor float64, unit string, target float64, note string) {
	r.add(Result{Name: name, Value: value, Floor: floor, Unit: unit, Target: target, Judged: judgedValue, Direction: "max", Note: note})
}

// Record keeps a figure with no target in the design (it always passes).
func (r *Results) Record(name string, value float64, unit string, note string) {
	r.add(Result{Name: name, Value: value, Unit: unit, Judged: judgedNone, Note: note})
}

func (r *Results) add(row Result) {
	if row.Floor != 0 {
		row.Ratio = row.Value / row.Floor
	}
	judged := row.Value
	if row.Judged == judgedRatio {
		judged = row.Ratio
	}
	switch row.Direction {
	case "max":
		row.Pass = judged <= row.Target
	case "min":
		row.Pass = judged >= row.Target
	default:
		row.Pass = true
	}
	row.Value, row.Floor, row.Ratio = round(row.Value), round(row.Floor), round(row.Ratio)
	r.Rows = append(r.Rows, row)
	line := fmt.Sprintf("bench: %s = %s %s", row.Name, num(row.Value), row.Unit)
	if row.Floor != 0 {
		line += fmt.Sprintf(", floor %s %s, ratio %s", num(row.Floor), row.Unit, num(row.Ratio))
	}
	if t := targetText(row); t != "" {
		line += " (target " + t + ")"
	}
	fmt.Fprintln(os.Stderr, line)
}

// targetText is "ratio ≤ 1.3", "≤ 250 ms", or "" for a recorded figure.
func targetText(row Result) string {
	dir := map[string]string{"max": "≤ ", "min": "≥ "}[row.Direction]
	switch row.Judged {
	case judgedRatio:
		return "ratio " + dir + num(row.Target)
	case judgedValue:
		return dir + num(row.Target) + " " + row.Unit
	}
	return ""
}

// Write saves the rows as JSON.
func (r *Results) Write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r.Rows, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// Print writes the table: name, value, floor, ratio, target, pass.
func (r *Results) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVALUE\tFLOOR\tRATIO\tTARGET\tPASS")
	for _, row := range r.Rows {
		floor, ratio := "-", "-"
		if row.Floor != 0 {
			floor, ratio = num(row.Floor)+" "+row.Unit, num(row.Ratio)
		}
		target := targetText(row)
		if target == "" {
			target = "-"
		}
		pass := "yes"
		if !row.Pass {
			pass = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\n", row.Name, num(row.Value), row.Unit, floor, ratio, target, pass)
	}
	_ = tw.Flush()
}

// Failed lists the rows that missed their targets.
func (r *Results) Failed() []string {
	var out []string
	for _, row := range r.Rows {
		if !row.Pass {
			out = append(out, row.Name)
		}
	}
	return out
}

func round(v float64) float64 {
	s := fmt.Sprintf("%.4g", v)
	var out float64
	_, _ = fmt.Sscan(s, &out)
	return out
}

func num(v float64) string {
	s := fmt.Sprintf("%.4g", v)
	if strings.Contains(s, "e+") {
		s = fmt.Sprintf("%.0f", v)
	}
	return s
}
