#!/bin/sh
# Benchmarks of the scripting primitives (lock, run, wait), side by side in
# one run, on a throw-away SQLite store (or file:DIR with BACKEND=file).
# Needs hyperfine and flock(1). Prints hyperfine's tables and the figures
# the README quotes; there are no pass/fail targets here.
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/livedict" .
ld="$work/livedict"
if [ "${BACKEND:-sqlite}" = file ]; then
	export LIVEDICT_STORE="file:$work/fstore"
else
	export LIVEDICT_STORE="sqlite:$work/s.db"
fi
export LIVEDICT_BUSY_TIMEOUT=120s

# medians FILE: the median of each command and the second's ratio to the
# first (means are meaningless on a shared, loaded machine).
medians() {
	python3 -c 'import json,sys
r=json.load(open(sys.argv[1]))["results"]
for x in r: print("median %.2f ms  %s" % (x["median"]*1000, x["command"].split("/")[-1]))
print("ratio of medians: %.2f" % (r[1]["median"]/r[0]["median"]))' "$1"
}

echo "== run cache hit vs get of the same bytes"
head -c 2000 /dev/urandom | base64 > "$work/bytes"
"$ld" set plain - < "$work/bytes"
"$ld" run --ttl 1h --key hit -- cat "$work/bytes" > /dev/null
hyperfine -N -w 20 -r 300 --export-json "$work/run.json" \
	"$ld get plain" \
	"$ld run --ttl 1h --key hit -- cat $work/bytes"
medians "$work/run.json"

echo "== lock NAME -- true vs flock FILE true"
hyperfine -N -w 20 -r 300 --export-json "$work/lock.json" \
	"flock $work/flockfile true" \
	"$ld lock name -- true"
medians "$work/lock.json"

echo "== wait wake-up after another process's set (median of 40)"
LIVEDICT_BENCH_STORE="$LIVEDICT_STORE" go test -run '^$' -bench BenchmarkWaitWakeup -benchtime 40x . | grep -E 'Benchmark|ms'

echo "== 32 processes x 50 lock --wait 30s -- incr-in-a-file"
echo 0 > "$work/counter"
cat > "$work/incr.sh" <<'SH'
mkdir "$1/held" 2>/dev/null || echo overlap >> "$1/bad"
n=$(cat "$1/counter"); echo $((n+1)) > "$1/counter"
rmdir "$1/held"
SH
start=$(date +%s.%N)
i=0
while [ $i -lt 32 ]; do
	( j=0; while [ $j -lt 50 ]; do "$ld" lock incr --wait 30s -- sh "$work/incr.sh" "$work" || echo "exit $?" >> "$work/bad"; j=$((j+1)); done ) &
	i=$((i+1))
done
wait
end=$(date +%s.%N)
echo "counter: $(cat "$work/counter") (want 1600); overlaps/failures: $(cat "$work/bad" 2>/dev/null | wc -l); $(echo "$end - $start" | bc) s"
cat "$work/bad" 2>/dev/null || true
