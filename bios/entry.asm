; SPDX-License-Identifier: GPL-2.0-or-later
; Real-mode entry of netdisk.pxe: relocation, C thunks, far-memory helpers, INT 13h/15h hooks.
;
; The whole stub is linked at offset 0 of one segment (code, data, bss and
; stack), so after copying itself to the top of base memory every near
; pointer stays valid with CS=DS=SS=ES.  C (gcc -m16) is entered with a
; 32-bit call and returns with a 32-bit ret; helpers called from C follow the
; same convention (cdecl, 4-byte argument slots, result in EAX).
;
; The stub starts in real mode at the top of base memory.  Before it boots,
; it moves itself to extended memory and leaves only its real-mode resident
; part (resident.asm, built into this image) in base memory; from then on
; this image runs only inside INT 13h calls, in 16-bit protected mode with
; segment bases at its own address (pm_mode = 1), and the helpers below take
; the protected-mode path: real-mode segments become linear addresses
; through the flat selector, BIOS and PXE calls go through the resident part.

	bits 16

	extern _image_end, _resident_end, _resident_kb, _stack_top
	extern stub_main, int13_handler

	global pxenv_ptr, pxe_ptr, stub_seg, base_kb_before, flat_ok
	global pxe_entry, pxe_use_pxenv, our_drive, pm_mode, res_lin
	global far_read8, far_read16, far_read32, far_write8, far_write16, far_write32
	global far_copy, rm_bios_int, rm_pxe_call, boot_jump
	global flat_setup, flat_read16, flat_read32, flat_write16, flat_write32
	global flat_copy_from, flat_copy_from_sum, flat_copy_to, flat_move
	global res_blob, res_blob_end, pm_int13_entry, pm_resume, rm_call

%define BDA_SEG 0x40
%define BDA_BASEMEM 0x13
%define BDA_HDCOUNT 0x75
; Base memory kept free above the image while it starts, for the resident
; part (resident.asm, with a PXE bounce buffer) to go to in the end.
%define RES_RESERVE_KB 24
; Selectors of the resident part's GDT (resident.asm).
%define FLAT_SEL 0x08
%define PM_DS 0x18
%define RM_CS 0x20
%define RES_INT13_BACK 4	; offsets in its header (struct res_hdr)
%define RES_RM_CALL 6

	section .text.entry
	global _start, relocate
; PXE enters at 0:7C00 with ES:BX = PXENV+ and SS:[SP+4] = far pointer to !PXE.
_start:
	jmp 0x07c0:.loaded
.loaded:
	cli
	xor edx, edx		; EDX = PXENV+ (segment:offset)
	mov dx, es
	shl edx, 16
	mov dx, bx
	mov bp, sp
	mov ebp, [bp + 4]	; EBP = !PXE
	; fall through

; The image starts at CS:0 (07C0:0 loaded by PXE, or the option ROM's
; segment, bios/romhdr.asm, which jumps here with EDX = EBP = 0).  Copy it
; to the top of base memory and run it there.  Nothing is written to CS
; before the copy: an option ROM's shadow is read-only by boot time.
relocate:
	cli
	cld
	; Take the top of base memory: lower 40:13 by our resident size.
	mov ax, BDA_SEG
	mov ds, ax
	mov bx, [BDA_BASEMEM]	; BX = 40:13 before
	mov ax, bx
	sub ax, _resident_kb + RES_RESERVE_KB
	and ax, ~3		; a 4 KiB boundary, so that the linker's page layout holds
	mov [BDA_BASEMEM], ax
	shl ax, 6
	; Copy the loaded image there and clear bss.
	mov es, ax
	push cs
	pop ds
	xor si, si
	xor di, di
	mov cx, _image_end
	rep movsb
	mov cx, _resident_end
	sub cx, _image_end
	xor al, al
	rep stosb
	push es
	push .relocated
	retf
