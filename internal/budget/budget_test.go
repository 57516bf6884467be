package budget

import (
	"errors"
	"strings"
	"testing"
)

func TestPixels(t *testing.T) {
	if err := CheckPixels(13376, 13378); err != nil { // 178 944 128 pixels, just under
		t.Errorf("under the default: %v", err)
	}
	err := CheckPixels(100000, 100000)
	if !errors.Is(err, ErrExceeded) || !strings.Contains(err.Error(), PixelsEnv) {
		t.Errorf("over the default: %v", err)
	}
	if err := CheckPixels(0, 5); err == nil || errors.Is(err, ErrExceeded) {
		t.Errorf("empty image: %v", err)
	}
	t.Setenv(PixelsEnv, "20000000000")
	if err := CheckPixels(100000, 100000); err != nil {
		t.Errorf("raised budget: %v", err)
	}
	t.Setenv(PixelsEnv, "100")
	if err := CheckPixels(11, 10); !errors.Is(err, ErrExceeded) {
		t.Errorf("lowered budget: %v", err)
	}
	for _, bad := range []string{"0", "-1", "lots", "1e9"} {
		t.Setenv(PixelsEnv, bad)
		if err := CheckPixels(1, 1); err == nil || !strings.Contains(err.Error(), "positive integer") {
			t.Errorf("%s=%q: %v", PixelsEnv, bad, err)
		}
	}
}

func TestTensors(t *testing.T) {
	t.Setenv(TensorEnv, "100")
	tb, err := NewTensors()
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Take(60, "a"); err != nil {
		t.Fatal(err)
	}
	if err := tb.Take(41, "b"); !errors.Is(err, ErrExceeded) || !strings.Contains(err.Error(), "b: 41 values, with 60 before them") {
		t.Errorf("over: %v", err)
	}
	if err := tb.Take(40, "c"); err != nil {
		t.Errorf("exactly the budget: %v", err)
	}
	if err := tb.Take(-1, "d"); err == nil {
		t.Error("negative count accepted")
	}
}

func TestElements(t *testing.T) {
	if n, err := Elements([]int{3, 0, 5}); n != 0 || err != nil {
		t.Errorf("empty: %d %v", n, err)
	}
	if n, err := Elements(nil); n != 1 || err != nil {
		t.Errorf("scalar: %d %v", n, err)
	}
	if _, err := Elements([]int{-2, 3}); err == nil {
		t.Error("negative dimension accepted")
	}
	if _, err := Elements([]int{1 << 40, 1 << 40}); err == nil {
		t.Error("overflow accepted")
	}
}
