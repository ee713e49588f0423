# SPDX-License-Identifier: GPL-2.0-or-later
# The UEFI stub, build/netdisk.efi, built with gnu-efi.  EFI_CFLAGS, EFI_LINK and
# EFI_APP also build the test and benchmark applications (tests/, bench/).

EFI_INC := /usr/include/efi
EFI_LIB := /usr/lib
EFI_CFLAGS := -std=gnu11 -O2 -g0 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	-ffreestanding -fpic -fshort-wchar -fno-stack-protector -fno-strict-aliasing \
	-mno-red-zone -maccumulate-outgoing-args -DGNU_EFI_USE_MS_ABI \
	-I$(EFI_INC) -I$(EFI_INC)/x86_64 -Iinclude -Iclient -Iefi -DND_GROUP
EFI_LDFLAGS := -nostdlib -znocombreloc -shared -Bsymbolic -T $(EFI_LIB)/elf_x86_64_efi.lds \
	-L$(EFI_LIB) $(EFI_LIB)/crt0-efi-x86_64.o
EFI_SECTIONS := -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel -j .rela -j .reloc
# Recipes: link a .so from its prerequisites, and make the .efi application of it.
EFI_LINK = ld $(EFI_LDFLAGS) $^ -lefi -lgnuefi -o $@
EFI_APP = objcopy $(EFI_SECTIONS) --target=efi-app-x86_64 $< $@

EFI_STUB_OBJ := $(addprefix $(BUILD)/efi/,main.o net.o snp.o udp4.o disk.o boot.o clock.o acpi.o \
	ndclient.o sha256.o policy.o ipstack.o virtio.o virtio_net.o group.o)

all: $(BUILD)/netdisk.efi

$(BUILD)/efi/%.o: efi/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) $(DEPFLAGS) -c $< -o $@

# The client core, IP stack and virtio-net driver, compiled once more for the firmware environment.
$(BUILD)/efi/%.o: client/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/efi/netdisk.so: $(EFI_STUB_OBJ)
	$(EFI_LINK)

$(BUILD)/netdisk.efi: $(BUILD)/efi/netdisk.so
	$(EFI_APP)

# Secure Boot: `make sign KEY=db.key CERT=db.crt` signs the stub with the site's
# own db (or MOK) key into build/netdisk.signed.efi (docs/secureboot.md).
# IN= signs another file (a stub already set up with `netdisk patch`: patch
# first, sign last), OUT= names the result.
SIGN_IN ?= $(if $(IN),$(IN),$(BUILD)/netdisk.efi)
SIGN_OUT ?= $(if $(OUT),$(OUT),$(BUILD)/netdisk.signed.efi)
.PHONY: sign
sign: $(SIGN_IN)
	@test -n "$(KEY)" -a -n "$(CERT)" || \
		{ echo "make sign: needs KEY=PRIVATE-KEY.pem CERT=CERT.pem (docs/secureboot.md)" >&2; exit 2; }
	@command -v sbsign >/dev/null || { echo "make sign: sbsign missing (make deps installs sbsigntool)" >&2; exit 2; }
	sbsign --key "$(KEY)" --cert "$(CERT)" --output "$(SIGN_OUT)" "$(SIGN_IN)"
	sbverify --cert "$(CERT)" "$(SIGN_OUT)"
