#!/usr/bin/env bash
# bench.sh — seclisten against a bare crypto/tls server (cmd/tlsref) and
# stunnel4 (in front of `tlsref --plain`), on loopback, then BENCHMARKS.md.
#
# Bounded: every load run lasts DURATION; the whole run is about
# ROUNDS x 3 servers x 4 modes x DURATION plus ROUNDS x 3 x DURATION for the
# flood. Self-cleaning: the trap stops every process this script started.
#
# Environment (defaults in brackets):
#   ROUNDS [3]        rounds; each runs every server in turn (interleaved)
#   DURATION [10s]    length of each load run
#   ECHO_CONNS [100]  connections of the echo runs
#   IDLE [10000]      connections held by the idle runs (lowered to fit ulimit -n)
#   GROUP []          --group for the handshake/resume/echo runs (empty: Go's defaults)
#   PORT_BASE [18440] first of five loopback ports used
#   OUT_DIR [bin/bench]            results/*.json, logs, meta.txt, crypto.txt
#   BENCHMARKS_MD [BENCHMARKS.md]  the report written (the SVG goes next to it)
#   CRYPTO [1]        run the BenchmarkCrypto* benchmarks of pkg/tlsconf if present
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
ECHO_CONNS=${ECHO_CONNS:-100}
IDLE=${IDLE:-10000}
GROUP=${GROUP:-}
PORT_BASE=${PORT_BASE:-18440}
OUT_DIR=${OUT_DIR:-bin/bench}
BENCHMARKS_MD=${BENCHMARKS_MD:-BENCHMARKS.md}
CRYPTO=${CRYPTO:-1}
GO=${GO:-go}

P_SECLISTEN=$PORT_BASE          # seclisten, limits off
P_TLSREF=$((PORT_BASE + 1))     # tlsref
P_STUNNEL=$((PORT_BASE + 2))    # stunnel4 ...
P_BACKEND=$((PORT_BASE + 3))    # ... in front of tlsref --plain
P_FLOOD=$((PORT_BASE + 4))      # seclisten, default limits

log() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
RESULTS=$OUT_DIR/results
WORK=$OUT_DIR/work
rm -rf "$RESULTS" "$WORK"
mkdir -p "$RESULTS" "$WORK"
META=$OUT_DIR/meta.txt
: >"$META"
meta() { printf '%s=%s\n' "$1" "$2" >>"$META"; }
note() { log "note: $*"; meta note "$*"; }

PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT PID: until PORT accepts, or fail if PID died.
wait_port() {
	local i
	for i in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		kill -0 "$2" 2>/dev/null || { log "process $2 for port $1 exited"; return 1; }
		sleep 0.1
	done
	log "port $1 not ready after 10s"
	return 1
}

log "building bin/seclisten and bin/tlsref"
mkdir -p bin
"$GO" build -trimpath -o bin/seclisten ./cmd/seclisten
"$GO" build -trimpath -o bin/tlsref ./cmd/tlsref
BIN=$ROOT/bin/seclisten
REF=$ROOT/bin/tlsref

# File descriptors: idle holds IDLE connections in the client and the
# server (stunnel holds two per connection: client side and backend).
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ]; then ulimit -n "$HARD"; fi
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
if [ $((IDLE + 256)) -gt "$NOFILE" ]; then
	note "ulimit -n is $NOFILE: idle lowered from $IDLE to $((NOFILE - 256)) connections"
	IDLE=$((NOFILE - 256))
fi
IDLE_STUNNEL=$IDLE
if [ $((2 * IDLE + 256)) -gt "$NOFILE" ]; then
	IDLE_STUNNEL=$(((NOFILE - 256) / 2))
	note "ulimit -n is $NOFILE and stunnel needs two descriptors per connection: its idle run holds $IDLE_STUNNEL connections"
fi

log "certificates in $WORK/certs"
"$BIN" certs init --dir "$WORK/certs" >/dev/null
CERT=$WORK/certs/server.pem
KEY=$WORK/certs/server-key.pem

# All servers print every line; their stdout goes to /dev/null.
log "starting seclisten on 127.0.0.1:$P_SECLISTEN (limits off)"
"$BIN" serve --addr "127.0.0.1:$P_SECLISTEN" --cert "$CERT" --key "$KEY" \
	--rate 0 --max-conns-per-ip 0 --msg-rate 0 --max-conns 20000 \
	>/dev/null 2>"$WORK/seclisten.log" &
PID_seclisten=$!
PIDS+=("$PID_seclisten")

log "starting tlsref on 127.0.0.1:$P_TLSREF"
"$REF" --addr "127.0.0.1:$P_TLSREF" --cert "$CERT" --key "$KEY" >/dev/null 2>"$WORK/tlsref.log" &
PID_tlsref=$!
PIDS+=("$PID_tlsref")

SERVERS=(seclisten tlsref)
STUNNEL=$(command -v stunnel4 || command -v stunnel || true)
if [ -n "$STUNNEL" ]; then
	meta stunnel_version "$("$STUNNEL" -version 2>&1 | grep -m1 '^stunnel' || echo unknown)"
	"$REF" --plain --addr "127.0.0.1:$P_BACKEND" >/dev/null 2>"$WORK/backend.log" &
	PID_backend=$!
	PIDS+=("$PID_backend")
	cat >"$WORK/stunnel.conf" <<CONF
