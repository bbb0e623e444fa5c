#!/usr/bin/env bash
# Runs every test livedict has, on a fresh machine as on a developer's:
# formatting, go.mod tidiness and vet, the unit and conformance suites with
# the race detector, the end-to-end (testscript), many-process and kill -9
# tests, and a short run of every fuzz target. Needs Go; installs the sqlite3
# CLI (some scripts hold a store's lock with it) and redis-server when they
# are missing and apt-get can, and starts a redis-server of its own.
#
#   scripts/test.sh              # everything (about 5 minutes on 2 cores)
#   FUZZTIME=30s scripts/test.sh # fuzz each target longer (default 4s)
#
# Where the time goes: the end-to-end suite is about 6 minutes of real
# processes, every script on SQLite and again on Redis, much of it waiting
# (on deadlines, hooks, leases, each other), so it runs in the background,
# in two halves at once, while the package tests and the fuzz targets use
# the CPU. Each package with fuzz targets is built once,
# instrumented, and its targets run from that binary; their seed corpora
# also run as ordinary tests in the package suites.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v sqlite3 >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "== installing sqlite3 (for the busy-store and reap scripts)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null
  else
    echo "note: sqlite3 not found; the scripts that need it will skip" >&2
  fi
fi

if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "== installing redis-server (the Redis backend's tests need a real one)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
  fi
fi

FUZZTIME=${FUZZTIME:-4s}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/livedict-test.XXXXXX")
e2e_pids=()
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  # Each half of the end-to-end suite runs in a session of its own: stop
  # all of it.
  for pid in "${e2e_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One redis-server for every package's Redis tests (each uses its own key
# prefix), on a free loopback port, persistence off. The tests fail, not
# skip, without one.
if [ -z "${LIVEDICT_TEST_REDIS:-}" ] && command -v redis-server >/dev/null 2>&1; then
  mkdir "$tmp/redis"
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp/redis" --save '' --appendonly no \
      --daemonize no --logfile "$tmp/redis/log" &
    redis_pid=$!
    for _ in $(seq 50); do
      if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then break 2; fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  done
  if [ -z "$redis_pid" ]; then
    echo "could not start redis-server:" >&2
    cat "$tmp/redis/log" >&2 || true
    exit 1
  fi
  export LIVEDICT_TEST_REDIS="redis://127.0.0.1:$port"
  echo "== redis-server on 127.0.0.1:$port"
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi

echo "== go mod tidy -diff"
if ! go mod tidy -diff; then
  echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result" >&2
  exit 1
fi

echo "== go vet"
go vet ./...

# The end-to-end suite runs thousands of real livedict processes (scripts,
# 32 concurrent incr, kill -9, daemons). A race-instrumented binary is
# several times slower to start and has no in-process concurrency to check
# there, so these run plain; the packages carry the race detector. It runs
# as two processes at once: the testscripts (busy starting processes) and
# the real-process tests (one at a time, mostly waiting on deadlines,
# leases and each other), which in one process took 7-9 minutes end to end.
echo "== go test (command line, real processes) started in the background"
go test -count=1 -run '^$' . >/dev/null # build the test binary once, for both
setsid go test -count=1 -timeout 30m -run '^TestScripts' . >"$tmp/e2e-scripts.log" 2>&1 &
e2e_pids+=($!)
setsid go test -count=1 -timeout 30m -skip '^TestScripts' . >"$tmp/e2e-procs.log" 2>&1 &
e2e_pids+=($!)

echo "== go test -race (packages)"
go test -race -count=1 ./pkg/... ./cmd/...

echo "== fuzz (${FUZZTIME} each)"
gocache=$(go env GOCACHE)
for pkg in $(grep -rl --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*(' pkg cmd | xargs -n1 dirname | sort -u); do
  bin="$tmp/$(echo "$pkg" | tr / _).fuzz.test"
  go test -c -fuzz=. -o "$bin" "./$pkg"
  importpath=$(go list "./$pkg")
  for target in $(grep -ho --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | sed 's/^func //' | sort -u); do
    echo "-- $target ($pkg)"
    # As 'go test -fuzz' runs it: in the package folder (a failing input is
    # written to its testdata/fuzz), with the shared corpus cache. One worker:
    # the end-to-end suite still runs, and its many-process tests need the
    # other core more than a smoke run of fuzzing does.
    if ! (cd "$pkg" && "$bin" -test.run='^$' -test.fuzz="^${target}\$" -test.fuzztime="$FUZZTIME" \
      -test.fuzzcachedir="$gocache/fuzz/$importpath" -test.parallel=1 -test.timeout=10m) >"$tmp/fuzz.log" 2>&1; then
      # Go's fuzzing coordinator sometimes reports its own time limit,
      # "context deadline exceeded", when a worker on a loaded machine is
      # slow to stop: no input failed (none was written), so it is no
      # finding. Anything else is.
      if grep -q 'context deadline exceeded' "$tmp/fuzz.log" && ! grep -q 'Failing input written\|panic:' "$tmp/fuzz.log"; then
        echo "   (the fuzzer overran its ${FUZZTIME} on a loaded machine; no failing input)"
        continue
      fi
      cat "$tmp/fuzz.log" >&2
      exit 1
    fi
  done
done

echo "== go test (command line, real processes)"
e2e_rc=0
for pid in "${e2e_pids[@]}"; do
  wait "$pid" || e2e_rc=$?
done
e2e_pids=()
echo "-- testscripts"
cat "$tmp/e2e-scripts.log"
echo "-- real-process tests"
cat "$tmp/e2e-procs.log"
if [ "$e2e_rc" != 0 ]; then
  exit "$e2e_rc"
fi

echo "== all tests passed"
