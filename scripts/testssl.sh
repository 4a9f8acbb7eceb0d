#!/usr/bin/env bash
# Scans `epr serve` over HTTPS with testssl.sh (protocols, cipher categories, HTTP headers,
# known TLS vulnerabilities) and prints a markdown summary. The server runs on a throwaway data
# directory with a throwaway test CA and server certificate (EC P-256, for 127.0.0.1 and
# localhost). Exits 1 when a finding is LOW or worse, when SSLv2, SSLv3, TLS 1.0 or TLS 1.1 is
# offered, or when TLS 1.2 or TLS 1.3 is not; 2 when the scan itself fails.
# Installs testssl.sh, jq and curl with apt when they are missing (as root, or through sudo).
#
#   scripts/testssl.sh                  scan and print the summary
#   scripts/testssl.sh --write-docs     also replace the "testssl.sh summary" section of docs/tls.md
#
# Environment: EPR (the epr binary; default the release build, so run `swift build -c release`
# first), TESTSSL_OUT (a directory to keep testssl's JSON and log in; default none).
set -euo pipefail
cd "$(dirname "$0")/.."

write_docs=false
case ${1:-} in
  "") ;;
  --write-docs) write_docs=true ;;
  *) echo "usage: scripts/testssl.sh [--write-docs]" >&2; exit 2 ;;
esac

# --- Tools ---------------------------------------------------------------------------------

missing=()
command -v testssl >/dev/null 2>&1 || missing+=(testssl.sh)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  as_root=()
  [[ $(id -u) -eq 0 ]] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

epr=${EPR:-$(swift build -c release --show-bin-path)/epr}
[[ -x $epr ]] || { echo "error: no epr binary at $epr (build it with swift build -c release, or set EPR)" >&2; exit 2; }

# --- Certificates and server ---------------------------------------------------------------

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A test CA, and a server certificate it signs. `x509 -req` does not copy extensions from the
# request, so they come from an extension file.
p256=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 -new "${p256[@]}" -keyout "$work/ca.key" -out "$work/ca.crt" -days 2 -sha256 \
  -subj "/CN=epr testssl CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -new "${p256[@]}" -keyout "$work/server.key" -out "$work/server.csr" -subj "/CN=localhost" 2>/dev/null
cat >"$work/server.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/server.crt" -days 2 -sha256 -extfile "$work/server.ext" 2>/dev/null
chmod 600 "$work/ca.key" "$work/server.key"

EPR_ADMIN_TOKEN=epr_$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n') \
  "$epr" serve --data "$work/data" --host 127.0.0.1 --port 0 \
  --tls-certificate "$work/server.crt" --tls-key "$work/server.key" 2>"$work/server.log" &
server_pid=$!

