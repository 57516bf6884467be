package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/results"
)

// evalFixture is the MVTec fixture tree with one anomaly map per test
// image, written as float32 TIFF (bottle), .npy (grid) or 16-bit PNG
// (hazelnut), and the maps and masks kept in memory for the expected
// values.
type evalFixture struct {
	root, maps string
	samples    []loaders.Sample
	pix        map[string][]float32 // RelImage → map
	masks      map[string][]uint8
}

func newEvalFixture(t *testing.T) *evalFixture {
	t.Helper()
	data := genFixtures(t)
	f := &evalFixture{root: filepath.Join(data, "mvtec"), maps: filepath.Join(t.TempDir(), "maps"),
		pix: map[string][]float32{}, masks: map[string][]uint8{}}
	set, err := loaders.Load(context.Background(), "mvtec", loaders.Options{Root: f.root})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range set.Samples {
		if s.Split != loaders.Test {
			continue
		}
		f.samples = append(f.samples, s)
		mask := make([]uint8, s.Width*s.Height)
		if s.MaskPath != "" {
			m, err := loaders.ReadMask(s.MaskPath)
			if err != nil {
				t.Fatal(err)
			}
			mask = m.Pix
		}
		pix := make([]float32, len(mask))
		for i := range pix {
			v := rng.Float64() * 0.6
			if mask[i] != 0 {
				v += 0.3
			}
			pix[i] = float32(v)
		}
		stem := filepath.Join(f.maps, filepath.FromSlash(strings.TrimSuffix(s.RelImage, path.Ext(s.RelImage))))
		if err := os.MkdirAll(filepath.Dir(stem), 0o755); err != nil {
			t.Fatal(err)
		}
		switch s.Category {
		case "bottle":
			err = os.WriteFile(stem+".tiff", tiffF32(s.Width, s.Height, pix), 0o644)
		case "grid":
			err = os.WriteFile(stem+".npy", npyF32(s.Width, s.Height, pix), 0o644)
		default:
			var b []byte
			b, pix = png16(s.Width, s.Height, pix)
			err = os.WriteFile(stem+".png", b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		f.pix[s.RelImage], f.masks[s.RelImage] = pix, mask
	}
	return f
}

// tiffF32 encodes an uncompressed little-endian float32 TIFF.
func tiffF32(w, h int, pix []float32) []byte {
	var b bytes.Buffer
	b.WriteString("II*\x00")
	binary.Write(&b, binary.LittleEndian, uint32(8))
	entries := [][3]uint32{ // tag, type, value
		{256, 4, uint32(w)}, {257, 4, uint32(h)}, {258, 3, 32}, {259, 3, 1}, {262, 3, 1},
		{273, 4, 8 + 2 + 10*12 + 4}, {277, 3, 1}, {278, 4, uint32(h)}, {279, 4, uint32(4 * w * h)}, {339, 3, 3},
	}
	binary.Write(&b, binary.LittleEndian, uint16(len(entries)))
	for _, e := range entries {
		binary.Write(&b, binary.LittleEndian, uint16(e[0]))
		binary.Write(&b, binary.LittleEndian, uint16(e[1]))
		binary.Write(&b, binary.LittleEndian, uint32(1))
		if e[1] == 3 {
			binary.Write(&b, binary.LittleEndian, [2]uint16{uint16(e[2]), 0})
		} else {
			binary.Write(&b, binary.LittleEndian, e[2])
		}
	}
	binary.Write(&b, binary.LittleEndian, uint32(0))
	binary.Write(&b, binary.LittleEndian, pix)
	return b.Bytes()
}

func npyF32(w, h int, pix []float32) []byte {
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", h, w)
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	hdr += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	binary.Write(&b, binary.LittleEndian, pix)
	return b.Bytes()
}

// png16 quantises the map to 16 bits and returns the PNG and the values it
// holds.
func png16(w, h int, pix []float32) ([]byte, []float32) {
	img := image.NewGray16(image.Rect(0, 0, w, h))
	q := make([]float32, len(pix))
	for i, v := range pix {
		u := uint16(math.Round(float64(v) / 0.9 * 65535))
		img.Pix[2*i], img.Pix[2*i+1] = uint8(u>>8), uint8(u)
		q[i] = float32(u)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes(), q
}

// expected computes a category's metrics from the maps in memory.
func (f *evalFixture) expected(t *testing.T, cat string, scores map[string]float64) (metrics.Binary, metrics.PixelResult) {
	t.Helper()
	p, _ := metrics.NewPixels(metrics.PixelOptions{})
	var s []float64
	var l []bool
	for _, smp := range f.samples {
		if smp.Category != cat {
			continue
		}
		pix := f.pix[smp.RelImage]
		if err := p.Add(pix, f.masks[smp.RelImage], smp.Width, smp.Height); err != nil {
			t.Fatal(err)
		}
		m := float32(math.Inf(-1))
		for _, v := range pix {
			m = max(m, v)
		}
		sc := float64(m)
		if scores != nil {
			sc = scores[smp.RelImage]
		}
		s, l = append(s, sc), append(l, smp.Label == 1)
	}
	img, err := metrics.BinaryScores(s, l)
	if err != nil {
		t.Fatal(err)
	}
	px, err := p.Compute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return img, px
}

func checkEntry(t *testing.T, cat string, e *results.Entry, img metrics.Binary, px metrics.PixelResult, aupro metrics.Value) {
	t.Helper()
	for _, c := range []struct {
		name string
		want metrics.Value
	}{
		{results.ImageAUROC, img.AUROC}, {results.ImageAP, img.AP}, {results.ImageF1Max, img.F1Max},
		{results.PixelAUROC, px.AUROC}, {results.PixelAP, px.AP}, {results.PixelF1Max, px.F1Max},
		{results.PixelAUPRO, aupro},
	} {
		got, ok := e.Get(c.name)
		if ok != c.want.OK() || (ok && got != c.want.V) {
			t.Errorf("%s %s = %v (defined %v), want %v (%q)", cat, c.name, got, ok, c.want.V, c.want.Reason)
		}
	}
}

func TestEvalFixtureMaps(t *testing.T) {
	f := newEvalFixture(t)
	out := filepath.Join(t.TempDir(), "results.json")
	stdout, stderr, err := runCLI(t, "eval", "--dataset", "mvtec", "--root", f.root, "--maps", f.maps, "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	res, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Settings["aupro"] != "cflow200" || res.Settings["image_score"] != "map maximum" || res.Scheme != "external" {
		t.Errorf("settings %v, scheme %q", res.Settings, res.Scheme)
	}
	if len(res.Categories) != 3 {
		t.Fatalf("categories %v", res.CategoryNames())
	}
	for _, cat := range res.CategoryNames() {
		img, px := f.expected(t, cat, nil)
		checkEntry(t, cat, res.Categories[cat], img, px, px.AUPROCflow200)
		e := res.Categories[cat]
		if e.Counts[results.NNormal] != int(img.Neg) || e.Counts[results.NAnomalous] != int(img.Pos) || img.Pos == 0 {
			t.Errorf("%s counts %v, want %d normal, %d anomalous", cat, e.Counts, img.Neg, img.Pos)
		}
		if !strings.Contains(stdout, cat) || !strings.Contains(stderr, "eval: "+cat+": ") {
			t.Errorf("%s missing from the table or the progress:\n%s\n%s", cat, stdout, stderr)
		}
	}
	if !strings.Contains(stdout, "mean") || !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("table:\n%s", stdout)
	}

	// The MVTec variant and image scores from a CSV.
	var csv strings.Builder
	csv.WriteString("path,score\n")
	scores := map[string]float64{}
	for i, s := range f.samples {
		v := float64(i%7) / 7
		if s.Label == 1 {
			v += 0.2
		}
		scores[s.RelImage] = v
		fmt.Fprintf(&csv, "%s,%v\n", s.RelImage, v)
	}
	csvPath := filepath.Join(t.TempDir(), "scores.csv")
	os.WriteFile(csvPath, []byte(csv.String()), 0o644)
	out2 := filepath.Join(t.TempDir(), "r.json")
	if _, stderr, err := runCLI(t, "eval", "--dataset", "mvtec", "--root", f.root, "--maps", f.maps, "--out", out2,
		"--aupro", "mvtec", "--scores", csvPath, "--quiet", "--workers", "1"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	res2, err := results.Read(out2)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Settings["aupro"] != "mvtec" || !strings.HasPrefix(res2.Settings["image_score"], "scores CSV") {
		t.Errorf("settings %v", res2.Settings)
	}
	for _, cat := range res2.CategoryNames() {
		img, px := f.expected(t, cat, scores)
		checkEntry(t, cat, res2.Categories[cat], img, px, px.AUPROMVTec)
	}
}

func TestEvalErrors(t *testing.T) {
	f := newEvalFixture(t)
	out := filepath.Join(t.TempDir(), "results.json")
	base := []string{"eval", "--dataset", "mvtec", "--root", f.root, "--maps", f.maps, "--out", out, "--quiet"}
	first := f.samples[0] // bottle, a TIFF
	stem := filepath.Join(f.maps, filepath.FromSlash(strings.TrimSuffix(first.RelImage, path.Ext(first.RelImage))))
	tiff := stem + ".tiff"
	orig, err := os.ReadFile(tiff)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		os.Remove(stem + ".npy")
		if err := os.WriteFile(tiff, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	csv := func(body string) string {
		p := filepath.Join(t.TempDir(), "s.csv")
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	tests := []struct {
		name  string
		setup func()
		args  []string
		usage bool
		want  []string
	}{
		{"missing map", func() { os.Remove(tiff) }, nil, false, []string{"no map for " + first.RelImage, stem}},
		{"two maps", func() {
			os.WriteFile(stem+".npy", npyF32(first.Width, first.Height, make([]float32, first.Width*first.Height)), 0o644)
		},
			nil, false, []string{"several maps", ".npy", ".tiff"}},
		{"size mismatch", func() {
			os.WriteFile(tiff, tiffF32(first.Width+1, first.Height, make([]float32, (first.Width+1)*first.Height)), 0o644)
		},
			nil, false, []string{tiff, fmt.Sprintf("%d×%d", first.Width+1, first.Height), "size"}},
		{"NaN score", func() {
			p := make([]float32, first.Width*first.Height)
			p[first.Width+2] = float32(math.NaN())
			os.WriteFile(tiff, tiffF32(first.Width, first.Height, p), 0o644)
		}, nil, false, []string{tiff, "(x=2, y=1)", "not finite"}},
		{"corrupt map", func() { os.WriteFile(tiff, []byte("II*\x00junk"), 0o644) }, nil, false, []string{tiff, "tiff"}},
		{"bad variant", nil, []string{"--aupro", "pro30"}, true, []string{"pro30"}},
		{"scores missing an image", nil, []string{"--scores", csv("path,score\n" + first.RelImage + ",1\n")}, false, []string{"has no score for"}},
		{"scores with a stranger", nil, []string{"--scores", csv("nowhere/x.png,1\n")}, false, []string{"not test images", "nowhere/x.png"}},
		{"malformed scores", nil, []string{"--scores", csv("a.png,x\n")}, false, []string{"s.csv", "line 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			defer restore()
			_, _, err := runCLI(t, append(append([]string(nil), base...), tc.args...)...)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, cli.ErrUsage) != tc.usage {
				t.Errorf("usage error = %v, want %v: %v", errors.Is(err, cli.ErrUsage), tc.usage, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Error("a failed evaluation wrote results")
			}
		})
	}
	if _, _, err := runCLI(t, "eval", "--dataset", "mvtec", "--root", f.root); !errors.Is(err, cli.ErrUsage) {
		t.Errorf("missing --maps: %v", err)
	}
}
