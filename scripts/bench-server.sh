#!/usr/bin/env bash
# Benchmarks `epr serve` downloads, side by side in one run, with wrk on loopback:
#   1. a ~1 MiB package archive: epr through the L3AFD path (/{name}/latest/{platform}/{artifact},
#      where "latest" is resolved through the database on every request), nginx serving the
#      same file with sendfile, and docker-registry (distribution 2.8) serving the same bytes
#      as a blob;
#   2. small metadata: epr's version metadata JSON, beside nginx serving the very same JSON
#      bytes as a static file;
#   3. the same archive as an OCI blob: epr's /v2/<name>/blobs/<digest> (the package artifact's
#      layer, which epr makes on publication) beside docker-registry's blob GET.
# All three servers are checked to return byte-identical bodies before anything is measured.
# Usage: scripts/bench-server.sh      Environment: DURATION (seconds per run, default 5),
#   BENCH_DIR (default bench-out; this script uses BENCH_DIR/server), EPR_BIN (default
#   .build/release/epr, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench/server-common.sh

duration=${DURATION:-5}
# Rounds take turns (epr, nginx, docker-registry, then again), so a slow spell of the machine
# falls on every server alike; ratios compare the servers' median rates.
rounds=${ROUNDS:-3}
threads=2 connections=16
mkdir -p "${BENCH_DIR:-bench-out}"
work=$(cd "${BENCH_DIR:-bench-out}" && pwd)/server
token=epr_bench_admin_token_$RANDOM$RANDOM$RANDOM$RANDOM
artifact_bytes=$((1 << 20))

install_bench_traps
ensure_commands nginx=nginx docker-registry=docker-registry wrk=wrk curl=curl python3=python3
find_epr

# A fresh tree every run: epr's data directory must be empty for EPR_ADMIN_TOKEN to apply, and
# docker-registry's storage must not hold blobs of an earlier run.
rm -rf "$work"
mkdir -p "$work"/{epr,nginx/www,nginx/tmp,registry/storage,responses}
# nginx workers run as an unprivileged user when started as root: let them read the files.
chmod 755 "$work" "$work/nginx" "$work/nginx/www"

# --- The ~1 MiB package --------------------------------------------------------------------

# Builds the package twice: once to learn how much the example's own files and the tar and
# gzip framing add, then with the payload cut so that the whole archive is 1 MiB.
build_artifact() {
  local archive size
  archive=$(make_package "$work/pkg" "$work/pkg-out" "$artifact_bytes")
  size=$(stat -c %s "$archive")
  truncate -s $((artifact_bytes - (size - artifact_bytes))) "$work/pkg/data/payload.bin"
  "$epr" package "$work/pkg" -o "$work/pkg-out" >/dev/null
  echo "$archive"
}

# --- Servers -------------------------------------------------------------------------------

start_nginx() {
  nginx_port=$(free_port)
  cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    # nginx closes a keep-alive connection after 1000 requests by default; epr and
    # docker-registry do not, so lift the limit to compare like with like.
    keepalive_requests 1000000;
    default_type application/octet-stream;
    types { application/json json; application/gzip gz; }
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/nginx/www;
    }
}
EOF
  # -e: the error log before the config is read; the default path may not be writable.
  start_bg nginx "$work/nginx/stderr.log" nginx -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf"
  nginx_pid=$last_pid
  nginx_url=http://127.0.0.1:$nginx_port
  wait_http "$nginx_url/$(basename "$archive")" "$nginx_pid" nginx "$work/nginx/error.log"
}

start_registry() {
  registry_port=$(free_port)
  # The storage, delete and cache settings of Debian's packaged config; no auth, and no access
  # log (nginx has none either).
  cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $work/registry/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$registry_port
EOF
  start_bg docker-registry "$work/registry/registry.log" docker-registry serve "$work/registry/config.yml"
  registry_pid=$last_pid
  registry_url=http://127.0.0.1:$registry_port
  wait_http "$registry_url/v2/" "$registry_pid" docker-registry "$work/registry/registry.log"
}

