// Package budgettest checks, in tests and fuzz targets, that a decoder
// stays within a memory bound: a decompression bomb the fuzzer finds then
// fails the run as an ordinary test failure, long before it could exhaust
// the machine (docs/README.md#budgets).
package budgettest

import (
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/dapobench/dapobench/internal/budget"
)

// SmallPixels is the pixel budget fuzz targets set (4096 pixels) so that
// every input that passes it is fast to decode and the allocation bound
// below is tight.
const SmallPixels = 4096

// Limit lowers the budgets for the rest of the test (t.Setenv, so the
// test must not be parallel) and caps the Go heap with a soft memory limit,
// so that the garbage collector works hard to stay within it.
func Limit(t testing.TB, pixels, elements int64) {
	t.Helper()
	t.Setenv(budget.PixelsEnv, strconv.FormatInt(pixels, 10))
	t.Setenv(budget.TensorEnv, strconv.FormatInt(elements, 10))
}

// Allocs runs f and fails t when f allocated more than max bytes on the
// heap in total: the size assertion that turns a bomb into a failure.
func Allocs(t testing.TB, max uint64, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > max {
		t.Fatalf("allocated %d bytes, more than the %d this input may cost", got, max)
	}
}

// Bomb is the path of one of the crafted files in internal/budget/testdata
// (gen_bombs.py writes them): a few dozen bytes each, whose headers
// declare 100 000 × 100 000 pixels (gray.png, rgb.png, palette.png,
// gray16.png, f32.tif, f32.npy), 65 000 × 65 000 (rgb.jpg), or 13 000 ×
// 13 000 in 69 bytes (thin.png). Every decoder's tests read them from here,
// the one place that owns the budgets.
func Bomb(t testing.TB, name string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("budgettest: cannot locate the bombs")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata", name)
}
