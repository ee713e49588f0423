# The UEFI stub (build/netdisk.efi) and the BlockIo test and benchmark applications, built with gnu-efi.

EFI_INC := /usr/include/efi
EFI_LIB := /usr/lib
EFI_CFLAGS := -std=gnu11 -O2 -g0 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	-ffreestanding -fpic -fshort-wchar -fno-stack-protector -fno-strict-aliasing \
	-mno-red-zone -maccumulate-outgoing-args -DGNU_EFI_USE_MS_ABI \
	-I$(EFI_INC) -I$(EFI_INC)/x86_64 -Iinclude -Iclient -Iefi
EFI_LDFLAGS := -nostdlib -znocombreloc -shared -Bsymbolic -T $(EFI_LIB)/elf_x86_64_efi.lds \
	-L$(EFI_LIB) $(EFI_LIB)/crt0-efi-x86_64.o
EFI_SECTIONS := -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel -j .rela -j .reloc

EFI_STUB_OBJ := $(addprefix $(BUILD)/efi/,main.o net.o snp.o udp4.o disk.o boot.o clock.o acpi.o \
	ndclient.o ipstack.o virtio.o virtio_net.o)
EFI_HDR := efi/netdisk.h client/ndclient.h client/ipstack.h client/virtio_net.h \
	include/netdisk/proto.h include/netdisk/bootcfg.h include/netdisk/boottable.h efi/whole-disk.h

all: $(BUILD)/netdisk.efi $(BUILD)/efi/bio-test.efi $(BUILD)/efi/bio-bench.efi

$(BUILD)/efi/%.o: efi/%.c $(EFI_HDR) | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -c $< -o $@

# The client core, IP stack and virtio-net driver, compiled once more for the firmware environment.
$(BUILD)/efi/%.o: client/%.c $(EFI_HDR) | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -c $< -o $@

$(BUILD)/efi/%.so:
	ld $(EFI_LDFLAGS) $^ -lefi -lgnuefi -o $@

$(BUILD)/efi/netdisk.so: $(EFI_STUB_OBJ)
$(BUILD)/efi/bio-test.so: $(BUILD)/efi/bio-test.o
$(BUILD)/efi/bio-bench.so: $(BUILD)/efi/bio-bench.o $(BUILD)/efi/whole-disk.o

$(BUILD)/netdisk.efi: $(BUILD)/efi/netdisk.so
	objcopy $(EFI_SECTIONS) --target=efi-app-x86_64 $< $@

$(BUILD)/efi/bio-%.efi: $(BUILD)/efi/bio-%.so
	objcopy $(EFI_SECTIONS) --target=efi-app-x86_64 $< $@
