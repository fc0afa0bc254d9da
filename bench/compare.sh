#!/usr/bin/env bash
# Side-by-side benchmark: Prosody 0.12, ejabberd 23.01, rookery-smol and
# rookery-std on this machine, in one run, driven by rookery-load with the
# same loads. Each server is pinned to CPU 0 and the load generator to CPU 1,
# so the figures compare work per core; rookery-smol also runs unpinned.
#
#   bash bench/compare.sh            # default size, about 10 minutes
#   QUICK=1 bash bench/compare.sh    # shorter phases, for a smoke run
#   ROOKERY_EXTRA=$'[archive]\nenabled = true' PEERS=0 bash bench/compare.sh
#                                    # Rookery only, with extra configuration
#                                    # (here message archives) appended
#
# Results: bench/results/<date>/ (one JSON per server and load, results.json,
# table.md, chart.svg). Runs as root (it installs and runs the Debian
# packages as their own users).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y-%m-%dT%H%M)}
DURATION=${DURATION:-8}
IDLE_SESSIONS=${IDLE_SESSIONS:-10000}
BIG_IDLE_SESSIONS=${BIG_IDLE_SESSIONS:-19000}
STD_IDLE_SESSIONS=${STD_IDLE_SESSIONS:-5000}
if [ -n "${QUICK:-}" ]; then
	DURATION=3 IDLE_SESSIONS=2000 BIG_IDLE_SESSIONS=4000 STD_IDLE_SESSIONS=2000
fi
ACCOUNTS=$BIG_IDLE_SESSIONS
SERVER_CPU=0
LOAD_CPU=1
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/rookery-compare.XXXXXX)
chmod 755 "$WORK"
export BENCH_SERVERS_PIDFILE=$WORK/servers.pids
# shellcheck source=servers/start.sh
. "$ROOT/bench/servers/start.sh"
ROOKERY_PID=""
cleanup() {
	[ -n "$ROOKERY_PID" ] && kill "$ROOKERY_PID" 2>/dev/null || true
	stop_servers || true
	[ -n "${PEER_PID:-}" ] && kill "$PEER_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[compare] $*" >&2; }

cargo build --release --quiet -p rookery-smol -p rookery-std -p rookery-bench
BIN=$ROOT/target/release
LOAD=$BIN/rookery-load
ulimit -n "$(ulimit -Hn)"

# Pin the calling subshell (and so everything it starts) to CPU $1.
pin_self() { taskset -p -c "$1" "$BASHPID" >/dev/null; }

