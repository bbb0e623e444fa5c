//go:build !unix

package store

import "errors"

// openFile reports that the file store needs flock(2), which only Unix
// systems provide.
func openFile(dir string, opts Options) (Store, error) {
	return nil, errors.New("the file store needs a Unix system")
}
