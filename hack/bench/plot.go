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
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// panelSpec is one small chart: points joined by a line, each target as a grey line.
type panelSpec struct {
	title   string
	xLabel  string
	xs, ys  []float64
	logX    bool
	targets []float64
	format  string // of each point's label
}

// plotScale draws the scale model (bench/scale.png) as four panels: the mint ratio per batch
// and the operator's RSS against the cluster's key total, and the verifier's heap per key and
// p99 ratio against the size of its index. Panels without points are left out. Plain image/png
// with x/image's bitmap font: no plotting library for a dozen points.
func plotScale(path string, points []scalePoint, verifier []verifierPoint) error {
	var panels []panelSpec
	if len(points) > 0 {
		mint := panelSpec{title: "mint: Clearance / bare writes (target 1.15, then 1.3)", xLabel: "keys in the cluster", targets: []float64{1.15, 1.3}, format: "%.2f"}
		rss := panelSpec{title: "operator RSS, MiB (target 150 up to 5k keys)", xLabel: "keys in the cluster", targets: []float64{150}, format: "%.0f"}
		for _, p := range points {
			if p.floorSeconds > 0 {
				mint.xs = append(mint.xs, float64(p.keys))
				mint.ys = append(mint.ys, p.seconds/p.floorSeconds)
			}
			rss.xs = append(rss.xs, float64(p.keys))
			rss.ys = append(rss.ys, p.rssMiB)
		}
		panels = append(panels, mint, rss)
	}
	if len(verifier) > 0 {
		heap := panelSpec{title: "verifier index: heap bytes per key (target 300)", xLabel: "keys in the index (log)", logX: true, targets: []float64{300}, format: "%.0f"}
		p99 := panelSpec{title: "verifier p99 / bare p99, same load (target 1.5)", xLabel: "keys in the index (log)", logX: true, targets: []float64{1.5}, format: "%.2f"}
		for _, p := range verifier {
			heap.xs = append(heap.xs, float64(p.keys))
			heap.ys = append(heap.ys, p.bytesPerKey)
			if p.bare > 0 {
				p99.xs = append(p99.xs, float64(p.keys))
				p99.ys = append(p99.ys, p.p99/p.bare)
			}
		}
		panels = append(panels, heap, p99)
	}
	if len(panels) == 0 {
		return nil
	}
	const pw, ph = 420, 260
	cols := min(2, len(panels))
	rows := (len(panels) + 1) / 2
	img := image.NewRGBA(image.Rect(0, 0, cols*pw, rows*ph))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	colors := []color.RGBA{{30, 90, 200, 255}, {200, 40, 40, 255}, {20, 140, 70, 255}, {150, 60, 170, 255}}
	for i, p := range panels {
		drawPanel(img, image.Rect((i%2)*pw, (i/2)*ph, (i%2+1)*pw, (i/2+1)*ph), p, colors[i%len(colors)])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func drawPanel(img *image.RGBA, r image.Rectangle, p panelSpec, c color.RGBA) {
	black, grey := color.RGBA{0, 0, 0, 255}, color.RGBA{170, 170, 170, 255}
	left, right, top, bottom := r.Min.X+50, r.Max.X-20, r.Min.Y+30, r.Max.Y-40
	text(img, r.Min.X+10, r.Min.Y+16, p.title, black)
	text(img, (left+right)/2-len(p.xLabel)*7/2, r.Max.Y-8, p.xLabel, black)
	line(img, left, bottom, right, bottom, black)
	line(img, left, top, left, bottom, black)
	if len(p.xs) == 0 {
		return
	}
	yMax := slices.Max(p.targets) * 1.5
	for _, y := range p.ys {
		yMax = math.Max(yMax, y*1.2)
	}
	xOf := func(x float64) float64 { return x }
	if p.logX {
		xOf = math.Log10
	}
	xMin, xMax := xOf(p.xs[0]), xOf(p.xs[0])
	for _, x := range p.xs {
		xMin, xMax = math.Min(xMin, xOf(x)), math.Max(xMax, xOf(x))
	}
	if !p.logX {
		xMin = 0
	}
	if xMax == xMin {
		xMin, xMax = xMin-1, xMax+1
	}
	pad := (xMax - xMin) * 0.08
	xMin, xMax = xMin-pad, xMax+pad
	px := func(x float64) int { return left + int((xOf(x)-xMin)/(xMax-xMin)*float64(right-left)) }
	py := func(y float64) int { return bottom - int(y/yMax*float64(bottom-top)) }
	for _, t := range p.targets {
		ty := py(t)
		line(img, left, ty, right, ty, grey)
		text(img, r.Min.X+4, ty+4, num(t), grey)
	}
	text(img, r.Min.X+4, bottom+4, "0", black)
	lastX, lastY, tickEnd := -1, -1, math.MinInt
	for i, x := range p.xs {
		X, Y := px(x), py(p.ys[i])
		for dx := -3; dx <= 3; dx++ {
			for dy := -3; dy <= 3; dy++ {
				img.Set(X+dx, Y+dy, c)
			}
		}
		if lastX >= 0 {
			line(img, lastX, lastY, X, Y, c)
		}
		lastX, lastY = X, Y
		label := fmt.Sprintf(p.format, p.ys[i])
		text(img, X-len(label)*7/2, Y-8, label, c)
		tick := fmt.Sprintf("%g", x)
		switch {
		case x >= 1_000_000:
			tick = fmt.Sprintf("%gM", x/1_000_000)
		case x >= 1000:
			tick = fmt.Sprintf("%gk", x/1000)
		}
		if start := X - len(tick)*7/2; start > tickEnd { // ticks too close together: the first only
			text(img, start, bottom+16, tick, black)
			tickEnd = start + len(tick)*7 + 4
		}
	}
}

// text draws s with its baseline at (x, y) in x/image's 7×13 bitmap font.
func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// line draws a straight line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
