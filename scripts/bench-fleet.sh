#!/usr/bin/env bash
# bench-fleet.sh — what --redis costs one replica (issue [7/8]): full
# handshakes/s of a replica with --redis against the same replica without
# it, side by side in one run, and the Redis commands per accepted
# connection. Prints a markdown block to paste into BENCHMARKS.md (also
# written to OUT_DIR/fleet.md).
#
# It starts its own redis-server (loopback, a free port, no persistence)
# and two seclisten replicas with the same flags, default defences on, the
# per-IP limiter applied to loopback with a generous --rate/--burst so that
# every accept goes through it; only --redis differs. Rounds are
# interleaved (the order alternates each round); each run lasts DURATION.
# About ROUNDS x 2 x DURATION plus the build: 60 s with the defaults.
# Self-cleaning: the trap stops every process this script started.
#
# Commands are counted from Redis's INFO commandstats (every command but
# the INFO this script sends), accepted connections from the replica's
# seclisten_connections_accepted_total, the server's CPU time per accepted
# connection from /proc/PID/stat (a cross-check of the throughput that
# other work on the machine disturbs less).
#
# Environment (defaults in brackets):
#   ROUNDS [5]        rounds; each runs both replicas in turn
#   DURATION [5s]     length of each handshake run
#   RATE [100000]     --rate and --burst of both replicas (per client IP)
#   OUT_DIR [bin/bench-fleet]  results/*.json, logs, fleet.md
set -euo pipefail

LOG_NAME=bench-fleet
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh" # cd to the root; log, die, PIDS, wait_port, ...
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
RATE=${RATE:-100000}
OUT_DIR=${OUT_DIR:-bin/bench-fleet}
GO=${GO:-go}

for cmd in redis-server redis-cli curl; do
	command -v "$cmd" >/dev/null || die "$cmd is missing (scripts/test-deps.sh bench installs it)"
done

fresh_out_dir
mkdir -p "$WORK/redis"

