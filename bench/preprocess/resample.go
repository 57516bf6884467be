package preprocess

import "math"

// This file reimplements Pillow's two-pass resampler (Image.resize with
// BICUBIC or BILINEAR, Pillow 9.4, libImaging/Resample.c) so that our pixels
// equal PIL's, not merely come close: weights are computed in float64 over
// the antialiasing support, normalised, rounded to 22-bit fixed point, and
// both passes accumulate in int32 and round to 8 bits, the horizontal pass
// first. disintegration/imaging's CatmullRom would stay within 1/255; the
// exact version also runs on 3 channels and integers, and feeds the
// normalisation directly.

// precisionBits is Pillow's fixed-point precision for 8-bit images
// (PRECISION_BITS = 32 - 8 - 2).
const precisionBits = 32 - 8 - 2

type filter int

const (
	bicubic  filter = iota // Keys cubic, a = -0.5: PIL BICUBIC
	bilinear               // triangle: PIL BILINEAR
)

func (f filter) support() float64 {
	if f == bicubic {
		return 2
	}
	return 1
}

// weight evaluates the kernel. The explicit float64 conversions stop the
// compiler fusing multiply-adds, which would change the last bit on some
// platforms.
func (f filter) weight(x float64) float64 {
	x = math.Abs(x)
	if f == bilinear {
		if x < 1 {
			return 1 - x
		}
		return 0
	}
	const a = -0.5
	switch {
	case x < 1:
		return float64(float64(float64(float64((a+2)*x)-(a+3))*x)*x) + 1
	case x < 2:
		return float64(float64(float64(float64((x-5)*x)+8)*x)-4) * a
	}
	return 0
}

// coeffs are the fixed-point weights of one axis: output i reads n[i] input
// samples from start[i] with weights k[i*ksize:].
type coeffs struct {
	ksize    int
	start, n []int
	k        []int32
}

func precompute(inSize, outSize int, f filter) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1)
	support := f.support() * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{ksize: ksize, start: make([]int, outSize), n: make([]int, outSize), k: make([]int32, outSize*ksize)}
	pre := make([]float64, ksize)
	ss := 1 / filterscale
	for xx := range outSize {
		center := (float64(xx) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0) // int() truncates toward zero, as C's cast
		xmax := min(int(center+support+0.5), inSize) - xmin
		ww := 0.0
		for x := range xmax {
			w := f.weight((float64(x+xmin) - center + 0.5) * ss)
			pre[x] = w
			ww += w
		}
		k := c.k[xx*ksize : xx*ksize+xmax]
		for x := range k {
			w := pre[x]
			if ww != 0 {
				w /= ww
			}
			if w < 0 {
				k[x] = int32(-0.5 + w*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + w*(1<<precisionBits))
			}
		}
		c.start[xx], c.n[xx] = xmin, xmax
	}
	return c
}

func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// plane is an 8-bit image whose pixels hold ch channels in the first ch of
// every ps bytes (ps = 4 reads RGB out of RGBA memory without a copy).
type plane struct {
	pix          []uint8
	w, h, stride int
	ch, ps       int
	pooled       bool    // pix came from getPix and goes back with release
	whole        []uint8 // the pooled buffer pix lies in, when it starts later
	scratch      bool    // pooled in resizePool
}

// release returns a pooled plane's pixels for reuse.
func (p plane) release() {
	switch {
	case p.scratch:
		resizePool.Put(&p.pix)
	case p.pooled && p.whole != nil:
		putPix(p.whole)
	case p.pooled:
		putPix(p.pix)
	}
}

