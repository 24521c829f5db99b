#!/usr/bin/env bash
# bench.sh — seclisten with its default defences against a bare crypto/tls
# server (cmd/tlsref), and for memory per idle connection against HAProxy
# (TLS terminated in HAProxy, `tlsref --plain` behind it), on loopback;
# then BENCHMARKS.md. Issue [8/8].
#
# Four groups of runs (RUNS selects them):
#   cpu    ROUNDS interleaved rounds: each run of seclisten, then the same
#          run of tlsref (the other way round every other round), each for
#          DURATION: handshake (full, GROUP), resume, mtls (full,
#          client certificate required), mlkem (full, X25519MLKEM768), line
#          (connect + one line + close) and echo (ECHO_CONNS connections).
#          Each run records the server's CPU time (utime + stime from
#          /proc/PID/stat, before and after) beside its rate. Every round
#          starts fresh server processes and warms them up unmeasured: two
#          processes of one binary can differ by 2-3% for their whole life,
#          and many short rounds, each with its own processes, average that
#          out with the machine's drift. Which server starts first
#          alternates too (the order of the runs every other round).
#          A control: the CONTROL run is made on a second tlsref process
#          too, measured against tlsref as seclisten is, so each run shows
#          what its method reads for two identical servers.
#   flood  FLOOD_ROUNDS x (probe alone, flood + probe) against seclisten's
#          default limits with --limit-loopback.
#   idle   once per size (IDLE_SIZES, then the largest the descriptor limit
#          allows), a fresh server each: seclisten, tlsref and HAProxy hold
#          N idle TLS connections; the server's RSS growth, descriptors
#          and the time to open them all.
#   park   BenchmarkParkFirstLine (cmd/seclisten), PARK_COUNT runs of
#          PARK_SAMPLES: the first line's round trip after a silence on a
#          parked connection and on one of a server that never parks,
#          interleaved; p50, p99 and the extra p99 (park.txt).
#   loop   BenchmarkRun (pkg/exchange) with -benchmem: the exchange loop's
#          allocations and time per message (loop.txt).
#   crypto the BenchmarkCrypto*/BenchmarkHandshake* of pkg/tlsconf.
#
# The server runs pinned to CPU SERVER_CPU and the load generator (seclisten
# bench) to LOAD_CPU (taskset, when there are two CPUs or more), so the
# per-CPU-second figures are not blurred by the client.
#
# Bounded: about ROUNDS x ((2 x 6 + 1) x (DURATION + 0.5s) + 4s) + FLOOD_ROUNDS x
# (2 x FLOOD_DURATION + 3s) + the idle runs (each: open, IDLE_SETTLE, at
# most IDLE_STABLE_MAX more, stop) + PARK_COUNT x PARK_SAMPLES x about
# 25 ms (each sample waits for the parking): about 16 minutes with the
# defaults.
# Self-cleaning: the trap stops every process this script started.
#
# Environment (defaults in brackets):
#   RUNS ["cpu flood idle park loop crypto"]  the groups to run (e.g. RUNS=idle)
#   ROUNDS [16]         rounds of the cpu group (interleaved)
#   DURATION [2s]       length of each cpu run
#   FLOOD_ROUNDS [5]    rounds of the flood group
#   FLOOD_DURATION [5s] length of each flood and probe run
#   ECHO_CONNS [100]    connections of the echo runs
#   GROUP [X25519]      key exchange of every run but mlkem (and idle: X25519
#                       too, which HAProxy's OpenSSL also speaks)
#   CONTROL [resume]    the run also made on a second tlsref process, the
#                       control (empty: none); one of handshake, resume,
#                       mlkem, line
#   CONCURRENCY [8]     workers of the handshake-like runs
#   IDLE_SIZES ["1000 5000 9000"]  idle sizes; the largest the descriptor
#                       limit allows (IDLE_MAX, default limit - 1000, at
#                       most 19000) is added for seclisten and tlsref
#   PARK_COUNT [3] PARK_SAMPLES [500]  runs and samples of the park group
#   HAPROXY_MAX [9000]  HAProxy's largest size (two descriptors a connection)
#   IDLE_PER_CLIENT [5000]  connections per load-generator process, each from
#                       its own source address 127.0.0.2, .3, ...
#   IDLE_SETTLE [5]     seconds held after the last connection opened before
#                       the memory is read: a server may change an idle
#                       connection's memory after a delay (parking); then up
#                       to IDLE_STABLE_MAX [10] more seconds until two
#                       readings a second apart differ by under 1%
#   SERVER_CPU [0] LOAD_CPU [1]  the CPUs of taskset
#   PORT_BASE [18440]   first of nine loopback ports used (and PORT_BASE + 17)
#   OUT_DIR [bin/bench]            results/, idle/, logs, meta.txt, crypto.txt
#   BENCHMARKS_MD [BENCHMARKS.md]  the report written (the SVG goes next to it)
set -euo pipefail

