#!/usr/bin/env bash
# Runs every test livedict has, on a fresh machine as on a developer's:
# formatting and vet, the unit and conformance suites with the race
# detector, the end-to-end (testscript), many-process and kill -9 tests, and
# a short run of every fuzz target. Needs Go; installs the sqlite3 CLI (some
# scripts hold a store's lock with it) when it is missing and apt-get can.
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

FUZZTIME=${FUZZTIME:-8s}

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race (packages)"
go test -race -count=1 ./pkg/... ./cmd/...

# The end-to-end suite runs thousands of real livedict processes (scripts,
# 32 x 50 concurrent incr, kill -9). A race-instrumented binary is several
# times slower to start and has no in-process concurrency to check there,
# so these run plain; the packages above carry the race detector.
echo "== go test (command line, real processes)"
go test -count=1 -timeout 15m .

echo "== fuzz (${FUZZTIME} each)"
for target in $(grep -rho --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' pkg cmd | sed 's/^func //' | sort -u); do
  pkg=$(dirname "$(grep -rl --include='*_test.go' "^func $target(" pkg cmd | head -n1)")
  echo "-- $target ($pkg)"
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "./$pkg" >/tmp/livedict-fuzz.log 2>&1 || {
    cat /tmp/livedict-fuzz.log >&2
    exit 1
  }
done

echo "== all tests passed"
