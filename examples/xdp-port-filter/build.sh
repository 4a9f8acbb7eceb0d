#!/usr/bin/env bash
# Build xdp-port-filter: writes port_filter.bpf.o into this directory.
# CLANG selects the compiler (default: clang on PATH), LLVM_STRIP the strip
# tool (default: llvm-strip).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CLANG=${CLANG:-clang}
LLVM_STRIP=${LLVM_STRIP:-llvm-strip}
BPF_CFLAGS=(-O2 -g -Wall -target bpf -D__TARGET_ARCH_x86
    -I/usr/include/x86_64-linux-gnu
    -fdebug-prefix-map="$PWD"=.)

# Only UAPI headers are used, so no vmlinux.h is needed.
"$CLANG" "${BPF_CFLAGS[@]}" -c src/port_filter.bpf.c -o port_filter.bpf.o
# Drop DWARF (BTF and BTF.ext stay): keeps the committed object small.
"$LLVM_STRIP" -g port_filter.bpf.o
echo "built $(pwd)/port_filter.bpf.o"
