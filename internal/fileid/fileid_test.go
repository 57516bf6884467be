package fileid

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "weights")
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, ok, err := Of(p)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip("this system reports no change times")
	}
	if b, _, _ := Of(p); b != a {
		t.Fatalf("the identity of an untouched file changed: %+v, then %+v", a, b)
	}
	if a.Size != 3 {
		t.Errorf("size %d, want 3", a.Size)
	}
	// Same size, modification time set back: the change time still moves.
	time.Sleep(20 * time.Millisecond)
	if err := os.WriteFile(p, []byte("xyz"), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(0, a.Mtime)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	b, _, err := Of(p)
	if err != nil {
		t.Fatal(err)
	}
	if b.Mtime != a.Mtime {
		t.Fatalf("Chtimes did not set the modification time back")
	}
	if b == a {
		t.Errorf("a rewrite with the modification time set back kept the identity %+v", a)
	}
	if !b.ChangedWithin(time.Now().UnixNano(), 2*time.Second) {
		t.Errorf("a file changed just now did not change within 2 s")
	}
	if b.ChangedWithin(time.Now().Add(time.Minute).UnixNano(), 2*time.Second) {
		t.Errorf("a file changed a minute ago changed within 2 s")
	}
	if _, _, err := Of(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
		t.Errorf("missing file: error %v", err)
	}
}