LOG_NAME=bench
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh" # cd to the root; log, PIDS, stop, wait_port, ...
RUNS=${RUNS:-cpu flood idle park loop crypto}
ROUNDS=${ROUNDS:-16}
DURATION=${DURATION:-2s}
FLOOD_ROUNDS=${FLOOD_ROUNDS:-5}
FLOOD_DURATION=${FLOOD_DURATION:-5s}
ECHO_CONNS=${ECHO_CONNS:-100}
GROUP=${GROUP:-X25519}
CONCURRENCY=${CONCURRENCY:-8}
CONTROL=${CONTROL-resume}
case $CONTROL in
"" | handshake | resume | mlkem | line) ;;
*) die "CONTROL=$CONTROL: want one of handshake, resume, mlkem, line, or empty" ;;
esac
IDLE_SIZES=${IDLE_SIZES:-1000 5000 9000}
HAPROXY_MAX=${HAPROXY_MAX:-9000}
PARK_COUNT=${PARK_COUNT:-3}
PARK_SAMPLES=${PARK_SAMPLES:-500}
IDLE_PER_CLIENT=${IDLE_PER_CLIENT:-5000}
IDLE_SETTLE=${IDLE_SETTLE:-5}
IDLE_STABLE_MAX=${IDLE_STABLE_MAX:-10}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT_BASE=${PORT_BASE:-18440}
OUT_DIR=${OUT_DIR:-bin/bench}
BENCHMARKS_MD=${BENCHMARKS_MD:-BENCHMARKS.md}
GO=${GO:-go}

P_SECLISTEN=$PORT_BASE        # seclisten, default defences
P_MTLS=$((PORT_BASE + 1))     # seclisten --client-ca
P_TLSREF=$((PORT_BASE + 2))   # tlsref
P_TLSREF_MTLS=$((PORT_BASE + 3)) # tlsref --client-ca
P_FLOOD=$((PORT_BASE + 4))    # seclisten, default limits on loopback too
P_IDLE=$((PORT_BASE + 5))     # the idle run's server (or HAProxy)
P_BACKEND=$((PORT_BASE + 6))  # HAProxy's backend, tlsref --plain
P_METRICS=$((PORT_BASE + 7))  # seclisten's --metrics-addr (the --client-ca one: + 10)
P_CONTROL=$((PORT_BASE + 8))  # the control, a second tlsref

want() { case " $RUNS " in *" $1 "*) return 0 ;; esac; return 1; }

fresh_out_dir
IDLE_DIR=$OUT_DIR/idle
rm -rf "$IDLE_DIR"
mkdir -p "$IDLE_DIR"
META=$OUT_DIR/meta.txt
: >"$META"
meta() { printf '%s=%s\n' "$1" "$2" >>"$META"; }
note() { log "note: $*"; meta note "$*"; }

# Pinning: the server on SERVER_CPU, the load generator on LOAD_CPU.
PIN_SERVER=()
PIN_LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	PIN_SERVER=(taskset -c "$SERVER_CPU")
	PIN_LOAD=(taskset -c "$LOAD_CPU")
	meta pinning "server on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU (taskset)"
else
	meta pinning "none"
	note "taskset is missing or there is one CPU: the server and the load generator share the CPUs"
fi
TCK=$(getconf CLK_TCK)

