; SPDX-License-Identifier: GPL-2.0-or-later
; Benchmark boot sector: reads 32 MiB with INT 13h AH=42h in 64-sector calls, marks start and end on COM1.
;
; Served as LBA 0 of an image by netdiskd or by iSCSI for iPXE's sanboot; the
; host times the span between "BENCH-START" and "BENCH-END" (bench/bios-read).

	bits 16
	org 0x7c00

%define TOTAL_SECTORS 65536	; 32 MiB
%define CALL_SECTORS 64
%define BUFFER_SEG 0x1000

start:
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0x7c00
	sti
	cld
	mov [drive], dl
	mov si, msg_start
	call puts
	xor ebp, ebp		; errors
.loop:
	mov si, dap
	mov ah, 0x42
	mov dl, [drive]
	int 0x13
	jnc .ok
	inc ebp
.ok:
	mov word [dap + 2], CALL_SECTORS
	add dword [dap + 8], CALL_SECTORS
	cmp dword [dap + 8], TOTAL_SECTORS
	jb .loop
	mov si, msg_end
	call puts
	mov al, '0'
	test ebp, ebp
	jz .print
	mov al, '1'
.print:
	call putc
	mov al, 13
	call putc
	mov al, 10
	call putc
.halt:
	hlt
	jmp .halt

%include "com1.inc"

dap:
	db 16, 0
	dw CALL_SECTORS
	dw 0, BUFFER_SEG
	dq 0
drive: db 0
msg_start: db "BENCH-START", 13, 10, 0
msg_end: db "BENCH-END errors=", 0

	times 446 - ($ - $$) db 0
	db 0x80, 1, 1, 0, 0x83, 254, 255, 255
	dd 63, 131072 - 63
	times 510 - ($ - $$) db 0
	dw 0xaa55
