# SPDX-License-Identifier: GPL-2.0-or-later
# Demo disk images built by tools/mkimage: build/demo.img (shell), build/demo-test.img (powers off once up, reboots on panic: for tests) and build/grub-test.img (the same with GRUB 2 in the MBR).

# Downloaded kernel packages survive "make clean" only when NETDISK_CACHE points outside build/.
IMAGE_CACHE := $(or $(NETDISK_CACHE),$(BUILD)/cache)
# IMAGE_AGENT: the netdisk-attach binary the initramfs runs (linux/build.mk
# builds it); empty leaves the attach hook unused.
IMAGE_AGENT ?= $(BUILD)/netdisk-attach
IMAGE_INPUTS := tools/mkimage $(shell find linux/initramfs linux/rootfs -type f 2>/dev/null) $(IMAGE_AGENT)
# --iscsi: iscsistart in the initramfs, for takeover = iscsi (docs/handoff.md).
IMAGE_FLAGS := --cache $(IMAGE_CACHE) $(if $(IMAGE_AGENT),--agent $(IMAGE_AGENT)) --iscsi

.PHONY: demo-image demo-test-image grub-test-image
demo-image: $(BUILD)/demo.img
demo-test-image: $(BUILD)/demo-test.img
grub-test-image: $(BUILD)/grub-test.img

# make demo's persistent overlays (demo-state) hold sector changes made
# against the previous demo.img's bytes; on a rebuilt image of the same size
# netdiskd would keep them and hand clients a corrupt disk, so drop them.
$(BUILD)/demo.img: $(IMAGE_INPUTS) | $(BUILD)/.dir
	tools/mkimage $(IMAGE_FLAGS) $@
	@if [ -d $(BUILD)/demo-state ]; then \
		echo "demo.img rebuilt: dropping make demo's persistent overlays in $(BUILD)/demo-state"; \
		rm -rf $(BUILD)/demo-state; \
	fi

$(BUILD)/demo-test.img: $(IMAGE_INPUTS) | $(BUILD)/.dir
	tools/mkimage $(IMAGE_FLAGS) --append "netdisk.test=poweroff panic=-1" $@

$(BUILD)/grub-test.img: $(IMAGE_INPUTS) | $(BUILD)/.dir
	tools/mkimage $(IMAGE_FLAGS) --bios-loader grub --append "netdisk.test=poweroff panic=-1" $@

# ndrom: the option ROM's size fields and checksums, and its checker (make rom).
all: $(BUILD)/ndrom

$(BUILD)/tools/%.o: tools/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/ndrom: $(BUILD)/tools/ndrom.o $(BUILD)/libndcommon.a
	$(CC) $(HOST_LDFLAGS) -o $@ $^