wait_port() {
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_rookery BINARY PORT CPUS: one data dir for every Rookery run.
start_rookery() {
	local bin=$1 port=$2 cpus=$3 dir=$WORK/rookery
	mkdir -p "$dir"
	cat >"$dir/rookery.toml" <<TOML
domains = ['localhost']
data_dir = '$dir/data'
[c2s]
listen = '127.0.0.1:$port'
direct_tls_listen = ''
require_encryption = false
max_connections = 0
max_connections_per_address = 0
max_unauthenticated_per_address = 0
connection_rate_per_address = 0
read_rate = 0
${ROOKERY_EXTRA:-}
TOML
	if [ ! -e "$dir/data/rookery.sqlite" ]; then
		seq 0 $((ACCOUNTS - 1)) | sed 's/.*/u& bench-password/; s/ /@localhost /' |
			"$BIN/rookery-smol" adduser --batch --config "$dir/rookery.toml" >&2
	fi
	if [ "$cpus" = all ]; then
		"$BIN/$bin" --config "$dir/rookery.toml" 2>"$WORK/$bin.log" &
	else
		taskset -c "$cpus" "$BIN/$bin" --config "$dir/rookery.toml" 2>"$WORK/$bin.log" &
	fi
	ROOKERY_PID=$!
	wait_port "$port" || { log "$bin did not start"; cat "$WORK/$bin.log" >&2; exit 1; }
}

stop_rookery() {
	kill "$ROOKERY_PID" 2>/dev/null || true
	wait "$ROOKERY_PID" 2>/dev/null || true
	ROOKERY_PID=""
}

# load NAME SERVER PORT PID PINNED WORKLOAD ARGS...: one measured run.
# Every login is SCRAM-SHA-1 (cheap for a server that stores SCRAM keys,
# as all four do here); the client's PBKDF2 is done once per account and
# kept in $KEYS.keys, so that only the server's work is measured.
load() {
	local name=$1 server=$2 port=$3 pid=$4 pinned=$5 workload=$6
	shift 6
	local runner=(taskset -c "$LOAD_CPU" "$LOAD" --threads 1)
	[ "$pinned" = no ] && runner=("$LOAD" --threads 2)
	log "$server: $name"
	"${runner[@]}" "$workload" --server "127.0.0.1:$port" --server-pid "$pid" \
		--label "$server/$name" --json "$OUT/$server.$name.json" --duration "$DURATION" \
		--mechanism scram-sha-1 --key-cache "$WORK/$KEYS.keys" --timeout 15 "$@" \
		>"$OUT/$server.$name.txt" 2>"$WORK/load.err" || {
		log "$server: $name failed"
		tail -n 5 "$WORK/load.err" >&2
	}
	cat "$OUT/$server.$name.txt" >&2 || true
}

# The loads every server gets (the issue's list).
message_loads() {
	local server=$1 port=$2 pid=$3 pinned=$4
	load pairs200 "$server" "$port" "$pid" "$pinned" pairs --sessions 200 --window 10
	load pairs2000 "$server" "$port" "$pid" "$pinned" pairs --sessions 2000 --window 5 --login-concurrency 200
	load rate5000 "$server" "$port" "$pid" "$pinned" rate --sessions 1000 --rate 5000
	load login2000 "$server" "$port" "$pid" "$pinned" login --sessions 2000 --login-concurrency 200
}

idle_load() {
	local server=$1 port=$2 pid=$3 sessions=$4
	load "idle$sessions" "$server" "$port" "$pid" yes idle --sessions "$sessions" \
		--login-concurrency 200 --duration 3
}

# The generator's own ceiling: against its echoing peer, pinned the same way
# (the peer accepts any PLAIN login at once).
KEYS=peer
taskset -c "$SERVER_CPU" "$LOAD" peer --listen 127.0.0.1:5399 --threads 1 2>/dev/null &
PEER_PID=$!
wait_port 5399
load pairs2000 peer 5399 "$PEER_PID" yes pairs --sessions 2000 --window 5 --login-concurrency 200 --mechanism plain
load pairs200 peer 5399 "$PEER_PID" yes pairs --sessions 200 --window 10 --mechanism plain
kill "$PEER_PID"
PEER_PID=""

# Rookery: both servers pinned, then smol unpinned (one database).
KEYS=rookery
for bin in rookery-smol rookery-std; do
	start_rookery "$bin" 5322 "$SERVER_CPU"
	message_loads "$bin" 5322 "$ROOKERY_PID" yes
	stop_rookery
	# rookery-std runs two threads per connection: past about 8,000
	# sessions this machine refuses it threads (its ceiling; see README).
	sizes=("$STD_IDLE_SESSIONS")
	[ "$bin" = rookery-smol ] && sizes=("$IDLE_SESSIONS" "$BIG_IDLE_SESSIONS")
	for n in "${sizes[@]}"; do
		start_rookery "$bin" 5322 "$SERVER_CPU"
		idle_load "$bin" 5322 "$ROOKERY_PID" "$n"
		stop_rookery
	done
done
start_rookery rookery-smol 5322 all
message_loads rookery-smol-unpinned 5322 "$ROOKERY_PID" no
stop_rookery

# Prosody and ejabberd, registered by XEP-0077 once, restarted for idle
# (unless PEERS=0: Rookery against itself, under other configurations).
PEER_SERVERS="prosody ejabberd"
[ "${PEERS:-1}" = 0 ] && PEER_SERVERS=""
for server in $PEER_SERVERS; do
	KEYS=$server
	dir=$WORK/$server
	mkdir -p "$dir"
	start() { (pin_self "$SERVER_CPU"; "start_$server" "$dir" 5422); }
	pid=$(start)
	log "$server: registering $IDLE_SESSIONS accounts"
	"$LOAD" register --server 127.0.0.1:5422 --sessions "$IDLE_SESSIONS" --login-concurrency 100 \
		>&2
	message_loads "$server" 5422 "$pid" yes
	stop_servers
	pid=$(start)
	idle_load "$server" 5422 "$pid" "$IDLE_SESSIONS"
	stop_servers
done

python3 "$ROOT/bench/report.py" "$OUT"
