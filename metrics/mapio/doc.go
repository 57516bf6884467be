// Package mapio reads the inputs of an external evaluation: anomaly maps as
// float32 TIFF (what the MVTec AD evaluation script reads), NumPy .npy, or
// 8/16-bit grayscale PNG, and image scores as a path,score CSV.
//
// Every reader takes untrusted bytes: malformed input is an error naming the
// problem (callers add the file name), never a panic or a huge allocation;
// the size a header declares is checked against the pixel budget
// (internal/budget, docs/README.md#budgets) before anything is allocated.
// Map values are float32 because that is what the metrics compare; integer
// maps convert exactly, float64 maps are rounded and say so.
package mapio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Map is one single-channel anomaly map, row-major.
type Map struct {
	Width, Height int
	Pix           []float32
	// Rounded is true when the file held float64 values that were rounded
	// to float32 (which can merge distinct scores into ties).
	Rounded bool
}

// ErrFormat marks a file that is not a valid, supported map.
var ErrFormat = errors.New("unsupported or malformed map")

// Extensions are the map file extensions ReadFile understands, in the order
// a map for one image is looked up.
var Extensions = []string{".tiff", ".tif", ".npy", ".png"}

// ReadFile reads a map, choosing the format by extension (.tif, .tiff, .npy,
// .png, any case).
func ReadFile(path string) (*Map, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m *Map
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".tif", ".tiff":
		m, err = DecodeTIFF(data)
	case ".npy":
		m, err = DecodeNPYMap(data)
	case ".png":
		m, err = DecodePNG(data)
	default:
		return nil, fmt.Errorf("mapio: %s: unknown map extension %q: %w", path, ext, ErrFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
