# SPDX-License-Identifier: GPL-2.0-or-later
# The portable client core, built for the host into libndclient.a with its host
# UDP transport (client/host/); the firmware builds compile the same core source.

CLIENT_SRC := client/ndclient.c client/sha256.c client/policy.c client/ipstack.c client/group.c \
	client/dhcp.c \
	client/host/udp_host.c

$(BUILD)/client/%.o: client/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/libndclient.a: $(patsubst client/%.c,$(BUILD)/client/%.o,$(CLIENT_SRC))
	$(AR) rcs $@ $^
