package main

// A small bar-chart renderer on image/png (no plotting dependency): one panel
// per side and size, a group of bars per operation, one bar per contestant,
// ns/op on a log scale.

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

var palette = []color.RGBA{
	{0xd6, 0x27, 0x28, 0xff}, // mapcore: red
	{0x1f, 0x77, 0xb4, 0xff},
	{0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff},
	{0x8c, 0x56, 0x4b, 0xff},
}

type canvas struct{ img *image.RGBA }

func (c canvas) rect(x0, y0, x1, y1 int, col color.Color) {
	draw.Draw(c.img, image.Rect(x0, y0, x1, y1), &image.Uniform{col}, image.Point{}, draw.Src)
}

func (c canvas) text(x, y int, s string, col color.Color) {
	d := &font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func textWidth(s string) int { return 7 * len([]rune(s)) }

func (c canvas) hline(x0, x1, y int, col color.Color) { c.rect(x0, y, x1, y+1, col) }

const (
	panelW  = 1500
	panelH  = 330
	marginL = 70
	marginR = 20
	marginT = 48
	marginB = 40
)

func plot(d *db, path string) error {
	type panel struct {
		s sideInfo
		n int
	}
	var panels []panel
	for _, s := range sides {
		for _, n := range d.sizes(s.key) {
			panels = append(panels, panel{s, n})
		}
	}
	if len(panels) == 0 {
		return fmt.Errorf("nothing to plot")
	}
	img := image.NewRGBA(image.Rect(0, 0, panelW, 36+panelH*len(panels)))
	c := canvas{img}
	c.rect(0, 0, panelW, img.Bounds().Dy(), color.White)
	c.text(10, 22, "mapcore vs peers: median ns per operation (log scale, lower is better; batch rows per key, 2T rows wall time per op)", color.Black)
	for i, p := range panels {
		drawPanel(c, d, p.s, p.n, 36+i*panelH)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}

func drawPanel(c canvas, d *db, s sideInfo, n, top int) {
	grey := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	dark := color.RGBA{0x44, 0x44, 0x44, 0xff}
	var cols []string
	for _, name := range s.cols {
		for _, r := range d.recs {
			if r.Side == s.key && r.N == n && r.Contestant == name {
				cols = append(cols, name)
				break
			}
		}
	}
	var shown []opInfo
	lo, hi := math.Inf(1), 0.0
	for _, o := range ops {
		any := false
		for _, cn := range cols {
			if v, ok := d.get(s.key, cn, o.op, n, o.threads); ok && v > 0 {
				any = true
				lo = math.Min(lo, v)
				hi = math.Max(hi, v)
			}
		}
		if any {
			shown = append(shown, o)
		}
	}
	c.text(10, top+16, fmt.Sprintf("%s side, N = %s", s.key, fmtN(n)), color.Black)
	// Legend.
	// A contestant keeps its colour whether or not the others ran.
	colour := func(cn string) color.RGBA {
		for i, x := range s.cols {
			if x == cn {
				return palette[i%len(palette)]
			}
		}
		return palette[len(palette)-1]
	}
	x := 200
	for _, cn := range cols {
		c.rect(x, top+6, x+12, top+18, colour(cn))
		c.text(x+16, top+16, s.names[cn], dark)
		x += 16 + textWidth(s.names[cn]) + 24
	}
	if len(shown) == 0 {
		return
	}
	y0, y1 := top+marginT, top+panelH-marginB
	x0, x1 := marginL, panelW-marginR
	decLo := math.Floor(math.Log10(lo / 2)) // room under the shortest bar
	decHi := math.Ceil(math.Log10(hi))
	if decHi <= decLo {
		decHi = decLo + 1
	}
	ypos := func(v float64) int {
		f := (math.Log10(v) - decLo) / (decHi - decLo)
		return y1 - int(f*float64(y1-y0))
	}
	for e := decLo; e <= decHi; e++ {
		v := math.Pow(10, e)
		y := ypos(v)
		c.hline(x0, x1, y, grey)
		label := fmt.Sprintf("%g ns", v)
		c.text(x0-textWidth(label)-6, y+4, label, dark)
		for _, m := range []float64{2, 5} {
			if e < decHi {
				c.hline(x0, x1, ypos(v*m), color.RGBA{0xf0, 0xf0, 0xf0, 0xff})
			}
		}
	}
	c.rect(x0, y0, x0+1, y1, dark)
	c.hline(x0, x1, y1, dark)
	groupW := (x1 - x0) / len(shown)
	barW := (groupW - 10) / max(len(cols), 1)
	for gi, o := range shown {
		gx := x0 + gi*groupW + 5
		for ci, cn := range cols {
			v, ok := d.get(s.key, cn, o.op, n, o.threads)
			if !ok || v <= 0 {
				continue
			}
			bx := gx + ci*barW
			c.rect(bx, ypos(v), bx+barW-1, y1, colour(cn))
		}
		lx := gx + (groupW-10)/2 - textWidth(o.short)/2
		c.text(lx, y1+16, o.short, dark)
	}
}
