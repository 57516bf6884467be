// Package fileid reads a file's identity on disk: its device, inode, size,
// and modification and change times. These are the fields git's index
// trusts to tell that a file is unchanged without reading it again: the
// change time moves on every write and every metadata change, and no
// system call sets it back.
package fileid

import "time"

// ID is a file's identity. Two equal IDs taken at different times mean the
// file was not written between them (up to the file system's clock
// resolution; see ChangedWithin).
type ID struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // nanoseconds since the Unix epoch
}

// ChangedWithin reports whether the file changed less than d before now
// (nanoseconds since the Unix epoch). A write in the same clock tick as an
// earlier one can leave the ID unchanged, so an ID taken within a tick of
// a change must not vouch for the file's content later.
func (id ID) ChangedWithin(now int64, d time.Duration) bool {
	return now-id.Mtime < int64(d) || now-id.Ctime < int64(d)
}
