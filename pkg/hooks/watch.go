package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/livedict/livedict/pkg/store"
	"golang.org/x/sys/unix"
)

// Watchers ('livedict watch') hear events as they happen, with nothing
// recorded: each holds WatchLock shared and binds its own socket file,
// watch-PID.packed.sock, in the state dir. A writer tests the lock (one fcntl,
// or one failed open when nobody ever watched) and only when someone
// holds it keeps its events in memory and, after the commit, sends each as
// one datagram (the hook event JSON, hook_id 0) to every watcher's socket.
// A watcher that is not running misses what happens meanwhile, as a Redis
// pub/sub subscriber does.
const (
	// WatchLock is held, shared, by every running watcher: an open file
	// description lock where the kernel has them, so that the watcher's
	// own process testing it (Holder) neither misses nor drops it.
	WatchLock = "watch.lock"
	// watchPattern matches the watchers' socket files.
	watchPattern = "watch-*.sock"
	// packedSuffix ends the socket name of a watcher that splits a
	// datagram into event lines (watch-PID.packed.sock). Watchers of
	// livedict before packing (watch-PID.sock, which the pattern above
	// also matches, so their writers reach ours) parse a datagram as one
	// event: they get one event per datagram (see publish).
	packedSuffix = ".packed.sock"
)

// watchBufSize is the largest event datagram a watcher reads: room for a
// value cut at the default max_event_value_bytes, base64-encoded, and
// more.
const watchBufSize = 1 << 20

// Watcher is a running watcher's side: its lock and socket.
type Watcher struct {
	lock *Lock
	l    *Listener
	path string
	// stop ends a subscription to a shared store's event bus.
	stop context.CancelFunc
	// C receives each event's JSON line (newline included).
	C <-chan []byte
}

// Watch starts a watcher for the store whose state dir is stateDir. The
// state dir must pass the trust rule as it must for hooks (the refusal
// wraps ErrUnsafe). The socket is bound before the lock is taken, so a
// writer that sees the lock finds the socket.
func Watch(stateDir string) (*Watcher, error) {
	path := filepath.Join(stateDir, "watch-"+strconv.Itoa(os.Getpid())+packedSuffix)
	l, err := listen(stateDir, path, watchBufSize, false)
	if err != nil {
		return nil, err
	}
	removeStaleWatchers(stateDir, path)
	lock, err := tryLock(stateDir, WatchLock, setOFDLock, unix.F_RDLCK)
	if err != nil {
		l.Close()
		os.Remove(path)
		return nil, err
	}
	return &Watcher{lock: lock, l: l, path: path, C: l.C}, nil
}

// WatchStore starts a watcher for s: on a store shared between hosts, a
// subscription to its event bus, which hears writers on every host;
// elsewhere Watch on the state dir of the store at info.
func WatchStore(s store.Store, info store.Info) (*Watcher, error) {
	if bus := sharedBus(s); bus != nil {
		ctx, stop := context.WithCancel(context.Background())
		c, err := bus.Subscribe(ctx)
		if err != nil {
			stop()
			return nil, err
		}
		return &Watcher{C: c, stop: stop}, nil
	}
	return Watch(StateDir(info))
}

// sharedBus is s's event bus when hosts share s, else nil.
func sharedBus(s store.Store) store.EventBus {
	if bus, ok := store.BusOf(s); ok && store.IsShared(s) {
		return bus
	}
	return nil
}

// Close stops watching and removes the watcher's socket file.
func (w *Watcher) Close() error {
	if w.stop != nil {
		w.stop()
		return nil
	}
	w.lock.Release()
	err := w.l.Close()
	os.Remove(w.path)
	return err
}

// watching reports whether some watcher runs for the store whose state
// dir is stateDir.
func watching(stateDir string) bool {
	pid, _ := Holder(stateDir, WatchLock)
	return pid != 0
}

// watchEvent is the JSON line a watcher gets for ev on e at now (Unix
// ms), its value cut at maxValue bytes as a hook's would be.
func watchEvent(ev Event, e store.Entry, now int64, maxValue int) []byte {
	r := &record{Event: ev, Bucket: e.Bucket, Key: []byte(e.Key), Value: e.Value, ExpiresAt: e.ExpiresAt, Time: now}
	r.cut(maxValue)
	return r.payload()
}

// watchPack is how many bytes of event lines publish puts in one
// datagram: the kernel queues at most net.unix.max_dgram_qlen (10 by
// default) datagrams on a watcher's socket, whatever its buffer, so one
// datagram per event lost all but the first few of a burst (a reap of
// thousands of keys, a bucket drop) to a writer that never blocks.
const watchPack = 64 << 10

// publish sends events (JSON lines, each ending in a newline) to every
// watcher of the store whose state dir is stateDir, without blocking,
// packed into as few datagrams as watchPack allows (a line longer than it
// goes alone); the watcher splits them again (receive). A watcher of an
// earlier livedict (a socket name without packedSuffix) gets one event
// per datagram, as its writers sent them: it would parse a packed
// datagram as one event, fail, and drop the whole commit's events.
func publish(stateDir string, events [][]byte) {
	if len(events) == 0 {
		return
	}
	var msgs [][]byte
	var cur []byte
	for _, ev := range events {
		if len(cur) > 0 && len(cur)+len(ev) > watchPack {
			msgs, cur = append(msgs, cur), nil
		}
		cur = append(cur, ev...)
	}
	msgs = append(msgs, cur)
	sendAll(stateDir, watchPattern, func(name string) [][]byte {
		if strings.HasSuffix(name, packedSuffix) {
			return msgs
		}
		return events
	})
}

// watched is what a watcher filters an event line on.
type watched struct {
	Event  string  `json:"event"`
	Bucket string  `json:"bucket"`
	Key    *string `json:"key"`
	KeyB64 []byte  `json:"key_b64"` // a key that is not UTF-8
}

// ParseWatched reads the fields a watcher filters on from an event line;
// ok is false for a line that is not an event. An event line is one JSON
// object ending in its one newline: anything else a watcher hears (on a
// shared store, any client of the server can publish on the events
// channel) would, printed as it came, run into the next event's line and
// break the output's one-event-per-line framing.
func ParseWatched(line []byte) (ev Event, bucket string, key *string, ok bool) {
	if n := len(line); n == 0 || line[n-1] != '\n' || bytes.IndexByte(line[:n-1], '\n') >= 0 {
		return 0, "", nil, false
	}
	var w watched
	if json.Unmarshal(line, &w) != nil {
		return 0, "", nil, false
	}
	ev, err := ParseEvents(w.Event)
	if err != nil || w.Event == "all" {
		return 0, "", nil, false
	}
	if w.Key == nil && w.KeyB64 != nil {
		// A key that is not UTF-8 is matched by its bytes too.
		k := string(w.KeyB64)
		w.Key = &k
	}
	return ev, w.Bucket, w.Key, true
}
