#!/usr/bin/env bash
# Benchmark: `runneriq report` over a snapshot of JOBS finished jobs and
# RUNNERS runners (default 200,000 × 300), made by make-report-snapshot.py.
# Prints wall time, user time and peak RSS of three runs. Not part of
# `cargo test`.
#
#   tests/bench/report.sh [JOBS] [RUNNERS]
#   RUNNERIQ_BIN=/path/to/runneriq tests/bench/report.sh …
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-200000}
runners=${2:-300}
work=${TMPDIR:-/tmp}/runneriq-bench-report
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
snap=$work/snapshot-$jobs-$runners.json.gz
[ -f "$snap" ] || python3 tests/bench/make-report-snapshot.py "$jobs" "$runners" "$snap"
echo "snapshot: $(du -h "$snap" | cut -f1)"
for run in 1 2 3; do
    /usr/bin/time -f "%e %U %M" -o "$work/time" \
        "$bin" report --snapshot "$snap" --format json >"$work/out.json"
    read -r wall user rss <"$work/time"
    echo "report: $jobs jobs × $runners runners, run $run: wall ${wall} s, user ${user} s, peak RSS $((rss / 1024)) MB"
done