# cpu_ticks PID: the process's user + system CPU time, in clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# rss_kib PID...: the sum of the processes' VmRSS in KiB.
rss_kib() {
	local pid sum=0 v
	for pid in "$@"; do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
		sum=$((sum + v))
	done
	echo "$sum"
}
# fds PID: open descriptors of the process.
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

log "building bin/seclisten and bin/tlsref"
mkdir -p bin
"$GO" build -trimpath -o bin/seclisten ./cmd/seclisten
"$GO" build -trimpath -o bin/tlsref ./cmd/tlsref
BIN=$ROOT/bin/seclisten
REF=$ROOT/bin/tlsref

HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ]; then ulimit -n "$HARD"; fi
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
IDLE_MAX=${IDLE_MAX:-$((NOFILE - 1000 < 19000 ? NOFILE - 1000 : 19000))}

log "certificates in $WORK/certs"
"$BIN" certs init --dir "$WORK/certs" >/dev/null
CERTS=$WORK/certs
CERT=$CERTS/server.pem
KEY=$CERTS/server-key.pem
CA=$CERTS/ca.pem
CLIENT=(--cert "$CERTS/client.pem" --key "$CERTS/client-key.pem")

# seclisten's default defences: limits (loopback exempt), timeouts,
# sanitising, logging at info (to a file), metrics served. Only sizes move:
# --max-conns for the idle runs beyond its default.
seclisten_serve() { # PORT METRICS_PORT LOG EXTRA...
	local port=$1 mport=$2 logf=$3
	shift 3
	"${PIN_SERVER[@]}" "$BIN" serve --addr "127.0.0.1:$port" --cert "$CERT" --key "$KEY" \
		--metrics-addr "127.0.0.1:$mport" "$@" >/dev/null 2>"$logf" &
}

CMD="RUNS='$RUNS' ROUNDS=$ROUNDS DURATION=$DURATION FLOOD_ROUNDS=$FLOOD_ROUNDS ECHO_CONNS=$ECHO_CONNS GROUP=$GROUP CONTROL=$CONTROL IDLE_SIZES='$IDLE_SIZES' IDLE_MAX=$IDLE_MAX HAPROXY_MAX=$HAPROXY_MAX IDLE_SETTLE=$IDLE_SETTLE PARK_COUNT=$PARK_COUNT PARK_SAMPLES=$PARK_SAMPLES scripts/bench.sh"
meta command "$CMD"
meta runs "$RUNS"
meta rounds "$ROUNDS"
meta duration "$DURATION"
meta flood_rounds "$FLOOD_ROUNDS"
meta flood_duration "$FLOOD_DURATION"
meta echo_conns "$ECHO_CONNS"
meta group "$GROUP"
meta concurrency "$CONCURRENCY"
meta control "$CONTROL"
meta go_version "$("$GO" version)"
meta nofile "$NOFILE"
meta idle_settle "$IDLE_SETTLE"
meta park_count "$PARK_COUNT"
meta park_samples "$PARK_SAMPLES"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta started "$(date -u '+%Y-%m-%d %H:%M UTC')"

# run NAME SERVER_PID ARGS...: one bench run pinned to LOAD_CPU, its JSON in
# results/NAME.json with the server's CPU seconds over the run added
# (server_cpu_s). Runs with errors are kept (--max-error-rate 100%): the
# report shows their count.
run() {
	local name=$1 spid=$2 t0 t1 cpu
	shift 2
	t0=$(cpu_ticks "$spid")
	if "${PIN_LOAD[@]}" "$BIN" bench --json --ca "$CA" --max-error-rate 100% "$@" >"$RESULTS/$name.json" 2>"$WORK/$name.log"; then
		t1=$(cpu_ticks "$spid")
		cpu=$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {printf "%.3f", (b - a) / t}')
		sed -i "s/}\$/,\"server_cpu_s\":$cpu}/" "$RESULTS/$name.json"
		log "$name: $(sed -n 's/.*"ops_per_s":\([0-9.e+]*\).*/\1/p' "$RESULTS/$name.json") ops/s," \
			"server CPU ${cpu}s, p99 $(sed -n 's/.*"p99_ms":\([0-9.e+]*\).*/\1/p' "$RESULTS/$name.json") ms"
	else
		log "$name: FAILED (see $WORK/$name.log)"
		tail -n 3 "$WORK/$name.log" >&2 || true
		rm -f "$RESULTS/$name.json"
	fi
}

