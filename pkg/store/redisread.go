package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Round trips. A one-shot command on Redis should cost little more than
// redis-cli's one command, so a transaction does not WATCH and does not
// end reads with MULTI/EXEC. Instead every read round trip also reads the
// fence, which every commit increments: as long as the fence reads the
// same, no commit came between the transaction's reads, so they saw one
// committed state; if it moved, the transaction runs again. The commit is
// one script (redisCommit) that applies the writes only if the fence
// still holds the value the reads saw. The first read round trip also
// carries what nearly every transaction reads (the prefetch): hook
// definitions, encrypted buckets, policies, whether a watcher listens,
// whether anything is due. So `get` is the connection's HELLO, Open's
// check of the server (one round trip) and one pipeline.

// redisHooksBucket and redisSealBucket are the internal buckets nearly
// every command reads (hook definitions, pkg/hooks; encryption state,
// pkg/seal); any entry in the first means expire events may be wanted.
const (
	redisHooksBucket = "!hooks"
	redisSealBucket  = "!seal"
)

// redisPrefetch holds the replies of the prefetch commands.
type redisPrefetch struct {
	hooks, seal *redis.MapStringStringCmd
	policies    *redis.MapStringStringCmd
	subscribers *redis.MapStringIntCmd
	due         *redis.StringSliceCmd
}

func (t *redisTx) queuePrefetch(ctx context.Context, p redis.Pipeliner) *redisPrefetch {
	pre := &redisPrefetch{}
	pre.hooks = p.HGetAll(ctx, t.s.bucketKey(redisHooksBucket))
	pre.seal = p.HGetAll(ctx, t.s.bucketKey(redisSealBucket))
	pre.policies = p.HGetAll(ctx, t.s.policyKey())
	pre.subscribers = p.PubSubNumSub(ctx, t.s.eventsChannel())
	pre.due = p.ZRangeByScore(ctx, t.s.deadlineKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(t.now, 10), Offset: 0, Count: 1,
	})
	return pre
}

// usePrefetch keeps what the prefetch read.
func (t *redisTx) usePrefetch(pre *redisPrefetch) error {
	for _, c := range []struct {
		name string
		cmd  *redis.MapStringStringCmd
	}{{redisHooksBucket, pre.hooks}, {redisSealBucket, pre.seal}} {
		all, err := c.cmd.Result()
		if err != nil {
			return t.s.wrap(err)
		}
		if err := t.fill(c.name, all); err != nil {
			return err
		}
	}
	all, err := pre.policies.Result()
	if err != nil {
		return t.s.wrap(err)
	}
	if err := t.fillPolicies(all); err != nil {
		return err
	}
	subs, err := pre.subscribers.Result()
	if err != nil && strings.HasPrefix(err.Error(), "NOPERM") {
		// A user the ACL denies PUBSUB can still read and write: count
		// someone as listening, so expiring entries keep their shadows.
		subs, err = map[string]int64{t.s.eventsChannel(): 1}, nil
	}
	if err != nil {
		return t.s.wrap(err)
	}
	due, err := pre.due.Result()
	if err != nil {
		return t.s.wrap(err)
	}
	t.dueKnown, t.due = true, len(due) > 0
	on := len(t.buckets[redisHooksBucket].m) > 0 || subs[t.s.eventsChannel()] > 0
	t.listen = &on
	t.s.hint(subs[t.s.eventsChannel()] > 0)
	t.prefetched = true
	return nil
}

