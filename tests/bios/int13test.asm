; SPDX-License-Identifier: GPL-2.0-or-later
; Boot-sector test program: exercises every INT 13h function of netdisk.pxe, reports on COM1.
;
; The served image holds this program in sectors 0-31 and, from sector 32 on,
; a pattern: dword k of sector n is n*128+k (tests/bios/mkimage-int13.py).
; Each check prints "ok NAME" or "not ok NAME ..."; values the harness
; compares with the image are printed as "val NAME=NUMBER".  The last line
; is "INT13TEST END".  When the byte `fault_phase` is 1, a phase of reads and
; writes follows during which the harness stops and restarts the server.
;
; Memory: the program is at 0x7C00-0xBBFF, its stack below 0x7C00; the last
; checks fill the rest of 0x500-0x7FFFF through INT 13h reads, as boot
; loaders use it (GRUB reads core.img into 0x70000), so a stub that keeps
; anything there breaks.

	bits 16
	org 0x7c00

%define STAGE2_SECTORS 31
%define BUF1 0x1000		; segments of 64 KiB scratch buffers
%define BUF2 0x2000
%define BUF3 0x3000
%define FLAT1 0x200000		; flat buffers above 1 MiB
%define FLAT2 0x300000
%define LOW1_START 0x500	; free memory below the stack (0x6F00-0x7BFF)
%define LOW1_SECTORS 53
%define LOW2_START 0xbc00	; free memory above the program, to 0x80000
%define LOW2_SECTORS ((0x80000 - LOW2_START) / 512)
%define LOW_LBA 30000		; pattern sectors no check writes to

boot:
	cli
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov sp, 0x7c00
	sti
	cld
	mov si, dap_load
	mov ah, 0x42
	int 0x13
	jc .fail
	mov [drive], dl		; stage 2 holds the variable: set it once loaded
	jmp stage2
.fail:
	mov si, msg_load_fail
	call puts
.halt:	hlt
	jmp .halt

dap_load:
	db 16, 0
	dw STAGE2_SECTORS
	dw 0x7e00, 0
	dq 1

msg_load_fail: db "not ok load stage 2", 13, 10, "INT13TEST END", 13, 10, 0

%include "com1.inc"

	times 446 - ($ - $$) db 0
; One partition ending at cylinder 1023, head 3, sector 16: geometry 4/16,
; so the 65536-sector disk has 1024 cylinders and CHS needs CL bits 6-7.
	db 0x80, 1, 1, 0, 0x83, 3, 0xc0 | 16, 0xff
	dd 16, 65536 - 16
	times 510 - ($ - $$) db 0
	dw 0xaa55

; ---------------------------------------------------------------- stage 2
stage2:
	jmp short stage2_main
fault_phase: db 0		; patched to 1 by the fault test (image offset 514)

stage2_main:
	mov si, msg_start
	call puts
	call test_install_check
	call test_get_params
	call test_edd_params
	call test_disk_type
	call test_ext_read
	call test_last_sector
	call test_out_of_range
	call test_chs_read
	call test_chs_bad
	call test_chs_write
	call test_ext_write
	call test_ahead_write
	call test_flat_read
	call test_flat_write
	call test_misc
	call test_invalid
	call test_other_drive
	call test_e820
	call test_boot_table
	call test_read_70000
	call test_fill_low
	cmp byte [fault_phase], 1
	jne .end
	call fault_test
.end:
	call handover_e820
	mov si, msg_end
	call puts
.halt:	hlt
	jmp .halt

msg_start: db "INT13TEST START", 13, 10, 0
msg_end: db "INT13TEST END", 13, 10, 0

; ---------------------------------------------------------------- reporting
; ok / not_ok: print the check name at CS:SI.
report_ok:
	push si
	mov si, msg_ok
	call puts
	pop si
	call puts
	jmp crlf
report_fail:
	push si
	mov si, msg_notok
	call puts
	pop si
	call puts
	push si
	mov si, msg_ah
	call puts
	pop si
	movzx eax, byte [last_ah]
	call putdec
	jmp crlf
crlf:
	mov al, 13
	call putc
	mov al, 10
	call putc
	ret

msg_ok: db "ok ", 0
msg_notok: db "not ok ", 0
msg_ah: db " ah=", 0

; CHECK cond, "name": report a failure if the condition code holds.
%macro CHECK 2
	j%+1 %%bad
	mov si, %%name
	call report_ok
	jmp %%done
