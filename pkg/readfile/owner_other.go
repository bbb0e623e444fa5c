//go:build !unix

package readfile

import "io/fs"

// owner is unknown where files have no Unix owner.
func owner(fs.FileInfo) (int, bool) { return 0, false }
