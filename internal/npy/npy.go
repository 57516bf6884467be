// Package npy writes and reads NumPy .npy arrays, so that tensors and
// anomaly maps can be exchanged with a PyTorch or NumPy pipeline directly:
// float32 arrays are written as numpy.save writes them (format 1.0,
// little-endian, C order); every numeric type a map can come in is read.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/internal/atomicfile"
	"github.com/dapobench/dapobench/internal/half"
)

// Array is an n-dimensional array converted to float32, in C order.
type Array struct {
	Shape   []int
	Data    []float32
	Dtype   string // the file's descr, e.g. "<f4"
	Rounded bool   // float64 values were rounded to float32
}

// DefaultMaxElems bounds the values a file read by ReadFile may declare:
// 2^28, a 16384² map, so that a corrupt or hostile header cannot make the
// reader allocate gigabytes.
const DefaultMaxElems = 1 << 28

var magic = []byte("\x93NUMPY")

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

// ErrTooLarge marks a header that declares more values than the reader
// allows.
var ErrTooLarge = errors.New("too large")

// ReadFile reads an .npy file holding at most DefaultMaxElems values;
// errors name the file.
func ReadFile(path string) (*Array, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	a, err := Decode(b, DefaultMaxElems)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Decode parses a NumPy .npy file (format versions 1, 2 and 3) holding
// float16/32/64, uint8/16, int8/16 or bool values, in either byte order and
// either memory order. A header that claims more than maxElems values is
// refused before anything is allocated.
func Decode(data []byte, maxElems int) (*Array, error) {
	if len(data) < 10 || !bytes.Equal(data[:6], magic) {
		return nil, fmt.Errorf("npy: no \\x93NUMPY magic")
	}
	major := data[6]
	var hlen, off int
	switch major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(data[8:10])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, fmt.Errorf("npy: truncated header")
		}
		hlen, off = int(binary.LittleEndian.Uint32(data[8:12])), 12
	default:
		return nil, fmt.Errorf("npy: format version %d.%d", major, data[7])
	}
	if hlen < 0 || hlen > len(data)-off {
		return nil, fmt.Errorf("npy: header of %d bytes exceeds the file", hlen)
	}
	h, err := parseHeader(string(data[off:off+hlen]), maxElems)
	if err != nil {
		return nil, err
	}
	body := data[off+hlen:]

	order, kind, size, err := parseDescr(h.descr)
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range h.shape {
		if d < 0 || (d > 0 && n > maxElems/d) {
			return nil, fmt.Errorf("npy: shape %v: %w (more than %d values)", h.shape, ErrTooLarge, maxElems)
		}
		n *= d
	}
	if want := n * size; len(body) != want {
		return nil, fmt.Errorf("npy: shape %v of %s needs %d data bytes, file has %d",
			h.shape, h.descr, want, len(body))
	}
	a := &Array{Shape: h.shape, Dtype: h.descr, Data: make([]float32, n), Rounded: kind == 'f' && size == 8}
	var bo binary.ByteOrder = binary.LittleEndian
	if order == '>' {
		bo = binary.BigEndian
	}
	for i := range a.Data {
		b := body[i*size : (i+1)*size]
		var v float32
		switch {
		case kind == 'f' && size == 2:
			v = half.ToFloat32(bo.Uint16(b))
		case kind == 'f' && size == 4:
			v = math.Float32frombits(bo.Uint32(b))
		case kind == 'f' && size == 8:
			v = float32(math.Float64frombits(bo.Uint64(b)))
		case kind == 'u' && size == 1, kind == 'b':
			v = float32(b[0])
		case kind == 'u' && size == 2:
			v = float32(bo.Uint16(b))
		case kind == 'i' && size == 1:
			v = float32(int8(b[0]))
		case kind == 'i' && size == 2:
			v = float32(int16(bo.Uint16(b)))
		}
		a.Data[i] = v
	}
	if h.fortran && len(h.shape) > 1 {
		a.Data = fortranToC(a.Data, h.shape)
	}
	return a, nil
}

