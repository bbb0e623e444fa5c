package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A commit the server holds. A server in CLIENT PAUSE WRITE (a failover,
// an operator) takes every command and holds each write (a script call, a
// command queued in MULTI, EXEC) until the pause ends, however long that
// is; go-redis waits for the reply, and a `livedict set` waited as long
// as the pause lasted. guard bounds that wait by the busy timeout and
// reports only what is certain:
//
//   - Past the deadline it asks, on another connection, whether the
//     commit's connection is held (CLIENT LIST ID: flag b). One still
//     being sent or run is not, and is waited for: a large import takes
//     longer than the busy timeout, and each chunk answered restarts the
//     wait.
//   - A held one is killed in one MULTI/EXEC with the look and a read of
//     the fence: CLIENT LIST ID, CLIENT KILL ID, GET fence. A killed
//     client's held command never runs: the server drops it with the
//     client (checked on Redis 7.0, where CLIENT KILL, LIST and GET are
//     served during a write pause, and a MULTI/EXEC of no writes is too).
//     Held at the kill: nothing was written. No longer held (the pause
//     ended that moment): the fence tells, if the transaction read it
//     first; still the value the reads saw, nothing was written (a commit
//     bumps it); moved, this commit or another landed: unknown.
//   - A server that does not answer the look in time, or answers BUSY, is
//     busy (running a large EXEC, this commit's own, or a script), not
//     pausing writes (a paused server serves reads): it is waited for, as
//     it always was.
//   - A user who may not run CLIENT ID, LIST or KILL, or a look that fails
//     otherwise (no second connection), leaves the outcome unknown:
//     ErrUncertain says the write may or may not have been applied. The commit's goroutine
//     is left to end on its own (when the pause ends, or the store is
//     closed) and closes its connection.
//
// A reply that arrives meanwhile is the outcome, whatever the look said.

// redisGiveUpFloor is the least a commit waits before its connection is
// looked at, when the transaction's reads met other writers' commits
// until the busy timeout was nearly over.
const redisGiveUpFloor = 100 * time.Millisecond

// redisLookGrace is how long a commit given up on is still waited for
// when the look could not stop it.
const redisLookGrace = 250 * time.Millisecond

// guard runs send, the commit's round trips, in a goroutine and waits for
// it as described above. send calls progress when a piece of a large
// commit is answered.
func (t *redisTx) guard(expect string, send func(progress func()) error) error {
	busy := t.s.opts.BusyTimeout
	var mu sync.Mutex
	giveUp := t.deadline
	if floor := time.Now().Add(min(busy, redisGiveUpFloor)); giveUp.Before(floor) {
		giveUp = floor
	}
	finished, abandoned := false, false
	done := make(chan error, 1)
	progress := func() {
		mu.Lock()
		if next := time.Now().Add(busy); next.After(giveUp) {
			giveUp = next
		}
		mu.Unlock()
	}
	go func() {
		err := send(progress)
		mu.Lock()
		finished = true
		left := abandoned
		mu.Unlock()
		if left {
			t.rtx.Close()
		}
		done <- err
	}()
	var next time.Time // the next look at a connection that was not held
	look := 50 * time.Millisecond
	for {
		mu.Lock()
		at := giveUp
		mu.Unlock()
		if next.After(at) {
			at = next
		}
		timer := time.NewTimer(time.Until(at))
		select {
		case err := <-done:
			timer.Stop()
			return err
		case <-timer.C:
		}
		mu.Lock()
		early := time.Now().Before(giveUp) // a chunk was answered meanwhile
		mu.Unlock()
		if early {
			continue
		}
		verdict, held, gone := t.lookAtCommit(expect)
		if !held {
			next = time.Now().Add(look)
			look = min(2*look, time.Second)
			continue
		}
		// Its connection closed, the round trips end at once; and an
		// answer the look waited for may come with the commit's own (a
		// server that ran it meanwhile): wait a moment for that.
		grace := redisLookGrace
		if gone {
			grace = t.s.connectTimeout
		}
		select {
		case err := <-done:
			return t.settle(verdict, err)
		case <-time.After(grace):
		}
		mu.Lock()
		if finished {
			mu.Unlock()
			return t.settle(verdict, <-done)
		}
		abandoned = true
		mu.Unlock()
		t.abandoned = true
		return verdict
	}
}

// settle returns the outcome of a commit given up on: the server's
// answer, when the commit's round trips ended with one, else the verdict.
func (t *redisTx) settle(verdict, err error) error {
	var reply redis.Error
	switch {
	case err == nil:
		return nil // applied, and answered before the kill
	case errors.Is(err, errRedisRetry):
		return t.notWritten() // the fence had moved: the script wrote nothing
	case errors.As(err, &reply):
		return err // the server ran it and refused it (NOPERM, READONLY …)
	}
	return verdict // the connection closed: the kill, or a failure
}

// lookAtCommit looks, on another connection, at the commit's connection
// past the deadline. held is false while the server is receiving,
// running or answering the commit: wait on. Otherwise verdict is the
// outcome as far as it is known, and gone says the connection was killed
// (or the server had dropped it).
func (t *redisTx) lookAtCommit(expect string) (verdict error, held, gone bool) {
	s := t.s
	c := s.looker()
	if c == nil {
		return t.uncertain("the store was closed"), true, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.connectTimeout)
	defer cancel()
	id := t.cn.id
	if id <= 0 {
		// Whether the server answers at all says at least that it is not
		// busy running something (an import's long EXEC).
		if err := c.Ping(ctx).Err(); serverBusy(err) {
			return nil, false, false
		}
		return t.uncertain("livedict cannot tell whether the server holds it (CLIENT PAUSE?): this Redis user may not run CLIENT ID"), true, false
	}
	line, err := c.Do(ctx, "CLIENT", "LIST", "ID", id).Text()
	if serverBusy(err) {
		return nil, false, false
	}
	if err != nil {
		return t.uncertain("livedict cannot tell whether the server holds it (CLIENT PAUSE?): CLIENT LIST: " + t.redact(err)), true, false
	}
	if line != "" && !clientHeld(line) {
		return nil, false, false
	}
	var list, kill *redis.Cmd
	var fence *redis.StringCmd
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		list = p.Do(ctx, "CLIENT", "LIST", "ID", id)
		kill = p.Do(ctx, "CLIENT", "KILL", "ID", id)
		fence = p.Get(ctx, s.fence())
		return nil
	})
	var reply redis.Error
	if err != nil && err != redis.Nil && !errors.As(err, &reply) {
		return t.uncertain("stopping it failed: " + t.redact(err)), true, false
	}
	killed := kill.Err() == nil
	if !killed && !strings.Contains(kill.Err().Error(), "No such client") {
		return t.uncertain("livedict may not stop it: CLIENT KILL: " + t.redact(kill.Err())), true, false
	}
	// Killed, or already gone: its held command never runs now.
	line, lerr := list.Text()
	if killed && lerr == nil && clientHeld(line) {
		return t.notWritten(), true, true
	}
	if f, err := fence.Result(); (err == nil || err == redis.Nil) && t.fenceKnown && f == expect {
		return t.notWritten(), true, true
	}
	if killed {
		return t.uncertain("the pause (CLIENT PAUSE?) ended just as livedict gave up on it"), true, true
	}
	return t.uncertain("the server dropped its connection"), true, true
}

