#!/usr/bin/env bash
# Benchmark: `runneriq diagnose` of a pipeline with N failed jobs (default 20),
# each with its own 4 MiB runner-format trace of real logs, against a
# GitLab on loopback (tests/bench/hostile_gitlab.py; --post-to none, so
# nothing is written). Prints wall time, CPU time and peak RSS of RUNS runs.
# Not part of `cargo test`.
#
#   tests/bench/diagnose.sh [JOBS] [RUNS]
#   RUNNERIQ_BIN=/path/to/runneriq tests/bench/diagnose.sh …
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-20}
runs=${2:-3}
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 2; }
# RUNNERIQ_BIN: measure that binary (e.g. the static release build the image
# ships) instead of building target/release/runneriq.
if [ -n "${RUNNERIQ_BIN:-}" ]; then
    bin=$RUNNERIQ_BIN
else
    cargo build --release --quiet
    bin=target/release/runneriq
fi
src=../shared/corpus/dev
[ -d "$src" ] || src=tests/fixtures/logs
python3 - "$work/trace" "$jobs" "$src"/*.log <<'PY'
# Distinct traces: the corpus' lines dealt out in order, 4 MiB per trace
# (wrapping around only when the corpus is smaller than JOBS × 4 MiB).
import sys
out, jobs, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
limit = 4 << 20
corpus = [l.rstrip(b"\r") for f in files for l in open(f, "rb").read().split(b"\n")]
pos = 0
for j in range(jobs):
    with open(f"{out}.{j}", "wb") as o:
        body = [b"section_start:1767225607:step_script\r\x1b[0K"]
        size = 0
        while size < limit - 200:
            l = corpus[pos % len(corpus)]
            pos += 1
            body.append(l)
            size += len(l) + 32
        body += [b"section_end:1767225700:step_script\r\x1b[0K", b"\x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m"]
        for i, l in enumerate(body):
            o.write(b"2026-01-01T01:00:%02d.%06dZ 01O " % (i // 1000 % 60, i % 1000000) + l + b"\n")
    print(f"trace {j}: lines {pos - len(body) + 3}..{pos} of the corpus ({len(corpus)} lines)", file=sys.stderr) if j in (0, jobs - 1) else None
PY
python3 tests/bench/hostile_gitlab.py "$work/port" traces "$jobs" "$work/trace" &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
echo "diagnose: $jobs failed jobs × $(($(wc -c <"$work/trace.0") / 1024)) KiB distinct traces, $(nproc) cores"
for run in $(seq "$runs"); do
    env -i PATH="$PATH" RUNNERIQ_TOKEN=glpat-bench-0000000000 CI_PROJECT_ID=42 CI_PIPELINE_ID=1001 \
        CI_API_V4_URL="http://127.0.0.1:$port/api/v4" RUNNERIQ_LLM=off \
        /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$bin" diagnose --post-to none \
        >/dev/null 2>&1 || true
    read -r wall user sys rss < <(tail -n 1 "$work/t")
    echo "run $run: wall ${wall} s, CPU $(python3 -c "print(round($user + $sys, 2))") s, peak RSS $((rss / 1024)) MB"
done
