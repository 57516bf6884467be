package mapio

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/internal/half"
)

// Array is an n-dimensional NumPy array converted to float32, in C order.
type Array struct {
	Shape   []int
	Data    []float32
	Dtype   string // the file's descr, e.g. "<f4"
	Rounded bool   // float64 values were rounded to float32
}

// DecodeNPY parses a NumPy .npy file (format versions 1, 2 and 3) holding
// float16/32/64, uint8/16, int8/16 or bool values, in either byte order and
// either memory order.
func DecodeNPY(data []byte) (*Array, error) {
	const magic = "\x93NUMPY"
	if len(data) < 10 || string(data[:6]) != magic {
		return nil, fmt.Errorf("mapio: npy: no \\x93NUMPY magic: %w", ErrFormat)
	}
	major := data[6]
	var hlen, off int
	switch major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(data[8:10])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, fmt.Errorf("mapio: npy: truncated header: %w", ErrFormat)
		}
		hlen, off = int(binary.LittleEndian.Uint32(data[8:12])), 12
	default:
		return nil, fmt.Errorf("mapio: npy: format version %d.%d: %w", major, data[7], ErrFormat)
	}
	if hlen < 0 || hlen > len(data)-off {
		return nil, fmt.Errorf("mapio: npy: header of %d bytes exceeds the file: %w", hlen, ErrFormat)
	}
	h, err := parseHeader(string(data[off : off+hlen]))
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
		if d < 0 || (d > 0 && n > maxPixels/d) {
			return nil, fmt.Errorf("mapio: npy: shape %v is too large: %w", h.shape, ErrFormat)
		}
		n *= d
	}
	if want := n * size; len(body) != want {
		return nil, fmt.Errorf("mapio: npy: shape %v of %s needs %d data bytes, file has %d: %w",
			h.shape, h.descr, want, len(body), ErrFormat)
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
		return 0, 0, 0, fmt.Errorf("mapio: npy: dtype %q: %w", d, ErrFormat)
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
		return 0, 0, 0, fmt.Errorf("mapio: npy: dtype %q is not a supported map type (float16/32/64, uint8/16, int8/16, bool): %w", d, ErrFormat)
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
func parseHeader(s string) (npyHeader, error) {
	p := &lit{s: s}
	var h npyHeader
	bad := func(why string) (npyHeader, error) {
		return npyHeader{}, fmt.Errorf("mapio: npy: header %q: %s: %w", clip(s, 120), why, ErrFormat)
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
			if h.shape, ok = p.tuple(); !ok {
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

func (p *lit) tuple() ([]int, bool) {
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
		if err != nil || d > maxPixels {
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

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
