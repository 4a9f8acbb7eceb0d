#!/usr/bin/env bash
# Measures the memory `epr serve` needs to take in and hand out a ~1 GiB package: publishes
# it (streamed upload), downloads it through the L3AFD path into a file and checks that file's
# SHA-256 against the published archive, then downloads it once more without writing it
# anywhere (a disk can be slower than loopback and hide the server's own rate). Meanwhile the server's resident set (VmRSS in
# /proc/PID/status) is sampled every 0.2 s; the kernel's own peak (VmHWM) is read at the end
# of each phase, after being reset at its start where the kernel allows it (clear_refs).
# Target: a peak under 150 MB (150,000,000 bytes, 143 MiB) in every phase.
# Usage: scripts/bench-server-memory.sh      Environment: SIZE_MIB (payload, default 1024),
#   BENCH_DIR (default bench-out; this script uses BENCH_DIR/server-memory; the archive is
#   kept there and reused by later runs of the same size), EPR_BIN (default
#   .build/release/epr, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench/server-common.sh

size_mib=${SIZE_MIB:-1024}
mkdir -p "${BENCH_DIR:-bench-out}"
work=$(cd "${BENCH_DIR:-bench-out}" && pwd)/server-memory
token=epr_bench_admin_token_$RANDOM$RANDOM$RANDOM$RANDOM
target_bytes=150000000

install_bench_traps
ensure_commands curl=curl python3=python3
find_epr

# --- The package ---------------------------------------------------------------------------

# Packaging 1 GiB of random bytes takes a while, so the archive is kept and reused when one
# of the same payload size exists (the payload itself is deleted to spare the disk).
archive=$work/pkg-out/xdp_port_filter.tar.gz
if [[ ! -f $archive || $(cat "$work/pkg-out/payload-mib" 2>/dev/null) != "$size_mib" ]]; then
  echo "packaging ${size_mib} MiB of random bytes (takes a minute)"
  archive=$(make_package "$work/pkg" "$work/pkg-out" $((size_mib << 20)))
  echo "$size_mib" >"$work/pkg-out/payload-mib"
  rm -rf "$work/pkg"
fi
archive_size=$(stat -c %s "$archive")
digest=$(sha256sum "$archive" | cut -d' ' -f1)
echo "archive: $archive_size bytes, sha256 $digest"

# --- Memory sampling -----------------------------------------------------------------------

# Prints "VmRSS VmHWM" of a process, in KiB.
memory_kib() { # PID
  awk '/^VmRSS:/ {rss = $2} /^VmHWM:/ {hwm = $2} END {print rss, hwm}' "/proc/$1/status"
}

# Writes "EPOCHREALTIME VmRSS_KiB" every 0.2 s until the process is gone; run in background.
sample_rss() { # PID OUTFILE
  local rss
  while rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null) && [[ -n $rss ]]; do
    echo "$EPOCHREALTIME $rss"
    sleep 0.2
  done >"$2"
}

# Highest sampled VmRSS (KiB) between two EPOCHREALTIME stamps.
peak_sampled() { # FROM TO
  awk -v from="$1" -v to="$2" '$1 >= from && $1 <= to && $2 > peak {peak = $2} END {print peak + 0}' "$work/rss.txt"
}

# Resets the process's VmHWM to its current RSS, so that the next read is the peak of one
# phase. Needs Linux >= 4.0 and the right to write clear_refs; says whether it worked.
reset_hwm() { # PID
  { echo 5 >"/proc/$1/clear_refs"; } 2>/dev/null
}

cpu_seconds() { # TICKS_BEFORE TICKS_AFTER
  awk -v t=$(($2 - $1)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz}'
}

# Formatting: KiB to MiB, seconds to MiB/s of the archive, and the 150 MB verdict.
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
rate() { awk -v b="$archive_size" -v s="$1" 'BEGIN {printf "%.0f", b / 1048576 / s}'; }
verdict() { (($1 * 1024 < target_bytes)) && echo met || echo "MISSED by $(mib $(($1 - target_bytes / 1024))) MiB"; }
row() { printf '%-17s %12s %9s %9s %7s %13s %10s  %s\n' "$@"; }
rows=()

