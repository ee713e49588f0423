# Demo disk images built by tools/mkimage: build/demo.img (shell) and build/demo-test.img (powers off once up, reboots on panic: for tests).

# Downloaded kernel packages survive "make clean" only when NETDISK_CACHE points outside build/.
IMAGE_CACHE := $(or $(NETDISK_CACHE),$(BUILD)/cache)
# IMAGE_AGENT: the netdisk-attach binary the initramfs runs (linux/build.mk
# builds it); empty leaves the attach hook unused.
IMAGE_AGENT ?= $(BUILD)/netdisk-attach
IMAGE_INPUTS := tools/mkimage $(shell find linux/initramfs linux/rootfs -type f 2>/dev/null) $(IMAGE_AGENT)
IMAGE_FLAGS := --cache $(IMAGE_CACHE) $(if $(IMAGE_AGENT),--agent $(IMAGE_AGENT))

.PHONY: demo-image demo-test-image
demo-image: $(BUILD)/demo.img
demo-test-image: $(BUILD)/demo-test.img

$(BUILD)/demo.img: $(IMAGE_INPUTS) | $(BUILD)/.dir
	tools/mkimage $(IMAGE_FLAGS) $@

$(BUILD)/demo-test.img: $(IMAGE_INPUTS) | $(BUILD)/.dir
	tools/mkimage $(IMAGE_FLAGS) --append "netdisk.test=poweroff panic=-1" $@
