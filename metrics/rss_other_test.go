//go:build !unix

package metrics

func peakRSS() float64 { return 0 }
