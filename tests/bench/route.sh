#!/usr/bin/env bash
# Benchmark: `runneriq route` for JOBS waiting jobs over RUNNERS runners (default
# 10,000 × 500), with 5,000 finished jobs of history. The fleet and jobs are
# made by tests/bench/make-route-input.py from the shapes of
# tests/fixtures/fleet (real GitLab API objects). Prints wall time, user
# time and peak RSS. Not part of `cargo test`.
#
#   tests/bench/route.sh [JOBS] [RUNNERS]
#   RUNNERIQ_BIN=/path/to/runneriq tests/bench/route.sh …
#
# Needs GNU time (/usr/bin/time) and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-10000}
runners=${2:-500}
work=${TMPDIR:-/tmp}/runneriq-bench-route
mkdir -p "$work"
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 2; }

# RUNNERIQ_BIN: measure that binary (e.g. the static release build the image
# ships) instead of building target/release/runneriq.
if [ -n "${RUNNERIQ_BIN:-}" ]; then
    bin=$RUNNERIQ_BIN
else
    cargo build --release --quiet
    bin=target/release/runneriq
fi
python3 tests/bench/make-route-input.py "$jobs" "$runners" "$work"

for run in 1 2 3; do
    /usr/bin/time -f "%e %U %M" -o "$work/time" \
        env RUNNERIQ_NOW=1767261600 "$bin" route --jobs "$work/jobs.json" --fleet "$work/fleet.json" \
        --history "$work/history.json" --format json >"$work/out.json"
    read -r wall user rss <"$work/time"
    placed=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); f=d['fleet']; print(f['placed'], f['queued'], f['unplaceable'])" "$work/out.json")
    echo "route: $jobs jobs × $runners runners, run $run: wall ${wall} s, user ${user} s, peak RSS $((rss / 1024)) MB (placed, queued, no runner: $placed)"
done
