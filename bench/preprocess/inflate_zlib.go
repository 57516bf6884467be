//go:build linux && cgo

package preprocess

/*
#cgo LDFLAGS: -l:libz.so.1
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// zlib's stream and entry points, declared here so that the build needs no
// zlib headers: the library (zlib1g, part of every Debian and Ubuntu
// system) keeps this layout and these symbols for binary compatibility.
typedef struct {
	const unsigned char *next_in;
	unsigned int avail_in;
	unsigned long total_in;
	unsigned char *next_out;
	unsigned int avail_out;
	unsigned long total_out;
	const char *msg;
	void *state;
	void *zalloc, *zfree, *opaque;
	int data_type;
	unsigned long adler, reserved;
} dapobench_z_stream;

extern const char *zlibVersion(void);
extern int inflateInit_(dapobench_z_stream *strm, const char *version, int stream_size);
extern int inflate(dapobench_z_stream *strm, int flush);
extern int inflateEnd(dapobench_z_stream *strm);

// dapobench_inflate inflates the zlib stream held by n input pieces into
// out, which it must fill exactly. It returns 0 when the stream ends (its
// checksum checked) with out full at the very end of the last piece, 1
// when it ends elsewhere or holds more data, and 2 when it is damaged.
static int dapobench_inflate(const uintptr_t *in, const size_t *in_len, int n, unsigned char *out, size_t out_len) {
	dapobench_z_stream s;
	memset(&s, 0, sizeof s);
	if (inflateInit_(&s, zlibVersion(), (int)sizeof s) != 0) {
		return 2;
	}
	s.next_out = out;
	size_t out_left = out_len;
	int ret = 0, status = 1;
	for (int i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)in[i];
		size_t left = in_len[i];
		do {
			unsigned int take = left > 1u << 30 ? 1u << 30 : (unsigned int)left;
			unsigned int room = out_left > 1u << 30 ? 1u << 30 : (unsigned int)out_left;
			s.next_in = p;
			s.avail_in = take;
			s.avail_out = room;
			ret = inflate(&s, 0);
			p += take - s.avail_in;
			left -= take - s.avail_in;
			out_left -= room - s.avail_out;
			if (ret == 1) { // Z_STREAM_END
				status = (out_left == 0 && left == 0 && i == n - 1) ? 0 : 1;
				goto done;
			}
			if (ret != 0 && ret != -5) { // neither Z_OK nor Z_BUF_ERROR
				status = 2;
				goto done;
			}
			if (ret == -5 && left > 0 && out_left == 0) { // more data than pixels
				status = 1;
				goto done;
			}
		} while (left > 0);
	}
done:
	inflateEnd(&s);
	return status;
}
*/
import "C"

import (
	"errors"
	"runtime"
	"unsafe"
)

// inflateIDAT inflates the zlib stream carried by the IDAT chunks' data
// into out, which it must fill exactly, ending right after it with a good
// checksum, as image/png requires. It uses the system's zlib, whose
// inflation takes about half the CPU of compress/flate's
// (docs/README.md#preprocess-speed); the bytes are the same.
func inflateIDAT(idat [][]byte, out []byte) error {
	if len(out) == 0 || len(idat) == 0 {
		return errors.New("png: no pixel data")
	}
	// The pieces' addresses are handed over in C memory, as integers (a
	// pointer store into C memory would run the write barrier on whatever
	// the memory held before); the Go memory they point to is pinned for
	// the call.
	var pin runtime.Pinner
	defer pin.Unpin()
	n := len(idat)
	cptrs := C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	if cptrs == nil {
		return errors.New("png: out of memory")
	}
	defer C.free(cptrs)
	ptrs := unsafe.Slice((*C.uintptr_t)(cptrs), n)
	lens := make([]C.size_t, n)
	for i, b := range idat {
		if len(b) > 0 {
			pin.Pin(&b[0])
			ptrs[i], lens[i] = C.uintptr_t(uintptr(unsafe.Pointer(&b[0]))), C.size_t(len(b))
		}
	}
	switch C.dapobench_inflate(&ptrs[0], &lens[0], C.int(n), (*C.uchar)(unsafe.Pointer(&out[0])), C.size_t(len(out))) {
	case 0:
		return nil
	case 1:
		return errors.New("png: pixel data of the wrong length")
	default:
		return errors.New("png: damaged pixel data")
	}
}
