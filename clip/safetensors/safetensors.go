// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian data.
//
// It is the exchange format for CLIP weights, learned prompt tensors and
// the token-embedding table of a model directory.
package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"

	"github.com/dapobench/dapobench/internal/budget"

	"github.com/dapobench/dapobench/internal/atomicfile"
	"github.com/dapobench/dapobench/internal/half"
	"github.com/dapobench/dapobench/internal/rawfloat"
)

// MaxHeader bounds the JSON header so that a corrupt length cannot make
// the reader allocate gigabytes (the reference implementation uses 100 MB).
const MaxHeader = 100 << 20

// DTypeSize is the byte size of each supported element type.
var dtypeSize = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2,
	"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}

// Tensor is one named tensor. Data is raw little-endian bytes.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// File is a parsed safetensors file; Tensors are sorted by name.
type File struct {
	Metadata map[string]string
	Tensors  []Tensor
}

// Get returns the tensor with the given name.
func (f *File) Get(name string) (Tensor, bool) {
	i := sort.Search(len(f.Tensors), func(i int) bool { return f.Tensors[i].Name >= name })
	if i < len(f.Tensors) && f.Tensors[i].Name == name {
		return f.Tensors[i], true
	}
	return Tensor{}, false
}

type entry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// ReadFile reads and parses a whole file; errors name the file. The
// header is read and checked against the file's size and the tensor budget
// (docs/README.md#budgets-tensors) before the data is read.
func ReadFile(path string) (*File, error) {
	f, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func readFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var lenb [8]byte
	if _, err := io.ReadFull(fh, lenb[:]); err != nil {
		return nil, fmt.Errorf("safetensors: %d bytes, too short for the header length", st.Size())
	}
	n, err := headerLen(binary.LittleEndian.Uint64(lenb[:]), st.Size())
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(fh, hdr); err != nil {
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	f, ents, err := parseHeader(hdr, st.Size()-8-n)
	if err != nil {
		return nil, err
	}
	data := make([]byte, st.Size()-8-n)
	if _, err := io.ReadFull(fh, data); err != nil {
		return nil, fmt.Errorf("safetensors: data: %w", err)
	}
	f.attach(ents, data)
	return f, nil
}

// headerLen checks a declared header length against MaxHeader and the
// file's size.
func headerLen(n uint64, size int64) (int64, error) {
	if n > MaxHeader || n > uint64(size-8) {
		return 0, fmt.Errorf("safetensors: header length %d exceeds the file (%d bytes) or %d", n, size, MaxHeader)
	}
	return int64(n), nil
}

// Parse parses a safetensors buffer. Tensor data aliases buf.
func Parse(buf []byte) (*File, error) {
	if len(buf) < 8 {
		return nil, fmt.Errorf("safetensors: %d bytes, too short for the header length", len(buf))
	}
	n, err := headerLen(binary.LittleEndian.Uint64(buf), int64(len(buf)))
	if err != nil {
		return nil, err
	}
	f, ents, err := parseHeader(buf[8:8+n], int64(len(buf))-8-n)
	if err != nil {
		return nil, err
	}
	f.attach(ents, buf[8+n:])
	return f, nil
}

// named is one header entry with its name.
type named struct {
	name string
	entry
}

// parseHeader reads the JSON header and checks it against the format's
// rules before any tensor data is read: every name once, supported dtypes,
// shapes whose byte size matches their offsets, and offsets that index the
// dataLen data bytes entirely, without holes, overlaps or inverted ranges
// (the format forbids them so that a file has one reading). The tensors'
// values count against the tensor budget.
func parseHeader(hdr []byte, dataLen int64) (*File, []named, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("safetensors: header: not a JSON object")
	}
	tensors, err := budget.NewTensors()
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	f := &File{}
	var ents []named
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: header: %w", err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, nil, fmt.Errorf("safetensors: header: %q listed twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&f.Metadata); err != nil {
				return nil, nil, fmt.Errorf("safetensors: __metadata__: %w", err)
			}
			continue
		}
		var e entry
		if err := dec.Decode(&e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: unsupported dtype %q", name, e.DType)
		}
		count, err := budget.Elements(e.Shape)
		if err != nil || count > math.MaxInt64/8 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: bad shape %v", name, e.Shape)
		}
		lo, hi := e.Offsets[0], e.Offsets[1]
		if lo < 0 || hi < lo || hi > dataLen {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data offsets [%d, %d) outside the %d data bytes", name, lo, hi, dataLen)
		}
		if hi-lo != count*int64(size) {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %d bytes for %s%v, want %d", name, hi-lo, e.DType, e.Shape, count*int64(size))
		}
		if err := tensors.Take(count, "tensor "+strconv.Quote(name)); err != nil {
			return nil, nil, fmt.Errorf("safetensors: %w", err)
		}
		ents = append(ents, named{name, e})
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header: %w", err)
	}
	if rest := bytes.TrimRight(hdr[dec.InputOffset():], " "); len(rest) > 0 {
		return nil, nil, fmt.Errorf("safetensors: header: %d bytes after the JSON object", len(rest))
	}
	byOffset := slices.Clone(ents)
	slices.SortStableFunc(byOffset, func(a, b named) int {
		return cmp.Or(cmp.Compare(a.Offsets[0], b.Offsets[0]), cmp.Compare(a.Offsets[1], b.Offsets[1]))
	})
	var end int64
	for _, e := range byOffset {
		if e.Offsets[0] != end {
			what := "overlaps the tensor before it"
			if e.Offsets[0] > end {
				what = fmt.Sprintf("leaves bytes [%d, %d) unindexed", end, e.Offsets[0])
			}
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data offsets [%d, %d) %s", e.name, e.Offsets[0], e.Offsets[1], what)
		}
		end = e.Offsets[1]
	}
	if end != dataLen {
		return nil, nil, fmt.Errorf("safetensors: tensors index %d of the %d data bytes", end, dataLen)
	}
	return f, ents, nil
}

