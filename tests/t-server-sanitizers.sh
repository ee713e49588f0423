#!/usr/bin/env bash
# netdiskd built with ASan+UBSan under the protocol, fault and raw-datagram tests, then fuzzed.
. "$(dirname "$0")/lib.sh"

ASAN_SERVER=$ND_BUILD/asan/netdiskd
BASE=$ND_TMP/base.img
head -c 16M /dev/urandom >"$BASE"
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1

nd() { "$ND_BUILD/tests/ndtest" "127.0.0.1:$ND_PORT" "$BASE" "$@" | sed 's/^\(PASS\|FAIL\) /\1 asan-/'; }

ND_PORT=$(free_port)
"$ASAN_SERVER" --listen "127.0.0.1:$ND_PORT" --mode persistent --state-dir "$ND_TMP/state" \
	"$BASE" >"$ND_TMP/asan.log" 2>&1 &
pid=$!
ND_PIDS+=("$pid")
if wait_for 20 grep -q 'listening on' "$ND_TMP/asan.log"; then
	nd rw 02:00:00:00:05:01
	nd raw
	nd faults 02:00:00:00:05:02 10 5 5
	kill "$pid"
	wait "$pid"
	rc=$?
	if [ $rc -eq 0 ] && ! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error' -e 'LeakSanitizer' \
		"$ND_TMP/asan.log"; then
		pass asan-server-clean
	else
		fail asan-server-clean "exit $rc: $(grep -m3 -e ERROR -e 'runtime error' "$ND_TMP/asan.log")"
	fi
else
	fail asan-server-start "$(cat "$ND_TMP/asan.log")"
fi

# Any datagram, NBD byte stream or config file, each bounded in time; a crash or a
# sanitizer report fails the run.
for target in udp:${ND_FUZZ_SECONDS:-60} nbd:${ND_FUZZ_SECONDS:-40} config:${ND_FUZZ_SECONDS:-20}; do
	name=${target%%:*}
	mkdir -p "$ND_TMP/corpus-$name"
	if "$ND_BUILD/fuzz/fuzz-$name" -max_total_time="${target#*:}" -rss_limit_mb=2048 \
		-print_final_stats=1 "$ND_TMP/corpus-$name" >"$ND_TMP/fuzz-$name.log" 2>&1; then
		pass "fuzz-$name ($(grep -o 'Done [0-9]* runs' "$ND_TMP/fuzz-$name.log"))"
	else
		fail "fuzz-$name" "$(grep -m5 -e ERROR -e 'runtime error' -e SUMMARY "$ND_TMP/fuzz-$name.log")"
	fi
done
