//go:build unix

package runner

import (
	"os"
	"syscall"
)

func mmap(f *os.File, size int64) ([]byte, func(), error) {
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { syscall.Munmap(b) }, nil
}
