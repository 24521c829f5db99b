#!/usr/bin/env bash
# Runs a local ACME CA (Let's Encrypt's Pebble, with pebble-challtestsrv as
# its DNS: every name resolves to 127.0.0.1) so you can try seclisten's
# automatic certificates offline:
#
#   scripts/pebble.sh            # in one terminal; Ctrl-C stops it
#   (then run the seclisten command it prints, in another)
#
# Pebble is pinned as a tool in go.mod; this builds it from the module cache.
# Ports (override by environment): PEBBLE_PORT 14000 (ACME API),
# PEBBLE_MGMT_PORT 15000, PEBBLE_DNS_PORT 8053, and where Pebble validates:
# SECLISTEN_PORT 8443 (TLS-ALPN-01, seclisten's own listener) and
# HTTP01_PORT 5002 (HTTP-01, seclisten's --acme-http-addr).
set -euo pipefail
cd "$(dirname "$0")/.."

pebble_port=${PEBBLE_PORT:-14000}
mgmt_port=${PEBBLE_MGMT_PORT:-15000}
dns_port=${PEBBLE_DNS_PORT:-8053}
tls_port=${SECLISTEN_PORT:-8443}
http_port=${HTTP01_PORT:-5002}

mkdir -p bin
go build -o bin/pebble github.com/letsencrypt/pebble/v2/cmd/pebble
go build -o bin/pebble-challtestsrv github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv
certs="$(go list -m -f '{{.Dir}}' github.com/letsencrypt/pebble/v2)/test/certs"

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/pebble.json" <<JSON
{"pebble": {
  "listenAddress": "127.0.0.1:$pebble_port",
  "managementListenAddress": "127.0.0.1:$mgmt_port",
  "certificate": "$certs/localhost/cert.pem",
  "privateKey": "$certs/localhost/key.pem",
  "httpPort": $http_port,
  "tlsPort": $tls_port,
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false,
  "retryAfter": {"authz": 0, "order": 0},
  "keyAlgorithm": "ecdsa",
  "profiles": {
    "default": {"description": "90 days", "validityPeriod": 7776000},
    "tiny": {"description": "30 seconds, to watch renewals", "validityPeriod": 30}
  }
}}
JSON

bin/pebble-challtestsrv -dnsserver "127.0.0.1:$dns_port" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
  -http01 "" -https01 "" -tlsalpn01 "" -doh "" -management "127.0.0.1:$((dns_port + 2))" >"$work/dns.log" 2>&1 &
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 bin/pebble -config "$work/pebble.json" \
  -dnsserver "127.0.0.1:$dns_port" -strict=false &

for _ in $(seq 50); do
  curl -skf "https://127.0.0.1:$pebble_port/dir" >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<EOF2

Pebble is up: https://127.0.0.1:$pebble_port/dir (its API certificate is signed by
$certs/pebble.minica.pem). Now, in another terminal:

  bin/seclisten serve --addr 127.0.0.1:$tls_port --acme-domain seclisten.test \\
    --acme-agree --acme-email you@seclisten.test --acme-profile default \\
    --acme-ca https://127.0.0.1:$pebble_port/dir --acme-ca-root $certs/pebble.minica.pem \\
    --acme-storage /tmp/seclisten-pebble --acme-http-addr 127.0.0.1:$http_port

and check the served chain against Pebble's issuing root (made anew at each start):

  curl -sk https://127.0.0.1:$mgmt_port/roots/0 > /tmp/pebble-root.pem
  openssl s_client -connect 127.0.0.1:$tls_port -servername seclisten.test \\
    -CAfile /tmp/pebble-root.pem -verify_return_error -quiet

(--acme-profile tiny gives 30-second certificates: watch them renew in the log, every 20 s or so.)
Ctrl-C stops Pebble.
EOF2
wait