# start_seclisten_pair, start_tlsref_pair: a fresh server of each kind,
# with and without --client-ca.
start_seclisten_pair() {
	seclisten_serve "$P_SECLISTEN" "$P_METRICS" "$WORK/seclisten.log"
	PID_seclisten=$!
	# --client-ca alone: --client-auth require is its default.
	seclisten_serve "$P_MTLS" "$((P_METRICS + 10))" "$WORK/seclisten-mtls.log" --client-ca "$CA"
	PID_seclisten_mtls=$!
	PIDS+=("$PID_seclisten" "$PID_seclisten_mtls")
}
start_tlsref_pair() {
	"${PIN_SERVER[@]}" "$REF" --addr "127.0.0.1:$P_TLSREF" --cert "$CERT" --key "$KEY" >/dev/null 2>"$WORK/tlsref.log" &
	PID_tlsref=$!
	"${PIN_SERVER[@]}" "$REF" --addr "127.0.0.1:$P_TLSREF_MTLS" --cert "$CERT" --key "$KEY" --client-ca "$CA" >/dev/null 2>"$WORK/tlsref-mtls.log" &
	PID_tlsref_mtls=$!
	PIDS+=("$PID_tlsref" "$PID_tlsref_mtls")
	if [ -n "$CONTROL" ]; then
		"${PIN_SERVER[@]}" "$REF" --addr "127.0.0.1:$P_CONTROL" --cert "$CERT" --key "$KEY" >/dev/null 2>"$WORK/control.log" &
		PID_control=$!
		PIDS+=("$PID_control")
	fi
}

# start_cpu_servers FIRST: both pairs, FIRST's (seclisten or tlsref)
# started first, each server warmed up by a short unmeasured run of every
# kind it serves (first handshakes grow stacks, heaps and caches).
start_cpu_servers() {
	if [[ $1 == seclisten ]]; then
		start_seclisten_pair
		start_tlsref_pair
	else
		start_tlsref_pair
		start_seclisten_pair
	fi
	wait_port "$P_SECLISTEN" "$PID_seclisten"
	wait_port "$P_MTLS" "$PID_seclisten_mtls"
	wait_port "$P_TLSREF" "$PID_tlsref"
	wait_port "$P_TLSREF_MTLS" "$PID_tlsref_mtls"
	[ -z "$CONTROL" ] || wait_port "$P_CONTROL" "$PID_control"
	local p m warm=(--ca "$CA" --duration 300ms --concurrency "$CONCURRENCY" --max-error-rate 100%)
	for p in "$P_SECLISTEN" "$P_TLSREF" ${CONTROL:+"$P_CONTROL"}; do
		for m in handshake resume line; do
			"${PIN_LOAD[@]}" "$BIN" bench --mode "$m" --addr "127.0.0.1:$p" "${warm[@]}" >/dev/null 2>&1 || true
		done
	done
	for p in "$P_MTLS" "$P_TLSREF_MTLS"; do
		"${PIN_LOAD[@]}" "$BIN" bench --mode handshake --addr "127.0.0.1:$p" "${CLIENT[@]}" "${warm[@]}" >/dev/null 2>&1 || true
	done
}

