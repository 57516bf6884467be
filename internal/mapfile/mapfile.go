// Package mapfile maps files into memory read-only, so that large model
// files are read where the page cache holds them instead of being copied
// into freshly allocated memory (whose page faults cost more than the
// copy on some virtual machines).
package mapfile

import (
	"errors"
	"os"
)

// ErrEmpty is returned for an empty file, which cannot be mapped.
var ErrEmpty = errors.New("empty file")

// Map maps the file at path read-only and returns its bytes and the
// function that unmaps them; the bytes must not be used after it. With
// populate the pages are read in one go where the system supports it
// (Linux's MAP_POPULATE), which costs far less than faulting them in one
// at a time. Where mapping is not supported the file is read instead.
func Map(path string, populate bool) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return nil, nil, errors.New("is a directory")
	}
	if st.Size() == 0 {
		return nil, nil, ErrEmpty
	}
	return mmap(f, st.Size(), populate)
}

// Release tells the system that the pages lying wholly inside b, a part
// of a mapping made by Map, are no longer needed: they leave the process's
// resident memory and are read again from the file if touched. It is a
// hint; where it is not supported it does nothing.
func Release(b []byte) {
	release(b)
}
