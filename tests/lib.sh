# Shared helpers for test suites: results, temp dirs, netdiskd start/stop, waiting.
# Source it from a suite: . "$(dirname "$0")/lib.sh"

ND_TOP=${ND_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ND_BUILD=${ND_BUILD:-$ND_TOP/build}
ND_TMP=$(mktemp -d /tmp/netdisk-test.XXXXXX)
ND_PIDS=()

nd_cleanup() {
	local pid
	for pid in "${ND_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${ND_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	[ -n "${ND_KEEP_TMP:-}" ] || rm -rf "$ND_TMP"
}
trap nd_cleanup EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# check NAME COMMAND...: PASS if the command succeeds, else FAIL with its output.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -n 5 | tr '\n' ' ')"; fi
}

# A UDP+TCP port nobody listens on now.
free_port() {
	python3 -c 'import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]
t=socket.socket(); t.bind(("127.0.0.1",p)); print(p)'
}

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

# start_server NAME ARGS...: run netdiskd on a free port with its log in
# $ND_TMP/NAME.log; sets ND_PORT and ND_SERVER_PID.  ARGS are netdiskd's.
start_server() {
	local name=$1
	shift
	ND_PORT=${ND_PORT_FIXED:-$(free_port)}
	"$ND_BUILD/netdiskd" --listen "127.0.0.1:$ND_PORT" "$@" >"$ND_TMP/$name.log" 2>&1 &
	ND_SERVER_PID=$!
	ND_PIDS+=("$ND_SERVER_PID")
	wait_for 10 grep -q 'listening on' "$ND_TMP/$name.log"
}

stop_server() {
	kill "${1:-$ND_SERVER_PID}" 2>/dev/null
	wait "${1:-$ND_SERVER_PID}" 2>/dev/null
	return 0
}