// serverBusy reports whether err says the server is busy: a connection
// to it was made and its reply did not come in time, or it answered BUSY
// (a script runs past busy-reply-threshold). A reply that did not come
// reaches here as a read's net.OpError, or, from go-redis on a TCP
// connection, as the bare os.ErrDeadlineExceeded ("i/o timeout"), which
// was taken for a failure: a million-key import on a loaded machine, its
// EXEC running past the look's timeout, exited 3 with "may or may not
// have been applied" though it had been. A dial that timed out is no
// answer from a busy server (the kernel accepts for it), but an absent one.
func serverBusy(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Timeout() && op.Op == "read"
	}
	return err != nil && strings.HasPrefix(err.Error(), "BUSY ") ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}

// clientHeld reports whether a CLIENT LIST line shows a client held by the
// server (flag b: blocked; a commit's commands block only in a pause).
func clientHeld(line string) bool {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "flags="); ok {
			return strings.Contains(v, "b")
		}
	}
	return false
}

func (t *redisTx) notWritten() error {
	return fmt.Errorf("%w: redis %s: %w; gave up after %s, nothing written",
		ErrBusy, t.s.target.Addr, ErrWritesPaused, t.s.opts.busyFor())
}

func (t *redisTx) uncertain(why string) error {
	return fmt.Errorf("%w: redis %s: no answer to the commit within busy_timeout (%s), and %s",
		ErrUncertain, t.s.target.Addr, t.s.opts.busyFor(), why)
}

// redact is err's text in one line without the password.
func (t *redisTx) redact(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if t.s.target.Password != "" {
		msg = strings.ReplaceAll(msg, t.s.target.Password, "***")
	}
	return msg
}
