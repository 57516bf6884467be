package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Model is an opened model directory: its manifest, its graphs loaded into
// onnxruntime, the token-embedding table and the tokenizer.
//
// OpenModel loads every graph at once. OpenModelWith{Lazy: true}, the
// path of `dapobench run`, loads a graph the first time it is needed: the
// image-side graphs (Image and Window together) at the first feature-cache
// miss (ImageTower), the text tower at the first text-cache miss
// (EncodeText). Until then the fields are nil, so code that runs a graph
// asks ImageTower or EncodeText rather than reading Image directly; a
// scheme's Extract, which only runs after the image tower, may read Window.
type Model struct {
	Runtime  *runner.Runtime
	Dir      string
	Manifest *clip.Manifest
	Image    *runner.Session
	Text     *runner.Session // nil when the directory has no text tower
	Window   *runner.Session // WinCLIP's window graph, else nil
	// TokenEmbedding is the [vocab, text_width] table prompts are built
	// from. It is read-only: OpenModel maps it from its file (until Close).
	TokenEmbedding clip.Tensor
	unmapTable     func()
	Tokenizer      *tokenizer.Tokenizer
	// ImageHash identifies the image tower: sha256 over model.json and the
	// image graph files. It is the model part of the feature-cache key.
	ImageHash string
	// TextCache, when set, keeps the text tower's output for each prompt
	// on disk (docs/README.md#text-cache), so that a scheme's text side is
	// encoded once per model and prompt, across runs and variants.
	TextCache *featcache.Cache

	textHash string
	// textRuns counts text-tower runs, for tests and measurements.
	textRuns int

	// Hash identifies the whole directory: sha256 over model.json and every
	// file it lists (both towers, the token embedding). Resumed runs
	// compare it (docs/README.md#rundir-resume).
	Hash string
}

// imageMu and textMu guard the lazily set fields of every Model (Image
// and Window; Text, textHash and textRuns): loads are rare, and
// package-level locks keep Model a plain value that tests may copy.
var imageMu, textMu sync.Mutex

// OpenCaches opens the feature cache in dir and the text-feature cache in
// dir/text (OpenOptions.TextCache; docs/README.md#text-cache), so that one
// --cache folder serves both; dir "" opens neither.
func OpenCaches(dir string) (features, text *featcache.Cache, err error) {
	if dir == "" {
		return nil, nil, nil
	}
	if features, err = featcache.Open(dir); err != nil {
		return nil, nil, err
	}
	if text, err = featcache.Open(filepath.Join(dir, "text")); err != nil {
		return nil, nil, err
	}
	return features, text, nil
}

// HashMemoDir is the folder of a --cache folder dir that remembers model
// hashes (OpenOptions.HashMemo); "" when dir is "".
func HashMemoDir(dir string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "models")
}

// OpenOptions choose how OpenModelWith opens a directory.
type OpenOptions struct {
	// Lazy defers loading each graph until it is first needed.
	Lazy bool
	// TextCache is the text-feature cache (Model.TextCache); nil: none.
	TextCache *featcache.Cache
	// HashMemo is a folder where the model's content hashes are
	// remembered between runs (docs/README.md#model-hash-memo); "": the
	// files are read and hashed on every open.
	HashMemo string
}

// OpenModel loads a model directory with all its graphs. The tokenizer
// vocabulary must be the one the directory was built with.
func OpenModel(ctx context.Context, rt *runner.Runtime, dir string) (*Model, error) {
	return OpenModelWith(ctx, rt, dir, OpenOptions{})
}

