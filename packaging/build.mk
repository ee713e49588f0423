# SPDX-License-Identifier: GPL-2.0-or-later
# `make install`: the server, the CLI, the stubs (and the option ROM), the agent, the manual pages,
# the systemd unit, a default config and the initramfs-tools hook and dracut module, under DESTDIR and PREFIX.

PREFIX ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
INSTALL ?= install
# Where initramfs-tools and dracut look for hooks and modules, whatever PREFIX
# is: the stock-distribution takeover (docs/handoff.md, "Stock distributions").
INITRAMFS_TOOLS_DIR ?= /usr/share/initramfs-tools
DRACUT_MODULES_DIR ?= /usr/lib/dracut/modules.d

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
	$(INSTALL) -d $(DESTDIR)$(INITRAMFS_TOOLS_DIR)/hooks $(DESTDIR)$(INITRAMFS_TOOLS_DIR)/scripts/local-top \
		$(DESTDIR)$(DRACUT_MODULES_DIR)/90netdisk
	sed -e 's|@LIBDIR@|$(PREFIX)/lib/netdisk|g' packaging/initramfs-tools/hooks/netdisk \
		> $(DESTDIR)$(INITRAMFS_TOOLS_DIR)/hooks/netdisk
	chmod 0755 $(DESTDIR)$(INITRAMFS_TOOLS_DIR)/hooks/netdisk
	$(INSTALL) -m 0755 packaging/initramfs-tools/scripts/local-top/netdisk \
		$(DESTDIR)$(INITRAMFS_TOOLS_DIR)/scripts/local-top/netdisk
	sed -e 's|@LIBDIR@|$(PREFIX)/lib/netdisk|g' packaging/dracut/90netdisk/module-setup.sh \
		> $(DESTDIR)$(DRACUT_MODULES_DIR)/90netdisk/module-setup.sh
	chmod 0755 $(DESTDIR)$(DRACUT_MODULES_DIR)/90netdisk/module-setup.sh
	$(INSTALL) -m 0755 packaging/dracut/90netdisk/netdisk-cmdline.sh \
		packaging/dracut/90netdisk/netdisk-dracut-attach.sh $(DESTDIR)$(DRACUT_MODULES_DIR)/90netdisk/
