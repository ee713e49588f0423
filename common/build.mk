# SPDX-License-Identifier: GPL-2.0-or-later
# libndcommon.a: host code shared by netdiskd, the CLI, the Linux agent and the
# tests (MAC and address text, mode names, logging, whole-buffer I/O).

COMMON_SRC := common/mac.c common/mode.c common/addr.c common/log.c common/io.c common/wcache.c \
	common/key.c common/optrom.c common/ibft.c

$(BUILD)/common/%.o: common/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/libndcommon.a: $(patsubst common/%.c,$(BUILD)/common/%.o,$(COMMON_SRC))
	$(AR) rcs $@ $^
