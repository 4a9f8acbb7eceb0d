#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian/Ubuntu machine: installs what the tests need
# (the BPF toolchain, bpftool, zlib, the verifier's virtual machine, an OpenID Connect
# provider, skopeo and the oras and cryptography Python packages as independent OCI
# clients), mounts the BPF filesystem, builds and runs every test, then checks that no secret
# reached any log of the run.
# Needs root (or sudo) for the installs and for loading programs into the kernel verifier.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-bpf-toolchain.sh
# The kernel verifier's virtual machine (qemu, a Debian kernel, the static loader).
scripts/install-verifier-vm.sh
python3 -m pip install --quiet --disable-pip-version-check "oidc-provider-mock==0.3.4" "Authlib==1.9.10" \
  "oras==0.2.43" "cryptography>=42"

as_root=()
[[ $(id -u) -eq 0 ]] || as_root=(sudo)
if ! command -v skopeo >/dev/null 2>&1; then
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends skopeo ||
    { "${as_root[@]}" apt-get update -q && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends skopeo; }
fi
if ! grep -qs ' /sys/fs/bpf bpf ' /proc/mounts; then
  "${as_root[@]}" mount -t bpf bpf /sys/fs/bpf
fi

# Server logs and the secrets tests used are collected here for the last check.
logs=$(mktemp -d /tmp/epr-test-logs.XXXXXX)
python3 scripts/scan-logs.py --self-test

swift build --build-tests
status=0
"${as_root[@]}" env "PATH=$PATH" "EPR_TEST_LOG_DIR=$logs" swift test --skip-build 2>&1 | tee "$logs/swift-test.log" || status=$?
python3 scripts/scan-logs.py "$logs" || status=1
exit "$status"
