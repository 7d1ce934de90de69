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

// Result is one row of bench/results.json: {name, value, unit, target, ratio, pass} (docs/performance.md).
type Result struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target float64 `json:"target"`
	// Ratio is value/target: a row passes at ≤ 1 when Direction is "max", at ≥ 1 when "min".
	Ratio float64 `json:"ratio"`
	Pass  bool    `json:"pass"`
	// Direction is "max" (the value must stay at or under the target) or "min" (at or over).
	Direction string `json:"direction"`
	// Note says how the figure was measured, in a few words.
	Note string `json:"note,omitempty"`
}

// Results collects the rows in the order they are measured.
type Results struct{ Rows []Result }

// AtMost records a figure whose target is a ceiling.
func (r *Results) AtMost(name string, value float64, unit string, target float64, note string) {
	r.add(Result{Name: name, Value: value, Unit: unit, Target: target, Direction: "max", Note: note, Pass: value <= target})
}

// AtLeast records a figure whose target is a floor.
func (r *Results) AtLeast(name string, value float64, unit string, target float64, note string) {
	r.add(Result{Name: name, Value: value, Unit: unit, Target: target, Direction: "min", Note: note, Pass: value >= target})
}

func (r *Results) add(row Result) {
	switch {
	case row.Target != 0:
		row.Ratio = row.Value / row.Target
	case row.Value == 0:
		row.Ratio = 0 // a target of zero met exactly
	default:
		row.Ratio = row.Value // a target of zero missed: the ratio is the excess itself
	}
	row.Value, row.Ratio = round(row.Value), round(row.Ratio)
	r.Rows = append(r.Rows, row)
	fmt.Fprintf(os.Stderr, "bench: %s = %s %s (target %s %s)\n", row.Name, num(row.Value), row.Unit, map[string]string{"max": "≤", "min": "≥"}[row.Direction], num(row.Target))
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

// Print writes the table: name, value, unit, target, ratio, pass.
func (r *Results) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVALUE\tUNIT\tTARGET\tRATIO\tPASS")
	for _, row := range r.Rows {
		target := map[string]string{"max": "≤ ", "min": "≥ "}[row.Direction] + num(row.Target)
		pass := "yes"
		if !row.Pass {
			pass = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, num(row.Value), row.Unit, target, num(row.Ratio), pass)
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
