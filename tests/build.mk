# SPDX-License-Identifier: GPL-2.0-or-later
# Test programs and their builds: the protocol/semantics driver, sanitizer and
# fuzz builds of the server, the boot-sector and UEFI programs the firmware
# suites boot.

TEST_SRC := tests/unit/ndtest.c tests/unit/faulty.c tests/unit/tapdev.c

all: $(BUILD)/tests/ndtest $(BUILD)/tests/ndblast

$(BUILD)/tests/unit/%.o: tests/unit/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Itests/unit $(DEPFLAGS) -c $< -o $@

$(BUILD)/tests/ndtest: $(patsubst %.c,$(BUILD)/%.o,$(TEST_SRC)) $(BUILD)/libndclient.a \
		$(BUILD)/libndcommon.a
	$(CC) $(HOST_LDFLAGS) -o $@ $^

$(BUILD)/tests/ndblast: $(BUILD)/tests/unit/ndblast.o $(BUILD)/libndclient.a $(BUILD)/libndcommon.a
	$(CC) $(HOST_LDFLAGS) -o $@ $^

# The server built with AddressSanitizer and UBSan (t-server-sanitizers.sh).
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(BUILD)/asan/%.o: %.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(SERVER_CFLAGS) $(SAN_FLAGS) -O1 $(DEPFLAGS) -c $< -o $@

$(BUILD)/asan/netdiskd: $(patsubst %.c,$(BUILD)/asan/%.o,$(SERVER_SRC) $(COMMON_SRC))
	$(CC) $(SAN_FLAGS) -o $@ $^ $(SERVER_LIBS)

# The server built with ThreadSanitizer, for t-server-sanitizers.sh's concurrent
# scenario (NBD writers and flushes beside UDP and NBD readers).
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
$(BUILD)/tsan/%.o: %.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(SERVER_CFLAGS) $(TSAN_FLAGS) -O1 $(DEPFLAGS) -c $< -o $@

$(BUILD)/tsan/netdiskd: $(patsubst %.c,$(BUILD)/tsan/%.o,$(SERVER_SRC) $(COMMON_SRC))
	$(CC) $(TSAN_FLAGS) -o $@ $^ $(SERVER_LIBS)

# The in-process unit tests (make check), built with the sanitizers: the client
# core and stub policy against the server's request handler, the IP stack on
# crafted frames, the DHCP client against a scripted server, overlay crash consistency (pwrite cut through --wrap),
# the config parser's errors, common/.
UNIT_SRC := tests/unit/unit-main.c tests/unit/unit-common.c tests/unit/unit-config.c \
	tests/unit/unit-client.c tests/unit/unit-ipstack.c tests/unit/unit-dhcp.c \
	tests/unit/unit-overlay.c tests/unit/unit-tiers.c tests/unit/unit-crypto.c
UNIT_LIBS := $(SERVER_CORE_SRC) $(COMMON_SRC) client/ndclient.c client/sha256.c client/policy.c client/ipstack.c \
	client/dhcp.c \
	client/group.c linux/agent/tiers.c linux/agent/ptier.c linux/agent/wcconf.c
$(BUILD)/tests/unittest: $(patsubst %.c,$(BUILD)/asan/%.o,$(UNIT_SRC) $(UNIT_LIBS))
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -Wl,--wrap=pwrite -o $@ $^ $(SERVER_LIBS)

# libFuzzer over every parser of untrusted input (clang); t-fuzz.sh runs each
# for a bounded time.
FUZZERS := udp nbd iscsi config frames control group stormtrace http psk tiers ptier template fat auth dnsconf dhcp optrom
FUZZ_BINS := $(patsubst %,$(BUILD)/fuzz/fuzz-%,$(FUZZERS))
FUZZ_CFLAGS := $(filter-out -Wshadow -Wno-format-truncation,$(SERVER_CFLAGS)) -O1 -g \
	-fsanitize=fuzzer-no-link,address,undefined