%%bad:
	mov si, %%name
	call report_fail
	jmp %%done
%%name: db %2, 0
%%done:
%endmacro

; VALUE "name", reg32: print "val name=number".
%macro VALUE 2
	push eax
	mov eax, %2
	mov si, %%name
	call putval
	pop eax
	jmp %%done
%%name: db %1, 0
%%done:
%endmacro

putval:
	push eax
	push si
	mov si, msg_val
	call puts
	pop si
	call puts
	mov al, '='
	call putc
	pop eax
	call putdec
	jmp crlf
msg_val: db "val ", 0

; putdec: EAX in decimal.
putdec:
	pushad
	mov ebx, 10
	xor cx, cx
.div:
	xor edx, edx
	div ebx
	push dx
	inc cx
	test eax, eax
	jnz .div
.out:
	pop ax
	add al, '0'
	call putc
	loop .out
	popad
	ret

; ---------------------------------------------------------------- helpers
; int13: call INT 13h on our drive, remember AH.
int13:
	mov dl, [drive]
int13_dl:
	int 0x13
	mov [last_ah], ah
	ret

; ext_io: AH = function, EBX = LBA, CX = count, DI:0 = buffer segment.
ext_io:
	mov byte [dap], 16
	mov [dap + 2], cx
	mov word [dap + 4], 0
	mov [dap + 6], di
	mov [dap + 8], ebx
	mov dword [dap + 12], 0
	mov si, dap
	jmp int13

; flat_io: AH = function, EBX = LBA, CX = count, EDI = flat address.
flat_io:
	mov byte [dap], 24
	mov [dap + 2], cx
	mov dword [dap + 4], 0xffffffff
	mov [dap + 8], ebx
	mov dword [dap + 12], 0
	mov [dap + 16], edi
	mov dword [dap + 20], 0
	mov si, dap
	jmp int13

; fill: ES:0 = CX sectors of pattern for LBA EBX xor EDX.
fill:
	pushad
	xor di, di
	mov eax, ebx
	shl eax, 7
	shl cx, 7
.loop:
	push eax
	xor eax, edx
	stosd
	pop eax
	inc eax
	loop .loop
	popad
	ret

; verify: CF clear if ES:0 holds CX sectors of pattern for LBA EBX xor EDX.
verify:
	pushad
	xor di, di
	mov eax, ebx
	shl eax, 7
	movzx ecx, cx
	shl ecx, 7
.loop:
	mov esi, eax
	xor esi, edx
	cmp [es:di], esi
	jne .bad
	add di, 4
	inc eax
	loop .loop
	popad
	clc
	ret
.bad:
	popad
	stc
	ret

; write_pattern: write CX sectors at LBA EBX from BUF2, filled with the
; pattern for LBA EBX xor EDX (AH=43h).  CF set on failure.  Both keep
; EBX, ECX and EDX for the next call.
write_pattern:
	push es
	push edx
	push cx
	push word BUF2
	pop es
	call fill
	mov ah, 0x43
	mov al, 0
	mov di, BUF2
	call ext_io
	pop cx
	pop edx
	pop es
	ret

; read_verify: read CX sectors at LBA EBX into BUF1 (AH=42h); CF clear if
; they hold the pattern for LBA EBX xor EDX.
read_verify:
	push es
	push edx
	push cx
	push word BUF1
	pop es
	mov ah, 0x42
	mov di, BUF1
	call ext_io
	pop cx
	pop edx
	jc .done
	call verify
.done:
	pop es
	ret

; block_move: copy CX words from linear ESI to linear EDI with INT 15h AH=87h.
block_move:
	pushad
	push es
	mov [gdt + 16 + 2], si
	shr esi, 16
	mov ax, si
	mov [gdt + 16 + 4], al
	mov [gdt + 16 + 7], ah
	mov [gdt + 24 + 2], di
	shr edi, 16
	mov ax, di
	mov [gdt + 24 + 4], al
	mov [gdt + 24 + 7], ah
	push ds
	pop es
	mov si, gdt
	mov ah, 0x87
	int 0x15
	pop es
	popad
	ret

; ---------------------------------------------------------------- tests
test_install_check:
	mov ah, 0x41
	mov bx, 0x55aa
	call int13
	jc .bad
	cmp bx, 0xaa55
	jne .bad
	cmp ah, 0x30
	jb .bad
	test cx, 1
	jz .bad
	clc
	jmp .done
.bad:
	stc
.done:
	CHECK c, "41 edd installation check"
	ret

