// Package npy writes and reads NumPy .npy arrays (format version 1.0,
// little-endian, C order), so that our tensors can be compared with a
// PyTorch or NumPy pipeline directly.
package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/internal/atomicfile"
)

var magic = []byte("\x93NUMPY")

// Array is a float32 array in C order.
type Array struct {
	Shape []int
	Data  []float32
}

// Write writes a float32 array as '<f4'.
func Write(w io.Writer, shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("npy: %d values for shape %v", len(data), shape)
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	total := len(magic) + 4 + len(h) + 1
	h += strings.Repeat(" ", (64-total%64)%64) + "\n"
	var buf bytes.Buffer
	buf.Write(magic)
	buf.Write([]byte{1, 0})
	binary.Write(&buf, binary.LittleEndian, uint16(len(h)))
	buf.WriteString(h)
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	buf.Write(b)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

// WriteFile writes an array through a temporary file and a rename.
func WriteFile(path string, shape []int, data []float32) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return Write(w, shape, data) }); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

var (
	descrRe = regexp.MustCompile(`'descr':\s*'([<|>]?[a-z]\d+)'`)
	orderRe = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRe = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// ReadFile reads an array of '<f4' or '<f8' values (converted to float32);
// errors name the file.
func ReadFile(path string) (Array, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Array{}, fmt.Errorf("npy: %w", err)
	}
	a, err := Parse(b)
	if err != nil {
		return Array{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Parse decodes an .npy buffer of version 1, 2 or 3.
func Parse(b []byte) (Array, error) {
	if len(b) < 10 || !bytes.Equal(b[:6], magic) {
		return Array{}, fmt.Errorf("npy: not an .npy file")
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		if len(b) < 12 {
			return Array{}, fmt.Errorf("npy: truncated header")
		}
		hlen, start = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return Array{}, fmt.Errorf("npy: unsupported format version %d", b[6])
	}
	if hlen < 0 || start+hlen > len(b) {
		return Array{}, fmt.Errorf("npy: header length %d exceeds the file", hlen)
	}
	h := string(b[start : start+hlen])
	d := descrRe.FindStringSubmatch(h)
	o := orderRe.FindStringSubmatch(h)
	s := shapeRe.FindStringSubmatch(h)
	if d == nil || o == nil || s == nil {
		return Array{}, fmt.Errorf("npy: header %q lacks descr, fortran_order or shape", h)
	}
	if o[1] == "True" {
		return Array{}, fmt.Errorf("npy: Fortran-order arrays are not supported")
	}
	var shape []int
	n := 1
	for _, f := range strings.Split(s[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 || (v > 0 && n > math.MaxInt32/v) {
			return Array{}, fmt.Errorf("npy: bad shape (%s)", s[1])
		}
		shape = append(shape, v)
		n *= v
	}
	data := b[start+hlen:]
	if n > len(data) {
		return Array{}, fmt.Errorf("npy: %d data bytes for shape %v", len(data), shape)
	}
	out := Array{Shape: shape, Data: make([]float32, n)}
	switch d[1] {
	case "<f4":
		if len(data) != 4*n {
			return Array{}, fmt.Errorf("npy: %d data bytes for %v float32", len(data), shape)
		}
		for i := range out.Data {
			out.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case "<f8":
		if len(data) != 8*n {
			return Array{}, fmt.Errorf("npy: %d data bytes for %v float64", len(data), shape)
		}
		for i := range out.Data {
			out.Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:])))
		}
	default:
		return Array{}, fmt.Errorf("npy: dtype %s is not <f4 or <f8", d[1])
	}
	return out, nil
}
