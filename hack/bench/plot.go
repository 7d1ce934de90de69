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
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
)

// plotScale draws the scale model as two small panels side by side: mint seconds per 1,000
// keys (blue) and RSS in MiB (red) against the key total, each with its target as a grey line.
// Plain image/png: no plotting library for three points.
func plotScale(path string, points []scalePoint) error {
	if len(points) == 0 {
		return nil
	}
	const w, h, pad = 640, 260, 30
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	maxKeys := float64(points[len(points)-1].keys)
	panel := func(x0 int, values []float64, target float64, c color.RGBA) {
		top := target * 1.5
		for _, v := range values {
			if v > top {
				top = v * 1.2
			}
		}
		pw := w/2 - 2*pad
		ph := h - 2*pad
		grey := color.RGBA{180, 180, 180, 255}
		black := color.RGBA{0, 0, 0, 255}
		line(img, x0, h-pad, x0+pw, h-pad, black)
		line(img, x0, pad, x0, h-pad, black)
		ty := h - pad - int(target/top*float64(ph))
		line(img, x0, ty, x0+pw, ty, grey)
		px, py := -1, -1
		for i, v := range values {
			x := x0 + int(float64(points[i].keys)/maxKeys*float64(pw))
			y := h - pad - int(v/top*float64(ph))
			for dx := -3; dx <= 3; dx++ {
				for dy := -3; dy <= 3; dy++ {
					img.Set(x+dx, y+dy, c)
				}
			}
			if px >= 0 {
				line(img, px, py, x, y, c)
			}
			px, py = x, y
		}
	}
	var secondsPerK, rss []float64
	for _, p := range points {
		secondsPerK = append(secondsPerK, p.seconds/float64(p.batch)*1000)
		rss = append(rss, p.rssMiB)
	}
	panel(pad, secondsPerK, 10, color.RGBA{30, 90, 200, 255})
	panel(w/2+pad, rss, 150, color.RGBA{200, 40, 40, 255})
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
