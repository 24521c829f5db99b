#!/usr/bin/env bash
# test-deps.sh — makes sure the programs the tests (or the benchmark) call
# are here, so that `make test` alone passes on a fresh Debian machine:
#
#   scripts/test-deps.sh [test|bench]...     (no argument: test)
#
# System programs: each missing one is installed from its Debian package
# with apt-get when this runs as root (non-interactively, standard input
# from /dev/null); otherwise it prints the one command that would install
# them and exits 1. When everything is present it installs nothing and runs
# no apt-get update.
#
# Go: the modules of go.mod, and the tools pinned in its tool block
# (pebble, pebble-challtestsrv, staticcheck) compiled, so the tests then
# run offline from the module and build caches.
#
# Environment: GO (default go) is the Go command.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

say() { printf 'test-deps: %s\n' "$*" >&2; }

# needs SET: one "COMMAND PACKAGE WHY" line for each program SET calls.
# To find them: grep -rn 'exec.Command\|LookPath' --include='*_test.go' .
needs() {
	case $1 in
	test)
		cat <<'EOF'
openssl openssl the TLS tests run openssl s_client and openssl verify
haproxy haproxy the PROXY protocol and replica tests put HAProxy in front
curl curl the metrics tests scrape with curl
prlimit util-linux the EMFILE test lowers the server's descriptor limit
systemd-analyze systemd the unit tests check scripts/seclisten.service
systemd-socket-activate systemd the socket activation test starts seclisten under it
make make the install test runs make install
redis-server redis-server the fleet tests start a real Redis (shared ACME storage, ticket keys)
EOF
		;;
	bench)
		cat <<'EOF'
haproxy haproxy make bench measures HAProxy's memory per idle TLS connection beside seclisten's
taskset util-linux make bench pins the server to one core and the load generator to the other
getconf libc-bin make bench converts the servers' CPU ticks from /proc to seconds
redis-server redis-server make bench-fleet measures a replica with --redis
redis-cli redis-tools make bench-fleet counts the commands Redis served
curl curl make bench-fleet reads the replicas' accepted connections from /metrics
EOF
		;;
	*)
		say "unknown set $1: want test or bench"
		exit 2
		;;
	esac
}

sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(test)

missing_cmds=()
missing_pkgs=()
for set in "${sets[@]}"; do
	while read -r cmd pkg why; do
		command -v "$cmd" >/dev/null 2>&1 && continue
		say "$cmd is missing ($why)"
		missing_cmds+=("$cmd")
		case " ${missing_pkgs[*]} " in
		*" $pkg "*) ;;
		*) missing_pkgs+=("$pkg") ;;
		esac
	done < <(needs "$set")
done

if [ ${#missing_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		say "to install what is missing, run:"
		echo "sudo apt-get install -y ${missing_pkgs[*]}"
		exit 1
	fi
	say "apt-get install ${missing_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Wait for another apt or dpkg run (a shared machine) instead of failing.
	lock=(-o DPkg::Lock::Timeout=300)
	apt-get "${lock[@]}" update -qq </dev/null
	apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing_pkgs[@]}" </dev/null
	for cmd in "${missing_cmds[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 && continue
		say "$cmd is still missing after apt-get install ${missing_pkgs[*]}"
		exit 1
	done
fi

if ! command -v "$GO" >/dev/null 2>&1; then
	say "$GO is not on PATH: install Go $(sed -n 's/^go //p' go.mod) (its tarball goes to /usr/local/go) and add /usr/local/go/bin to PATH"
	exit 1
fi
"$GO" mod download
# "tool" is every tool of go.mod's tool block. Built into bin/tools/ (not
# used from there: the tests and `go tool` find them in the build cache)
# because go build skips the link of an output that is up to date.
"$GO" build -o bin/tools/ tool
