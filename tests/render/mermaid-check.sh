#!/usr/bin/env bash
# The render check: RunnerIQ's Markdown as GitLab shows it.
#
# Renders the demo note, the demo report (in each chart mode that draws
# charts) and simulate's output with comrak (the library GitLab renders
# Markdown with) and cmark-gfm, runs every Mermaid block through the real
# Mermaid library at the versions GitLab ships (npm, pinned in
# mermaid-check/package-lock.json), configured as GitLab configures it, in
# headless Chromium, and lays the HTML report and simulate's HTML page out at
# 400 px. Fails on a parse error, a chart over GitLab's 2,000 characters (per
# diagram and cumulatively per page), a y-axis that does not start at 0, and
# the other rules listed in mermaid-check/check.mjs.
#
# Output: target/render/render-check.txt and target/render/screenshots/*.png
# (CI keeps them as artifacts). Installs what is missing (as root, Debian):
# chromium, cmark-gfm, nodejs + npm, python3-venv.
#
# Environment: RUNNERIQ_BIN (default target/debug/runneriq, built when
# missing), RUNNERIQ_RENDER_DIR (default target/render), CHROMIUM (default
# /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/render/mermaid-check
out=${RUNNERIQ_RENDER_DIR:-$PWD/target/render}
bin=${RUNNERIQ_BIN:-$PWD/target/debug/runneriq}
chromium=${CHROMIUM:-/usr/bin/chromium}
mkdir -p "$out/docs"
rm -rf "$out/screenshots"

apt_updated=0
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "render check: $* missing (install: apt-get install --no-install-recommends $*)" >&2
        exit 1
    fi
    if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
[ -x "$chromium" ] || apt_install chromium
command -v cmark-gfm >/dev/null || apt_install cmark-gfm
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv

# Node packages: installed from the lock file, again only when it changed.
npm_dir=$out/npm
if ! cmp -s "$here/package-lock.json" "$npm_dir/package-lock.json" 2>/dev/null \
    || [ ! -d "$npm_dir/node_modules" ]; then
    rm -rf "$npm_dir"
    mkdir -p "$npm_dir"
    cp "$here/package.json" "$here/package-lock.json" "$npm_dir/"
    echo "render check: npm ci (Mermaid at GitLab's versions, puppeteer-core)"
    (cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
cp "$here/check.mjs" "$npm_dir/"

venv=$out/venv
if ! cmp -s "$here/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    echo "render check: pip install comrak"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/"
fi

[ -x "$bin" ] || cargo build --quiet
docs=$out/docs
week=src/demo/data/week.json.gz
"$bin" demo >"$docs/note.md" 2>"$docs/note.stderr"
"$bin" demo report --charts xychart >"$docs/report-xychart.md"
"$bin" demo report --charts pie >"$docs/report-pie.md"
"$bin" simulate --snapshot "$week" --charts xychart >"$docs/simulate-demo.md"
# A history where the policies do differ (the demo week's fleet is never
# full, so its replay can't tell them apart): its chart is drawn.
"$bin" simulate --jobs tests/fixtures/fleet/busy-jobs.json --fleet tests/fixtures/fleet/busy-fleet.json \
    --default-branch main --charts xychart >"$docs/simulate-busy.md"
"$bin" demo report --format html >"$docs/report.html"
"$bin" simulate --snapshot "$week" --format html >"$docs/simulate.html"

doc_args=()
for md in note report-xychart report-pie simulate-demo simulate-busy; do
    "$venv/bin/python" "$here/glfm.py" "$docs/$md.md" "$docs/$md.comrak.html"
    cmark-gfm --unsafe --github-pre-lang -e table -e strikethrough -e autolink -e tasklist \
        "$docs/$md.md" >"$docs/$md.cmark.html"
    doc_args+=(--doc "$md=$docs/$md.comrak.html,$docs/$md.cmark.html")
done

node "$npm_dir/check.mjs" --out "$out" --chromium "$chromium" "${doc_args[@]}" \
    --page "report-html=$docs/report.html" --page "simulate-html=$docs/simulate.html"
