//go:build unix

package metrics

import "syscall"

// peakRSS returns the peak resident set size of the process in bytes, or 0.
func peakRSS() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) * 1024 // kilobytes on Linux
}
