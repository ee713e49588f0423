/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The write-cache setting of a client's Linux agent (issue #17): netdiskd.conf's
 * write-cache key, netdisk.write-cache= on the kernel command line and
 * netdisk-attach --write-cache all take "server", "ram:SIZE", "disk:SPEC" or
 * "ram:SIZE overflow=disk:SPEC" (comma or spaces between the parts), the disk
 * part optionally followed by the word "persistent" (the disk tier keeps its
 * blocks across reboots while the image version stays the same).
 * SPEC: /PATH, LABEL=L (ext2/3/4 label) or PARTLABEL=L (GPT name).
 * SIZE: bytes with an optional K, M, G or T suffix (binary). */
#ifndef WCACHE_H
#define WCACHE_H

#include <stddef.h>
#include <stdint.h>

enum { WC_RAM = 0, WC_DISK = 1, WC_SERVER = 2 };

#define WC_TEXT_MAX 200 /* longest setting text carried (NBD info, config) */

struct wc_config {
	int target;          /* the first write target */
	uint64_t ram_bytes;  /* 0: no RAM tier */
	char disk[128];      /* "": no disk tier */
	int disk_persistent; /* "persistent" after the disk part */
};

/* 0, or -1 with a message in err. */
int wc_parse(const char *s, struct wc_config *w, char *err, size_t errlen);
/* A disk SPEC of n bytes (printable, no spaces or commas) into out: 0 or -1. */
int wc_spec_parse(const char *s, size_t n, char *out, size_t outlen);

#endif /* WCACHE_H */
