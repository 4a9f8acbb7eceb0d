#!/usr/bin/env bash
# Reference runner, for testing: loads BPF objects into the kernel verifier of
# a throwaway virtual machine (scripts/install-verifier-vm.sh installs it) and
# prints the machine's framed lines (EPR-..., see vm/init and vm/loader.c).
#
# Usage: scripts/verify-in-vm.sh [-d DIR] [-k RELEASE] [-n LINES] [-t SECONDS] [-a] OBJECT...
#   -d  where the machine is installed (default $EPR_VM_DIR or /var/lib/epr/vm)
#   -k  the kernel release (default: the first line of DIR/kernels)
#   -n  keep the last LINES lines of each verifier log (default 400, 0: all)
#   -t  time limit for the whole run (default 60 s); then qemu gets SIGTERM,
#       and SIGKILL 2 s later
#   -a  print all the console's lines, the kernel's included
# Exit status: 0 when EPR-DONE was seen, 124 on the time limit, else 1.
#
# qemu gets only the kernel and the initramfs: no disk, no network, no
# default devices, no monitor, one serial port on stdout, no user config, and
# its seccomp sandbox. It still reads its own firmware (SeaBIOS, pvh.bin) from
# /usr/share. Under TCG (KVM is not usable here) a run takes 3 to 7 s.
set -euo pipefail

dir=${EPR_VM_DIR:-/var/lib/epr/vm}
release="" lines=400 limit=60 all=false
while getopts "d:k:n:t:a" opt; do
    case $opt in
        d) dir=$OPTARG ;;
        k) release=$OPTARG ;;
        n) lines=$OPTARG ;;
        t) limit=$OPTARG ;;
        a) all=true ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -gt 0 ]] || { echo "usage: $0 [-d DIR] [-k RELEASE] [-n LINES] [-t SECONDS] [-a] OBJECT..." >&2; exit 2; }
# DIR/kernels: "<release> <file>" a line, the preferred first.
[[ -n "$release" ]] || release=$(awk 'NR == 1 { print $1 }' "$dir/kernels")
file=$(awk -v r="$release" '$1 == r { print $2; exit }' "$dir/kernels")
kernel=$dir/${file:-vmlinuz-$release}
[[ -r "$kernel" && -r "$dir/base.cpio.gz" ]] || { echo "verify-in-vm: $kernel or $dir/base.cpio.gz is missing" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/verify-in-vm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/objects"
i=0
for object in "$@"; do
    install -m 0644 "$object" "$tmp/root/objects/$i.o"
    printf '%s\t%s\n' "$i" "$object" >>"$tmp/root/objects/names"
    i=$((i + 1))
done
# The objects' archive, uncompressed newc, after base.cpio.gz (already padded
# to a multiple of 4 bytes).
(cd "$tmp/root" && find objects | LC_ALL=C sort | cpio -o -H newc -R 0:0 --renumber-inodes --ignore-devno --quiet) >"$tmp/objects.cpio"
cat "$dir/base.cpio.gz" "$tmp/objects.cpio" >"$tmp/initrd"

status=0
timeout -k 2 "$limit" qemu-system-x86_64 \
    -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny \
    -accel tcg -m 512 -smp 1 \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial stdio -monitor none -nic none \
    -kernel "$kernel" -initrd "$tmp/initrd" \
    -append "console=ttyS0 quiet panic=-1 epr.loglines=$lines" \
    </dev/null >"$tmp/console" 2>"$tmp/qemu.err" || status=$?
if $all; then cat "$tmp/console"; else grep -a '^EPR-' "$tmp/console" || true; fi
if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "verify-in-vm: stopped after $limit s" >&2
    exit 124
fi
if [[ $status -ne 0 ]]; then
    echo "verify-in-vm: qemu exited with $status" >&2
    cat "$tmp/qemu.err" >&2
    exit 1
fi
grep -aq '^EPR-DONE' "$tmp/console" || { echo "verify-in-vm: the machine stopped without EPR-DONE" >&2; exit 1; }
