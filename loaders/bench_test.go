package loaders_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/dapobench/dapobench/loaders"
)

// realIADTree writes a Real-IAD-like tree of n samples (5 views per
// object, a third of the objects defective with masks on two views) over
// ten categories and returns its root.
func realIADTree(b *testing.B, n int) string {
	b.Helper()
	root := b.TempDir()
	var jb, mb bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	jpeg.Encode(&jb, img, &jpeg.Options{Quality: 90})
	png.Encode(&mb, image.NewGray(image.Rect(0, 0, 256, 256)))
	type rec struct {
		Category     string  `json:"category"`
		AnomalyClass string  `json:"anomaly_class"`
		ImagePath    string  `json:"image_path"`
		MaskPath     *string `json:"mask_path"`
	}
	cats := []string{"audiojack", "bottle_cap", "button_battery", "end_cap", "eraser", "fire_hood", "mint", "mounts", "pcb", "phone_battery"}
	perCat := n / len(cats) / 5
	for _, c := range cats {
		var train, test []rec
		for s := range perCat {
			ng := s%3 == 0
			for v := 1; v <= 5; v++ {
				dir := fmt.Sprintf("OK/S%04d", s)
				name := fmt.Sprintf("%s_%04d_OK_C%d_20231021130235", c, s, v)
				if ng {
					dir = fmt.Sprintf("NG/HS/S%04d", s)
					name = fmt.Sprintf("%s__%04d_NG_HS_C%d_20231021130235", c, s, v)
				}
				full := filepath.Join(root, "realiad_256", c, dir)
				os.MkdirAll(full, 0o755)
				if err := os.WriteFile(filepath.Join(full, name+".jpg"), jb.Bytes(), 0o644); err != nil {
					b.Fatal(err)
				}
				r := rec{c, "OK", dir + "/" + name + ".jpg", nil}
				if ng && v <= 2 {
					os.WriteFile(filepath.Join(full, name+".png"), mb.Bytes(), 0o644)
					m := dir + "/" + name + ".png"
					r.AnomalyClass, r.MaskPath = "HS", &m
				}
				if s%4 == 1 {
					train = append(train, r)
				} else {
					test = append(test, r)
				}
			}
		}
		data, _ := json.Marshal(map[string]any{"meta": map[string]any{"prefix": c + "/", "normal_class": "OK"}, "train": train, "test": test})
		os.MkdirAll(filepath.Join(root, "realiad_jsons"), 0o755)
		os.WriteFile(filepath.Join(root, "realiad_jsons", c+".json"), data, 0o644)
	}
	return root
}

// BenchmarkScanRealIAD10k validates a 10,000-sample tree: JSON parsing,
// path checks, image and mask headers and file completeness, no pixel
// decoding.
func BenchmarkScanRealIAD10k(b *testing.B) {
	root := realIADTree(b, 10000)
	b.ResetTimer()
	for b.Loop() {
		set, err := loaders.Load(context.Background(), "real-iad", loaders.Options{Root: root})
		if err != nil {
			b.Fatal(err)
		}
		if len(set.Samples) != 10000 {
			b.Fatalf("%d samples", len(set.Samples))
		}
	}
}
