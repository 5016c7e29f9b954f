#!/usr/bin/env bash
# Benchmark: `runneriq classify` the way users run it — distinct real logs,
# cold processes — next to ripgrep on the same files with the same patterns,
# and next to ripgrep with a plain keyword set (the practical floor).
# Not part of `cargo test`. Prints:
#
#   1. the corpus (every log once) in one process: MB/s per core (user time);
#   2. one 4 MiB runner-format trace (gitlab-runner 18.7 timestamps and
#      sections around distinct real logs) in a fresh process;
#   3. a 2-line log in a fresh process (start-up: the catalog is built);
#
# each the best and the median of RUNS runs (default 5).
#
#   tests/bench/classify.sh [RUNS]
#   RUNNERIQ_BIN=/path/to/runneriq tests/bench/classify.sh [RUNS]
#
# Logs come from ../shared/corpus/dev when present, else tests/fixtures/logs.
# Needs ripgrep (`apt-get install ripgrep`) and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v rg >/dev/null || { echo "ripgrep (rg) is needed: apt-get install ripgrep" >&2; exit 2; }

# RUNNERIQ_BIN: measure that binary (e.g. the static release build the
# image ships) instead of building target/release/runneriq.
if [ -n "${RUNNERIQ_BIN:-}" ]; then
    bin=$RUNNERIQ_BIN
else
    cargo build --release --quiet
    bin=target/release/runneriq
fi

src=../shared/corpus/dev
[ -d "$src" ] || src=tests/fixtures/logs
logs=("$src"/*.log)
bytes=$(cat "${logs[@]}" | wc -c)

# The catalog's patterns for ripgrep: each rule's regex in its own group (an
# inline (?i) must not leak into the next alternative), non-ASCII literals as
# byte escapes, and --no-unicode like the classifier (bytes, ASCII classes).
"$bin" classify --print-rules | python3 -c '
import re, sys
out = []
for line in sys.stdin:
    m = re.match(r"^    pattern: '"'"'(.*)'"'"'\s*$", line)
    if m:
        p = m.group(1).replace("'"''"'", "'"'"'")
        p = "".join(c if ord(c) < 128 else "".join("\\x%02X" % b for b in c.encode()) for c in p)
        out.append("(?:" + p + ")")
print("\n".join(out))
' >"$work/patterns.txt"
printf '%s\n' '(?i)error|fail|fatal|exception|denied|not found|killed|timed? ?out' >"$work/keywords.txt"
n=$(wc -l <"$work/patterns.txt")

# A 4 MiB trace as gitlab-runner 18.7 writes it: every line prefixed with a
# timestamp and stream, the script in a step_script section, distinct real
# logs (never one log repeated: that would measure a warm cache).
python3 - "$work/trace.log" "${logs[@]}" <<'EOF'
import sys
out, files = sys.argv[1], sys.argv[2:]
limit = 4 << 20
lines = [b"section_start:1767225607:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting \"step_script\" stage of the job script\x1b[0;m"]
size = 0
for f in files:
    for l in open(f, "rb").read().split(b"\n"):
        lines.append(l.rstrip(b"\r"))
        size += len(l) + 40
    if size >= limit:
        break
lines.append(b"section_end:1767225700:step_script\r\x1b[0K")
lines.append(b"\x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m")
with open(out, "wb") as o:
    for i, l in enumerate(lines):
        o.write(b"2026-01-01T01:%02d:%02d.%06dZ 01O " % (i // 60000 % 60, i // 1000 % 60, i % 1000000) + l + b"\n")
        if o.tell() >= limit:
            break
EOF
trace_bytes=$(wc -c <"$work/trace.log")
printf 'hello\nERROR: Job failed: exit code 1\n' >"$work/small.log"

# label, bytes, command...: best and median of $runs runs (wall and user+sys
# time, from wait4's rusage: microseconds, not GNU time's 10 ms steps).
measure() {
    python3 - "$runs" "$@" <<'EOF'
import os, shutil, statistics, sys, time
runs, label, size, cmd = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
wall, cpu, rss = [], [], 0
for _ in range(runs):
    # posix_spawn (vfork): the child's peak RSS is its own, not Python's.
    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
    t = time.perf_counter()
    pid = os.posix_spawn(shutil.which(cmd[0]), cmd, os.environ, file_actions=quiet)
    _, _, ru = os.wait4(pid, 0)
    wall.append(time.perf_counter() - t)
    cpu.append(ru.ru_utime + ru.ru_stime)
    rss = max(rss, ru.ru_maxrss)
wall.sort(); cpu.sort()
mb = size / 1048576
rate = lambda s: f"{mb / s:7.1f} MB/s" if size and s > 0 else "      - MB/s"
print(f"{label:<44} wall best {wall[0] * 1000:7.1f} ms, median {statistics.median(wall) * 1000:7.1f} ms"
      f" | cpu best {cpu[0] * 1000:7.1f} ms ({rate(cpu[0])} per core) | peak RSS {rss / 1024:5.1f} MB")
EOF
}

echo "corpus: ${#logs[@]} distinct logs from $src, $(python3 -c "print(round($bytes/1048576,1))") MB; $n patterns; $runs runs each"
echo "-- the corpus, one process"
measure "runneriq classify --format json" "$bytes" "$bin" classify --format json "${logs[@]}"
measure "rg --no-unicode -c -f patterns (same rules)" "$bytes" rg --no-unicode -c -f "$work/patterns.txt" "${logs[@]}"
measure "rg -c -f keywords (the floor)" "$bytes" rg -c -f "$work/keywords.txt" "${logs[@]}"
echo "-- one 4 MiB runner-format trace, a fresh process"
measure "runneriq classify" "$trace_bytes" "$bin" classify "$work/trace.log"
measure "rg --no-unicode -c -f patterns (same rules)" "$trace_bytes" rg --no-unicode -c -f "$work/patterns.txt" "$work/trace.log"
measure "rg -c -f keywords (the floor)" "$trace_bytes" rg -c -f "$work/keywords.txt" "$work/trace.log"
echo "-- a 2-line log, a fresh process (start-up)"
measure "runneriq classify" 0 "$bin" classify "$work/small.log"
