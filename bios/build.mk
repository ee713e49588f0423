# SPDX-License-Identifier: GPL-2.0-or-later
# BIOS stub: build/netdisk.pxe, real-mode C (gcc -m16) and nasm, linked with the client core.

# -mpreferred-stack-boundary=2: 4-byte stack alignment, all the i386 ABI
# needs; gcc's default of 16 costs code in every function, and the option
# ROM's image must fit one 64 KiB segment with its buffers and stack.
BIOS_CFLAGS := -m16 -march=i686 -mpreferred-stack-boundary=2 -ffreestanding -fno-pie -fno-pic -fno-jump-tables -DND_NO_DIV64 \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin -Os \
	-mno-sse -mno-mmx -mno-80387 -fno-common -ffunction-sections -fdata-sections \
	-Wall -Wextra -Wno-unused-parameter -Iinclude -Iclient -Ibios
# Per image: the data the largest datagram carries (ND_RX_DATA, the receive
# buffer in bios/main.c) and so the largest IP payload the IP stack
# reassembles (that + the 48-byte header + UDP's 8; main.c checks it), which
# sizes its reassembly bitmap.  netdisk.pxe: 16 KiB.
PXE_CFLAGS := $(BIOS_CFLAGS) -DND_RX_DATA=8192 -DND_REASM_MAX=8248 -DND_GROUP
BIOS_C := bios/main.c bios/disk.c bios/pxe.c bios/nic.c bios/memory.c bios/console.c bios/clock.c bios/libc.c bios/resident.c \
	client/ndclient.c client/sha256.c client/policy.c client/ipstack.c client/virtio_net.c client/group.c
BIOS_OBJ := $(patsubst %.c,$(BUILD)/bios/%.o,$(notdir $(BIOS_C))) $(BUILD)/bios/entry.o

all: $(BUILD)/netdisk.pxe

$(BUILD)/bios/%.o: bios/%.c bios/build.mk | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(PXE_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/bios/%.o: client/%.c bios/build.mk | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(PXE_CFLAGS) $(DEPFLAGS) -c $< -o $@

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

# The option ROM (make rom): the same stub with the PCI expansion ROM header
# (bios/romhdr.asm) in front and its own DHCP (bios/rom.c, client/dhcp.c)
# instead of PXE; tools/ndrom sets its sizes and checksums and checks it.
# Its objects are its own (build/rom/): 8 KiB datagrams, so that the image,
# with its DHCP client, fits the 64 KiB segment with room to spare (16 KiB
# ones leave none: the receive buffer is the largest thing in it).
ROM_CFLAGS := $(BIOS_CFLAGS) -DND_RX_DATA=8192 -DND_REASM_MAX=8248
ROM_C := $(filter-out bios/pxe.c,$(BIOS_C)) bios/rom.c client/dhcp.c
ROM_OBJ := $(patsubst %.c,$(BUILD)/rom/%.o,$(notdir $(ROM_C))) $(BUILD)/bios/romhdr.o \
	$(BUILD)/bios/entry.o

$(BUILD)/rom/%.o: bios/%.c bios/build.mk | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(ROM_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/rom/%.o: client/%.c bios/build.mk | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(ROM_CFLAGS) $(DEPFLAGS) -c $< -o $@

.PHONY: rom
rom: $(BUILD)/netdisk-virtio.rom
all: $(BUILD)/netdisk-virtio.rom

$(BUILD)/bios/romhdr.o: bios/romhdr.asm | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	nasm -f elf32 -o $@ $<

$(BUILD)/rom/netdisk-rom.elf: $(ROM_OBJ) linker/netdisk-pxe.ld
	ld -m elf_i386 -nostdlib --no-warn-rwx-segments --gc-sections -T linker/netdisk-pxe.ld -o $@ $(ROM_OBJ)

$(BUILD)/rom/netdisk-rom.bin: $(BUILD)/rom/netdisk-rom.elf
	objcopy -O binary -j .text -j .rodata -j .data $< $@

$(BUILD)/netdisk-virtio.rom: $(BUILD)/rom/netdisk-rom.bin $(BUILD)/ndrom
	$(BUILD)/ndrom fix $< $@ >/dev/null