test_get_params:
	mov ah, 0x08
	call int13
	CHECK c, "08 get parameters"
	movzx eax, dh
	inc eax
	VALUE "heads", eax
	movzx eax, cl
	and al, 63
	VALUE "spt", eax
	movzx eax, cl
	shl eax, 2
	and eax, 0x300
	mov al, ch
	inc eax
	VALUE "cylinders", eax
	movzx eax, dl
	VALUE "drives", eax
	push ds
	push word 0x40
	pop ds
	movzx eax, byte [0x75]
	pop ds
	VALUE "bda_drives", eax
	ret

test_edd_params:
	mov word [edd], 0x42
	mov ah, 0x48
	mov si, edd
	call int13
	CHECK c, "48 get extended parameters"
	movzx eax, word [edd]
	VALUE "edd_size", eax
	mov eax, [edd + 0x10]
	VALUE "edd_sectors_lo", eax
	mov eax, [edd + 0x14]
	VALUE "edd_sectors_hi", eax
	movzx eax, word [edd + 0x18]
	VALUE "edd_bytes_per_sector", eax
	mov eax, [edd + 8]
	VALUE "edd_heads", eax
	mov eax, [edd + 12]
	VALUE "edd_spt", eax
	mov word [edd], 0x10
	mov ah, 0x48
	mov si, edd
	call int13
	CHECK nc, "48 rejects a short buffer"
	ret

test_disk_type:
	mov ah, 0x15
	call int13
	jc .bad
	cmp byte [last_ah], 3
	jne .bad
	clc
	jmp .done
.bad:
	stc
.done:
	CHECK c, "15 disk type is hard disk"
	mov ax, cx
	shl eax, 16
	mov ax, dx
	VALUE "type15_sectors", eax
	ret

test_ext_read:
	push es
	push word BUF1
	pop es
	mov ah, 0x42
	mov ebx, 1000
	mov cx, 64
	mov di, BUF1
	call ext_io
	jc .bad
	cmp word [dap + 2], 64
	jne .bad
	xor edx, edx
	mov cx, 64
	call verify
	jmp .done
.bad:
	stc
.done:
	pop es
	CHECK c, "42 read 64 sectors matches the image"
	ret

test_last_sector:
	push es
	push word BUF1
	pop es
	mov ebx, [edd + 0x10]
	dec ebx
	mov [last_lba], ebx
	mov ah, 0x42
	mov cx, 1
	mov di, BUF1
	call ext_io
	jc .bad
	xor edx, edx
	mov cx, 1
	call verify
	jmp .done
.bad:
	stc
.done:
	pop es
	CHECK c, "42 read last sector"
	ret

test_out_of_range:
	mov ah, 0x42
	mov ebx, [last_lba]
	mov cx, 2
	mov di, BUF1
	call ext_io
	jnc .bad
	cmp word [dap + 2], 0
	jne .bad
	mov ah, 0x01
	call int13
	cmp byte [last_ah], 0
	je .bad
	push ds
	push word 0x40
	pop ds
	cmp byte [0x74], 0
	pop ds
	je .bad
	mov ah, 0x42
	mov ebx, [last_lba]
	inc ebx
	mov cx, 1
	call ext_io
	jnc .bad
	clc
	jmp .done
.bad:
	stc
.done:
	CHECK c, "42 out of range fails with status"
	mov ah, 0x00
	call int13
	mov ah, 0x01
	call int13
	cmp byte [last_ah], 0
	CHECK ne, "01 status after reset is 0"
	ret

; C=300 H=2 S=7 is LBA (300*4+2)*16+6 = 19238; cylinder bits 8-9 go in CL.
%define CHS_C300_S7 (((300 & 0xff) << 8) | ((300 >> 2) & 0xc0) | 7)
test_chs_read:
	push es
	push word BUF1
	pop es
	mov ax, 0x020a
	mov cx, CHS_C300_S7
	mov dh, 2
	xor bx, bx
	call int13
	jc .bad
	cmp al, 10
	jne .bad
	mov ebx, 19238
	xor edx, edx
	mov cx, 10
	call verify
	jmp .done
.bad:
	stc
.done:
	pop es
	CHECK c, "02 CHS read matches the image"
	ret

test_chs_bad:
	push es
	push word BUF1
	pop es
	mov ax, 0x0201
	mov cx, (3 << 8) | 0
	mov dh, 1
	xor bx, bx
	call int13
	pop es
	CHECK nc, "02 sector 0 is rejected"
	ret

