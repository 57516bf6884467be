// Package fileid reads a file's identity on disk: its device, inode, size,
// and modification and change times. These are the fields git's index
// trusts to tell that a file is unchanged without reading it again: the
// change time moves on every write and every metadata change, and no
// system call sets it back.
package fileid

// ID is a file's identity. Two equal IDs taken at different times mean the
// file was not written between them (up to the file system's clock
// resolution; see Racy).
type ID struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // nanoseconds since the Unix epoch
}

// Racy reports whether the file changed so close to now (nanoseconds since
// the Unix epoch) that a write in the same clock tick could leave its ID
// unchanged: such an ID must not vouch for the file's content later.
func (id ID) Racy(now int64) bool {
	const tick = 2e9 // coarser than any file system's timestamp resolution
	return now-id.Mtime < tick || now-id.Ctime < tick
}
