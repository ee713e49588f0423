#!/usr/bin/env bash
# The whole chain with the demo image on BIOS and UEFI: PXE, the stub, syslinux, then Linux's agent takes the session over NBD to the root.
#
# What the stub wrote in the firmware phase and what Linux writes after the
# takeover land in one session; in direct mode both reach the image file,
# where the root's boot record is read back.  Each firmware gets its own
# image, as a direct-mode image has one writer at a time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/image-lib.sh"

make -s -C "$ND_TOP" BUILD="$ND_BUILD" "$ND_BUILD/netdiskd" "$ND_BUILD/netdisk" "$ND_BUILD/netdisk.pxe" "$ND_BUILD/netdisk.efi" >"$ND_TMP/make.log" 2>&1 ||
	{ fail image-netboot-build "$(tail -n 3 "$ND_TMP/make.log" | tr '\n' ' ')"; exit 1; }
build_demo_images

for firmware in bios uefi; do
	cp --sparse=always "$ND_BUILD/demo-test.img" "$ND_TMP/served-$firmware.img"
done
start_server netboot-server --mode direct "demo-bios=$ND_TMP/served-bios.img" "demo-uefi=$ND_TMP/served-uefi.img" ||
	{ fail image-netboot-server "$(cat "$ND_TMP/netboot-server.log")"; exit 1; }
tftp=$ND_TMP/tftp
mkdir -p "$tftp"
cp "$ND_BUILD/netdisk.pxe" "$ND_BUILD/netdisk.efi" "$tftp/"
"$ND_BUILD/netdisk" patch "$tftp/netdisk.pxe" --server "10.0.2.2:$ND_PORT" --image demo-bios >/dev/null &&
	"$ND_BUILD/netdisk" patch "$tftp/netdisk.efi" --server "10.0.2.2:$ND_PORT" --image demo-uefi >/dev/null ||
	{ fail image-netboot-patch "netdisk patch failed"; exit 1; }

# chain_reaches_root FIRMWARE STUB TABLE_PLACE: boots STUB by PXE; the agent
# must find the stub's boot table where that firmware's stub leaves it.
chain_reaches_root() {
	local firmware=$1 stub=$2 table_place=$3 name=netboot-$1 records flag= served=$ND_TMP/served-$1.img
	[ "$firmware" = uefi ] && flag=--uefi
	timeout "${ND_BOOT_TIMEOUT:-240}" "$ND_TOP/qemu-scripts/boot-pxe" $flag --tftp "$tftp" --bootfile "$stub" --log "$ND_TMP/$name.log" ||
		{ echo "VM did not power off by itself"; tail -n 5 "$ND_TMP/$name.log"; return 1; }
	console_has "$name" '^NETDISK-INITRAMFS-OK ' || { echo "kernel and initramfs never ran"; return 1; }
	console_has "$name" '^NETDISK-NET-OK eth0 10\.0\.2\.15 boot-table$' || { echo "address not from the stub's boot table"; return 1; }
	console_has "$name" "netdisk-attach: boot table in $table_place" || { echo "agent did not find the stub's table in $table_place"; return 1; }
	console_has "$name" '^NETDISK-ROOT-OK root /dev/nbd0p2 ' || { echo "root system not up on /dev/nbd0p2"; grep -a 'netdisk-attach' "$ND_TMP/$name.log" | tail -n 3; return 1; }
	console_has "$name" 'NETDISK-POWEROFF' || { echo "root system did not power off"; return 1; }
	grep -q "nbd connect .*image=demo-$firmware\$" "$ND_TMP/netboot-server.log" || { echo "server saw no NBD takeover"; return 1; }
	extract_partition "$served" 2 "$ND_TMP/served-root-$firmware.img" || return 1
	records=$(debugfs -R 'cat /var/log/netdisk-boots' "$ND_TMP/served-root-$firmware.img" 2>/dev/null)
	grep -q '^boot 1 root /dev/nbd0p2 ' <<<"$records" || { echo "boot record not in the served image: '$records'"; return 1; }
	e2fsck -fn "$ND_TMP/served-root-$firmware.img" >/dev/null || { echo "served root not clean after power-off"; return 1; }
}

check image-netboot-bios-to-root chain_reaches_root bios netdisk.pxe "base memory"
check image-netboot-uefi-to-root chain_reaches_root uefi netdisk.efi "ACPI table NDSK"
