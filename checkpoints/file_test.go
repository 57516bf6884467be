package checkpoints

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
)

// samples are one imported and one untrained Learned of each scheme.
func samples(t testing.TB) map[string]*Learned {
	t.Helper()
	_, dm := tinyModel(t, clip.DAPO)
	_, am := tinyModel(t, clip.AnomalyCLIP)
	out := map[string]*Learned{}
	for name, c := range map[string]struct {
		file, scheme string
		m            *clip.Manifest
	}{"dapo trained": {"dapo_train.pth", DAPO, dm}, "anomalyclip trained": {"anomalyclip.pth", AnomalyCLIP, am}} {
		l, err := Import(filepath.Join("testdata", c.file), c.scheme, c.m)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = l
	}
	table, _, _ := twoPointTable(dm.Arch.VocabSize, dm.Arch.TextWidth)
	var err error
	if out["dapo untrained"], err = Untrained(DAPO, dm, table, 11); err != nil {
		t.Fatal(err)
	}
	if out["anomalyclip untrained"], err = Untrained(AnomalyCLIP, am, clip.Tensor{}, 0); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	tmp := t.TempDir()
	for name, l := range samples(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(tmp, strings.ReplaceAll(name, " ", "_")+".safetensors")
			if err := l.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, l) {
				t.Errorf("read back %+v, wrote %+v", got, l)
			}
			// the same tensors always give the same bytes
			first, _ := os.ReadFile(path)
			if err := got.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
				t.Error("rewriting gives other bytes")
			}
		})
	}
}

// TestMetadata checks the provenance a reader of the header sees.
func TestMetadata(t *testing.T) {
	s := samples(t)
	path := filepath.Join(t.TempDir(), "a.safetensors")
	if err := s["anomalyclip trained"].WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"schema": Schema, "scheme": "anomalyclip", "trained": "true", "source": "anomalyclip.pth",
		"source_sha256": fileSHA256(t, filepath.Join("testdata", "anomalyclip.pth")),
		"shapes":        "abnormal_ctx [12 32]; normal_ctx [12 32]; text_deep [3 4 32]",
	}
	if !maps.Equal(f.Metadata, want) {
		t.Errorf("metadata %v, want %v", f.Metadata, want)
	}
	if err := s["dapo untrained"].WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if f, err = safetensors.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if f.Metadata["trained"] != "false" || f.Metadata["seed"] != "11" || f.Metadata["source"] != "" {
		t.Errorf("untrained metadata %v", f.Metadata)
	}
}

// writeRaw writes tensors and metadata as safetensors, bypassing
// WriteFile's checks.
func writeRaw(t *testing.T, path string, ts map[string]clip.Tensor, meta map[string]string, f16 string) {
	t.Helper()
	var list []safetensors.Tensor
	for k, v := range ts {
		if k == f16 {
			list = append(list, safetensors.F16(k, v.Shape, v.Data))
		} else {
			list = append(list, safetensors.F32(k, v.Shape, v.Data))
		}
	}
	if err := safetensors.WriteFile(path, list, meta); err != nil {
		t.Fatal(err)
	}
}

