; SPDX-License-Identifier: GPL-2.0-or-later
; The PCI expansion ROM header of netdisk-virtio.rom: 55 AA, PCIR, $PnP with a BEV; the init entry and the boot entry.
;
; Linked first, at offset 0 of the stub's one segment (linker/netdisk-pxe.ld),
; so that the ROM image is the stub's image with this header in front: the
; boot entry relocates it from the ROM's segment exactly as netdisk.pxe
; relocates itself from 07C0h (entry.asm, `relocate`).  tools/ndrom fills in
; the size fields, the $PnP checksum and the image checksum (the last byte)
; after linking, and checks the result.
;
; How a PCI BIOS runs it (SeaBIOS, optionroms.c, and the PCI firmware spec):
; it copies the image from the NIC's ROM BAR to shadow RAM in C0000-EFFFF,
; calls the init entry at offset 3 with AX = the NIC's bus/device/function,
; checks the checksum again, registers the $PnP header's BEV under its
; product name as a boot device, then write-protects the shadow RAM.  When
; that boot device is chosen it far-calls the BEV: the image is read-only
; by then, so nothing here writes to CS after init.

	bits 16

	extern relocate
	global rom_bdf, rom_bdf_inv

%define VIRTIO_VENDOR 0x1af4
%define VIRTIO_NET_DEVICE 0x1000

	section .text.romhdr
rom_header:
	db 0x55, 0xaa
	db 0			; size in 512-byte blocks (tools/ndrom)
	jmp rom_init		; init entry, offset 3
	times 0x18 - ($ - rom_header) db 0
	dw pcir			; PCI data structure
	dw pnp			; $PnP expansion header

	align 4
pcir:
	db 'PCIR'
	dw VIRTIO_VENDOR
	dw VIRTIO_NET_DEVICE
	dw 0			; vital product data: none
	dw 0x18			; length of this structure
	db 0			; its revision (PCI 2.x layout)
	db 0x00, 0x00, 0x02	; class: prog-if 0, Ethernet (00), network controller (02)
	dw 0			; image length in 512-byte blocks (tools/ndrom)
	dw 1			; revision of the code
	db 0			; code type: x86 BIOS
	db 0x80			; indicator: the last image
	dw 0

	align 16
pnp:
	db '$PnP'
	db 1			; revision
	db 2			; length in 16-byte units
	dw 0			; next header: none
	db 0
	db 0			; checksum of these 32 bytes (tools/ndrom)
	dd 0			; device identifier
	dw manufacturer
	dw product
	db 0x02, 0x00, 0x00	; device type: network controller, Ethernet
	db 0xe4			; may be shadowed, cacheable, needed only when booted from, IPL device
	dw 0			; boot connection vector: none (not a disk controller)
	dw 0			; disconnect vector
	dw rom_bev		; boot entry vector
	dw 0
	dw 0			; static resource information vector

manufacturer:	db 'netdisk', 0
product:	db 'netdisk virtio-net', 0

; The NIC's bus/device/function as init was told it, and its complement:
; FFFF/0000 until then.  Written as a pair whose bytes always sum to 1FEh,
; so the image's checksum holds after init wrote them.
	align 2
rom_bdf:	dw 0xffff
rom_bdf_inv:	dw 0x0000

; Init (far call during POST): AX = bus/device/function, ES:DI = the BIOS's
; $PnP installation check.  Nothing is hooked and no memory is taken: only
; the NIC is noted for the BEV, where a BIOS lets the shadow copy be written
; during POST (else the BEV looks for the first virtio-net NIC).
rom_init:
	push ax
	mov [cs:rom_bdf], ax
	not ax
	mov [cs:rom_bdf_inv], ax
	pop ax
	mov ax, 0x20		; an IPL device is attached (PnP BIOS spec, bits 5-4 = 10b)
	retf

; Boot entry (far call when the BIOS boots this device): no PXE stack, so
; no PXENV+ or !PXE pointers; the stub relocates itself out of the ROM.
; It never returns: if it cannot boot it calls INT 18h (the next device).
rom_bev:
	cli
	xor edx, edx
	xor ebp, ebp
	jmp relocate

	section .note.GNU-stack noalloc noexec nowrite progbits