// pipe runs fn's read commands in one round trip with a read of the
// fence, and, on the transaction's first read, the prefetch. It returns
// errRedisRetry when the fence moved since the transaction's first read.
// fn's commands' own errors are left to the caller.
func (t *redisTx) pipe(fn func(p redis.Pipeliner)) error {
	ctx := t.ctx
	var pre *redisPrefetch
	var before, after *redis.StringCmd
	var id *redis.IntCmd
	cmds, err := t.rtx.Pipelined(ctx, func(p redis.Pipeliner) error {
		before = p.Get(ctx, t.s.fence())
		if !t.prefetched {
			pre = t.queuePrefetch(ctx, p)
		}
		if t.write && t.cn.id == 0 {
			id = p.ClientID(ctx) // for a commit the server holds (redispause.go)
		}
		if fn != nil {
			fn(p)
		}
		after = p.Get(ctx, t.s.fence())
		return nil
	})
	var reply redis.Error
	if err != nil && err != redis.Nil && !errors.As(err, &reply) {
		return t.s.wrap(err) // the connection failed, not one command
	}
	for _, c := range cmds {
		if err := t.s.keyRefused(c); err != nil {
			return err
		}
		// Name the key of another type (see wrap): the one to look at
		// with redis-cli TYPE. Not an entry's value or shadow: one of
		// another type is a damaged key, which the caller reports
		// (ErrDamagedKey; del clears it).
		if e := c.Err(); e != nil && strings.HasPrefix(e.Error(), "WRONGTYPE ") && len(c.Args()) > 1 &&
			!strings.HasPrefix(fmt.Sprint(c.Args()[1]), t.s.p+"v:") && !strings.HasPrefix(fmt.Sprint(c.Args()[1]), t.s.p+"s:") {
			return fmt.Errorf("%w: redis %s: key %q holds another type than livedict keeps there (written outside livedict?): %s",
				ErrCorrupt, t.s.target.Addr, fmt.Sprint(c.Args()[1]), e.Error())
		}
	}
	if pre != nil {
		if err := t.usePrefetch(pre); err != nil {
			return err
		}
	}
	if id != nil {
		t.cn.id = id.Val()
		if id.Err() != nil || t.cn.id <= 0 {
			t.cn.id = -1 // refused by the ACL: never asked again
		}
	}
	// The fence read the same before and after these reads, and the same
	// as for the transaction's earlier reads: no commit came between.
	for _, c := range []*redis.StringCmd{before, after} {
		f, err := c.Result()
		if err != nil && err != redis.Nil {
			return t.s.wrap(err)
		}
		if !t.fenceKnown {
			t.fence, t.fenceKnown = f, true
		} else if f != t.fence {
			t.retry = true // even if a caller swallows the error
			return errRedisRetry
		}
	}
	return nil
}

// fill lays an internal bucket's entries read from the server under the
// transaction's own writes.
func (t *redisTx) fill(name string, all map[string]string) error {
	b := t.bucket(name)
	b.m = make(map[string]Entry, len(all))
	for k, raw := range all {
		e, err := decodeRedisEntry(name, k, raw)
		if err != nil {
			return err
		}
		b.m[k] = e
	}
	b.overlay()
	return nil
}

func (t *redisTx) fillPolicies(all map[string]string) error {
	if t.policies != nil {
		return nil // already read, maybe changed by this transaction
	}
	t.policies = map[string]Policy{}
	for name, raw := range all {
		p, err := decodeRedisPolicy(name, raw)
		if err != nil {
			if t.badPolicy == nil {
				t.badPolicy = map[string]error{}
			}
			t.badPolicy[name] = err
			continue
		}
		t.policies[name] = p
	}
	return nil
}

// redisOps is a commit's list of write commands.
type redisOps struct {
	cmds [][]any
	args int
}

func (o *redisOps) add(cmd ...any) {
	o.cmds = append(o.cmds, cmd)
	o.args += len(cmd) + 1
}

