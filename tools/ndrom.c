/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ndrom: makes the linked BIOS stub a PCI option ROM image (sizes, checksums) and checks such images (make rom, tests/t-rom.sh). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ndcommon.h"
#include "optrom.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ndrom fix IN OUT     make the link output IN an option ROM image OUT\n"
		   "       ndrom check FILE     check an option ROM image and describe it\n");
}

/* The whole file, at most max bytes (one more is read to notice a longer one). */
static uint8_t *load(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(max + 1);

	if (!f || !buf) {
		fprintf(stderr, "ndrom: cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	*len = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		fprintf(stderr, "ndrom: cannot read %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fclose(f);
	return buf;
}

static int check(const char *path)
{
	struct nd_optrom_info info;
	char err[160];
	size_t len;
	uint8_t *d = load(path, ND_ROM_MAX * 2, &len);

	if (nd_optrom_check(d, len, &info, err, sizeof(err))) {
		fprintf(stderr, "ndrom: %s: %s\n", path, err);
		free(d);
		return 1;
	}
	printf("size:     %zu bytes (%zu blocks of 512)\n", info.size, info.size / ND_ROM_BLOCK);
	printf("pci ids:  %04x:%04x\n", info.vendor, info.device);
	printf("class:    %06x\n", (unsigned)info.class_code);
	printf("code:     type %u%s\n", info.code_type, info.last_image ? ", last image" : "");
	printf("init:     %04x\n", info.init);
	printf("bev:      %04x\n", info.bev);
	printf("product:  %s\n", info.product);
	printf("checksum: ok\n");
	free(d);
	return 0;
}

static int fix(const char *in, const char *out)
{
	char err[160];
	size_t len, n;
	uint8_t *d = load(in, ND_ROM_MAX * 2, &len);
	FILE *f;

	n = nd_optrom_fix(d, len, ND_ROM_MAX * 2 + 1, err, sizeof(err));
	if (!n) {
		fprintf(stderr, "ndrom: %s: %s\n", in, err);
		return 1;
	}
	f = fopen(out, "wb");
	if (!f || fwrite(d, 1, n, f) != n || fclose(f)) {
		fprintf(stderr, "ndrom: cannot write %s: %s\n", out, strerror(errno));
		return 1;
	}
	free(d);
	return check(out);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "fix"))
		return fix(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "check"))
		return check(argv[2]);
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