// attach points the tensors at their bytes in data and sorts them.
func (f *File) attach(ents []named, data []byte) {
	for _, e := range ents {
		lo, hi := e.Offsets[0], e.Offsets[1]
		f.Tensors = append(f.Tensors, Tensor{Name: e.name, DType: e.DType, Shape: e.Shape, Data: data[lo:hi:hi]})
	}
	sort.Slice(f.Tensors, func(i, j int) bool { return f.Tensors[i].Name < f.Tensors[j].Name })
}

// ReadFloat32 reads the floating-point tensors of a file as float32, in
// storage order, handing each to fn; integer tensors are skipped. Unlike
// ReadFile it holds no copy of the file: it reads the file once, in order,
// converting chunk by chunk into each tensor's values, so reading a model's
// weights costs their float32 size and no more. Every byte of the file
// also goes to hash when it is not nil, so that the caller gets the file's
// digest from the same pass. Errors name the file.
func ReadFloat32(path string, hash io.Writer, fn func(name string, shape []int, v []float32) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err := readFloat32(f, st.Size(), hash, fn); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func readFloat32(f io.ReaderAt, size int64, hash io.Writer, fn func(name string, shape []int, v []float32) error) error {
	if hash == nil {
		hash = io.Discard
	}
	r := io.TeeReader(io.NewSectionReader(f, 0, size), hash)
	var lenb [8]byte
	if _, err := io.ReadFull(r, lenb[:]); err != nil {
		return fmt.Errorf("safetensors: %d bytes, too short for the header length", size)
	}
	n, err := headerLen(binary.LittleEndian.Uint64(lenb[:]), size)
	if err != nil {
		return err
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(r, header); err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	// The header is checked first: the tensors index the data without
	// holes or overlaps, so one pass in offset order reads each once.
	_, idx, err := parseHeader(header, size-8-n)
	if err != nil {
		return err
	}
	slices.SortFunc(idx, func(a, b named) int { return cmp.Compare(a.Offsets[0], b.Offsets[0]) })
	buf := make([]byte, 1<<20)
	for _, e := range idx {
		v, err := convert(r, e.DType, e.Offsets[1]-e.Offsets[0], buf)
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", e.name, err)
		}
		if v == nil {
			continue // not floating point
		}
		if err := fn(e.name, e.Shape, v); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil { // the rest, for the hash
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// convert reads n bytes of dtype from r into float32 values, through buf;
// it returns nil for integer dtypes (after reading past them).
func convert(r io.Reader, dtype string, n int64, buf []byte) ([]float32, error) {
	size := dtypeSize[dtype]
	var put func(out []float32, b []byte)
	switch dtype {
	case "F32":
		put = func(out []float32, b []byte) {
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
	case "F16":
		put = func(out []float32, b []byte) {
			for i := range out {
				out[i] = half.ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
			}
		}
	case "BF16":
		put = func(out []float32, b []byte) {
			for i := range out {
				out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
			}
		}
	case "F64":
		put = func(out []float32, b []byte) {
			for i := range out {
				out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
			}
		}
	default:
		_, err := io.CopyN(io.Discard, r, n)
		return nil, err
	}
	out := make([]float32, n/int64(size))
	if raw, ok := rawfloat.Bytes(out); ok && dtype == "F32" {
		// The file's bytes are the values; read them in place, a chunk at
		// a time so that a hashing reader sees them while in cache.
		for done := 0; done < len(raw); done += len(buf) {
			if _, err := io.ReadFull(r, raw[done:min(done+len(buf), len(raw))]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	step := len(buf) / size * size
	for done := 0; done < len(out); {
		k := min(int64(step), n-int64(done*size))
		if _, err := io.ReadFull(r, buf[:k]); err != nil {
			return nil, err
		}
		cnt := int(k) / size
		put(out[done:done+cnt], buf[:k])
		done += cnt
	}
	return out, nil
}

// Float32 converts a floating-point tensor to float32 values.
func (t Tensor) Float32() ([]float32, error) {
	switch t.DType {
	case "F32":
		out := make([]float32, len(t.Data)/4)
		if raw, ok := rawfloat.Bytes(out); ok {
			copy(raw, t.Data) // the stored bytes are the values on this machine
			return out, nil
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		return out, nil
	case "F16":
		out := make([]float32, len(t.Data)/2)
		for i := range out {
			out[i] = half.ToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
		return out, nil
	case "BF16":
		out := make([]float32, len(t.Data)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
		return out, nil
	case "F64":
		out := make([]float32, len(t.Data)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("safetensors: tensor %q: dtype %s is not floating point", t.Name, t.DType)
}

// Int64 converts an integer tensor to int64 values.
func (t Tensor) Int64() ([]int64, error) {
	switch t.DType {
	case "I64":
		out := make([]int64, len(t.Data)/8)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
		return out, nil
	case "I32":
		out := make([]int64, len(t.Data)/4)
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("safetensors: tensor %q: dtype %s is not I64/I32", t.Name, t.DType)
}

// F32 makes an F32 tensor from values.
func F32(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: "F32", Shape: shape, Data: b}
}

// F16 makes an F16 tensor from values, rounding to nearest even.
func F16(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], half.FromFloat32(x))
	}
	return Tensor{Name: name, DType: "F16", Shape: shape, Data: b}
}

// I64 makes an I64 tensor from values.
func I64(name string, shape []int, v []int64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return Tensor{Name: name, DType: "I64", Shape: shape, Data: b}
}

// Write writes tensors, sorted by name, with deterministic bytes: the
// same tensors always give the same file.
func Write(w io.Writer, tensors []Tensor, meta map[string]string) error {
	ts := append([]Tensor(nil), tensors...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off int64
	for i, t := range ts {
		if i > 0 && ts[i-1].Name == t.Name {
			return fmt.Errorf("safetensors: duplicate tensor %q", t.Name)
		}
		size, ok := dtypeSize[t.DType]
		if !ok {
			return fmt.Errorf("safetensors: tensor %q: unsupported dtype %q", t.Name, t.DType)
		}
		count := 1
		for _, d := range t.Shape {
			count *= d
		}
		if count*size != len(t.Data) {
			return fmt.Errorf("safetensors: tensor %q: %d bytes for %s%v", t.Name, len(t.Data), t.DType, t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = entry{DType: t.DType, Shape: shape, Offsets: [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	hj, err := json.Marshal(header) // map keys are sorted
	if err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(len(hj)))
	if _, err := w.Write(lenb[:]); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if _, err := w.Write(hj); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	for _, t := range ts {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("safetensors: %w", err)
		}
	}
	return nil
}

// WriteFile writes tensors to path through a temporary file and a rename,
// so that an interrupted write leaves no partial file.
func WriteFile(path string, tensors []Tensor, meta map[string]string) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return Write(w, tensors, meta) }); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
