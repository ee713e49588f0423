; SPDX-License-Identifier: GPL-2.0-or-later
; End-to-end test MBR: writes a sector through INT 13h in the firmware phase, then boots the image's real MBR.
;
; The e2e test image (tests/e2e-lib.sh) holds this code in sector 0 (its
; partition table unchanged), a marker in sector 1 and the image's own MBR in
; sector 3.  Here, before any boot loader runs, sector 1 is copied to sector 2
; with the EDD read and write calls the netdisk BIOS stub serves, so Linux
; finding the marker in sector 2 proves a firmware-phase write reached the
; session it took over.  Failures are not fatal: the boot goes on and the
; Linux side reports what sector 2 holds.
bits 16
org 0x0600

BUFFER equ 0x1000               ; sector 1 passes through here

start:
	cli
	xor ax, ax
	mov ss, ax
	mov sp, 0x7C00
	mov ds, ax
	mov es, ax
	sti
	cld
	; The real MBR goes to 0x7C00, where this code was loaded: move away.
	mov si, 0x7C00
	mov di, 0x0600
	mov cx, 256
	rep movsw
	jmp 0:relocated

relocated:
	mov [drive], dl
	mov si, read_marker
	call edd
	mov si, write_marker
	call edd
	mov si, read_mbr
	call edd
	jc .no_mbr
	mov dl, [drive]
	jmp 0:0x7C00
.no_mbr:
	int 0x18                    ; nothing to boot: next boot device

; edd: AH from the byte before the packet at SI, the packet is a disk address packet.
edd:
	mov ah, [si - 1]
	mov al, 0
	mov dl, [drive]
	int 0x13
	ret

drive: db 0x80

	db 0x42
read_marker:                    ; sector 1 -> BUFFER
	db 16, 0
	dw 1, BUFFER, 0
	dq 1
	db 0x43
write_marker:                   ; BUFFER -> sector 2
	db 16, 0
	dw 1, BUFFER, 0
	dq 2
	db 0x42
read_mbr:                       ; sector 3 -> 0:7C00
	db 16, 0
	dw 1, 0x7C00, 0
	dq 3

	times 440 - ($ - $$) db 0
