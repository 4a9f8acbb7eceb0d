#!/usr/bin/env bash
# The parsers' worst cases, measured: inputs made to cost their readers as much as they can,
# each at three sizes (x1, x4, x16) so that the growth shows, read by `epr inspect` beside a
# peer reading the same bytes in the same run:
#   links     groups of symbolic links that each name the one before three times (every
#             group follows the 40 links a path may): GNU tar lists the archive
#   entries   many small files: GNU tar lists the archive
#   bomb      one file of zeros that gzip expands a thousand times: epr stops at its ratio
#             limit, gzip -t reads it all
#   toml      a manifest of nested arrays: Python's tomllib parses the same file
#   elf       a BPF object of many one-instruction programs: llvm-readelf reads its sections
#             and symbols
# Usage: scripts/bench-hostile.sh [RUNS]   (default 3; figures are medians, memory the peak)
# Environment: EPR_BIN (default: .build/release/epr, built when missing), BENCH_DIR (default
# bench-out; this script uses BENCH_DIR/hostile).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=${BENCH_DIR:-$PWD/bench-out}/hostile
mkdir -p "$work"
# shellcheck source=scripts/bench/server-common.sh
source scripts/bench/server-common.sh
find_epr
command -v llvm-readelf >/dev/null || scripts/install-bpf-toolchain.sh >/dev/null

# make KIND SCALE -> the input's path (archives are named after their top-level directory)
make() {
  local kind=$1 scale=$2 dir=$work/$1-$2 file
  if [[ $kind == elf ]]; then file=$dir/hostile.o; else file=$dir/hostile.tar.gz; fi
  if [[ ! -f $file ]]; then
    mkdir -p "$dir"
    python3 scripts/bench/gen-hostile.py "$kind" "$scale" "$file"
  fi
  echo "$file"
}

case_of() { # KIND PEER-LABEL PEER-COMMAND-WITH-{} SCALE...
  local kind=$1 label=$2 peer=$3
  shift 3
  for scale in "$@"; do
    local file
    file=$(make "$kind" "$scale")
    echo
    echo "== $kind x$scale: $(stat -c %s "$file") bytes (median of $runs runs)"
    python3 scripts/bench/measure.py "$runs" "epr inspect=$epr inspect $file" "$label=${peer//\{\}/$file}"
  done
}

case_of links "tar -tzf" "tar -tzf {}" 500 2000 8000
case_of entries "tar -tzf" "tar -tzf {}" 2500 10000 40000
case_of bomb "gzip -t" "gzip -t {}" 256 1024 4096
case_of toml "python3 tomllib" "python3 -c 'import sys, tarfile, tomllib; tomllib.loads(tarfile.open(sys.argv[1]).extractfile(\"hostile/epr.toml\").read().decode())' {} </dev/null 2>/dev/null" 1000 4000 16000
case_of elf "llvm-readelf -S -s" "llvm-readelf -S -s {}" 1000 4000 16000
