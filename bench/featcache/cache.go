// Package featcache stores image-tower outputs on disk, keyed by model,
// preprocessing and image content, so that scoring a new prompt variant
// does not run the image encoder again (docs/README.md#feature-cache).
//
// An entry is a set of named float32 tensors (image_embed [768],
// patch_24 [1370, 768], …) in one file whose header repeats the full key
// and whose header and payload carry CRC-32C checksums. Entries are written
// to a temporary file and renamed into place, so readers, other goroutines
// and other processes see either no entry or a complete one; a file damaged
// anyway (a crash before the data reached the disk, a bad sector, a copy
// gone wrong) fails its checksum and Get reports it as corrupt, never as
// data. The caller then recomputes the features and Puts them again, which
// replaces the damaged file. Put does not fsync: entries can always be
// recomputed, and after a crash the checksums turn a torn file into a
// recomputation instead of wrong features.
//
// Put streams tensors to disk in 256 KiB chunks, with no second copy of the
// entry; Get allocates one float32 slice that all returned tensors share.
package featcache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrMiss is returned by Get when the cache holds no entry for the key.
var ErrMiss = errors.New("featcache: miss")

// ErrCorrupt is wrapped by the *CorruptError that Get returns when the
// entry file exists but cannot be trusted.
var ErrCorrupt = errors.New("featcache: corrupt entry")

// CorruptError describes an entry file that failed validation. It matches
// ErrCorrupt with errors.Is.
type CorruptError struct {
	Path   string // the entry file
	Reason error  // what failed: magic, checksum, size, key, …
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("featcache: corrupt entry %s: %v", e.Path, e.Reason)
}

// Unwrap lets errors.Is find both ErrCorrupt and the reason.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Reason} }

// Key identifies one image-tower output. The cache treats the fields as
// opaque strings; they must be non-empty and at most 65535 bytes.
type Key struct {
	// Model identifies the image tower and everything baked into it, e.g.
	// the sha256 of image.onnx and of any visual prompt tensors.
	Model string
	// Preprocess is a canonical description of the preprocessing settings
	// (size, resampling, mean and std, decoder).
	Preprocess string
	// Content identifies the image, normally HashFile of the image file.
	Content string
}

// digestDomain separates Key digests from any other use of sha256.
const digestDomain = "dapobench/featcache/key/v1\n"

// Digest is a stable hex name for k: sha256 over a domain string and each
// field as a u32 little-endian length and its bytes, so that no two keys
// share a digest by concatenation.
func (k Key) Digest() string {
	h := sha256.New()
	io.WriteString(h, digestDomain)
	var n [4]byte
	for _, s := range []string{k.Model, k.Preprocess, k.Content} {
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// check reports whether k can be stored.
func (k Key) check() error {
	for _, f := range []struct{ name, v string }{{"model", k.Model}, {"preprocess", k.Preprocess}, {"content", k.Content}} {
		if f.v == "" || len(f.v) > maxString {
			return fmt.Errorf("key %s field is empty or longer than %d bytes", f.name, maxString)
		}
	}
	return nil
}

// Tensor is one named float32 array in C order.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Entry is the set of tensors stored under one key, in order.
type Entry struct {
	Tensors []Tensor
}

// Tensor returns the tensor called name.
func (e Entry) Tensor(name string) (Tensor, bool) {
	for _, t := range e.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Stats counts what a Cache has done since Open.
type Stats struct {
	Hits, Misses, Corrupt, Puts int64
	BytesRead, BytesWritten     int64
}

// Cache is a directory of entries. It is safe for concurrent use by many
// goroutines, and several processes may share one directory.
type Cache struct {
	dir  string
	bufs sync.Pool // *[]byte of chunkBytes, the encode/decode scratch

	hits, misses, corrupt, puts atomic.Int64
	bytesRead, bytesWritten     atomic.Int64
}

// Open returns the cache in dir, creating the directory if needed.
func Open(dir string) (*Cache, error) {
	if dir == "" {
		return nil, errors.New("featcache: open: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("featcache: open: %w", err)
	}
	return &Cache{dir: dir}, nil
}

// DefaultDir is the per-user feature cache, under the system's user cache
// folder so that runs share features across run directories; "" when the
// system has none.
func DefaultDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "dapobench", "features")
	}
	return ""
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Path is the file that holds k's entry: <dir>/<digest[:2]>/<digest>.feat.
// The two-character folders keep directories small for large datasets.
func (c *Cache) Path(k Key) string {
	d := k.Digest()
	return filepath.Join(c.dir, d[:2], d+".feat")
}

func (c *Cache) buf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, chunkBytes)
	return &b
}

