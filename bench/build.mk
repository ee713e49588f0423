# Benchmark programs, and make bench: every benchmark side by side with its peers
# (not part of make test).

# The BIOS read benchmark's boot sector (bench/bios.sh).
all: $(BUILD)/bench/readbench.bin

$(BUILD)/bench/readbench.bin: bench/readbench.asm | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	nasm -f bin -I tests/bios/ -MD $@.d -MP -o $@ $<

# The UEFI BlockIo read benchmark (bench/efi-vs-iscsi.sh), built like netdisk.efi.
all: $(BUILD)/bench/bio-bench.efi

$(BUILD)/bench/efi/%.o: bench/efi/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -Itests/efi $(DEPFLAGS) -c $< -o $@

$(BUILD)/bench/bio-bench.so: $(BUILD)/bench/efi/bio-bench.o $(BUILD)/tests/efi/whole-disk.o
	$(EFI_LINK)

$(BUILD)/bench/bio-bench.efi: $(BUILD)/bench/bio-bench.so
	$(EFI_APP)

.PHONY: bench
bench: deps all
	bench/run
