# SPDX-License-Identifier: GPL-2.0-or-later
# build/netdisk, the admin and test CLI.

all: $(BUILD)/netdisk

$(BUILD)/cli/%.o: cli/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/netdisk: $(BUILD)/cli/netdisk.o $(BUILD)/cli/image.o $(BUILD)/cli/status.o $(BUILD)/cli/storm.o $(BUILD)/cli/stormtrace.o $(BUILD)/cli/dnsconf.o $(BUILD)/libndclient.a $(BUILD)/libndcommon.a
	$(CC) $(HOST_LDFLAGS) -o $@ $^ -lpthread
