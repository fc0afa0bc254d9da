# shellcheck shell=bash
# Start Prosody 0.12 / ejabberd 23.01 (Debian packages) for the comparison
# benchmark. Meant to be sourced:
#
#   . bench/servers/start.sh
#   dir=$(mktemp -d); pid=$(start_prosody "$dir" 5322)
#   dir2=$(mktemp -d); pid2=$(start_ejabberd "$dir2" 5422)
#   ...
#   stop_servers
#
# Each start function installs the package if needed (stopping the system
# service the package may have started), renders the template next to this
# file into DIR (all data, logs and pid files stay in DIR), starts the server
# in the background as the package's own system user, waits until PORT
# accepts connections and prints the PID to measure (prosody's lua process,
# ejabberd's beam.smp) on stdout. Progress and errors go to stderr.
# Every started PID is also appended to $BENCH_SERVERS_PIDFILE so that
# stop_servers works even when the start functions ran in $(...) subshells.

BENCH_SERVERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${BENCH_SERVERS_PIDFILE:=${TMPDIR:-/tmp}/rookery-bench-servers.$$.pids}"
: "${BENCH_SERVERS_START_TIMEOUT:=120}"
_bench_apt_updated=0

_bench_log() { echo "[bench/servers] $*" >&2; }

# _bench_install PACKAGE: apt-get install it unless dpkg has it already.
_bench_install() {
	local pkg=$1
	if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		return 0
	fi
	if [ "$_bench_apt_updated" = 0 ]; then
		_bench_log "apt-get update"
		apt-get update >&2 || return 1
		_bench_apt_updated=1
	fi
	_bench_log "apt-get install -y $pkg"
	DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg" >&2 || return 1
	return 2 # freshly installed
}

# _bench_stop_system_service NAME: the package's own daemon must not run
# (it would hold 5222/5269/5280 and /var/lib state).
_bench_stop_system_service() {
	local name=$1
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		systemctl disable --now "$name" >&2 2>&1 || true
	fi
	service "$name" stop >/dev/null 2>&1 || true
	if command -v update-rc.d >/dev/null; then
		update-rc.d "$name" disable >/dev/null 2>&1 || true
	fi
	# Whatever survived: only processes of the system instance, found by
	# their system pid file or their system paths.
	local pids="" p
	case $name in
	prosody)
		if [ -r /run/prosody/prosody.pid ]; then pids=$(cat /run/prosody/prosody.pid); fi
		;;
	ejabberd)
		pids=$(pgrep -f -- '-mnesia dir "/var/lib/ejabberd"' || true)
		;;
	esac
	for p in $pids; do
		if kill "$p" 2>/dev/null; then
			_bench_log "stopped system $name (pid $p)"
		fi
	done
}

_bench_ensure() {
	local pkg=$1 rc=0
	_bench_install "$pkg" || rc=$?
	if [ $rc = 1 ]; then
		_bench_log "could not install $pkg"
		return 1
	fi
	if [ $rc = 2 ]; then
		_bench_stop_system_service "$pkg"
	fi
	if ! command -v openssl >/dev/null; then
		rc=0
		_bench_install openssl || rc=$?
		if [ $rc = 1 ]; then
			return 1
		fi
	fi
	return 0
}

# _bench_render TEMPLATE OUT DIR PORT
_bench_render() {
	sed -e "s|@DIR@|$3|g" -e "s|@PORT@|$4|g" "$1" >"$2"
}

# _bench_prepare_dir DIR USER: certificates, ownership.
# DIR/ca.pem is a throw-away CA (give it to `rookery-load --starttls --ca`);
# DIR/cert.pem + DIR/key.pem is the localhost certificate it signed (clients
# such as rustls refuse a self-signed CA certificate as the server's own);
# DIR/server.pem is cert + key in one file, as ejabberd wants it.
_bench_prepare_dir() {
	local dir=$1 user=$2
	if [ ! -s "$dir/cert.pem" ]; then
		printf '%s\n' 'subjectAltName=DNS:localhost' \
			'basicConstraints=critical,CA:FALSE' \
			'keyUsage=critical,digitalSignature,keyEncipherment' \
			'extendedKeyUsage=serverAuth' >"$dir/cert.ext"
		{
			openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
				-subj "/CN=rookery bench CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
			openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
				-keyout "$dir/key.pem" -out "$dir/cert.csr" &&
			openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
				-CAcreateserial -days 365 -extfile "$dir/cert.ext" -out "$dir/cert.pem"
		} >/dev/null 2>&1 || {
			_bench_log "openssl failed"
			return 1
		}
		cat "$dir/cert.pem" "$dir/key.pem" >"$dir/server.pem"
		chmod 600 "$dir/ca.key" "$dir/key.pem" "$dir/server.pem"
	fi
	chown -R "$user:$user" "$dir"
	chmod 700 "$dir"
	if ! setpriv --reuid="$user" --regid="$user" --init-groups -- test -w "$dir"; then
		_bench_log "$dir is not reachable by user $user (a parent directory is closed?)"
		return 1
	fi
}

# _bench_raise_nofile: as many descriptors as allowed, 65536 wanted.
_bench_raise_nofile() {
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	local n
	n=$(ulimit -n)
	if [ "$n" != unlimited ] && [ "$n" -lt 65536 ]; then
		_bench_log "warning: open files limited to $n (hard limit), not 65536"
	fi
}

