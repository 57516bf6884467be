package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"
)

var (
	loadOnce sync.Once
	shared   *Tokenizer
	loadErr  error
)

func tok(tb testing.TB) *Tokenizer {
	tb.Helper()
	loadOnce.Do(func() { shared, loadErr = New() })
	if loadErr != nil {
		tb.Fatal(loadErr)
	}
	return shared
}

type vector struct {
	Text    string  `json:"text"`
	IDs     []int   `json:"ids"`
	TooLong bool    `json:"too_long"`
	Tokens  []int64 `json:"tokens"`
}

// TestVectors checks every id of testdata/vectors.json, produced by the
// Python reference in testdata/gen_vectors.py.
func TestVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 300 {
		t.Fatalf("only %d vectors", len(vs))
	}
	tk := tok(t)
	for _, v := range vs {
		got := tk.Encode(v.Text)
		if !slices.Equal(got, v.IDs) && !(len(got) == 0 && len(v.IDs) == 0) {
			t.Errorf("Encode(%q) = %v, want %v", v.Text, got, v.IDs)
			continue
		}
		full, err := tk.Tokenize(v.Text, false)
		if v.TooLong != errors.Is(err, ErrTooLong) {
			t.Errorf("Tokenize(%q, false) error = %v, want too long = %v", v.Text, err, v.TooLong)
		}
		if err == nil && !slices.Equal(full, v.Tokens) {
			t.Errorf("Tokenize(%q, false) = %v, want %v", v.Text, full, v.Tokens)
		}
		trunc, err := tk.Tokenize(v.Text, true)
		if err != nil || !slices.Equal(trunc, v.Tokens) {
			t.Errorf("Tokenize(%q, true) = %v, %v; want %v", v.Text, trunc, err, v.Tokens)
		}
	}
}

// TestMethodIDs pins the ids and end-of-text positions quoted in
// docs/methods.md#dapo-token-ids and docs/methods.md#anomalyclip-eot-index.
func TestMethodIDs(t *testing.T) {
	tk := tok(t)
	for _, c := range []struct {
		text string
		ids  []int
	}{
		{"X", []int{343}}, {"flawless", []int{15531}}, {"object", []int{14115}},
		{"anomaly", []int{46811}}, {"bent", []int{18369}},
	} {
		if got := tk.Encode(c.text); !slices.Equal(got, c.ids) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.ids)
		}
	}
	for _, c := range []struct {
		text string
		eot  int
	}{
		{"X X X X X flawless object", 8},
		{"X X X X X bent anomaly object", 9},
		{"X X X X X faulty imprint anomaly object", 10},
		{"X X X X X weird wick anomaly object", 10},
		{"X X X X X defective painting anomaly object", 11},
		{"X X X X X discoloration anomaly object", 12},
		{"X X X X X X X X X X X X object.", 15},
		{"X X X X X X X X X X X X damaged object.", 16},
	} {
		ids, err := tk.Tokenize(c.text, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := EOTIndex(ids); got != c.eot {
			t.Errorf("EOTIndex(%q) = %d, want %d", c.text, got, c.eot)
		}
	}
}

// TestPythonUnicode checks the whitespace and lower-case rules against
// Python's own tables (testdata/unicode.json, from gen_vectors.py --unicode).
func TestPythonUnicode(t *testing.T) {
	data, err := os.ReadFile("testdata/unicode.json")
	if err != nil {
		t.Fatal(err)
	}
	var u struct {
		Version string  `json:"unicode_version"`
		Space   []rune  `json:"space"`
		Lower   [][]any `json:"lower"`
	}
	if err := json.Unmarshal(data, &u); err != nil {
		t.Fatal(err)
	}
	isSpace := map[rune]bool{}
	for _, r := range u.Space {
		isSpace[r] = true
	}
	for r := rune(0); r < 0x30000; r++ {
		if isPySpace(r) != isSpace[r] {
			t.Errorf("isPySpace(%U) = %v, Python says %v", r, isPySpace(r), isSpace[r])
		}
	}
	mismatch, checked := 0, 0
	for _, e := range u.Lower {
		r := rune(e[0].(float64))
		want := e[1].(string)
		if !unicode.Is(unicode.L, r) || !knownTo(r) {
			continue // assigned after Python's Unicode version or not a letter
		}
		checked++
		if got := pyLower(string(r)); got != want {
			mismatch++
			t.Errorf("pyLower(%U %q) = %q, Python %s gives %q", r, r, got, u.Version, want)
		}
	}
	if checked < 1000 || mismatch > 0 {
		t.Errorf("%d of %d checked lower-case mappings differ", mismatch, checked)
	}
}

// knownTo excludes letters whose case mapping Unicode added after
// Python 3.11's Unicode 14.0 (Go's tables are newer).
func knownTo(r rune) bool {
	return !(r >= 0x1E030 && r <= 0x1E08F) && !(r >= 0xA7C0 && r <= 0xA7FF)
}

func TestFinalSigma(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"ΟΔΟΣ", "οδος"}, {"Σ", "σ"}, {"ΣΑΣ σας", "σας σας"}, {"ΑΣ.", "ας."}, {"ΑΣΑ", "ασα"},
		{"İ", "i\u0307"},
	} {
		if got := pyLower(c.in); got != c.want {
			t.Errorf("pyLower(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDecode(t *testing.T) {
	tk := tok(t)
	for _, s := range []string{"a photo of a cat", "weird wick", "x² and 日本", "hello, world!"} {
		got, err := tk.Decode(tk.Encode(s))
		if err != nil {
			t.Fatal(err)
		}
		if strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(clean(s), " ", "") {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
	if _, err := tk.Decode([]int{VocabSize}); err == nil {
		t.Error("Decode accepted an id outside the vocabulary")
	}
}

func TestVocabHash(t *testing.T) {
	const want = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
	if got := VocabSHA256(); got != want {
		t.Errorf("VocabSHA256() = %s, want %s (openai/CLIP's file)", got, want)
	}
}

func TestConcurrent(t *testing.T) {
	tk := tok(t)
	want := tk.Encode("a photo of the damaged metal nut")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got := tk.Encode("a photo of the damaged metal nut"); !slices.Equal(got, want) {
					t.Error("concurrent Encode differs")
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"", "a photo of a cat", "<|endoftext|>", "\xff\xfe", "ΣΑΣ", "&amp;amp;", strings.Repeat("ab ", 100)} {
		f.Add(s)
	}
	tk := tok(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, id := range tk.Encode(s) {
			if id < 0 || id >= VocabSize {
				t.Fatalf("Encode(%q) gave id %d", s, id)
			}
		}
		ids, err := tk.Tokenize(s, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != ContextLength || ids[0] != SOT || ids[EOTIndex(ids)] != EOT {
			t.Fatalf("Tokenize(%q) = %v", s, ids)
		}
		if !utf8.ValidString(clean(s)) {
			t.Fatalf("clean(%q) is not valid UTF-8", s)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	tk := tok(b)
	for b.Loop() {
		tk.Encode("a jpeg corrupted photo of the damaged metal nut for anomaly detection")
	}
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(); err != nil {
			b.Fatal(err)
		}
	}
}