.relocated:
	mov ax, cs
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, _stack_top
	mov [stub_seg], ax
	mov [base_kb_before], bx
	mov [pxenv_ptr], edx
	mov [pxe_ptr], ebp
	movzx eax, ax
	shl eax, 4
	add eax, flat_gdt
	mov [flat_gdtr + 2], eax
	sti
	call dword stub_main
.halt:
	hlt
	jmp .halt

	section .text

; Address seg:off of a far_* helper's first two arguments as FS:ECX: in
; real mode FS = seg; in protected mode FS is flat and ECX linear.
%macro FAR_ADDR 0
	cmp byte [pm_mode], 0
	jne %%pm
	mov fs, [esp + 4]
	movzx ecx, word [esp + 8]
	jmp %%done
%%pm:
	mov cx, FLAT_SEL
	mov fs, cx
	movzx ecx, word [esp + 4]
	shl ecx, 4
	movzx eax, word [esp + 8]
	add ecx, eax
%%done:
%endmacro

; uint8_t far_read8(uint16_t seg, uint16_t off) and friends.
far_read8:
	FAR_ADDR
	movzx eax, byte [fs:ecx]
	o32 ret
far_read16:
	FAR_ADDR
	movzx eax, word [fs:ecx]
	o32 ret
far_read32:
	FAR_ADDR
	mov eax, [fs:ecx]
	o32 ret

; void far_write8(uint16_t seg, uint16_t off, uint32_t val) and friends.
far_write8:
	FAR_ADDR
	mov eax, [esp + 12]
	mov [fs:ecx], al
	o32 ret
far_write16:
	FAR_ADDR
	mov eax, [esp + 12]
	mov [fs:ecx], ax
	o32 ret
far_write32:
	FAR_ADDR
	mov eax, [esp + 12]
	mov [fs:ecx], eax
	o32 ret

; Flat ("unreal") access to all memory below 4 GiB from real mode: GS is
; loaded with a data segment of base 0 and limit 4 GiB in a moment of
; protected mode; back in real mode the CPU keeps that limit until GS is
; loaded in protected mode again.  A boot loader or a BIOS that switches
; modes may do that, so flat_gs runs again on every INT 13h entry and after
; every BIOS or PXE call.  In V86 mode (a memory manager such as EMM386
; runs) the switch is impossible: flat_ok is then 0 and the C side falls
; back to the BIOS block move.  GS is used for nothing else.
; flat_gs: establish flat GS if we can; keeps every register and the flags.
; In protected mode GS is flat already.
flat_gs:
	cmp byte [cs:pm_mode], 0
	je .in_real_mode
	ret
.in_real_mode:
	push ax
	smsw ax
	test al, 1
	jz .real
	mov byte [cs:flat_ok], 0
	pop ax
	ret
.real:
	pushf
	cli
	push eax
	o32 sgdt [cs:saved_gdtr]
	o32 lgdt [cs:flat_gdtr]
	mov eax, cr0
	or al, 1
	mov cr0, eax
	jmp short .pm		; settle the prefetch queue on old CPUs
.pm:
	mov ax, FLAT_SEL
	mov gs, ax
	mov eax, cr0
	and al, 0xfe
	mov cr0, eax
	jmp short .rm
.rm:
	xor ax, ax
	mov gs, ax		; base 0, the flat limit stays
	o32 lgdt [cs:saved_gdtr]
	mov byte [cs:flat_ok], 1
	pop eax
	popf
	pop ax
	ret

; void flat_setup(void): flat_gs for C.
flat_setup:
	call flat_gs
	o32 ret

; uint32_t flat_read16(uint32_t linear) and friends: GS must be flat.
flat_read16:
	mov ecx, [esp + 4]
	movzx eax, word [gs:ecx]
	o32 ret
flat_read32:
	mov ecx, [esp + 4]
	mov eax, [gs:ecx]
	o32 ret

; void flat_write16(uint32_t linear, uint32_t val) and flat_write32.
flat_write16:
	mov ecx, [esp + 4]
	mov eax, [esp + 8]
	mov [gs:ecx], ax
	o32 ret
