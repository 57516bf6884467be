// Package memstat reads the process's resident memory from /proc (Linux),
// for the measurements that report peak memory: `models bench` and the
// benchmarks. Elsewhere every call reports that it cannot tell.
package memstat

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// Peak is the process's peak resident set size in bytes (VmHWM), including
// memory that onnxruntime allocates outside the Go heap; ok is false where
// /proc/self/status cannot be read.
func Peak() (bytes int64, ok bool) { return field("VmHWM") }

// Current is the process's resident set size in bytes (VmRSS).
func Current() (bytes int64, ok bool) { return field("VmRSS") }

// ResetPeak sets the peak to the current resident set size (Linux 4.0 and
// later: "5" written to /proc/self/clear_refs), so that Peak measures what
// follows. It reports whether the kernel accepted it.
func ResetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

func field(name string) (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), name+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
