# Demo disk images built by tools/mkimage: build/demo.img (shell) and build/demo-test.img (powers off once up, reboots on panic: for tests).

# Downloaded kernel packages survive "make clean" only when NETDISK_CACHE points outside build/.
IMAGE_CACHE := $(or $(NETDISK_CACHE),$(BUILD)/cache)
IMAGE_INPUTS := tools/mkimage $(shell find linux/initramfs linux/rootfs -type f 2>/dev/null)

.PHONY: demo-image demo-test-image
demo-image: $(BUILD)/demo.img
demo-test-image: $(BUILD)/demo-test.img

$(BUILD)/demo.img: $(IMAGE_INPUTS) | $(BUILD)/.dir
	tools/mkimage --cache $(IMAGE_CACHE) $@

$(BUILD)/demo-test.img: $(IMAGE_INPUTS) | $(BUILD)/.dir
	tools/mkimage --cache $(IMAGE_CACHE) --append "netdisk.test=poweroff panic=-1" $@