# Pushes the archive as a blob of repository bench/xdp-port-filter with a monolithic upload:
# POST opens an upload session, one PUT with ?digest= sends all bytes and commits them.
push_registry_blob() {
  local location status
  location=$(curl -sS -o /dev/null -D - -X POST "$registry_url/v2/bench/xdp-port-filter/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  [[ -n $location ]] || die "docker-registry opened no upload session"
  [[ $location == http* ]] || location=$registry_url$location
  [[ $location == *\?* ]] && location+="&" || location+="?"
  status=$(curl -sS -o "$work/responses/registry-put.txt" -w '%{http_code}' -X PUT \
    -H 'Content-Type: application/octet-stream' --data-binary "@$archive" "${location}digest=sha256:$digest")
  [[ $status == 201 ]] || { cat "$work/responses/registry-put.txt" >&2; die "docker-registry blob upload answered $status"; }
  registry_blob_url=$registry_url/v2/bench/xdp-port-filter/blobs/sha256:$digest
}

# --- Checks and measurement ----------------------------------------------------------------

# Fetches URL and fails unless its body has the expected SHA-256.
expect_body() { # NAME URL SHA256
  local file=$work/responses/$1 got
  curl -fsS -o "$file" "$2" || die "$1: GET $2 failed"
  got=$(sha256sum "$file" | cut -d' ' -f1)
  [[ $got == "$3" ]] || die "$1: GET $2 returned other bytes (sha256 $got, expected $3)"
  echo "  $1: $(stat -c %s "$file") bytes, sha256 ${got:0:16}... identical"
}

# wrk reports latency as 812.34us, 4.56ms or 1.02s; prints it in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
    printf "%.2f", n }'
}

# measure LABEL SERVER URL PID... : a 1 s warm-up (first opens, connection setup, caches),
# then the measured wrk run. Appends a row to $rows and sets $last_rps. The PIDs are the
# server's processes, whose CPU use during the run is reported (100% = one core).
rows=()
row() { printf '%-20s %-16s %5s %12s %12s %12s %9s %7s\n' "$@"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
measure() {
  local label=$1 server=$2 url=$3 out before after rps latency transfer errors cpu
  shift 3
  wrk -t"$threads" -c"$connections" -d1s "$url" >/dev/null
  out=$work/responses/wrk-${label// /-}-$server-$round.txt
  before=$(cpu_ticks "$@")
  wrk -t"$threads" -c"$connections" -d"${duration}s" "$url" >"$out"
  after=$(cpu_ticks "$@")
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  latency=$(to_ms "$(awk '$1 == "Latency" {print $2}' "$out")")
  transfer=$(awk '/^Transfer\/sec:/ {print $2}' "$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$out")
  cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v d="$duration" 'BEGIN {printf "%.0f%%", 100 * t / hz / d}')
  [[ -n $rps ]] || die "no Requests/sec in $out"
  rows+=("$(row "$label" "$server" "$round" "$rps" "$latency" "$transfer" "$cpu" "$errors")")
  last_rps=$rps
}

ratio() { # NAME NUMERATOR DENOMINATOR TARGET
  awk -v name="$1" -v a="$2" -v b="$3" -v t="$4" 'BEGIN {
    r = a / b
    printf "  %-34s %6.2f   (target >= %s: %s)\n", name, r, t, (r >= t ? "met" : sprintf("missed by %.0f%%", 100 * (t - r) / t)) }'
}

# --- Run -----------------------------------------------------------------------------------

archive=$(build_artifact)
digest=$(sha256sum "$archive" | cut -d' ' -f1)
archive_size=$(stat -c %s "$archive")
echo "built $(basename "$archive"): $archive_size bytes, sha256 $digest"
# nginx serves the very same archive bytes.
install -m 644 "$archive" "$work/nginx/www/"

start_epr "$work/epr/data" "$work/epr/epr.log" "EPR_ADMIN_TOKEN=$token" "EPR_AUTO_PUBLISH=admin"
publish_epr "$archive" "$token" "$work/responses/publish.json" >/dev/null
echo "published to epr at $epr_url"
epr_artifact_url=$epr_url/xdp-port-filter/latest/jammy/xdp_port_filter.tar.gz
epr_metadata_url=$epr_url/api/v1/packages/xdp-port-filter/versions/1.0.0
epr_blob_url=$epr_url/v2/xdp-port-filter/blobs/sha256:$digest
# The OCI artifacts are made in the background just after publication.
for ((i = 0; i < 300; i++)); do
  curl -fsS -o /dev/null -I "$epr_blob_url" 2>/dev/null && break
  sleep 0.1