# phase NAME COMMAND... : runs COMMAND, which prints the seconds it took, and adds a row with
# its MiB/s, the server's CPU time, the highest sampled RSS and the kernel's peak (VmHWM).
per_phase_hwm=yes
phase() {
  local name=$1 ticks from seconds cpu hwm peak worst
  shift
  echo "$name"
  reset_hwm "$epr_pid" || per_phase_hwm=no
  ticks=$(cpu_ticks "$epr_pid")
  from=$EPOCHREALTIME
  seconds=$("$@")
  cpu=$(cpu_seconds "$ticks" "$(cpu_ticks "$epr_pid")")
  read -r _ hwm < <(memory_kib "$epr_pid")
  sleep 0.5 # a few more samples after the answer, so the sampler has seen the end of the phase
  peak=$(peak_sampled "$from" "$EPOCHREALTIME")
  # Without a reset, VmHWM is the peak since start and says nothing of this phase alone.
  worst=$peak
  [[ $per_phase_hwm == yes ]] && ((hwm > worst)) && worst=$hwm
  ((worst > run_peak)) && run_peak=$worst
  rows+=("$(row "$name" "$(mib $((archive_size / 1024)))" "$(printf %.2f "$seconds")" "$(rate "$seconds")" \
    "$cpu" "$(mib "$peak")" "$(mib "$hwm")" "$(verdict "$worst")")")
}

publish() { local result; result=$(publish_epr "$archive" "$token" "$work/publish.json") && echo "${result%% *}"; }
# The download L3AFD makes, written to disk; then the same without the disk, which on this
# kind of machine is slower than loopback and would hide the server's own rate.
l3afd_url() { echo "$epr_url/xdp-port-filter/latest/jammy/xdp_port_filter.tar.gz"; }
download_file() { curl -fsS -o "$work/download.tar.gz" -w '%{time_total}' "$(l3afd_url)"; }
download_discard() { curl -fsS -o /dev/null -w '%{time_total}' "$(l3afd_url)"; }

# --- Run -----------------------------------------------------------------------------------

rm -rf "$work/data" "$work/download.tar.gz" "$work/epr.log"
start_epr "$work/data" "$work/epr.log" "EPR_ADMIN_TOKEN=$token" EPR_MAX_UPLOAD_SIZE=3G
start_bg "RSS sampler" /dev/null sample_rss "$epr_pid" "$work/rss.txt"
sleep 1 # let the server settle before reading its idle footprint
read -r idle_rss idle_hwm < <(memory_kib "$epr_pid")
run_peak=$idle_hwm # the highest of all phases; VmHWM itself only covers the last one after resets

phase publish publish
phase download download_file
downloaded=$(sha256sum "$work/download.tar.gz" | cut -d' ' -f1)
[[ $downloaded == "$digest" ]] || die "the download's sha256 is $downloaded, the published archive's $digest"
echo "download verified: sha256 identical to the published archive"
rm -f "$work/download.tar.gz"
phase "download, discard" download_discard
read -r end_rss end_hwm < <(memory_kib "$epr_pid")
((end_hwm > run_peak)) && run_peak=$end_hwm
# The server's copy of the package is another GiB on disk: stop it and drop its data.
stop_started
rm -rf "$work/data"

# --- Report --------------------------------------------------------------------------------

echo
echo "== epr serve memory with a $(mib $((archive_size / 1024))) MiB package ($archive_size bytes), $(nproc) cores, loopback"
row phase "archive MiB" seconds "MiB/s" "CPU s" "peak RSS MiB" "VmHWM MiB" "target < 150 MB"
row "idle after start" - - - - "$(mib "$idle_rss")" "$(mib "$idle_hwm")" "$(verdict "$idle_hwm")"
printf '%s\n' "${rows[@]}"
echo "after all: RSS $(mib "$end_rss") MiB; highest peak of the whole run $(mib "$run_peak") MiB ($(verdict "$run_peak"))"
echo
echo "(peak RSS: highest VmRSS sampled every 0.2 s during the phase; VmHWM: the kernel's peak,"
if [[ $per_phase_hwm == yes ]]; then
  echo " reset at the start of each phase; the verdict takes the higher of the two."
else
  echo " since the server started, as /proc/PID/clear_refs could not reset it; the verdict uses the samples."
fi
echo " CPU s: the server's user + system CPU time in the phase. $(wc -l <"$work/rss.txt") samples in $work/rss.txt)"
