# shellcheck shell=bash
# Helpers shared by scripts/bench-server.sh and scripts/bench-server-memory.sh: finding the
# epr binary, building benchmark packages, and starting servers that are always stopped again.
# Sourced, not run; the caller sets `set -euo pipefail` and cds to the repository root.

# Decimal points in printf and awk, whatever the caller's locale.
export LC_ALL=C

# Every process a benchmark starts goes in here, so that the EXIT trap can stop all of them
# whatever way the script ends (a failed check, `set -e`, Ctrl-C).
started_pids=()

stop_started() {
  local pid deadline
  ((${#started_pids[@]})) || return 0
  for pid in "${started_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # Give each a few seconds to shut down cleanly (epr closes its SQLite database on SIGTERM),
  # then kill what is left.
  deadline=$((SECONDS + 10))
  for pid in "${started_pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  started_pids=()
}

install_bench_traps() {
  trap stop_started EXIT
  # A signal ends the script through `exit`, which runs the EXIT trap above.
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

die() {
  echo "error: $*" >&2
  exit 1
}

# Installs the Debian packages that provide the given commands, for those that are missing.
# Arguments are command=package pairs.
ensure_commands() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || [[ -x /usr/sbin/${pair%%=*} ]] || missing+=("${pair#*=}")
  done
  ((${#missing[@]})) || return 0
  echo "installing ${missing[*]}"
  local as_root=()
  [[ $(id -u) -eq 0 ]] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Sets $epr to an absolute path of a release epr binary that has `serve`, building it when
# EPR_BIN is not set and the default one is missing.
find_epr() {
  epr=${EPR_BIN:-.build/release/epr}
  if [[ ! -x $epr && -z ${EPR_BIN:-} ]]; then
    echo "building epr (release)"
    swift build -c release --product epr >/dev/null
  fi
  [[ -x $epr ]] || die "no epr binary at $epr"
  epr=$(cd "$(dirname "$epr")" && pwd)/$(basename "$epr")
  # The whole help first: grep -q stops reading at its first match.
  grep -qE '^ +serve ' <<<"$("$epr" --help)" || die "$epr has no serve subcommand; rebuild it"
}

# Prints a TCP port that is free on 127.0.0.1 right now (the kernel picks it).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_bg NAME LOGFILE COMMAND... : runs COMMAND in the background with its output in
# LOGFILE, records its PID for the EXIT trap, and sets $last_pid.
start_bg() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  last_pid=$!
  started_pids+=("$last_pid")
  echo "started $name (pid $last_pid)"
}

# Fails, showing the end of its log, if the process is gone.
check_alive() { # PID NAME LOGFILE
  kill -0 "$1" 2>/dev/null && return 0
  echo "--- last lines of $3" >&2
  tail -n 20 "$3" >&2 || true
  die "$2 (pid $1) exited"
}

# Waits (at most 20 s) until URL answers with a 2xx status, checking that the server is alive.
wait_http() { # URL PID NAME LOGFILE
  local i
  for ((i = 0; i < 200; i++)); do
    check_alive "$2" "$3" "$4"
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$3 did not answer at $1 within 20 s"
}

# start_epr DATADIR LOGFILE [ENV=VALUE...] : starts `epr serve` on a free port chosen by the
# server itself (--port 0) and sets $epr_pid and $epr_url from its "listening" log line.
start_epr() {
  local data=$1 log=$2 i line port=
  shift 2
  start_bg "epr serve" "$log" env "$@" "$epr" serve --data "$data" --host 127.0.0.1 --port 0
  epr_pid=$last_pid
  for ((i = 0; i < 200; i++)); do
    check_alive "$epr_pid" "epr serve" "$log"
    line=$(grep -m1 '"message":"listening"' "$log" || true)
    if [[ -n $line ]]; then
      # "address":"[IPv4]127.0.0.1/127.0.0.1:PORT"
      port=$(sed -E 's/.*"address":"[^"]*:([0-9]+)".*/\1/' <<<"$line")
      break
    fi
    sleep 0.1
  done
  [[ $port =~ ^[0-9]+$ ]] || die "epr serve did not log its listening address within 20 s (see $log)"
  epr_url=http://127.0.0.1:$port
  wait_http "$epr_url/healthz" "$epr_pid" "epr serve" "$log"
}

# make_package DIR OUTDIR BYTES : a real epr package built with `epr package` from a copy of
# examples/xdp-port-filter, plus data/payload.bin of BYTES random bytes. Random bytes do not
# compress, so the archive is about BYTES plus the few KiB of the example's own files. Prints
# the archive's path.
make_package() {
  local dir=$1 out=$2 bytes=$3
  rm -rf "$dir" "$out" && mkdir -p "$dir/data" "$out"
  cp examples/xdp-port-filter/{epr.toml,README.md,LICENSE,port_filter.bpf.o} "$dir/"
  # The payload is shipped as the package's sources, which `epr package` includes as they are.
  sed -i 's|^sources = .*|sources = ["data/*"]|' "$dir/epr.toml"
  head -c "$bytes" /dev/urandom >"$dir/data/payload.bin"
  "$epr" package "$dir" -o "$out" >/dev/null
  echo "$out/xdp_port_filter.tar.gz"
}

# Publishes an archive to epr; fails unless the answer is 201. Streams the file (curl -T), so
# curl does not hold a large archive in memory. "Expect:" turns off curl's Expect: 100-continue
# handshake, which would otherwise add up to a second of waiting to the timing.
# Prints curl's "time_total speed_upload" (seconds, bytes per second).
publish_epr() { # ARCHIVE TOKEN RESPONSE_FILE
  local result status
  result=$(curl -sS -X POST -T "$1" -o "$3" -w '%{http_code} %{time_total} %{speed_upload}' \
    -H "Authorization: Bearer $2" -H 'Content-Type: application/gzip' -H 'Expect:' -H 'Prefer: wait=120' \
    "$epr_url/api/v1/packages")
  status=${result%% *}
  [[ $status == 201 ]] || { cat "$3" >&2; echo >&2; die "publishing $1 answered $status, not 201"; }
  echo "${result#* }"
}

# CPU time (user + system, in clock ticks) used so far by the given processes, all threads.
cpu_ticks() { # PID...
  local pid total=0 stat fields
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # Fields after the ")" that closes the command name: state is the 1st, utime the 12th,
    # stime the 13th (fields 14 and 15 of the whole line).
    read -ra fields <<<"${stat##*) }"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}
