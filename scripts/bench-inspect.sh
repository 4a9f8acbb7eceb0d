#!/usr/bin/env bash
# Benchmarks, side by side in one run:
#   1. inspecting a ~10 MiB BPF object with `epr inspect`, beside llvm-readelf and llvm-objdump
#      reading the same object;
#   2. reading package archives with `epr inspect` (stream, verify, hash every file, inspect the
#      objects) beside `gzip -dc | tar -t` on the same files, at two sizes, with peak memory.
# Usage: scripts/bench-inspect.sh [RUNS]    (default 5; figures are medians)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
work=${BENCH_DIR:-$PWD/bench-out}
mkdir -p "$work"

scripts/install-bpf-toolchain.sh >/dev/null
if [[ -n ${EPR_BIN:-} ]]; then
  epr=$EPR_BIN
else
  echo "building epr (release)"
  swift build -c release --product epr >/dev/null
  epr=$(swift build -c release --show-bin-path)/epr
fi
clang=${CLANG:-clang}

object=$work/large.bpf.o
if [[ ! -f $object ]]; then
  echo "generating and compiling the large object"
  python3 scripts/bench/gen-large-object.py 110 200 > "$work/large.bpf.c"
  "$clang" -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c "$work/large.bpf.c" -o "$object"
  llvm-strip -g "$object"
fi

# Package archives: the example object, plus a data file of mixed content (a text corpus
# repeated with a counter, so it compresses like real files do) of the given size.
make_package() { # MiB -> $work/s<MiB>/xdp_port_filter.tar.gz
  local size=$1 dir=$work/pkg-$1 out=$work/s$1
  [[ -f $out/xdp_port_filter.tar.gz ]] && return
  echo "packaging a package with ${size} MiB of payload"
  rm -rf "$dir" "$out" && mkdir -p "$dir/data" "$out"
  cp examples/xdp-port-filter/{epr.toml,README.md,LICENSE,port_filter.bpf.o} "$dir/"
  sed -i 's|^sources = .*|sources = ["data/*"]|' "$dir/epr.toml"
  python3 - "$dir/data/blob.bin" "$size" <<'PY'
import os, sys
path, mib = sys.argv[1], int(sys.argv[2])
chunk = bytearray()
i = 0
while len(chunk) < 1 << 20:
    chunk += f"{i:08d} eBPF package payload line with some entropy {os.urandom(6).hex()}\n".encode()
    i += 1
with open(path, "wb") as f:
    for _ in range(mib):
        f.write(chunk[: 1 << 20])
PY
  "$epr" package "$dir" -o "$out" >/dev/null
}
make_package 16
make_package 256

echo
echo "== BPF object inspection: $(du -h "$object" | cut -f1) object, $(llvm-readelf -s "$object" | grep -c ' FUNC ') functions (median of $runs runs)"
python3 scripts/bench/measure.py "$runs" \
  "epr inspect --json=$epr inspect --json $object" \
  "llvm-readelf -S -s -r=llvm-readelf -S -s -r $object" \
  "llvm-objdump -d=llvm-objdump -d --no-show-raw-insn $object"

for size in 16 256; do
  archive=$work/s$size/xdp_port_filter.tar.gz
  echo
  echo "== archive read: $(du -h "$archive" | cut -f1) compressed, ${size} MiB of payload (median of $runs runs)"
  python3 scripts/bench/measure.py "$runs" \
    "epr inspect=$epr inspect $archive" \
    "gzip -dc | tar -t=gzip -dc $archive | tar -t"
done