# free_port: a loopback port nothing listens on, from a random start, not
# one handed out before.
TAKEN=" "
free_port() {
	local p i
	p=$((20000 + RANDOM % 30000))
	for i in $(seq 1 200); do
		p=$((p + 1))
		case $TAKEN in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			TAKEN+="$p "
			echo "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

log "building bin/seclisten"
mkdir -p bin
"$GO" build -trimpath -o bin/seclisten ./cmd/seclisten
BIN=$ROOT/bin/seclisten
"$BIN" certs init --dir "$WORK/certs" >/dev/null
CERT=$WORK/certs/server.pem
KEY=$WORK/certs/server-key.pem

P_REDIS=$(free_port)
log "starting redis-server on 127.0.0.1:$P_REDIS (no persistence)"
redis-server --bind 127.0.0.1 --port "$P_REDIS" --save '' --appendonly no \
	--dir "$WORK/redis" --logfile "$WORK/redis.log" >/dev/null 2>&1 &
PID_redis=$!
PIDS+=("$PID_redis")
wait_port "$P_REDIS" "$PID_redis"
rcli() { redis-cli -h 127.0.0.1 -p "$P_REDIS" "$@"; }

# Both replicas: default defences, the per-IP limiter on for loopback with
# room for any handshake rate this machine reaches.
COMMON=(--cert "$CERT" --key "$KEY" --limit-loopback --rate "$RATE" --burst "$RATE")
declare -A PORT MPORT PID
for s in local redis; do
	PORT[$s]=$(free_port)
	MPORT[$s]=$(free_port)
	extra=()
	[ "$s" = redis ] && extra=(--redis "redis://127.0.0.1:$P_REDIS")
	log "starting seclisten ($s) on 127.0.0.1:${PORT[$s]}, metrics on 127.0.0.1:${MPORT[$s]}"
	"$BIN" serve --addr "127.0.0.1:${PORT[$s]}" --metrics-addr "127.0.0.1:${MPORT[$s]}" \
		"${COMMON[@]}" "${extra[@]}" >/dev/null 2>"$WORK/seclisten-$s.log" &
	PID[$s]=$!
	PIDS+=("${PID[$s]}")
done
for s in local redis; do
	wait_port "${PORT[$s]}" "${PID[$s]}"
	wait_port "${MPORT[$s]}" "${PID[$s]}"
done
for i in $(seq 1 100); do
	grep -q 'redis connected' "$WORK/seclisten-redis.log" && break
	[ "$i" = 100 ] && die "the --redis replica did not log 'redis connected' (see $WORK/seclisten-redis.log)"
	sleep 0.1
done

# accepted S: seclisten_connections_accepted_total of replica S.
accepted() {
	curl -fsS "http://127.0.0.1:${MPORT[$1]}/metrics" |
		awk '$1 == "seclisten_connections_accepted_total" { printf "%d\n", $2; found = 1 } END { if (!found) print 0 }'
}
# commands: the calls Redis has served, but for this script's INFO.
commands() {
	rcli INFO commandstats | tr -d '\r' |
		awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { n += $3 } END { printf "%d\n", n }'
}
# sent: the round trips the --redis replica made to Redis (a command, a
# script call or a pipeline each): what it asks of Redis, whatever runs
# inside a script.
sent() {
	curl -fsS "http://127.0.0.1:${MPORT[redis]}/metrics" |
		awk '$1 == "seclisten_redis_roundtrip_seconds_count" { printf "%d\n", $2; found = 1 } END { if (!found) print 0 }'
}
# cpu PID: the CPU time the process has used, in clock ticks (user + system).
cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
TICK=$(getconf CLK_TCK)
# json_num FILE KEY: a number of a bench --json summary.
json_num() { sed -n "s/.*\"$2\":\([0-9.e+-]*\).*/\1/p" "$1"; }
# median: of the numbers on stdin, one a line.
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

CMD="make bench-fleet   # ROUNDS=$ROUNDS DURATION=$DURATION RATE=$RATE scripts/bench-fleet.sh"
SERVE="seclisten serve --cert ... --key ... ${COMMON[*]:4} --metrics-addr ... [--redis redis://...]"
START_CMDS=$(commands)
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
declare -A CMDS ACC CPU SENT
CMDS[all]=0 ACC[all]=0
for r in $(seq 1 "$ROUNDS"); do
	order=(local redis)
	[ $((r % 2)) = 0 ] && order=(redis local)
	log "round $r/$ROUNDS: ${order[*]}"
	for s in "${order[@]}"; do
		a0=$(accepted "$s") c0=$(commands) t0=$(cpu "${PID[$s]}") s0=$(sent)
		name=$s-handshake-$r
		"$BIN" bench --json --mode handshake --duration "$DURATION" --ca "$WORK/certs/ca.pem" \
			--addr "127.0.0.1:${PORT[$s]}" >"$RESULTS/$name.json" 2>"$WORK/$name.log" ||
			die "$name failed: $(tail -n 3 "$WORK/$name.log")"
		a=$(($(accepted "$s") - a0)) c=$(($(commands) - c0)) t=$(($(cpu "${PID[$s]}") - t0)) n=$(($(sent) - s0))
		CPU[$s-$r]=$(awk -v t="$t" -v a="$a" -v hz="$TICK" 'BEGIN { printf "%.1f", t * 1e6 / hz / a }')
		log "$name: $(json_num "$RESULTS/$name.json" ops_per_s) handshakes/s, $a accepted, server CPU ${CPU[$s-$r]} µs/conn, $n round trips to Redis, $c Redis commands"
		if [ "$s" = redis ]; then
			CMDS[$r]=$c ACC[$r]=$a SENT[$r]=$n
			CMDS[all]=$((CMDS[all] + c)) ACC[all]=$((ACC[all] + a))
		fi
	done
done
END_CMDS=$(commands)
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
TOTAL_ACC=$(accepted redis)

hs() { for r in $(seq 1 "$ROUNDS"); do json_num "$RESULTS/$1-handshake-$r.json" ops_per_s; done; }
cpus() { for r in $(seq 1 "$ROUNDS"); do echo "${CPU[$1-$r]}"; done; }
p50() { for r in $(seq 1 "$ROUNDS"); do json_num "$RESULTS/$1-handshake-$r.json" p50_ms; done; }
errs() { for r in $(seq 1 "$ROUNDS"); do json_num "$RESULTS/$1-handshake-$r.json" errors; done; }
list() { paste -sd/ - | sed 's|/| / |g'; }
sum() { awk '{ n += $1 } END { printf "%d\n", n }'; }
M_LOCAL=$(hs local | median | xargs printf '%.1f')
M_REDIS=$(hs redis | median | xargs printf '%.1f')
RATIO_M=$(awk -v a="$M_REDIS" -v b="$M_LOCAL" 'BEGIN { printf "%.3f", a / b }')
# Each round's pair ran back to back: its ratio is the least touched by
# the drift of whatever else the machine runs.
RATIOS=$(paste <(hs redis) <(hs local) | awk '{ printf "%.3f\n", $1 / $2 }')
RATIO=$(median <<<"$RATIOS" | xargs printf '%.3f')
# The server's CPU time per connection: what --redis costs, less touched
# by other work on the machine than the throughput. Without over with, so
# that above 1 means --redis costs more, like the handshakes/s ratio.
CPU_RATIOS=$(paste <(cpus local) <(cpus redis) | awk '{ printf "%.3f\n", $1 / $2 }')
CPU_RATIO=$(median <<<"$CPU_RATIOS" | xargs printf '%.3f')
PER_ROUND=$(for r in $(seq 1 "$ROUNDS"); do
	awk -v c="${CMDS[$r]}" -v a="${ACC[$r]}" 'BEGIN { if (a > 0) printf "%.4f\n", c / a; else print "nan" }'
done)
PER_CONN=$(median <<<"$PER_ROUND" | xargs printf '%.4f')
SENT_ROUND=$(for r in $(seq 1 "$ROUNDS"); do
	awk -v c="${SENT[$r]}" -v a="${ACC[$r]}" 'BEGIN { if (a > 0) printf "%.4f\n", c / a; else print "nan" }'
done)
SENT_CONN=$(median <<<"$SENT_ROUND" | xargs printf '%.4f')
LIFE=$(awk -v c="$((END_CMDS))" -v a="$TOTAL_ACC" 'BEGIN { printf "%.4f", c / a }')
TOP=$(rcli INFO commandstats | tr -d '\r' |
	awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { sub("cmdstat_", "", $1); print $3, $1 }' |
	sort -rn | head -n 6 | awk '{ printf "%s`%s` %s", sep, $2, $1; sep = ", " }')
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v < t; print ok ? "**met**" : "**missed**" }'; }
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT with uncommitted changes"