; Write C=10 H=2 S=1 (LBA (10*4+2)*16 = 672) with a new pattern, read back.
test_chs_write:
	push es
	push word BUF2
	pop es
	mov ebx, 672
	mov edx, 0x5a5a5a5a
	mov cx, 3
	call fill
	mov ax, 0x0303
	mov cx, (10 << 8) | 1
	mov dh, 2
	xor bx, bx
	call int13
	pop es
	jc .done
	mov ebx, 672
	mov edx, 0x5a5a5a5a
	mov cx, 3
	call read_verify
.done:
	CHECK c, "03 CHS write reads back"
	ret

; 127 sectors take more than one WRITE request of 1472-byte datagrams.
test_ext_write:
	mov ebx, 5000
	mov edx, 0x12345678
	mov cx, 127
	call write_pattern
	jc .done
	call read_verify
	jc .done
	; the sectors around it are untouched
	mov ebx, 4999
	xor edx, edx
	mov cx, 1
	call read_verify
	jc .done
	mov ebx, 5127
	call read_verify
.done:
	CHECK c, "43 write 127 sectors reads back"
	ret

; A read that continues the one before it has the stub request the sectors
; after it ahead; a write there must drop them: the read after the write
; sees what was written, not what was requested before it.
test_ahead_write:
	push es
	push word BUF1
	pop es
	mov ah, 0x42
	mov ebx, 5984
	mov cx, 16
	mov di, BUF1
	call ext_io
	jc .read
	mov ah, 0x42
	mov ebx, 6000
	mov cx, 16
	mov di, BUF1
	call ext_io
.read:
	pop es
	jc .done
	mov ebx, 6016
	mov edx, 0x5a5a1234
	mov cx, 16
	call write_pattern
	jc .done
	call read_verify
.done:
	CHECK c, "42 read after a write where the stub read ahead sees the write"
	ret

; flat_read_verify: read 64 sectors at LBA 2000 into FLAT1 (AH=42h, flat
; DAP) and check them through BUF3; CF set on failure.  With AL = 1 it
; runs low_all's check (AL = 1) between the read and the check.
flat_read_verify:
	push ax
	mov ah, 0x42
	mov ebx, 2000
	mov cx, 64
	mov edi, FLAT1
	call flat_io
	pop ax
	jc .done
	cmp al, 1
	jne .move
	call low_all
	CHECK c, "stub writes nothing in 500-7ffff while it reads"
.move:
	mov esi, FLAT1
	mov edi, BUF3 << 4
	mov cx, 64 * 256
	call block_move
	push es
	push word BUF3
	pop es
	mov ebx, 2000
	xor edx, edx
	mov cx, 64
	call verify
	pop es
.done:
	ret

test_flat_read:
	mov al, 0
	call flat_read_verify
	CHECK c, "42 read into a buffer above 1 MiB"
	ret

test_flat_write:
	push es
	push word BUF2
	pop es
	mov ebx, 7000
	mov edx, 0xcafef00d
	mov cx, 33
	call fill
	pop es
	mov esi, BUF2 << 4
	mov edi, FLAT2
	mov cx, 33 * 256
	call block_move
	mov ah, 0x43
	mov al, 0
	mov ebx, 7000
	mov cx, 33
	mov edi, FLAT2
	call flat_io
	jc .done
	mov ebx, 7000
	mov edx, 0xcafef00d
	mov cx, 33
	call read_verify
.done:
	CHECK c, "43 write from a buffer above 1 MiB reads back"
	ret

test_misc:
	mov ah, 0x00
	call int13
	CHECK c, "00 reset"
	mov ah, 0x0d
	call int13
	CHECK c, "0d alternate reset"
	mov ah, 0x10
	call int13
	CHECK c, "10 test unit ready"
	mov ah, 0x11
	call int13
	CHECK c, "11 recalibrate"
	mov ah, 0x0c
	mov cx, (20 << 8) | 1
	mov dh, 0
	call int13
	CHECK c, "0c seek"
	mov ax, 0x0405
	mov cx, CHS_C300_S7
	mov dh, 2
	call int13
	CHECK c, "04 verify"
	mov ah, 0x44
	mov ebx, 100
	mov cx, 8
	mov di, BUF1
	call ext_io
	CHECK c, "44 extended verify"
	mov ah, 0x47
	mov ebx, 100
	mov cx, 0
	call ext_io
	CHECK c, "47 extended seek"
	mov ah, 0x47
	mov ebx, [last_lba]
	add ebx, 10
	mov cx, 0
	call ext_io
	CHECK nc, "47 seek out of range fails"
	ret