FUZZ_LDFLAGS := -fsanitize=fuzzer,address,undefined
# (Objects reached only through the fuzz-% pattern are kept, not deleted as intermediates.)
.PRECIOUS: $(BUILD)/fuzz/%.o
$(BUILD)/fuzz/%.o: %.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/fuzz/fuzz-frames: $(BUILD)/fuzz/tests/fuzz/fuzz_frames.o $(BUILD)/fuzz/client/ipstack.o
	clang $(FUZZ_LDFLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz-dhcp: $(BUILD)/fuzz/tests/fuzz/fuzz_dhcp.o $(BUILD)/fuzz/client/dhcp.o \
		$(BUILD)/fuzz/client/ipstack.o
	clang $(FUZZ_LDFLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz-optrom: $(BUILD)/fuzz/tests/fuzz/fuzz_optrom.o $(BUILD)/fuzz/common/optrom.o
	clang $(FUZZ_LDFLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz-group: $(BUILD)/fuzz/tests/fuzz/fuzz_group.o $(BUILD)/fuzz/client/group.o
	clang $(FUZZ_LDFLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz-tiers: $(BUILD)/fuzz/tests/fuzz/fuzz_tiers.o $(BUILD)/fuzz/linux/agent/wcconf.o \
		$(BUILD)/fuzz/common/wcache.o
	clang $(FUZZ_LDFLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz-ptier: $(BUILD)/fuzz/tests/fuzz/fuzz_ptier.o $(BUILD)/fuzz/linux/agent/ptier.o
	clang $(FUZZ_LDFLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz-stormtrace: $(BUILD)/fuzz/tests/fuzz/fuzz_stormtrace.o $(BUILD)/fuzz/cli/stormtrace.o
	clang $(FUZZ_LDFLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz-dnsconf: $(BUILD)/fuzz/tests/fuzz/fuzz_dnsconf.o $(BUILD)/fuzz/cli/dnsconf.o \
		$(patsubst %.c,$(BUILD)/fuzz/%.o,$(COMMON_SRC))
	clang $(FUZZ_LDFLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz-%: $(BUILD)/fuzz/tests/fuzz/fuzz_%.o \
		$(patsubst %.c,$(BUILD)/fuzz/%.o,$(SERVER_CORE_SRC) $(COMMON_SRC))
	clang $(FUZZ_LDFLAGS) -o $@ $^ $(SERVER_LIBS)

.PHONY: test-tools
test-tools: $(BUILD)/asan/netdiskd $(BUILD)/tsan/netdiskd $(BUILD)/tests/unittest $(FUZZ_BINS)
test: test-tools

# Boot-sector programs the BIOS suites serve (tests/t-bios-*.sh).
all: $(BUILD)/tests/int13test.bin $(BUILD)/tests/localdisk.bin

$(BUILD)/tests/%.bin: tests/bios/%.asm | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	nasm -f bin -I tests/bios/ -MD $@.d -MP -o $@ $<

# The BlockIo check the UEFI suites boot from the served disk's ESP (t-efi-*.sh),
# built like netdisk.efi; whole-disk.c also serves bench/'s bio-bench.efi.
all: $(BUILD)/tests/bio-test.efi

$(BUILD)/tests/efi/%.o: tests/efi/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -Itests/efi $(DEPFLAGS) -c $< -o $@

$(BUILD)/tests/bio-test.so: $(BUILD)/tests/efi/bio-test.o
	$(EFI_LINK)

# The Secure Boot suite's key enrolment and state report (t-secboot.sh).
all: $(BUILD)/tests/sb-enroll.efi

$(BUILD)/tests/sb-enroll.so: $(BUILD)/tests/efi/sb-enroll.o
	$(EFI_LINK)

$(BUILD)/tests/%.efi: $(BUILD)/tests/%.so
	$(EFI_APP)

# End-to-end suites (t-e2e-*.sh): the firmware-phase writers their test image
# boots through, for BIOS (an MBR) and UEFI (an application).
all: $(BUILD)/tests/fwmark-mbr.bin $(BUILD)/tests/fwmark.efi

$(BUILD)/tests/fwmark-mbr.bin: tests/e2e/fwmark-mbr.asm | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	nasm -f bin -o $@ $<

$(BUILD)/tests/e2e/%.o: tests/e2e/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -Itests/efi $(DEPFLAGS) -c $< -o $@

$(BUILD)/tests/fwmark.so: $(BUILD)/tests/e2e/fwmark-efi.o $(BUILD)/tests/efi/whole-disk.o
	$(EFI_LINK)
