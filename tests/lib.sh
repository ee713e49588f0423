# SPDX-License-Identifier: GPL-2.0-or-later
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
# skip NAME WHY: a check this machine cannot run (tests/run counts it; under
# CI=true it counts as a failure).
skip() { echo "SKIP $1: $2"; }

# requires WHAT...: run the rest of the suite only if this machine has every
# WHAT, else print "SKIP suite: needs ..." and exit 77 (tests/run: skipped).
# WHAT is root, qemu, ovmf, ipxe, clang, netns, nbd (the kernel's nbd
# module), cmd:NAME for any command, or file:PATH for a file a package ships.
requires() {
	local what missing=()
	for what in "$@"; do
		case $what in
		root) [ "$(id -u)" = 0 ] || missing+=("root") ;;
		qemu) command -v qemu-system-x86_64 >/dev/null || missing+=("qemu-system-x86_64") ;;
		ovmf) [ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || missing+=("OVMF (package ovmf)") ;;
		ipxe) [ -r /usr/lib/ipxe/qemu/pxe-virtio.rom ] || missing+=("iPXE ROMs (ipxe-qemu)") ;;
		clang) command -v clang >/dev/null || missing+=("clang") ;;
		netns) [ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1 || missing+=("network namespaces (root)") ;;
		nbd) [ -e /sys/module/nbd ] || modprobe nbd 2>/dev/null || missing+=("the nbd kernel module") ;;
		cmd:*) command -v "${what#cmd:}" >/dev/null || missing+=("${what#cmd:}") ;;
		file:*) [ -r "${what#file:}" ] || missing+=("${what#file:}") ;;
		*) missing+=("unknown requirement '$what'") ;;
		esac
	done
	if [ ${#missing[@]} -gt 0 ]; then
		skip "$(basename "$0" .sh)" "needs ${missing[*]}"
		exit 77
	fi
}

# check NAME COMMAND...: PASS if the command succeeds, else FAIL with its output.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -n 5 | tr '\n' ' ')"; fi
}

# expect NAME WANT_EXIT COMMAND...: PASS if the command exits with WANT_EXIT.
expect() {
	local name=$1 want=$2 rc
	shift 2
	"$@" >"$ND_TMP/expect.out" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ]; then pass "$name"; else
		fail "$name" "exit $rc, wanted $want: $(tail -n 3 "$ND_TMP/expect.out" | tr '\n' ' ')"
	fi
}

# check_fails NAME STATUS PATTERN COMMAND...: PASS only if the command fails
# with exit status STATUS and its output matches PATTERN (grep -E): a missing
# tool (127), a crash (128+) or another failure is not the refusal expected.
check_fails() {
	local name=$1 want=$2 pattern=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ] && grep -qE -- "$pattern" <<<"$out"; then
		pass "$name"
	else
		fail "$name" "exit $rc (want $want): $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

# A UDP+TCP port nobody listens on now.
# A UDP port the kernel picks may be taken on TCP: try again (bounded).
free_port() {
	python3 -c 'import socket
for _ in range(50):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p)
    break
else:
    raise SystemExit("free_port: no port free on both UDP and TCP")'
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
# Without --config, the server runs with --admin-key none (direct mode
# granted by MAC, as the suites about other things than the access model
# expect) unless ND_ADMIN_KEY says otherwise (auto, or a key file); with
# --config, the file says (admin-key, docs/security.md).
start_server() {
	local name=$1 a admin=(--admin-key "${ND_ADMIN_KEY:-none}")
	shift
	for a in "$@"; do
		case $a in --config | -c | --admin-key) admin=() ;; esac
	done
	ND_PORT=${ND_PORT_FIXED:-$(free_port)}
	"$ND_BUILD/netdiskd" --listen "127.0.0.1:$ND_PORT" "${admin[@]}" "$@" >"$ND_TMP/$name.log" 2>&1 &
	ND_SERVER_PID=$!
	ND_PIDS+=("$ND_SERVER_PID")
	wait_for 10 grep -q 'listening on' "$ND_TMP/$name.log"
}

stop_server() {
	kill "${1:-$ND_SERVER_PID}" 2>/dev/null
	wait "${1:-$ND_SERVER_PID}" 2>/dev/null
	return 0
}
