#!/usr/bin/env bash
# Install what running the kernel verifier in a virtual machine needs, so the
# registry never loads an untrusted BPF object into its host's kernel: qemu,
# a Debian kernel image, a static libbpf loader (vm/loader.c) and the base
# initramfs (busybox, the loader, vm/init). See vm/init for the layout and
# scripts/verify-in-vm.sh for how a verification runs.
#
# Installs into DIR (default /var/lib/epr/vm), every file world-readable so an
# unprivileged server can run qemu:
#   vmlinuz-<release>  the kernel, from the linux-image package's ./boot only
#   vmlinux-<release>  the same kernel uncompressed (an ELF file qemu boots
#                      through its PVH entry point): under TCG this saves the
#                      decompression, 0.7 s for zstd (6.12), 4.5 s for xz (6.1)
#   base.cpio.gz       the base initramfs, zero-padded to a multiple of 4 bytes
#   loader             the static loader (also inside base.cpio.gz)
#   kernels            "<release> <file>" a line, the preferred kernel first;
#                      <file> is what to give qemu's -kernel: vmlinux-<release>,
#                      or vmlinuz-<release> when it could not be unpacked
#
# Idempotent: packages already installed are only checked with dpkg-query
# (`apt-get update` runs only when something must be installed or looked up),
# a kernel already in DIR is not downloaded again, and the loader and
# base.cpio.gz are rebuilt reproducibly and replaced only when they change.
# Runs as root, or through sudo when not root (mknod of /dev/console, apt).
#
# Usage: scripts/install-verifier-vm.sh [DIR]
# Environment: EPR_VM_KERNELS, the linux-image packages to install (space
# separated, the preferred first); by default the newest
# linux-image-<release>-amd64 (not -rt, -cloud, -dbg or -unsigned) that apt
# offers, for example linux-image-6.12.118+deb12-amd64 from bookworm-security.
set -euo pipefail

dest=${1:-/var/lib/epr/vm}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
packages=(qemu-system-x86 busybox-static libbpf-dev libelf-dev zlib1g-dev libzstd-dev gcc libc6-dev binutils cpio gzip xz-utils zstd)

say() { echo "install-verifier-vm: $*" >&2; }

if [[ $(uname -m) != x86_64 ]]; then
    say "only x86_64 hosts are supported (the kernel and loader are amd64)"
    exit 1
fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "dpkg-query/apt-get not found; this script supports Debian and Ubuntu only"
    exit 1
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        say "need root (or sudo)"
        exit 1
    fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/install-verifier-vm.XXXXXX")
"${as_root[@]}" true
cleanup() { "${as_root[@]}" rm -rf "$work"; }
trap cleanup EXIT
log=$work/log

run() {
    if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive "$@" >>"$log" 2>&1; then
        say "failed: $*"
        cat "$log" >&2
        exit 1
    fi
}

updated=false
update_once() {
    if ! $updated; then
        run apt-get update -q
        updated=true
    fi
}

# 1. Packages.
missing=()
for pkg in "${packages[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true) == installed ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    update_once
    run apt-get install -y -q --no-install-recommends "${missing[@]}"
    say "installed ${missing[*]}"
fi

# 2. Kernels.
newest_kernel() {
    apt-cache pkgnames linux-image- 2>/dev/null |
        grep -E '^linux-image-[0-9]+\.[0-9]+[^ ]*-amd64$' | grep -vE -- '-(rt|cloud|dbg|unsigned)' |
        sed 's/^linux-image-//' | sort -V | tail -n 1
}
if [[ -n "${EPR_VM_KERNELS:-}" ]]; then
    read -r -a kernels <<<"$EPR_VM_KERNELS"
else
    release=$(newest_kernel)
    if [[ -z "$release" ]]; then
        update_once
        release=$(newest_kernel)
    fi
    [[ -n "$release" ]] || { say "apt offers no linux-image-<release>-amd64 package"; exit 1; }
    kernels=("linux-image-$release")
fi

