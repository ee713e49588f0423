# SPDX-License-Identifier: GPL-2.0-or-later
# netdisk: builds every artifact into build/; runs the demo, the tests and the benchmarks.

BUILD ?= build
CC ?= gcc
HOST_CFLAGS ?= -std=gnu11 -O2 -g -Wall -Wextra -Wshadow -Wno-unused-parameter \
	-D_GNU_SOURCE -DND_GROUP -Iinclude -Icommon -Iclient -Iclient/host
HOST_LDFLAGS ?=
# A distribution's build flags (debian/rules passes dpkg-buildflags' here).
HOST_CFLAGS += $(DIST_CFLAGS)
HOST_LDFLAGS += $(DIST_LDFLAGS)
# Every compile writes a .d file beside its object naming the headers it read
# (-MP: a deleted header is not an error); they are included at the end.
DEPFLAGS := -MMD -MP

.PHONY: all deps check test compat demo demo-lab bench clean install
all:

# Each component adds its artifacts to `all` and its rules in its own build.mk.
include common/build.mk client/build.mk server/build.mk cli/build.mk bios/build.mk efi/build.mk \
	linux/build.mk tools/build.mk tests/build.mk bench/build.mk packaging/build.mk

$(BUILD)/.dir:
	mkdir -p $(BUILD) && touch $@

# Install the Debian packages the project needs, when they are missing.  The
# one target that installs anything; `make test`, `make demo` and `make bench`
# call it first (see README).
deps:
	@tools/install-deps

# The fast tier: the in-process unit tests (with ASan+UBSan), every fuzzer
# for CHECK_FUZZ_SECONDS each, and the UDP blaster (a million hostile
# datagrams at netdiskd on loopback while a client checks its reads; at most
# a minute).  Needs neither QEMU nor root nor apt (without clang the fuzzers
# are skipped); about 2 minutes.
CHECK_FUZZ_SECONDS ?= 5
check: $(BUILD)/tests/unittest $(if $(shell command -v clang),$(FUZZ_BINS)) $(BUILD)/netdiskd \
		$(BUILD)/tests/ndtest $(BUILD)/tests/ndblast
	ND_FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS) tests/run tests/t-unit.sh tests/t-tree.sh tests/t-testlib.sh tests/t-fuzz.sh \
		tests/t-blast.sh

# Every tier: the fast one and every suite (QEMU, root, network namespaces).
test: deps all
	tests/run

# The whole compatibility matrix (firmware x NIC x boot loader, about 28
# boots, 12-25 minutes); rewrites the table in docs/compat.md.  `make test`
# boots the cells no other suite does (tests/t-compat.sh).
compat: deps all
	tests/compat-matrix

# Serve the demo disk and PXE-boot a VM from it (UEFI=1 for OVMF and netdisk.efi).
demo: deps all demo-image
	qemu-scripts/demo $(if $(UEFI),--uefi) $(if $(MODE),--mode $(MODE))

# Boot N VMs (BIOS and UEFI mixed, default 3) at once through the LAN lab: a
# bridge, dnsmasq and netdiskd in a network namespace (docs/lab.md).
demo-lab: deps all demo-image
	qemu-scripts/lab --vms $(or $(N),3)

clean:
	rm -rf $(BUILD)

# The header dependencies of every object built so far.
-include $(shell find $(BUILD) -path '$(BUILD)/cache' -prune -o -name '*.d' -type f -print 2>/dev/null)
