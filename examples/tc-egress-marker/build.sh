#!/usr/bin/env bash
# Build tc-egress-marker: writes egress_marker.bpf.o into this directory.
# CLANG selects the compiler (default: clang on PATH), LLVM_STRIP the strip
# tool (default: llvm-strip), BPFTOOL the bpftool used to generate vmlinux.h
# from the running kernel's BTF when vmlinux.h is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CLANG=${CLANG:-clang}
LLVM_STRIP=${LLVM_STRIP:-llvm-strip}
BPFTOOL=${BPFTOOL:-bpftool}
BPF_CFLAGS=(-O2 -g -Wall -target bpf -D__TARGET_ARCH_x86
    -I/usr/include/x86_64-linux-gnu
    -fdebug-prefix-map="$PWD"=.)

if [[ ! -s vmlinux.h ]]; then
    "$BPFTOOL" btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h.tmp
    mv vmlinux.h.tmp vmlinux.h
fi

"$CLANG" "${BPF_CFLAGS[@]}" -I. -c src/egress_marker.bpf.c -o egress_marker.bpf.o
# Drop DWARF (BTF and BTF.ext stay): keeps the committed object small.
"$LLVM_STRIP" -g egress_marker.bpf.o
echo "built $(pwd)/egress_marker.bpf.o"
