#!/usr/bin/env bash
# The demo note as a merge request shows it: `runneriq demo` rendered to HTML
# by cmark-gfm (GitLab Flavored Markdown's tables, strikethrough, autolinks,
# tag filter; raw HTML kept, as GitLab keeps <details> and <sub>), in a
# 760 px column styled like GitLab's notes (code blocks scroll, they do not
# wrap; inline code wraps), then screenshotted by headless Chromium.
#
#   tests/render/note-screenshot.sh [--bin PATH] [--md FILE] [--out FILE.png]
#                                   [--height PX]
#
#   --bin     the runneriq binary whose `demo` is rendered
#             (default target/debug/runneriq, built when missing)
#   --md      render this Markdown file instead of running a binary
#   --out     the screenshot (default target/render/note.png); the Markdown
#             and the HTML page are written next to it (.md, .html)
#   --height  window height in pixels (default: the page's whole height, at
#             least 3000)
#
# Needs cmark-gfm and chromium (Debian: apt-get install cmark-gfm chromium).
# Offline: the page loads nothing from the network.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=target/debug/runneriq
md_in=""
out=target/render/note.png
height=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --md) md_in=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --height) height=$2; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
for tool in cmark-gfm chromium; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done

mkdir -p "$(dirname "$out")"
stem=${out%.png}
md=$stem.md
page=$stem.html
if [ -n "$md_in" ]; then
    cp "$md_in" "$md"
else
    if [ ! -x "$bin" ] && [ "$bin" = target/debug/runneriq ]; then
        cargo build -q
    fi
    "$bin" demo >"$md" 2>/dev/null
fi

# GitLab's note typography (app/assets/stylesheets/framework/typography.scss
# and the Pajamas fixed heading scale), reduced to what a note uses.
{
    cat <<'HTML'
<!doctype html>
<html><head><meta charset="utf-8"><title>RunnerIQ note</title>
<style>
  body { margin: 0; background: #fff; }
  .note { width: 760px; margin: 20px; font: 14px/1.43 "DejaVu Sans", sans-serif;
          color: #3a383f; word-wrap: break-word; }
  .md > :first-child { margin-top: 0; }
  .md p { margin: 0 0 16px; }
  .md a { color: #1068bf; text-decoration: none; }
  .md a > code { color: #1068bf; }
  .md h3 { font-size: 20px; line-height: 1.25; font-weight: 600; margin: 24px 0 16px; }
  .md h4 { font-size: 18px; line-height: 1.25; font-weight: 600; margin: 20px 0 16px; }
  .md h5 { font-size: 16px; line-height: 1.25; font-weight: 600; margin: 20px 0 12px; }
  .md code { font-family: "DejaVu Sans Mono", monospace; font-size: 90%;
             background: #ececef; color: #333238; padding: 2px 4px; border-radius: 4px;
             white-space: pre-wrap; overflow-wrap: break-word; word-break: keep-all; }
  .md p > code { white-space: break-spaces; overflow-wrap: break-word; }
  .md pre { margin: 0 0 16px; padding: 12px; line-height: 1.6em; font-size: 13px;
            background: #fbfafd; border: 1px solid #dcdcde; border-radius: 4px;
            overflow-x: auto; white-space: pre; }
  .md pre code { background: none; padding: 0; font-size: 100%; white-space: pre;
                 overflow-wrap: normal; word-wrap: normal; }
  .md ul { margin: 0 0 16px; padding: 0; }
  .md li { line-height: 1.6em; margin-left: 28px; }
  .md details { margin-bottom: 16px; }
  .md details > *:not(summary) { margin-left: 16px; }
  .md summary { font-weight: 600; cursor: pointer; }
  .md hr { border: 0; border-top: 1px solid #dcdcde; margin: 10px 0; }
  .md sub { color: #626168; }
</style></head>
<body><div class="note"><div class="md">
HTML
    cmark-gfm -e table -e strikethrough -e autolink -e tagfilter --unsafe <"$md"
    cat <<'HTML'
</div></div>
<script>document.body.setAttribute('data-height',
  Math.ceil(document.querySelector('.note').getBoundingClientRect().bottom) + 20)</script>
</body></html>
HTML
} >"$page"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$profile")
url="file://$(realpath "$page")"
if [ -z "$height" ]; then
    # The page's height, as Chromium lays it out at this width.
    needed=$(chromium "${flags[@]}" --window-size=800,3000 --dump-dom "$url" 2>/dev/null |
        sed -n 's/.*data-height="\([0-9]*\)".*/\1/p' | head -n 1)
    height=$(( ${needed:-3000} + 40 ))
    [ "$height" -ge 3000 ] || height=3000
fi
rm -f "$out"
chromium "${flags[@]}" --window-size=800,"$height" --screenshot="$(realpath -m "$out")" "$url" \
    >/dev/null 2>&1
[ -s "$out" ] || { echo "chromium wrote no screenshot" >&2; exit 1; }
echo "$out: 800x$height ($(wc -l <"$md") Markdown lines; page $page)"
