# SPDX-License-Identifier: GPL-2.0-or-later
# `make install`: the server, the CLI, the stubs (and the option ROM), the agent, the manual pages,
# the systemd unit and a default config, under DESTDIR and PREFIX.

PREFIX ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
INSTALL ?= install

INSTALL_PROGRAMS := $(BUILD)/netdiskd $(BUILD)/netdisk $(BUILD)/netdisk-attach \
	$(BUILD)/netdisk.pxe $(BUILD)/netdisk.efi $(BUILD)/netdisk-virtio.rom
INSTALL_DOCS := README.md $(wildcard docs/*.md)

.PHONY: install programs
programs: $(INSTALL_PROGRAMS)

install: $(INSTALL_PROGRAMS)
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/lib/netdisk $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/doc/netdisk $(DESTDIR)$(SYSCONFDIR)/netdisk \
		$(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 0755 $(BUILD)/netdiskd $(DESTDIR)$(PREFIX)/sbin/netdiskd
	$(INSTALL) -m 0755 $(BUILD)/netdisk $(DESTDIR)$(PREFIX)/bin/netdisk
	$(INSTALL) -m 0755 $(BUILD)/netdisk-attach $(DESTDIR)$(PREFIX)/lib/netdisk/netdisk-attach
	$(INSTALL) -m 0644 $(BUILD)/netdisk.pxe $(BUILD)/netdisk.efi $(BUILD)/netdisk-virtio.rom \
		$(DESTDIR)$(PREFIX)/lib/netdisk/
	$(INSTALL) -m 0644 packaging/man/netdisk.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(INSTALL) -m 0644 packaging/man/netdiskd.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	$(INSTALL) -m 0644 packaging/man/netdiskd.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	$(INSTALL) -m 0644 $(INSTALL_DOCS) $(DESTDIR)$(PREFIX)/share/doc/netdisk/
	$(INSTALL) -m 0644 packaging/netdiskd.conf $(DESTDIR)$(SYSCONFDIR)/netdisk/netdiskd.conf
	sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		packaging/netdiskd.service.in > $(DESTDIR)$(UNITDIR)/netdiskd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/netdiskd.service
