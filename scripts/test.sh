#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian/Ubuntu machine: installs what the tests need
# (the BPF toolchain, bpftool, zlib), mounts the BPF filesystem, builds and runs every test.
# Needs root (or sudo) for the installs and for loading programs into the kernel verifier.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-bpf-toolchain.sh

as_root=()
[[ $(id -u) -eq 0 ]] || as_root=(sudo)
if ! grep -qs ' /sys/fs/bpf bpf ' /proc/mounts; then
  "${as_root[@]}" mount -t bpf bpf /sys/fs/bpf
fi

swift build --build-tests
"${as_root[@]}" env "PATH=$PATH" swift test --skip-build
