//go:build !linux

package store

// placeNewStore puts a new store, complete under the temporary name tmp,
// at real unless something is there already (fs.ErrExist).
func placeNewStore(tmp, real string) error { return linkNewStore(tmp, real) }
