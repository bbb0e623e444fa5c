#!/usr/bin/env bash
# Benchmarks livedict against the sqlite3 CLI and redis-cli, and checks the
# latency targets.
#
#   scripts/bench.sh                      # everything, full size (several minutes)
#   BENCH_QUICK=1 scripts/bench.sh        # fewer runs, 100k keys for the big cases
#   BENCH_ONLY=get,set scripts/bench.sh   # only some sections
#   LIVEDICT_BIN=/path/to/livedict ...    # measure that binary instead of building one
#
# Sections: get, set, import, expired, hooks, daemon. Missing tools (hyperfine, sqlite3,
# redis-server, redis-cli) are installed from Debian packages. Everything
# happens in a temporary directory with a private redis-server on a free
# loopback port; both are removed on exit, Ctrl-C included.
#
# Exit status: 0 when every benchmark ran, even if a target was missed
# (targets are for people, not CI); non-zero when anything failed to run.
#
# Adding a section (e.g. hooks, daemon): write a function bench_NAME that
# uses the helpers below (ensure_redis, ensure_base, hf, hf_median_ms,
# add_summary, check_target) and add NAME to ALL_BENCHES.
set -euo pipefail
set -o errtrace # the ERR trap below names the failing command, in functions too

ALL_BENCHES=(get set import expired hooks daemon)

# Targets (see the summary at the end).
TARGET_GET_VS_SQLITE=1.3     # livedict get / sqlite3 SELECT
TARGET_GET_VS_REDIS=0.7      # livedict get / redis-cli GET
TARGET_SET_VS_REDIS=0.9      # livedict set --ttl / redis-cli SET EX
TARGET_IMPORT_VS_REDIS=2.5   # livedict import / redis-cli --pipe
TARGET_EXPIRED_MS=50         # livedict get on a store of 1M expired rows
TARGET_HOOK_RECORD_RATIO=1.15 # set --ttl with one matching hook / with none (delivery held off)
TARGET_HOOK_START_MS=50      # set exits → hook starts, no daemon (median)
TARGET_EXPIRE_HOOK_P99_MS=100 # daemon: key deadline → its expire hook starts (p99)
TARGET_MASS_REAP_S=5         # daemon: 100k keys due in one second, all gone after (s)
TARGET_IDLE_CPU_MS=100       # daemon: CPU per 60 s, idle, 1,000 keys an hour away
TARGET_DAEMON_RSS_MIB=64     # daemon: peak RSS (VmHWM) with 1M TTL keys

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
	MODE="quick"
	BASE_KEYS=100000
	LARGE_KEYS=100000
	SMALL_WARMUP=3 SMALL_RUNS=30
	IMPORT_RUNS=2
	EXPIRED_RUNS=3
	HOOK_START_RUNS=10
	IDLE_SECS=20
else
	MODE="full"
	BASE_KEYS=100000
	LARGE_KEYS=1000000
	SMALL_WARMUP=30 SMALL_RUNS=300
	IMPORT_RUNS=3
	EXPIRED_RUNS=10
	HOOK_START_RUNS=30
	IDLE_SECS=60
fi

log() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- setup

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

install_missing() {
	local -A pkg_for=([hyperfine]=hyperfine [sqlite3]=sqlite3 [redis-server]=redis-server
		[redis-cli]=redis-tools [python3]=python3)
	local missing=() c
	for c in hyperfine sqlite3 redis-server redis-cli python3; do
		command -v "$c" >/dev/null 2>&1 || missing+=("${pkg_for[$c]}")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	local sudo=()
	((EUID == 0)) || sudo=(sudo)
	"${sudo[@]}" apt-get update
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${missing[@]}"
}

TMP="" REDIS_PID="" REDIS_PORT=""
BG_PIDS=()    # daemons and lock holders this script started
STATE_DIRS=() # hook state dirs of the stores it made (a detached dispatcher may run there)
cleanup() {
	local rc=$? pid
	if [[ -n "$REDIS_PID" ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
		kill "$REDIS_PID" 2>/dev/null || true
		wait "$REDIS_PID" 2>/dev/null || true
	fi
	for pid in "${BG_PIDS[@]}"; do stop_pid "$pid"; done
	local d
	for d in "${STATE_DIRS[@]}"; do stop_dispatcher "$d"; done
	[[ -n "$TMP" ]] && rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'printf "bench.sh: line %s: failed: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# Milliseconds since the epoch, without starting python.
ms_now() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

# lock_holder PATH: the pid holding a POSIX record lock on PATH (what
# livedict's TryLock takes), or 0. Tests with F_GETLK, never takes it.
lock_holder() {
	python3 - "$1" <<'EOF'
import fcntl, os, struct, sys
try:
    fd = os.open(sys.argv[1], os.O_RDONLY)
except FileNotFoundError:
    print(0); sys.exit()
fl = struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0)
t, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, fl))
print(0 if t == fcntl.F_UNLCK else pid)
EOF
}

untrack() {
	local keep=() p
	for p in "${BG_PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
	BG_PIDS=("${keep[@]}")
}

# stop_pid PID: SIGTERM (SIGKILL after 5 s) to a process this script started.
stop_pid() {
	local pid=$1 i
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	untrack "$pid"
}

# stop_dispatcher STATEDIR: a detached 'livedict hook deliver' started by
# our commands may still hold the store's delivery lock: give it 5 s to
# finish, then stop it (by pid, and only if it is livedict).
stop_dispatcher() {
	local dir=$1 pid i
	[[ -e "$dir/deliver.lock" ]] || return 0
	for i in $(seq 50); do
		pid=$(lock_holder "$dir/deliver.lock" 2>/dev/null || echo 0)
		[[ "$pid" == 0 ]] && return 0
		sleep 0.1
	done
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == livedict ]] && kill -TERM "$pid" 2>/dev/null || true
}

# hold_lock PATH: takes the POSIX record lock on PATH in a background
# python3 (fcntl.lockf is F_SETLKW, F_WRLCK, whole file) until stop_pid
# $LOCK_PID. Writers that find the delivery lock held only send a datagram.
hold_lock() {
	local path=$1 i
	mkdir -p -m 700 "$(dirname "$path")"
	rm -f "$TMP/lock.ready"
	python3 - "$path" "$TMP/lock.ready" <<'EOF' &
import fcntl, os, signal, sys
f = open(sys.argv[1], "a")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").write("%d\n" % os.getpid())
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    signal.pause()
EOF
	LOCK_PID=$!
	BG_PIDS+=("$LOCK_PID")
	for i in $(seq 100); do
		[[ -s "$TMP/lock.ready" ]] && break
		kill -0 "$LOCK_PID" 2>/dev/null || die "the lock holder for $path died"
		sleep 0.05
	done
	[[ -s "$TMP/lock.ready" ]] || die "could not lock $path"
	expect_eq "pid holding $path" "$LOCK_PID" "$(lock_holder "$path")"
}

