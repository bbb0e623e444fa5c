package wake

import (
	"bytes"
	"os"
	"sync"
	"unsafe"

	"github.com/livedict/livedict/pkg/store"
	"golang.org/x/sys/unix"
)

// The events that follow a commit: the file store renames a record into
// the bucket's folder or deletes it (IN_MOVED_TO, IN_DELETE; IN_CREATE for
// a new bucket folder); SQLite deletes its journal (IN_DELETE of the one
// name watched). Reads cause none of them, so a waiter's own re-checks do
// not wake it.
const (
	watchMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
		unix.IN_CREATE | unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	namedMask = unix.IN_DELETE | unix.IN_MOVED_FROM
)

type watcher struct {
	f      *os.File
	fd     int
	events chan struct{}

	mu    sync.Mutex
	wds   map[string]int   // folder -> watch descriptor
	names map[int][]string // descriptor -> the only names that count ("" = any)
}

func newWatcher() *watcher {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, wds: map[string]int{}, names: map[int][]string{}, events: make(chan struct{}, 1)}
	go w.read()
	return w
}

// read turns any batch of events into one pending wake-up. A watch that
// went away (IN_IGNORED: its folder was deleted) or whose folder moved
// (IN_MOVE_SELF) is forgotten so the next arm adds it again once the path
// is back.
func (w *watcher) read() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		wake := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if ev.Mask&unix.IN_IGNORED != 0 {
				w.forget(int(ev.Wd))
				wake = true
			} else if ev.Mask&unix.IN_MOVE_SELF != 0 {
				// The folder left its path (a dropped bucket's goes to
				// the store's trash, deleted later): the watch would
				// follow it there, so watch the path afresh.
				unix.InotifyRmWatch(w.fd, uint32(ev.Wd))
				w.forget(int(ev.Wd))
				wake = true
			} else if w.counts(int(ev.Wd), string(name), ev.Mask) {
				wake = true
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		if !wake {
			continue
		}
		select {
		case w.events <- struct{}{}:
		default: // one is already pending
		}
	}
}

func (w *watcher) add(watches []store.Watch) {
	if w == nil {
		return
	}
	for _, wt := range watches {
		if w.has(wt.Dir) {
			continue
		}
		if wd, err := unix.InotifyAddWatch(w.fd, wt.Dir, watchMask|unix.IN_ONLYDIR); err == nil {
			w.set(wt.Dir, wd, wt.Name)
		}
	}
}

// counts says whether an event on wd about name is one a watch wants.
func (w *watcher) counts(wd int, name string, mask uint32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	names, ok := w.names[wd]
	if !ok {
		return false
	}
	for _, n := range names {
		if n == "" || n == name && mask&namedMask != 0 {
			return true
		}
	}
	return false
}

func (w *watcher) has(p string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.wds[p]
	return ok
}

func (w *watcher) set(dir string, wd int, name string) {
	w.mu.Lock()
	w.wds[dir] = wd
	w.names[wd] = append(w.names[wd], name)
	w.mu.Unlock()
}

func (w *watcher) forget(wd int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, d := range w.wds {
		if d == wd {
			delete(w.wds, p)
		}
	}
	delete(w.names, wd)
}

func (w *watcher) close() error { return w.f.Close() }
