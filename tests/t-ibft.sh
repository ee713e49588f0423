#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# takeover = iscsi on the host (docs/handoff.md): the ATTACH reply's handoff bit, the iBFT
# netdiskd builds for ND_OP_IBFT read back by tests/ibft-probe.py (a reader of its own: checksum,
# structure offsets and alignment, every field), the target, initiator and CHAP it names
# accepted by libiscsi's login, refusals, and a corrupted table caught by the reader.
. "$(dirname "$0")/lib.sh"
requires cmd:iscsi-inq cmd:python3

PROBE=$ND_TOP/tests/ibft-probe.py
PFX=iqn.2026-01.org.netdisk
MAC_A=52:54:00:19:03:01 MAC_B=52:54:00:19:03:02 MAC_C=52:54:00:19:03:03
INI_A=iqn.2000-01.org.netdisk.test:ibft-a
cd "$ND_TMP" || exit 1
head -c 8M /dev/urandom >disk.img
head -c 8M /dev/urandom >plain.img
IPORT=$(free_port)
cat >ibft.conf <<CONF
state-dir = $ND_TMP/state
iscsi-listen = 127.0.0.1:$IPORT
[image disk]
path = disk.img
takeover = iscsi
[image plain]
path = plain.img
[client $MAC_A]
image = disk
iscsi-initiator = $INI_A
iscsi-chap-user = ibft-a
iscsi-chap-secret = a-secret-0123
iscsi-chap-target-user = netdisk
iscsi-chap-target-secret = target-secret-4567
[client $MAC_C]
image = disk
takeover = nbd
CONF
start_server ibft --config ibft.conf || { fail ibft-start "$(cat ibft.log)"; exit 1; }
wait_for 10 grep -q 'iSCSI target on' ibft.log || { fail ibft-listen "$(cat ibft.log)"; exit 1; }

# field FILE KEY: the probe's value of KEY.
field() { sed -n "s/^$2 //p" "$1" | head -n 1; }
# fields_are NAME FILE KEY=VALUE...: every KEY has VALUE.
fields_are() {
	local name=$1 file=$2 kv got bad=
	shift 2
	for kv in "$@"; do
		got=$(field "$file" "${kv%%=*}")
		[ "$got" = "${kv#*=}" ] || bad+="${kv%%=*}='$got' (want '${kv#*=}') "
	done
	if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad$(grep -i error "$file" | head -n 2)"; fi
}

# Client A: a [client] section with its initiator name and mutual CHAP.
python3 "$PROBE" "$ND_PORT" "$MAC_A" disk a.table >a.out 2>&1
tok=$(field a.out token)
fields_are ibft-handoff-and-table a.out attach-status=0 handoff-iscsi=1 ibft-status=0 revision=1 \
	oem-id=NETDSK initiator-flags=3 nic0-flags=3 target0-flags=3
fields_are ibft-nic a.out nic-ip=10.0.2.15 nic-prefix=24 nic-origin=3 nic-gateway=10.0.2.2 \
	nic-dns=10.0.2.3 nic-dns2=none nic-dhcp=10.0.2.2 nic-vlan=0 nic-mac=$MAC_A nic-pci=00:03.0
# (iscsi-listen on loopback: the target is the address the stub reached netdiskd at)
fields_are ibft-target a.out initiator-name=$INI_A target-ip=10.0.2.2 target-port=$IPORT \
	target-lun=0000000000000000 target-nic=0 "target-name=$PFX:session:$tok"
fields_are ibft-chap-mutual a.out target-chap-type=2 target-chap-name=ibft-a \
	target-chap-secret=a-secret-0123 target-rchap-name=netdisk target-rchap-secret=target-secret-4567
grep -q "ibft sent: [0-9]* bytes, mac=$MAC_A session=" ibft.log && pass ibft-logged ||
	fail ibft-logged "$(grep ibft ibft.log | tail -n 2)"
! grep -q "$tok" ibft.log && pass ibft-no-token-in-log || fail ibft-no-token-in-log "the session token is in the log"

