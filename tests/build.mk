# Test programs: the protocol/semantics driver, and sanitizer and fuzz builds of the server.

TEST_SRC := tests/unit/ndtest.c tests/unit/faulty.c tests/unit/tapdev.c

all: $(BUILD)/tests/ndtest $(BUILD)/tests/ndblast

$(BUILD)/tests/ndtest: $(TEST_SRC) tests/unit/faulty.h tests/unit/tapdev.h $(CLIENT_HDR) $(BUILD)/libndclient.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Itests/unit -o $@ $(TEST_SRC) $(BUILD)/libndclient.a

$(BUILD)/tests/ndblast: tests/unit/ndblast.c $(CLIENT_HDR) $(BUILD)/libndclient.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libndclient.a

# The server built with AddressSanitizer and UBSan, run by the same suites.
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(BUILD)/asan/netdiskd: $(SERVER_SRC) $(CLIENT_SRC) $(SERVER_HDR) $(CLIENT_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(SERVER_CFLAGS) $(SAN_FLAGS) -O1 -o $@ $(SERVER_SRC) $(CLIENT_SRC) -lpthread

# libFuzzer over every parser of untrusted input (clang); t-server-sanitizers.sh runs
# each for a bounded time.
FUZZERS := udp nbd config frames
$(BUILD)/fuzz/fuzz-frames: tests/fuzz/fuzz_frames.c client/ipstack.c $(CLIENT_HDR)
	@mkdir -p $(dir $@)
	clang $(filter-out -Wshadow -Wno-format-truncation,$(SERVER_CFLAGS)) -O1 -g -Iclient \
		-fsanitize=fuzzer,address,undefined -o $@ $< client/ipstack.c

$(BUILD)/fuzz/fuzz-%: tests/fuzz/fuzz_%.c $(SERVER_CORE_SRC) $(CLIENT_SRC) $(SERVER_HDR)
	@mkdir -p $(dir $@)
	clang $(filter-out -Wshadow -Wno-format-truncation,$(SERVER_CFLAGS)) -O1 -g \
		-fsanitize=fuzzer,address,undefined -o $@ $< $(SERVER_CORE_SRC) $(CLIENT_SRC) -lpthread

.PHONY: test-tools
test-tools: $(BUILD)/asan/netdiskd $(patsubst %,$(BUILD)/fuzz/fuzz-%,$(FUZZERS))
test: test-tools

# End-to-end suites (t-e2e-*.sh): the firmware-phase writers their test image
# boots through, for BIOS (an MBR) and UEFI (an application, built like
# efi/'s with gnu-efi).
all: $(BUILD)/tests/fwmark-mbr.bin $(BUILD)/tests/fwmark.efi

$(BUILD)/tests/fwmark-mbr.bin: tests/e2e/fwmark-mbr.asm
	@mkdir -p $(dir $@)
	nasm -f bin -o $@ $<

$(BUILD)/tests/fwmark.efi: tests/e2e/fwmark-efi.c efi/whole-disk.h $(BUILD)/efi/whole-disk.o
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -c $< -o $(BUILD)/tests/fwmark-efi.o
	ld $(EFI_LDFLAGS) $(BUILD)/tests/fwmark-efi.o $(BUILD)/efi/whole-disk.o -lefi -lgnuefi \
		-o $(BUILD)/tests/fwmark-efi.so
	objcopy $(EFI_SECTIONS) --target=efi-app-x86_64 $(BUILD)/tests/fwmark-efi.so $@
