package safetensors

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, []Tensor{F32("x", []int{2}, []float32{1, 2})}, map[string]string{"k": "v"})
	f.Add(buf.Bytes())
	f.Add(header(`{"x":{"dtype":"F16","shape":[1,1],"data_offsets":[0,2]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		for _, ts := range file.Tensors {
			if _, err := ts.Float32(); err != nil {
				ts.Int64()
			}
		}
	})
}
