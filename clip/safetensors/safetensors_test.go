package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/budget"
	"github.com/dapobench/dapobench/internal/budget/budgettest"
)

func TestRoundTrip(t *testing.T) {
	ts := []Tensor{
		F32("b.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, -6.5}),
		F16("a.half", []int{3}, []float32{0.5, -2, 65504}),
		I64("c.ids", []int{2}, []int64{-1, 49407}),
		F32("scalar", []int{}, []float32{3}),
	}
	var buf bytes.Buffer
	if err := Write(&buf, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := Write(&again, []Tensor{ts[3], ts[2], ts[1], ts[0]}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("Write is not deterministic over input order")
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" || len(f.Tensors) != 4 || f.Tensors[0].Name != "a.half" {
		t.Fatalf("parsed %+v", f)
	}
	b, _ := f.Get("b.weight")
	v, err := b.Float32()
	if err != nil || !slices.Equal(v, []float32{1, 2, 3, 4, 5, -6.5}) || !slices.Equal(b.Shape, []int{2, 3}) {
		t.Errorf("b.weight = %v %v %v", v, b.Shape, err)
	}
	a, _ := f.Get("a.half")
	if v, _ := a.Float32(); !slices.Equal(v, []float32{0.5, -2, 65504}) {
		t.Errorf("a.half = %v", v)
	}
	c, _ := f.Get("c.ids")
	if v, _ := c.Int64(); !slices.Equal(v, []int64{-1, 49407}) {
		t.Errorf("c.ids = %v", v)
	}
	if _, ok := f.Get("missing"); ok {
		t.Error("Get found a missing tensor")
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteFile(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err != nil {
		t.Fatal(err)
	}
}

func header(s string) []byte {
	b := make([]byte, 8, 8+len(s)+16)
	binary.LittleEndian.PutUint64(b, uint64(len(s)))
	return append(b, s...)
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		buf  []byte
		want string
	}{
		{"short", []byte{1, 2}, "too short"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<40), "exceeds"},
		{"bad json", header("{"), "header"},
		{"dtype", header(`{"x":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}}`), "unsupported dtype"},
		{"offsets", header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`), "outside"},
		{"size", append(header(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`), 0, 0, 0, 0), "want 8"},
		{"shape", header(`{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`), "bad shape"},
		{"overflowing shape", header(`{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`), "bad shape"},
		// The format requires the data to be indexed entirely, once.
		{"overlap", append(header(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`), make([]byte, 8)...), `"y": data offsets [4, 8) overlaps`},
		{"same bytes twice", append(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`), make([]byte, 4)...), "overlaps"},
		{"hole", append(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`), make([]byte, 8)...), "leaves bytes [0, 4) unindexed"},
		{"inverted", append(header(`{"x":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`), make([]byte, 4)...), "outside"},
		{"trailing data", append(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`), make([]byte, 12)...), "index 4 of the 12 data bytes"},
		{"duplicate name", append(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`), make([]byte, 4)...), "listed twice"},
		{"junk after header", append(header(`{}x`), make([]byte, 0)...), "after the JSON object"},
	} {
		_, err := Parse(c.buf)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "nope.safetensors")); err == nil || !strings.Contains(err.Error(), "nope.safetensors") {
		t.Errorf("ReadFile of a missing file: %v", err)
	}
}

// TestReadFileBeforeData checks that ReadFile judges a file by its header
// before reading its data: a 100 000 × 100 000 tensor declared in a few
// bytes is refused having allocated next to nothing, and so is a file over
// the tensor budget.
func TestReadFileBeforeData(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bomb.safetensors")
	if err := os.WriteFile(p, append(header(`{"x":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,40000000000]}}`), 1, 2, 3, 4), 0o644); err != nil {
		t.Fatal(err)
	}
	budgettest.Allocs(t, 1<<16, func() {
		if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), "outside the 4 data bytes") || !strings.Contains(err.Error(), "bomb.safetensors") {
			t.Errorf("bomb: %v", err)
		}
	})
	q := filepath.Join(dir, "w.safetensors")
	if err := WriteFile(q, []Tensor{F32("x", []int{4, 4}, make([]float32, 16))}, nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv(budget.TensorEnv, "15")
	if _, err := ReadFile(q); !errors.Is(err, budget.ErrExceeded) || !strings.Contains(err.Error(), budget.TensorEnv) {
		t.Errorf("over the budget: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, []Tensor{F32("x", []int{2}, []float32{1, 2})}, map[string]string{"k": "v"})
	f.Add(buf.Bytes())
	f.Add(header(`{"x":{"dtype":"F16","shape":[1,1],"data_offsets":[0,2]}}`))
	f.Add(append(header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}}`), 1, 2, 3, 4, 5, 6, 7, 8))
	budgettest.Limit(f, budgettest.SmallPixels, 1<<16)
	f.Fuzz(func(t *testing.T, b []byte) {
		// Parse aliases its input; only conversions allocate, at most 2×
		// the data (F16 to float32) plus the header's structures; the
		// streaming reader adds its 1 MiB buffer and its own conversions.
		budgettest.Allocs(t, 2<<20+32*uint64(len(b)), func() {
			file, err := Parse(b)
			streamed := map[string][]float32{}
			serr := readFloat32(bytes.NewReader(b), int64(len(b)), nil, func(name string, _ []int, v []float32) error {
				streamed[name] = v
				return nil
			})
			if (err == nil) != (serr == nil) {
				t.Fatalf("Parse error %v, ReadFloat32 error %v", err, serr)
			}
			if err != nil {
				return
			}
			for _, ts := range file.Tensors {
				v, err := ts.Float32()
				if err != nil {
					ts.Int64()
					continue
				}
				if !slices.EqualFunc(v, streamed[ts.Name], func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
					t.Fatalf("%s: streamed %v, parsed %v", ts.Name, streamed[ts.Name], v)
				}
			}
		})
	})
}

