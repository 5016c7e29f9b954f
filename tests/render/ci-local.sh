#!/usr/bin/env bash
# The CI/CD components through a real third-party implementation of GitLab CI:
# gitlab-ci-local (pinned in tests/render/ci-local/package-lock.json) expands
# `include: - local:` with `inputs:` (GitLab's spec:inputs rules: types,
# options, defaults, `$[[ inputs.x ]]` interpolation) and validates the result
# against GitLab's CI JSON schema. For each template in component/templates,
# `gitlab-ci-local --preview` runs on the example pipeline
# (component/examples/pipeline.yml) including that template instead of the
# catalog component, once with the example's inputs (or only the token) and
# once with every option changed from its default. Any error fails the script.
#
#   tests/render/ci-local.sh
#
# Needs node >= 18 and npm (installed with apt-get when missing and running as
# root); the first run installs gitlab-ci-local into target/render/ci-local
# (only the npm registry is contacted; its re2 dependency is compiled when no
# prebuilt binary can be fetched, which needs python3, make and g++). Later
# runs reuse it while the lock file is unchanged.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
pin=$root/tests/render/ci-local
work=${RUNNERIQ_CI_LOCAL_DIR:-$root/target/render/ci-local}
tool=$work/tool
bin=$tool/node_modules/.bin/gitlab-ci-local
version=$(sed -n 's/.*"gitlab-ci-local": "\([0-9.]*\)".*/\1/p' "$pin/package.json")

apt_updated=0
apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "ci-local: missing $*; install it (Debian: apt-get install $*)" >&2
        exit 1
    fi
    if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- the tool ----------------------------------------------------------------
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' || {
    echo "ci-local: gitlab-ci-local $version needs node >= 18, this is $(node --version)" >&2
    exit 1
}
command -v git >/dev/null || apt_install git
if ! cmp -s "$pin/package-lock.json" "$tool/package-lock.json" || [ ! -x "$bin" ]; then
    echo "ci-local: installing gitlab-ci-local $version (npm ci) into ${tool#"$root"/}"
    for t in python3 make g++; do
        command -v "$t" >/dev/null || apt_install python3 make g++
    done
    rm -rf "$tool"
    mkdir -p "$tool"
    cp "$pin/package.json" "$pin/package-lock.json" "$tool/"
    (cd "$tool" && npm ci --no-audit --no-fund --loglevel=error)
fi
# re2 is a native module: a package manager that skipped its install script
# leaves it unbuilt, and gitlab-ci-local cannot start without it.
if ! (cd "$tool" && node -e 'require("re2")' 2>/dev/null); then
    echo "ci-local: building re2"
    (cd "$tool" && npm rebuild re2 --loglevel=error)
fi
got=$("$bin" --version)
[ "$got" = "$version" ] || { echo "ci-local: gitlab-ci-local is $got, not $version" >&2; exit 1; }

# --- the pipelines -----------------------------------------------------------
example=$root/component/examples/pipeline.yml
component_line='^  - component: \$CI_SERVER_FQDN/<group>/runneriq-component/diagnose@<version>$'
grep -q "$component_line" "$example" || {
    echo "ci-local: $example no longer includes the diagnose component as expected" >&2
    exit 1
}

# The example pipeline without its include block (jobs, stages, default).
example_jobs() {
    awk '/^include:/ { skip = 1; next } skip && /^[^ #-]/ { skip = 0 } !skip' "$example"
}

# Inputs (YAML lines under `inputs:`) that change every option of a template
# from its default; the token is always set, as users must.
changed_inputs() {
    case "$1" in
        diagnose)
            cat <<'YAML'
      token: $RUNNERIQ_TOKEN
      image: registry.example.com/mirror/runneriq:0.1.0-debug
      stage: test
      post_to: none
      dry_run: true
      rules_file: .gitlab/runneriq-rules.yml
      config_file: ci/runneriq.yml
      gitlab_url: https://gitlab.example.com/api/v4
      job_name: explain-failures
      resolve_on_success: false
YAML
            ;;
        report)
            cat <<'YAML'
      token: $RUNNERIQ_TOKEN
      image: registry.example.com/mirror/runneriq:0.1.0-debug
      stage: build
      since: 24h
      fleet_file: ci/fleet.json
      labels: ci-report,runners
      dry_run: true
      gitlab_url: https://gitlab.example.com/api/v4
      job_name: weekly-report
YAML
            ;;
        route)
            cat <<'YAML'
      token: $RUNNERIQ_TOKEN
      image: registry.example.com/mirror/runneriq:0.1.0-debug
      stage: build
      mode: supervised
      fleet_file: ci/fleet.json
      config_file: ci/runneriq.yml
      tag_ttl: 90m
      gitlab_url: https://gitlab.example.com/api/v4
      job_name: route-jobs
YAML
            ;;
        watch)
            cat <<'YAML'
      token: $RUNNERIQ_TOKEN
      image: registry.example.com/mirror/runneriq:0.1.0-debug
      stage: build
      scope: group
      group: platform/ci
      schedule: fleet-check
      config_file: ci/runneriq.yml
      dry_run: true
      gitlab_url: https://gitlab.example.com/api/v4
      job_name: fleet-watch
