# SPDX-License-Identifier: GPL-2.0-or-later
# netdiskd, the server.

SERVER_SRC := server/main.c server/config.c server/session.c server/udp.c \
	server/layer.c server/overlay.c server/net.c server/nbd.c server/limits.c server/trace.c \
	server/store.c server/control.c server/mcast.c
SERVER_CORE_SRC := $(filter-out server/main.c,$(SERVER_SRC))
SERVER_CFLAGS := $(HOST_CFLAGS) -Iserver -Wno-format-truncation

all: $(BUILD)/netdiskd

$(BUILD)/server/%.o: server/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(SERVER_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/netdiskd: $(patsubst server/%.c,$(BUILD)/server/%.o,$(SERVER_SRC)) $(BUILD)/libndcommon.a
	$(CC) $(HOST_LDFLAGS) -o $@ $^ -lpthread
