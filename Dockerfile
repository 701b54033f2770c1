# syntax=docker/dockerfile:1.7
#
# The images of hermit-pex, for linux/amd64 and linux/arm64 (docs/src/cluster/images.md):
#
#   docker buildx build --platform linux/amd64,linux/arm64 --target controller -t REGISTRY/hermit-pex:TAG --push .
#   docker buildx build --platform linux/amd64,linux/arm64 --target builder -t REGISTRY/hermit-pex-builder:TAG --push .
#
# Targets:
#   controller             (the default) hermit-pex + git + ssh on debian bookworm-slim: every
#                          manifest target works, --manifest-repo runs the git CLI.
#   controller-distroless  hermit-pex alone on distroless/cc: no shell, no git; enough when
#                          manifests go through --manifest-github or are not committed.
#   builder                what build Jobs run: hermit-pex, pex, uv and CPython 3.8-3.14.
# All run as uid/gid 65532 and work with a read-only root filesystem; the entrypoint is
# hermit-pex, so a pod's args start with the subcommand (controller, build).

ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

# hermit-pex, compiled on the build machine's own architecture for the target's (no emulation):
# a cross gcc links it when the two differ.
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-${DEBIAN} AS build
ARG BUILDARCH
ARG TARGETARCH
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu; cross="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      arm64) triple=aarch64-unknown-linux-gnu; cross="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      *) echo "unsupported TARGETARCH: $TARGETARCH (amd64 or arm64)" >&2; exit 1 ;; \
    esac; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update; apt-get install -y --no-install-recommends $cross; rm -rf /var/lib/apt/lists/*; \
    fi; \
    rustup target add "$triple"; \
    echo "$triple" > /rust-triple
# aws-lc-sys compiles C: name the C compiler and linker of each target (the native gcc answers
# to its triplet name too).
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    AR_x86_64_unknown_linux_gnu=x86_64-linux-gnu-ar \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=hermit-pex-target-${TARGETARCH} \
    set -eux; \
    triple=$(cat /rust-triple); \
    cargo build --release --locked --bin hermit-pex --target "$triple"; \
    mkdir -p /out; cp "target/$triple/release/hermit-pex" /out/hermit-pex

# CPython 3.8-3.14 (python-build-standalone, through uv from PyPI), pex and uv (the lock's
# resolver; its pin is src/lock/uv.rs UV_VERSION), under /opt, with python3.X, pex and uv in
# /opt/bin.
FROM debian:${DEBIAN}-slim AS pythons
ARG UV_VERSION=0.13.9
ARG PEX_VERSION=2.105.2
ARG PYTHONS="3.8 3.9 3.10 3.11 3.12 3.13 3.14"
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_NO_CACHE=1
RUN set -eux; \
    apt-get update; apt-get install -y --no-install-recommends ca-certificates python3 python3-venv; \
    rm -rf /var/lib/apt/lists/*; \
    python3 -m venv /tmp/uv; /tmp/uv/bin/pip install --no-cache-dir "uv==$UV_VERSION"; \
    uv=/tmp/uv/bin/uv; \
    "$uv" python install --no-bin --compile-bytecode $PYTHONS; \
    mkdir -p /opt/bin; \
    for v in $PYTHONS; do ln -s "$("$uv" python find --no-project --managed-python "$v")" "/opt/bin/python$v"; done; \
    "$uv" venv --no-project --python 3.12 /opt/pex; \
    "$uv" pip install --python /opt/pex/bin/python --compile-bytecode "pex==$PEX_VERSION"; \
    ln -s /opt/pex/bin/pex /opt/bin/pex; ln -s /opt/pex/bin/pex3 /opt/bin/pex3; \
    cp "$uv" /opt/bin/uv; \
    chmod -R a+rX /opt/python /opt/pex

# The controller without git: --manifest-github or no manifest commits only.
FROM gcr.io/distroless/cc-debian12:nonroot AS controller-distroless
COPY --from=build /out/hermit-pex /usr/local/bin/hermit-pex
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/hermit-pex"]
CMD ["controller", "--help"]

# What build Jobs run: `hermit-pex build ...` as uid 65532 with HOME=/work (an emptyDir) and
# the pex cache in /cache. git and ssh: a Git-source version's lock Job checks its tag out.
FROM debian:${DEBIAN}-slim AS builder
ARG PYTHONS="3.8 3.9 3.10 3.11 3.12 3.13 3.14"
RUN set -eux; \
    apt-get update; apt-get install -y --no-install-recommends ca-certificates git openssh-client; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --gid 65532 nonroot; \
    useradd --uid 65532 --gid 65532 --home-dir /work --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=pythons /opt/python /opt/python
COPY --from=pythons /opt/pex /opt/pex
COPY --from=pythons /opt/bin/ /usr/local/bin/
COPY --from=build /out/hermit-pex /usr/local/bin/hermit-pex
ENV HERMIT_PEX_PEX=/opt/pex/bin/pex \
    HERMIT_PEX_UV=/usr/local/bin/uv \
    HOME=/work \
    PYTHONDONTWRITEBYTECODE=1
RUN set -eux; \
    hermit-pex --version; pex --version; uv --version; git --version; \
    for v in $PYTHONS; do "python$v" -c 'import ssl, sys; print(sys.version)'; done
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/hermit-pex"]
CMD ["build", "--help"]

# The controller (the default target): hermit-pex with git, ssh and CA certificates.
FROM debian:${DEBIAN}-slim AS controller
# ssh refuses to run for a uid without a passwd entry: give 65532 one (as distroless does).
RUN set -eux; \
    apt-get update; apt-get install -y --no-install-recommends ca-certificates git openssh-client; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --gid 65532 nonroot; \
    useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /out/hermit-pex /usr/local/bin/hermit-pex
ENV HOME=/tmp
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/hermit-pex"]
CMD ["controller", "--help"]
