//go:build !(linux && cgo)

package preprocess

// Without cgo the passes run in Go (same integers, same pixels).

func horizontal(dst, src plane, first int, c coeffs) { horizontalGo(dst, src, first, c) }

func vertical(out []uint8, tmp plane, vert coeffs, first, n int) {
	verticalGo(out, tmp, vert, first, n)
}