// fortranToC reorders column-major data into row-major order.
func fortranToC(src []float32, shape []int) []float32 {
	dst := make([]float32, len(src))
	nd := len(shape)
	idx := make([]int, nd)
	// Fortran strides: the first axis varies fastest.
	fstride := make([]int, nd)
	s := 1
	for i := 0; i < nd; i++ {
		fstride[i] = s
		s *= shape[i]
	}
	for c := range dst { // c walks C order: the last axis fastest
		f := 0
		for i := 0; i < nd; i++ {
			f += idx[i] * fstride[i]
		}
		dst[c] = src[f]
		for i := nd - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return dst
}

func parseDescr(d string) (order, kind byte, size int, err error) {
	if len(d) < 3 {
		return 0, 0, 0, fmt.Errorf("npy: dtype %q", d)
	}
	order, kind = d[0], d[1]
	size, err = strconv.Atoi(d[2:])
	ok := err == nil && strings.IndexByte("<>|=", order) >= 0
	if ok {
		switch kind {
		case 'f':
			ok = size == 2 || size == 4 || size == 8
		case 'u', 'i':
			ok = size == 1 || size == 2
		case 'b':
			ok = size == 1
		default:
			ok = false
		}
	}
	if !ok {
		return 0, 0, 0, fmt.Errorf("npy: dtype %q is not a supported map type (float16/32/64, uint8/16, int8/16, bool)", d)
	}
	if order == '=' {
		order = '<' // native order of every platform numpy writes maps on here
	}
	return order, kind, size, nil
}

type npyHeader struct {
	descr   string
	fortran bool
	shape   []int
}

// parseHeader reads the Python dict literal of an .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
func parseHeader(s string, maxElems int) (npyHeader, error) {
	p := &lit{s: s}
	var h npyHeader
	bad := func(why string) (npyHeader, error) {
		return npyHeader{}, fmt.Errorf("npy: header %q: %s", abbrev(s, 120), why)
	}
	if !p.eat('{') {
		return bad("not a dict")
	}
	seen := map[string]bool{}
	for {
		if p.eat('}') {
			break
		}
		key, ok := p.str()
		if !ok || !p.eat(':') {
			return bad("expected 'key':")
		}
		if seen[key] {
			return bad("duplicate key " + key)
		}
		seen[key] = true
		switch key {
		case "descr":
			if h.descr, ok = p.str(); !ok {
				return bad("descr is not a string")
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				h.fortran = true
			case p.word("False"):
			default:
				return bad("fortran_order is not True or False")
			}
		case "shape":
			if h.shape, ok = p.tuple(maxElems); !ok {
				return bad("shape is not a tuple of integers")
			}
		default:
			return bad("unknown key " + key)
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return bad("expected , or }")
			}
			break
		}
	}
	p.space()
	if p.i != len(p.s) {
		return bad("text after the dict")
	}
	if !seen["descr"] || !seen["fortran_order"] || !seen["shape"] {
		return bad("missing descr, fortran_order or shape")
	}
	return h, nil
}

// lit is a cursor over a Python literal.
type lit struct {
	s string
	i int
}

func (p *lit) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n' || p.s[p.i] == '\t' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *lit) eat(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *lit) word(w string) bool {
	p.space()
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *lit) str() (string, bool) {
	p.space()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", false
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, true
}

func (p *lit) tuple(maxElems int) ([]int, bool) {
	if !p.eat('(') {
		return nil, false
	}
	dims := []int{}
	for {
		if p.eat(')') {
			return dims, true
		}
		p.space()
		j := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if j == p.i || p.i-j > 10 {
			return nil, false
		}
		d, err := strconv.Atoi(p.s[j:p.i])
		if err != nil || d > maxElems {
			return nil, false
		}
		dims = append(dims, d)
		if len(dims) > 8 {
			return nil, false
		}
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, false
			}
			return dims, true
		}
	}
}

func abbrev(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
