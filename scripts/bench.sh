#!/usr/bin/env bash
# Benchmarks livedict against the sqlite3 CLI and redis-cli, and checks the
# latency targets.
#
#   scripts/bench.sh                      # everything, full size (several minutes)
#   BENCH_QUICK=1 scripts/bench.sh        # smoke test: every section, small data, few runs
#   BENCH_ONLY=get,set scripts/bench.sh   # only some sections
#   LIVEDICT_BIN=/path/to/livedict ...    # measure that binary instead of building one
#
# Sections: startup (a one-shot command against the floor of its own stack,
# scripts/bench/floor, sqlite3 and redis-cli, by hyperfine and by paired
# interleaved runs), get, set, import, expired (hyperfine: livedict against sqlite3
# and redis-cli), scripting (run, lock and wait against get and flock),
# encrypt (an encrypted bucket against a plain one), redis and redis_import
# (livedict on a Redis store against redis-cli on the same server), hooks,
# daemon, redis_daemons, redisdaemon (the Go benchmarks in
# process_bench_test.go, redis_bench_test.go and redis_daemon_bench_test.go,
# run from a test binary built here; their figures and the targets below
# are checked here). Missing tools (hyperfine, sqlite3,
# redis-server, redis-cli) are installed from Debian packages. Everything
# happens in a temporary directory with a private redis-server on a free
# loopback port; both are removed on exit, Ctrl-C included.
#
# Exit status: 0 when every benchmark ran, even if a target was missed
# (targets are for people, not CI); non-zero when anything failed to run.
#
# Adding a section: write a function bench_NAME that uses the helpers below
# (ensure_redis, ensure_base, hf, hf_median_ms, gobench, metric,
# add_summary, check_target) and add NAME to ALL_BENCHES. Data generation
# and reading hyperfine's JSON are in scripts/bench (Go), not inline.
set -euo pipefail
set -o errtrace # the ERR trap below names the failing command, in functions too

ALL_BENCHES=(startup get set import expired hooks daemon scripting encrypt redis redis_import redis_daemons redisdaemon)

# Targets (see the summary at the end).
TARGET_GET_VS_SQLITE=1.3     # livedict get / sqlite3 SELECT
TARGET_GET_VS_REDIS=0.7      # livedict get / redis-cli GET
TARGET_SET_VS_REDIS=0.9      # livedict set --ttl / redis-cli SET EX
TARGET_IMPORT_VS_REDIS=2.5   # livedict import / redis-cli --pipe
TARGET_EXPIRED_MS=50         # livedict get on a store of 1M expired rows
TARGET_HOOK_RECORD_RATIO=1.15 # set --ttl with one matching hook / with none (delivery held off)
TARGET_HOOK_START_MS=50      # set exits → hook starts, no daemon (median)
TARGET_SANDBOX_ABOVE_BARE_MS=3 # CPU of a sandboxed /bin/true above a bare fork+exec of it (ms)
TARGET_HOOK_RATE=500         # daemon: per-event runs of /bin/true a second (at least)
TARGET_BATCH_P99_MS=100      # daemon, --batch 1000, 10k keys over 10 s: deadline → run start (p99)
TARGET_BATCH_MASS_S=5        # daemon, --batch 1000, 100k keys due in 1 s: all delivered after (s)
TARGET_EXPIRE_HOOK_P99_MS=100 # daemon: key deadline → its expire hook starts (p99)
TARGET_MASS_REAP_S=5         # daemon: 100k keys due in one second, all gone after (s)
TARGET_IDLE_CPU_MS=100       # daemon: CPU per 60 s, idle, 1,000 keys an hour away
TARGET_DAEMON_RSS_MIB=64     # daemon: peak RSS (VmHWM) with 1M TTL keys
TARGET_RUN_VS_GET=1.1        # run cache hit / get of the same bytes
TARGET_LOCK_VS_FLOCK=2.0     # lock NAME -- true / flock FILE true
TARGET_WAIT_WAKE_MS=20       # wait KEY exits after another process's set (median)
TARGET_START_GET_VS_FLOOR=1.05 # startup: livedict get / the floor of its stack (scripts/bench/floor)
TARGET_START_GET_VS_REDIS=1.0  # startup: livedict get / redis-cli GET
TARGET_START_SET_VS_REDIS=0.9  # startup: livedict set --ttl / redis-cli SET EX
TARGET_ENCRYPT_GET=1.15      # get of a 100-byte value, encrypted bucket / plain bucket
TARGET_ENCRYPT_SET=1.15      # set of a 100-byte value, encrypted bucket / plain bucket
TARGET_REDIS_GET=1.2         # livedict get on a Redis store / redis-cli GET
TARGET_REDIS_SET=1.2         # livedict set --ttl on a Redis store / redis-cli SET EX
TARGET_REDIS_IMPORT=1.5      # livedict import into a Redis store / redis-cli --pipe, 1M keys with TTLs
TARGET_REDIS_DAEMONS_REAP_S=5 # 3 daemons on one Redis, 100k keys due in 1 s: none scheduled after (s)
TARGET_REDIS_EXPIRE_HOOK_MS=50 # 3 daemons on one Redis store: deadline → expire hook start (median)
TARGET_REDIS_IDLE_CPU_MS=100 # daemon on a Redis store of 1M TTL keys: CPU per 60 s idle (≈ 0)
TARGET_REDIS_DAEMON_RSS_MIB=64 # daemon on a Redis store of 1M TTL keys: peak RSS (VmHWM)

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
	# A smoke test: every section runs, on small data, in a few minutes.
	MODE="quick"
	BASE_KEYS=100000 # bench_get and bench_set read key0050000, key0060000
	LARGE_KEYS=50000
	SMALL_WARMUP=3 SMALL_RUNS=20
	IMPORT_RUNS=2
	EXPIRED_RUNS=3
	HOOK_RECORD_RUNS=10 HOOK_START_RUNS=10 PICKUP_RUNS=10 SANDBOX_CPU_RUNS=50
	WAIT_RUNS=10 LOCKERS=8 LOCKS_EACH=10
	GO_BENCH_FLAGS=(-livedict.quick) # 2k expire hooks, 20k mass expiry, 10 s idle, 100k keys for RSS