test_invalid:
	mov ah, 0x50
	call int13
	jnc .bad
	cmp byte [last_ah], 1
	jne .bad
	clc
	jmp .done
.bad:
	stc
.done:
	CHECK c, "unknown function is invalid"
	ret

; The machine's own disk moved to 81h: its first sector says "LOCALDISK" at byte 2.
test_other_drive:
	push es
	push word BUF1
	pop es
	mov byte [es:0], 0
	mov ax, 0x0201
	mov cx, 1
	mov dh, 0
	xor bx, bx
	mov dl, 0x81
	call int13_dl
	jc .bad
	cmp dword [es:2], "LOCA"
	jne .bad
	mov ah, 0x08
	mov dl, 0x81
	call int13_dl
	jc .bad
	clc
	jmp .done
.bad:
	stc
.done:
	pop es
	CHECK c, "81 is the local disk, chained"
	ret

; No usable E820 entry may overlap the memory above 40:13 in base memory.
; Each usable one below 4 GiB is printed (val e820_ram_start/end) for the
; harness to check against the stub's report of its memory.
test_e820:
	push es
	push word 0x40
	pop es
	movzx ebp, word [es:0x13]
	pop es
	shl ebp, 10
	xor ebx, ebx
	mov byte [e820_bad], 0
.next:
	mov eax, 0xe820
	mov edx, 0x534d4150
	mov ecx, 20
	mov di, e820_entry
	int 0x15
	jc .end
	cmp dword [e820_entry + 16], 1
	jne .more
	cmp dword [e820_entry + 4], 0
	jne .more
	mov eax, [e820_entry]
	VALUE "e820_ram_start", eax
	add eax, [e820_entry + 8]
	VALUE "e820_ram_end", eax
	mov eax, [e820_entry]
	cmp eax, 0xa0000
	jae .more
	add eax, [e820_entry + 8]
	cmp eax, ebp
	jbe .more
	mov byte [e820_bad], 1
.more:
	test ebx, ebx
	jnz .next
.end:
	cmp byte [e820_bad], 0
	CHECK ne, "e820 hides the resident memory"
	ret

; What a boot loader does last before it starts the OS: read the memory
; map.  The stub leaves its multicast group at the first call of a map
; enumeration (bios/resident.asm), so the lab sees its IGMP leave.
handover_e820:
	xor ebx, ebx
	mov eax, 0xe820
	mov edx, 0x534d4150
	mov ecx, 20
	mov di, e820_entry
	int 0x15
	ret

; The stub's boot table (docs/handoff.md): "NDSK", 16-byte aligned between
; 0x80000 and 0xA0000, 192 bytes summing to 0.  Its fields are printed.
test_boot_table:
	push es
	mov ax, 0x8000
.scan:
	mov es, ax
	cmp dword [es:0], "NDSK"
	jne .next
	cmp dword [es:4], 192
	jne .next
	xor si, si
	xor bl, bl
.sum:
	add bl, [es:si]
	inc si
	cmp si, 192
	jb .sum
	test bl, bl
	jz .found
.next:
	inc ax
	cmp ax, 0xa000
	jb .scan
	pop es
	stc
	CHECK c, "boot table present"
	ret
.found:
	movzx eax, byte [es:37]
	VALUE "bt_firmware", eax
	movzx eax, byte [es:38]
	VALUE "bt_mode", eax
	movzx eax, word [es:64]
	xchg al, ah
	VALUE "bt_udp_port", eax
	mov eax, [es:88]
	bswap eax
	VALUE "bt_sectors", eax
	mov eax, [es:60]
	VALUE "bt_server_ip", eax
	pop es
	clc
	CHECK c, "boot table present"
	ret

; GRUB's boot.img and diskboot.img read core.img into 7000:0000.
test_read_70000:
	push es
	push word 0x7000
	pop es
	mov ah, 0x42
	mov ebx, 40000
	mov cx, 127
	mov di, 0x7000
	call ext_io
	jc .done
	xor edx, edx
	mov cx, 127
	call verify
.done:
	pop es
	CHECK c, "42 read 127 sectors into 7000:0000"
	ret

