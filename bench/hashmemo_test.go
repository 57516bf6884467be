package bench_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// TestHashMemo opens a model three ways: without a memo, with one (which
// remembers the hashes), and with it again (which must give the same
// hashes without reading the files). A memo whose hashes are altered
// shows that the memo is what answers; a rewritten file (same size,
// modification time set back) must be read again.
func TestHashMemo(t *testing.T) {
	ctx := context.Background()
	dir, man, rt := tinyModel(t)
	memo := bench.HashMemoDir(t.TempDir())
	open := func(memo string) *bench.Model {
		t.Helper()
		m, err := bench.OpenModelWith(ctx, rt, dir, bench.OpenOptions{Lazy: true, HashMemo: memo})
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		return m
	}
	memos := func() []string {
		got, _ := filepath.Glob(filepath.Join(memo, "*.json"))
		return got
	}
	plain := open("")
	// Files written within the clock tick cannot vouch for their content.
	restore := bench.SetHashMemoTick(time.Hour)
	if open(memo); len(memos()) != 0 {
		t.Fatalf("a memo of files written within the tick: %v", memos())
	}
	restore()
	defer bench.SetHashMemoTick(0)()
	if m := open(memo); m.Hash != plain.Hash || m.ImageHash != plain.ImageHash {
		t.Fatalf("hashes with a memo %s/%s, without %s/%s", m.Hash, m.ImageHash, plain.Hash, plain.ImageHash)
	}
	files := memos()
	if len(files) != 1 {
		t.Fatalf("memos %v, want one", files)
	}
	var h map[string]string
	b, err := os.ReadFile(files[0])
	if err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("memo %s: %v", files[0], err)
	}
	if h["all"] != plain.Hash || h["image"] != plain.ImageHash {
		t.Fatalf("memo holds %v, want all %s and image %s", h, plain.Hash, plain.ImageHash)
	}
	altered := "0000000000000000000000000000000000000000000000000000000000000000"
	h["all"] = altered
	b, _ = json.Marshal(h)
	if err := os.WriteFile(files[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	if m := open(memo); m.Hash != altered {
		t.Fatalf("the memo was not read: hash %s", m.Hash)
	}

	// Rewrite the image graph's weights in place, keeping size and
	// modification time: the change time moves, so the files are read.
	data := filepath.Join(dir, man.Files["image"]+".data")
	if _, err := os.Stat(data); err != nil {
		data = filepath.Join(dir, man.Files["image"])
	}
	st, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	w[len(w)-1] ^= 1
	if err := os.WriteFile(data, w, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(data, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	m := open(memo)
	if m.Hash == altered || m.Hash == plain.Hash || m.ImageHash == plain.ImageHash {
		t.Errorf("after a rewrite: hash %s, image hash %s (before %s, %s)", m.Hash, m.ImageHash, plain.Hash, plain.ImageHash)
	}
	if fresh := open(""); fresh.Hash != m.Hash || fresh.ImageHash != m.ImageHash {
		t.Errorf("after a rewrite the memo gives %s, the files %s", m.Hash, fresh.Hash)
	}
}

// tinyModel builds the tiny DAPO model in a temporary folder and opens a
// CPU runtime, closed when the test ends.
func tinyModel(t *testing.T) (dir string, man *clip.Manifest, rt *runner.Runtime) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "model")
	man, err := clip.BuildTiny(context.Background(), dir, 1, clip.Options{Variant: clip.DAPO})
	if err != nil {
		t.Fatal(err)
	}
	rt, err = runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return dir, man, rt
}
