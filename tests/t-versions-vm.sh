#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Image versions with real VMs (SeaBIOS + iPXE + netdisk.pxe, Linux over NBD):
# the admin VM boots the maintenance version and writes a file while a client
# boots production; promote; a client VM sees the file; rollback; the next
# boot does not.  The image file is never written.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe cmd:nbd-client
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_build
e2e_setup bios # image "golden": A (52:54:00:e2:e0:02) direct = maintenance, B volatile
IMG() { "$ND_BUILD/netdisk" image --control "$ND_TMP/state/control" "$@"; }

check "vm: new-version of golden" IMG new-version golden --note "vm test"
e2e_boot v-a1 "$E2E_MAC_A"
e2e_boot v-b1 "$E2E_MAC_B"
e2e_wait
check "vm: the admin VM boots the maintenance version" e2e_booted v-a1 "$E2E_MAC_A"
check "vm: a client boots production meanwhile" e2e_booted v-b1 "$E2E_MAC_B"
check "vm: the admin wrote its file" test -n "$(e2e_wrote v-a1)"
check "vm: production does not have it" grep -q '^E2E-MARK-NONE' "$ND_TMP/v-b1.log"
check "vm: the admin's NBD connection closes at power-off" \
	wait_for 30 grep -q "nbd disconnect mac=$E2E_MAC_A " "$ND_TMP/server.log"
check "vm: promote" IMG promote golden 2

e2e_boot v-b2 "$E2E_MAC_B"
e2e_wait
check "vm: a client boots the promoted version" e2e_booted v-b2 "$E2E_MAC_B"
check "vm: it sees the admin's file" test "$(e2e_seen v-b2)" = "$(e2e_wrote v-a1)"

check "vm: rollback" IMG rollback golden
e2e_boot v-b3 "$E2E_MAC_B"
e2e_wait
check "vm: a client boots after the rollback" e2e_booted v-b3 "$E2E_MAC_B"
check "vm: the admin's file is gone again" grep -q '^E2E-MARK-NONE' "$ND_TMP/v-b3.log"
check "vm: the image file was never written" cmp -s "$ND_TMP/golden.img" "$ND_TMP/demo.orig"
IMG versions golden >"$ND_TMP/versions.out" 2>&1
# Boots that reached the OS handoff, per version: v1 (b1, b3) and v2 (a1, b2).
check "vm: boots counted per version" awk '$1 == 1 && $8 >= 2 { a = 1 } $1 == 2 && $8 >= 2 { b = 1 }
	END { exit !(a && b) }' "$ND_TMP/versions.out"
