package progress

import (
	"bytes"
	"strings"
	"testing"
)

// TestPlainLines: away from a terminal the reporter writes whole lines,
// never carriage-return frames, and its last line says all is done.
func TestPlainLines(t *testing.T) {
	var buf bytes.Buffer
	p := New(&buf, 8, "dapo bottle")
	for range 8 {
		p.Add(1)
	}
	p.Println("epoch 1/1: mean loss 0.5")
	p.Describe("epoch 2/2")
	p.Finish()
	s := buf.String()
	for _, want := range []string{"dapo bottle: 2/8 images", "dapo bottle: 8/8 images", "epoch 1/1: mean loss 0.5, ", " img/s, "} {
		if !strings.Contains(s, want) {
			t.Errorf("progress output %q lacks %q", s, want)
		}
	}
	if strings.Contains(s, "\r") {
		t.Errorf("progress output %q has a carriage return", s)
	}
	New(nil, 3, "silent").Add(3) // nil writer: silent, no panic
}
