#!/usr/bin/env bash
# Build exec-tracker: writes exec_tracker.bpf.o (BPF, CO-RE) and the
# exec_tracker loader into this directory.
# CLANG selects the BPF compiler (default: clang on PATH), LLVM_STRIP the
# strip tool (default: llvm-strip), CC the C compiler for the loader
# (default: gcc), BPFTOOL the bpftool used to generate vmlinux.h from the
# running kernel's BTF when vmlinux.h is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CLANG=${CLANG:-clang}
LLVM_STRIP=${LLVM_STRIP:-llvm-strip}
CC=${CC:-gcc}
BPFTOOL=${BPFTOOL:-bpftool}
BPF_CFLAGS=(-O2 -g -Wall -target bpf -D__TARGET_ARCH_x86
    -I/usr/include/x86_64-linux-gnu
    -fdebug-prefix-map="$PWD"=.)

if [[ ! -s vmlinux.h ]]; then
    "$BPFTOOL" btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h.tmp
    mv vmlinux.h.tmp vmlinux.h
fi

"$CLANG" "${BPF_CFLAGS[@]}" -I. -Isrc -c src/exec_tracker.bpf.c -o exec_tracker.bpf.o
# Drop DWARF (BTF and BTF.ext stay): keeps the committed object small.
"$LLVM_STRIP" -g exec_tracker.bpf.o
echo "built $(pwd)/exec_tracker.bpf.o"

"$CC" -O2 -Wall -Isrc -o exec_tracker src/exec_tracker.c -lbpf -lelf -lz
echo "built $(pwd)/exec_tracker"
