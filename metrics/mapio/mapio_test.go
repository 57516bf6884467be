package mapio

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/budget"
	"github.com/dapobench/dapobench/internal/budget/budgettest"
)

type manifestEntry struct {
	Expected string `json:"expected"`
	Rounded  bool   `json:"rounded"`
	Reader   string `json:"reader"`
}

func readManifest(t testing.TB) map[string]manifestEntry {
	t.Helper()
	b, err := os.ReadFile("testdata/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]manifestEntry
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReadFileMatchesReferenceReaders reads every file written by
// testdata/gen_maps.py and compares it bit for bit with what tifffile,
// GDAL, Pillow or numpy read from the same file.
func TestReadFileMatchesReferenceReaders(t *testing.T) {
	for name, e := range readManifest(t) {
		t.Run(name, func(t *testing.T) {
			got, err := ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join("testdata", e.Expected))
			if err != nil {
				t.Fatal(err)
			}
			want, err := DecodeNPYMap(data)
			if err != nil {
				t.Fatal(err)
			}
			if got.Width != want.Width || got.Height != want.Height {
				t.Fatalf("size %d×%d, %s reads %d×%d", got.Width, got.Height, e.Reader, want.Width, want.Height)
			}
			for i := range got.Pix {
				if math.Float32bits(got.Pix[i]) != math.Float32bits(want.Pix[i]) {
					t.Fatalf("pixel (%d,%d) = %v, %s reads %v", i%got.Width, i/got.Width, got.Pix[i], e.Reader, want.Pix[i])
				}
			}
			if got.Rounded != e.Rounded {
				t.Errorf("Rounded = %v, want %v", got.Rounded, e.Rounded)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tif, err := os.ReadFile("testdata/f32.tif")
	if err != nil {
		t.Fatal(err)
	}
	npy, err := os.ReadFile("testdata/f32.npy")
	if err != nil {
		t.Fatal(err)
	}
	npyHeader := func(h string) []byte {
		b := []byte("\x93NUMPY\x01\x00")
		b = append(b, byte(len(h)), byte(len(h)>>8))
		return append(b, h...)
	}
	tests := []struct {
		name   string
		decode func([]byte) (*Map, error)
		data   []byte
		want   string
	}{
		{"tiff empty", DecodeTIFF, nil, "too short"},
		{"tiff magic", DecodeTIFF, []byte("PK\x03\x04xxxxxxxx"), "byte-order"},
		{"tiff truncated", DecodeTIFF, tif[:len(tif)/2], "past the end"},
		{"tiff bigtiff", DecodeTIFF, []byte("II+\x00\x08\x00\x00\x00\x00\x00\x00\x00"), "BigTIFF"},
		{"npy magic", DecodeNPYMap, []byte("NUMPY\x01\x00"), "magic"},
		{"npy truncated", DecodeNPYMap, npy[:len(npy)-3], "data bytes"},
		{"npy dtype", DecodeNPYMap, npyHeader("{'descr': '<c8', 'fortran_order': False, 'shape': (1, 1), }"), "dtype"},
		{"npy structured", DecodeNPYMap, npyHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"), "descr"},
		{"npy 3 channels", DecodeNPYMap, append(npyHeader("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 3), }"), 1, 2, 3, 4, 5, 6), "not one map"},
		{"npy huge shape", DecodeNPYMap, npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"), "too large"},
		{"npy unknown key", DecodeNPYMap, npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"), "unknown key"},
		{"png garbage", DecodePNG, []byte("\x89PNG\r\n\x1a\nxxxx"), "png"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.decode(tc.data)
			if err == nil {
				t.Fatalf("decoded %d×%d, want an error", m.Width, m.Height)
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want ErrFormat mentioning %q", err, tc.want)
			}
		})
	}
}

// TestBombs reads maps whose headers declare 100 000 × 100 000 values in
// a few dozen bytes: each is refused by the pixel budget, with an error
// naming the file and the way to raise the budget, before anything is
// allocated.
func TestBombs(t *testing.T) {
	for _, name := range []string{"f32.tif", "f32.npy", "gray16.png"} {
		p := budgettest.Bomb(t, name)
		budgettest.Allocs(t, 1<<20, func() {
			_, err := ReadFile(p)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), budget.PixelsEnv) || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	// Raised, the budget lets the header through; the data then falls
	// short, still before the image is allocated.
	t.Setenv(budget.PixelsEnv, "20000000000")
	for _, name := range []string{"f32.tif", "f32.npy", "gray16.png"} {
		budgettest.Allocs(t, 1<<20, func() {
			if _, err := ReadFile(budgettest.Bomb(t, name)); !errors.Is(err, ErrFormat) {
				t.Errorf("%s with a raised budget: %v", name, err)
			}
		})
	}
}

func TestReadFileNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.tiff")
	if err := os.WriteFile(p, []byte("not a tiff"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error %v does not name %s", err, p)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "map.jpg")); err == nil {
		t.Fatal("a .jpg map was accepted")
	}
}

func TestReadScores(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Scores
		err  string
	}{
		{"header", "path,score\nbottle/test/good/000.png,0.5\n", Scores{"bottle/test/good/000.png": 0.5}, ""},
		{"no header", "a/b.png,1e-3\r\n./a//c.png, -2\n", Scores{"a/b.png": 1e-3, "a/c.png": -2}, ""},
		{"backslash", "a\\b.png,1\n", Scores{"a/b.png": 1}, ""},
		{"quoted comma", "\"a,b.png\",1\n", Scores{"a,b.png": 1}, ""},
		{"empty file", "", Scores{}, ""},
		{"duplicate", "a.png,1\n./a.png,2\n", nil, "line 2: a.png appears twice"},
		{"nan", "a.png,NaN\n", nil, "line 1: score \"NaN\""},
		{"inf", "path,score\na.png,+Inf\n", nil, "line 2"},
		{"not a number", "a.png,high\n", nil, "not a finite number"},
		{"three fields", "a.png,1,2\n", nil, "3 fields"},
		{"escapes", "../x.png,1\n", nil, "not inside the dataset"},
		{"absolute", "/x.png,1\n", nil, "not inside the dataset"},
		{"bad quote", "\"a.png,1\n", nil, "scores"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadScores(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrScores) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrScores with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func seedFiles(f *testing.F, ext string) {
	names, _ := filepath.Glob(filepath.Join("testdata", "*"+ext))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkMap is what every decoder promises for input it accepts.
func checkMap(t *testing.T, m *Map, err error) {
	if err != nil {
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v does not wrap ErrFormat", err)
		}
		return
	}
	if m.Width <= 0 || m.Height <= 0 || len(m.Pix) != m.Width*m.Height {
		t.Fatalf("accepted a %d×%d map with %d pixels", m.Width, m.Height, len(m.Pix))
	}
}

// fuzzMap fuzzes one decoder under a small pixel budget: besides keeping
// its promises (checkMap), it must not allocate more than the budget's
// pixels at 8 bytes, its input a few times over, and a decompressor's
// buffers, so that a bomb the fuzzer finds fails the run.
func fuzzMap(f *testing.F, decode func([]byte) (*Map, error), seeds ...string) {
	for _, ext := range seeds {
		seedFiles(f, ext)
	}
	for _, name := range []string{"f32.tif", "f32.npy", "gray16.png"} {
		if b, err := os.ReadFile(budgettest.Bomb(f, name)); err == nil {
			f.Add(b)
		}
	}
	budgettest.Limit(f, budgettest.SmallPixels, 1<<16)
	f.Fuzz(func(t *testing.T, data []byte) {
		budgettest.Allocs(t, 1<<20+16*uint64(len(data)), func() {
			m, err := decode(data)
			checkMap(t, m, err)
		})
	})
}

func FuzzDecodeTIFF(f *testing.F) { fuzzMap(f, DecodeTIFF, ".tif", ".tiff") }

func FuzzDecodeNPY(f *testing.F) { fuzzMap(f, DecodeNPYMap, ".npy") }

func FuzzDecodePNG(f *testing.F) { fuzzMap(f, DecodePNG, ".png") }

func FuzzReadScores(f *testing.F) {
	f.Add([]byte("path,score\na/b.png,0.5\n"))
	f.Add([]byte("a.png,1\n\"b,c.png\",2e-300\n"))
	f.Add([]byte("x\\y.png,-0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadScores(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrScores) {
				t.Fatalf("error %v does not wrap ErrScores", err)
			}
			return
		}
		for k, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) || k == "" || strings.HasPrefix(k, "/") || strings.HasPrefix(k, "../") {
				t.Fatalf("accepted %q = %v", k, v)
			}
		}
	})
}

func TestReadScoresFile(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.csv"), filepath.Join(dir, "bad.csv")
	os.WriteFile(good, []byte("path,score\na.png,0.25\n"), 0o644)
	os.WriteFile(bad, []byte("a.png,x\n"), 0o644)
	if s, err := ReadScoresFile(good); err != nil || len(s) != 1 || s["a.png"] != 0.25 {
		t.Errorf("good: %v %v", s, err)
	}
	if _, err := ReadScoresFile(bad); !errors.Is(err, ErrScores) || !strings.HasPrefix(err.Error(), bad+": mapio: scores: line 1") {
		t.Errorf("bad: %v", err)
	}
	if _, err := ReadScoresFile(filepath.Join(dir, "none.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