# The ELF kernel inside a bzImage (the kernel's scripts/extract-vmlinux), kept
# only when it has a PVH entry point (Xen ELF note 18, PHYS32_ENTRY).
extract_vmlinux() {
    local image=$1 out=$2 magic tool offset
    for pair in '\x28\xb5\x2f\xfd:zstd -dc' '\xfd\x37\x7a\x58\x5a\x00:xz -dc' '\x1f\x8b\x08:gzip -dc'; do
        magic=${pair%%:*} tool=${pair#*:}
        for offset in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1); do
            tail -c +$((offset + 1)) "$image" | $tool >"$out" 2>/dev/null || true
            if [[ $(head -c 4 "$out" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] &&
                readelf -n "$out" 2>/dev/null | grep -qE 'Unknown note type: \(0x00000012\)|PHYS32_ENTRY'; then
                chmod 0644 "$out"
                return 0
            fi
        done
    done
    rm -f "$out"
    say "$image: no PVH kernel inside; qemu will boot the bzImage"
    return 1
}

"${as_root[@]}" install -d -m 0755 "$dest"
listing=$work/kernels
: >"$listing"
for pkg in "${kernels[@]}"; do
    release=${pkg#linux-image-}
    if [[ ! -s "$dest/vmlinuz-$release" ]]; then
        download=$work/download-$release
        mkdir -p "$download"
        # apt's download sandbox user must be able to write there.
        if id _apt >/dev/null 2>&1; then "${as_root[@]}" chown _apt "$download"; fi
        if ! (cd "$download" && "${as_root[@]}" apt-get download -q "$pkg" >>"$log" 2>&1); then
            update_once
            (cd "$download" && run apt-get download -q "$pkg")
        fi
        deb=$(ls "$download"/*.deb)
        extract=$work/extract-$release
        mkdir -p "$extract"
        # Only the package's ./boot: the kernel (its modules are not needed).
        dpkg-deb --fsys-tarfile "$deb" | (cd "$extract" && tar -x ./boot)
        [[ -s "$extract/boot/vmlinuz-$release" ]] || { say "$pkg has no ./boot/vmlinuz-$release"; exit 1; }
        "${as_root[@]}" install -m 0644 "$extract/boot/vmlinuz-$release" "$dest/vmlinuz-$release"
        "${as_root[@]}" rm -rf "$download" "$extract"
        say "installed $dest/vmlinuz-$release from $pkg"
    fi
    if [[ ! -s "$dest/vmlinux-$release" ]] && extract_vmlinux "$dest/vmlinuz-$release" "$work/vmlinux"; then
        "${as_root[@]}" install -m 0644 "$work/vmlinux" "$dest/vmlinux-$release"
        rm -f "$work/vmlinux"
        say "installed $dest/vmlinux-$release"
    fi
    if [[ -s "$dest/vmlinux-$release" ]]; then
        echo "$release vmlinux-$release" >>"$listing"
    else
        echo "$release vmlinuz-$release" >>"$listing"
    fi
done

# Replaces $dest/NAME with FILE only when they differ.
put() {
    local file=$1 name=$2 mode=$3
    if cmp -s "$file" "$dest/$name"; then
        "${as_root[@]}" chmod "$mode" "$dest/$name"
    else
        "${as_root[@]}" install -m "$mode" "$file" "$dest/$name.new"
        "${as_root[@]}" mv -f "$dest/$name.new" "$dest/$name"
        say "installed $dest/$name"
    fi
}

# 3. The loader, static.
gcc -O2 -Wall -static -o "$work/loader" "$repo/vm/loader.c" -lbpf -lelf -lz -lzstd 2>"$work/gcc.log" || {
    cat "$work/gcc.log" >&2
    exit 1
}
strip "$work/loader"

# 4. The base initramfs, reproducible: fixed times, sorted names, root-owned.
root=$work/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/objects"
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done
cp "$work/loader" "$root/bin/epr-loader"
cp "$repo/vm/init" "$root/init"
chmod 0755 "$root/init" "$root/bin/busybox" "$root/bin/epr-loader"
"${as_root[@]}" mknod -m 0600 "$root/dev/console" c 5 1
"${as_root[@]}" find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "${as_root[@]}" cpio -o -H newc -R 0:0 --renumber-inodes --ignore-devno --quiet) | gzip -9 -n >"$work/base.cpio.gz"
size=$(stat -c %s "$work/base.cpio.gz")
head -c $(((4 - size % 4) % 4)) /dev/zero >>"$work/base.cpio.gz"

put "$work/loader" loader 0755
put "$work/base.cpio.gz" base.cpio.gz 0644
put "$listing" kernels 0644
"${as_root[@]}" chmod 0755 "$dest"
say "ready in $dest: $(tr '\n' ' ' <"$dest/kernels")"