// OpenModelWith loads a model directory as o says.
func OpenModelWith(ctx context.Context, rt *runner.Runtime, dir string, o OpenOptions) (*Model, error) {
	man, err := clip.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if got := tokenizer.VocabSHA256(); man.Tokenizer.VocabSHA256 != "" && man.Tokenizer.VocabSHA256 != got {
		return nil, fmt.Errorf("bench: %s: built with tokenizer vocabulary %s, this build has %s", dir, man.Tokenizer.VocabSHA256, got)
	}
	if man.Files["image"] == "" {
		return nil, fmt.Errorf("bench: %s: model.json lists no image graph", dir)
	}
	m := &Model{Runtime: rt, Dir: dir, Manifest: man, TextCache: o.TextCache}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	if !o.Lazy {
		if _, err := m.ImageTower(ctx); err != nil {
			return nil, err
		}
		if err := m.loadText(ctx); err != nil {
			return nil, err
		}
	}
	if m.TokenEmbedding, m.unmapTable, err = man.MapTokenEmbedding(dir); err != nil {
		return nil, err
	}
	if m.Tokenizer, err = tokenizer.New(); err != nil {
		return nil, err
	}
	if m.ImageHash, m.textHash, m.Hash, err = modelHashes(dir, man, o.HashMemo); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

func (m *Model) load(ctx context.Context, key string) (*runner.Session, error) {
	if m.Manifest.Files[key] == "" {
		return nil, nil
	}
	return m.Runtime.Load(ctx, m.Manifest.Path(m.Dir, key))
}

// ImageTower returns the image tower's session, loading it and the other
// image-side graph (WinCLIP's window graph) on first use.
func (m *Model) ImageTower(ctx context.Context) (*runner.Session, error) {
	imageMu.Lock()
	defer imageMu.Unlock()
	if m.Image != nil {
		return m.Image, nil
	}
	img, err := m.load(ctx, "image")
	if err != nil {
		return nil, err
	}
	win, err := m.load(ctx, "window")
	if err != nil {
		img.Close()
		return nil, err
	}
	m.Image, m.Window = img, win
	return img, nil
}

// TextTower returns the text tower's session, loading it on first use.
func (m *Model) TextTower(ctx context.Context) (*runner.Session, error) {
	if m.Manifest.Files["text"] == "" {
		return nil, fmt.Errorf("bench: %s has no text tower", m.Dir)
	}
	if err := m.loadText(ctx); err != nil {
		return nil, err
	}
	textMu.Lock()
	defer textMu.Unlock()
	return m.Text, nil
}

// GraphInputs are the inputs of one of the model's graphs ("image",
// "text", "window") as its file declares them, loaded or not.
func (m *Model) GraphInputs(key string) ([]runner.Info, error) {
	if m.Manifest.Files[key] == "" {
		return nil, fmt.Errorf("bench: %s has no %s graph", m.Dir, key)
	}
	return runner.ReadInputs(m.Manifest.Path(m.Dir, key))
}

// ImageLoaded reports whether the image tower has been loaded.
func (m *Model) ImageLoaded() bool {
	imageMu.Lock()
	defer imageMu.Unlock()
	return m.Image != nil
}

// ReleaseText closes the text tower's session if it is loaded, giving its
// memory back; the next text-tower run loads it again.
func (m *Model) ReleaseText() error {
	textMu.Lock()
	defer textMu.Unlock()
	if m.Text == nil {
		return nil
	}
	err := m.Text.Close()
	m.Text = nil
	runner.TrimHeap()
	return err
}

// loadText loads the text tower if the directory has one.
func (m *Model) loadText(ctx context.Context) error {
	textMu.Lock()
	defer textMu.Unlock()
	if m.Text != nil {
		return nil
	}
	s, err := m.load(ctx, "text")
	if err != nil {
		return err
	}
	m.Text = s
	return nil
}

// modelHashes hashes, in one pass over the files, model.json with every
// file of the image-side graphs (image: the feature-cache key, so that a
// rebuilt model never reads stale entries), with the text graph's files
// (text: the text-cache key), and with every file the directory lists
// (all). A graph's external data counts as its file.
//
// With memo set, the three hashes are remembered there, keyed by the
// files' identities on disk (internal/fileid), and read back while no file
// has been written since: a large model is read once, not on every run
// (docs/README.md#model-hash-memo).
func modelHashes(dir string, man *clip.Manifest, memo string) (image, text, all string, err error) {
	graphFiles := func(keys ...string) []string {
		files := []string{clip.ManifestFile}
		for _, key := range keys {
			if f := man.Files[key]; f != "" {
				files = append(files, f)
				if _, err := os.Stat(filepath.Join(dir, f+".data")); err == nil {
					files = append(files, f+".data")
				}
			}
		}
		return files
	}
	keys := make([]string, 0, len(man.Files))
	for k := range man.Files {
		keys = append(keys, k)
	}
	sets := [][]string{graphFiles("image", "window"), graphFiles("text"), graphFiles(keys...)}
	files := slices.Clone(sets[2])
	sort.Strings(files)
	files = slices.Compact(files)

	var key string
	if memo != "" {
		if key, err = identityKey(dir, files); err != nil {
			return "", "", "", err
		}
		if h, ok := readHashMemo(memo, key); ok {
			return h.Image, h.Text, h.All, nil
		}
	}
	hs := []hash.Hash{sha256.New(), sha256.New(), sha256.New()}
	for _, f := range files {
		var ws []io.Writer
		for i, set := range sets {
			if slices.Contains(set, f) {
				ws = append(ws, hs[i])
			}
		}
		w := io.MultiWriter(ws...)
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			return "", "", "", fmt.Errorf("bench: %w", err)
		}
		io.WriteString(w, f+"\n")
		_, err = io.Copy(w, fh)
		fh.Close()
		if err != nil {
			return "", "", "", fmt.Errorf("bench: %s: %w", f, err)
		}
	}
	sum := func(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
	image, text, all = sum(hs[0]), sum(hs[1]), sum(hs[2])
	if key != "" {
		// Only identities that still hold after the read vouch for it.
		if after, err := identityKey(dir, files); err == nil && after == key {
			writeHashMemo(memo, key, modelHashMemo{Image: image, Text: text, All: all})
		}
	}
	return image, text, all, nil
}

// Close releases the sessions.
func (m *Model) Close() error {
	imageMu.Lock()
	defer imageMu.Unlock()
	textMu.Lock()
	defer textMu.Unlock()
	var errs []error
	for _, s := range []*runner.Session{m.Image, m.Text, m.Window} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if m.unmapTable != nil {
		m.TokenEmbedding = clip.Tensor{}
		m.unmapTable()
		m.unmapTable = nil
	}
	return errors.Join(errs...)
}
