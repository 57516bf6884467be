//go:build linux && cgo

package preprocess

/*
#cgo CFLAGS: -O3
#include <stdint.h>

static inline uint8_t clip8(int32_t v) {
	v >>= 22; // precisionBits
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

// The two passes of Pillow's resampler (libImaging/Resample.c) in the same
// integer arithmetic as horizontalGo and verticalGo: the same pixels, in C
// because the compiler vectorises the vertical pass and keeps the
// horizontal taps in registers.

static void dapobench_horizontal(uint8_t *dst, long dst_stride, int dst_w, int dst_h,
		const uint8_t *src, long src_stride, int ch, int ps,
		const int32_t *k, int ksize, const int32_t *start, const int32_t *n) {
	const int32_t half = 1 << 21;
	for (int y = 0; y < dst_h; y++) {
		const uint8_t *in = src + (long)y * src_stride;
		uint8_t *out = dst + (long)y * dst_stride;
		for (int xx = 0; xx < dst_w; xx++) {
			const int32_t *kk = k + (long)xx * ksize;
			const uint8_t *p = in + (long)start[xx] * ps;
			int taps = n[xx];
			if (ch == 1) {
				int32_t s = half;
				for (int i = 0; i < taps; i++) {
					s += (int32_t)p[i * ps] * kk[i];
				}
				out[xx] = clip8(s);
			} else {
				int32_t s0 = half, s1 = half, s2 = half;
				for (int i = 0; i < taps; i++) {
					const uint8_t *q = p + i * ps;
					int32_t w = kk[i];
					s0 += (int32_t)q[0] * w;
					s1 += (int32_t)q[1] * w;
					s2 += (int32_t)q[2] * w;
				}
				out[xx * 3] = clip8(s0);
				out[xx * 3 + 1] = clip8(s1);
				out[xx * 3 + 2] = clip8(s2);
			}
		}
	}
}

static void dapobench_vertical(uint8_t *out, int rows, int n, int32_t *acc,
		const uint8_t *tmp, long tmp_stride,
		const int32_t *k, int ksize, const int32_t *start, const int32_t *taps, int first) {
	for (int yy = 0; yy < rows; yy++) {
		for (int i = 0; i < n; i++) {
			acc[i] = 1 << 21;
		}
		const int32_t *kk = k + (long)yy * ksize;
		int y0 = start[yy] - first;
		for (int j = 0; j < taps[yy]; j++) {
			const uint8_t *in = tmp + (long)(y0 + j) * tmp_stride;
			int32_t w = kk[j];
			for (int i = 0; i < n; i++) {
				acc[i] += (int32_t)in[i] * w;
			}
		}
		uint8_t *row = out + (long)yy * n;
		for (int i = 0; i < n; i++) {
			row[i] = clip8(acc[i]);
		}
	}
}
*/
import "C"

import "unsafe"

// cCoeffs are an axis' weights as the C passes read them.
type cCoeffs struct {
	k          *C.int32_t
	ksize      C.int
	start, n   []C.int32_t
	startP, nP *C.int32_t
}

func toC(c coeffs) cCoeffs {
	out := cCoeffs{k: (*C.int32_t)(unsafe.Pointer(&c.k[0])), ksize: C.int(c.ksize),
		start: make([]C.int32_t, len(c.start)), n: make([]C.int32_t, len(c.n))}
	for i := range c.start {
		out.start[i], out.n[i] = C.int32_t(c.start[i]), C.int32_t(c.n[i])
	}
	out.startP, out.nP = &out.start[0], &out.n[0]
	return out
}

// horizontal resamples rows [first, first+dst.h) of src into dst.
func horizontal(dst, src plane, first int, c coeffs) {
	if dst.h == 0 || dst.w == 0 {
		return
	}
	cc := toC(c)
	C.dapobench_horizontal((*C.uint8_t)(unsafe.Pointer(&dst.pix[0])), C.long(dst.stride), C.int(dst.w), C.int(dst.h),
		(*C.uint8_t)(unsafe.Pointer(&src.pix[first*src.stride])), C.long(src.stride), C.int(src.ch), C.int(src.ps),
		cc.k, cc.ksize, cc.startP, cc.nP)
}

// vertical resamples the columns of tmp (rows first.. of the source after
// the horizontal pass, n bytes each) into out, len(vert.start) rows of n
// bytes.
func vertical(out []uint8, tmp plane, vert coeffs, first, n int) {
	rows := len(vert.start)
	if rows == 0 || n == 0 {
		return
	}
	cc := toC(vert)
	acc := make([]C.int32_t, n)
	C.dapobench_vertical((*C.uint8_t)(unsafe.Pointer(&out[0])), C.int(rows), C.int(n), &acc[0],
		(*C.uint8_t)(unsafe.Pointer(&tmp.pix[0])), C.long(tmp.stride),
		cc.k, cc.ksize, cc.startP, cc.nP, C.int(first))
}