flat_write32:
	mov ecx, [esp + 4]
	mov eax, [esp + 8]
	mov [gs:ecx], eax
	o32 ret

; Copies.  Under an emulator (QEMU TCG) every instruction and every loop
; round costs; so all of them move 64-byte blocks as unrolled dword moves,
; and only the rest one dword, word or byte at a time.
%define COPY_BLOCK_SHIFT 6
%define COPY_BLOCK (1 << COPY_BLOCK_SHIFT)

; Every copy's frame: the registers it uses saved, [esp + 20] its first
; argument; it copies DX bytes from [SRC] to [DST] (SRC and DST name a
; segment and an index register, e.g. gs:esi and es:di).
%macro COPY_ENTER 0
	push ebx
	push esi
	push edi
	push ds
	push es
%endmacro

%macro COPY_LEAVE 0
	pop es
	pop ds
	pop edi
	pop esi
	pop ebx
	o32 ret
%endmacro

; COPY_BODY src, dst, sidx, didx, sum: copy DX bytes from [src] to [dst],
; advancing the index registers sidx and didx.  With sum = 1 also the
; ones' complement sum of the bytes into EBX (which starts at 0): the IP
; stack's checksum taken on the way instead of in a second pass (the sum
; of little-endian dwords, the bytes zero-padded to whole dwords, every
; carry added back in; see nd_framedev.read_sum).
%macro COPY_BODY 5
	mov cx, dx
	shr cx, COPY_BLOCK_SHIFT
	jz %%dwords
	clc			; the shift set it
%%block:
%assign i 0
%rep COPY_BLOCK / 4
	mov eax, [%1 + i]
%if %5
	adc ebx, eax
%endif
	mov [%2 + i], eax
%assign i i + 4
%endrep
	lea %3, [%3 + COPY_BLOCK]	; lea and dec leave CF for the next block
	lea %4, [%4 + COPY_BLOCK]
	dec cx
	jnz %%block
%if %5
	adc ebx, 0
	adc ebx, 0		; only if the first wrapped to 0: cannot carry
%endif
%%dwords:
	mov cx, dx
	and cx, COPY_BLOCK - 1
	shr cx, 2
	jz %%word
%%dword:
	mov eax, [%1]
	mov [%2], eax
%if %5
	add ebx, eax
	adc ebx, 0		; after a carry the sum is below 0xffffffff
%endif
	add %3, 4
	add %4, 4
	dec cx
	jnz %%dword
%%word:
	test dl, 2
	jz %%byte
	movzx eax, word [%1]
	mov [%2], ax
%if %5
	add ebx, eax
	adc ebx, 0
%endif
	add %3, 2
	add %4, 2
%%byte:
	test dl, 1
	jz %%done
	movzx eax, byte [%1]
	mov [%2], al
%if %5
	add ebx, eax
	adc ebx, 0
%endif
%%done:
%endmacro

; Arguments of far_copy into ES:DI, DS:SI and DX.
%macro FAR_ARGS 0
	mov es, [esp + 20]
	mov di, [esp + 24]
	mov ds, [esp + 28]
	mov si, [esp + 32]
	mov dx, [esp + 36]
%endmacro

; void far_copy(uint16_t dseg, uint16_t doff, uint16_t sseg, uint16_t soff, uint16_t len)
far_copy:
	cmp byte [pm_mode], 0
	jne far_copy_pm
	COPY_ENTER
	FAR_ARGS
	COPY_BODY si, es:di, si, di, 0
	COPY_LEAVE

; In protected mode: both sides linear through the flat GS.
far_copy_pm:
	COPY_ENTER
	movzx edi, word [esp + 20]
	shl edi, 4
	movzx eax, word [esp + 24]
	add edi, eax
	movzx esi, word [esp + 28]
	shl esi, 4
	movzx eax, word [esp + 32]
	add esi, eax
	mov dx, [esp + 36]
	COPY_BODY gs:esi, gs:edi, esi, edi, 0
	COPY_LEAVE

