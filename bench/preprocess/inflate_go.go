//go:build !(linux && cgo)

package preprocess

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
)

// inflateIDAT inflates the zlib stream carried by the IDAT chunks' data
// into out, which it must fill exactly, ending (with a good checksum) at
// the very end of the last chunk, as the system-zlib version on Linux
// does; this one uses compress/flate.
func inflateIDAT(idat [][]byte, out []byte) error {
	if len(out) == 0 || len(idat) == 0 {
		return errors.New("png: no pixel data")
	}
	// A bytes.Reader is an io.ByteReader, so the decompressor reads no
	// further than the stream's end.
	r := bytes.NewReader(bytes.Join(idat, nil))
	z, err := zlib.NewReader(r)
	if err != nil {
		return err
	}
	if _, err := io.ReadFull(z, out); err != nil {
		return err
	}
	var one [1]byte
	if n, err := z.Read(one[:]); n != 0 || err != io.EOF {
		return errors.New("png: pixel data of the wrong length")
	}
	if r.Len() != 0 {
		return errors.New("png: data after the pixel data")
	}
	return nil
}
