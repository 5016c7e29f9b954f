#!/bin/sh
# Builds the static runneriq binary, stages a minimal Docker build context and
# builds the two images of the Dockerfile from it:
#
#   <tag>        FROM scratch: the binary, CA certificates, /etc/passwd (nobody)
#   <tag>-debug  the same plus a static busybox in /bin (for GitLab CI script:)
#
# No base image is pulled and the Dockerfile has no RUN step, so this works with
# no network and on a daemon started with --bridge=none.
#
# POSIX sh on purpose: it also runs in the docker:* (Alpine) image of the
# release pipeline, which has no bash.
#
# Usage: component/scripts/build-image.sh [options]
#   --tag NAME        image name:tag to build (default runneriq:dev); the shell
#                     variant is tagged NAME-debug
#   --skip-cargo      do not run cargo; use the binary already at $RUNNERIQ_BIN
#   --stage-only      stage the context directory and stop (no docker)
#   --no-stage        use the context already staged at $RUNNERIQ_CONTEXT
#   --no-debug        build only the FROM scratch image
#   -h, --help        this text
#
# Environment (all optional):
#   CARGO_TARGET_DIR   cargo's target directory (default: <repo>/target)
#   RUNNERIQ_BIN       the static binary (default:
#                      $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/runneriq)
#   RUNNERIQ_CONTEXT   where to stage the build context
#                      (default: $CARGO_TARGET_DIR/docker-context)
#   CA_BUNDLE          CA certificates in PEM (default:
#                      /etc/ssl/certs/ca-certificates.crt, Debian's ca-certificates)
#   BUSYBOX            a statically linked busybox (default: /bin/busybox, from
#                      Debian's busybox-static; Alpine: busybox-static's
#                      /bin/busybox.static)
#   IMAGE_SOURCE       OCI source label (default https://gitlab.com/runneriq/runneriq)
set -eu

TARGET=x86_64-unknown-linux-gnu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TAG=runneriq:dev
RUN_CARGO=1
STAGE=1
DOCKER=1
DEBUG=1

usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'; }
die() { echo "build-image: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --tag) [ $# -ge 2 ] || die "--tag needs a value"; TAG=$2; shift 2 ;;
        --tag=*) TAG=${1#--tag=}; shift ;;
        --skip-cargo) RUN_CARGO=0; shift ;;
        --stage-only) DOCKER=0; shift ;;
        --no-stage) STAGE=0; RUN_CARGO=0; shift ;;
        --no-debug) DEBUG=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR=$REPO/$CARGO_TARGET_DIR ;; esac
