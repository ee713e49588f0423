#!/usr/bin/env bash
# End to end under OVMF with iPXE's EFI ROM: netdisk.efi boots the image, Linux takes its session over NBD; write modes, firmware-phase writes, nbd-client.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe ovmf cmd:nbd-client
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_build
e2e_run uefi
