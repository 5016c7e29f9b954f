#!/usr/bin/env bash
# What hostile input costs: peak RSS and wall time of the release binary on
# - `route --jobs` with a 10 MB jobs file of `{}`;
# - `diagnose` when the pipeline's jobs page is PAGE_MIB (default 64) MiB of `{}`;
# - `diagnose` when a failed job's trace sends 2 bytes every 10 s for ever
#   (default budgets: --trace-timeout 60s, --max-run-time 10m).
# RUNNERIQ_BIN runs another binary (e.g. an older build, for a comparison).
# Needs GNU time (apt-get install time) and python3. Not part of `cargo test`.
#
#   tests/bench/hostile.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 2; }
bin=${RUNNERIQ_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin=target/release/runneriq
fi
page_mib=${PAGE_MIB:-64}
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

measure() { # label, command...
    local label=$1; shift
    local code=0
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || code=$?
    read -r wall rss < <(tail -n 1 "$work/time") || true
    echo "$label: exit $code, wall ${wall} s, peak RSS $((rss / 1024)) MB"
    echo "    $(tail -n 1 "$work/err" | cut -c1-200)"
}

start_server() { # mode arg
    rm -f "$work/port"
    python3 tests/bench/hostile_gitlab.py "$work/port" "$1" "$2" &
    server_pid=$!
    for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.1; done
}

python3 -c "
n = 10_000_000
open('$work/jobs.json', 'w').write('[' + '{},' * (n // 3 - 1) + '{}]')"
measure "route --jobs (10 MB of {})" \
    "$bin" route --jobs "$work/jobs.json" --fleet tests/fixtures/fleet/fleet.json

diagnose_env=(env -i PATH="$PATH" RUNNERIQ_TOKEN=glpat-bench-0000000000 CI_PROJECT_ID=42
    CI_PIPELINE_ID=1001 CI_DEFAULT_BRANCH=main CI_COMMIT_BRANCH=main)

start_server empty-page "$page_mib"
port=$(cat "$work/port")
measure "diagnose (jobs page of $page_mib MiB of {})" \
    "${diagnose_env[@]}" CI_API_V4_URL="http://127.0.0.1:$port/api/v4" \
    "$bin" diagnose --post-to none
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

start_server dribble 10
port=$(cat "$work/port")
measure "diagnose (one trace: 2 bytes every 10 s, for ever)" \
    "${diagnose_env[@]}" CI_API_V4_URL="http://127.0.0.1:$port/api/v4" \
    timeout 900 "$bin" diagnose --post-to none
grep -m1 "could not be read completely" "$work/out" | sed 's/^/    /' || true