if want cpu; then
	log "seclisten (default defences) on :$P_SECLISTEN, with --client-ca on :$P_MTLS; tlsref on :$P_TLSREF, with --client-ca on :$P_TLSREF_MTLS; fresh processes every round"
	declare -A PORT=([seclisten]=$P_SECLISTEN [tlsref]=$P_TLSREF [control]=$P_CONTROL)
	[ -z "$CONTROL" ] || log "the control, a second tlsref, on :$P_CONTROL: its $CONTROL runs beside tlsref's"
	declare -A MPORT=([seclisten]=$P_MTLS [tlsref]=$P_TLSREF_MTLS)
	loop=(--duration "$DURATION" --concurrency "$CONCURRENCY")
	for r in $(seq 1 "$ROUNDS"); do
		log "cpu round $r/$ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
		# Which server starts first and which runs first each alternate,
		# every round and every other round: each of the four orders in
		# four rounds. (Of two processes of one binary started together,
		# the first started has measured up to 1.5% slower.)
		first=seclisten
		if ((r % 2 == 0)); then first=tlsref; fi
		start_cpu_servers "$first"
		declare -A PID=([seclisten]=$PID_seclisten [tlsref]=$PID_tlsref [control]=${PID_control:-})
		declare -A MPID=([seclisten]=$PID_seclisten_mtls [tlsref]=$PID_tlsref_mtls)
		# Each run of seclisten and the same run of tlsref back to back,
		# the first of the two alternating from round to round: the
		# report divides the two runs of a round, so the machine's drift
		# (other work, frequency) between rounds cancels out.
		order=(seclisten tlsref)
		if (((r - 1) / 2 % 2 == 1)); then order=(tlsref seclisten); fi
		for m in handshake resume mtls mlkem line echo; do
			# The control's run goes on tlsref's other side: seclisten
			# and the control each beside tlsref, each first of its pair
			# every other round.
			who=("${order[@]}")
			if [ "$m" = "$CONTROL" ]; then
				if [ "${order[0]}" = seclisten ]; then who=(seclisten tlsref control); else who=(control tlsref seclisten); fi
			fi
			for s in "${who[@]}"; do
				a=127.0.0.1:${PORT[$s]}
				case $m in
				handshake) run "$s-handshake-$r" "${PID[$s]}" --mode handshake --addr "$a" --group "$GROUP" "${loop[@]}" ;;
				resume) run "$s-resume-$r" "${PID[$s]}" --mode resume --addr "$a" --group "$GROUP" "${loop[@]}" ;;
				mtls) run "$s-mtls-$r" "${MPID[$s]}" --mode handshake --addr "127.0.0.1:${MPORT[$s]}" --group "$GROUP" "${CLIENT[@]}" "${loop[@]}" ;;
				mlkem) run "$s-mlkem-$r" "${PID[$s]}" --mode handshake --addr "$a" --group X25519MLKEM768 "${loop[@]}" ;;
				line) run "$s-line-$r" "${PID[$s]}" --mode line --addr "$a" --group "$GROUP" "${loop[@]}" ;;
				echo) run "$s-echo-$r" "${PID[$s]}" --mode echo --conns "$ECHO_CONNS" --addr "$a" --group "$GROUP" --duration "$DURATION" ;;
				esac
			done
		done
		stop "$PID_seclisten" "$PID_seclisten_mtls" "$PID_tlsref" "$PID_tlsref_mtls" ${CONTROL:+"$PID_control"}
	done
fi

if want flood; then
	# Flood target: seclisten with its default limits (--rate, --burst, ...),
	# applied to loopback too (it is exempt by default) so the flood from
	# 127.0.0.2 meets them.
	log "starting seclisten on 127.0.0.1:$P_FLOOD (default limits, --limit-loopback)"
	seclisten_serve "$P_FLOOD" "$P_METRICS" "$WORK/seclisten-flood.log" --limit-loopback
	PID_flood=$!
	PIDS+=("$PID_flood")
	wait_port "$P_FLOOD" "$PID_flood"
	help=$("$BIN" serve --help)
	meta flood_rate "$(sed -n 's/.*--rate N .*(default: "\([0-9.]*\)").*/\1/p' <<<"$help")"
	meta flood_burst "$(sed -n 's/.*--burst N .*(default: "\([0-9]*\)").*/\1/p' <<<"$help")"
	faddr=127.0.0.1:$P_FLOOD
	for r in $(seq 1 "$FLOOD_ROUNDS"); do
		log "flood round $r/$FLOOD_ROUNDS"
		# The probe's round trips alone, then with the flood running.
		run "seclisten-probe-$r" "$PID_flood" --mode echo --conns 1 --source 127.0.0.3 --addr "$faddr" --duration "$FLOOD_DURATION"
		run "seclisten-flood-$r" "$PID_flood" --mode flood --source 127.0.0.2 --addr "$faddr" --duration "$FLOOD_DURATION" &
		fpid=$!
		sleep 0.2
		run "seclisten-probeflood-$r" "$PID_flood" --mode echo --conns 1 --source 127.0.0.3 --addr "$faddr" --duration "$FLOOD_DURATION"
		wait "$fpid"
		# Let the flood's bucket refill before the next round's probe.
		sleep 2
	done
	stop "$PID_flood"
