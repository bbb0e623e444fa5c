//go:build !unix

package readfile

import (
	"io/fs"
	"os"
)

func openNonblock(path string) (*os.File, error) { return os.Open(path) }

// owner is unknown where files have no Unix owner.
func owner(fs.FileInfo) (int, bool) { return 0, false }