// TestReadFloat32 checks the streaming reader against Parse: every float
// dtype, integer tensors skipped, gaps and overlapping ranges refused, the
// file's digest, and errors that name the file.
func TestReadFloat32(t *testing.T) {
	ts := []Tensor{
		F32("b.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, -6.5}),
		F16("a.half", []int{3}, []float32{0.5, -2, 65504}),
		I64("c.ids", []int{2}, []int64{-1, 49407}),
		F32("scalar", []int{}, []float32{3}),
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteFile(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	got := map[string][]float32{}
	var order []string
	err := ReadFloat32(path, h, func(name string, shape []int, v []float32) error {
		got[name] = v
		order = append(order, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if want := sha256.Sum256(raw); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Error("digest differs from the file's sha256")
	}
	if !slices.Equal(order, []string{"a.half", "b.weight", "scalar"}) { // storage order, no integers
		t.Errorf("order %v", order)
	}
	if !slices.Equal(got["b.weight"], []float32{1, 2, 3, 4, 5, -6.5}) || !slices.Equal(got["a.half"], []float32{0.5, -2, 65504}) {
		t.Errorf("values %v", got)
	}
	// A gap before the data and a tensor overlapping another (BF16 view
	// of the F32 bytes) are refused, as Parse refuses them.
	b := append(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"y":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}}`), 9, 9, 9, 9, 0, 0, 0x80, 0x3f)
	_, perr := Parse(b)
	serr := readFloat32(bytes.NewReader(b), int64(len(b)), nil, func(string, []int, []float32) error { return nil })
	if perr == nil || serr == nil || perr.Error() != serr.Error() {
		t.Errorf("gap and overlap: Parse %v, ReadFloat32 %v", perr, serr)
	}
	if err := ReadFloat32(filepath.Join(t.TempDir(), "nope.safetensors"), nil, nil); err == nil || !strings.Contains(err.Error(), "nope.safetensors") {
		t.Errorf("missing file: %v", err)
	}
	os.WriteFile(path, raw[:len(raw)-3], 0o644)
	if err := ReadFloat32(path, nil, func(string, []int, []float32) error { return nil }); err == nil || !strings.Contains(err.Error(), "w.safetensors") {
		t.Errorf("truncated file: %v", err)
	}
}
