# The portable client core, built for the host (firmware builds compile the same source).

CLIENT_SRC := client/ndclient.c client/ipstack.c client/udp_host.c

$(BUILD)/client/%.o: client/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/libndclient.a: $(patsubst client/%.c,$(BUILD)/client/%.o,$(CLIENT_SRC))
	$(AR) rcs $@ $^
