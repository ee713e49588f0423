# build/netdisk, the admin and test CLI.

all: $(BUILD)/netdisk

$(BUILD)/cli/%.o: cli/%.c $(CLIENT_HDR) include/netdisk/bootcfg.h | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c $< -o $@

$(BUILD)/netdisk: $(BUILD)/cli/netdisk.o $(BUILD)/libndclient.a
	$(CC) $(HOST_LDFLAGS) -o $@ $^
