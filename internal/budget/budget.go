// Package budget owns the limits on what a file from a user can make
// dapobench allocate: the pixel budget of every decoder of images, masks and
// anomaly maps, and the tensor budget of every reader of weights and
// checkpoints. Readers check a file's header against them before they
// allocate anything, so that a small crafted file (a decompression bomb, a
// checkpoint declaring a tensor of ten billion values) is refused with an
// error naming it instead of exhausting memory (docs/README.md#budgets).
//
// Both limits are generous defaults that a user with unusually large inputs
// raises through an environment variable, which every command honours.
package budget

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
)

const (
	// DefaultPixels is the largest image, mask or map (width × height) a
	// decoder accepts: Pillow's decompression-bomb error limit, twice its
	// Image.MAX_IMAGE_PIXELS, so that every image the reference code opens
	// opens here too (Real-IAD's raw images are 2.6 M pixels; the limit is
	// 179 M).
	DefaultPixels = 2 * 89478485
	// PixelsEnv raises or lowers the pixel budget.
	PixelsEnv = "DAPOBENCH_MAX_PIXELS"

	// DefaultTensorElements is the largest number of values one weights or
	// checkpoint file may make a reader allocate, all its tensors together:
	// 2^31 values (8 GiB as float32), five times ViT-L/14's 428 million
	// parameters. Only larger models than any scheme here uses (ViT-bigG)
	// need it raised.
	DefaultTensorElements = 1 << 31
	// TensorEnv raises or lowers the tensor budget.
	TensorEnv = "DAPOBENCH_MAX_TENSOR_ELEMENTS"

	// DeflateRatio is the most that Deflate (PNG, zip) expands its input:
	// a stream of n bytes never yields more than DeflateRatio·n bytes, so a
	// smaller file cannot hold what its header declares.
	DeflateRatio = 1032
)

// ErrExceeded marks a file whose header declares more than a budget allows.
var ErrExceeded = errors.New("over the size budget")

// exceeded is an error that says by how much a budget was exceeded and
// matches ErrExceeded without repeating its text.
type exceeded string

func (e exceeded) Error() string        { return string(e) }
func (e exceeded) Is(target error) bool { return target == ErrExceeded }

// limit reads a budget from its environment variable, or the default.
func limit(env string, def int64) (int64, error) {
	s := os.Getenv(env)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("budget: %s=%q: want a positive integer", env, s)
	}
	return n, nil
}

// Pixels is the pixel budget in force: DefaultPixels unless PixelsEnv
// says otherwise.
func Pixels() (int64, error) { return limit(PixelsEnv, DefaultPixels) }

// TensorElements is the tensor budget in force: DefaultTensorElements
// unless TensorEnv says otherwise.
func TensorElements() (int64, error) { return limit(TensorEnv, DefaultTensorElements) }

// CheckPixels refuses an image whose header declares a non-positive side
// or more pixels than the pixel budget. The error matches ErrExceeded when
// the budget is what refused it.
func CheckPixels(width, height int) error {
	if width <= 0 || height <= 0 {
		return fmt.Errorf("size %d×%d: want positive sides", width, height)
	}
	max, err := Pixels()
	if err != nil {
		return err
	}
	if n := int64(width) * int64(height); n > max {
		return exceeded(fmt.Sprintf("%d×%d = %d pixels, more than the pixel budget of %d (raise %s for larger images)",
			width, height, n, max, PixelsEnv))
	}
	return nil
}

// Elements multiplies a shape's dimensions, refusing negative ones and
// products that overflow an int64.
func Elements(shape []int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: negative dimension", shape)
		}
		if d > 0 && n > math.MaxInt64/int64(d) {
			return 0, fmt.Errorf("shape %v: more values than an int64 counts", shape)
		}
		n *= int64(d)
	}
	return n, nil
}

// Tensors counts the values one file's reader has been asked to allocate,
// against the tensor budget. It is not safe for concurrent use.
type Tensors struct {
	max, used int64
}

// NewTensors starts a count for one file.
func NewTensors() (*Tensors, error) {
	max, err := TensorElements()
	if err != nil {
		return nil, err
	}
	return &Tensors{max: max}, nil
}

// Take adds n values to the count, refusing them (ErrExceeded) when the
// file's total would pass the budget. what names them in the error.
func (t *Tensors) Take(n int64, what string) error {
	if n < 0 {
		return fmt.Errorf("%s: %d values", what, n)
	}
	if n > t.max-t.used {
		return exceeded(fmt.Sprintf("%s: %d values, with %d before them more than the tensor budget of %d per file (raise %s for larger models)",
			what, n, t.used, t.max, TensorEnv))
	}
	t.used += n
	return nil
}
