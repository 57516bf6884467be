package bench

import "time"

// SetHashMemoTick sets how long after a change a file's identity is not
// trusted for the model-hash memo, and returns the function that restores
// it: tests make the rule certain either way instead of waiting.
func SetHashMemoTick(d time.Duration) (restore func()) {
	old := hashMemoTick
	hashMemoTick = d
	return func() { hashMemoTick = old }
}
