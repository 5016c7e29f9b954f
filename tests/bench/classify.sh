#!/usr/bin/env bash
# Benchmark: `runneriq classify` on a large log (>= 500 MB built by
# concatenating real CI logs), next to ripgrep counting lines that match the
# same pattern set. Prints MB/s and peak RSS of both. Not part of `cargo test`.
#
#   tests/bench/classify.sh [SIZE_MB]      (default 512)
#
# Logs come from ../shared/corpus/dev when present, else tests/fixtures/logs.
# Needs ripgrep (`apt-get install ripgrep`) and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mb=${1:-512}
work=${TMPDIR:-/tmp}/runneriq-bench
mkdir -p "$work"
log=$work/big.log

command -v rg >/dev/null || { echo "ripgrep (rg) is needed: apt-get install ripgrep" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 2; }

cargo build --release --quiet
bin=target/release/runneriq

src=../shared/corpus/dev
[ -d "$src" ] || src=tests/fixtures/logs
want=$((size_mb * 1024 * 1024))
if [ ! -f "$log" ] || [ "$(stat -c %s "$log")" -lt "$want" ]; then
    echo "building a ${size_mb} MB log from $src ..."
    : >"$log"
    while [ "$(stat -c %s "$log")" -lt "$want" ]; do
        cat "$src"/*.log >>"$log"
    done
fi
bytes=$(stat -c %s "$log")
mb=$(python3 -c "print(round($bytes/1048576, 1))")

# The same patterns for ripgrep: each rule's regex in its own group (an inline
# (?i) must not leak into the next alternative), non-ASCII literals as byte
# escapes, and --no-unicode like the classifier (it matches bytes, ASCII classes).
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
n=$(wc -l <"$work/patterns.txt")

measure() { # label, command...
    local label=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null
    read -r secs rss <"$work/time.txt"
    python3 -c "print(f'{\"$label\":<34} {$secs:7.2f} s  {$bytes/1048576/max($secs,0.001):8.1f} MB/s  peak RSS {$rss/1024:6.1f} MB')"
    echo "$secs" >"$work/$label.secs"
}

echo "log: $log (${mb} MB), $n patterns"
cat "$log" >/dev/null  # warm the page cache for both
measure "runneriq classify" "$bin" classify "$log"
measure "rg --no-unicode -c -f patterns" rg --no-unicode -c -f "$work/patterns.txt" "$log"
python3 -c "
a=float(open('$work/runneriq classify.secs').read()); b=float(open('$work/rg --no-unicode -c -f patterns.secs').read())
print(f'runneriq / ripgrep time: {a/b:.2f}x')"
