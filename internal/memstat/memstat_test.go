package memstat

import (
	"runtime"
	"testing"
)

func TestPeak(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, ok := Peak(); ok {
			t.Error("Peak reported a value off Linux")
		}
		return
	}
	cur, ok1 := Current()
	peak, ok2 := Peak()
	if !ok1 || !ok2 {
		t.Fatal("cannot read /proc/self/status")
	}
	if cur <= 0 || peak < cur {
		t.Errorf("current %d, peak %d", cur, peak)
	}
	// Touch 64 MiB: the peak must follow.
	b := make([]byte, 64<<20)
	for i := range b {
		if i%4096 == 0 {
			b[i] = 1
		}
	}
	after, _ := Peak()
	if after < cur+32<<20 {
		t.Errorf("peak %d after touching 64 MiB from %d", after, cur)
	}
	runtime.KeepAlive(b)
}
