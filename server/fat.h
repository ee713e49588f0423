/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Rewriting a file on a FAT12/16/32 file system inside a layer (server/fat.c). */
#ifndef FAT_H
#define FAT_H

#include <stddef.h>
#include <stdint.h>
#include "layer.h"

/* Is the partition at [off, off+len) of l a FAT12, FAT16 or FAT32 file system? */
int fat_probe(struct layer *l, uint64_t off, uint64_t len);

/* Replace the contents of the existing file PATH (found by 8.3 short names
 * or VFAT long names, case-insensitive for ASCII)
 * with data[0..n): 0, or -1 with err.  Writes go through layer_write only. */
int fat_put_file(struct layer *l, uint64_t off, uint64_t len, const char *path, const void *data,
		 size_t n, char *err, size_t errlen);

#endif /* FAT_H */
