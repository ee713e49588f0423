# SPDX-License-Identifier: GPL-2.0-or-later
# BIOS stub: build/netdisk.pxe, real-mode C (gcc -m16) and nasm, linked with the client core.

BIOS_CFLAGS := -m16 -march=i686 -ffreestanding -fno-pie -fno-pic -fno-jump-tables \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin -Os \
	-mno-sse -mno-mmx -mno-80387 -fno-common -ffunction-sections -fdata-sections \
	-Wall -Wextra -Wno-unused-parameter -Iinclude -Iclient -Ibios
BIOS_C := bios/main.c bios/disk.c bios/pxe.c bios/nic.c bios/memory.c bios/console.c bios/clock.c bios/libc.c bios/resident.c \
	client/ndclient.c client/sha256.c client/policy.c client/ipstack.c client/virtio_net.c
BIOS_OBJ := $(patsubst %.c,$(BUILD)/bios/%.o,$(notdir $(BIOS_C))) $(BUILD)/bios/entry.o

all: $(BUILD)/netdisk.pxe

$(BUILD)/bios/%.o: bios/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(BIOS_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/bios/%.o: client/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(BIOS_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/bios/resident.bin: bios/resident.asm bios/realmode.inc | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	nasm -f bin -Ibios/ -o $@ $<

$(BUILD)/bios/entry.o: bios/entry.asm bios/realmode.inc $(BUILD)/bios/resident.bin | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	nasm -f elf32 -Ibios/ -I$(BUILD)/bios/ -o $@ $<

$(BUILD)/bios/netdisk-pxe.elf: $(BIOS_OBJ) linker/netdisk-pxe.ld
	ld -m elf_i386 -nostdlib --no-warn-rwx-segments --gc-sections -T linker/netdisk-pxe.ld -o $@ $(BIOS_OBJ)

$(BUILD)/netdisk.pxe: $(BUILD)/bios/netdisk-pxe.elf
	objcopy -O binary -j .text -j .rodata -j .data $< $@