; void flat_move(uint32_t dst_linear, uint32_t src_linear, uint16_t len): GS flat.
flat_move:
	COPY_ENTER
	mov edi, [esp + 20]
	mov esi, [esp + 24]
	mov dx, [esp + 28]
	COPY_BODY gs:esi, gs:edi, esi, edi, 0
	COPY_LEAVE

; Arguments of flat_copy_from(_sum) into DI (near), ESI (linear) and DX.
%macro FLAT_FROM_ARGS 0
	mov di, [esp + 20]
	mov esi, [esp + 24]
	mov dx, [esp + 28]
%endmacro

; void flat_copy_from(void *dst, uint32_t src_linear, uint16_t len): GS flat.
flat_copy_from:
	COPY_ENTER
	FLAT_FROM_ARGS
	COPY_BODY gs:esi, di, esi, di, 0
	COPY_LEAVE

; uint32_t flat_copy_from_sum(void *dst, uint32_t src_linear, uint16_t len)
flat_copy_from_sum:
	COPY_ENTER
	FLAT_FROM_ARGS
	xor ebx, ebx
	COPY_BODY gs:esi, di, esi, di, 1
	mov eax, ebx
	COPY_LEAVE

; void flat_copy_to(uint32_t dst_linear, const void *src, uint16_t len): GS flat.
flat_copy_to:
	COPY_ENTER
	mov edi, [esp + 20]
	mov si, [esp + 24]
	mov dx, [esp + 28]
	COPY_BODY si, gs:edi, si, edi, 0
	COPY_LEAVE

; Register block for bios_int (struct bregs in bios.h).
%include "realmode.inc"

; void rm_bios_int(uint8_t vector, struct bregs *r): call an interrupt handler
; as INT would, with every register taken from and returned into *r.  Real
; mode only (bios_int in resident.c chooses).
rm_bios_int:
	pushad
	push ds
	push es
	movzx eax, byte [esp + 36 + 4]
	shl ax, 2
	xor bx, bx
	mov fs, bx
	mov ebx, [fs:eax]
	mov [cs:bios_int_target], ebx
	mov bx, [esp + 36 + 8]
	mov [cs:bios_int_regs], bx
	mov eax, [bx + BR_EAX]
	mov ecx, [bx + BR_ECX]
	mov edx, [bx + BR_EDX]
	mov esi, [bx + BR_ESI]
	mov edi, [bx + BR_EDI]
	mov ebp, [bx + BR_EBP]
	mov es, [bx + BR_ES]
	push word [bx + BR_DS]
	mov ebx, [bx + BR_EBX]
	pop ds
	pushf
	call far [cs:bios_int_target]
	pushf
	push ds
	push ebx
	push ss
	pop ds
	mov bx, [cs:bios_int_regs]
	pop dword [bx + BR_EBX]
	pop word [bx + BR_DS]
	pop word [bx + BR_FLAGS]
	mov [bx + BR_EAX], eax
	mov [bx + BR_ECX], ecx
	mov [bx + BR_EDX], edx
	mov [bx + BR_ESI], esi
	mov [bx + BR_EDI], edi
	mov [bx + BR_EBP], ebp
	mov [bx + BR_ES], es
	pop es
	pop ds
	popad
	and esp, 0xffff
	cld
	call flat_gs		; the BIOS may have switched modes
	o32 ret

; uint16_t rm_pxe_call(uint16_t opcode, void *param): one PXE API call with the
; parameter block in our segment; returns the exit code in AX.  Real mode only.
rm_pxe_call:
	pushad
	push ds
	push es
	mov ax, [esp + 36 + 4]
	mov di, [esp + 36 + 8]
	PXE_API_CALL ss, di
	and esp, 0xffff
	mov [cs:pxe_status], ax
	pop es
	pop ds
	popad
	movzx eax, word [cs:pxe_status]
	cld
	call flat_gs		; PXE stacks run in protected mode
	o32 ret

