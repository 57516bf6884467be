package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dapobench/dapobench/internal/atomicfile"
	"github.com/dapobench/dapobench/internal/fileid"
)

// hashMemoTick is how long after a change a file's identity is not
// trusted: coarser than any file system's timestamp resolution.
var hashMemoTick = 2 * time.Second

// modelHashMemo is what a memo file holds: modelHashes' three results.
type modelHashMemo struct {
	Image string `json:"image"`
	Text  string `json:"text"`
	All   string `json:"all"`
}

// identityKey names the model's files as they are on disk now: the
// directory's absolute path and each file's name and identity. It is ""
// when some file's identity cannot vouch for its content: the system
// reports no change times, or the file changed within the clock tick.
func identityKey(dir string, files []string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "model files v1\n%s\n", abs)
	now := time.Now().UnixNano()
	for _, f := range files {
		id, ok, err := fileid.Of(filepath.Join(dir, f))
		if err != nil {
			return "", fmt.Errorf("bench: %w", err)
		}
		if !ok || id.ChangedWithin(now, hashMemoTick) {
			return "", nil
		}
		fmt.Fprintf(h, "%s\n%d %d %d %d %d\n", f, id.Dev, id.Ino, id.Size, id.Mtime, id.Ctime)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readHashMemo returns the memo written under key; a missing or unreadable
// memo is a miss, and the files are hashed again.
func readHashMemo(dir, key string) (modelHashMemo, bool) {
	var m modelHashMemo
	b, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil || json.Unmarshal(b, &m) != nil || len(m.Image) != 64 || len(m.Text) != 64 || len(m.All) != 64 {
		return modelHashMemo{}, false
	}
	return m, true
}

// writeHashMemo remembers m under key. A memo that cannot be written costs
// the next run a read of the model, nothing else, so the error is dropped.
func writeHashMemo(dir, key string, m modelHashMemo) {
	b, err := json.Marshal(m)
	if err != nil || os.MkdirAll(dir, 0o755) != nil {
		return
	}
	_ = atomicfile.WriteFile(filepath.Join(dir, key+".json"), append(b, '\n'))
}
