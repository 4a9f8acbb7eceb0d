#!/usr/bin/env bash
# Install what building and testing eBPF packages needs on Debian or Ubuntu:
# a BPF-capable clang and LLVM tools, libbpf headers and library, bpftool,
# libelf and zlib for linking user-space loaders, a C toolchain, clang-format
# for the sources check, cppcheck for the scanner in scanners/, and bubblewrap,
# the sandbox build workers (`epr worker`) run builds in.
#
# Idempotent: when every package is already installed it only checks with
# dpkg-query and prints one line. `apt-get update` runs only when something
# has to be installed. Runs as root, or through sudo when not root.
#
# Usage: scripts/install-bpf-toolchain.sh
# Environment: EPR_BPF_PACKAGES overrides the package list (space separated).
set -euo pipefail

packages=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev gcc make pkg-config cppcheck clang-format bubblewrap)
if [[ -n "${EPR_BPF_PACKAGES:-}" ]]; then
    read -r -a packages <<<"$EPR_BPF_PACKAGES"
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-bpf-toolchain: dpkg-query/apt-get not found; this script supports Debian and Ubuntu only" >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" == "installed" ]]; then
        continue
    fi
    # Ubuntu ships bpftool in linux-tools-* rather than a bpftool package;
    # a working bpftool on PATH is as good as the package.
    if [[ "$pkg" == bpftool ]] && bpftool version >/dev/null 2>&1; then
        continue
    fi
    missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "BPF toolchain present: ${packages[*]}"
    exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "install-bpf-toolchain: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
fi

log=$(mktemp "${TMPDIR:-/tmp}/install-bpf-toolchain.XXXXXX")
trap 'rm -f "$log"' EXIT

run() {
    if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive "$@" >>"$log" 2>&1; then
        echo "install-bpf-toolchain: failed: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

run apt-get update -q

# Reads the whole answer first: `grep -q` closing the pipe early would fail it under pipefail.
has_candidate() {
    local shown
    shown=$(apt-cache show "$1" 2>/dev/null) || return 1
    [[ "$shown" == *"Package: "* ]]
}

# Where no bpftool package exists (older Ubuntu releases), install the
# linux-tools packages that provide it instead.
for i in "${!missing[@]}"; do
    if [[ "${missing[$i]}" == bpftool ]] && ! has_candidate bpftool; then
        unset 'missing[i]'
        tools="linux-tools-$(uname -r)"
        has_candidate "$tools" || tools=linux-tools-generic
        missing+=(linux-tools-common "$tools")
    fi
done
missing=("${missing[@]}")

run apt-get install -y -q --no-install-recommends "${missing[@]}"

echo "BPF toolchain installed: ${missing[*]}"
