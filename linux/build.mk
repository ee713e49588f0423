# The Linux side: netdisk-attach, the static initramfs agent.

AGENT_SRC := linux/agent/main.c linux/agent/table.c linux/agent/net.c linux/agent/nbd.c \
	linux/agent/genl.c

all: $(BUILD)/netdisk-attach

$(BUILD)/netdisk-attach: $(AGENT_SRC) linux/agent/agent.h include/netdisk/boottable.h \
		include/netdisk/proto.h | $(BUILD)/.dir
	$(CC) $(HOST_CFLAGS) -Ilinux/agent -static -s -o $@ $(AGENT_SRC)