; low_range: AL = 0 reads EBP sectors at LBA EBX to linear ESI on (a
; multiple of 16) with AH=42h, AL = 1 checks that they are there; in pieces
; of at most 127 sectors.  CF set on failure.
low_range:
	pushad
	mov [low_mode], al
.next:
	test ebp, ebp
	jz .ok
	mov ecx, 127
	cmp ebp, ecx
	jae .piece
	mov ecx, ebp
.piece:
	push esi
	push es
	mov edi, esi
	shr edi, 4
	mov es, di
	cmp byte [low_mode], 0
	jne .check
	push ebx
	push ecx
	mov ah, 0x42
	call ext_io
	pop ecx
	pop ebx
	jmp .piece_done
.check:
	xor edx, edx
	call verify
.piece_done:
	pop es
	pop esi
	jc .fail
	add ebx, ecx
	sub ebp, ecx
	mov eax, ecx
	shl eax, 9
	add esi, eax
	jmp .next
.ok:
	popad
	clc
	ret
.fail:
	popad
	stc
	ret

; low_all: low_range (AL as there) over all free memory in 0x500-0x7FFFF.
low_all:
	mov esi, LOW1_START
	mov ebp, LOW1_SECTORS
	mov ebx, LOW_LBA
	call low_range
	jc .done
	mov esi, LOW2_START
	mov ebp, LOW2_SECTORS
	mov ebx, LOW_LBA + LOW1_SECTORS
	call low_range
.done:
	ret

; Fill all free memory in 0x500-0x7FFFF through INT 13h reads; then the
; stub must go on reading right (into a buffer above 1 MiB) without
; writing there, and the data it reads must be right.
test_fill_low:
	mov al, 0
	call low_all
	jc .filled
	mov al, 1
	call low_all
.filled:
	CHECK c, "42 reads fill all free memory in 500-7ffff"
	mov al, 1
	call flat_read_verify
	CHECK c, "42 read after the fill matches the image"
	ret

; Reads and writes for about 12 s while the harness restarts the server.
fault_test:
	mov ebx, 9000
	mov edx, 0x0badf00d
	mov cx, 16
	call write_pattern
	CHECK c, "fault write before the outage"
	mov si, msg_fault_start
	call puts
	push ds
	push word 0x40
	pop ds
	mov eax, [0x6c]
	pop ds
	mov [fault_start], eax
	mov dword [fault_reads], 0
	mov byte [fault_bad], 0
.loop:
	push ds
	push word 0x40
	pop ds
	mov eax, [0x6c]
	pop ds
	mov [fault_read_start], eax
	mov ebx, [fault_reads]
	and ebx, 63
	shl ebx, 6
	add ebx, 11000
	xor edx, edx
	mov cx, 64
	call read_verify
	jnc .good
	mov byte [fault_bad], 1
.good:
	inc dword [fault_reads]
	push ds
	push word 0x40
	pop ds
	mov eax, [0x6c]
	pop ds
	; The longest read in BIOS ticks: the one the outage stalls lasts
	; seconds, and the timer must keep ticking meanwhile.
	push eax
	sub eax, [fault_read_start]
	cmp eax, [fault_longest]
	jbe .not_longer
	mov [fault_longest], eax
.not_longer:
	pop eax
	sub eax, [fault_start]
	cmp eax, 12 * 18
	jb .loop
	mov si, msg_fault_end
	call puts
	VALUE "fault_reads", dword [fault_reads]
	VALUE "fault_longest_read_ticks", dword [fault_longest]
	cmp byte [fault_bad], 0
	CHECK ne, "fault reads during the outage all correct"
	mov ebx, 9000
	mov edx, 0x0badf00d
	mov cx, 16
	call read_verify
	CHECK c, "fault write survives the server restart"
	ret

msg_fault_start: db "FAULT-PHASE-START", 13, 10, 0
msg_fault_end: db "FAULT-PHASE-END", 13, 10, 0

	align 8
gdt:
	times 16 db 0
	dw 0xffff, 0
	db 0, 0x93, 0, 0
	dw 0xffff, 0
	db 0, 0x93, 0, 0
	times 16 db 0
dap: times 24 db 0
edd: times 0x42 db 0
e820_entry: times 24 db 0
last_lba: dd 0
fault_start: dd 0
fault_reads: dd 0
fault_read_start: dd 0
fault_longest: dd 0
drive: db 0
last_ah: db 0
e820_bad: db 0
low_mode: db 0
fault_bad: db 0

	times 512 * (STAGE2_SECTORS + 1) - ($ - $$) db 0