done

# nginx's metadata file is epr's own answer, so both send exactly the same bytes.
curl -fsS -o "$work/nginx/www/version.json" "$epr_metadata_url"
chmod 644 "$work/nginx/www/version.json"
metadata_digest=$(sha256sum "$work/nginx/www/version.json" | cut -d' ' -f1)

start_nginx
start_registry
push_registry_blob

echo "checking that every server returns the same bytes"
expect_body epr-artifact "$epr_artifact_url" "$digest"
expect_body nginx-artifact "$nginx_url/xdp_port_filter.tar.gz" "$digest"
expect_body registry-blob "$registry_blob_url" "$digest"
expect_body epr-oci-blob "$epr_blob_url" "$digest"
expect_body epr-metadata "$epr_metadata_url" "$metadata_digest"
expect_body nginx-metadata "$nginx_url/version.json" "$metadata_digest"

echo "measuring: wrk -t$threads -c$connections -d${duration}s on each (after a 1 s warm-up), $rounds rounds in turn"
# nginx's CPU is its master's plus its workers'.
mapfile -t nginx_pids < <(echo "$nginx_pid"; pgrep -P "$nginx_pid")
metadata_size=$(stat -c %s "$work/nginx/www/version.json")
epr_artifacts=() nginx_artifacts=() registry_artifacts=() epr_metadatas=() nginx_metadatas=() epr_blobs=() registry_blobs=()
for ((round = 1; round <= rounds; round++)); do
  measure "artifact $((archive_size / 1024)) KiB" epr "$epr_artifact_url" "$epr_pid"; epr_artifacts+=("$last_rps")
  measure "artifact $((archive_size / 1024)) KiB" nginx "$nginx_url/xdp_port_filter.tar.gz" "${nginx_pids[@]}"; nginx_artifacts+=("$last_rps")
  measure "artifact $((archive_size / 1024)) KiB" docker-registry "$registry_blob_url" "$registry_pid"; registry_artifacts+=("$last_rps")
  measure "metadata $metadata_size B" epr "$epr_metadata_url" "$epr_pid"; epr_metadatas+=("$last_rps")
  measure "metadata $metadata_size B" nginx "$nginx_url/version.json" "${nginx_pids[@]}"; nginx_metadatas+=("$last_rps")
  measure "OCI blob $((archive_size / 1024)) KiB" epr "$epr_blob_url" "$epr_pid"; epr_blobs+=("$last_rps")
  measure "OCI blob $((archive_size / 1024)) KiB" docker-registry "$registry_blob_url" "$registry_pid"; registry_blobs+=("$last_rps")
done
epr_artifact=$(median "${epr_artifacts[@]}") nginx_artifact=$(median "${nginx_artifacts[@]}")
registry_artifact=$(median "${registry_artifacts[@]}")
epr_metadata=$(median "${epr_metadatas[@]}") nginx_metadata=$(median "${nginx_metadatas[@]}")
epr_blob=$(median "${epr_blobs[@]}") registry_blob=$(median "${registry_blobs[@]}")

echo
echo "== epr serve vs nginx vs docker-registry: wrk -t$threads -c$connections -d${duration}s, $(nproc) cores, loopback, $rounds rounds"
row "case" "server" "round" "requests/s" "latency ms" "transfer/s" "srv CPU" "errors"
printf '%s\n' "${rows[@]}" | sort -s -t$'\x01' -k1.1,1.37
echo
echo "medians of requests/s: artifact epr $epr_artifact, nginx $nginx_artifact, docker-registry $registry_artifact;" \
  "metadata epr $epr_metadata, nginx $nginx_metadata; OCI blob epr $epr_blob, docker-registry $registry_blob"
echo "ratios of the medians:"
ratio "epr / nginx, artifact" "$epr_artifact" "$nginx_artifact" 1.0
ratio "epr / docker-registry, artifact" "$epr_artifact" "$registry_artifact" 5
ratio "epr / nginx, metadata" "$epr_metadata" "$nginx_metadata" 0.5
ratio "epr / docker-registry, OCI blob" "$epr_blob" "$registry_blob" 5
echo
echo "(latency: wrk's average; srv CPU: the server's CPU time over the run, 100% = one core;"
echo " errors: non-2xx answers plus socket errors; wrk output in $work/responses)"
