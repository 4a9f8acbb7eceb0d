# The build image for eBPF packages: the toolchain `epr build` uses (clang, llvm, libbpf-dev,
# bpftool, gcc, make), installed by scripts/install-bpf-toolchain.sh, the same script local
# builds and the test suite use, and epr itself.
#
#   docker build -t epr-build .
#   docker run --rm -v "$PWD/examples/xdp-port-filter:/src" -w /src epr-build build . -o /src/out
#
# CO-RE packages (`vmlinux = true`) read /sys/kernel/btf/vmlinux of the machine the container
# runs on, or take a vmlinux.h with --vmlinux.

# epr, built from this checkout.
FROM swift:6.3.1-bookworm AS epr
WORKDIR /epr
RUN apt-get update -q && apt-get install -y -q --no-install-recommends zlib1g-dev libsqlite3-dev && rm -rf /var/lib/apt/lists/*
COPY Package.swift ./
COPY Sources Sources
COPY Tests Tests
RUN swift build -c release --product epr --static-swift-stdlib

# The toolchain, on a pinned Debian release.
FROM debian:12.11-slim
COPY scripts/install-bpf-toolchain.sh /usr/local/lib/epr/install-bpf-toolchain.sh
RUN /usr/local/lib/epr/install-bpf-toolchain.sh && rm -rf /var/lib/apt/lists/*
COPY --from=epr /epr/.build/release/epr /usr/local/bin/epr
WORKDIR /src
ENTRYPOINT ["epr"]
CMD ["build", "."]
