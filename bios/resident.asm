; SPDX-License-Identifier: GPL-2.0-or-later
; The real-mode resident part of netdisk.pxe: all it keeps in base memory.
;
; Assembled as a flat binary at offset 0 of its own segment and built into
; the stub (entry.asm incbins it); at the end of its start the stub copies it
; to the top of base memory, fills in its header (struct res_hdr in bios.h,
; the same layout) and points INT 13h and INT 15h here.  The rest of the stub
; (its C code, data, the client's state) then lives in extended memory and
; runs there in 16-bit protected mode, with CS/DS/SS descriptors whose base
; is the image's, so that its near pointers stay what they were.
;
; INT 13h for our drive: save the caller's registers on our small real-mode
; stack, switch to protected mode (interrupts stay off there: there is no
; IDT), call the handler in the image, switch back, iret.  While there, the
; image calls back into real mode for BIOS and PXE calls, and now and then
; while it waits to let the timer and other interrupts in (rm_call_entry):
; its arguments sit in this header, its buffers in the bounce buffer at the
; end of this block.

	bits 16
	org 0

%define BDA_SEG 0x40
%define BDA_HDCOUNT 0x75
%define ND_INT13_GROUP_LEAVE 0x7e	; bios.h

; Selectors of the GDT below.
%define FLAT_SEL 0x08		; data, base 0, limit 4 GiB
%define PM_CS 0x10		; 16-bit code, base = the image in extended memory
%define PM_DS 0x18		; 16-bit data, the same base
%define RM_CS 0x20		; 16-bit code, base = this block
%define RM_DS 0x28		; 16-bit data, base = this block, limit 64 KiB

; Header: offsets fixed, shared with struct res_hdr (bios.h).
hdr:
	dw int13_entry		; 0 entry points, for the IVT
	dw int15_entry		; 2
	dw int13_back		; 4 the image's ways back (through RM_CS)
	dw rm_call_entry	; 6
old_int13:	dd 0		; 8
old_int15:	dd 0		; 12
hidden_start:	dd 0		; 16 linear ranges hidden from E820: base memory
hidden_end:	dd 0		; 20
ext_hidden_start: dd 0		; 24 and extended memory (image, NIC)
ext_hidden_end:	dd 0		; 28
image_lin:	dd 0		; 32 linear address of the image
res_lin:	dd 0		; 36 linear address of this block
pm_int13:	dw 0		; 40 image offsets: the INT 13h handler's entry
pm_resume:	dw 0		; 42 and where a real-mode call returns to
pxe_entry:	dd 0		; 44 the PXE API entry point
our_drive:	db 0x80		; 48
hd_count_ours:	db 0		; 49
pxe_use_pxenv:	db 0		; 50
rm_fn:		db 0		; 51 1: bios_int, 2: pxe_call, 3: interrupts
bounce_off:	dw bounce	; 52 offset of the bounce buffer
table_off:	dw boot_table	; 54 offset of the boot table
rm_sp:		dw 0		; 56 our stack pointer below the INT 13h frame
res_seg:	dw 0		; 58 this block's segment
bios_vector:	db 0		; 60 the interrupt bios_int calls
group_joined:	db 0		; 61 1: the image is in a multicast group (nic.c)
res_size_w:	dw res_size	; 62 size of this block without the bounce buffer
bregs:		times 36 db 0	; 64 struct bregs of bios_int
pxe_status:	dw 0		; 100 the PXE call's exit code
pxe_opcode:	dw 0		; 102
pxe_param:	times 128 db 0	; 104 the PXE call's parameter block
	align 8
gdt:	dq 0			; 232
	dw 0xffff, 0		; FLAT_SEL
	db 0, 0x93, 0x8f, 0
	dw 0xffff, 0		; PM_CS: base filled in by C (bytes 2-4, 7)
	db 0, 0x9b, 0, 0
	dw 0xffff, 0		; PM_DS
	db 0, 0x93, 0, 0
	dw 0xffff, 0		; RM_CS: base = res_lin
	db 0, 0x9b, 0, 0
	dw 0xffff, 0		; RM_DS
	db 0, 0x93, 0, 0
gdtr:	dw 6 * 8 - 1		; 280
	dd 0			; 282: res_lin + gdt, filled in by C
saved_gdtr:	dw 0		; the caller's, restored on the way out
		dd 0
caller_esp:	dd 0
caller_ss:	dw 0
chain_dl:	db 0
chain_ah:	db 0
int13_cf:	db 0
	align 16
boot_table:	times 192 db 0	; the boot table for the OS (docs/handoff.md)
rm_back:	dw int13_real, 0 ; far pointers into real mode (segment set on entry)
rm_call_back:	dw rm_call_real, 0
bios_target:	dd 0

%include "realmode.inc"

; Copy the current arithmetic flags into the FLAGS word of the caller's
; interrupt frame, then return from the interrupt.
%macro iret_with_flags 0
	push bp
	mov bp, sp
	push ax
	pushf
	pop ax
	mov [bp + 6], al
	pop ax
	pop bp
	iret
%endmacro

; INT 13h: our drive goes to the image in protected mode; hard disks above
; it are shifted down by one and chained; floppies are chained untouched.
int13_entry:
	push ds
	push ax
	mov ax, BDA_SEG
	mov ds, ax
	mov al, [cs:hd_count_ours]
	cmp [BDA_HDCOUNT], al
	jae .count_ok
	mov [BDA_HDCOUNT], al
.count_ok:
	pop ax
	pop ds
	cmp dl, [cs:our_drive]
	je .ours
	jb .chain
	mov [cs:chain_dl], dl
	mov [cs:chain_ah], ah
	dec dl
	pushf
	call far [cs:old_int13]
	mov dl, [cs:chain_dl]
	jc .chained
	cmp byte [cs:chain_ah], 0x08
	jne .chained_ok
	push ds
	push ax
	mov ax, BDA_SEG
	mov ds, ax
	mov dl, [BDA_HDCOUNT]
	pop ax
	pop ds
.chained_ok:
	clc
.chained:
	iret_with_flags
.chain:
	jmp far [cs:old_int13]
.ours:
	cli
	mov [cs:rm_back + 2], cs
	mov [cs:rm_call_back + 2], cs
	mov [cs:caller_ss], ss
	mov [cs:caller_esp], esp
	mov ss, [cs:res_seg]
	mov esp, stack_top
	push fs
	push gs
	pushad			; struct int13_regs: es, ds, then pushad's
	push ds
	push es
	mov [cs:rm_sp], sp
	cld
	smsw ax
	test al, 1
	jnz .v86		; V86 mode: no way into protected mode
	o32 sgdt [cs:saved_gdtr]
	o32 lgdt [cs:gdtr]
	movzx ebx, sp
	add ebx, [cs:res_lin]	; the frame's linear address, for the image
	mov eax, cr0
	or al, 1
	mov cr0, eax
	push word PM_CS
	push word [cs:pm_int13]
	retf
.v86:
	; AH = AAh (drive not ready), CF set
	mov bp, sp
	mov byte [bp + 4 + 28 + 1], 0xaa
	mov byte [cs:int13_cf], 1
	jmp int13_out

; Protected mode (CS = RM_CS) to real mode: data segments get descriptors a
; real-mode program can live with (DS/ES/FS/GS flat, which only widens their
; limit, as "unreal" mode does; SS 64 KiB), then PE off.  The next jump
; loads a real-mode CS.  A macro: the stack changes under it.
%macro TO_REAL_MODE 0
	mov ax, FLAT_SEL
	mov ds, ax
	mov es, ax
	mov fs, ax
	mov gs, ax
	mov ax, RM_DS
	mov ss, ax
	mov eax, cr0
	and al, 0xfe
	mov cr0, eax
%endmacro

; The image returns here (through RM_CS, still in protected mode) with the
; carry flag for the caller in DL.
int13_back:
	TO_REAL_MODE
	jmp far [cs:rm_back]
int13_real:
	mov [cs:int13_cf], dl
	mov ss, [cs:res_seg]
	mov sp, [cs:rm_sp]
	o32 lgdt [cs:saved_gdtr]
int13_out:
	pop es
	pop ds
	popad
	pop gs
	pop fs
	mov ss, [cs:caller_ss]
	mov esp, [cs:caller_esp]
	push bp
	mov bp, sp
	and byte [bp + 6], 0xfe
	cmp byte [cs:int13_cf], 0
	je .no_carry
	or byte [bp + 6], 1
.no_carry:
	pop bp
	iret

; A call into real mode from the image (through RM_CS, in protected mode):
; rm_fn says which.  Runs on our real-mode stack below the INT 13h frame,
; with interrupts on, as the BIOS and the PXE stack expect.
rm_call_entry:
	TO_REAL_MODE
	jmp far [cs:rm_call_back]
rm_call_real:
	mov ax, cs
	mov ss, ax
	mov sp, [cs:rm_sp]
	mov ds, ax
	mov es, ax
	sti
	cmp byte [cs:rm_fn], 1
	jne .not_bios
	call do_bios_int
	jmp .back
.not_bios:
	cmp byte [cs:rm_fn], 2
	jne .idle
	call do_pxe_call
	jmp .back
.idle:
	nop			; 3: just a moment with interrupts on
	nop
.back:
	cli
	cld
	o32 lgdt [cs:gdtr]
	mov eax, cr0
	or al, 1
	mov cr0, eax
	push word PM_CS
	push word [cs:pm_resume]
	retf

; bios_int for the image: an interrupt handler called as INT would, every
; register from and back into bregs.
do_bios_int:
	pushad
	movzx bx, byte [cs:bios_vector]
	shl bx, 2
	xor ax, ax
	mov fs, ax
	mov eax, [fs:bx]
	mov [cs:bios_target], eax
	mov eax, [cs:bregs + BR_EAX]
	mov ecx, [cs:bregs + BR_ECX]
	mov edx, [cs:bregs + BR_EDX]
	mov esi, [cs:bregs + BR_ESI]
	mov edi, [cs:bregs + BR_EDI]
	mov ebp, [cs:bregs + BR_EBP]
	mov es, [cs:bregs + BR_ES]
	mov ds, [cs:bregs + BR_DS]
	mov ebx, [cs:bregs + BR_EBX]
	pushf
	call far [cs:bios_target]
	pushf
	pop word [cs:bregs + BR_FLAGS]
	mov [cs:bregs + BR_EAX], eax
	mov [cs:bregs + BR_EBX], ebx
	mov [cs:bregs + BR_ECX], ecx
	mov [cs:bregs + BR_EDX], edx
	mov [cs:bregs + BR_ESI], esi
	mov [cs:bregs + BR_EDI], edi
	mov [cs:bregs + BR_EBP], ebp
	mov [cs:bregs + BR_DS], ds
	mov [cs:bregs + BR_ES], es
	popad
	ret

; pxe_call for the image: the parameter block is pxe_param, here.
do_pxe_call:
	pushad
	push ds
	push es
	mov ax, [cs:pxe_opcode]
	PXE_API_CALL cs, pxe_param
	mov [cs:pxe_status], ax
	pop es
	pop ds
	popad
	ret

; INT 15h: E820 entries that overlap our memory (this block in base memory,
; the image and the NIC's block in extended memory) are trimmed so the OS
; never sees it as usable RAM; every other call is chained.
;
; The first call of a map enumeration (EBX = 0) is what a boot loader makes
; when it hands over to the OS (GRUB 2 when it boots Linux, Linux's own
; real-mode setup; docs/bios.md, Multicast): if the image is in a multicast group, it
; leaves it first (IGMP leave), through our INT 13h with a private function.
; A later read joins it again (a loader also reads the map when it starts).
int15_entry:
	cmp eax, 0xe820
	je .e820
	jmp far [cs:old_int15]
.e820:
	test ebx, ebx
	jnz .map
	cmp byte [cs:group_joined], 0
	je .map
	pushad
	push ds
	push es
	mov ah, ND_INT13_GROUP_LEAVE
	mov dl, [cs:our_drive]
	pushf
	push cs
	call int13_entry
	pop es
	pop ds
	popad
.map:
	pushf
	call far [cs:old_int15]
	jc .out
	push bx
	mov bx, hidden_start
	call e820_trim
	mov bx, ext_hidden_start
	call e820_trim
	pop bx
	clc
.out:
	iret_with_flags

; Trim the E820 entry at ES:DI, if usable RAM below 4 GiB, so that it leaves
; out the linear range from [cs:bx] to [cs:bx + 4] (none if that is 0).  An
; entry reaching past the range on both sides keeps only its lower part.
e820_trim:
	cmp dword [cs:bx + 4], 0
	je .ret
	cmp dword [es:di + 16], 1
	jne .ret
	cmp dword [es:di + 4], 0
	jne .ret
	push eax
	push edx
	mov eax, [es:di]
	cmp eax, [cs:bx + 4]
	jae .pop
	; edx = end of the entry, saturated at 4 GiB
	mov edx, eax
	add edx, [es:di + 8]
	jc .huge
	cmp dword [es:di + 12], 0
	je .have_end
.huge:
	mov edx, 0xffffffff
.have_end:
	cmp edx, [cs:bx]
	jbe .pop
	cmp eax, [cs:bx]
	jae .starts_inside
	; entry starts below the range: end it where the range begins
	mov edx, [cs:bx]
	sub edx, eax
	mov [es:di + 8], edx
	mov dword [es:di + 12], 0
	jmp .pop
.starts_inside:
	cmp edx, [cs:bx + 4]
	jbe .all_inside
	; entry runs past the range: start it where the range ends
	sub edx, [cs:bx + 4]
	mov [es:di + 8], edx
	mov dword [es:di + 12], 0
	mov edx, [cs:bx + 4]
	mov [es:di], edx
	jmp .pop
.all_inside:
	mov dword [es:di + 16], 2
.pop:
	pop edx
	pop eax
.ret:
	ret

; The iBFT for the OS (takeover = iscsi, docs/handoff.md): the blob's last
; IBFT_MAX bytes, 16-byte aligned, where the kernel scans 0x80000-0xFFFFF
; (resident.c finds it from the blob's end).  Zero unless the server sent one.
%define IBFT_MAX 1024		; ND_IBFT_MAX, include/netdisk/proto.h
	align 16
ibft:	times IBFT_MAX db 0
; The blob (what the stub carries and copies) ends here; what follows is
; only reserved in base memory, never copied: the real-mode stack (the
; INT 13h frame, then BIOS and PXE calls below it), then the bounce buffer
; for PXE UDP calls (only on the PXE API path).
stack equ $
stack_top equ stack + 2048
bounce equ stack_top
res_size equ bounce

; The header's layout is struct res_hdr's: a field moved makes this fail.
	times ((bregs - hdr == 64) && (pxe_param - hdr == 104) && (gdt - hdr == 232) && (gdtr - hdr == 280)) - 1 db 0
