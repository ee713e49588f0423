# SPDX-License-Identifier: GPL-2.0-or-later
# The Linux side: netdisk-attach, the static initramfs agent.

AGENT_SRC := linux/agent/main.c linux/agent/table.c linux/agent/net.c linux/agent/nbd.c \
	linux/agent/genl.c linux/agent/serve.c linux/agent/tiers.c linux/agent/ptier.c \
	linux/agent/wcconf.c

all: $(BUILD)/netdisk-attach

$(BUILD)/linux/%.o: linux/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Ilinux/agent $(DEPFLAGS) -c $< -o $@

$(BUILD)/netdisk-attach: $(patsubst linux/%.c,$(BUILD)/linux/%.o,$(AGENT_SRC)) $(BUILD)/libndcommon.a
	$(CC) $(HOST_LDFLAGS) -static -s -o $@ $^ -lpthread
