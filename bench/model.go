package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Model is an opened model directory: its manifest, its graphs loaded into
// onnxruntime, the token-embedding table and the tokenizer.
type Model struct {
	Runtime  *runner.Runtime
	Dir      string
	Manifest *clip.Manifest
	Image    *runner.Session
	Text     *runner.Session // nil when the directory has no text tower
	Window   *runner.Session // WinCLIP's window graph, else nil
	// TokenEmbedding is the [vocab, text_width] table prompts are built
	// from.
	TokenEmbedding clip.Tensor
	Tokenizer      *tokenizer.Tokenizer
	// ImageHash identifies the image tower: sha256 over model.json and the
	// image graph files. It is the model part of the feature-cache key.
	ImageHash string
	// Hash identifies the whole directory: sha256 over model.json and every
	// file it lists (both towers, the token embedding). Resumed runs
	// compare it (docs/README.md#rundir-resume).
	Hash string
}

// OpenModel loads a model directory. The tokenizer vocabulary must be the
// one the directory was built with.
func OpenModel(ctx context.Context, rt *runner.Runtime, dir string) (*Model, error) {
	man, err := clip.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if got := tokenizer.VocabSHA256(); man.Tokenizer.VocabSHA256 != "" && man.Tokenizer.VocabSHA256 != got {
		return nil, fmt.Errorf("bench: %s: built with tokenizer vocabulary %s, this build has %s", dir, man.Tokenizer.VocabSHA256, got)
	}
	m := &Model{Runtime: rt, Dir: dir, Manifest: man}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	load := func(key string) (*runner.Session, error) {
		if man.Files[key] == "" {
			return nil, nil
		}
		return rt.Load(ctx, man.Path(dir, key))
	}
	if m.Image, err = load("image"); err != nil {
		return nil, err
	}
	if m.Image == nil {
		return nil, fmt.Errorf("bench: %s: model.json lists no image graph", dir)
	}
	if m.Text, err = load("text"); err != nil {
		return nil, err
	}
	if m.Window, err = load("window"); err != nil {
		return nil, err
	}
	if m.TokenEmbedding, err = man.ReadTokenEmbedding(dir); err != nil {
		return nil, err
	}
	if m.Tokenizer, err = tokenizer.New(); err != nil {
		return nil, err
	}
	if m.ImageHash, m.Hash, err = modelHashes(dir, man); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// modelHashes hashes model.json and every file of the image-side graphs
// (with their external data), so that a rebuilt model never reads stale
// cache entries (image); and, in the same pass, model.json and every file
// the directory lists (all).
func modelHashes(dir string, man *clip.Manifest) (image, all string, err error) {
	var files, imageFiles []string
	add := func(f string) {
		files = append(files, f)
		if _, err := os.Stat(filepath.Join(dir, f+".data")); err == nil {
			files = append(files, f+".data")
		}
	}
	for _, key := range []string{"image", "window"} {
		if f := man.Files[key]; f != "" {
			add(f)
		}
	}
	imageFiles = append([]string{clip.ManifestFile}, files...)
	keys := make([]string, 0, len(man.Files))
	for k := range man.Files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(man.Files[k])
	}
	files = append(files, clip.ManifestFile)
	sort.Strings(files)
	files = slices.Compact(files)
	hi, ha := sha256.New(), sha256.New()
	for _, f := range files {
		w := io.Writer(ha)
		if slices.Contains(imageFiles, f) {
			w = io.MultiWriter(hi, ha)
		}
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			return "", "", fmt.Errorf("bench: %w", err)
		}
		io.WriteString(w, f+"\n")
		_, err = io.Copy(w, fh)
		fh.Close()
		if err != nil {
			return "", "", fmt.Errorf("bench: %s: %w", f, err)
		}
	}
	return hex.EncodeToString(hi.Sum(nil)), hex.EncodeToString(ha.Sum(nil)), nil
}

// Close releases the sessions.
func (m *Model) Close() error {
	var errs []error
	for _, s := range []*runner.Session{m.Image, m.Text, m.Window} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
