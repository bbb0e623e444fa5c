//go:build !linux

package wake

import "github.com/livedict/livedict/pkg/store"

// Without inotify a Waker only re-checks every Fallback.
type watcher struct{ events chan struct{} }

func newWatcher() *watcher           { return nil }
func (w *watcher) add([]store.Watch) {}
func (w *watcher) close() error      { return nil }
