package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/internal/cli"
)

// ckptFixture is a torch zip checkpoint written by
// checkpoints/testdata/gen_pth.py at the tiny model's sizes.
func ckptFixture(name string) string {
	return filepath.Join("..", "..", "checkpoints", "testdata", name)
}

func TestModelsImport(t *testing.T) {
	tmp := t.TempDir()
	for _, c := range []struct {
		scheme, file string
		shapes       []string
	}{
		{"dapo", "dapo_train.pth", []string{"normal_ctx", "[10 5 32]", "text_deep", "[4 4 32]", "visual_prompts", "[4 4 32]", "adapter.3.weight", "[16 32]"}},
		{"anomalyclip", "anomalyclip.pth", []string{"abnormal_ctx", "[12 32]", "text_deep", "[3 4 32]"}},
	} {
		t.Run(c.scheme, func(t *testing.T) {
			model := filepath.Join(tmp, c.scheme+"-model")
			if _, _, err := modelsCLI(t, "models", "tiny", "--variant", c.scheme, "--out", model); err != nil {
				t.Fatal(err)
			}
			src := ckptFixture(c.file)
			out := filepath.Join(model, "learned.safetensors")
			stdout, _, err := modelsCLI(t, "models", "import", "--scheme", c.scheme, "--checkpoint", src, "--model", model, "--out", out)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			for _, s := range append([]string{c.file, hex.EncodeToString(sum[:]), "model tiny-quick_gelu", out, "trained ("}, c.shapes...) {
				if !strings.Contains(stdout, s) {
					t.Errorf("summary does not mention %q:\n%s", s, stdout)
				}
			}
			l, err := checkpoints.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if l.Scheme != c.scheme || !l.Trained || l.Source != c.file || l.SourceSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("wrote %s %v %s %s", l.Scheme, l.Trained, l.Source, l.SourceSHA256)
			}
			entries, _ := os.ReadDir(model)
			if slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.Contains(e.Name(), ".tmp") }) {
				t.Errorf("temporary file left in %s", model)
			}
		})
	}
}

func TestModelsImportBadInput(t *testing.T) {
	tmp := t.TempDir()
	model := filepath.Join(tmp, "dapo-model")
	if _, _, err := modelsCLI(t, "models", "tiny", "--variant", "dapo", "--out", model); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out.safetensors")
	for _, c := range []struct {
		name  string
		args  []string
		usage bool
		want  []string
	}{
		{"no scheme", []string{"--checkpoint", ckptFixture("dapo_train.pth"), "--out", out}, true, []string{"--scheme is required"}},
		{"no out", []string{"--scheme", "dapo", "--checkpoint", ckptFixture("dapo_train.pth")}, true, []string{"--out is required"}},
		{"unknown scheme", []string{"--scheme", "winclip", "--checkpoint", ckptFixture("dapo_train.pth"), "--out", out}, true, []string{`"winclip"`, "dapo, anomalyclip, adaclip, aprilgan, multiads"}},
		{"wrong shape", []string{"--scheme", "dapo", "--checkpoint", ckptFixture("dapo_badshape.pth"), "--model", model, "--out", out}, false,
			[]string{"dapo_badshape.pth", "learnable_normal_tokens has shape [10 4 32], want [10 5 32]"}},
		{"official sizes", []string{"--scheme", "dapo", "--checkpoint", ckptFixture("dapo_train.pth"), "--out", out}, false,
			[]string{"dapo_train.pth", "ViT-L-14-336", "want [10 5 768]"}},
		{"model of another variant", []string{"--scheme", "anomalyclip", "--checkpoint", ckptFixture("anomalyclip.pth"), "--model", model, "--out", out}, false,
			[]string{"variant anomalyclip, not dapo"}},
		{"no model", []string{"--scheme", "dapo", "--checkpoint", ckptFixture("dapo_train.pth"), "--model", filepath.Join(tmp, "none"), "--out", out}, false,
			[]string{"model.json"}},
		{"torchscript", []string{"--scheme", "dapo", "--checkpoint", ckptFixture("torchscript.pt"), "--out", out}, false, []string{"torchscript.pt", "TorchScript"}},
		// The official AdaCLIP checkpoint of the parity test (width 64)
		// against ViT-L's sizes.
		{"adaclip official sizes", []string{"--scheme", "adaclip", "--checkpoint", filepath.Join("..", "..", "baselines", "adaclip", "testdata", "official_init.pth"), "--out", out}, false,
			[]string{"official_init.pth", "ViT-L-14-336", "cls_token_layer.head.0.weight has shape [64 64], want [768 768]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := modelsCLI(t, append([]string{"models", "import"}, c.args...)...)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, cli.ErrUsage) != c.usage {
				t.Errorf("usage error = %v, want %v: %v", !c.usage, c.usage, err)
			}
			for _, s := range c.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a failed import wrote %s", out)
			}
		})
	}
}