# start_daemon LOG CMD...: runs CMD (a livedict daemon) in the background
# with stderr to LOG; sets DAEMON_PID once it logged that it started.
start_daemon() {
	local logf=$1 i
	shift
	"$@" 2>"$logf" &
	DAEMON_PID=$! DAEMON_DIED="" DAEMON_START_MS=$(ms_now)
	BG_PIDS+=("$DAEMON_PID")
	for i in $(seq 200); do
		grep -q 'daemon started' "$logf" 2>/dev/null && return 0
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			cat "$logf" >&2
			die "the daemon exited at once"
		fi
		sleep 0.05
	done
	cat "$logf" >&2
	die "the daemon did not log 'daemon started' within 10 s"
}

# stop_daemon: SIGTERM to $DAEMON_PID; sets DAEMON_RC (its exit status, or
# "killed" when it needed SIGKILL after 60 s).
stop_daemon() {
	local i
	DAEMON_RC=0
	kill -TERM "$DAEMON_PID" 2>/dev/null || true
	for i in $(seq 600); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -KILL "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_RC=killed
	else
		wait "$DAEMON_PID" || DAEMON_RC=$?
	fi
	untrack "$DAEMON_PID"
}

# log_problems LOG: the daemon's log lines at level WARN or ERROR, counted.
log_problems() {
	local n
	n=$(grep -cE 'level=(WARN|ERROR)' "$1" || true)
	if ((n > 0)); then
		printf '%s warning/error line(s) in the daemon log, e.g.: %s' "$n" \
			"$(grep -m1 -E 'level=(WARN|ERROR)' "$1" | cut -c1-200)"
	fi
}

# after_daemon DB LOG: sets AFTER to a note on what the daemon left: its
# exit status when not 0, its last error, keys still there, events still
# waiting in the outbox, runs marked failed, warnings in its log.
after_daemon() {
	local db=$1 logf=$2 keys outbox failed probs
	AFTER=""
	if [[ -n "$DAEMON_DIED" ]]; then
		AFTER+="; the daemon exited by itself $DAEMON_DIED (status $DAEMON_RC)"
	elif [[ "$DAEMON_RC" != 0 ]]; then
		AFTER+="; daemon exit status $DAEMON_RC after SIGTERM (want 0)"
	fi
	if [[ "$DAEMON_RC" != 0 ]] && grep -q '^livedict: error' "$logf"; then
		AFTER+=": $(grep '^livedict: error' "$logf" | tail -n1 | cut -c1-200)"
	fi
	keys=$(sqlite_count "$db" 'SELECT count(*) FROM entries')
	outbox=$(sqlite_count "$db" "SELECT count(*) FROM internal WHERE bucket = '!outbox'")
	failed=$("$LD" --store "sqlite:$db" --no-hooks hook log --failed --json -n 0 | wc -l)
	AFTER+="; left after it: $keys keys, $outbox events in the outbox, $failed runs marked failed"
	probs=$(log_problems "$logf")
	[[ -z "$probs" ]] || AFTER+="; $probs"
}

# wait_lines FILE N TIMEOUT_AT_MS: waits until FILE has N lines, the time
# passes, or the daemon dies (then sets DAEMON_DIED). Sets HAVE.
wait_lines() {
	local f=$1 n=$2 limit=$3
	while :; do
		HAVE=$(count_lines "$f")
		((HAVE >= n)) && return 0
		(($(ms_now) > limit)) && return 0
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			DAEMON_DIED="$(awk -v v="$(($(ms_now) - DAEMON_START_MS))" 'BEGIN { printf "%.1f", v / 1000 }') s after it started"
			HAVE=$(count_lines "$f")
			return 0
		fi
		sleep 0.2
	done
}

# count_lines FILE: lines in FILE, 0 when it does not exist.
count_lines() { if [[ -f "$1" ]]; then wc -l <"$1"; else echo 0; fi; }

# gen_ttl OUT PREFIX COUNT START_MS SPAN_MS [deadline]: appends COUNT JSONL
# lines with empty values whose deadlines are spread evenly over
# [START_MS, START_MS+SPAN_MS); keys are PREFIX + a 7-digit index, or with
# "deadline" PREFIX + the key's deadline in ms (then one key per ms at most).
gen_ttl() {
	python3 - "$@" <<'EOF'
import sys
out, prefix, n, start, span = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
by_deadline = len(sys.argv) > 6 and sys.argv[6] == "deadline"
with open(out, "a") as f:
    parts = []
    for i in range(n):
        at = start + i * span // n
        k = "%s%d" % (prefix, at) if by_deadline else "%s%07d" % (prefix, i)
        parts.append('{"bucket":"main","key":"%s","value_b64":"","expires_at_ms":%d}\n' % (k, at))
        if len(parts) == 10000:
            f.write("".join(parts)); parts = []
    f.write("".join(parts))
EOF
}

# sqlite_count DB SQL: one number from the sqlite3 CLI, waiting out a writer.
sqlite_count() { sqlite3 -cmd '.timeout 5000' "$1" "$2"; }

