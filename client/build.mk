# The portable client core, built for the host (firmware builds compile the same source).

CLIENT_SRC := client/ndclient.c client/ipstack.c client/udp_host.c
CLIENT_HDR := include/netdisk/proto.h client/ndclient.h client/ipstack.h client/udp_host.h

$(BUILD)/client/%.o: client/%.c $(CLIENT_HDR) | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c $< -o $@

$(BUILD)/libndclient.a: $(patsubst client/%.c,$(BUILD)/client/%.o,$(CLIENT_SRC))
	$(AR) rcs $@ $^
