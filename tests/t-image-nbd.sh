# Boots a disk-less VM whose root is the demo image on an NBD server, with a stand-in agent: the whole Linux half of a netdisk boot.
#
# iPXE loads the image's kernel and initramfs over TFTP; the initramfs hooks
# run tests/standin-agent.sh, which takes its address as a boot table would
# give it and attaches /dev/nbd0 with nbd-client to nbdkit serving a copy of
# the image.  The same image is also the VM's local disk, so the agent's
# choice of root (/dev/nbd0p2) must win over the matching local label.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/image-lib.sh"

for tool in nbdkit nbd-client; do
	command -v "$tool" >/dev/null || { fail image-nbd-root "$tool is not installed (make deps)"; exit 1; }
done
build_demo_images

image=$ND_TMP/nbd.img
extra=$ND_TMP/initramfs-extra
copy_with_libraries "$(command -v nbd-client)" "$extra"
"$ND_TOP/tools/mkimage" --cache "${NETDISK_CACHE:-$ND_BUILD/cache}" --agent "$ND_TOP/tests/standin-agent.sh" \
	--initramfs-extra "$extra" "$image" >"$ND_TMP/mkimage.log" 2>&1 ||
	{ fail image-nbd-build "$(tail -n 3 "$ND_TMP/mkimage.log" | tr '\n' ' ')"; exit 1; }

cp --sparse=always "$image" "$ND_TMP/served.img"
cp --sparse=always "$image" "$ND_TMP/local.img"
port=$(free_port)
nbdkit --foreground --exit-with-parent --ipaddr 127.0.0.1 --port "$port" file "$ND_TMP/served.img" 2>"$ND_TMP/nbdkit.log" &
ND_PIDS+=($!)
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || { fail image-nbd-server "nbdkit did not listen"; exit 1; }

tftp=$ND_TMP/tftp
mkdir -p "$tftp"
mcopy -i "$(esp_at "$image")" ::/linux ::/initrd.gz "$tftp/"
cat >"$tftp/boot.ipxe" <<IPXE
#!ipxe
kernel linux initrd=initrd.gz console=ttyS0 root=LABEL=ndroot rw netdisk.test=poweroff panic=-1 test.ip=10.0.2.15/24,10.0.2.2 test.nbd=10.0.2.2:$port
initrd initrd.gz
boot
IPXE

root_on_nbd() {
	local name=nbd-root records
	timeout "${ND_BOOT_TIMEOUT:-180}" "$ND_TOP/qemu-scripts/boot-pxe" --tftp "$tftp" --bootfile boot.ipxe \
		--disk "$ND_TMP/local.img" --log "$ND_TMP/$name.log" ||
		{ echo "VM did not power off by itself"; tail -n 5 "$ND_TMP/$name.log"; return 1; }
	console_has "$name" '^NETDISK-NET-OK eth0 10\.0\.2\.15 boot-table$' || { echo "address did not come from the agent's boot-table step"; return 1; }
	console_has "$name" '^NETDISK-ATTACH-OK$' || { echo "agent did not attach"; return 1; }
	console_has "$name" '^NETDISK-ROOT-FOUND /dev/nbd0p2$' || { echo "root not taken from /dev/nbd0p2"; return 1; }
	console_has "$name" '^NETDISK-ROOT-OK root /dev/nbd0p2 ' || { echo "root system not up on /dev/nbd0p2"; return 1; }
	console_has "$name" '^NETDISK-POWEROFF' || { echo "root system did not power off"; return 1; }
	extract_partition "$ND_TMP/served.img" 2 "$ND_TMP/served-root.img" || return 1
	records=$(debugfs -R 'cat /var/log/netdisk-boots' "$ND_TMP/served-root.img" 2>/dev/null)
	grep -q '^boot 1 root /dev/nbd0p2 ' <<<"$records" || { echo "boot record not written over NBD: '$records'"; return 1; }
	e2fsck -fn "$ND_TMP/served-root.img" >/dev/null || { echo "served root not clean after power-off"; return 1; }
	extract_partition "$ND_TMP/local.img" 2 "$ND_TMP/local-root.img" || return 1
	! debugfs -R 'stat /var/log/netdisk-boots' "$ND_TMP/local-root.img" 2>&1 | grep -q 'Inode:' ||
		{ echo "the local disk was written: root came from the wrong disk"; return 1; }
}

check image-nbd-root-bios root_on_nbd
