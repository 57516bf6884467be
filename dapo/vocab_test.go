package dapo

import (
	"slices"
	"testing"
)

func TestVocabularies(t *testing.T) {
	v, err := DefaultVocabularies()
	if err != nil {
		t.Fatal(err)
	}
	// Sizes stated in docs/methods.md#dapo-vocab-binary and
	// docs/methods.md#dapo-vocab-multitype.
	sizes := map[string]int{"mvtec": 20, "visa": 18, "mpdd": 7, "mad-real": 2, "mad-sim": 3, "real-iad": 6}
	for ds, n := range sizes {
		if len(v.Binary[ds]) != n {
			t.Errorf("binary %s: %d words, want %d", ds, len(v.Binary[ds]), n)
		}
	}
	if len(v.Train["mvtec"]) != 20 || v.Train["mvtec"][2] != "discoloration" {
		t.Errorf("train vocabulary %v", v.Train["mvtec"])
	}
	multi := map[string]int{"mvtec": 21, "visa": 19, "mpdd": 8, "mad-sim": 4, "mad-real": 3, "real-iad": 9}
	for ds, n := range multi {
		if len(v.Multi[ds]) != n {
			t.Errorf("multi %s: %d classes, want %d", ds, len(v.Multi[ds]), n)
		}
	}
	// The manipulated_front quirk (docs/methods.md#dapo-manipulated-front):
	// "bent" (1) in training but "fabric" (8) in the multi-type test.
	if v.TrainGT["mvtec"]["manipulated_front"] != 1 || v.MultiGT["mvtec"]["manipulated_front"] != 8 {
		t.Error("manipulated_front mapping")
	}
	words, idx, err := v.ObjectClasses("visa", "candle")
	if err != nil {
		t.Fatal(err)
	}
	if words[0] != "normal" || !slices.Equal(idx, []int{0, 1, 5, 9, 11, 15, 16, 18}) {
		t.Errorf("candle %v %v", words, idx)
	}
	if words, _, err := v.ObjectClasses("mad-sim", "01Gorilla"); err != nil || len(words) != 4 {
		t.Errorf("mad-sim wildcard: %v %v", words, err)
	}
	if _, _, err := v.ObjectClasses("mvtec", "bottel"); err == nil {
		t.Error("no error for an unknown category")
	}
	if len(v.PerObject["real-iad"]) != 30 || len(v.PerObject["mvtec"]) != 15 || len(v.PerObject["visa"]) != 12 {
		t.Error("per-object list sizes")
	}
}