export CARGO_TARGET_DIR
RUNNERIQ_BIN=${RUNNERIQ_BIN:-$CARGO_TARGET_DIR/$TARGET/release/runneriq}
CTX=${RUNNERIQ_CONTEXT:-$CARGO_TARGET_DIR/docker-context}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
BUSYBOX=${BUSYBOX:-/bin/busybox}
IMAGE_SOURCE=${IMAGE_SOURCE:-https://gitlab.com/runneriq/runneriq}

# ---- 1. the static binary --------------------------------------------------
if [ "$RUN_CARGO" = 1 ]; then
    echo "== cargo build --release --target $TARGET (crt-static) into $CARGO_TARGET_DIR"
    # The musl target is not needed: glibc with crt-static links statically.
    # getaddrinfo still works in FROM scratch: since glibc 2.34 the `files` and
    # `dns` NSS modules are built into libc (no libnss_*.so is dlopen'ed).
    # Two linker (LLD) options make the static binary smaller without
    # changing what runs: --icf=safe folds functions whose code is identical
    # and whose address nothing compares (-140 KB), and -z
    # pack-relative-relocs stores the position-independent binary's
    # relocations as RELR (-320 KB), which glibc's static-PIE start-up
    # (2.36+) applies itself: the binary still loads at a random address.
    # Only here: a dynamically linked binary with RELR needs glibc 2.36 where
    # it runs.
    (cd "$REPO" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C link-arg=-Wl,--icf=safe -C link-arg=-Wl,-z,pack-relative-relocs" \
        cargo build --release --locked --target "$TARGET")
fi

if [ "$STAGE" = 1 ]; then
    [ -f "$RUNNERIQ_BIN" ] || die "no binary at $RUNNERIQ_BIN (run without --skip-cargo, or set RUNNERIQ_BIN)"
    # A dynamically linked binary would start in the build container but fail in
    # FROM scratch with a confusing "no such file or directory": refuse it here.
    if command -v file >/dev/null 2>&1; then
        info=$(file -L "$RUNNERIQ_BIN")
        case "$info" in
            *"statically linked"*|*"static-pie linked"*) ;;
            *) die "$RUNNERIQ_BIN is not statically linked: $info" ;;
        esac
    else
        echo "build-image: 'file' not found, skipping the static-link check" >&2
    fi
    [ -f "$CA_BUNDLE" ] || die "no CA bundle at $CA_BUNDLE (install ca-certificates, or set CA_BUNDLE)"

    # ---- 2. the build context ----------------------------------------------
    echo "== staging the build context in $CTX"
    rm -rf "$CTX"
    mkdir -p "$CTX/target/$TARGET/release" "$CTX/rootfs/etc/ssl/certs"
    cp "$RUNNERIQ_BIN" "$CTX/target/$TARGET/release/runneriq"
    chmod 0755 "$CTX/target/$TARGET/release/runneriq"
    cp "$CA_BUNDLE" "$CTX/rootfs/etc/ssl/certs/ca-certificates.crt"
    chmod 0644 "$CTX/rootfs/etc/ssl/certs/ca-certificates.crt"
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
        'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' >"$CTX/rootfs/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$CTX/rootfs/etc/group"
    # /etc/hosts before DNS (service aliases, --add-host), as distroless does;
    # without this file glibc's default would stop at a DNS "not found".
    printf '%s\n' 'hosts: files dns' >"$CTX/rootfs/etc/nsswitch.conf"
    chmod 0644 "$CTX/rootfs/etc/passwd" "$CTX/rootfs/etc/group" "$CTX/rootfs/etc/nsswitch.conf"

    if [ "$DEBUG" = 1 ]; then
        [ -x "$BUSYBOX" ] || die "no busybox at $BUSYBOX (apt-get install busybox-static, or set BUSYBOX)"
        if command -v file >/dev/null 2>&1; then
            case "$(file -L "$BUSYBOX")" in
                *"statically linked"*|*"static-pie linked"*) ;;
                *) die "$BUSYBOX is not statically linked (Debian: busybox-static; Alpine: busybox-static)" ;;
            esac
        fi
        mkdir -p "$CTX/debug/bin" "$CTX/debug/tmp"
        chmod 1777 "$CTX/debug/tmp"
        cp "$BUSYBOX" "$CTX/debug/bin/busybox"
        chmod 0755 "$CTX/debug/bin/busybox"
        # One symlink per applet (sh, ls, cat, id, ...): COPY keeps symlinks, and
        # the Dockerfile needs no RUN (which would need a container network).
        for applet in $("$BUSYBOX" --list); do
            case "$applet" in busybox|*/*) continue ;; esac
            ln -s busybox "$CTX/debug/bin/$applet"
        done
    fi
    cp "$REPO/Dockerfile" "$CTX/Dockerfile"
    cp "$REPO/.dockerignore" "$CTX/.dockerignore"
    echo "   $(du -sh "$CTX" | cut -f1) staged"
fi

[ "$DOCKER" = 1 ] || exit 0

# ---- 3. the images -----------------------------------------------------------
[ -f "$CTX/Dockerfile" ] || die "nothing staged in $CTX"
VERSION=$("$CTX/target/$TARGET/release/runneriq" --version | awk '{print $NF}')
REVISION=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo "${CI_COMMIT_SHA:-unknown}")
build() {
    target=$1 tag=$2
    echo "== docker build --target $target -t $tag"
    docker build --quiet --target "$target" -t "$tag" \
        --build-arg "VERSION=$VERSION" \
        --build-arg "REVISION=$REVISION" \
        --build-arg "SOURCE=$IMAGE_SOURCE" \
        "$CTX"
}
build runneriq "$TAG"
[ "$DEBUG" = 0 ] || build debug "$TAG-debug"