// freesOnly reports whether the commands only remove data (besides the
// layout key's SET, which rewrites the same value, and PUBLISH, which
// stores nothing), so a server at its maxmemory may run them.
func (o *redisOps) freesOnly(layoutKey string) bool {
	for _, c := range o.cmds {
		switch c[0] {
		case "DEL", "HDEL", "ZREM", "SREM", "PUBLISH":
		case "SET":
			if len(c) != 3 || c[1] != layoutKey || c[2] != redisLayout {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// addMany adds cmd head... items..., split so that no command carries
// more than per items (a script's unpack has a limit).
func (o *redisOps) addMany(per int, head []any, items []any) {
	for len(items) > 0 {
		n := min(per, len(items))
		cmd := append(append(make([]any, 0, len(head)+n), head...), items[:n]...)
		o.add(cmd...)
		items = items[n:]
	}
}

// redisCommit applies a commit's commands if the fence still reads
// ARGV[1] ('*': whatever it reads; ”: missing), and bumps it. ARGV[2…]
// are the commands, each preceded by its length.
//
// A script is not rolled back when one of its commands fails, so every
// command is checked against the user's ACL before the first write
// (redis.acl_check_cmd, Redis 7): a user who may not PUBLISH on the
// changes channel, say, must not see its write applied and reported as
// failed. The fence's INCR comes first: a fence that is not a number
// fails it before anything else is written. (On 6.2 the PUBLISH is the
// next command, so the likeliest refusal still comes before any write
// but the fence's, which costs others a retry; OOM is checked by the
// server at the first write only.)
//
// That first write is the INCR, which a server at its maxmemory refuses;
// a commit that only frees memory (del, bucket drop, reap) passes KEYS[2],
// a key that never exists, and deletes it first: DEL is a write Redis
// never refuses for memory, and after it the script's other writes run,
// so a full server can still be emptied with livedict, as with redis-cli
// DEL (see redisOps.freesOnly).
var redisCommit = sync.OnceValue(func() *redis.Script {
	return redis.NewScript(`
if ARGV[1] ~= '*' and (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
local i, n = 2, #ARGV
if redis.acl_check_cmd then
  if not redis.acl_check_cmd('INCR', KEYS[1]) then
    return redis.error_reply('NOPERM this user may not run INCR ' .. KEYS[1] .. ': livedict needs all its commands on the keys and channels of its prefix')
  end
  if KEYS[2] and not redis.acl_check_cmd('DEL', KEYS[2]) then
    return redis.error_reply('NOPERM this user may not run DEL ' .. KEYS[2] .. ': livedict needs all its commands on the keys and channels of its prefix')
  end
  while i <= n do
    local c = tonumber(ARGV[i])
    if not redis.acl_check_cmd(unpack(ARGV, i + 1, i + c)) then
      local key = ARGV[i + 2] or ''
      if ARGV[i + 1] == 'DEL' then
        for j = i + 2, i + c do
          if not redis.acl_check_cmd('DEL', ARGV[j]) then key = ARGV[j] break end
        end
      end
      return redis.error_reply('NOPERM this user may not run ' .. ARGV[i + 1] .. ' ' .. key .. ': livedict needs all its commands on the keys and channels of its prefix')
    end
    i = i + c + 1
  end
  i = 2
end
if KEYS[2] then redis.call('DEL', KEYS[2]) end
redis.call('INCR', KEYS[1])
while i <= n do
  local c = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + c))
  i = i + c + 1
end
return 1
`)
})

// redisScriptArgs bounds the commits sent as one script; larger ones
// (imports) go as WATCH, a check of the fence, and MULTI/EXEC.
const redisScriptArgs = 20000

// apply sends ops: one script call, or for a large commit WATCH + GET of
// the fence, then MULTI/EXEC. A server that holds it (CLIENT PAUSE WRITE)
// is waited for up to the busy timeout (see guard).
func (t *redisTx) apply(ops *redisOps) error {
	expect := "*"
	if t.fenceKnown {
		expect = t.fence
	}
	return t.guard(expect, func(progress func()) error {
		if ops.args <= redisScriptArgs {
			argv := make([]any, 0, ops.args+1)
			argv = append(argv, expect)
			for _, c := range ops.cmds {
				argv = append(argv, len(c))
				argv = append(argv, c...)
			}
			keys := []string{t.s.fence()}
			if ops.freesOnly(t.s.layoutKey()) {
				keys = append(keys, t.s.freeKey())
			}
			ok, err := redisCommit().Run(t.ctx, t.rtx, keys, argv...).Int()
			if err != nil {
				return t.commitLost(err)
			}
			if ok != 1 {
				return errRedisRetry
			}
			return nil
		}
		if err := t.rtx.Do(t.ctx, "WATCH", t.s.fence()).Err(); err != nil {
			return t.s.wrap(err)
		}
		f, err := t.rtx.Get(t.ctx, t.s.fence()).Result()
		if err != nil && err != redis.Nil {
			return t.s.wrap(err)
		}
		if expect != "*" && f != expect {
			t.rtx.Do(t.ctx, "UNWATCH")
			return errRedisRetry
		}
		return t.multi(ops, progress)
	})
}

// commitLost is the error of a commit (the script call, or the chunk
// that ends in EXEC) that got no reply. A connection lost once the commit
// was sent (EOF, a reset: a CLIENT KILL, a server restart, a proxy) says
// nothing of whether the server ran it: it may have, and only the reply
// was lost. That is ErrUncertain, as for a commit a paused server held;
// before, such an import or set exited 3 with a bare "EOF" though its
// data was there, and a script that ran it again hit "key exists". A
// failed write (the commit never reached the server whole), a refusal
// and an interrupt are what they say.
func (t *redisTx) commitLost(err error) error {
	var reply redis.Error
	var op *net.OpError
	if errors.As(err, &reply) || errors.Is(err, context.Canceled) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.As(err, &op) && (op.Op == "write" || op.Op == "dial") {
		return t.s.wrap(err)
	}
	return fmt.Errorf("%w: redis %s: the connection was lost before the server answered the commit (%s)",
		ErrUncertain, t.s.target.Addr, t.redact(err))
}

// redisChunk is how many queued commands one write of a large MULTI
// carries: the queue streams to the server in pieces, so neither side
// holds the whole of it as one buffer.
const redisChunk = 32768

// multi sends ops in MULTI/EXEC under the WATCH of the fence, streamed in
// chunks. Until EXEC arrives the server only queues them: a connection
// lost on the way (a CLIENT KILL, a crash) drops the queue, and nothing
// is written. progress is called as each chunk but the last is answered.
func (t *redisTx) multi(ops *redisOps, progress func()) error {
	ctx := t.ctx
	cmds := ops.cmds
	var exec *redis.Cmd
	for start := 0; start == 0 || start < len(cmds); start += redisChunk {
		end := min(start+redisChunk, len(cmds))
		last := end == len(cmds)
		replies, err := t.rtx.Pipelined(ctx, func(p redis.Pipeliner) error {
			if start == 0 {
				p.Do(ctx, "MULTI")
				p.Do(ctx, "INCR", t.s.fence())
			}
			for _, c := range cmds[start:end] {
				p.Do(ctx, c...)
			}
			if last {
				exec = p.Do(ctx, "EXEC")
			}
			return nil
		})
		if err != nil && !(last && err == redis.Nil) {
			var refused error
			for _, r := range replies {
				if r.Err() != nil && r.Err() != redis.Nil {
					err = r.Err()
					refused = t.s.keyRefused(r)
					break
				}
			}
			t.rtx.Do(ctx, "DISCARD") // a queued command refused: drop the rest
			if refused != nil {
				return refused // the server refused it in the queue: EXEC aborts
			}
			if last {
				return t.commitLost(err)
			}
			return t.s.wrap(err) // before EXEC: the server dropped the queue
		}
		if !last {
			progress()
		}
	}
	res, err := exec.Slice()
	if err == redis.Nil {
		return errRedisRetry // the fence moved after WATCH: EXEC did nothing
	}
	if err != nil {
		return t.commitLost(err)
	}
	for _, r := range res {
		if e, ok := r.(error); ok {
			return t.s.wrap(e)
		}
	}
	return nil
}
