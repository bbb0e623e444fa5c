package wake

import (
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The events that follow a commit: SQLite writes pages into the database
// file (IN_MODIFY, IN_CLOSE_WRITE); the file store renames a record into
// the bucket's folder or deletes it (IN_MOVED_TO, IN_DELETE, IN_CREATE for
// a new bucket folder). Reads cause none of them, so a waiter's own
// re-checks do not wake it.
const watchMask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
	unix.IN_CREATE | unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ATTRIB

type watcher struct {
	f      *os.File
	fd     int
	events chan struct{}

	mu  sync.Mutex
	wds map[string]int // path -> watch descriptor
}

func newWatcher() *watcher {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, wds: map[string]int{}, events: make(chan struct{}, 1)}
	go w.read()
	return w
}

// read turns any batch of events into one pending wake-up. A watch that
// went away (IN_IGNORED: its folder was dropped) is forgotten so the next
// arm adds it again once the path is back.
func (w *watcher) read() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&unix.IN_IGNORED != 0 {
				w.forget(int(ev.Wd))
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		select {
		case w.events <- struct{}{}:
		default: // one is already pending
		}
	}
}

func (w *watcher) add(paths []string) {
	if w == nil {
		return
	}
	for _, p := range paths {
		if w.has(p) {
			continue
		}
		wd, err := unix.InotifyAddWatch(w.fd, p, watchMask)
		if err == nil {
			w.set(p, wd)
		}
	}
}

func (w *watcher) has(p string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.wds[p]
	return ok
}

func (w *watcher) set(p string, wd int) {
	w.mu.Lock()
	w.wds[p] = wd
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
}

func (w *watcher) close() error { return w.f.Close() }
