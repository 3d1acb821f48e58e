package main

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"
)

// plotName is the file, beside the report, that holds the start plot.
const plotName = "benchmarks-start.svg"

// Plot geometry, in SVG user units.
const (
	plotWidth, plotHeight = 760, 460
	plotLeft, plotRight   = 70, 250
	plotTop, plotBottom   = 40, 50
)

// plotColors are told apart by most readers, colour-blind ones included.
var plotColors = []string{"#000000", "#777777", "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442"}

// plotStart draws the median time to all running against N for every
// system, both axes logarithmic, as SVG written by hand: one polyline and
// its points per system, the floors dashed, a legend on the right.
// It returns "" when nothing was measured.
func plotStart(r *results) string {
	type series struct {
		name   string
		points [][2]float64 // N, ms
	}
	var all []series
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, sys := range r.systems {
		s := series{name: sys}
		for _, n := range r.cfg.ns {
			if d := r.samples[cell{scenarioRunning, sys, n}]; len(d) > 0 {
				v := float64(median(d)) / float64(time.Millisecond)
				s.points = append(s.points, [2]float64{float64(n), v})
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		if len(s.points) > 0 {
			all = append(all, s)
		}
	}
	if len(all) == 0 {
		return ""
	}
	nLo, nHi := float64(r.cfg.ns[0]), float64(r.cfg.ns[0])
	for _, n := range r.cfg.ns {
		nLo, nHi = min(nLo, float64(n)), max(nHi, float64(n))
	}
	if nHi == nLo {
		nHi = nLo * 10
	}
	// Whole decades of milliseconds bound the y axis.
	yLo, yHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yHi == yLo {
		yHi++
	}
	w, h := float64(plotWidth-plotLeft-plotRight), float64(plotHeight-plotTop-plotBottom)
	x := func(n float64) float64 {
		return plotLeft + w*(math.Log10(n)-math.Log10(nLo))/(math.Log10(nHi)-math.Log10(nLo))
	}
	y := func(v float64) float64 { return plotTop + h*(1-(math.Log10(v)-yLo)/(yHi-yLo)) }

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotWidth, plotHeight, plotWidth, plotHeight)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="%d" y="22" font-size="14" font-weight="bold">Time until all N containers run (median, ms, log scale)</text>`+"\n", plotLeft)
	for d := yLo; d <= yHi; d++ {
		v := math.Pow(10, d)
		p(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#dddddd"/>`+"\n", plotLeft, plotLeft+w, y(v), y(v))
		p(`<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", plotLeft-6, y(v), tickLabel(v))
	}
	for _, n := range r.cfg.ns {
		p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#dddddd"/>`+"\n", x(float64(n)), x(float64(n)), plotTop, plotTop+h)
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(float64(n)), plotTop+h+18, n)
	}
	p(`<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#000000"/>`+"\n", plotLeft, plotTop, w, h)
	p(`<text x="%.1f" y="%d" text-anchor="middle">containers (N, log scale)</text>`+"\n", plotLeft+w/2, plotHeight-12)
	for i, s := range all {
		color := plotColors[i%len(plotColors)]
		dash := ""
		if strings.HasPrefix(s.name, "floor") {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts []string
		for _, pt := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(pt[0]), y(pt[1])))
		}
		p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), color, dash)
		for _, pt := range s.points {
			p(`<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s, N=%d: %.1f ms</title></circle>`+"\n", x(pt[0]), y(pt[1]), color, html.EscapeString(s.name), int(pt[0]), pt[1])
		}
		ly := float64(plotTop + 10 + 20*i)
		lx := float64(plotWidth - plotRight + 15)
		p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, lx+24, ly, ly, color, dash)
		p(`<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", lx+30, ly, html.EscapeString(s.name))
	}
	p("</svg>\n")
	return b.String()
}

// tickLabel writes a decade of milliseconds as people read it.
func tickLabel(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%g s", ms/1000)
	default:
		return fmt.Sprintf("%g ms", ms)
	}
}
