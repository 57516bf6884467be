package kmeans

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// vectors is testdata/vectors.json, written by testdata/gen_vectors.py
// from numpy and scikit-learn themselves.
type vectors struct {
	NumPy   string `json:"numpy"`
	Sklearn string `json:"sklearn"`
	MT      struct {
		KeyHead []uint32 `json:"key_head"`
		Uint32  []uint32 `json:"uint32"`
		RandInt []struct {
			N       int   `json:"n"`
			RandInt []int `json:"randint"`
			Pos     int   `json:"pos"`
		} `json:"randint"`
		RandomSample []float64 `json:"random_sample"`
		Uniform4     []float64 `json:"uniform4"`
		Choice       []struct {
			N      int   `json:"n"`
			Choice []int `json:"choice"`
			Pos    int   `json:"pos"`
		} `json:"choice"`
	} `json:"mt19937"`
	Fits []struct {
		N         int       `json:"n"`
		Dim       int       `json:"dim"`
		X         []float32 `json:"x"`
		Init      []int     `json:"init"`
		Labels    []int     `json:"labels"`
		NIter     int       `json:"n_iter"`
		PosBefore int       `json:"pos_before"`
		PosAfter  int       `json:"pos_after"`
	} `json:"fits"`
}

func readVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMT19937 compares the generator and numpy's legacy draws with
// numpy's RandomState(111).
func TestMT19937(t *testing.T) {
	v := readVectors(t).MT
	g := NewMT19937(111)
	if !slices.Equal(g.key[:4], v.KeyHead) {
		t.Errorf("key after seeding %v, numpy %v", g.key[:4], v.KeyHead)
	}
	for i, want := range v.Uint32 {
		if got := g.Uint32(); got != want {
			t.Errorf("output %d: %d, numpy %d", i, got, want)
		}
	}
	for _, c := range v.RandInt {
		g := NewMT19937(111)
		for i, want := range c.RandInt {
			if got := g.IntN(c.N); got != want {
				t.Errorf("randint(%d) #%d: %d, numpy %d", c.N, i, got, want)
			}
		}
		if g.pos != c.Pos {
			t.Errorf("randint(%d): position %d after the draws, numpy %d", c.N, g.pos, c.Pos)
		}
	}
	g = NewMT19937(111)
	for i, want := range v.RandomSample {
		if got := g.Float64(); got != want {
			t.Errorf("random_sample #%d: %v, numpy %v", i, got, want)
		}
	}
	for i, want := range v.Uniform4 {
		if got := g.Float64(); got != want {
			t.Errorf("uniform #%d: %v, numpy %v", i, got, want)
		}
	}
	for _, c := range v.Choice {
		g := NewMT19937(111)
		p := make([]float64, c.N)
		for i := range p {
			p[i] = float64(float32(1) / float32(c.N))
		}
		for i, want := range c.Choice {
			if got := g.Choice(p); got != want {
				t.Errorf("choice(%d, p) #%d: %d, numpy %d", c.N, i, got, want)
			}
		}
		if g.pos != c.Pos {
			t.Errorf("choice(%d): position %d, numpy %d", c.N, g.pos, c.Pos)
		}
	}
}

// TestFitsMatchScikitLearn runs the sequence of fits scikit-learn made on
// one global generator: seeds, labels, iteration counts and generator
// positions must all agree.
func TestFitsMatchScikitLearn(t *testing.T) {
	v := readVectors(t)
	t.Logf("reference: numpy %s, scikit-learn %s", v.NumPy, v.Sklearn)
	g := NewMT19937(111)
	o := Options{K: 20}
	for i, f := range v.Fits {
		if g.pos%mtN != f.PosBefore%mtN {
			t.Errorf("fit %d: generator at %d before, numpy %d", i, g.pos, f.PosBefore)
		}
		d := Draw(g, f.N, o)
		if g.pos != f.PosAfter {
			t.Errorf("fit %d: generator at %d after, numpy %d", i, g.pos, f.PosAfter)
		}
		r, err := Fit(f.X, f.N, f.Dim, o, d)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Init, f.Init) {
			t.Errorf("fit %d: k-means++ seeds %v, scikit-learn %v", i, r.Init, f.Init)
		}
		if !slices.Equal(r.Labels, f.Labels) {
			t.Errorf("fit %d: labels %v, scikit-learn %v", i, r.Labels, f.Labels)
		}
		if r.Iter != f.NIter {
			t.Errorf("fit %d: %d iterations, scikit-learn %d", i, r.Iter, f.NIter)
		}
	}
}

// TestStream checks that the draws of fit n do not depend on how the
// stream was asked: in order, backwards, or across snapshots.
func TestStream(t *testing.T) {
	o := Options{K: 20}
	g := NewMT19937(111)
	var want []Draws
	for range 3*snapEvery + 5 {
		want = append(want, Draw(g, 100, o))
	}
	s := NewStream(111, 100, o)
	for _, i := range []int{len(want) - 1, 0, snapEvery, snapEvery - 1, 2*snapEvery + 3, 1} {
		d, err := s.At(i)
		if err != nil {
			t.Fatal(err)
		}
		if d.First != want[i].First || !slices.Equal(d.U, want[i].U) {
			t.Errorf("fit %d: draws differ from the sequential stream", i)
		}
	}
	if _, err := s.At(-1); err == nil {
		t.Error("fit -1: no error")
	}
}

func TestFitErrors(t *testing.T) {
	o := Options{K: 20}
	d := Draw(NewMT19937(1), 10, o)
	if _, err := Fit(make([]float32, 10*4), 10, 4, o, d); err == nil {
		t.Error("10 samples, 20 clusters: no error")
	}
	d = Draw(NewMT19937(1), 30, o)
	if _, err := Fit(make([]float32, 30*4-1), 30, 4, o, d); err == nil {
		t.Error("short data: no error")
	}
	if _, err := Fit(make([]float32, 30*4), 30, 4, Options{K: 8}, d); err == nil {
		t.Error("draws of 20 clusters used for 8: no error")
	}
}
