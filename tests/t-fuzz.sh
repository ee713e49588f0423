#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# libFuzzer over every parser of untrusted input (clang, ASan+UBSan), each for a
# bounded time: ND_FUZZ_SECONDS each (make check: a few seconds), or the
# longer defaults below under make test.
. "$(dirname "$0")/lib.sh"
requires clang
for name in udp nbd iscsi config frames control group stormtrace http psk tiers ptier template fat auth dnsconf dhcp optrom; do
	[ -x "$ND_BUILD/fuzz/fuzz-$name" ] || { fail "fuzz-$name" "not built (make test-tools)"; exit 1; }
done

# Any datagram, NBD or iSCSI byte stream, config file, Ethernet frames into the
# stubs' IP stack, control-socket request and image store file, or multicast
# group datagrams into the client's group cache, and boot trace files into
# the storm simulator's parser, HTTP request heads into the metrics
# listener's parser, PSK files into the NBD TLS key parser,
# netdisk-attach's write-cache setting and control requests and its persistent
# disk tier's header and map pages, personalization
# templates and the FAT file systems boot menus are rewritten on, ATTACH
# authenticators and key files (the site key), netdiskd.conf files into
# `netdisk dnsmasq-conf`'s reader, frames and DHCP replies into the stubs'
# DHCP client, option ROM images into their checker,
# and iSCSI PDUs into the target's login and full-feature parsers, each
# bounded in time; a crash or a sanitizer report fails the run.
for target in udp:${ND_FUZZ_SECONDS:-60} nbd:${ND_FUZZ_SECONDS:-40} iscsi:${ND_FUZZ_SECONDS:-30} config:${ND_FUZZ_SECONDS:-20} \
	frames:${ND_FUZZ_SECONDS:-30} control:${ND_FUZZ_SECONDS:-20} group:${ND_FUZZ_SECONDS:-20} \
	stormtrace:${ND_FUZZ_SECONDS:-10} http:${ND_FUZZ_SECONDS:-10} psk:${ND_FUZZ_SECONDS:-10} \
	tiers:${ND_FUZZ_SECONDS:-10} ptier:${ND_FUZZ_SECONDS:-10} template:${ND_FUZZ_SECONDS:-10} fat:${ND_FUZZ_SECONDS:-20} \
	auth:${ND_FUZZ_SECONDS:-10} dnsconf:${ND_FUZZ_SECONDS:-10} dhcp:${ND_FUZZ_SECONDS:-20} optrom:${ND_FUZZ_SECONDS:-10}; do
	name=${target%%:*}
	mkdir -p "$ND_TMP/corpus-$name"
	if "$ND_BUILD/fuzz/fuzz-$name" -max_total_time="${target#*:}" -rss_limit_mb=2048 \
		-print_final_stats=1 "$ND_TMP/corpus-$name" >"$ND_TMP/fuzz-$name.log" 2>&1; then
		pass "fuzz-$name ($(grep -o 'Done [0-9]* runs' "$ND_TMP/fuzz-$name.log"))"
	else
		fail "fuzz-$name" "$(grep -m5 -e ERROR -e 'runtime error' -e SUMMARY "$ND_TMP/fuzz-$name.log")"
	fi
done