# _bench_wait_port PID PORT NAME LOG
_bench_wait_port() {
	local pid=$1 port=$2 name=$3 logf=$4 deadline=$((SECONDS + BENCH_SERVERS_START_TIMEOUT))
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			_bench_log "$name exited during startup; see $logf"
			tail -n 20 "$logf" >&2 2>/dev/null || true
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.2
	done
	_bench_log "$name did not open port $port within ${BENCH_SERVERS_START_TIMEOUT}s"
	return 1
}

_bench_port_free() {
	if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
		_bench_log "port $1 is already in use"
		return 1
	fi
}

# start_prosody DIR PORT -> prints the prosody PID
start_prosody() {
	local dir=$1 port=$2 pid
	if [ -z "$dir" ] || [ -z "$port" ]; then
		_bench_log "usage: start_prosody DIR PORT"
		return 1
	fi
	_bench_ensure prosody || return 1
	_bench_port_free "$port" || return 1
	mkdir -p "$dir/data" "$dir/certs" || return 1
	dir=$(cd "$dir" && pwd -P)
	_bench_render "$BENCH_SERVERS_DIR/prosody.cfg.lua" "$dir/prosody.cfg.lua" "$dir" "$port"
	_bench_prepare_dir "$dir" prosody || return 1
	(
		_bench_raise_nofile
		cd "$dir" || exit 1
		exec setpriv --reuid=prosody --regid=prosody --init-groups -- \
			env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$dir" LANG=C.UTF-8 \
			prosody --config "$dir/prosody.cfg.lua" -F
	) </dev/null >"$dir/prosody.stdout" 2>&1 &
	pid=$!
	echo "$pid" >>"$BENCH_SERVERS_PIDFILE"
	_bench_wait_port "$pid" "$port" prosody "$dir/prosody.log" || {
		kill "$pid" 2>/dev/null || true
		tail -n 20 "$dir/prosody.stdout" >&2
		return 1
	}
	echo "$pid"
}

# start_ejabberd DIR PORT -> prints the beam.smp PID
start_ejabberd() {
	local dir=$1 port=$2 pid erl_libs p
	if [ -z "$dir" ] || [ -z "$port" ]; then
		_bench_log "usage: start_ejabberd DIR PORT"
		return 1
	fi
	_bench_ensure ejabberd || return 1
	_bench_port_free "$port" || return 1
	mkdir -p "$dir/spool" || return 1
	dir=$(cd "$dir" && pwd -P)
	_bench_render "$BENCH_SERVERS_DIR/ejabberd.yml" "$dir/ejabberd.yml" "$dir" "$port"
	_bench_prepare_dir "$dir" ejabberd || return 1
	# Where Debian put ejabberd's own code (ejabberdctl knows).
	erl_libs=$(sed -n "s/^ERL_LIBS=['\"]\{0,1\}\([^'\"]*\)['\"]\{0,1\}$/\1/p" /usr/sbin/ejabberdctl | head -n 1)
	: "${erl_libs:=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)}"
	# Started with erl directly, not ejabberdctl: no Erlang distribution,
	# so no epmd (4369) and no distribution port either. erl execs erlexec,
	# which execs beam.smp, so $! is the beam.smp process.
	(
		_bench_raise_nofile
		cd "$dir" || exit 1
		exec setpriv --reuid=ejabberd --regid=ejabberd --init-groups -- \
			env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$dir" LANG=C.UTF-8 \
			ERL_LIBS="$erl_libs" \
			EJABBERD_CONFIG_PATH="$dir/ejabberd.yml" \
			EJABBERD_LOG_PATH="$dir/ejabberd.log" \
			EJABBERD_PID_PATH="$dir/ejabberd.pid" \
			ERL_CRASH_DUMP="$dir/erl_crash.dump" \
			ERL_MAX_PORTS=65536 \
			erl +P 1048576 +Q 65536 -noinput \
			-mnesia dir "\"$dir/spool\"" ${BENCH_EJABBERD_ERL_ARGS:-} -s ejabberd
	) </dev/null >"$dir/ejabberd.stdout" 2>&1 &
	pid=$!
	echo "$pid" >>"$BENCH_SERVERS_PIDFILE"
	_bench_wait_port "$pid" "$port" ejabberd "$dir/ejabberd.log" || {
		kill "$pid" 2>/dev/null || true
		tail -n 20 "$dir/ejabberd.stdout" >&2
		return 1
	}
	# Should be beam.smp already; otherwise take its beam.smp child.
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != beam.smp ]; then
		p=$(pgrep -P "$pid" -x beam.smp | head -n 1)
		if [ -n "$p" ]; then
			pid=$p
			echo "$pid" >>"$BENCH_SERVERS_PIDFILE"
		fi
	fi
	echo "$pid"
}

# BENCH_EJABBERD_ERL_ARGS: extra erl arguments for start_ejabberd (debugging,
# e.g. "-sname dbg" to allow a remote shell; unset for benchmarks).

# stop_servers: TERM every server started through this file, KILL after 15s.
stop_servers() {
	local pids="" p i
	[ -r "$BENCH_SERVERS_PIDFILE" ] || return 0
	for p in $(sort -u "$BENCH_SERVERS_PIDFILE"); do
		case "$(cat "/proc/$p/comm" 2>/dev/null)" in
		lua*|prosody*|beam*|erl*) pids="$pids $p" ;;
		esac
	done
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for i in $(seq 150); do
		local alive=""
		for p in $pids; do
			if kill -0 "$p" 2>/dev/null; then alive="$alive $p"; fi
		done
		if [ -z "$alive" ]; then break; fi
		sleep 0.1
	done
	for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
	rm -f "$BENCH_SERVERS_PIDFILE"
}
