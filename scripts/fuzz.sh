#!/usr/bin/env bash
# Builds the libFuzzer targets (swiftc -sanitize=fuzzer,address) and runs each for a bounded
# time, then prints executions and findings per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      fuzz each target (default 60 s)
#   scripts/fuzz.sh --replay                  run every saved regression input once
#
# Crashing inputs are written to fuzz-out/<target>/ ; copy each into Fuzz/regressions/<target>/
# and add it to the Swift tests (Tests/*/FuzzRegressionTests.swift) once it is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/.build-fuzz
out=$root/fuzz-out
mkdir -p "$build" "$out"

pf=Sources/PackageFormat
declare -A sources=(
  [object]="Sources/BPFObject/*.swift Fuzz/ObjectFuzzer.swift"
  [archive]="$pf/ArchiveReader.swift $pf/ArchiveEntry.swift $pf/ArchiveError.swift $pf/ByteSource.swift $pf/GzipReader.swift $pf/TarHeader.swift $pf/RelativePath.swift Fuzz/ArchiveFuzzer.swift"
  [manifest]="$pf/TOML*.swift $pf/Manifest.swift $pf/Manifest+Parse.swift $pf/Manifest+Validate.swift $pf/ManifestVocabulary.swift $pf/PackageName.swift $pf/SemanticVersion.swift $pf/SPDXExpression.swift $pf/Finding.swift $pf/RelativePath.swift Fuzz/ManifestFuzzer.swift"
)
targets=(object archive manifest)

for target in "${targets[@]}"; do
  binary=$build/fuzz-$target
  # shellcheck disable=SC2086
  if [[ ! -x $binary ]] || [[ -n $(find ${sources[$target]} -newer "$binary" 2>/dev/null) ]]; then
    echo "building fuzz-$target"
    # shellcheck disable=SC2086
    swiftc -sanitize=fuzzer,address -parse-as-library -O -g -I Sources/CZlib -lz \
      ${sources[$target]} -o "$binary" 2> "$build/fuzz-$target.log" || { cat "$build/fuzz-$target.log" >&2; exit 1; }
  fi
done

# Seeds: the example objects, their manifests, and archives of the example packages.
seeds=$build/seeds
rm -rf "$seeds" && mkdir -p "$seeds/object" "$seeds/archive" "$seeds/manifest"
cp examples/*/*.bpf.o "$seeds/object/"

for f in examples/*/epr.toml; do cp "$f" "$seeds/manifest/$(basename "$(dirname "$f")").toml"; done
for d in examples/*/; do
  name=$(basename "$d")
  [[ -f $d/epr.toml ]] || continue
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf "$seeds/archive/$name.tar.gz" \
    --exclude=src --exclude=vmlinux.h -C examples "$name"
done

if [[ ${1:-} == --replay ]]; then
  status=0
  for target in "${targets[@]}"; do
    dir=Fuzz/regressions/$target
    [[ -d $dir ]] && compgen -G "$dir/*" >/dev/null || continue
    if "$build/fuzz-$target" -runs=1 "$dir"/* > "$out/replay-$target.log" 2>&1; then
      echo "replay $target: $(ls "$dir" | wc -l) inputs, no crash"
    else
      echo "replay $target: CRASH (see $out/replay-$target.log)"; status=1
    fi
  done
  exit $status
fi

seconds=${1:-60}
printf '%-10s %12s %10s %10s %s\n' target executions exec/s findings corpus
for target in "${targets[@]}"; do
  corpus=$out/corpus-$target
  # Findings of earlier runs live in Fuzz/regressions once handled; count only this run's.
  rm -rf "${out:?}/$target" && mkdir -p "$corpus" "$out/$target"
  log=$out/$target.log
  "$build/fuzz-$target" -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=3072 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$out/$target/" "$corpus" "$seeds/$target" > "$log" 2>&1 || true
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  found=$(find "$out/$target" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  printf '%-10s %12s %10s %10s %s\n' "$target" "$runs" "$rate" "$found" "$(ls "$corpus" | wc -l) inputs"
done