else
	MODE="full"
	BASE_KEYS=100000
	LARGE_KEYS=1000000
	SMALL_WARMUP=30 SMALL_RUNS=300
	IMPORT_RUNS=3
	EXPIRED_RUNS=10
	HOOK_RECORD_RUNS=100 HOOK_START_RUNS=30 PICKUP_RUNS=30 SANDBOX_CPU_RUNS=300
	WAIT_RUNS=40 LOCKERS=32 LOCKS_EACH=50
	GO_BENCH_FLAGS=() # 10k expire hooks, 100k mass expiry, 60 s idle, 1M keys for RSS
fi

log() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- setup

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

install_missing() {
	local -A pkg_for=([hyperfine]=hyperfine [sqlite3]=sqlite3 [redis-server]=redis-server
		[redis-cli]=redis-tools)
	local missing=() c
	for c in hyperfine sqlite3 redis-server redis-cli; do
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
cleanup() {
	local rc=$?
	if [[ -n "$REDIS_PID" ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
		kill "$REDIS_PID" 2>/dev/null || true
		wait "$REDIS_PID" 2>/dev/null || true
	fi
	[[ -n "$TMP" ]] && rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'printf "bench.sh: line %s: failed: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# Milliseconds since the epoch.
ms_now() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }


# Only this script's settings apply: no user config, no LIVEDICT_* from the caller.
isolate_env() {
	local v
	for v in $(compgen -e); do
		[[ "$v" == LIVEDICT_* && "$v" != LIVEDICT_BIN ]] && unset "$v"
	done
	export XDG_CONFIG_HOME="$TMP/xdg-config" XDG_DATA_HOME="$TMP/xdg-data"
	mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
}

# build_livedict: $LD, the binary the hyperfine comparisons measure; $BT,
# the helper in scripts/bench (data files, hyperfine's JSON); $LT, the test
# binary whose Go benchmarks measure hooks and the daemon.
build_livedict() {
	command -v go >/dev/null 2>&1 || die "go is needed to build livedict and the benchmarks"
	[[ -f "$ROOT/go.mod" ]] || die "no go.mod in $ROOT"
	log "building the benchmark helper and the hook/daemon benchmarks"
	(cd "$ROOT" && go build -o "$TMP/bench" ./scripts/bench && go test -c -o "$TMP/livedict.test" .)
	BT="$TMP/bench" LT="$TMP/livedict.test"
	# The floor is built exactly as livedict is, from the project's go.mod.
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$TMP/floor" ./scripts/bench/floor &&
		CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$TMP/redisfloor" ./scripts/bench/redisfloor)
	FLOOR="$TMP/floor" REDISFLOOR="$TMP/redisfloor"
	if [[ -n "${LIVEDICT_BIN:-}" ]]; then
		LD=$(command -v "$LIVEDICT_BIN") || die "LIVEDICT_BIN=$LIVEDICT_BIN is not executable"
		return
	fi
	log "building livedict"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$TMP/livedict" . &&
		CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$TMP/livedict-sandbox" ./pkg/sandbox/livedict-sandbox)
	LD="$TMP/livedict"
}

# gen jsonl|resp|sql N OUT EXP: data files, keys key0000000.. (see scripts/bench).
gen() { "$BT" gen "$@"; }

free_port() { "$BT" freeport; }

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
		local exp_ms=$(($(ms_now) + 86400000))
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
hf_stat() { "$BT" hf "$TMP/$1.json" "$2" "$3"; }
hf_median_ms() { hf_stat "$1" "$2" median; }

# Relative stddev (percent) of each result, kept to judge noise.
NOISE=()
note_noise() {
	local name=$1 line
	while read -r line; do
		NOISE+=("$name $line")
	done < <("$BT" noise "$TMP/$name.json")
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

# The Redis backend against redis-cli on the same server: the one-shot
# path (connect, HELLO, WATCH/read, MULTI/EXEC) against one command.
bench_redis() {
	ensure_redis
	local url="redis://127.0.0.1:$REDIS_PORT?prefix=bench" key=rkey val=rvalue
	"$LD" --store "$url" set "$key" "$val"
	expect_eq "livedict get (redis)" "$val" "$("$LD" --store "$url" get "$key")"
	expect_eq "redis-cli SET" OK "$(rcli SET "$key" "$val")"
	expect_eq "redisfloor GET" "$val" "$("$REDISFLOOR" "127.0.0.1:$REDIS_PORT" "$key")"
	hf redisget -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n livedict "$(q "$LD" --store "$url" get "$key")" \
		-n redis-cli "$(q redis-cli -p "$REDIS_PORT" GET "$key")" \
		-n redisfloor "$(q "$REDISFLOOR" "127.0.0.1:$REDIS_PORT" "$key")"
	hf redisset -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n livedict "$(q "$LD" --store "$url" set "$key" "$val" --ttl 60s)" \
		-n redis-cli "$(q redis-cli -p "$REDIS_PORT" SET "$key" "$val" EX 60)"
	note_noise redisget
	local lg rg fg ls rs g s st1 st2
	lg=$(hf_median_ms redisget 0) rg=$(hf_median_ms redisget 1) fg=$(hf_median_ms redisget 2)
	ls=$(hf_median_ms redisset 0) rs=$(hf_median_ms redisset 1)
	g=$(ratio "$lg" "$rg")
	check_target "$g" "$TARGET_REDIS_GET"; st1=$ST
	s=$(ratio "$ls" "$rs")
	check_target "$s" "$TARGET_REDIS_SET"; st2=$ST
	add_summary "redis: get $(fmt_ms "$lg") vs redis-cli GET $(fmt_ms "$rg") → ${g}× (target ≤ $TARGET_REDIS_GET) $st1" \
		"(the floor of its stack, scripts/bench/redisfloor: $(fmt_ms "$fg"), $(ratio "$lg" "$fg")×);" \
		"set --ttl $(fmt_ms "$ls") vs SET EX $(fmt_ms "$rs") → ${s}× (target ≤ $TARGET_REDIS_SET) $st2"
	# Hyperfine runs each command's rounds in a block, so load that comes
	# and goes lands on one side: its ratios swung 0.84-1.38x between runs
	# of the same build. Paired rounds interleave the commands.
	log "paired interleaved runs: redis get, set --ttl ($SMALL_RUNS rounds)"
	"$BT" paired "$SMALL_RUNS" livedict "$LD" --store "$url" get "$key" \
		-- redis-cli redis-cli -p "$REDIS_PORT" GET "$key" \
		-- redisfloor "$REDISFLOOR" "127.0.0.1:$REDIS_PORT" "$key" >"$TMP/paired-redisget"
	"$BT" paired "$SMALL_RUNS" livedict "$LD" --store "$url" set "$key" "$val" --ttl 60s \
		-- redis-cli redis-cli -p "$REDIS_PORT" SET "$key" "$val" EX 60 >"$TMP/paired-redisset"
	local pg pgf psr
	pg=$(awk '$1 == "redis-cli" { print $3 }' "$TMP/paired-redisget")
	pgf=$(awk '$1 == "redisfloor" { print $3 }' "$TMP/paired-redisget")
	psr=$(awk '$1 == "redis-cli" { print $3 }' "$TMP/paired-redisset")
	check_target "$pg" "$TARGET_REDIS_GET"; st1=$ST
	check_target "$psr" "$TARGET_REDIS_SET"; st2=$ST
	add_summary "redis (paired, median of per-round ratios over $SMALL_RUNS rounds): get ${pg}× redis-cli GET $st1" \
		"(${pgf}× redisfloor), set --ttl ${psr}× redis-cli SET EX $st2"
}

# redis_daemons: three daemons (three "hosts") on one private redis-server
# share a flood of expiries: 100,000 keys due in one second, a tenth with
# an expire hook (--batch 1000). The Go benchmark starts its own server.
bench_redis_daemons() {
	gobench RedisDaemonsMassExpiry 1x
	local reaped hooked
	reaped=$(metric reaped-s) hooked=$(metric hooks-s)
	check_target "$reaped" "$TARGET_REDIS_DAEMONS_REAP_S"
	add_summary "redis daemons (3 hosts, 100k keys due in one second, a tenth hooked, --batch 1000): none scheduled" \
		"${reaped} s after the second ended (target ≤ $TARGET_REDIS_DAEMONS_REAP_S s) $ST; every hook event ran, once, after ${hooked} s"
}

bench_import() {
	ensure_redis
	local n=$LARGE_KEYS label
	label=$(awk -v n="$n" 'BEGIN { if (n % 1000000 == 0) print n / 1000000 "M"; else print n / 1000 "k" }')
	gen_import "$n"
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
	got=$("$LD" --store "sqlite:$db" stats --json | "$BT" json keys keys_with_ttl)
	expect_eq "livedict keys after import" "$n $n" "$got"
	expect_eq "redis DBSIZE after --pipe" "$n" "$(rcli DBSIZE)"
	import_summary import "$TARGET_IMPORT_VS_REDIS" "import $label"
	# Listing the imported keys: livedict keys against sqlite3 reading the
	# same rows in the same order (no target: a figure to watch), and
	# keys' peak RSS, since it holds them until the transaction ends.
	hf keys -N -w 1 -r "$IMPORT_RUNS" \
		-n "livedict keys" "$(q "$LD" --store "sqlite:$db" keys)" \
		-n "sqlite3 SELECT key" "$(q sqlite3 "$db" "SELECT key FROM entries WHERE bucket = 'main' ORDER BY key")"
	note_noise keys
	local kl ks rss=""
	kl=$(hf_median_ms keys 0) ks=$(hf_median_ms keys 1)
	if [[ -x /usr/bin/time ]]; then # GNU time (Debian package time), when there
		rss=" (peak RSS $(($( { /usr/bin/time -f %M "$LD" --store "sqlite:$db" keys >/dev/null; } 2>&1) / 1024)) MiB)"
	fi
	add_summary "keys of $label: livedict $(fmt_ms "$kl")$rss, sqlite3 $(fmt_ms "$ks")" "→ $(ratio "$kl" "$ks")×"
	rm -f "$TMP/big.jsonl" "$TMP/big.resp" "$db"
}

# gen_import N: the same N keys with TTLs as an export for livedict import
# ($TMP/big.jsonl) and as SET commands for redis-cli --pipe ($TMP/big.resp).
gen_import() {
	log "generating $1 keys for import and redis-cli --pipe"
	gen jsonl "$1" "$TMP/big.jsonl" "$(($(ms_now) + 3600000))"
	gen resp "$1" "$TMP/big.resp" 3600
}

# import_summary NAME TARGET LABEL: hyperfine run NAME's livedict import
# (its first command) against redis-cli --pipe (its second), checked
# against TARGET and added to the summary.
import_summary() {
	local l r rr
	l=$(hf_median_ms "$1" 0) r=$(hf_median_ms "$1" 1)
	rr=$(ratio "$l" "$r")
	check_target "$rr" "$2"
	add_summary "$3: livedict $(fmt_ms "$l"), redis-cli --pipe $(fmt_ms "$r")" "→ ${rr}× (target ≤ $2) $ST"
}

# redis_import: the same million keys with TTLs, imported into a Redis
# store and piped by redis-cli into the same server, flushed before each
# run. livedict's import is all or nothing (one MULTI/EXEC) and writes
# each key's value, metadata and deadline; --pipe only SETs.
bench_redis_import() {
	ensure_redis
	local n=$LARGE_KEYS url="redis://127.0.0.1:$REDIS_PORT?prefix=imp"
	gen_import "$n"
	local flush
	flush="$(q redis-cli -p "$REDIS_PORT" FLUSHALL) >/dev/null"
	hf redisimport -w 0 -r "$IMPORT_RUNS" \
		--prepare "$flush" -n "livedict import (redis)" "$(q "$LD" --store "$url" import "$TMP/big.jsonl")" \
		--prepare "$flush" -n "redis-cli --pipe" "$(q redis-cli -p "$REDIS_PORT" --pipe) < $(q "$TMP/big.resp")"
	REDIS_BASE_READY=0 # flushed
	note_noise redisimport
	expect_eq "redis DBSIZE after --pipe" "$n" "$(rcli DBSIZE)"
	"$LD" --store "$url" import "$TMP/big.jsonl"
	expect_eq "livedict keys after a Redis import" "$n $n" \
		"$("$LD" --store "$url" stats --json | "$BT" json keys keys_with_ttl)"
	import_summary redisimport "$TARGET_REDIS_IMPORT" "redis import $n keys"
	rcli FLUSHALL >/dev/null
	rm -f "$TMP/big.jsonl" "$TMP/big.resp"
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
		deadline=$(($(ms_now) + margin * 1000))
		gen jsonl "$n" "$TMP/expired.jsonl" "$deadline"
		rm -f "$db" "$db-journal"
		got=$("$LD" --store "sqlite:$db" import "$TMP/expired.jsonl" -v)
		[[ "$got" == "$n" ]] && break
		log "import wrote $got of $n keys (deadline passed while parsing); retrying with more time"
	done
	expect_eq "keys imported for the expired store" "$n" "$got"
	rm -f "$TMP/expired.jsonl"
	local wait_ms=$((deadline + 1000 - $(ms_now)))
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


# startup: a one-shot command from a cold process, against the floor of its
# own stack (scripts/bench/floor: the same libraries, the same store file,
# one SELECT), the sqlite3 CLI and redis-cli. Two measures: hyperfine
# (medians), and paired interleaved runs (bench paired: each round runs
# every command once in random order; the ratio is the median of the
# per-round ratios, which cancels most of the load drift of a busy machine).
bench_startup() {
	ensure_base
	local key=key0050000 want=value-0050000 skey=key0070000 val=newvalue-0070000
	expect_eq "floor SELECT" "$want" "$("$FLOOR" "$BASE_DB" main "$key")"
	expect_eq "livedict get" "$want" "$("$LD" --store "sqlite:$BASE_DB" get "$key")"
	local sql="INSERT OR REPLACE INTO kv VALUES('$skey','$val',CAST(strftime('%s','now') AS INTEGER)*1000+60000)"
	local get=("$LD" --store "sqlite:$BASE_DB" get "$key")
	local floor=("$FLOOR" "$BASE_DB" main "$key")
	local sget=(sqlite3 "$BASE_SQLITE" "SELECT v FROM kv WHERE k='$key'")
	local rget=(redis-cli -p "$REDIS_PORT" GET "$key")
	local set=("$LD" --store "sqlite:$BASE_DB" set "$skey" "$val" --ttl 60s)
	local sset=(sqlite3 "$BASE_SQLITE" "$sql")
	local rset=(redis-cli -p "$REDIS_PORT" SET "$skey" "$val" EX 60)
	hf startup -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n "livedict get" "$(q "${get[@]}")" -n floor "$(q "${floor[@]}")" \
		-n "sqlite3 SELECT" "$(q "${sget[@]}")" -n "redis-cli GET" "$(q "${rget[@]}")" \
		-n "livedict set --ttl" "$(q "${set[@]}")" -n "sqlite3 INSERT" "$(q "${sset[@]}")" \
		-n "redis-cli SET EX" "$(q "${rset[@]}")"
	note_noise startup
	local g f sg rg s ss rs
	g=$(hf_median_ms startup 0) f=$(hf_median_ms startup 1) sg=$(hf_median_ms startup 2) rg=$(hf_median_ms startup 3)
	s=$(hf_median_ms startup 4) ss=$(hf_median_ms startup 5) rs=$(hf_median_ms startup 6)
	local gf gr sr st1 st2 st3
	gf=$(ratio "$g" "$f") gr=$(ratio "$g" "$rg") sr=$(ratio "$s" "$rs")
	check_target "$gf" "$TARGET_START_GET_VS_FLOOR"; st1=$ST
	check_target "$gr" "$TARGET_START_GET_VS_REDIS"; st2=$ST
	check_target "$sr" "$TARGET_START_SET_VS_REDIS"; st3=$ST
	add_summary "startup (hyperfine medians): get $(fmt_ms "$g"), floor $(fmt_ms "$f"), sqlite3 $(fmt_ms "$sg"), redis-cli GET $(fmt_ms "$rg")" \
		"→ get ${gf}× floor (target ≤ $TARGET_START_GET_VS_FLOOR) $st1, ${gr}× redis-cli (target ≤ $TARGET_START_GET_VS_REDIS) $st2," \
		"$(ratio "$g" "$sg")× sqlite3; set --ttl $(fmt_ms "$s") → ${sr}× redis-cli SET EX $(fmt_ms "$rs")" \
		"(target ≤ $TARGET_START_SET_VS_REDIS) $st3, $(ratio "$s" "$ss")× sqlite3 INSERT"
	# CPU time (user + system, hyperfine's means) moves far less than wall
	# time when other jobs load the machine: informational, no target.
	local -a cpu
	local i
	for i in 0 1 2 3 4 5 6; do
		cpu[i]=$(awk -v u="$(hf_stat startup "$i" user)" -v s="$(hf_stat startup "$i" system)" 'BEGIN { print u + s }')
	done
	add_summary "startup CPU (user+sys, hyperfine means): get $(fmt_ms "${cpu[0]}") → $(ratio "${cpu[0]}" "${cpu[1]}")× floor," \
		"$(ratio "${cpu[0]}" "${cpu[3]}")× redis-cli GET, $(ratio "${cpu[0]}" "${cpu[2]}")× sqlite3;" \
		"set --ttl $(fmt_ms "${cpu[4]}") → $(ratio "${cpu[4]}" "${cpu[6]}")× redis-cli SET EX (informational)"

	log "paired interleaved runs: get ($SMALL_RUNS rounds)"
	"$BT" paired "$SMALL_RUNS" get "${get[@]}" -- floor "${floor[@]}" -- sqlite3 "${sget[@]}" \
		-- redis-cli "${rget[@]}" >"$TMP/paired-get"
	log "paired interleaved runs: set --ttl ($SMALL_RUNS rounds)"
	"$BT" paired "$SMALL_RUNS" set "${set[@]}" -- sqlite3 "${sset[@]}" -- redis-cli "${rset[@]}" >"$TMP/paired-set"
	local pf pr ps psr
	pf=$(awk '$1 == "floor" { print $3 }' "$TMP/paired-get") pr=$(awk '$1 == "redis-cli" { print $3 }' "$TMP/paired-get")
	ps=$(awk '$1 == "sqlite3" { print $3 }' "$TMP/paired-get") psr=$(awk '$1 == "redis-cli" { print $3 }' "$TMP/paired-set")
	check_target "$pf" "$TARGET_START_GET_VS_FLOOR"; st1=$ST
	check_target "$pr" "$TARGET_START_GET_VS_REDIS"; st2=$ST
	check_target "$psr" "$TARGET_START_SET_VS_REDIS"; st3=$ST
	add_summary "startup (paired, median of per-round ratios over $SMALL_RUNS rounds): get ${pf}× floor $st1," \
		"${pr}× redis-cli GET $st2, ${ps}× sqlite3; set --ttl ${psr}× redis-cli SET EX $st3," \
		"$(awk '$1 == "sqlite3" { print $3 }' "$TMP/paired-set")× sqlite3 INSERT"
}

# ---------------------------------------------------------------- Go benchmarks

# gobench NAME TIMES: runs BenchmarkNAME (process_bench_test.go) from the
# test binary, -benchtime TIMES (e.g. 30x), and sets GB_LINE to its result
# line. Its own output goes to stderr as it runs.
gobench() {
	local name=$1 times=$2
	log "go benchmark $name ($times${GO_BENCH_FLAGS[*]:+, ${GO_BENCH_FLAGS[*]}})"
	(cd "$ROOT" && "$LT" -test.run '^$' -test.bench "^Benchmark$name\$" -test.benchtime "$times" \
		-test.timeout 30m "${GO_BENCH_FLAGS[@]}") >"$TMP/gobench.out" 2>&1 || {
		cat "$TMP/gobench.out" >&2
		die "go benchmark $name failed"
	}
	cat "$TMP/gobench.out" >&2
	GB_LINE=$(grep "^Benchmark$name" "$TMP/gobench.out" | tail -n1 || true)
	[[ -n "$GB_LINE" ]] || die "go benchmark $name printed no result"
}

# metric UNIT: the value GB_LINE reports in UNIT (b.ReportMetric's unit).
metric() {
	local v
	v=$(awk -v u="$1" '{ for (i = 3; i <= NF; i++) if ($i == u) { print $(i - 1); exit } }' <<<"$GB_LINE")
	[[ -n "$v" ]] || die "no $1 in: $GB_LINE"
	echo "$v"
}

# ---------------------------------------------------------------- encrypt

# encrypt: what encryption at rest costs one get and one set of a 100-byte
# value (an age X25519 unwrap of the bucket's data key, then
# XChaCha20-Poly1305), against the same command on a plain bucket of the
# same store.
bench_encrypt() {
	local db="$TMP/encrypt.db" val
	val=$(printf 'v%.0s' {1..100})
	"$LD" --store "sqlite:$db" bucket policy sec --encrypt
	"$LD" --store "sqlite:$db" -b sec set k "$val"
	"$LD" --store "sqlite:$db" -b plain set k "$val"
	expect_eq "livedict get (encrypted)" "$val" "$("$LD" --store "sqlite:$db" -b sec get k)"
	hf encrypt_get -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n encrypted "$(q "$LD" --store "sqlite:$db" -b sec get k)" \
		-n plain "$(q "$LD" --store "sqlite:$db" -b plain get k)"
	note_noise encrypt_get
	hf encrypt_set -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n encrypted "$(q "$LD" --store "sqlite:$db" -b sec set k "$val")" \
		-n plain "$(q "$LD" --store "sqlite:$db" -b plain set k "$val")"
	note_noise encrypt_set
	local ge gp se sp rg rs st1 st2
	ge=$(hf_median_ms encrypt_get 0) gp=$(hf_median_ms encrypt_get 1)
	se=$(hf_median_ms encrypt_set 0) sp=$(hf_median_ms encrypt_set 1)
	rg=$(ratio "$ge" "$gp") rs=$(ratio "$se" "$sp")
	check_target "$rg" "$TARGET_ENCRYPT_GET"; st1=$ST
	check_target "$rs" "$TARGET_ENCRYPT_SET"; st2=$ST
	add_summary "encrypt: get $(fmt_ms "$ge") vs $(fmt_ms "$gp") plain → ${rg}× (target ≤ $TARGET_ENCRYPT_GET) $st1," \
		"set $(fmt_ms "$se") vs $(fmt_ms "$sp") plain → ${rs}× (target ≤ $TARGET_ENCRYPT_SET) $st2"
}

# ---------------------------------------------------------------- hooks

# hooks: what recording an event costs a writer, and how soon a hook starts
# after the command that caused it, with no daemon.
bench_hooks() {
	gobench HookRecord "${HOOK_RECORD_RUNS}x"
	local u h r
	u=$(metric plain-p50-ms) h=$(metric hooked-p50-ms) r=$(metric ratio)
	check_target "$r" "$TARGET_HOOK_RECORD_RATIO"
	add_summary "hooks record: set --ttl 1h, no hooks $(fmt_ms "$u"), one matching hook $(fmt_ms "$h")" \
		"(delivery held off) → ${r}× (target ≤ $TARGET_HOOK_RECORD_RATIO) $ST; medians of $HOOK_RECORD_RUNS runs"

	gobench HookStart "${HOOK_START_RUNS}x"
	local p50 p90 mx
	p50=$(metric p50-ms) p90=$(metric p90-ms) mx=$(metric max-ms)
	check_target "$p50" "$TARGET_HOOK_START_MS"
	add_summary "hooks start: set exit → hook start (detached dispatcher) median $p50 ms, p90 $p90 ms," \
		"max $mx ms over $HOOK_START_RUNS runs (target median ≤ $TARGET_HOOK_START_MS ms) $ST"

	# Throughput (issue 12). CPU, not wall: rusage of the children.
	gobench SandboxCPU "${SANDBOX_CPU_RUNS}x"
	local above above_helper above_ld starter
	gbmetric() { awk -v b="^BenchmarkSandboxCPU/$1" -v m="$2" '$0 ~ b { for (i = 1; i < NF; i++) if ($(i+1) == m) print $i }' "$TMP/gobench.out"; }
	above=$(gbmetric direct above-bare-ms)
	above_helper=$(gbmetric helper above-bare-ms)
	above_ld=$(gbmetric livedict above-bare-ms)
	# What each run costs the process that starts it (livedict's side:
	# pipes, the spawner's socket, supervision).
	starter=$(gbmetric direct starter-cpu-ms)
	check_target "$above" "$TARGET_SANDBOX_ABOVE_BARE_MS"
	add_summary "hooks sandbox CPU: /bin/true sandboxed, started by the spawner itself, $above ms above a bare fork+exec" \
		"(through livedict-sandbox as its init: $above_helper ms; livedict re-executed as that init: $above_ld ms;" \
		"the starter's own CPU $starter ms a run; target ≤ $TARGET_SANDBOX_ABOVE_BARE_MS ms) $ST; load $(cut -d' ' -f1 /proc/loadavg)"

	gobench DaemonHookRate 1x
	local rate bare
	rate=$(metric runs/s)
	# The ceiling: plain fork+exec of /bin/true, as many at once.
	gobench BareExecRate 1x
	bare=$(metric runs/s)
	# At least TARGET: compare the other way round.
	if awk -v a="$rate" -v b="$TARGET_HOOK_RATE" 'BEGIN { exit !(a >= b) }'; then ST=PASS; else ST=MISS; MISSES=$((MISSES + 1)); fi
	add_summary "hooks rate: daemon, one event per run of /bin/true: $rate runs/s (target ≥ $TARGET_HOOK_RATE) $ST;" \
		"bare fork+exec of /bin/true from Go, 4 at once: $bare runs/s; load $(cut -d' ' -f1 /proc/loadavg)"

	gobench DaemonBatchExpire 1x
	local p99
	p50=$(metric p50-ms) p99=$(metric p99-ms) mx=$(metric max-ms)
	check_target "$p99" "$TARGET_BATCH_P99_MS"
	add_summary "hooks batch: --batch 1000, keys expiring evenly over 10 s: deadline → run start" \
		"p50 $p50 ms, p99 $p99 ms, max $mx ms, each event once (target p99 ≤ $TARGET_BATCH_P99_MS ms) $ST;" \
		"load $(cut -d' ' -f1 /proc/loadavg)"

	gobench DaemonBatchMass 1x
	local del
	del=$(metric delivered-s)
	check_target "$del" "$TARGET_BATCH_MASS_S"
	add_summary "hooks batch mass: --batch 1000, keys due in one second: all delivered ${del} s after," \
		"each once (target ≤ $TARGET_BATCH_MASS_S s) $ST; load $(cut -d' ' -f1 /proc/loadavg)"
}

# ---------------------------------------------------------------- daemon

# daemon: expire-hook latency (one at a time, and a burst), a mass expiry,
# idle CPU and peak memory. Sizes are in process_bench_test.go; quick mode
# makes them smaller, and then the targets (set for the full sizes) only
# say which way things go.
bench_daemon() {
	local p50 p99 mx tail
	gobench DaemonPickup "${PICKUP_RUNS}x"
	p50=$(metric p50-ms) p99=$(metric p99-ms) mx=$(metric max-ms)
	check_target "$p99" "$TARGET_EXPIRE_HOOK_P99_MS"
	add_summary "daemon pickup (keys set by other processes, one at a time): deadline → expire hook start" \
		"median $p50 ms, p99 $p99 ms, max $mx ms over $PICKUP_RUNS keys (target p99 ≤ $TARGET_EXPIRE_HOOK_P99_MS ms) $ST"

	gobench DaemonExpireHooks 1x
	p50=$(metric p50-ms) p99=$(metric p99-ms) mx=$(metric max-ms) tail=$(metric all-started-ms)
	check_target "$p99" "$TARGET_EXPIRE_HOOK_P99_MS"
	add_summary "daemon expire hooks (a burst, one key due per ms, each hook once): deadline → hook start" \
		"p50 $p50 ms, p99 $p99 ms, max $mx ms; last start $tail ms after the last deadline" \
		"(target p99 ≤ $TARGET_EXPIRE_HOOK_P99_MS ms) $ST"

	gobench DaemonMassExpiry 1x
	local reaped hooked
	reaped=$(metric reaped-s) hooked=$(metric hooks-s)
	check_target "$reaped" "$TARGET_MASS_REAP_S"
	add_summary "daemon mass expiry (keys due in one second, a tenth with an expire hook): all reaped" \
		"${reaped} s after the second ended (target ≤ $TARGET_MASS_REAP_S s) $ST; every hook started after ${hooked} s"

	gobench DaemonIdle 1x
	local cpu sw
	cpu=$(metric cpu-ms/60s) sw=$(metric ctxsw/s)
	check_target "$cpu" "$TARGET_IDLE_CPU_MS"
	add_summary "daemon idle (1,000 keys an hour away): $cpu ms CPU per 60 s (on-CPU, schedstat)" \
		"(target ≤ $TARGET_IDLE_CPU_MS) $ST; $sw context switches/s"

	gobench DaemonRSS 1x
	local mib
	mib=$(metric peak-RSS-MiB)
	check_target "$mib" "$TARGET_DAEMON_RSS_MIB"
	add_summary "daemon memory (TTL keys, daemon --duration): peak RSS (ru_maxrss) $mib MiB" \
		"(target ≤ $TARGET_DAEMON_RSS_MIB MiB at 1M keys) $ST"
}

# ---------------------------------------------------------------- redisdaemon

# redisdaemon: daemons on a Redis store, on this script's redis-server (Go
# benchmarks in redis_daemon_bench_test.go, each on a key prefix of its
# own): three daemons ("hosts") sharing keys that expire one at a time,
# 300 ms apart, each with an expire hook; and one daemon idle on a store of
# 1M TTL keys (quick: 100k keys, 10 s), its CPU from /proc/PID/stat and
# its peak RSS (VmHWM).
bench_redisdaemon() {
	ensure_redis
	local url="redis://127.0.0.1:$REDIS_PORT" p50 p90 mx
	LIVEDICT_TEST_REDIS=$url gobench RedisDaemonExpire 1x
	p50=$(metric p50-ms) p90=$(metric p90-ms) mx=$(metric max-ms)
	check_target "$p50" "$TARGET_REDIS_EXPIRE_HOOK_MS"
	add_summary "redis daemons (3 on one server, keys expiring 300 ms apart): deadline → expire hook start" \
		"median $p50 ms, p90 $p90 ms, max $mx ms (target median ≤ $TARGET_REDIS_EXPIRE_HOOK_MS ms) $ST;" \
		"deadline → reap (the event's time) median $(metric reap-p50-ms) ms, p90 $(metric reap-p90-ms) ms;" \
		"runs beyond one per key: $(metric dup-runs) (of them, expiries recorded twice: $(metric dup-events))"

	LIVEDICT_TEST_REDIS=$url gobench RedisDaemonIdle 1x
	local cpu scpu mib st1
	cpu=$(metric cpu-ms/60s) scpu=$(metric start-cpu-ms) mib=$(metric VmHWM-MiB)
	check_target "$cpu" "$TARGET_REDIS_IDLE_CPU_MS"; st1=$ST
	check_target "$mib" "$TARGET_REDIS_DAEMON_RSS_MIB"
	add_summary "redis daemon idle ($([[ $MODE == full ]] && echo 1M || echo 100k) TTL keys hours away): $cpu ms CPU per 60 s" \
		"(/proc/PID/stat; target ≤ $TARGET_REDIS_IDLE_CPU_MS) $st1; $scpu ms CPU to start;" \
		"peak RSS (VmHWM) $mib MiB (target ≤ $TARGET_REDIS_DAEMON_RSS_MIB MiB at 1M keys) $ST"
}

# ---------------------------------------------------------------- scripting

# scripting: lock, run and wait against the tools they replace, and the
# lock's correctness under contention (every increment counted, never two
# holders at once).
bench_scripting() {
	local st="sqlite:$TMP/scripting.db" bytes="$TMP/bytes"
	head -c 2000 /dev/urandom | base64 >"$bytes"
	"$LD" --store "$st" set plain - <"$bytes"
	"$LD" --store "$st" run --ttl 1h --key hit -- cat "$bytes" >/dev/null
	expect_eq "run cache hit" "$(cat "$bytes")" "$("$LD" --store "$st" run --ttl 1h --key hit -- cat "$bytes")"
	hf run -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n get "$(q "$LD" --store "$st" get plain)" \
		-n run "$(q "$LD" --store "$st" run --ttl 1h --key hit -- cat "$bytes")"
	note_noise run
	local g r rr
	g=$(hf_median_ms run 0) r=$(hf_median_ms run 1) rr=$(ratio "$r" "$g")
	check_target "$rr" "$TARGET_RUN_VS_GET"
	add_summary "run cache hit $(fmt_ms "$r") vs get $(fmt_ms "$g") → ${rr}× (target ≤ $TARGET_RUN_VS_GET) $ST"

	# Beside flock: livedict version, the binary's start-up alone (no
	# store opened), and the floor of a lease on livedict's stack
	# (scripts/bench/lockfloor: one write transaction, fork/exec, one
	# more; linking cobra, viper, lipgloss, shlex and modernc.org/sqlite,
	# or with -tags bare modernc.org/sqlite alone), built as livedict is.
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$TMP/lockfloor" ./scripts/bench/lockfloor &&
		CGO_ENABLED=0 go build -tags bare -trimpath -ldflags='-s -w' -o "$TMP/lockfloor-bare" ./scripts/bench/lockfloor)
	local lfdb=${st#sqlite:}
	hf lock -N -w "$SMALL_WARMUP" -r "$SMALL_RUNS" \
		-n flock "$(q flock "$TMP/flockfile" true)" \
		-n lock "$(q "$LD" --store "$st" lock name -- true)" \
		-n "livedict version" "$(q "$LD" version)" \
		-n lockfloor "$(q "$TMP/lockfloor" "$lfdb" name true)" \
		-n lockfloor-bare "$(q "$TMP/lockfloor-bare" "$lfdb" name true)"
	note_noise lock
	local f l lr v lf lb
	f=$(hf_median_ms lock 0) l=$(hf_median_ms lock 1) v=$(hf_median_ms lock 2) lr=$(ratio "$l" "$f")
	lf=$(hf_median_ms lock 3) lb=$(hf_median_ms lock 4)
	check_target "$lr" "$TARGET_LOCK_VS_FLOCK"
	add_summary "lock NAME -- true $(fmt_ms "$l") vs flock FILE true $(fmt_ms "$f") → ${lr}× (target ≤ $TARGET_LOCK_VS_FLOCK) $ST;" \
		"livedict version $(fmt_ms "$v") = $(ratio "$v" "$f")× flock; lock floor $(fmt_ms "$lf") = $(ratio "$lf" "$f")× flock," \
		"sqlite-only lock floor $(fmt_ms "$lb") = $(ratio "$lb" "$f")× flock"
	log "paired interleaved runs: lock, flock, version, lock floors ($SMALL_RUNS rounds)"
	"$BT" paired "$SMALL_RUNS" -sep :: lock "$LD" --store "$st" lock name -- true :: flock flock "$TMP/flockfile" true \
		:: version "$LD" version :: lockfloor "$TMP/lockfloor" "$lfdb" name true \
		:: bare "$TMP/lockfloor-bare" "$lfdb" name true >"$TMP/paired-lock"
	local pl pv pf pb
	pl=$(awk '$1 == "flock" { print $3 }' "$TMP/paired-lock") pv=$(awk '$1 == "version" { print $3 }' "$TMP/paired-lock")
	pf=$(awk '$1 == "lockfloor" { print $3 }' "$TMP/paired-lock") pb=$(awk '$1 == "bare" { print $3 }' "$TMP/paired-lock")
	check_target "$pl" "$TARGET_LOCK_VS_FLOCK"
	add_summary "lock (paired, median of per-round ratios over $SMALL_RUNS rounds): ${pl}× flock $ST," \
		"${pv}× livedict version, ${pf}× its lock floor, ${pb}× the sqlite-only lock floor"

	LIVEDICT_BENCH_STORE="$st" gobench WaitWakeup "${WAIT_RUNS}x"
	local w
	w=$(metric median-ms)
	check_target "$w" "$TARGET_WAIT_WAKE_MS"
	add_summary "wait KEY wakes after another process's set: median $w ms, p90 $(metric p90-ms) ms (target ≤ $TARGET_WAIT_WAKE_MS ms) $ST"

	log "$LOCKERS processes x $LOCKS_EACH lock --wait 30s -- increment a file"
	echo 0 >"$TMP/counter"
	cat >"$TMP/incr.sh" <<'SH'
mkdir "$1/held" 2>/dev/null || echo overlap >>"$1/bad"
n=$(cat "$1/counter"); echo $((n + 1)) >"$1/counter"
rmdir "$1/held"
SH
	local t0=$SECONDS i j
	for ((i = 0; i < LOCKERS; i++)); do
		for ((j = 0; j < LOCKS_EACH; j++)); do
			"$LD" --store "$st" lock incr --wait 30s -- sh "$TMP/incr.sh" "$TMP" || echo "exit $?" >>"$TMP/bad"
		done &
	done
	wait
	local want=$((LOCKERS * LOCKS_EACH)) got bad=0
	got=$(cat "$TMP/counter")
	[[ -f "$TMP/bad" ]] && bad=$(wc -l <"$TMP/bad")
	expect_eq "$LOCKERS x $LOCKS_EACH locked increments (overlaps or failures: $bad)" "$want 0" "$got $bad"
	add_summary "$LOCKERS x $LOCKS_EACH lock --wait increments: $got of $want, no overlap, $((SECONDS - t0)) s"
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