{
	cat <<EOF
Measured $(date -u '+%Y-%m-%d %H:%M UTC') at commit $COMMIT ($(nproc) CPUs, 1-minute
load average (this run's own included) $LOAD0 at the first round and $LOAD1 after the last, $("$GO" version | awk '{print $3}'),
Redis $(redis-server --version | awk '{print $3}' | tr -d 'v=')):

\`\`\`sh
$CMD
\`\`\`

Both replicas run \`$SERVE\`
(default defences; the per-IP limiter on for the loopback client). The load is
\`seclisten bench --mode handshake --duration $DURATION\` (full handshakes, no
tickets), $ROUNDS interleaved rounds whose order alternates; medians. The
ratio is the median of the rounds' ratios (each round's two runs back to
back), less touched by the load of other work on the machine than the
ratio of the medians, shown beside it. The server's CPU time per
accepted connection (utime + stime from /proc, over the run) is a
cross-check that other work on the machine moves less than it moves
the throughput.

| replica | full handshakes/s (median) | rounds | server CPU µs per connection (median) | rounds | p50 ms (median) | errors |
|---|--:|---|--:|---|--:|--:|
| without --redis | $M_LOCAL | $(hs local | list) | $(cpus local | median | xargs printf '%.1f') | $(cpus local | list) | $(p50 local | median | xargs printf '%.3f') | $(errs local | sum) |
| with --redis | $M_REDIS | $(hs redis | list) | $(cpus redis | median | xargs printf '%.1f') | $(cpus redis | list) | $(p50 redis | median | xargs printf '%.3f') | $(errs redis | sum) |

| target | measured | |
|---|---|---|
| handshakes/s with --redis / without (median of the rounds' ratios) >= 0.95 | $RATIO ($(list <<<"$RATIOS"); ratio of the medians $RATIO_M) | $(met "$RATIO" 0.95 ">=") |
| (cross-check) server CPU per connection, without / with (median of the rounds' ratios) | $CPU_RATIO ($(list <<<"$CPU_RATIOS")) | |
| Redis commands per accepted connection under load, as the replica sends them (round trips: a script call counts once; median of rounds): well under 1 (< 0.1) | $SENT_CONN ($(list <<<"$SENT_ROUND")) | $(met "$SENT_CONN" 0.1 "<") |
| (cross-check) the same counted by Redis, the commands the sync script runs inside Redis included: under 1 | $PER_CONN ($(list <<<"$PER_ROUND")) | $(met "$PER_CONN" 1 "<") |

Redis served ${CMDS[all]} commands while the --redis replica accepted
${ACC[all]} connections in its runs. Over the whole run (the replica's
start: connect, first ticket key; the other replica's runs; the rounds)
it served $END_CMDS commands, $((END_CMDS - START_CMDS)) of them during
the rounds, for $TOTAL_ACC accepted connections: $LIFE per connection.
Most called: $TOP.
EOF
} >"$OUT_DIR/fleet.md"

echo "---- paste into BENCHMARKS.md ----"
cat "$OUT_DIR/fleet.md"
echo "---- end ----"
