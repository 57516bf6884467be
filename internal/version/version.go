// Package version names the dapobench build: the module version and, for a
// build from a git checkout, the commit. Run manifests and resume
// fingerprints record it, so that results are traced to the code that made
// them.
package version

import "runtime/debug"

// String is the module version, followed by the first 12 digits of the
// VCS revision when the build has one; "(unknown)" without build
// information.
func String() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
