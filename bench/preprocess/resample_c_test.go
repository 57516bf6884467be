//go:build linux && cgo

package preprocess

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestPassesMatchGo: the C passes give the Go passes' bytes on random
// planes of every layout (gray, RGB, RGB in RGBA memory, rows with a
// leading byte as the PNG path leaves them), shrinking and enlarging.
func TestPassesMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ w, h, dw, dh, ch, ps, pad int }{
		{1024, 1024, 518, 518, 3, 3, 0}, {1024, 1024, 518, 518, 3, 4, 1}, {1024, 768, 336, 336, 1, 1, 1},
		{100, 37, 518, 518, 3, 3, 0}, {7, 5, 3, 11, 3, 4, 0}, {64, 64, 64, 31, 1, 1, 0}, {1, 1, 9, 9, 3, 3, 1},
	} {
		stride := tc.w*tc.ps + tc.pad
		buf := make([]uint8, tc.h*stride+tc.pad)
		for i := range buf {
			buf[i] = uint8(r.Uint32())
		}
		src := plane{pix: buf[tc.pad:], w: tc.w, h: tc.h, stride: stride, ch: tc.ch, ps: tc.ps}
		for _, f := range []filter{bicubic, bilinear} {
			h := precompute(tc.w, tc.dw, f)
			v := precompute(tc.h, tc.dh, f)
			n := tc.dw * tc.ch
			tmpC := plane{pix: make([]uint8, tc.h*n), w: tc.dw, h: tc.h, stride: n, ch: tc.ch, ps: tc.ch}
			tmpGo := tmpC
			tmpGo.pix = make([]uint8, tc.h*n)
			horizontal(tmpC, src, 0, h)
			horizontalGo(tmpGo, src, 0, h)
			if !bytes.Equal(tmpC.pix, tmpGo.pix) {
				t.Fatalf("%+v filter %d: horizontal pass differs", tc, f)
			}
			outC, outGo := make([]uint8, tc.dh*n), make([]uint8, tc.dh*n)
			vertical(outC, tmpC, v, 0, n)
			verticalGo(outGo, tmpGo, v, 0, n)
			if !bytes.Equal(outC, outGo) {
				t.Fatalf("%+v filter %d: vertical pass differs", tc, f)
			}
		}
	}
}