// Stats returns the counters so far.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Corrupt: c.corrupt.Load(), Puts: c.puts.Load(),
		BytesRead: c.bytesRead.Load(), BytesWritten: c.bytesWritten.Load(),
	}
}

// Get returns the entry stored for k. It returns an error matching ErrMiss
// when there is none, and a *CorruptError (matching ErrCorrupt) when the
// file is truncated, fails a checksum, or holds another key; the caller
// recomputes and Puts in both cases. Other errors (permissions, I/O) are
// returned as they are. The entry's tensors share one fresh allocation.
func (c *Cache) Get(ctx context.Context, k Key) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("featcache: get: %w", err)
	}
	if err := k.check(); err != nil {
		return Entry{}, fmt.Errorf("featcache: get: %w", err)
	}
	path := c.Path(k)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		c.misses.Add(1)
		return Entry{}, fmt.Errorf("%w: %s", ErrMiss, path)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("featcache: get: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Entry{}, fmt.Errorf("featcache: get: %w", err)
	}
	if !st.Mode().IsRegular() {
		// A folder or device where an entry belongs holds no features;
		// Put replaces it.
		c.corrupt.Add(1)
		return Entry{}, &CorruptError{Path: path, Reason: formatErr("not a regular file (%s)", st.Mode().Type())}
	}
	buf := c.buf()
	got, e, err := decode(f, st.Size(), *buf)
	c.bufs.Put(buf)
	if err == nil && got != k {
		err = formatErr("the file holds key %+v", got)
	}
	if err != nil {
		if errors.Is(err, errFormat) {
			c.corrupt.Add(1)
			return Entry{}, &CorruptError{Path: path, Reason: err}
		}
		return Entry{}, fmt.Errorf("featcache: get %s: %w", path, err)
	}
	c.hits.Add(1)
	c.bytesRead.Add(st.Size())
	return e, nil
}

// Put stores e under k, replacing any entry there. It writes a temporary
// file in the entry's folder, streaming the tensors in chunks, and renames
// it into place; on any error, cancellation included, the temporary file is
// removed and the previous entry, if any, is left as it was.
func (c *Cache) Put(ctx context.Context, k Key, e Entry) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("featcache: put: %w", err)
	}
	if err := k.check(); err != nil {
		return fmt.Errorf("featcache: put: %w", err)
	}
	if _, err := e.payloadSize(); err != nil {
		return fmt.Errorf("featcache: put: %w", err)
	}
	path := c.Path(k)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("featcache: put: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+tmpMarker+"*")
	if err != nil {
		return fmt.Errorf("featcache: put: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	buf := c.buf()
	n, err := encode(tmp, k, e, *buf, ctx.Err)
	c.bufs.Put(buf)
	if err != nil {
		return fmt.Errorf("featcache: put %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("featcache: put %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("featcache: put %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		// Get reported this folder as a corrupt entry; a rename cannot
		// replace a folder. It lies in the cache's own tree and holds no
		// entry, so it goes.
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("featcache: put %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("featcache: put %s: %w", path, err)
	}
	c.puts.Add(1)
	c.bytesWritten.Add(n)
	return nil
}

// tmpMarker is in the name of every temporary file Put creates.
const tmpMarker = ".tmp-"

// RemoveStale deletes temporary files older than age, which only a process
// killed in the middle of Put leaves behind; a run can call it at start.
// Give an age well above the time one Put takes, so that files other
// processes are writing right now are left alone. It returns the number of
// files removed.
func (c *Cache) RemoveStale(age time.Duration) (int, error) {
	shards, err := os.ReadDir(c.dir)
	if err != nil {
		return 0, fmt.Errorf("featcache: remove stale: %w", err)
	}
	cutoff := time.Now().Add(-age)
	removed := 0
	for _, s := range shards {
		if !s.IsDir() || len(s.Name()) != 2 {
			continue
		}
		dir := filepath.Join(c.dir, s.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return removed, fmt.Errorf("featcache: remove stale: %w", err)
		}
		for _, f := range files {
			if !strings.HasPrefix(f.Name(), ".") || !strings.Contains(f.Name(), tmpMarker) {
				continue
			}
			info, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // renamed or removed meanwhile
			}
			if err != nil {
				return removed, fmt.Errorf("featcache: remove stale: %w", err)
			}
			if info.ModTime().After(cutoff) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, f.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("featcache: remove stale: %w", err)
			}
			removed++
		}
	}
	return removed, nil
}

// HashFile returns the hex sha256 of a file's bytes, for Key.Content.
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("featcache: hash: %w", err)
	}
	defer f.Close()
	s, err := HashReader(f)
	if err != nil {
		return "", fmt.Errorf("featcache: hash %s: %w", path, err)
	}
	return s, nil
}

// HashReader returns the hex sha256 of everything r yields.
func HashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
