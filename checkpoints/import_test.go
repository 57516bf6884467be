package checkpoints

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/clip"
)

// tinyModel builds the tiny seeded model directory of a variant and
// returns its directory and model.json.
func tinyModel(t testing.TB, v clip.Variant) (string, *clip.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), string(v))
	if _, err := clip.BuildTiny(context.Background(), dir, 1, clip.Options{Variant: v}); err != nil {
		t.Fatal(err)
	}
	m, err := clip.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// expectedTensor is one entry of testdata/expected.json, written by
// gen_pth.py from the arrays it stored.
type expectedTensor struct {
	Shape  []int     `json:"shape"`
	SHA256 string    `json:"sha256"`
	First  []float64 `json:"first"`
}

func readExpected(t *testing.T) map[string]map[string]expectedTensor {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]map[string]expectedTensor
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// tensorSHA256 hashes float32 values as little-endian bytes, as numpy's
// tobytes() of a "<f4" array gives them.
func tensorSHA256(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// TestImport checks that importing each torch zip checkpoint gives
// exactly the arrays the generator stored, under the canonical names.
func TestImport(t *testing.T) {
	expected := readExpected(t)
	_, dapoModel := tinyModel(t, clip.DAPO)
	_, aclipModel := tinyModel(t, clip.AnomalyCLIP)
	for _, c := range []struct {
		file   string
		scheme string
		model  *clip.Manifest
	}{
		{"dapo_train.pth", DAPO, dapoModel}, // train.py's keys, with optimizer state and meta_net
		{"dapo_test.pth", DAPO, dapoModel},  // test.py's *_state_dict keys
		{"anomalyclip.pth", AnomalyCLIP, aclipModel},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", c.file)
			l, err := Import(path, c.scheme, c.model)
			if err != nil {
				t.Fatal(err)
			}
			if l.Scheme != c.scheme || !l.Trained || l.Source != c.file || l.SourceSHA256 != fileSHA256(t, path) {
				t.Errorf("provenance = %q trained=%v %q %q", l.Scheme, l.Trained, l.Source, l.SourceSHA256)
			}
			want := expected[c.file]
			if got, w := l.Names(), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
				t.Fatalf("tensors %v, want %v", got, w)
			}
			for name, e := range want {
				got := l.Tensors[name]
				if !slices.Equal(got.Shape, e.Shape) {
					t.Errorf("%s: shape %v, want %v", name, got.Shape, e.Shape)
					continue
				}
				for i, x := range e.First {
					if float64(got.Data[i]) != x {
						t.Errorf("%s[%d] = %v, want %v", name, i, got.Data[i], x)
					}
				}
				if s := tensorSHA256(got.Data); s != e.SHA256 {
					t.Errorf("%s: values differ from the stored array (sha256 %s, want %s)", name, s, e.SHA256)
				}
			}
			if err := l.Check(c.model); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestImportOfficialSizes checks that without a model the official
// ViT-L sizes are expected: the tiny checkpoints do not fit them.
func TestImportOfficialSizes(t *testing.T) {
	_, err := Import(filepath.Join("testdata", "dapo_train.pth"), DAPO, nil)
	for _, s := range []string{"dapo_train.pth", "ViT-L-14-336", "prompt_learner.learnable_normal_tokens has shape [10 5 32], want [10 5 768]",
		"visual_prompt.learnable_visual_tokens has shape [4 4 32], want [24 4 1024]",
		"prompt_learner.learnable_layer_tokens.{0..3} have shape [4 32], want [4 768]", "missing prompt_learner.learnable_layer_tokens.{4..11} (want shape [4 768])",
		"linear_adapter.fc.{0..3}.weight have shape [16 32], want [768 1024]"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not mention %q", err, s)
		}
	}
	if !errors.Is(err, ErrMismatch) {
		t.Errorf("error %v does not wrap ErrMismatch", err)
	}
	d, err := DimsOf(AnomalyCLIP, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{NormalCtx: {12, 768}, AbnormalCtx: {12, 768}, TextDeep: {8, 4, 768}}
	if got := d.Shapes(); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("official anomalyclip shapes %v, want %v", got, want)
	}
	d, err = DimsOf(DAPO, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Shapes()
	for k, w := range map[string][]int{NormalCtx: {10, 5, 768}, TextDeep: {12, 4, 768}, VisualPrompts: {24, 4, 1024},
		AdapterWeight(3): {768, 1024}, AdapterBias(0): {768}} {
		if !slices.Equal(got[k], w) {
			t.Errorf("official dapo %s: %v, want %v (docs/methods.md#dapo-checkpoint)", k, got[k], w)
		}
	}
	if len(got) != 4+2*4 {
		t.Errorf("official dapo has %d tensors, want 12", len(got))
	}
}

func TestImportErrors(t *testing.T) {
	tmp := t.TempDir()
	_, dapoModel := tinyModel(t, clip.DAPO)
	_, aclipModel := tinyModel(t, clip.AnomalyCLIP)
	text := filepath.Join(tmp, "notes.pth")
	os.WriteFile(text, []byte("not a checkpoint, only some notes"), 0o644)
	full, err := os.ReadFile(filepath.Join("testdata", "dapo_train.pth"))
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(tmp, "truncated.pth")
	os.WriteFile(truncated, full[:len(full)/2], 0o644)
	td := func(f string) string { return filepath.Join("testdata", f) }
	for _, c := range []struct {
		name     string
		path     string
		scheme   string
		model    *clip.Manifest
		mismatch bool
		want     []string
	}{
		{"wrong shape", td("dapo_badshape.pth"), DAPO, dapoModel, true,
			[]string{"dapo_badshape.pth", "prompt_learner.learnable_normal_tokens has shape [10 4 32], want [10 5 32]"}},
		{"missing", td("dapo_missing.pth"), DAPO, dapoModel, true,
			[]string{"dapo_missing.pth", "missing prompt_learner.learnable_layer_tokens.3 (want shape [4 32])"}},
		{"unknown key", td("dapo_unknown.pth"), DAPO, dapoModel, true,
			[]string{"dapo_unknown.pth", "unknown tensor prompt_learner.learnable_extra_tokens [2 32]"}},
		{"both spellings", td("dapo_both.pth"), DAPO, dapoModel, true,
			[]string{"dapo_both.pth", `both "prompt_learner" and "prompt_learner_state_dict"`}},
		{"other scheme", td("anomalyclip.pth"), DAPO, dapoModel, true,
			[]string{"anomalyclip.pth", `no "visual_prompt" or "visual_prompt_state_dict" state dict`,
				"unknown tensor prompt_learner.ctx_pos [1 1 12 32]", "looks like an AnomalyCLIP checkpoint"}},
		{"other scheme reversed", td("dapo_train.pth"), AnomalyCLIP, aclipModel, true,
			[]string{"dapo_train.pth", "missing prompt_learner.ctx_pos", "looks like a DAPO checkpoint"}},
		{"model of another variant", td("dapo_train.pth"), DAPO, aclipModel, false,
			[]string{"scheme dapo needs a model directory of variant dapo, not anomalyclip"}},
		{"unknown scheme", td("dapo_train.pth"), "winclip", nil, false, []string{`unknown scheme "winclip"`, "dapo", "anomalyclip"}},
		{"torchscript", td("torchscript.pt"), DAPO, dapoModel, false, []string{"torchscript.pt", "TorchScript"}},
		{"not a zip", text, DAPO, dapoModel, false, []string{"notes.pth", "neither a torch zip checkpoint nor safetensors"}},
		{"truncated zip", truncated, DAPO, dapoModel, false, []string{"truncated.pth", "damaged zip archive"}},
		{"no file", filepath.Join(tmp, "none.pth"), AnomalyCLIP, nil, false, []string{"none.pth"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := Import(c.path, c.scheme, c.model)
			if err == nil {
				t.Fatalf("no error; imported %v", l.Names())
			}
			if errors.Is(err, ErrMismatch) != c.mismatch {
				t.Errorf("errors.Is(ErrMismatch) = %v, want %v: %v", !c.mismatch, c.mismatch, err)
			}
			for _, s := range c.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}
