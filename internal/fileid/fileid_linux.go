package fileid

import (
	"fmt"
	"os"
	"syscall"
)

// Of returns the identity of the file at path (following symbolic links).
// ok is false where the system does not report change times.
func Of(path string) (id ID, ok bool, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return ID{}, false, err
	}
	st, isStat := fi.Sys().(*syscall.Stat_t)
	if !isStat {
		return ID{}, false, fmt.Errorf("fileid: %s: no stat data", path)
	}
	return ID{
		Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}, true, nil
}