# The port is in the `listening` log line: "address":"[IPv4]127.0.0.1/127.0.0.1:PORT".
port=""
for _ in $(seq 300); do
  address=$(jq -Rr 'fromjson? | select(.message == "listening") | .address' "$work/server.log")
  if [[ -n $address ]]; then port=${address##*:}; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $port ]]; then
  echo "error: epr serve did not start listening:" >&2
  cat "$work/server.log" >&2
  exit 2
fi

path=/api/v1/packages
url=https://127.0.0.1:$port$path
status=$(curl --noproxy '*' -sS --cacert "$work/ca.crt" -o /dev/null -w '%{http_code}' "$url")
[[ $status == 200 ]] || { echo "error: GET $url answered $status, not 200" >&2; exit 2; }

# --- Scan ----------------------------------------------------------------------------------

checks=(-p -s -h -U)
json=$work/testssl.json
start=$SECONDS
rc=0
testssl --quiet --color 0 --warnings batch --nodns none "${checks[@]}" --jsonfile "$json" "$url" \
  >"$work/testssl.log" 2>&1 || rc=$?
runtime=$((SECONDS - start))

kill -TERM "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
server_pid=""

if [[ -n ${TESTSSL_OUT:-} ]]; then
  mkdir -p "$TESTSSL_OUT"
  cp "$json" "$work/testssl.log" "$TESTSSL_OUT/" 2>/dev/null || true
fi
if [[ ! -s $json ]]; then
  echo "error: testssl wrote no results (exit $rc):" >&2
  tail -20 "$work/testssl.log" >&2
  exit 2
fi

# --- Summary -------------------------------------------------------------------------------

version=$(testssl --version 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | awk '$1 == "testssl" { print $2; exit }')
package=$(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null || true)
openssl_version=$(openssl version | awk '{ print $1, $2 }')

# Findings at LOW or above; testssl's own trouble (WARN, FATAL); protocol expectations.
findings=$(jq -r '.[] | select(.severity | IN("LOW", "MEDIUM", "HIGH", "CRITICAL"))
  | "| \(.id) | \(.severity) | \(.finding | gsub("\\|"; "/")) |"' "$json")
problems=$(jq -r '.[] | select(.severity | IN("WARN", "FATAL")) | "- \(.severity) \(.id): \(.finding)"' "$json")
expectations=$(jq -r '
  . as $results
  | def finding($id): ($results | map(select(.id == $id))[0].finding // "not tested");
  ([["SSLv2", false], ["SSLv3", false], ["TLS1", false], ["TLS1_1", false], ["TLS1_2", true], ["TLS1_3", true]][]
   | .[0] as $id | .[1] as $wanted | finding($id) as $f
   | select(($f | test("^offered")) != $wanted)
   | "- \($id) is \($f) (expected: \(if $wanted then "offered" else "not offered" end))")' "$json")

rows() {
  jq -r --arg pattern "$1" '.[] | select(.id | test($pattern))
    | "| \(.id) | \(.severity) | \(.finding | gsub("\\|"; "/")) |"' "$json"
}

summary=$work/summary.md
{
  echo "## testssl.sh summary"
  echo
  echo "Scanned on $(date -u +%Y-%m-%d) with \`scripts/testssl.sh\`, which serves a throwaway data directory"
  echo "with a test CA's EC P-256 certificate for 127.0.0.1 and localhost, and runs:"
  echo
  echo "    testssl --quiet --color 0 --warnings batch --nodns none ${checks[*]} --jsonfile testssl.json \\"
  echo "            https://127.0.0.1:PORT$path"
  echo
  echo "- tool: testssl.sh ${version:-unknown}${package:+ (Debian package $package)} with $openssl_version"
  echo "- checks: \`${checks[*]}\` (protocols, cipher categories, HTTP headers, vulnerabilities)"
  echo "- runtime: ${runtime} s; testssl exit status $rc"
  echo "- results by severity: $(jq -r 'group_by(.severity) | map("\(.[0].severity) \(length)") | join(", ")' "$json")"
  echo
  echo "| id | severity | finding |"
  echo "| --- | --- | --- |"
  rows '^(SSLv2|SSLv3|TLS1|TLS1_1|TLS1_2|TLS1_3)$'
  rows '^cipherlist_'
  rows '^HSTS'
  echo
  if [[ -n $findings ]]; then
    echo "Findings at LOW or above:"
    echo
    echo "| id | severity | finding |"
    echo "| --- | --- | --- |"
    echo "$findings"
  else
    echo "Findings at LOW or above: none."
  fi
  if [[ -n $expectations ]]; then
    echo
    echo "Protocols not as expected:"
    echo
    echo "$expectations"
  fi
  if [[ -n $problems ]]; then
    echo
    echo "Scan problems:"
    echo
    echo "$problems"
  fi
  echo
  if [[ -n $problems || $rc -ge 242 ]]; then
    echo "Result: the scan did not complete."
  elif [[ -n $findings || -n $expectations ]]; then
    echo "Result: **fail**."
  else
    echo "Result: pass (TLS 1.2 and 1.3 only, no finding at LOW or above)."
  fi
} >"$summary"
cat "$summary"

if $write_docs; then
  docs=docs/tls.md
  # Replace from the summary's heading up to the next second-level heading (or the end).
  awk -v summary="$summary" '
    /^## testssl\.sh summary$/ { while ((getline line < summary) > 0) print line; skipping = 1; found = 1; next }
    skipping && /^## / { skipping = 0; print "" }
    !skipping { print }
    END { if (!found) { print ""; while ((getline line < summary) > 0) print line } }
  ' "$docs" >"$work/tls.md"
  cp "$work/tls.md" "$docs"
  echo "wrote $docs" >&2
fi

if [[ -n $problems || $rc -ge 242 ]]; then exit 2; fi
if [[ -n $findings || -n $expectations ]]; then exit 1; fi
exit 0
