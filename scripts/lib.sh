# lib.sh — the prologue bench.sh and bench-fleet.sh share. Source it, after
# `set -euo pipefail`, with LOG_NAME set (the name log lines start with):
#
#	LOG_NAME=bench-fleet
#	. "$(dirname "$0")/lib.sh"
#
# It moves to the repository's root (ROOT) and defines log, die, the
# process bookkeeping (PIDS, stop, and the trap that stops them all at
# exit), fresh_out_dir and wait_port.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

log() { printf '%s %s: %s\n' "$(date +%T)" "$LOG_NAME" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# PIDS are the processes the script started (it appends them); the trap
# stops those still running when it exits, however it exits.
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

# stop PID...: end processes this script started, and wait for them.
# They leave PIDS, so the trap never signals a number the system has since
# given to another process.
stop() {
	local pid keep=()
	for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
	for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		[[ " $* " == *" $pid "* ]] || keep+=("$pid")
	done
	PIDS=("${keep[@]}")
}

# fresh_out_dir: OUT_DIR made absolute, and in it RESULTS (results/) and
# WORK (work/), emptied of an earlier run's files.
fresh_out_dir() {
	mkdir -p "$OUT_DIR"
	OUT_DIR=$(cd "$OUT_DIR" && pwd)
	RESULTS=$OUT_DIR/results
	WORK=$OUT_DIR/work
	rm -rf "$RESULTS" "$WORK"
	mkdir -p "$RESULTS" "$WORK"
}

# wait_port PORT PID: until PORT accepts; logs and fails (which ends the
# script, under set -e) if PID dies first, or after 10 s.
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
