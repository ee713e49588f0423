# SPDX-License-Identifier: GPL-2.0-or-later
# netdiskd, the server.

SERVER_SRC := server/main.c server/config.c server/session.c server/udp.c \
	server/layer.c server/overlay.c server/net.c server/nbd.c server/limits.c server/trace.c \
	server/store.c server/control.c server/mcast.c server/metrics.c server/http.c server/reload.c \
	server/tls.c server/persona.c server/fat.c server/auth.c server/ibft.c server/iscsi.c \
	server/iscsi_login.c server/iscsi_scsi.c
SERVER_CORE_SRC := $(filter-out server/main.c,$(SERVER_SRC))
# GnuTLS for NBD over TLS (server/tls.c), Debian's libgnutls28-dev; libext2fs
# (persona.c writes clients' identities with it), Debian's libext2fs-dev.
SERVER_LIBS := -lpthread -lgnutls -lext2fs -lcom_err
SERVER_CFLAGS := $(HOST_CFLAGS) -Iserver -I$(BUILD)/server -Wno-format-truncation

$(BUILD)/server/persona.o $(BUILD)/asan/server/persona.o $(BUILD)/tsan/server/persona.o \
$(BUILD)/fuzz/server/persona.o: | $(BUILD)/.ext2fs
$(BUILD)/.ext2fs: | $(BUILD)/.dir
	@echo '#include <ext2fs/ext2fs.h>' | $(CC) -E -x c - >/dev/null 2>&1 || \
		{ echo "netdisk: libext2fs-dev is missing (ext2fs/ext2fs.h): run make deps" >&2; exit 1; }
	@touch $@

# The dashboard page (server/dashboard.html), built into netdiskd as a byte
# array for http.c, in every build of the server (plain, sanitizers, fuzzers).
$(BUILD)/server/dashboard.h: server/dashboard.html | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	{ echo '/* Generated from server/dashboard.html by server/build.mk. */'; \
	  echo 'static const unsigned char dashboard_html[] = {'; xxd -i < $<; echo '};'; \
	  echo 'static const unsigned int dashboard_html_len = sizeof(dashboard_html);'; } > $@.tmp
	mv $@.tmp $@
$(foreach d,server asan/server tsan/server fuzz/server,$(BUILD)/$(d)/http.o): $(BUILD)/server/dashboard.h

all: $(BUILD)/netdiskd

$(BUILD)/server/%.o: server/%.c | $(BUILD)/.dir
	@mkdir -p $(dir $@)
	$(CC) $(SERVER_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/netdiskd: $(patsubst server/%.c,$(BUILD)/server/%.o,$(SERVER_SRC)) $(BUILD)/libndcommon.a
	$(CC) $(HOST_LDFLAGS) -o $@ $^ $(SERVER_LIBS)
