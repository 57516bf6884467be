package featcache

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// golden is testdata/golden_v1.json, written with golden_v1.feat by
// testdata/golden_entry.py from the format description, not by this code.
type golden struct {
	Key struct {
		Model, Preprocess, Content string
	}
	Digest  string
	Tensors []struct {
		Name   string
		Shape  []int
		Values []float64
	}
	HeaderCRC32C  string `json:"header_crc32c"`
	PayloadCRC32C string `json:"payload_crc32c"`
	FileSHA256    string `json:"file_sha256"`
}

func loadGolden(t testing.TB) (golden, Key, Entry, []byte) {
	t.Helper()
	b, err := os.ReadFile("testdata/golden_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	k := Key{Model: g.Key.Model, Preprocess: g.Key.Preprocess, Content: g.Key.Content}
	var e Entry
	for _, gt := range g.Tensors {
		tt := Tensor{Name: gt.Name, Shape: gt.Shape, Data: make([]float32, len(gt.Values))}
		for i, v := range gt.Values {
			tt.Data[i] = float32(v)
		}
		e.Tensors = append(e.Tensors, tt)
	}
	file, err := os.ReadFile("testdata/golden_v1.feat")
	if err != nil {
		t.Fatal(err)
	}
	return g, k, e, file
}

// sameEntry reports whether a and b hold the same names, shapes and bits.
func sameEntry(a, b Entry) error {
	if len(a.Tensors) != len(b.Tensors) {
		return fmt.Errorf("%d tensors, want %d", len(a.Tensors), len(b.Tensors))
	}
	for i, ta := range a.Tensors {
		tb := b.Tensors[i]
		if ta.Name != tb.Name || !slices.Equal(ta.Shape, tb.Shape) || len(ta.Data) != len(tb.Data) {
			return fmt.Errorf("tensor %d is %q %v (%d values), want %q %v (%d values)",
				i, ta.Name, ta.Shape, len(ta.Data), tb.Name, tb.Shape, len(tb.Data))
		}
		for j := range ta.Data {
			if math.Float32bits(ta.Data[j]) != math.Float32bits(tb.Data[j]) {
				return fmt.Errorf("tensor %q value %d is %v, want %v", ta.Name, j, ta.Data[j], tb.Data[j])
			}
		}
	}
	return nil
}

func TestGolden(t *testing.T) {
	g, k, e, file := loadGolden(t)
	if d := k.Digest(); d != g.Digest {
		t.Errorf("digest %s, Python's hashlib gives %s", d, g.Digest)
	}
	var buf bytes.Buffer
	n, err := encode(&buf, k, e, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(file)) || !bytes.Equal(buf.Bytes(), file) {
		t.Errorf("encoded %d bytes differ from golden_v1.feat (%d bytes)", n, len(file))
	}
	hsize := int(binary.LittleEndian.Uint32(file[12:]))
	if got := fmt.Sprintf("%08x", crc32.Checksum(file[:prefixSize+hsize], castagnoli)); got != g.HeaderCRC32C {
		t.Errorf("header CRC-32C %s, Python's gives %s", got, g.HeaderCRC32C)
	}
	gotK, gotE, err := decode(bytes.NewReader(file), int64(len(file)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if gotK != k {
		t.Errorf("key %+v, want %+v", gotK, k)
	}
	if err := sameEntry(gotE, e); err != nil {
		t.Error(err)
	}
	h, err := HashFile("testdata/golden_v1.feat")
	if err != nil {
		t.Fatal(err)
	}
	if h != g.FileSHA256 {
		t.Errorf("HashFile %s, hashlib %s", h, g.FileSHA256)
	}
}

// testEntry is a small entry whose values depend on seed.
func testEntry(seed int) Entry {
	e := Entry{Tensors: []Tensor{
		{Name: "image_embed", Shape: []int{8}, Data: make([]float32, 8)},
		{Name: "patch_24", Shape: []int{5, 8}, Data: make([]float32, 40)},
	}}
	for _, t := range e.Tensors {
		for i := range t.Data {
			t.Data[i] = float32(seed) + float32(i)/16
		}
	}
	return e
}

func testKey(i int) Key {
	return Key{Model: "model-a", Preprocess: "squash 518", Content: "image-" + strconv.Itoa(i)}
}

func TestRoundTripAndStats(t *testing.T) {
	ctx := context.Background()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := testKey(1)
	if _, err := c.Get(ctx, k); !errors.Is(err, ErrMiss) {
		t.Fatalf("empty cache: %v, want ErrMiss", err)
	}
	e := testEntry(1)
	if err := c.Put(ctx, k, e); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameEntry(got, e); err != nil {
		t.Fatal(err)
	}
	if p, ok := got.Tensor("patch_24"); !ok || !slices.Equal(p.Shape, []int{5, 8}) {
		t.Errorf("Tensor(patch_24) = %v, %v", p.Shape, ok)
	}
	if _, ok := got.Tensor("patch_6"); ok {
		t.Error("Tensor(patch_6) found in an entry without it")
	}
	// Another key of the same image (another model) is a separate entry.
	other := k
	other.Model = "model-b"
	if _, err := c.Get(ctx, other); !errors.Is(err, ErrMiss) {
		t.Errorf("other model: %v, want ErrMiss", err)
	}
	// Put replaces.
	e2 := testEntry(2)
	if err := c.Put(ctx, k, e2); err != nil {
		t.Fatal(err)
	}
	got, err = c.Get(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameEntry(got, e2); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(c.Path(k))
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	want := Stats{Hits: 2, Misses: 2, Puts: 2, BytesRead: 2 * size, BytesWritten: 2 * size}
	if s := c.Stats(); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("entry mode %v, want 0644", st.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(c.Path(k)), ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestDigestStable(t *testing.T) {
	k := testKey(7)
	if k.Digest() != testKey(7).Digest() {
		t.Fatal("digest not deterministic")
	}
	// Field boundaries matter: moving bytes between fields changes the digest.
	a := Key{Model: "ab", Preprocess: "c", Content: "d"}
	b := Key{Model: "a", Preprocess: "bc", Content: "d"}
	if a.Digest() == b.Digest() {
		t.Error("keys that differ only in field boundaries share a digest")
	}
	if len(k.Digest()) != 64 {
		t.Errorf("digest %q is not 64 hex digits", k.Digest())
	}
}

// corruptions damages a valid entry file in every way the format must catch.
func corruptions(t *testing.T, file []byte) map[string][]byte {
	hsize := int(binary.LittleEndian.Uint32(file[12:]))
	payloadAt := prefixSize + hsize + 4
	flip := func(i int) []byte {
		b := slices.Clone(file)
		b[i] ^= 0x20
		return b
	}
	// A future version with a header CRC that matches: rejected by version,
	// not by checksum.
	future := slices.Clone(file)
	binary.LittleEndian.PutUint16(future[8:], 2)
	binary.LittleEndian.PutUint32(future[payloadAt-4:], crc32.Checksum(future[:payloadAt-4], castagnoli))
	return map[string][]byte{
		"empty":                 {},
		"magic only":            file[:8],
		"truncated in header":   file[:prefixSize+hsize/2],
		"truncated in payload":  file[:payloadAt+5],
		"no trailer":            file[:len(file)-trailerSize],
		"last byte missing":     file[:len(file)-1],
		"extra byte":            append(slices.Clone(file), 0),
		"flipped magic":         flip(1),
		"flipped header size":   flip(12),
		"flipped key byte":      flip(prefixSize + 3),
		"flipped header CRC":    flip(payloadAt - 2),
		"flipped payload byte":  flip(payloadAt + 7),
		"flipped payload CRC":   flip(len(file) - trailerSize + 1),
		"flipped end marker":    flip(len(file) - 1),
		"future version":        future,
		"all zeros, same size":  make([]byte, len(file)),
		"text file, same magic": append([]byte(magic), []byte("not an entry at all, really")...),
	}
}

func TestCorruptEntries(t *testing.T) {
	ctx := context.Background()
	_, gk, ge, file := loadGolden(t)
	for name, bad := range corruptions(t, file) {
		t.Run(name, func(t *testing.T) {
			c, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(c.Path(gk)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(c.Path(gk), bad, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = c.Get(ctx, gk)
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Path != c.Path(gk) {
				t.Fatalf("Get: %v, want a *CorruptError for %s", err, c.Path(gk))
			}
			if s := c.Stats(); s.Corrupt != 1 || s.Hits != 0 {
				t.Errorf("stats %+v, want one corrupt and no hit", s)
			}
			// The caller recomputes and puts; the entry is good again.
			if err := c.Put(ctx, gk, ge); err != nil {
				t.Fatal(err)
			}
			got, err := c.Get(ctx, gk)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameEntry(got, ge); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestDirectoryEntry: a folder where an entry belongs (an interrupted copy,
// a careless mkdir) is a corrupt entry, never an error that stops the run;
// Put replaces it with the entry.
func TestDirectoryEntry(t *testing.T) {
	ctx := context.Background()
	_, gk, ge, _ := loadGolden(t)
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(c.Path(gk), "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, gk)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Get of a folder: %v, want a corrupt entry", err)
	}
	if err := c.Put(ctx, gk, ge); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, gk)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameEntry(got, ge); err != nil {
		t.Error(err)
	}
}

// TestWrongKey: a valid entry under another key's name (a copied or renamed
// file, or a digest collision) is corrupt, not a hit.
func TestWrongKey(t *testing.T) {
	ctx := context.Background()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := testKey(1), testKey(2)
	if err := c.Put(ctx, a, testEntry(1)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(c.Path(b)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(c.Path(a), c.Path(b)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get: %v, want ErrCorrupt", err)
	}
}

func TestPutInvalid(t *testing.T) {
	ctx := context.Background()
	good := testEntry(1)
	tests := []struct {
		name string
		key  Key
		e    Entry
	}{
		{"empty model", Key{Preprocess: "p", Content: "c"}, good},
		{"empty content", Key{Model: "m", Preprocess: "p"}, good},
		{"long field", Key{Model: string(make([]byte, 1<<16)), Preprocess: "p", Content: "c"}, good},
		{"no tensors", testKey(1), Entry{}},
		{"shape mismatch", testKey(1), Entry{Tensors: []Tensor{{Name: "x", Shape: []int{2, 3}, Data: make([]float32, 5)}}}},
		{"negative dimension", testKey(1), Entry{Tensors: []Tensor{{Name: "x", Shape: []int{-1}, Data: nil}}}},
		{"empty name", testKey(1), Entry{Tensors: []Tensor{{Shape: []int{1}, Data: []float32{1}}}}},
		{"duplicate name", testKey(1), Entry{Tensors: []Tensor{
			{Name: "x", Shape: []int{1}, Data: []float32{1}}, {Name: "x", Shape: []int{1}, Data: []float32{2}}}}},
		{"rank 9", testKey(1), Entry{Tensors: []Tensor{{Name: "x", Shape: []int{1, 1, 1, 1, 1, 1, 1, 1, 1}, Data: []float32{1}}}}},
		{"overflowing shape", testKey(1), Entry{Tensors: []Tensor{{Name: "x", Shape: []int{1 << 40, 1 << 40}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Put(ctx, tt.key, tt.e); err == nil {
				t.Fatal("no error")
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
			if len(files) != 0 {
				t.Errorf("files written: %v", files)
			}
			if _, err := c.Get(ctx, tt.key); err == nil {
				t.Error("Get found an entry")
			}
		})
	}
	if _, err := Open(""); err == nil {
		t.Error("Open(\"\") gave no error")
	}
}

// cancelAfter is a context whose Err turns to Canceled after n calls, so
// that a Put is stopped halfway through its payload.
type cancelAfter struct {
	context.Context
	n atomic.Int64
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestPutCancelled(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := testKey(1)
	old := testEntry(1)
	if err := c.Put(context.Background(), k, old); err != nil {
		t.Fatal(err)
	}
	big := Entry{Tensors: []Tensor{{Name: "patch_24", Shape: []int{1370, 1024}, Data: make([]float32, 1370*1024)}}}
	ctx := &cancelAfter{Context: context.Background()}
	ctx.n.Store(3) // the check before writing, then two chunks
	if err := c.Put(ctx, k, big); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put: %v, want context.Canceled", err)
	}
	got, err := c.Get(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameEntry(got, old); err != nil {
		t.Errorf("the previous entry changed: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(c.Path(k)), ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(done, k); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context: %v", err)
	}
}

// TestConcurrent has goroutines put and get a few shared keys at once; under
// -race this also checks the Cache's own state. Every Get must be a miss
// or one of the complete entries ever written for that key.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds, keys = 8, 30, 3
	var wg sync.WaitGroup
	var hits atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				i := (w + r) % keys
				k := testKey(i)
				// Writers of key i write seed i or i+100: both valid.
				seed := i + 100*(r%2)
				if err := c.Put(ctx, k, testEntry(seed)); err != nil {
					t.Error(err)
					return
				}
				got, err := c.Get(ctx, testKey((i+1)%keys))
				if errors.Is(err, ErrMiss) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				j := (i + 1) % keys
				if sameEntry(got, testEntry(j)) != nil && sameEntry(got, testEntry(j+100)) != nil {
					t.Errorf("key %d: an entry that was never written", j)
				}
				hits.Add(1)
			}
		})
	}
	wg.Wait()
	s := c.Stats()
	if s.Puts != workers*rounds || s.Hits != hits.Load() || s.Corrupt != 0 {
		t.Errorf("stats %+v after %d puts and %d hits", s, workers*rounds, hits.Load())
	}
}

// helperEnv names the cache directory for TestTwoProcesses' children.
const helperEnv = "FEATCACHE_HELPER_DIR"

// TestHelperProcess is the child of TestTwoProcesses: it puts the same key
// many times, alternating two valid entries.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("only runs as TestTwoProcesses' child")
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for r := range 25 {
		if err := c.Put(context.Background(), testKey(0), bigEntry(r%2)); err != nil {
			t.Fatal(err)
		}
	}
}

// bigEntry is large enough (600 kB) that a write takes several chunks.
func bigEntry(seed int) Entry {
	e := Entry{Tensors: []Tensor{{Name: "patch_24", Shape: []int{150, 1024}, Data: make([]float32, 150*1024)}}}
	for i := range e.Tensors[0].Data {
		e.Tensors[0].Data[i] = float32(seed*7 + i%13)
	}
	return e
}

// TestTwoProcesses runs two processes that write the same key at once while
// this one reads it: every read is a miss or one of the two entries.
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("child output:\n%s", out.String())
			}
		})
		cmds = append(cmds, cmd)
	}
	done := make(chan error, len(cmds))
	for _, cmd := range cmds {
		go func() { done <- cmd.Wait() }()
	}
	want := []Entry{bigEntry(0), bigEntry(1)}
	var reads, hits int
	deadline := time.After(60 * time.Second)
	for finished := 0; finished < len(cmds); {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("child: %v", err)
			}
			finished++
		case <-deadline:
			t.Fatal("children did not finish")
		default:
		}
		got, err := c.Get(context.Background(), testKey(0))
		reads++
		if errors.Is(err, ErrMiss) {
			continue
		}
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		if sameEntry(got, want[0]) != nil && sameEntry(got, want[1]) != nil {
			t.Fatalf("read %d: an entry that neither process wrote", reads)
		}
		hits++
	}
	t.Logf("%d reads during the writes, %d hits", reads, hits)
	if _, err := c.Get(context.Background(), testKey(0)); err != nil {
		t.Errorf("after the writers: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(c.Path(testKey(0))), ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// FuzzDecode feeds arbitrary bytes to the entry decoder: it must not panic
// or allocate beyond the input, and whatever it accepts must re-encode to
// the same bytes (the format has one encoding per entry).
func FuzzDecode(f *testing.F) {
	_, _, _, file := loadGolden(f)
	f.Add(file)
	f.Add(file[:len(file)/2])
	var buf bytes.Buffer
	if _, err := encode(&buf, testKey(3), testEntry(3), nil, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, e, err := decode(bytes.NewReader(data), int64(len(data)), make([]byte, 64))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if _, err := encode(&out, k, e, nil, nil); err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("re-encoding gives %d different bytes", out.Len())
		}
	})
}

func TestRemoveStale(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := testKey(1)
	if err := c.Put(context.Background(), k, testEntry(1)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(c.Path(k))
	old := filepath.Join(dir, "."+filepath.Base(c.Path(k))+tmpMarker+"123")
	fresh := filepath.Join(dir, "."+filepath.Base(c.Path(k))+tmpMarker+"456")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("half an entry"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	n, err := c.RemoveStale(10 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("removed %d files, want 1", n)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("stale file: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file: %v", err)
	}
	if _, err := c.Get(context.Background(), k); err != nil {
		t.Errorf("entry after RemoveStale: %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", filepath.Join(t.TempDir(), "xdg"))
	t.Setenv("HOME", t.TempDir())
	user, err := os.UserCacheDir()
	want := filepath.Join(user, "dapobench", "features")
	if err != nil {
		want = ""
	}
	if d := DefaultDir(); d != want {
		t.Errorf("DefaultDir() = %q, want %q", d, want)
	}
}