foreground = yes
syslog = no
pid =
output = $WORK/stunnel.log
debug = warning
[tlsref]
accept = 127.0.0.1:$P_STUNNEL
connect = 127.0.0.1:$P_BACKEND
cert = $CERT
key = $KEY
CONF
	log "starting stunnel on 127.0.0.1:$P_STUNNEL -> tlsref --plain on 127.0.0.1:$P_BACKEND"
	"$STUNNEL" "$WORK/stunnel.conf" >/dev/null 2>"$WORK/stunnel.stderr" &
	PID_stunnel=$!
	PIDS+=("$PID_stunnel")
	SERVERS+=(stunnel)
	wait_port "$P_BACKEND" "$PID_backend"
else
	meta stunnel_version "not installed"
	note "stunnel4 is not installed: its rows are skipped"
fi

# Flood target: seclisten with its default limits (--rate, --burst, ...),
# applied to loopback too (it is exempt by default) so the flood from
# 127.0.0.2 meets them.
log "starting seclisten on 127.0.0.1:$P_FLOOD (default limits, --limit-loopback)"
"$BIN" serve --addr "127.0.0.1:$P_FLOOD" --cert "$CERT" --key "$KEY" --limit-loopback \
	>/dev/null 2>"$WORK/seclisten-flood.log" &
PID_flood=$!
PIDS+=("$PID_flood")
help=$("$BIN" serve --help)
FLOOD_RATE=$(sed -n 's/.*--rate N .*(default: "\([0-9.]*\)").*/\1/p' <<<"$help")
FLOOD_BURST=$(sed -n 's/.*--burst N .*(default: "\([0-9]*\)").*/\1/p' <<<"$help")

declare -A PORT=([seclisten]=$P_SECLISTEN [tlsref]=$P_TLSREF [stunnel]=$P_STUNNEL)
declare -A PID=([seclisten]=$PID_seclisten [tlsref]=$PID_tlsref [stunnel]=${PID_stunnel:-0})
for s in "${SERVERS[@]}"; do wait_port "${PORT[$s]}" "${PID[$s]}"; done
wait_port "$P_FLOOD" "$PID_flood"

GROUP_ARGS=()
[ -n "$GROUP" ] && GROUP_ARGS=(--group "$GROUP")

# run NAME ARGS...: one bench run, its JSON in results/NAME.json. Runs with
# errors are kept (--max-error-rate 100%): the report shows their count.
run() {
	local name=$1
	shift
	if "$BIN" bench --json --duration "$DURATION" --ca "$WORK/certs/ca.pem" --max-error-rate 100% "$@" >"$RESULTS/$name.json" 2>"$WORK/$name.log"; then
		log "$name: $(sed -n 's/.*"ops_per_s":\([0-9.e+]*\).*/\1/p' "$RESULTS/$name.json") ops/s" \
			"p99 $(sed -n 's/.*"p99_ms":\([0-9.e+]*\).*/\1/p' "$RESULTS/$name.json") ms"
	else
		log "$name: FAILED (see $WORK/$name.log)"
		tail -n 3 "$WORK/$name.log" >&2 || true
		rm -f "$RESULTS/$name.json"
	fi
}

CMD="ROUNDS=$ROUNDS DURATION=$DURATION ECHO_CONNS=$ECHO_CONNS IDLE=$IDLE GROUP=$GROUP scripts/bench.sh"
meta command "$CMD"
meta rounds "$ROUNDS"
meta duration "$DURATION"
meta echo_conns "$ECHO_CONNS"
meta idle "$IDLE"
meta idle_stunnel "$IDLE_STUNNEL"
meta group "${GROUP:-Go defaults}"
meta flood_rate "${FLOOD_RATE:-10}"
meta flood_burst "${FLOOD_BURST:-20}"
meta go_version "$("$GO" version)"
meta nofile "$NOFILE"

for r in $(seq 1 "$ROUNDS"); do
	log "round $r/$ROUNDS"
	for s in "${SERVERS[@]}"; do
		addr=127.0.0.1:${PORT[$s]}
		idle=$IDLE
		[ "$s" = stunnel ] && idle=$IDLE_STUNNEL
		run "$s-handshake-$r" --mode handshake --addr "$addr" "${GROUP_ARGS[@]}"
		run "$s-resume-$r" --mode resume --addr "$addr" "${GROUP_ARGS[@]}"
		run "$s-echo-$r" --mode echo --conns "$ECHO_CONNS" --addr "$addr" "${GROUP_ARGS[@]}"
		run "$s-idle-$r" --mode idle --conns "$idle" --pid "${PID[$s]}" --addr "$addr"
	done
	# The flood: the probe's round trips alone, then with the flood running.
	faddr=127.0.0.1:$P_FLOOD
	run "seclisten-probe-$r" --mode echo --conns 1 --source 127.0.0.3 --addr "$faddr"
	run "seclisten-flood-$r" --mode flood --source 127.0.0.2 --addr "$faddr" &
	fpid=$!
	sleep 0.2
	run "seclisten-probeflood-$r" --mode echo --conns 1 --source 127.0.0.3 --addr "$faddr"
	wait "$fpid"
	# Let the flood's bucket refill before the next round's probe.
	sleep 2
done

if [ "$CRYPTO" = 1 ] && grep -qs 'func BenchmarkCrypto' pkg/tlsconf/*_test.go; then
	log "crypto benchmarks (pkg/tlsconf)"
	"$GO" test -run '^$' -bench 'BenchmarkCrypto|BenchmarkHandshake' -benchtime 1s ./pkg/tlsconf/ >"$OUT_DIR/crypto.txt" 2>&1 ||
		log "crypto benchmarks failed (see $OUT_DIR/crypto.txt)"
else
	rm -f "$OUT_DIR/crypto.txt"
fi

log "writing $BENCHMARKS_MD"
"$GO" run ./scripts/benchreport -dir "$OUT_DIR" -out "$BENCHMARKS_MD"