; void boot_jump(void): enter the boot sector at 0:7C00 like a BIOS, DL = our drive.
boot_jump:
	cli
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, 0x7c00
	mov dl, [cs:our_drive]
	xor ebx, ebx
	xor esi, esi
	xor edi, edi
	sti
	jmp 0:0x7c00

; The INT 13h handler in protected mode: entered from the resident part
; (resident.asm) with CS = this image, interrupts off, EBX = the linear
; address of the caller's registers (struct int13_regs) on its stack.  They
; are copied onto ours, handled, copied back; then back to the resident part
; with the carry flag for the caller in DL.
%define INT13_FRAME 36
pm_int13_entry:
	mov ax, PM_DS
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, _stack_top
	mov ax, FLAT_SEL
	mov fs, ax
	mov gs, ax
	cld
	mov [int13_frame], ebx
	sub esp, INT13_FRAME
	xor ecx, ecx
.in:
	mov eax, [gs:ebx + ecx]
	mov [esp + ecx], eax
	add ecx, 4
	cmp ecx, INT13_FRAME
	jb .in
	mov eax, esp
	push eax
	call dword int13_handler
	add esp, 4
	mov [int13_cf], al
	mov ebx, [int13_frame]
	xor ecx, ecx
.out:
	mov eax, [esp + ecx]
	mov [gs:ebx + ecx], eax
	add ecx, 4
	cmp ecx, INT13_FRAME
	jb .out
	mov dl, [int13_cf]
	mov eax, [res_lin]
	push word RM_CS
	push word [gs:eax + RES_INT13_BACK]
	retf

; void rm_call(void): run the call the resident part's header describes
; (bios_int or pxe_call, resident.c fills it in) in real mode, from
; protected mode.  Comes back at pm_resume.
rm_call:
	pushad
	mov [pm_esp], esp
	mov eax, [res_lin]
	push word RM_CS
	push word [gs:eax + RES_RM_CALL]
	retf
pm_resume:
	mov ax, PM_DS
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, [pm_esp]
	mov ax, FLAT_SEL
	mov fs, ax
	mov gs, ax
	popad
	o32 ret

	section .data
	align 4
pxenv_ptr:	dd 0		; far pointer to PXENV+ from ES:BX
pxe_ptr:	dd 0		; far pointer to !PXE from the stack
pxe_entry:	dd 0		; the API entry point chosen by C
res_lin:	dd 0		; linear address of the resident part, once there
int13_frame:	dd 0		; linear address of the caller's registers
pm_esp:		dd 0		; our stack pointer during a real-mode call
flat_gdtr:	dw 15		; our GDT: a null and a flat data descriptor
		dd 0		; its linear address, set after relocation
saved_gdtr:	dw 0		; the caller's, restored after flat_gs
		dd 0
	align 8
flat_gdt:	dq 0
		dw 0xffff, 0	; limit 0-15, base 0-15
		db 0, 0x93	; base 16-23, present writable data
		db 0x8f, 0	; 4 KiB granularity, limit 16-19; base 24-31
bios_int_target: dd 0
stub_seg:	dw 0
base_kb_before:	dw 0		; 40:13 before we took our share
bios_int_regs:	dw 0
pxe_status:	dw 0
pxe_use_pxenv:	db 0		; 1: call through PXENV+ (BX = opcode, ES:DI = block)
our_drive:	db 0x80
int13_cf:	db 0
flat_ok:	db 0		; GS is flat (0: V86 mode, use the BIOS block move)
pm_mode:	db 0		; 1 in the copy in extended memory: protected mode

; The resident part (resident.asm), copied to the top of base memory.
	align 16
res_blob:	incbin "resident.bin"
res_blob_end:

	section .note.GNU-stack noalloc noexec nowrite progbits