// resize squash-resizes src to dw×dh as Pillow does and calls emit with each
// output row, packed with src.ch channels per pixel. emit must not keep row.
func resize(src plane, dw, dh int, f filter, emit func(y int, row []uint8)) {
	ch := src.ch
	needH, needV := src.w != dw, src.h != dh
	if !needH && !needV {
		row := make([]uint8, dw*ch)
		for y := range dh {
			packRow(row, src, y)
			emit(y, row)
		}
		return
	}
	var vert coeffs
	first, last := 0, src.h
	if needV {
		vert = precompute(src.h, dh, f)
		first = vert.start[0]
		last = vert.start[dh-1] + vert.n[dh-1]
	}
	// tmp holds rows [first, last) after the horizontal pass, packed.
	var tmp plane
	if needH {
		tmp = plane{pix: getFrom(&resizePool, (last-first)*dw*ch), w: dw, h: last - first, stride: dw * ch, ch: ch, ps: ch, scratch: true}
		defer tmp.release()
		horizontal(tmp, src, first, precompute(src.w, dw, f))
	} else {
		tmp = src
		tmp.pix = src.pix[first*src.stride:]
		tmp.h = last - first
		if src.ps != ch {
			tmp = plane{pix: getFrom(&resizePool, tmp.h*dw*ch), w: dw, h: tmp.h, stride: dw * ch, ch: ch, ps: ch, scratch: true}
			defer tmp.release()
			for y := range tmp.h {
				packRow(tmp.pix[y*tmp.stride:(y+1)*tmp.stride], src, first+y)
			}
		}
	}
	if !needV {
		for y := range dh {
			emit(y, tmp.pix[y*tmp.stride:y*tmp.stride+dw*ch])
		}
		return
	}
	n := dw * ch
	out := getFrom(&resizePool, dh*n)
	defer resizePool.Put(&out)
	vertical(out, tmp, vert, first, n)
	for yy := range dh {
		emit(yy, out[yy*n:(yy+1)*n])
	}
}

// verticalGo resamples the columns of tmp (rows first.. of the source
// after the horizontal pass, n bytes each) into out, len(vert.start) rows
// of n bytes.
func verticalGo(out []uint8, tmp plane, vert coeffs, first, n int) {
	acc := make([]int32, n)
	for yy := range vert.start {
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		y0 := vert.start[yy] - first
		for j, w := range vert.k[yy*vert.ksize : yy*vert.ksize+vert.n[yy]] {
			in := tmp.pix[(y0+j)*tmp.stride:][:n]
			for i, v := range in {
				acc[i] += int32(v) * w
			}
		}
		row := out[yy*n : (yy+1)*n]
		for i, v := range acc {
			row[i] = clip8(v)
		}
	}
}

// horizontalGo resamples rows [first, first+dst.h) of src into dst.
func horizontalGo(dst, src plane, first int, c coeffs) {
	const half = 1 << (precisionBits - 1)
	for y := range dst.h {
		in := src.pix[(first+y)*src.stride:]
		out := dst.pix[y*dst.stride:]
		for xx := range dst.w {
			k := c.k[xx*c.ksize : xx*c.ksize+c.n[xx]]
			p := in[c.start[xx]*src.ps:]
			switch {
			case src.ch == 1:
				s := int32(half)
				for i, w := range k {
					s += int32(p[i*src.ps]) * w
				}
				out[xx] = clip8(s)
			case src.ps == 4: // RGBA memory, alpha skipped
				s0, s1, s2 := int32(half), int32(half), int32(half)
				p = p[:4*len(k)]
				for i := 0; i+3 < len(p); i += 4 { // this loop shape needs no bounds checks
					w := k[i>>2]
					s0 += int32(p[i]) * w
					s1 += int32(p[i+1]) * w
					s2 += int32(p[i+2]) * w
				}
				o := out[xx*3 : xx*3+3 : xx*3+3]
				o[0], o[1], o[2] = clip8(s0), clip8(s1), clip8(s2)
			default: // packed RGB
				s0, s1, s2 := int32(half), int32(half), int32(half)
				p = p[:3*len(k)]
				for i, w := range k {
					q := p[3*i : 3*i+3 : 3*i+3]
					s0 += int32(q[0]) * w
					s1 += int32(q[1]) * w
					s2 += int32(q[2]) * w
				}
				o := out[xx*3 : xx*3+3 : xx*3+3]
				o[0], o[1], o[2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
	}
}

// packRow copies row y of p into dst with p.ch channels per pixel.
func packRow(dst []uint8, p plane, y int) {
	in := p.pix[y*p.stride:]
	if p.ps == p.ch {
		copy(dst, in[:p.w*p.ch])
		return
	}
	for x := range p.w {
		copy(dst[x*p.ch:(x+1)*p.ch], in[x*p.ps:x*p.ps+p.ch])
	}
}
