package main

import (
	"fmt"
	"html"
	"strings"
)

// svg draws the ratios as horizontal bars with each target as a dashed
// line: green when the target is met, red when missed, grey without one.
func svg(bars []bar) string {
	const (
		labelW, plotW, rowH, top, left = 330.0, 420.0, 28.0, 40.0, 10.0
	)
	max := 1.5
	for _, b := range bars {
		if b.ok && b.value > max {
			max = b.value
		}
		if b.target > max {
			max = b.target
		}
	}
	max *= 1.1
	x := func(v float64) float64 { return left + labelW + plotW*v/max }
	h := top + rowH*float64(len(bars)) + 30
	w := left + labelW + plotW + 70
	var s strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&s, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%.0f" y="20" font-size="14" font-weight="bold">seclisten / reference (dashed: target)</text>`+"\n", left)
	for _, v := range []float64{0, 0.5, 1, 1.5, 2, 3, 4, 5} {
		if v > max {
			break
		}
		p(`<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/>`+"\n", x(v), top-5, x(v), h-25)
		p(`<text x="%.1f" y="%.0f" text-anchor="middle" fill="#666">%g</text>`+"\n", x(v), h-10, v)
	}
	for i, b := range bars {
		y := top + rowH*float64(i)
		p(`<text x="%.0f" y="%.1f">%s</text>`+"\n", left, y+rowH/2+4, html.EscapeString(b.label))
		if !b.ok {
			p(`<text x="%.1f" y="%.1f" fill="#666">not measured</text>`+"\n", x(0)+4, y+rowH/2+4)
			continue
		}
		color := "#999"
		if b.target != 0 {
			color = "#c0392b"
			if (!b.atMost && b.value >= b.target) || (b.atMost && b.value <= b.target) {
				color = "#27ae60"
			}
		}
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x(0), y+4, x(b.value)-x(0), rowH-8, color)
		p(`<text x="%.1f" y="%.1f">%.2f</text>`+"\n", x(b.value)+4, y+rowH/2+4, b.value)
		if b.target != 0 {
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-width="2" stroke-dasharray="4,2"/>`+"\n", x(b.target), y+1, x(b.target), y+rowH-1)
		}
	}
	p("</svg>\n")
	return s.String()
}
