#!/usr/bin/env bash
# Benchmarks livedict against the sqlite3 CLI and redis-cli, and checks the
# latency targets.
#
#   scripts/bench.sh                      # everything, full size (several minutes)
#   BENCH_QUICK=1 scripts/bench.sh        # fewer runs, 100k keys for the big cases
#   BENCH_ONLY=get,set scripts/bench.sh   # only some sections
#   LIVEDICT_BIN=/path/to/livedict ...    # measure that binary instead of building one
#
# Sections: get, set, import, expired. Missing tools (hyperfine, sqlite3,
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

ALL_BENCHES=(get set import expired)

# Targets (see the summary at the end).
TARGET_GET_VS_SQLITE=1.3     # livedict get / sqlite3 SELECT
TARGET_GET_VS_REDIS=0.7      # livedict get / redis-cli GET
TARGET_SET_VS_REDIS=0.9      # livedict set --ttl / redis-cli SET EX
TARGET_IMPORT_VS_REDIS=2.5   # livedict import / redis-cli --pipe
TARGET_EXPIRED_MS=50         # livedict get on a store of 1M expired rows

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
	MODE="quick"
	BASE_KEYS=100000
	LARGE_KEYS=100000
	SMALL_WARMUP=3 SMALL_RUNS=30
	IMPORT_RUNS=2
	EXPIRED_RUNS=3
else
	MODE="full"
	BASE_KEYS=100000
	LARGE_KEYS=1000000
	SMALL_WARMUP=30 SMALL_RUNS=300
	IMPORT_RUNS=3
	EXPIRED_RUNS=10
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

now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

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
