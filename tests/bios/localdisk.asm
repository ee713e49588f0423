; SPDX-License-Identifier: GPL-2.0-or-later
; Boot sector of the local disk in BIOS tests: named "LOCALDISK" at byte 2, says so on COM1 if booted.
	bits 16
	org 0x7c00
	jmp short start
	db "LOCALDISK"
start:
	xor ax, ax
	mov ds, ax
	mov si, msg
.next:
	lodsb
	test al, al
	jz .halt
	mov ah, al
	mov dx, 0x3fd
.wait:
	in al, dx
	test al, 0x20
	jz .wait
	mov al, ah
	mov dx, 0x3f8
	out dx, al
	jmp .next
.halt:
	hlt
	jmp .halt
msg: db "LOCALDISK BOOTED", 13, 10, 0
	times 510 - ($ - $$) db 0
	dw 0xaa55
