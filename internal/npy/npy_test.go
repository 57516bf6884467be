package npy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestNumpyFiles reads files written by numpy.save (testdata/gen.py).
func TestNumpyFiles(t *testing.T) {
	for _, c := range []struct {
		file  string
		shape []int
		data  []float32
	}{
		{"f4_2x3.npy", []int{2, 3}, []float32{-2.5, -1.5, -0.5, 0.5, 1.5, 2.5}},
		{"f8_4.npy", []int{4}, []float32{1.5, -2, 3, 1e-3}},
	} {
		a, err := ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a.Shape, c.shape) || !slices.Equal(a.Data, c.data) {
			t.Errorf("%s = %v %v, want %v %v", c.file, a.Shape, a.Data, c.shape, c.data)
		}
	}
}

// TestWriteMatchesNumpy checks that Write gives numpy.save's exact bytes.
func TestWriteMatchesNumpy(t *testing.T) {
	want, err := os.ReadFile("testdata/f4_2x3.npy")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, []int{2, 3}, []float32{-2.5, -1.5, -0.5, 0.5, 1.5, 2.5}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Write =\n%q\nnumpy.save =\n%q", buf.Bytes(), want)
	}
	path := filepath.Join(t.TempDir(), "v.npy")
	if err := WriteFile(path, []int{3}, []float32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	a, err := ReadFile(path)
	if err != nil || !slices.Equal(a.Shape, []int{3}) || !slices.Equal(a.Data, []float32{1, 2, 3}) {
		t.Errorf("round trip = %v, %v", a, err)
	}
	if err := Write(&buf, []int{2}, []float32{1}); err == nil {
		t.Error("Write accepted a shape that does not match the data")
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/f4_2x3.npy")
	f.Add(b)
	f.Add([]byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Decode(b, DefaultMaxElems)
	})
}