# What the table names logs in: libiscsi with its initiator name, target and CHAP.
iscsi-inq -i "$INI_A" "iscsi://ibft-a%a-secret-0123@127.0.0.1:$IPORT/$PFX:session:$tok/0" >a.inq 2>&1 &&
	grep -q 'Vendor:NETDISK' a.inq && pass ibft-target-logs-in || fail ibft-target-logs-in "$(head -c 300 a.inq)"
check_fails ibft-target-wrong-secret 10 'Failed to log in|[Aa]uthentication|login' \
	iscsi-inq -i "$INI_A" "iscsi://ibft-a%not-the-secret-00@127.0.0.1:$IPORT/$PFX:session:$tok/0"

# Client B: no [client] section, the image's takeover: a generated initiator name, no CHAP.
python3 "$PROBE" "$ND_PORT" "$MAC_B" disk >b.out 2>&1
tokb=$(field b.out token)
fields_are ibft-unlisted b.out ibft-status=0 initiator-name=$PFX:client:525400190302 \
	target-chap-type=0 target-chap-name=none target-rchap-name=none "target-name=$PFX:session:$tokb"
iscsi-inq -i "$PFX:client:525400190302" "iscsi://127.0.0.1:$IPORT/$PFX:session:$tokb/0" >b.inq 2>&1 &&
	grep -q 'Vendor:NETDISK' b.inq && pass ibft-unlisted-logs-in || fail ibft-unlisted-logs-in "$(head -c 300 b.inq)"

# Client C (takeover = nbd over its image's iscsi) and an image without takeover: no
# handoff bit, and ND_OP_IBFT refused (DENIED), with the reason logged.
python3 "$PROBE" "$ND_PORT" "$MAC_C" disk >c.out 2>&1
fields_are ibft-nbd-client c.out attach-status=0 handoff-iscsi=0 ibft-status=5
python3 "$PROBE" "$ND_PORT" 52:54:00:19:03:04 plain >d.out 2>&1
fields_are ibft-nbd-image d.out attach-status=0 handoff-iscsi=0 ibft-status=5
grep -q "ibft refused: the session's takeover is not iscsi: mac=$MAC_C" ibft.log && pass ibft-refusal-logged ||
	fail ibft-refusal-logged "$(grep ibft ibft.log | tail -n 2)"

# The reader catches a bad table: one byte changed breaks the checksum.
if [ -s a.table ]; then
	python3 - a.table bad.table <<'PY'
import sys
t = bytearray(open(sys.argv[1], "rb").read()); t[60] ^= 0x40
open(sys.argv[2], "wb").write(t)
PY
	check_fails ibft-reader-catches-corruption 1 'checksum' python3 "$PROBE" --file bad.table
fi
stop_server

# iscsi-listen on every address: the same; on an address of this machine's: that address.
sed -i "s/^iscsi-listen = .*/iscsi-listen = 0.0.0.0:$IPORT/" ibft.conf
start_server ibft2 --config ibft.conf || { fail ibft-start2 "$(cat ibft2.log)"; exit 1; }
python3 "$PROBE" "$ND_PORT" "$MAC_A" disk >w.out 2>&1
fields_are ibft-wildcard-target w.out ibft-status=0 target-ip=10.0.2.2 target-port=$IPORT
stop_server
own=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }')
if [ -n "$own" ]; then
	sed -i "s/^iscsi-listen = .*/iscsi-listen = $own:$IPORT/" ibft.conf
	start_server ibft3 --config ibft.conf || { fail ibft-start3 "$(cat ibft3.log)"; exit 1; }
	python3 "$PROBE" "$ND_PORT" "$MAC_A" disk >o.out 2>&1
	fields_are ibft-listen-address-target o.out ibft-status=0 target-ip=$own target-port=$IPORT
	stop_server
else
	skip ibft-listen-address-target "no global IPv4 address on this machine"
fi

# Config load refuses takeover = iscsi without the target.
printf '[image disk]\npath = %s/disk.img\ntakeover = iscsi\n' "$ND_TMP" >bad.conf
check_fails ibft-config-needs-target 2 "takeover = iscsi needs the iSCSI target" \
	"$ND_BUILD/netdiskd" --config bad.conf --listen 127.0.0.1:0