func TestReadFileErrors(t *testing.T) {
	tmp := t.TempDir()
	l := samples(t)["anomalyclip trained"]
	good := filepath.Join(tmp, "good.safetensors")
	if err := l.WriteFile(good); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	f, err := safetensors.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	meta := func(k, v string) map[string]string {
		m := maps.Clone(f.Metadata)
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	without := func(k string) map[string]clip.Tensor {
		ts := maps.Clone(l.Tensors)
		delete(ts, k)
		return ts
	}
	with := func(k string, v clip.Tensor) map[string]clip.Tensor {
		ts := maps.Clone(l.Tensors)
		ts[k] = v
		return ts
	}
	for _, c := range []struct {
		name     string
		write    func(path string)
		mismatch bool
		want     string
	}{
		{"truncated", func(p string) { os.WriteFile(p, data[:len(data)-100], 0o644) }, false, "safetensors"},
		{"header cut", func(p string) { os.WriteFile(p, data[:20], 0o644) }, false, "safetensors"},
		{"corrupt header", func(p string) {
			b := bytes.Clone(data)
			b[12] = '}'
			os.WriteFile(p, b, 0o644)
		}, false, "safetensors"},
		{"empty", func(p string) { os.WriteFile(p, nil, 0o644) }, false, "safetensors"},
		{"other safetensors", func(p string) { writeRaw(t, p, l.Tensors, nil, "") }, false, `schema ""`},
		{"unknown scheme", func(p string) { writeRaw(t, p, l.Tensors, meta("scheme", "winclip"), "") }, false, `unknown scheme "winclip"`},
		{"trained flag", func(p string) { writeRaw(t, p, l.Tensors, meta("trained", "maybe"), "") }, false, `trained = "maybe"`},
		{"no source", func(p string) { writeRaw(t, p, l.Tensors, meta("source", ""), "") }, false, "without a source"},
		{"bad sha256", func(p string) { writeRaw(t, p, l.Tensors, meta("source_sha256", "abc"), "") }, false, "64 hex digits"},
		{"untrained seed", func(p string) { writeRaw(t, p, l.Tensors, meta("trained", "false"), "") }, false, "seed"},
		{"float16", func(p string) { writeRaw(t, p, l.Tensors, f.Metadata, TextDeep) }, false, "dtype F16"},
		{"missing tensor", func(p string) { writeRaw(t, p, without(NormalCtx), f.Metadata, "") }, true, "missing normal_ctx (want shape [12 32])"},
		{"extra tensor", func(p string) { writeRaw(t, p, with("ctx_pos", clip.NewTensor(2)), f.Metadata, "") }, true, "unknown tensor ctx_pos [2]"},
		{"wrong shape", func(p string) { writeRaw(t, p, with(AbnormalCtx, clip.NewTensor(11, 32)), f.Metadata, "") }, true, "abnormal_ctx has shape [11 32], want [12 32]"},
		{"wrong rank", func(p string) { writeRaw(t, p, with(TextDeep, clip.NewTensor(12, 32)), f.Metadata, "") }, true, "text_deep has shape [12 32], want rank 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(tmp, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
			c.write(path)
			_, err := ReadFile(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention the file and %q", err, c.want)
			}
			if errors.Is(err, ErrMismatch) != c.mismatch {
				t.Errorf("errors.Is(ErrMismatch) = %v, want %v", !c.mismatch, c.mismatch)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(tmp, "none.safetensors")); err == nil || !strings.Contains(err.Error(), "none.safetensors") {
		t.Errorf("missing file: error %v", err)
	}
}

// TestWriteFileInvalid checks that incomplete tensors are refused and
// leave no file behind.
func TestWriteFileInvalid(t *testing.T) {
	l := samples(t)["dapo trained"]
	bad := *l
	bad.Tensors = maps.Clone(l.Tensors)
	delete(bad.Tensors, AdapterBias(2))
	path := filepath.Join(t.TempDir(), "out.safetensors")
	err := bad.WriteFile(path)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "missing adapter.2.bias (want shape [16])") {
		t.Errorf("error %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a refused write left %s", path)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 0 {
		t.Errorf("a refused write left %v", entries)
	}
}

// TestCheck checks learned tensors against models they do and do not fit.
func TestCheck(t *testing.T) {
	s := samples(t)
	l := s["dapo trained"]
	if err := l.Check(nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "normal_ctx has shape [10 5 32], want [10 5 768]") {
		t.Errorf("tiny tensors against the official sizes: %v", err)
	}
	_, am := tinyModel(t, clip.AnomalyCLIP)
	if err := l.Check(am); err == nil || !strings.Contains(err.Error(), "variant dapo") {
		t.Errorf("dapo tensors against an anomalyclip model: %v", err)
	}
	if err := s["anomalyclip untrained"].Check(am); err != nil {
		t.Error(err)
	}
	d, err := s["dapo untrained"].Dims()
	if err != nil {
		t.Fatal(err)
	}
	want := Dims{Scheme: DAPO, Groups: 10, CtxTokens: 5, DeepTokens: 4, TextDepth: 4, VisualDepth: 4, Adapters: 4,
		TextWidth: 32, VisionWidth: 32, EmbedDim: 16, Origin: "each other"}
	if d != want {
		t.Errorf("Dims() = %+v, want %+v", d, want)
	}
}

func TestLabel(t *testing.T) {
	l := &Learned{Scheme: DAPO, Trained: true, Source: "epoch_1.pth", SourceSHA256: strings.Repeat("ab", 32)}
	if got, want := l.Label(), "trained (epoch_1.pth, sha256 abababababab…)"; got != want {
		t.Errorf("Label() = %q, want %q", got, want)
	}
}

// smallManifest is a model.json of minimal sizes for a variant, so that
// fuzz inputs stay a few hundred bytes.
func smallManifest(v clip.Variant) *clip.Manifest {
	m := &clip.Manifest{
		Arch:    clip.Arch{Name: "small", PatchSize: 1, TextWidth: 2, VisionWidth: 3, EmbedDim: 2, VocabSize: 4},
		Variant: v, TextPromptDepth: 1, PromptTokens: 1,
	}
	if v == clip.DAPO {
		m.VisualPromptDepth, m.FeatureLayers = 2, []int{1, 2}
	}
	return m
}

// FuzzParse checks that no file content makes the reader panic, and that
// whatever it accepts is consistent.
func FuzzParse(f *testing.F) {
	table := clip.Tensor{Shape: []int{4, 2}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 9}}
	for i, scheme := range []string{DAPO, AnomalyCLIP} {
		l, err := Untrained(scheme, smallManifest(clip.Variant(scheme)), table, 1)
		if err != nil {
			f.Fatal(err)
		}
		if i == 1 {
			l.Trained, l.Source, l.SourceSHA256 = true, "x.pth", strings.Repeat("0", 64)
		}
		path := filepath.Join(f.TempDir(), "l.safetensors")
		if err := l.WriteFile(path); err != nil {
			f.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := parse(data)
		if err != nil {
			return
		}
		if _, err := l.Dims(); err != nil {
			t.Errorf("accepted tensors fail Dims: %v", err)
		}
	})
}