# drop_dir DIR: removes a section's folder once no dispatcher runs there.
drop_dir() {
	local d
	for d in "$1"/*.db.d; do
		[[ -d "$d" ]] && stop_dispatcher "$d"
	done
	rm -rf "$1"
}

# new_dir NAME: an empty 0700 folder under $TMP (hooks refuse stores in
# folders others can write).
new_dir() {
	rm -rf "${TMP:?}/$1"
	mkdir -m 700 "$TMP/$1"
	echo "$TMP/$1"
}

# Only this script's settings apply: no user config, no LIVEDICT_* from the caller.
isolate_env() {
	local v
	for v in $(compgen -e); do
		[[ "$v" == LIVEDICT_* && "$v" != LIVEDICT_BIN ]] && unset "$v"
	done
	export XDG_CONFIG_HOME="$TMP/xdg-config" XDG_DATA_HOME="$TMP/xdg-data"
	mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
}

build_livedict() {
	if [[ -n "${LIVEDICT_BIN:-}" ]]; then
		LD=$(command -v "$LIVEDICT_BIN") || die "LIVEDICT_BIN=$LIVEDICT_BIN is not executable"
		return
	fi
	command -v go >/dev/null 2>&1 || die "go is needed to build livedict (or set LIVEDICT_BIN)"
	[[ -f "$ROOT/go.mod" ]] || die "no go.mod in $ROOT"
	log "building livedict"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$TMP/livedict" .)
	LD="$TMP/livedict"
}

# Data files, all with keys key0000000..: kind jsonl|resp|sql, N, then
#   jsonl: expires_at_ms (a number, or null); resp: EX seconds; sql: expiry ms.
gen() {
	python3 - "$@" <<'EOF'
import base64, sys
kind, n, out, exp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
CHUNK = 10000
with open(out, "wb") as f:
    if kind == "sql":
        f.write(b"BEGIN;\n")
    for lo in range(0, n, CHUNK):
        parts = []
        for i in range(lo, min(n, lo + CHUNK)):
            k = "key%07d" % i
            v = "value-%07d" % i
            if kind == "jsonl":
                b = base64.b64encode(v.encode()).decode()
                parts.append('{"bucket":"main","key":"%s","value_b64":"%s","expires_at_ms":%s}\n' % (k, b, exp))
            elif kind == "resp":
                parts.append("*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$%d\r\n%s\r\n"
                             % (len(k), k, len(v), v, len(exp), exp))
            elif kind == "sql":
                parts.append("INSERT INTO kv VALUES('%s','%s',%s);\n" % (k, v, exp))
            else:
                sys.exit("gen: unknown kind " + kind)
        f.write("".join(parts).encode())
    if kind == "sql":
        f.write(b"COMMIT;\n")
EOF
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

ensure_redis() {
	[[ -n "$REDIS_PID" ]] && return 0
	local try i pid
	for try in 1 2 3; do
		REDIS_PORT=$(free_port)
		redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
			--daemonize no --dir "$TMP" --logfile "$TMP/redis.log" &
		REDIS_PID=$!
		for i in $(seq 100); do
			if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
				pid=$(redis-cli -p "$REDIS_PORT" info server | tr -d '\r' | sed -n 's/^process_id://p')
				[[ "$pid" == "$REDIS_PID" ]] || die "port $REDIS_PORT answered, but not from our redis-server"
				log "redis-server $REDIS_PID on 127.0.0.1:$REDIS_PORT"
				return 0
			fi
			kill -0 "$REDIS_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$REDIS_PID" 2>/dev/null || true
		wait "$REDIS_PID" 2>/dev/null || true
		REDIS_PID=""
	done
	cat "$TMP/redis.log" >&2 2>/dev/null || true
	die "could not start redis-server"
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# The base data set for the point benchmarks: BASE_KEYS keys with a one-day
# TTL, in a livedict store ($BASE_DB), a sqlite3 table ($BASE_SQLITE) and redis.
BASE_READY=0 REDIS_BASE_READY=0
ensure_base() {
	ensure_redis
	if ((!BASE_READY)); then
		log "preparing $BASE_KEYS keys for livedict, sqlite3 and redis"
		local exp_ms=$(($(now_ms) + 86400000))
		gen jsonl "$BASE_KEYS" "$TMP/base.jsonl" "$exp_ms"
		gen sql "$BASE_KEYS" "$TMP/base.sql" "$exp_ms"
		BASE_DB="$TMP/base.db" BASE_SQLITE="$TMP/base.sqlite"
		local n
		n=$("$LD" --store "sqlite:$BASE_DB" import "$TMP/base.jsonl" -v)
		[[ "$n" == "$BASE_KEYS" ]] || die "livedict import wrote '$n' keys, want $BASE_KEYS"
		sqlite3 "$BASE_SQLITE" 'CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB, e INTEGER)'
		sqlite3 "$BASE_SQLITE" <"$TMP/base.sql"
		n=$(sqlite3 "$BASE_SQLITE" 'SELECT count(*) FROM kv')
		[[ "$n" == "$BASE_KEYS" ]] || die "sqlite3 table holds $n rows, want $BASE_KEYS"
		BASE_READY=1
	fi
	if ((!REDIS_BASE_READY)); then
		[[ -f "$TMP/base.resp" ]] || gen resp "$BASE_KEYS" "$TMP/base.resp" 86400
		rcli FLUSHALL >/dev/null
		rcli --pipe <"$TMP/base.resp" >/dev/null
		local n
		n=$(rcli DBSIZE)
		[[ "$n" == "$BASE_KEYS" ]] || die "redis holds $n keys, want $BASE_KEYS"
		REDIS_BASE_READY=1
	fi
}

# ---------------------------------------------------------------- helpers

q() { printf '%q ' "$@"; }   # quote a command line for hyperfine

# hf NAME [hyperfine args...]: runs hyperfine, exporting to $TMP/NAME.json.
hf() {
	local name=$1
	shift
	log "hyperfine: $name"
	hyperfine --style basic --export-json "$TMP/$name.json" "$@"
}

# hf_stat NAME INDEX FIELD: a field of one result, in milliseconds.
hf_stat() {
	python3 - "$TMP/$1.json" "$2" "$3" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]
print("%.6f" % (r[sys.argv[3]] * 1000))
EOF
}
hf_median_ms() { hf_stat "$1" "$2" median; }

# Relative stddev (percent) of each result, kept to judge noise.
NOISE=()
note_noise() {
	local name=$1 line
	while read -r line; do
		NOISE+=("$name $line")
	done < <(python3 - "$TMP/$name.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("%.1f %s" % (100 * (r["stddev"] or 0) / r["mean"], r["command"].split()[0].rsplit("/", 1)[-1]))
EOF
	)
}

fmt_ms() { awk -v v="$1" 'BEGIN { if (v < 10) printf "%.2f ms", v; else if (v < 1000) printf "%.1f ms", v; else printf "%.2f s", v / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

MISSES=0 ST=""
# check_target VALUE TARGET: sets ST to PASS when VALUE (as printed) <= TARGET,
# else to MISS. Not to be called in a subshell: it counts the misses.
check_target() {
	if awk -v v="$1" -v t="$2" 'BEGIN { exit !(v + 0 <= t + 0) }'; then
		ST=PASS
	else
		MISSES=$((MISSES + 1))
		ST=MISS
	fi
}

SUMMARY=()
add_summary() { SUMMARY+=("$*"); }

expect_eq() { # expect_eq WHAT WANT GOT
	[[ "$2" == "$3" ]] || die "$1: got '$3', want '$2'"
}

# ---------------------------------------------------------------- benchmarks

bench_get() {
	ensure_base
	local key=key0050000 want=value-0050000
	expect_eq "livedict get" "$want" "$("$LD" --store "sqlite:$BASE_DB" get "$key")"
	expect_eq "sqlite3 SELECT" "$want" "$(sqlite3 "$BASE_SQLITE" "SELECT v FROM kv WHERE k='$key'")"
	expect_eq "redis-cli GET" "$want" "$(rcli GET "$key")"
	hf get -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n livedict "$(q "$LD" --store "sqlite:$BASE_DB" get "$key")" \
		-n sqlite3 "$(q sqlite3 "$BASE_SQLITE" "SELECT v FROM kv WHERE k='$key'")" \
		-n redis-cli "$(q redis-cli -p "$REDIS_PORT" GET "$key")"
	note_noise get
	local l s r rs rr
	l=$(hf_median_ms get 0) s=$(hf_median_ms get 1) r=$(hf_median_ms get 2)
	rs=$(ratio "$l" "$s") rr=$(ratio "$l" "$r")
	local st1 st2
	check_target "$rs" "$TARGET_GET_VS_SQLITE"; st1=$ST
	check_target "$rr" "$TARGET_GET_VS_REDIS"; st2=$ST
	add_summary "get: livedict $(fmt_ms "$l"), sqlite3 $(fmt_ms "$s"), redis-cli $(fmt_ms "$r")" \
		"→ ${rs}× sqlite3 (target ≤ $TARGET_GET_VS_SQLITE) $st1," \
		"${rr}× redis-cli (target ≤ $TARGET_GET_VS_REDIS) $st2"
}

bench_set() {
	ensure_base
	local key=key0060000 val=newvalue-0060000
	local sql="INSERT OR REPLACE INTO kv VALUES('$key','$val',CAST(strftime('%s','now') AS INTEGER)*1000+60000)"
	"$LD" --store "sqlite:$BASE_DB" set "$key" "$val" --ttl 60s
	expect_eq "livedict get after set" "$val" "$("$LD" --store "sqlite:$BASE_DB" get "$key")"
	sqlite3 "$BASE_SQLITE" "$sql"
	expect_eq "sqlite3 after INSERT" "$val" "$(sqlite3 "$BASE_SQLITE" "SELECT v FROM kv WHERE k='$key'")"
	expect_eq "redis-cli SET" OK "$(rcli SET "$key" "$val" EX 60)"
	hf set -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n livedict "$(q "$LD" --store "sqlite:$BASE_DB" set "$key" "$val" --ttl 60s)" \
		-n sqlite3 "$(q sqlite3 "$BASE_SQLITE" "$sql")" \
		-n redis-cli "$(q redis-cli -p "$REDIS_PORT" SET "$key" "$val" EX 60)"
	note_noise set
	local l s r rs rr
	l=$(hf_median_ms set 0) s=$(hf_median_ms set 1) r=$(hf_median_ms set 2)
	rs=$(ratio "$l" "$s") rr=$(ratio "$l" "$r")
	check_target "$rr" "$TARGET_SET_VS_REDIS"
	add_summary "set: livedict $(fmt_ms "$l"), sqlite3 $(fmt_ms "$s"), redis-cli $(fmt_ms "$r")" \
		"→ ${rs}× sqlite3 (no target), ${rr}× redis-cli SET (target ≤ $TARGET_SET_VS_REDIS) $ST"
}

bench_import() {
	ensure_redis
	local n=$LARGE_KEYS label
	label=$(awk -v n="$n" 'BEGIN { if (n % 1000000 == 0) print n / 1000000 "M"; else print n / 1000 "k" }')
	log "generating $n keys for import and redis-cli --pipe"
	gen jsonl "$n" "$TMP/big.jsonl" "$(($(now_ms) + 3600000))"
	gen resp "$n" "$TMP/big.resp" 3600
	local db="$TMP/imp.db"
	# Not -N: redis-cli --pipe reads stdin. hyperfine subtracts the shell's own time.
	hf import -w 0 -r "$IMPORT_RUNS" \
		--prepare "$(q rm -f "$db" "$db-journal" "$db-wal" "$db-shm")" \
		-n "livedict import" "$(q "$LD" --store "sqlite:$db" import "$TMP/big.jsonl")" \
		--prepare "$(q redis-cli -p "$REDIS_PORT" FLUSHALL) >/dev/null" \
		-n "redis-cli --pipe" "$(q redis-cli -p "$REDIS_PORT" --pipe) < $(q "$TMP/big.resp")"
	REDIS_BASE_READY=0 # flushed
	note_noise import
	local got
	got=$("$LD" --store "sqlite:$db" stats --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["keys"], d["keys_with_ttl"])')
	expect_eq "livedict keys after import" "$n $n" "$got"
	expect_eq "redis DBSIZE after --pipe" "$n" "$(rcli DBSIZE)"
	local l r rr
	l=$(hf_median_ms import 0) r=$(hf_median_ms import 1)
	rr=$(ratio "$l" "$r")
	check_target "$rr" "$TARGET_IMPORT_VS_REDIS"
	add_summary "import $label: livedict $(fmt_ms "$l"), redis-cli --pipe $(fmt_ms "$r")" \
		"→ ${rr}× (target ≤ $TARGET_IMPORT_VS_REDIS) $ST"
	rm -f "$TMP/big.jsonl" "$TMP/big.resp" "$db"
}

bench_expired() {
	local n=$LARGE_KEYS label deadline got margin
	label=$(awk -v n="$n" 'BEGIN { if (n % 1000000 == 0) print n / 1000000 "M"; else print n / 1000 "k" }')
	local db="$TMP/expired.db" work="$TMP/work.db"
	# import skips lines whose deadline has passed when its transaction
	# starts (after parsing), so give a near-future deadline and wait it out.
	local first=$((n >= 1000000 ? 20 : 10))
	for margin in "$first" $((first * 4)) $((first * 16)); do
		log "building a store of $n keys expiring in ${margin}s"
		deadline=$(($(now_ms) + margin * 1000))
		gen jsonl "$n" "$TMP/expired.jsonl" "$deadline"
		rm -f "$db" "$db-journal"
		got=$("$LD" --store "sqlite:$db" import "$TMP/expired.jsonl" -v)
		[[ "$got" == "$n" ]] && break
		log "import wrote $got of $n keys (deadline passed while parsing); retrying with more time"
	done
	expect_eq "keys imported for the expired store" "$n" "$got"
	rm -f "$TMP/expired.jsonl"
	local wait_ms=$((deadline + 1000 - $(now_ms)))
	if ((wait_ms > 0)); then
		log "waiting $((wait_ms / 1000 + 1))s for the keys to expire"
		sleep "$((wait_ms / 1000 + 1))"
	fi
	# Don't open $db with livedict: it would reap a batch. Check on a copy.
	local key=key$(printf '%07d' $((n / 2)))
	cp -f "$db" "$work"
	expect_eq "livedict get of an expired key" EXPIRED \
		"$("$LD" --store "sqlite:$work" get "$key" --default EXPIRED)"
	hf expired -N -w 1 -r "$EXPIRED_RUNS" \
		--prepare "$(q sh -c "rm -f $(q "$work-journal" "$work-wal" "$work-shm") && cp -f $(q "$db" "$work")")" \
		-n "livedict get (expired store)" "$(q "$LD" --store "sqlite:$work" get "$key" --default EXPIRED)"
	note_noise expired
	local l lr
	l=$(hf_median_ms expired 0)
	lr=$(awk -v v="$l" 'BEGIN { printf "%.1f", v }')
	check_target "$lr" "$TARGET_EXPIRED_MS"
	add_summary "$label expired: livedict get $(fmt_ms "$l") (target ≤ $TARGET_EXPIRED_MS ms) $ST"
	rm -f "$db" "$work"
}

# ---------------------------------------------------------------- hooks

# hooks: what recording an event costs a writer, and how soon a hook starts
# after the command that caused it, with no daemon.
bench_hooks() {
	bench_hooks_record
	bench_hooks_start
}

bench_hooks_record() {
	local dir plain hooked n0 n1
	dir=$(new_dir hooks-record)
	plain="$dir/plain.db" hooked="$dir/hooked.db"
	STATE_DIRS+=("$plain.d" "$hooked.d")
	"$LD" --store "sqlite:$plain" set k v --ttl 1h
	"$LD" --store "sqlite:$hooked" set k v --ttl 1h
	# Hold the delivery lock first: events are recorded, nobody delivers.
	hold_lock "$hooked.d/deliver.lock"
	"$LD" --store "sqlite:$hooked" hook add --on set --key 'k*' -- /bin/true >/dev/null
	local outbox="SELECT count(*) FROM internal WHERE bucket = '!outbox'"
	n0=$(sqlite_count "$hooked" "$outbox")
	"$LD" --store "sqlite:$hooked" set k v --ttl 1h
	n1=$(sqlite_count "$hooked" "$outbox")
	expect_eq "events recorded by one hooked set" 1 $((n1 - n0))
	expect_eq "events recorded on the store without hooks" 0 "$(sqlite_count "$plain" "$outbox")"
	# hyperfine runs the commands one after the other, so a drift in the
	# machine's load lands on one of them: the store without hooks is
	# measured before and after, and the ratio is to the mean of the two.
	hf hooks-record -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n "unhooked" "$(q "$LD" --store "sqlite:$plain" set k v --ttl 1h)" \
		-n "hooked" "$(q "$LD" --store "sqlite:$hooked" set k v --ttl 1h)" \
		-n "unhooked-again" "$(q "$LD" --store "sqlite:$plain" set k v --ttl 1h)"
	note_noise hooks-record
	# Every run recorded its event and none was delivered meanwhile.
	expect_eq "events waiting after the runs" $((n1 + SMALL_WARMUP + SMALL_RUNS)) "$(sqlite_count "$hooked" "$outbox")"
	stop_pid "$LOCK_PID"
	drop_dir "$dir"
	local u1 u2 u h r rmin umin cu ch
	u1=$(hf_median_ms hooks-record 0) h=$(hf_median_ms hooks-record 1) u2=$(hf_median_ms hooks-record 2)
	u=$(awk -v a="$u1" -v b="$u2" 'BEGIN { print (a + b) / 2 }')
	r=$(ratio "$h" "$u")
	umin=$(awk -v a="$(hf_stat hooks-record 0 min)" -v b="$(hf_stat hooks-record 2 min)" 'BEGIN { print (a < b ? a : b) }')
	rmin=$(ratio "$(hf_stat hooks-record 1 min)" "$umin")
	cpu() { awk -v a="$(hf_stat hooks-record "$1" user)" -v b="$(hf_stat hooks-record "$1" system)" 'BEGIN { print a + b }'; }
	cu=$(awk -v a="$(cpu 0)" -v b="$(cpu 2)" 'BEGIN { print (a + b) / 2 }') ch=$(cpu 1)
	check_target "$r" "$TARGET_HOOK_RECORD_RATIO"
	add_summary "hooks record: set --ttl 1h, no hooks $(fmt_ms "$u1") before / $(fmt_ms "$u2") after," \
		"one matching hook $(fmt_ms "$h") (delivery held off) → ${r}× (target ≤ $TARGET_HOOK_RECORD_RATIO) $ST;" \
		"fastest runs ${rmin}×, mean CPU (user+sys) $(ratio "$ch" "$cu")×"
}

bench_hooks_start() {
	local dir db out
	dir=$(new_dir hooks-start)
	db="$dir/start.db" out="$dir/out"
	STATE_DIRS+=("$db.d")
	mkdir -m 700 "$out"
	"$LD" --store "sqlite:$db" hook add --on set --write "$out" -- sh -c "date +%s%N >> $out/starts" >/dev/null
	log "set → hook start, no daemon: $HOOK_START_RUNS runs"
	# For each run: no dispatcher left, then time the set's exit against
	# the time the hook wrote when it started.
	python3 - "$LD" "sqlite:$db" "$db.d/deliver.lock" "$out/starts" "$HOOK_START_RUNS" >"$TMP/hooks-start.txt" <<'EOF'
import fcntl, os, struct, subprocess, sys, time
ld, store, lockp, starts, n = sys.argv[1:6]
def holder():
    try:
        fd = os.open(lockp, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        fl = struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0)
        t, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, fl))
        return 0 if t == fcntl.F_UNLCK else pid
    finally:
        os.close(fd)
def lines():
    try:
        with open(starts) as f:
            return f.read().split()
    except FileNotFoundError:
        return []
def until(cond, what, timeout=15):
    end = time.time() + timeout
    while not cond():
        if time.time() > end:
            sys.exit("hooks start: timed out waiting for " + what)
        time.sleep(0.002)
for i in range(int(n)):
    until(lambda: holder() == 0 and len(lines()) == i, "the previous run's dispatcher to finish")
    subprocess.run([ld, "--store", store, "set", "k%d" % i, "v"], check=True)
    t = time.time_ns()
    until(lambda: len(lines()) > i, "hook start %d" % i)
    print("%.3f" % ((int(lines()[i]) - t) / 1e6))
until(lambda: holder() == 0, "the last dispatcher to finish")
EOF
	local st
	st=$(pct_stats "$TMP/hooks-start.txt")
	local p50 p90 mx n
	read -r p50 p90 _ mx n <<<"$st"
	expect_eq "hook starts measured" "$HOOK_START_RUNS" "$n"
	check_target "$p50" "$TARGET_HOOK_START_MS"
	add_summary "hooks start: set exit → hook start (detached dispatcher) median $p50 ms, p90 $p90 ms," \
		"max $mx ms over $n runs (target median ≤ $TARGET_HOOK_START_MS ms) $ST"
	drop_dir "$dir"
}

# pct_stats FILE: "p50 p90 p99 max count" of the numbers in FILE (one a
# line), p90/p99 by nearest rank.
pct_stats() {
	python3 - "$1" <<'EOF'
import math, statistics, sys
v = sorted(float(x) for x in open(sys.argv[1]).read().split())
if not v:
    print("nan nan nan nan 0"); sys.exit()
pr = lambda p: v[max(0, math.ceil(p / 100 * len(v)) - 1)]
print("%.1f %.1f %.1f %.1f %d" % (statistics.median(v), pr(90), pr(99), v[-1], len(v)))
EOF
}

# ---------------------------------------------------------------- daemon

# daemon: expire-hook latency, a mass expiry, idle CPU and peak memory.
bench_daemon() {
	daemon_pickup
	daemon_expire_hooks 4
	if [[ "$EXPIRE_ST" == MISS ]]; then
		log "default hook_concurrency missed the target; trying LIVEDICT_HOOK_CONCURRENCY=8"
		daemon_expire_hooks 8
	fi
	daemon_mass_expiry
	daemon_idle
	daemon_rss
}

# daemon_pickup: keys set one at a time by other processes while the daemon
# idles, each due 200 ms later: how long from its deadline until its expire
# hook starts, when hooks are not queued behind each other. This is the
# daemon's own promptness: hearing of the key, sleeping until its deadline,
# reaping, starting the hook.
daemon_pickup() {
	local dir db out n=30 i at key
	[[ "$MODE" == quick ]] && n=10
	dir=$(new_dir "daemon-pickup")
	db="$dir/pick.db" out="$dir/out"
	STATE_DIRS+=("$db.d")
	mkdir -m 700 "$out"
	: >"$out/expired"
	"$LD" --store "sqlite:$db" hook add --on expire --write "$out" \
		-- sh -c 'echo "$(date +%s%3N) $LIVEDICT_KEY" >> "$1"' sh "$out/expired" >/dev/null
	log "daemon: $n keys set by other processes while it idles, each due 200 ms later"
	start_daemon "$dir/daemon.log" "$LD" --store "sqlite:$db" daemon
	sleep 0.5
	: >"$TMP/pickup.txt"
	for i in $(seq "$n"); do
		at=$(($(ms_now) + 200))
		key="p$at"
		"$LD" --store "sqlite:$db" set "$key" v --at "@$((at / 1000)).$(printf %03d $((at % 1000)))"
		wait_lines "$out/expired" "$i" $((at + 10000))
		((HAVE >= i)) || break
		awk -v k="$key" '$2 == k { print $1 - substr(k, 2) }' "$out/expired" >>"$TMP/pickup.txt"
		sleep 0.1
	done
	stop_daemon
	after_daemon "$db" "$dir/daemon.log"
	local p50 p90 p99 mx cnt
	read -r p50 p90 p99 mx cnt <<<"$(pct_stats "$TMP/pickup.txt")"
	check_target "$p99" "$TARGET_EXPIRE_HOOK_P99_MS"
	((cnt == n)) || { [[ "$ST" == PASS ]] && MISSES=$((MISSES + 1)); ST=MISS; }
	add_summary "daemon pickup (keys set by other processes, one at a time): deadline → expire hook start" \
		"median $p50 ms, p99 $p99 ms, max $mx ms over $cnt of $n keys (target p99 ≤ $TARGET_EXPIRE_HOOK_P99_MS ms) $ST$AFTER"
	drop_dir "$dir"
}

# daemon_expire_hooks CONCURRENCY: 10,000 keys due one per ms over 10 s,
# each with an expire hook that writes its start time and key.
EXPIRE_ST=""
daemon_expire_hooks() {
	local conc=$1 dir db out n=10000 span=10000 t0 got
	dir=$(new_dir "daemon-expire-$conc")
	db="$dir/exp.db" out="$dir/out"
	STATE_DIRS+=("$db.d")
	mkdir -m 700 "$out"
	: >"$out/expired"
	"$LD" --store "sqlite:$db" hook add --on expire --write "$out" \
		-- sh -c 'echo "$(date +%s%3N) $LIVEDICT_KEY" >> "$1"' sh "$out/expired" >/dev/null
	log "daemon: $n keys expiring one per ms over $((span / 1000)) s, expire hook on each (hook_concurrency $conc)"
	t0=$(($(ms_now) + 3000))
	gen_ttl "$dir/keys.jsonl" k "$n" "$t0" "$span" deadline
	got=$("$LD" --store "sqlite:$db" import "$dir/keys.jsonl" -v)
	expect_eq "keys imported" "$n" "$got"
	start_daemon "$dir/daemon.log" env LIVEDICT_HOOK_CONCURRENCY="$conc" "$LD" --store "sqlite:$db" daemon
	local late=$(($(ms_now) - t0))
	((late < 0)) || log "warning: the daemon started ${late} ms after the first deadline"
	# All deadlines pass at t0+10s; then give delivery up to 5 minutes.
	wait_lines "$out/expired" "$n" $((t0 + span + 300000))
	stop_daemon
	after_daemon "$db" "$dir/daemon.log"
	local st
	st=$(python3 - "$out/expired" "$t0" "$n" "$span" <<'EOF'
import math, statistics, sys
path, t0, n, span = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
want = {"k%d" % (t0 + i * span // n) for i in range(n)}
seen, lat, bad = {}, [], 0
for line in open(path):
    ms, key = line.split()
    if key not in want:
        bad += 1; continue
    seen[key] = seen.get(key, 0) + 1
    lat.append(int(ms) - int(key[1:]))
lat.sort()
pr = lambda p: lat[max(0, math.ceil(p / 100 * len(lat)) - 1)] if lat else -1
dups = sum(c - 1 for c in seen.values())
starts = [int(l.split()[0]) for l in open(path)]
tail = max(starts) - (t0 + (n - 1) * span // n) if starts else -1
print("%.0f %d %d %d %d %d %d %d %d" % (statistics.median(lat) if lat else -1, pr(99), lat[-1] if lat else -1,
      len(lat), len(want) - len(seen), dups, bad, min(lat) if lat else -1, tail))
EOF
)
	local p50 p99 mx cnt missing dups bad mn tail
	read -r p50 p99 mx cnt missing dups bad mn tail <<<"$st"
	local ok=yes
	((cnt == n && missing == 0 && dups == 0 && bad == 0)) || ok=no
	check_target "$p99" "$TARGET_EXPIRE_HOOK_P99_MS"
	[[ "$ok" == yes ]] || { [[ "$ST" == PASS ]] && MISSES=$((MISSES + 1)); ST=MISS; }
	EXPIRE_ST=$ST
	local extra=""
	((HAVE >= n)) || [[ -n "$DAEMON_DIED" ]] || extra="; timed out with $HAVE of $n events"
	add_summary "daemon expire hooks (10k keys over 10 s, hook_concurrency $conc): deadline → hook start" \
		"p50 $p50 ms, p99 $p99 ms, max $mx ms (min $mn) over the $cnt runs seen; missing $missing, duplicates $dups," \
		"unknown $bad (each key once: $ok); last start $tail ms after the last deadline (target p99 ≤ $TARGET_EXPIRE_HOOK_P99_MS ms) $ST$extra$AFTER"
	drop_dir "$dir"
}

# daemon_mass_expiry: 100,000 keys due within one second, 10,000 of them
# with an expire hook.
daemon_mass_expiry() {
	local dir db out nh=10000 nx=90000 sec got
	dir=$(new_dir daemon-mass)
	db="$dir/mass.db" out="$dir/out"
	STATE_DIRS+=("$db.d")
	mkdir -m 700 "$out"
	: >"$out/hkeys"
	"$LD" --store "sqlite:$db" hook add --on expire --key 'h*' --write "$out" \
		-- sh -c 'echo "$LIVEDICT_KEY" >> "$1"' sh "$out/hkeys" >/dev/null
	log "daemon: $((nh + nx)) keys expiring in one second, $nh with an expire hook"
	sec=$((($(ms_now) / 1000 + 4) * 1000)) # the start of a second 3-4 s away
	gen_ttl "$dir/keys.jsonl" h "$nh" "$sec" 1000
	gen_ttl "$dir/keys.jsonl" x "$nx" "$sec" 1000
	got=$("$LD" --store "sqlite:$db" import "$dir/keys.jsonl" -v)
	expect_eq "keys imported" $((nh + nx)) "$got"
	start_daemon "$dir/daemon.log" "$LD" --store "sqlite:$db" daemon
	local late=$(($(ms_now) - sec))
	((late < 0)) || log "warning: the daemon started ${late} ms after the first deadline"
	local end=$((sec + 1000)) left gone_ms="" limit
	limit=$((end + 120000))
	while (($(ms_now) < sec)); do sleep 0.05; done
	while :; do
		left=$(sqlite_count "$db" 'SELECT count(*) FROM entries')
		if ((left == 0)); then
			gone_ms=$(ms_now)
			break
		fi
		(($(ms_now) > limit)) && break
		sleep 0.05
	done
	local have hooks_ms=""
	wait_lines "$out/hkeys" "$nh" $((end + 180000))
	have=$HAVE
	((have >= nh)) && hooks_ms=$(ms_now)
	stop_daemon
	after_daemon "$db" "$dir/daemon.log"
	local uniq dups bad
	uniq=$(sort -u "$out/hkeys" 2>/dev/null | grep -c '^h[0-9]\{7\}$' || true)
	dups=$((have - $(sort -u "$out/hkeys" 2>/dev/null | wc -l)))
	bad=$(grep -vc '^h[0-9]\{7\}$' "$out/hkeys" 2>/dev/null || true)
	local ok=yes reap_s="(not reached: $left left after 120 s)" hook_s="only $have started"
	((uniq == nh && dups == 0 && bad == 0)) || ok=no
	if [[ -n "$gone_ms" ]]; then
		reap_s=$(awk -v v="$((gone_ms - end))" 'BEGIN { printf "%.2f", v / 1000 }')
		check_target "$reap_s" "$TARGET_MASS_REAP_S"
	else
		MISSES=$((MISSES + 1)) ST=MISS
	fi
	local st1=$ST
	[[ -n "$hooks_ms" ]] && hook_s="all started $(awk -v v="$((hooks_ms - end))" 'BEGIN { printf "%.1f s", v / 1000 }') after it"
	[[ "$ok" == yes ]] || MISSES=$((MISSES + 1))
	add_summary "daemon mass expiry (100k keys in one second): all reaped ${reap_s} s after the second ended" \
		"(target ≤ $TARGET_MASS_REAP_S s) $st1; $nh expire hooks: $hook_s;" \
		"distinct keys $uniq, duplicates $dups, unknown $bad (each once: $ok)$AFTER"
	drop_dir "$dir"
}

# daemon_idle: CPU and wakeups of a daemon with nothing due for an hour.
daemon_idle() {
	local dir db n=1000 got
	dir=$(new_dir daemon-idle)
	db="$dir/idle.db"
	STATE_DIRS+=("$db.d")
	gen_ttl "$dir/keys.jsonl" i "$n" $(($(ms_now) + 3600000)) 60000
	got=$("$LD" --store "sqlite:$db" import "$dir/keys.jsonl" -v)
	expect_eq "keys imported" "$n" "$got"
	start_daemon "$dir/daemon.log" "$LD" --store "sqlite:$db" daemon
	sleep 2
	log "daemon idle for ${IDLE_SECS}s"
	local a b
	a=$(proc_cpu "$DAEMON_PID")
	sleep "$IDLE_SECS"
	kill -0 "$DAEMON_PID" 2>/dev/null || die "the idle daemon exited by itself: $(tail -n1 "$dir/daemon.log")"
	b=$(proc_cpu "$DAEMON_PID")
	stop_daemon
	local cpu ctx threads per60 sched
	read -r cpu ctx threads sched < <(awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y); printf "%d %d %d %.1f\n", (y[1] - x[1]) * 1000 / y[4], y[2] + y[3] - x[2] - x[3], y[5], (y[6] - x[6]) / 1e6 }')
	# schedstat counts ns; utime+stime only whole clock ticks (10 ms).
	per60=$(awk -v c="$cpu" -v n="$sched" -v s="$IDLE_SECS" 'BEGIN { if (n > 0) c = n; printf "%.0f", c * 60 / s }')
	check_target "$per60" "$TARGET_IDLE_CPU_MS"
	local extra=""
	[[ "$DAEMON_RC" == 0 ]] || extra="; daemon exit status $DAEMON_RC after SIGTERM (want 0)"
	add_summary "daemon idle (1,000 keys an hour away): ${cpu} ms CPU (utime+stime; on-CPU ${sched} ms by schedstat)" \
		"in ${IDLE_SECS} s (${per60} ms per 60 s, target ≤ $TARGET_IDLE_CPU_MS) $ST; $ctx context switches ($(awk -v c="$ctx" -v s="$IDLE_SECS" 'BEGIN { printf "%.1f", c / s }')/s)" \
		"over $threads threads$extra"
	drop_dir "$dir"
}

# proc_cpu PID: "utime+stime(ticks) voluntary nonvoluntary ticks_per_s
# threads on-cpu-ns", switches and on-CPU time summed over the threads.
proc_cpu() {
	local pid=$1 t vol=0 nv=0 n=0 ns=0 d
	t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	for d in /proc/"$pid"/task/*; do
		vol=$((vol + $(awk '/^voluntary_ctxt_switches/ { print $2 }' "$d/status")))
		nv=$((nv + $(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$d/status")))
		[[ -r "$d/schedstat" ]] && ns=$((ns + $(cut -d' ' -f1 "$d/schedstat")))
		n=$((n + 1))
	done
	echo "$t $vol $nv $(getconf CLK_TCK) $n $ns"
}

# daemon_rss: peak memory of a daemon scheduling 1M keys.
daemon_rss() {
	local dir db n=1000000 soon=5000 got t
	dir=$(new_dir daemon-rss)
	db="$dir/rss.db"
	STATE_DIRS+=("$db.d")
	log "daemon memory: $n keys, $soon of them due in the daemon's first seconds"
	t=$(ms_now)
	gen_ttl "$dir/keys.jsonl" s "$soon" $((t + 10000)) 3000
	gen_ttl "$dir/keys.jsonl" l $((n - soon)) $((t + 60000)) 3540000
	got=$("$LD" --store "sqlite:$db" import "$dir/keys.jsonl" -v)
	expect_eq "keys imported" "$n" "$got"
	rm -f "$dir/keys.jsonl"
	start_daemon "$dir/daemon.log" "$LD" --store "sqlite:$db" daemon --duration 10s
	local hwm=0 rss_max=0 v r
	while kill -0 "$DAEMON_PID" 2>/dev/null; do
		read -r v r < <(awk '/^VmHWM/ { h = $2 } /^VmRSS/ { r = $2 } END { print h + 0, r + 0 }' "/proc/$DAEMON_PID/status" 2>/dev/null || echo "0 0")
		((v > hwm)) && hwm=$v
		((r > rss_max)) && rss_max=$r
		sleep 0.2
	done
	local stop_ms
	stop_ms=$(ms_now)
	DAEMON_RC=0
	wait "$DAEMON_PID" || DAEMON_RC=$?
	untrack "$DAEMON_PID"
	local overdue left
	overdue=$(sqlite_count "$db" "SELECT count(*) FROM entries WHERE expires_at <= $((stop_ms - 1000))")
	left=$(sqlite_count "$db" 'SELECT count(*) FROM entries')
	local mib
	mib=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')
	check_target "$mib" "$TARGET_DAEMON_RSS_MIB"
	local extra=""
	[[ "$DAEMON_RC" == 0 ]] || extra+="; daemon exit status $DAEMON_RC after --duration (want 0)"
	((overdue == 0)) || extra+="; $overdue keys due before it stopped were not reaped"
	add_summary "daemon memory (1M TTL keys, --duration 10s): peak VmHWM $mib MiB" \
		"(VmRSS up to $(awk -v k="$rss_max" 'BEGIN { printf "%.1f", k / 1024 }') MiB) (target ≤ $TARGET_DAEMON_RSS_MIB MiB) $ST;" \
		"$((n - left)) of $soon soon-due keys reaped$extra"
	drop_dir "$dir"
}

# ---------------------------------------------------------------- main

main() {
	local selected=() b known
	if [[ -n "${BENCH_ONLY:-}" ]]; then
		IFS=', ' read -r -a selected <<<"$BENCH_ONLY"
		for b in "${selected[@]}"; do
			known=0
			for k in "${ALL_BENCHES[@]}"; do [[ "$b" == "$k" ]] && known=1; done
			((known)) || die "BENCH_ONLY: unknown section '$b' (have: ${ALL_BENCHES[*]})"
		done
	else
		selected=("${ALL_BENCHES[@]}")
	fi

	install_missing
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/livedict-bench.XXXXXX")
	isolate_env
	build_livedict

	local load_start
	load_start=$(cut -d' ' -f1-3 /proc/loadavg)
	local t0=$SECONDS
	for b in "${selected[@]}"; do
		"bench_$b"
	done

	local load_end
	load_end=$(cut -d' ' -f1-3 /proc/loadavg)
	echo
	echo "==================== livedict benchmark summary ($MODE) ===================="
	echo "livedict: $("$LD" version 2>/dev/null | head -n1 || echo '?')"
	echo "machine: $(nproc) cores; load average $load_start at start, $load_end at end; took $((SECONDS - t0))s"
	echo "medians of hyperfine runs (get/set: $SMALL_RUNS runs, import: $IMPORT_RUNS, expired: $EXPIRED_RUNS)"
	echo
	local line
	for line in "${SUMMARY[@]}"; do echo "$line"; done
	echo
	local noisy=()
	for line in "${NOISE[@]}"; do
		# "section pct command name"
		read -r b pct cmd <<<"$line"
		if awk -v p="$pct" 'BEGIN { exit !(p > 15) }'; then noisy+=("$b/$cmd ±$pct%,"); fi
	done
	if ((${#noisy[@]})) || awk -v l="${load_start%% *}" -v c="$(nproc)" 'BEGIN { exit !(l > c / 2) }'; then
		local spread="${noisy[*]:-}"
		echo "note: timings may be noisy: load average ${load_start%% *} on $(nproc) cores at start${spread:+; stddev above 15% of the mean for ${spread%,}}"
	fi
	if ((MISSES)); then
		echo "$MISSES target(s) missed (informational; exit status stays 0)"
	else
		echo "all targets met"
	fi
}

main "$@"