fi

# idle_run SERVER N: a fresh SERVER (seclisten, tlsref or haproxy) holding N
# idle TLS connections opened by ceil(N / IDLE_PER_CLIENT) load generators,
# each from its own source address. Writes idle/SERVER-N.json.
idle_run() {
	local server=$1 n=$2 spid bpid="" per=1 mpids rss0 fd0 t0 i left k src
	local benches=() held rss1 prev cur waited open_s errs tls
	case $server in
	seclisten)
		seclisten_serve "$P_IDLE" "$P_METRICS" "$WORK/idle-seclisten-$n.log" --max-conns 20000
		spid=$!
		;;
	tlsref)
		"${PIN_SERVER[@]}" "$REF" --addr "127.0.0.1:$P_IDLE" --cert "$CERT" --key "$KEY" >/dev/null 2>"$WORK/idle-tlsref-$n.log" &
		spid=$!
		;;
	haproxy)
		"${PIN_SERVER[@]}" "$REF" --plain --addr "127.0.0.1:$P_BACKEND" >/dev/null 2>"$WORK/idle-backend-$n.log" &
		bpid=$!
		PIDS+=("$bpid")
		wait_port "$P_BACKEND" "$bpid"
		"${PIN_SERVER[@]}" haproxy -db -f "$WORK/haproxy.cfg" >/dev/null 2>"$WORK/idle-haproxy-$n.log" &
		spid=$!
		per=2
		;;
	esac
	PIDS+=("$spid")
	wait_port "$P_IDLE" "$spid"
	# wait_port's probe connection is gone once the descriptors settle.
	sleep 1
	mpids=("$spid")
	rss0=$(rss_kib "${mpids[@]}")
	fd0=$(fds "$spid")
	t0=$(date +%s.%N)
	left=$n
	i=0
	while [ "$left" -gt 0 ]; do
		k=$((left < IDLE_PER_CLIENT ? left : IDLE_PER_CLIENT))
		src=127.0.0.$((2 + i))
		"${PIN_LOAD[@]}" "$BIN" bench --json --mode idle --addr "127.0.0.1:$P_IDLE" --conns "$k" \
			--concurrency 16 --duration 100s --group X25519 --source "$src" --max-error-rate 100% \
			>"$WORK/idle-$server-$n-$i.json" 2>"$WORK/idle-$server-$n-$i.log" &
		benches+=($!)
		PIDS+=($!)
		left=$((left - k))
		i=$((i + 1))
	done
	# Until the server holds them all, or no new one came for 10 s.
	prev=-1
	waited=0
	while :; do
		cur=$(($(fds "$spid") - fd0))
		[ "$cur" -ge $((n * per)) ] && break
		if [ "$cur" -le "$prev" ]; then
			waited=$((waited + 1))
			[ "$waited" -ge 40 ] && { log "idle $server $n: stuck at $((cur / per)) connections"; break; }
		else
			waited=0
		fi
		prev=$cur
		sleep 0.25
	done
	open_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
	sleep "$IDLE_SETTLE"
	rss1=$(rss_kib "${mpids[@]}")
	for i in $(seq 1 "$IDLE_STABLE_MAX"); do
		sleep 1
		cur=$(rss_kib "${mpids[@]}")
		if awk -v a="$rss1" -v b="$cur" -v z="$rss0" 'BEGIN {d = b - a; if (d < 0) d = -d; exit !(d * 100 <= (b - z))}'; then
			rss1=$cur
			break
		fi
		rss1=$cur
	done
	held=$((($(fds "$spid") - fd0) / per))
	stop "${benches[@]}"
	errs=0
	tls=""
	for i in $(seq 0 $((${#benches[@]} - 1))); do
		f=$WORK/idle-$server-$n-$i.json
		e=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' "$f")
		errs=$((errs + ${e:-0}))
		[ -n "$tls" ] || tls=$(sed -n 's/.*"tls":"\([^"]*\)".*/\1/p' "$f")
	done
	printf '{"server":"%s","n":%d,"held":%d,"rss_before_kib":%d,"rss_after_kib":%d,"open_s":%s,"errors":%d,"clients":%d,"tls":"%s","loadavg":"%s"}\n' \
		"$server" "$n" "$held" "$rss0" "$rss1" "$open_s" "$errs" "${#benches[@]}" "$tls" "$(cut -d' ' -f1-3 /proc/loadavg)" >"$IDLE_DIR/$server-$n.json"
	log "idle $server $n: held $held, RSS $rss0 -> $rss1 KiB ($(awk -v a="$rss0" -v b="$rss1" -v h="$held" 'BEGIN {if (h > 0) printf "%.2f", (b - a) / h}') KiB/conn), opened in ${open_s}s, $errs errors"
	stop "$spid" $bpid
}

if want idle; then
	HAPROXY=$(command -v haproxy || true)
	servers=(seclisten tlsref)
	if [ -n "$HAPROXY" ]; then
		meta haproxy_version "$(haproxy -v 2>&1 | head -n1)"
		cat "$CERT" "$KEY" >"$WORK/haproxy.pem"
		cat >"$WORK/haproxy.cfg" <<CONF
global
	maxconn $((HAPROXY_MAX + 500))
	nbthread 1
defaults
	mode tcp
	timeout connect 5s
	timeout client 10m
	timeout server 10m
frontend tls
	bind 127.0.0.1:$P_IDLE ssl crt $WORK/haproxy.pem
	default_backend plain
backend plain
	server tlsref 127.0.0.1:$P_BACKEND
CONF
		servers+=(haproxy)
	else
		meta haproxy_version "not installed"
		note "haproxy is not installed: its idle rows are skipped"
	fi
	meta idle_max "$IDLE_MAX"
	meta haproxy_max "$HAPROXY_MAX"
	sizes=$(printf '%s\n' $IDLE_SIZES "$HAPROXY_MAX" "$IDLE_MAX" | sort -n -u | tr '\n' ' ')
	for n in $sizes; do
		for s in "${servers[@]}"; do
			[ "$s" = haproxy ] && [ "$n" -gt "$HAPROXY_MAX" ] && continue
			[ "$s" != haproxy ] && [ "$n" -gt "$IDLE_MAX" ] && continue
			log "idle: $s with $n connections (load average $(cut -d' ' -f1-3 /proc/loadavg))"
			idle_run "$s" "$n"
		done
	done
fi

# gobench NAME OUT ARGS...: a `go test -bench` run whose output goes to
# OUT_DIR/OUT; a failure is logged and its output kept for the report.
gobench() {
	local name=$1 out=$OUT_DIR/$2
	shift 2
	log "$name"
	"$GO" test -run '^$' "$@" >"$out" 2>&1 || log "$name failed (see $out)"
}

rm -f "$OUT_DIR/park.txt" "$OUT_DIR/loop.txt"
if want park; then
	gobench "first line after parking (BenchmarkParkFirstLine, cmd/seclisten)" park.txt \
		-bench '^BenchmarkParkFirstLine$' -benchtime "${PARK_SAMPLES}x" -count "$PARK_COUNT" ./cmd/seclisten/
fi
if want loop; then
	gobench "the exchange loop's allocations (BenchmarkRun, pkg/exchange)" loop.txt \
		-bench '^BenchmarkRun$' -benchmem -count 3 ./pkg/exchange/
fi

if want crypto && grep -qs 'func BenchmarkCrypto' pkg/tlsconf/*_test.go; then
	log "crypto benchmarks (pkg/tlsconf)"
	"$GO" test -run '^$' -bench 'BenchmarkCrypto|BenchmarkHandshake' -benchtime 1s ./pkg/tlsconf/ >"$OUT_DIR/crypto.txt" 2>&1 ||
		log "crypto benchmarks failed (see $OUT_DIR/crypto.txt)"
else
	rm -f "$OUT_DIR/crypto.txt"
fi
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

log "writing $BENCHMARKS_MD"
"$GO" run ./scripts/benchreport -dir "$OUT_DIR" -out "$BENCHMARKS_MD"
