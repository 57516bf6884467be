package featcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// The entry file, version 1. All integers are little-endian.
//
//	magic        8 bytes  "\x89DBFEAT\n"
//	version      u16      1
//	flags        u16      0
//	header size  u32      bytes of the header body that follows
//	header body:
//	  model, preprocess, content   each u16 length + bytes (the Key)
//	  tensor count                 u32
//	  per tensor: name (u16 length + bytes), dtype u8 (1 = float32),
//	              rank u8, rank × u64 dimensions
//	  payload size                 u64
//	header CRC   u32      CRC-32C of everything above
//	payload               the tensors' values in order, float32 little-endian
//	payload CRC  u32      CRC-32C of the payload
//	end          4 bytes  "FEND"
//
// The header has its own checksum so that a damaged header is rejected
// before its sizes are trusted; the file size must equal what the header
// implies, so truncation is caught before anything is read or allocated.
const (
	magic       = "\x89DBFEAT\n"
	version     = 1
	endMagic    = "FEND"
	prefixSize  = 16 // magic, version, flags, header size
	trailerSize = 8  // payload CRC, end marker
	dtypeF32    = 1

	maxHeader  = 1 << 20 // header body bytes
	maxTensors = 1 << 12
	maxRank    = 8
	maxString  = 1<<16 - 1 // key fields and tensor names: u16 lengths
	chunkBytes = 256 << 10 // payload is encoded and decoded in chunks of this size
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errFormat is wrapped by every decoding error: the bytes are not a valid
// entry. Get reports such files as corrupt.
var errFormat = errors.New("invalid entry")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errFormat}, args...)...)
}

// checkNames reports whether e has between 1 and maxTensors tensors with
// distinct, non-empty names that fit the format.
func (e Entry) checkNames() error {
	if len(e.Tensors) == 0 || len(e.Tensors) > maxTensors {
		return fmt.Errorf("%d tensors, want 1 to %d", len(e.Tensors), maxTensors)
	}
	seen := make(map[string]bool, len(e.Tensors))
	for _, t := range e.Tensors {
		if t.Name == "" || len(t.Name) > maxString {
			return fmt.Errorf("tensor name %.40q: empty or longer than %d bytes", t.Name, maxString)
		}
		if seen[t.Name] {
			return fmt.Errorf("tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}

// payloadSize is the number of payload bytes of e, or an error when a name
// or shape is invalid or a shape does not match its data.
func (e Entry) payloadSize() (int64, error) {
	if err := e.checkNames(); err != nil {
		return 0, err
	}
	var total int64
	for _, t := range e.Tensors {
		if len(t.Shape) > maxRank {
			return 0, fmt.Errorf("tensor %q: rank %d, at most %d", t.Name, len(t.Shape), maxRank)
		}
		n := int64(1)
		for _, d := range t.Shape {
			if d < 0 || (d > 0 && n > math.MaxInt64/4/int64(d)) {
				return 0, fmt.Errorf("tensor %q: bad shape %v", t.Name, t.Shape)
			}
			n *= int64(d)
		}
		if n != int64(len(t.Data)) {
			return 0, fmt.Errorf("tensor %q: shape %v needs %d values, has %d", t.Name, t.Shape, n, len(t.Data))
		}
		if total > math.MaxInt64-4*n {
			return 0, fmt.Errorf("entry too large")
		}
		total += 4 * n
	}
	return total, nil
}

// header returns the prefix, header body and header CRC of an entry whose
// shapes payloadSize has accepted.
func header(k Key, e Entry, payload int64) []byte {
	b := make([]byte, prefixSize, 256)
	copy(b, magic)
	binary.LittleEndian.PutUint16(b[8:], version)
	binary.LittleEndian.PutUint16(b[10:], 0)
	putString := func(s string) {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	putString(k.Model)
	putString(k.Preprocess)
	putString(k.Content)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Tensors)))
	for _, t := range e.Tensors {
		putString(t.Name)
		b = append(b, dtypeF32, byte(len(t.Shape)))
		for _, d := range t.Shape {
			b = binary.LittleEndian.AppendUint64(b, uint64(d))
		}
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(payload))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(b)-prefixSize))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// encode writes the entry file for k and e to w, converting the payload in
// chunks so that no second copy of a large entry is made. buf is scratch of
// at least 4 bytes (chunkBytes is used when it is nil). check is called
// between chunks; its error stops the write.
func encode(w io.Writer, k Key, e Entry, buf []byte, check func() error) (int64, error) {
	if err := k.check(); err != nil {
		return 0, err
	}
	payload, err := e.payloadSize()
	if err != nil {
		return 0, err
	}
	h := header(k, e, payload)
	if len(h)-prefixSize-4 > maxHeader {
		return 0, fmt.Errorf("header of %d bytes, at most %d", len(h)-prefixSize-4, maxHeader)
	}
	if _, err := w.Write(h); err != nil {
		return 0, err
	}
	written := int64(len(h))
	if buf == nil {
		buf = make([]byte, chunkBytes)
	}
	buf = buf[:len(buf)&^3]
	var crc uint32
	for _, t := range e.Tensors {
		for data := t.Data; len(data) > 0; {
			n := min(len(data), len(buf)/4)
			for i, v := range data[:n] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			crc = crc32.Update(crc, castagnoli, buf[:4*n])
			if _, err := w.Write(buf[:4*n]); err != nil {
				return written, err
			}
			written += int64(4 * n)
			data = data[n:]
			if check != nil {
				if err := check(); err != nil {
					return written, err
				}
			}
		}
	}
	var tr [trailerSize]byte
	binary.LittleEndian.PutUint32(tr[:], crc)
	copy(tr[4:], endMagic)
	if _, err := w.Write(tr[:]); err != nil {
		return written, err
	}
	return written + trailerSize, nil
}

// readErr classifies a failed read: running out of bytes means the file is
// shorter than its header says (or changed while read), anything else is an
// I/O error that says nothing about the entry.
func readErr(part string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return formatErr("the %s ends early", part)
	}
	return fmt.Errorf("reading the %s: %w", part, err)
}

