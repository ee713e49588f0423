/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Finding the boot table a firmware stub left: a file, the ACPI table, or reserved low memory. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "netdisk/proto.h"
#include "agent.h"
#include "ndcommon.h"

#define ACPI_TABLE "/sys/firmware/acpi/tables/NDSK"
#define LOW_START 0x80000 /* the BIOS stub lives at the top of base memory */
#define LOW_END 0xA0000

static int read_file(const char *path, struct nd_boot_table *t)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, t, sizeof(*t));
	close(fd);
	return n == (ssize_t)sizeof(*t) && nd_bt_valid(t, sizeof(*t)) ? 0 : -1;
}

/* Scan base memory through /dev/mem (RAM reads as zeros; the stub's reserved area does not). */
static int scan_low_memory(struct nd_boot_table *t, unsigned long *at)
{
	static uint8_t mem[LOW_END - LOW_START];
	int fd = open("/dev/mem", O_RDONLY);
	unsigned long off;

	if (fd < 0)
		return -1;
	if (pread(fd, mem, sizeof(mem), LOW_START) != (ssize_t)sizeof(mem)) {
		close(fd);
		return -1;
	}
	close(fd);
	for (off = 0; off + sizeof(*t) <= sizeof(mem); off += 16) {
		if (nd_bt_valid((const struct nd_boot_table *)(mem + off), sizeof(mem) - off)) {
			memcpy(t, mem + off, sizeof(*t));
			*at = LOW_START + off;
			return 0;
		}
	}
	return -1;
}

int table_find(const char *file, struct nd_boot_table *t, char *where, size_t wherelen)
{
	unsigned long at;

	if (file) {
		snprintf(where, wherelen, "%s", file);
		return read_file(file, t);
	}
	if (read_file(ACPI_TABLE, t) == 0) {
		snprintf(where, wherelen, "ACPI table NDSK");
		return 0;
	}
	if (scan_low_memory(t, &at) == 0) {
		snprintf(where, wherelen, "base memory at 0x%lx", at);
		return 0;
	}
	return -1;
}

int target_from_table(struct target *tg, const struct nd_boot_table *t)
{
	static const char hex[] = "0123456789abcdef";
	char *p;
	int i;

	memset(tg, 0, sizeof(*tg));
	tg->have_table = 1;
	tg->table = *t;
	memcpy(&tg->server, t->server_ip, 4);
	tg->nbd_port = nd_get16(t->nbd_port) ? nd_get16(t->nbd_port) : ND_DEFAULT_PORT;
	p = tg->export_name + sprintf(tg->export_name, "session:");
	for (i = 0; i < 16; i++) {
		*p++ = hex[t->token[i] >> 4];
		*p++ = hex[t->token[i] & 15];
	}
	*p = 0;
	snprintf(tg->shown, sizeof(tg->shown), "session %08x", nd_token_fingerprint(t->token));
	return 0;
}

/* netdisk.server=IP[:PORT] and netdisk.image=NAME from the kernel command line. */
int target_from_cmdline(struct target *tg, const char *cmdline)
{
	const char *s = strstr(cmdline, "netdisk.server="), *img = strstr(cmdline, "netdisk.image=");
	char ip[64];
	unsigned port = ND_DEFAULT_PORT;
	size_t n;

	memset(tg, 0, sizeof(*tg));
	if (!s || !img)
		return -1;
	s += strlen("netdisk.server=");
	n = strcspn(s, ": \n");
	if (n == 0 || n >= sizeof(ip))
		return -1;
	memcpy(ip, s, n);
	ip[n] = 0;
	if (s[n] == ':')
		port = (unsigned)strtoul(s + n + 1, NULL, 10);
	if (inet_pton(AF_INET, ip, &tg->server) != 1 || port == 0 || port > 65535)
		return -1;
	tg->nbd_port = (uint16_t)port;
	img += strlen("netdisk.image=");
	n = strcspn(img, " \n");
	if (n == 0 || n >= sizeof(tg->export_name))
		return -1;
	memcpy(tg->export_name, img, n);
	tg->export_name[n] = 0;
	snprintf(tg->shown, sizeof(tg->shown), "%.*s", ND_IMAGE_NAME_LEN, tg->export_name);
	return 0;
}

static const char *ip4(const uint8_t *a, char *buf)
{
	return inet_ntop(AF_INET, a, buf, 16);
}

void table_print(const struct nd_boot_table *t, const char *where)
{
	char a[16], b[16], c[16], d[16], mac[ND_MAC_STRLEN + 1];

	printf("found:      %s\n", where);
	printf("firmware:   %s\n", t->firmware == ND_BT_FW_BIOS ? "bios" :
				   t->firmware == ND_BT_FW_EFI ? "uefi" : "unknown");
	nd_mac_format(t->mac, mac);
	printf("mac:        %s\n", mac);
	printf("client:     %s/%s gateway %s\n", ip4(t->client_ip, a), ip4(t->netmask, b),
	       ip4(t->gateway, c));
	printf("server:     %s udp %u nbd %u\n", ip4(t->server_ip, d), nd_get16(t->udp_port),
	       nd_get16(t->nbd_port));
	printf("image:      %.*s\n", (int)sizeof(t->image), t->image);
	printf("mode:       %u\n", t->mode);
	if (t->flags & ND_BT_FLAG_PERSONALIZED)
		printf("personal:   yes, layer %06x\n", nd_get32(t->handoff) >> ND_HANDOFF_LAYER_SHIFT);
	printf("takeover:   %s\n", nd_get32(t->handoff) & ND_HANDOFF_ISCSI ? "iscsi (iBFT)" : "nbd");
	printf("sectors:    %llu\n", (unsigned long long)nd_get64(t->sectors));
	printf("session:    %08x (the token's fingerprint; the token is never shown)\n",
	       nd_token_fingerprint(t->token));
}
