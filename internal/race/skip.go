// Package race tells tests whether the race detector is on. make test runs
// the suite once without it and again with it on the packages that start
// goroutines; there, tests of numbers alone (no goroutines) skip the second
// pass, which would only repeat them 5–15 times slower.
package race

import "testing"

// SkipNumeric skips a test that starts no goroutines when the race
// detector is on: the pass without it has run it already.
func SkipNumeric(t testing.TB) {
	t.Helper()
	if Enabled {
		t.Skip("no goroutines: checked by the pass without -race")
	}
}
