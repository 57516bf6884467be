package mapio

import (
	"errors"
	"fmt"
	"math"

	"github.com/dapobench/dapobench/internal/budget"

	"github.com/dapobench/dapobench/internal/npy"
)

// DecodeNPY parses a NumPy .npy file (format versions 1, 2 and 3) holding
// float16/32/64, uint8/16, int8/16 or bool values, in either byte order and
// either memory order.
func DecodeNPY(data []byte) (*npy.Array, error) {
	max, err := budget.Pixels()
	if err != nil {
		return nil, fmt.Errorf("mapio: %w", err)
	}
	a, err := npy.Decode(data, int(min(max, math.MaxInt32)))
	if errors.Is(err, npy.ErrTooLarge) {
		return nil, fmt.Errorf("mapio: %v, the pixel budget (raise %s for larger maps): %w", err, budget.PixelsEnv, ErrFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("mapio: %v: %w", err, ErrFormat)
	}
	return a, nil
}

// DecodeNPYMap decodes a .npy map: a 2-D array, or 3-D with a singleton
// first or last axis ((1,H,W) or (H,W,1)).
func DecodeNPYMap(data []byte) (*Map, error) {
	a, err := DecodeNPY(data)
	if err != nil {
		return nil, err
	}
	s := a.Shape
	switch {
	case len(s) == 3 && s[0] == 1:
		s = s[1:]
	case len(s) == 3 && s[2] == 1:
		s = s[:2]
	}
	if len(s) != 2 || s[0] == 0 || s[1] == 0 {
		return nil, fmt.Errorf("mapio: npy: shape %v is not one map (H, W): %w", a.Shape, ErrFormat)
	}
	return &Map{Width: s[1], Height: s[0], Pix: a.Data, Rounded: a.Rounded}, nil
}