YAML
            ;;
        *)
            echo "      token: \$RUNNERIQ_TOKEN"
            ;;
    esac
}

# The inputs a template declares (its `spec: inputs:`), one per line.
declared_inputs() {
    NODE_PATH=$tool/node_modules node -e '
        const yaml = require("js-yaml");
        const text = require("fs").readFileSync(process.argv[1], "utf8");
        const spec = yaml.load(text.split(/\n---\n/)[0]);
        console.log(Object.keys(spec.spec.inputs).sort().join("\n"));' "$1"
}

# Top-level job names of an expanded pipeline (YAML on stdin).
jobs_of() {
    NODE_PATH=$tool/node_modules node -e '
        const yaml = require("js-yaml");
        const doc = yaml.load(require("fs").readFileSync(0, "utf8"));
        const reserved = new Set(["stages", "variables", "default", "include", "workflow",
            "image", "services", "cache", "before_script", "after_script"]);
        console.log(Object.keys(doc).filter(k => !reserved.has(k) && !k.startsWith(".")).join(", "));'
}

projects=$work/projects
rm -rf "$projects"
failed=0
checked=0
for template in "$root"/component/templates/*.yml "$root"/component/templates/*/template.yml; do
    [ -f "$template" ] || continue
    rel=${template#"$root"/component/}
    name=$(basename "$template" .yml)
    [ "$name" = template ] && name=$(basename "$(dirname "$template")")
    # "changed" must change every input: a new input without a case here
    # fails the check instead of going untested.
    want=$(declared_inputs "$template")
    have=$(changed_inputs "$name" | sed -n 's/^      \([a-z_]*\):.*/\1/p' | sort)
    if [ "$want" != "$have" ]; then
        echo "ci-local: $rel declares inputs [$(echo $want)] but this script changes [$(echo $have)]: update changed_inputs" >&2
        failed=$((failed + 1))
    fi
    for variant in example changed; do
        dir=$projects/$name-$variant
        mkdir -p "$dir/templates"
        cp -R "$root/component/templates/." "$dir/templates/"
        {
            if [ "$variant" = example ] && [ "$name" = diagnose ]; then
                # The example pipeline itself, the catalog component replaced
                # by the template file.
                sed "s|$component_line|  - local: $rel|" "$example"
            else
                example_jobs
                printf 'include:\n  - local: %s\n    inputs:\n' "$rel"
                if [ "$variant" = example ]; then
                    echo "      token: \$RUNNERIQ_TOKEN"
                else
                    changed_inputs "$name"
                fi
            fi
        } >"$dir/.gitlab-ci.yml"
        (
            cd "$dir"
            git init -q -b main
            git remote add origin https://gitlab.example.com/acme/app.git
            git -c user.name=ci-local -c user.email=ci-local@example.com add -A
            git -c user.name=ci-local -c user.email=ci-local@example.com commit -qm pipeline
        )
        if (cd "$dir" && "$bin" --home "$work/home" --preview) >"$dir/preview.yml" 2>"$dir/preview.err"; then
            printf 'ci-local: %-13s %-8s ok: %s\n' "$rel" "$variant" "$(jobs_of <"$dir/preview.yml")"
        else
            printf 'ci-local: %-13s %-8s FAILED (%s):\n' "$rel" "$variant" "${dir#"$root"/}/.gitlab-ci.yml"
            grep -v 'Unable to retrieve default remote branch' "$dir/preview.err" | sed 's/^/    /' >&2
            failed=$((failed + 1))
        fi
        checked=$((checked + 1))
    done
done
[ "$checked" -gt 0 ] || { echo "ci-local: no template in component/templates" >&2; exit 1; }

# The check can fail: an option outside a template's `options:` is refused.
dir=$projects/refused
mkdir -p "$dir/templates"
cp -R "$root/component/templates/." "$dir/templates/"
{
    example_jobs
    printf 'include:\n  - local: templates/diagnose.yml\n    inputs:\n'
    printf '      token: $RUNNERIQ_TOKEN\n      post_to: everywhere\n'
} >"$dir/.gitlab-ci.yml"
(cd "$dir" && git init -q -b main && git remote add origin https://gitlab.example.com/acme/app.git)
if (cd "$dir" && "$bin" --home "$work/home" --preview) >/dev/null 2>"$dir/preview.err"; then
    echo "ci-local: gitlab-ci-local accepted post_to: everywhere, so it checks nothing" >&2
    exit 1
fi
grep -q 'not in the list of allowed options' "$dir/preview.err" || {
    echo "ci-local: post_to: everywhere was refused for another reason:" >&2
    cat "$dir/preview.err" >&2
    exit 1
}
echo "ci-local: an input outside its options is refused (post_to: everywhere), as GitLab does"
if [ "$failed" -gt 0 ]; then
    echo "ci-local: $failed problem(s) in $checked pipelines (gitlab-ci-local $version)" >&2
    exit 1
fi
echo "ci-local: $checked pipelines valid (gitlab-ci-local $version, GitLab's CI schema)"