// reader decodes the header body.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = formatErr("header ends early")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() int {
	if v := r.take(2); v != nil {
		return int(binary.LittleEndian.Uint16(v))
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (r *reader) str() string { return string(r.take(r.u16())) }

// decode reads an entry file of exactly size bytes from r. Sizes in the
// header are checked against size before any payload memory is allocated,
// so a damaged or hostile file cannot make decode allocate more than the
// file holds. buf is scratch as for encode.
func decode(r io.Reader, size int64, buf []byte) (Key, Entry, error) {
	var pre [prefixSize]byte
	if size < int64(prefixSize+4+trailerSize) {
		return Key{}, Entry{}, formatErr("%d bytes is shorter than any entry", size)
	}
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Key{}, Entry{}, readErr("header", err)
	}
	if string(pre[:len(magic)]) != magic {
		return Key{}, Entry{}, formatErr("bad magic %q", pre[:len(magic)])
	}
	if v := binary.LittleEndian.Uint16(pre[8:]); v != version {
		return Key{}, Entry{}, formatErr("version %d, want %d", v, version)
	}
	if f := binary.LittleEndian.Uint16(pre[10:]); f != 0 {
		return Key{}, Entry{}, formatErr("unknown flags %#x", f)
	}
	hsize := int64(binary.LittleEndian.Uint32(pre[12:]))
	if hsize > maxHeader || int64(prefixSize)+hsize+4+trailerSize > size {
		return Key{}, Entry{}, formatErr("header size %d does not fit a file of %d bytes", hsize, size)
	}
	body := make([]byte, hsize+4)
	if _, err := io.ReadFull(r, body); err != nil {
		return Key{}, Entry{}, readErr("header", err)
	}
	crc := crc32.Update(crc32.Checksum(pre[:], castagnoli), castagnoli, body[:hsize])
	if want := binary.LittleEndian.Uint32(body[hsize:]); crc != want {
		return Key{}, Entry{}, formatErr("header checksum %08x, stored %08x", crc, want)
	}
	hr := &reader{b: body[:hsize]}
	k := Key{Model: hr.str(), Preprocess: hr.str(), Content: hr.str()}
	n := hr.u32()
	if n > maxTensors {
		return Key{}, Entry{}, formatErr("%d tensors, at most %d", n, maxTensors)
	}
	room := size - int64(prefixSize) - hsize - 4 - trailerSize // payload bytes the file holds
	var total int64
	e := Entry{Tensors: make([]Tensor, 0, n)}
	for range n {
		t := Tensor{Name: hr.str()}
		dtype, rank := hr.u8(), int(hr.u8())
		if hr.err != nil {
			return Key{}, Entry{}, hr.err
		}
		if dtype != dtypeF32 {
			return Key{}, Entry{}, formatErr("tensor %q: dtype %d", t.Name, dtype)
		}
		if rank > maxRank {
			return Key{}, Entry{}, formatErr("tensor %q: rank %d", t.Name, rank)
		}
		count := int64(1)
		t.Shape = make([]int, rank)
		for i := range t.Shape {
			d := hr.u64()
			if d > uint64(room/4) || (d > 0 && count > room/4/int64(d)) {
				return Key{}, Entry{}, formatErr("tensor %q: shape exceeds the file", t.Name)
			}
			t.Shape[i] = int(d)
			count *= int64(d)
		}
		total += 4 * count
		if total > room {
			return Key{}, Entry{}, formatErr("tensor %q: shapes exceed the file", t.Name)
		}
		e.Tensors = append(e.Tensors, t)
	}
	payload := hr.u64()
	if hr.err != nil {
		return Key{}, Entry{}, hr.err
	}
	if len(hr.b) != 0 {
		return Key{}, Entry{}, formatErr("%d unread header bytes", len(hr.b))
	}
	if payload != uint64(total) || total != room {
		return Key{}, Entry{}, formatErr("payload of %d bytes, shapes need %d, file holds %d", payload, total, room)
	}
	if err := k.check(); err != nil {
		return Key{}, Entry{}, formatErr("key: %v", err)
	}
	if err := e.checkNames(); err != nil {
		return Key{}, Entry{}, formatErr("%v", err)
	}

	// One allocation holds every tensor; each Data is a slice of it.
	all := make([]float32, total/4)
	off := 0
	for i := range e.Tensors {
		c := 1
		for _, d := range e.Tensors[i].Shape {
			c *= d
		}
		e.Tensors[i].Data = all[off : off+c : off+c]
		off += c
	}
	if buf == nil {
		buf = make([]byte, chunkBytes)
	}
	buf = buf[:len(buf)&^3]
	crc = 0
	for data := all; len(data) > 0; {
		m := min(len(data), len(buf)/4)
		b := buf[:4*m]
		if _, err := io.ReadFull(r, b); err != nil {
			return Key{}, Entry{}, readErr("payload", err)
		}
		crc = crc32.Update(crc, castagnoli, b)
		for i := range data[:m] {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		data = data[m:]
	}
	var tr [trailerSize]byte
	if _, err := io.ReadFull(r, tr[:]); err != nil {
		return Key{}, Entry{}, readErr("trailer", err)
	}
	if want := binary.LittleEndian.Uint32(tr[:]); crc != want {
		return Key{}, Entry{}, formatErr("payload checksum %08x, stored %08x", crc, want)
	}
	if string(tr[4:]) != endMagic {
		return Key{}, Entry{}, formatErr("bad end marker %q", tr[4:])
	}
	return k, e, nil
}
