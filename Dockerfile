# RunnerIQ container images. Nothing is pulled and nothing is RUN: every stage
# is FROM scratch and only COPYs files that component/scripts/build-image.sh
# stages into the build context (the way goreleaser and cargo-dist ship images):
#
#   <context>/target/x86_64-unknown-linux-gnu/release/runneriq   static binary
#   <context>/rootfs/etc/ssl/certs/ca-certificates.crt             CA bundle
#   <context>/rootfs/etc/passwd, group, nsswitch.conf              root + nobody, hosts: files dns
#   <context>/debug/bin/busybox (+ applet symlinks), debug/tmp     shell variant only
#
# Two targets, two tags:
#   runneriq  -> runneriq:<version>        the binary alone (docker run, scripts)
#   debug     -> runneriq:<version>-debug  the same plus a static busybox shell,
#                                          for GitLab CI `script:` (the CI/CD
#                                          component uses this one)
#
#   component/scripts/build-image.sh --tag runneriq:dev       # builds both
#   docker run --rm runneriq:dev --version

FROM scratch AS runneriq

# Path of the prebuilt static binary inside the build context.
ARG RUNNERIQ_BIN=target/x86_64-unknown-linux-gnu/release/runneriq
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://gitlab.com/runneriq/runneriq

COPY rootfs/ /
COPY ${RUNNERIQ_BIN} /usr/local/bin/runneriq

# The CA bundle lets TLS stacks that honour SSL_CERT_FILE trust a self-hosted
# GitLab whose certificate chains to a public CA; mount another bundle and point
# SSL_CERT_FILE at it for a private CA.
ENV PATH=/usr/local/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

LABEL org.opencontainers.image.title="RunnerIQ" \
      org.opencontainers.image.description="Explains failed GitLab CI pipelines on the merge request, and reports on the runner fleet" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# nobody:nogroup. GitLab's Docker executor checks out with umask 0000, so the
# job can still write its artifacts into the project directory.
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/runneriq"]

# Same image plus a statically linked busybox in /bin: gitlab-runner starts every
# job container with `sh -c <detect shell>`, so a `script:` needs a shell.
# Same idea as kaniko's `:debug` and distroless' `:debug` tags.
FROM runneriq AS debug
COPY debug/ /
ENV PATH=/usr/local/bin:/bin
