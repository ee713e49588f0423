/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Rewriting one existing file on a FAT12/16/32 file system inside a layer
 * (the EFI system partition's boot loader menus, for per-client kernel
 * command lines: server/persona.c).  Files are found by their 8.3 short
 * names or their VFAT long names (both case-insensitive for ASCII; a long
 * name counts only with its checksum right); the file's cluster chain is reused, grown from
 * free clusters or shrunk, in every FAT copy, with FAT32's FSInfo free count
 * kept right.  Everything is read and written through layer_read/write, so
 * on a personalization layer only that layer changes.  The boot sector and
 * the FAT are the image's, so every number from them is checked.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fat.h"
#include "log.h"
#include "ndcommon.h"

#define LFN_MAX 255 /* characters of a long name */

struct fat {
	struct layer *l;
	uint64_t off, len;      /* the partition, bytes */
	unsigned bps, spc, nfats, bits;
	uint64_t fat_off, fat_bytes; /* the first FAT; each copy follows at fat_bytes */
	uint64_t root_off, root_bytes; /* FAT12/16: the fixed root directory */
	uint32_t root_cluster;  /* FAT32 */
	uint64_t data_off;
	uint32_t clusters;      /* data clusters: numbers 2 .. clusters+1 */
	uint64_t fsinfo_off;    /* FAT32, 0: none */
};


/* Little-endian fields (common/ndcommon.h), 32 bits at most in FAT. */
static uint32_t le(const uint8_t *p, int n)
{
	return (uint32_t)nd_get_le(p, n);
}

/* Read or write bytes of the partition, bounds checked. */
static int fat_io(struct fat *f, int wr, void *buf, size_t n, uint64_t at)
{
	if (at > f->len || n > f->len - at)
		return -ERANGE;
	return wr ? layer_write(f->l, buf, n, f->off + at) : layer_read(f->l, buf, n, f->off + at);
}

static int fat_open(struct fat *f, struct layer *l, uint64_t off, uint64_t len)
{
	uint8_t b[512];
	uint64_t totsec, fatsz, rootsec, first;

	memset(f, 0, sizeof(*f));
	f->l = l, f->off = off, f->len = len;
	if (len < 512 || layer_read(l, b, 512, off) < 0 || b[510] != 0x55 || b[511] != 0xaa)
		return -1;
	f->bps = le(b + 11, 2), f->spc = b[13], f->nfats = b[16];
	if ((f->bps != 512 && f->bps != 1024 && f->bps != 2048 && f->bps != 4096) || !f->spc ||
	    (f->spc & (f->spc - 1)) || !f->nfats || f->nfats > 4 || !le(b + 14, 2))
		return -1;
	totsec = le(b + 19, 2) ? le(b + 19, 2) : le(b + 32, 4);
	fatsz = le(b + 22, 2) ? le(b + 22, 2) : le(b + 36, 4);
	rootsec = ((uint64_t)le(b + 17, 2) * 32 + f->bps - 1) / f->bps;
	first = le(b + 14, 2) + f->nfats * fatsz + rootsec;
	if (!fatsz || first >= totsec || totsec * f->bps > len)
		return -1;
	f->clusters = (uint32_t)((totsec - first) / f->spc);
	f->bits = f->clusters < 4085 ? 12 : f->clusters < 65525 ? 16 : 32;
	if (f->bits == 32 && le(b + 22, 2))
		return -1; /* an inconsistent FAT32 */
	f->fat_off = (uint64_t)le(b + 14, 2) * f->bps;
	f->fat_bytes = fatsz * f->bps;
	if (((uint64_t)(f->clusters + 2) * f->bits + 7) / 8 > f->fat_bytes)
		return -1;
	f->root_off = f->fat_off + f->nfats * f->fat_bytes;
	f->root_bytes = rootsec * f->bps;
	f->data_off = first * f->bps;
	if (f->bits == 32) {
		f->root_cluster = le(b + 44, 4);
		if (f->root_cluster < 2 || f->root_cluster >= f->clusters + 2)
			return -1;
		if (le(b + 48, 2) && le(b + 48, 2) < le(b + 14, 2))
			f->fsinfo_off = (uint64_t)le(b + 48, 2) * f->bps;
	} else if (!f->root_bytes) {
		return -1;
	}
	return 0;
}

int fat_probe(struct layer *l, uint64_t off, uint64_t len)
{
	struct fat f;

	return fat_open(&f, l, off, len) == 0;
}

static uint64_t csize(const struct fat *f)
{
	return (uint64_t)f->bps * f->spc;
}

static uint64_t cluster_off(const struct fat *f, uint32_t c)
{
	return f->data_off + (uint64_t)(c - 2) * csize(f);
}

static int valid_cluster(const struct fat *f, uint32_t c)
{
	return c >= 2 && c < f->clusters + 2;
}

/* Where entry c is in a FAT copy, and how many bytes hold it (FAT12: an
 * entry is 12 bits, two share three bytes, so it is read as a 16-bit word). */
static uint64_t entry_at(const struct fat *f, uint32_t c, unsigned *n)
{
	*n = f->bits == 12 ? 2 : f->bits / 8;
	return f->bits == 12 ? (uint64_t)c + c / 2 : (uint64_t)c * *n;
}

static int fat_get(struct fat *f, uint32_t c, uint32_t *next)
{
	uint8_t b[4];
	unsigned n;
	uint64_t at = entry_at(f, c, &n);
	int rc = fat_io(f, 0, b, n, f->fat_off + at);

	if (rc < 0)
		return rc;
	if (f->bits == 12)
		*next = c & 1 ? le(b, 2) >> 4 : le(b, 2) & 0xfff;
	else
		*next = f->bits == 16 ? le(b, 2) : le(b, 4) & 0x0fffffff;
	return 0;
}

static int is_eoc(const struct fat *f, uint32_t v)
{
	return f->bits == 12 ? v >= 0xff8 : f->bits == 16 ? v >= 0xfff8 : v >= 0x0ffffff8;
}

/* Set entry c in every FAT copy (FAT32 keeps the top 4 bits, FAT12 the
 * neighbour's half of the shared byte). */
static int fat_set(struct fat *f, uint32_t c, uint32_t v)
{
	uint8_t b[4];
	unsigned i, n;
	uint64_t off = entry_at(f, c, &n);
	int rc;

	for (i = 0; i < f->nfats; i++) {
		uint64_t at = f->fat_off + i * f->fat_bytes + off;
		uint32_t w;

		if ((rc = fat_io(f, 0, b, n, at)) < 0)
			return rc;
		w = le(b, n);
		if (f->bits == 12)
			nd_put_le(b, c & 1 ? (w & 0x000f) | (v & 0xfff) << 4 : (w & 0xf000) | (v & 0xfff), 2);
		else if (f->bits == 16)
			nd_put_le(b, v & 0xffff, 2);
		else
			nd_put_le(b, (w & 0xf0000000) | (v & 0x0fffffff), 4);
		if ((rc = fat_io(f, 1, b, n, at)) < 0)
			return rc;
	}
	return 0;
}

/* A cluster chain from `first`: its clusters (malloc'd) and count, or -1. */
static int chain(struct fat *f, uint32_t first, uint32_t **out, uint32_t *count)
{
	uint32_t *v = NULL, n = 0, c = first, cap = 0;

	*out = NULL;
	*count = 0;
	if (!first)
		return 0;
	while (1) {
		if (!valid_cluster(f, c) || n > f->clusters) {
			free(v);
			return -1; /* out of range, or a loop */
		}
		if (n == cap) {
			uint32_t *w = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!w) {
				free(v);
				return -1;
			}
			v = w;
		}
		v[n++] = c;
		if (fat_get(f, c, &c) < 0) {
			free(v);
			return -1;
		}
		if (is_eoc(f, c))
			break;
	}
	*out = v;
	*count = n;
	return 0;
}

/* An 8.3 name as stored in a directory entry; -1 if the name has no 8.3 form. */
static int short_name(const char *s, size_t n, uint8_t out[11])
{
	size_t i, dot = n, base;

	memset(out, ' ', 11);
	for (i = 0; i < n; i++)
		if (s[i] == '.')
			dot = i;
	base = dot;
	if (!base || base > 8 || (dot < n && n - dot - 1 > 3) || (dot < n && n - dot - 1 == 0))
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == dot)
			continue;
		if (c == '.' || c <= ' ' || c >= 0x7f || strchr("\"*+,/:;<=>?[\\]|", c))
			return -1;
		c = (unsigned char)(c >= 'a' && c <= 'z' ? c - 32 : c);
		out[i < dot ? i : 8 + (i - dot - 1)] = c;
	}
	return 0;
}

/* A path component to look for: its 8.3 form (if it has one) and its long
 * name in UTF-16 (BMP only). */
struct want {
	int has_short;
	uint8_t name[11];
	uint16_t lfn[LFN_MAX];
	unsigned lfn_len;
};

/* The component (UTF-8, n bytes) as a want; -1 if it is neither a short
 * name nor a long one (too long, not UTF-8, a character outside the BMP). */
static int want_of(const char *s, size_t n, struct want *w)
{
	size_t i = 0;

	w->has_short = short_name(s, n, w->name) == 0;
	w->lfn_len = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		uint32_t u;

		if (w->lfn_len == LFN_MAX)
			return w->has_short ? 0 : -1;
		if (c < 0x80) {
			u = c, i += 1;
		} else if ((c & 0xe0) == 0xc0 && i + 1 < n && (s[i + 1] & 0xc0) == 0x80) {
			u = (uint32_t)(c & 0x1f) << 6 | (s[i + 1] & 0x3f), i += 2;
		} else if ((c & 0xf0) == 0xe0 && i + 2 < n && (s[i + 1] & 0xc0) == 0x80 &&
			   (s[i + 2] & 0xc0) == 0x80) {
			u = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6 |
			    (s[i + 2] & 0x3f), i += 3;
		} else {
			return w->has_short ? 0 : -1;
		}
		w->lfn[w->lfn_len++] = (uint16_t)u;
	}
	return 0;
}

/* The checksum of a short name that its long name entries carry. */
static uint8_t lfn_checksum(const uint8_t name[11])
{
	uint8_t sum = 0;
	int i;

	for (i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + name[i]);
	return sum;
}

static uint16_t fold(uint16_t c)
{
	return c >= 'a' && c <= 'z' ? (uint16_t)(c - 32) : c;
}

/* The long name being gathered from the entries before a short one: they
 * come last part first (sequence N with bit 0x40, then N-1 .. 1). */
struct lfn {
	uint16_t name[LFN_MAX + 13];
	int expect;   /* the sequence number the next entry must have; 0: complete */
	int parts;    /* its entries (0: none being gathered) */
	uint8_t sum;
};

/* Take one long name entry (or anything else: `ent` NULL, which drops it). */
static void lfn_take(struct lfn *l, const uint8_t *ent)
{
	static const uint8_t pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	int seq, k;

	if (!ent) {
		l->parts = 0;
		return;
	}
	seq = ent[0] & 0x1f;
	if (ent[0] & 0x40) { /* the last part: a new name starts */
		l->parts = seq >= 1 && seq <= LFN_MAX / 13 + 1 ? seq : 0;
		l->expect = seq;
		l->sum = ent[13];
		for (k = 0; k < LFN_MAX + 13; k++)
			l->name[k] = 0;
	}
	if (!l->parts || seq != l->expect || ent[13] != l->sum || seq < 1) {
		l->parts = 0;
		return;
	}
	for (k = 0; k < 13; k++)
		l->name[(seq - 1) * 13 + k] = (uint16_t)le(ent + pos[k], 2);
	l->expect--;
}

/* Does the long name gathered for the short entry `ent` equal the wanted one? */
static int lfn_match(const struct lfn *l, const uint8_t ent[32], const struct want *w)
{
	unsigned k, len;

	if (!l->parts || l->expect || l->sum != lfn_checksum(ent) || !w->lfn_len)
		return 0;
	for (len = 0; len < (unsigned)l->parts * 13 && l->name[len] && l->name[len] != 0xffff; len++)
		;
	if (len != w->lfn_len)
		return 0;
	for (k = 0; k < len; k++)
		if (fold(l->name[k]) != fold(w->lfn[k]))
			return 0;
	return 1;
}

/* Find a component in a directory: the entry's offset in the partition. */
static int dir_find(struct fat *f, uint32_t dir_cluster, const struct want *w, uint64_t *at,
		    uint8_t ent[32])
{
	uint32_t *cl = NULL, ncl = 0, i;
	uint64_t pos, end;
	struct lfn *l = calloc(1, sizeof(*l));
	int rc = -ENOENT;

	if (!l)
		return -ENOMEM;
	if (!dir_cluster) { /* FAT12/16: the fixed root directory */
		ncl = 1;
	} else if (chain(f, dir_cluster, &cl, &ncl) < 0) {
		free(l);
		return -EIO;
	}
	for (i = 0; i < ncl && rc == -ENOENT; i++) {
		pos = cl ? cluster_off(f, cl[i]) : f->root_off;
		end = pos + (cl ? csize(f) : f->root_bytes);
		for (; pos + 32 <= end; pos += 32) {
			if (fat_io(f, 0, ent, 32, pos) < 0) {
				rc = -EIO;
				break;
			}
			if (ent[0] == 0) {
				i = ncl; /* the end of the directory */
				break;
			}
			if (ent[0] != 0xe5 && (ent[11] & 0x3f) == 0x0f) {
				lfn_take(l, ent);
				continue;
			}
			if (ent[0] == 0xe5 || (ent[11] & 0x08)) {
				lfn_take(l, NULL);
				continue;
			}
			if ((w->has_short && !memcmp(ent, w->name, 11)) || lfn_match(l, ent, w)) {
				*at = pos;
				rc = 0;
				break;
			}
			lfn_take(l, NULL);
		}
	}
	free(cl);
	free(l);
	return rc;
}

/* Free clusters, at least `need` of them, lowest first; 0 or -ENOSPC. */
static int find_free(struct fat *f, uint32_t need, uint32_t *out)
{
	uint32_t c, got = 0, v;

	for (c = 2; c < f->clusters + 2 && got < need; c++) {
		if (fat_get(f, c, &v) < 0)
			return -EIO;
		if (v == 0)
			out[got++] = c;
	}
	return got == need ? 0 : -ENOSPC;
}

int fat_put_file(struct layer *l, uint64_t off, uint64_t len, const char *path, const void *data,
		 size_t n, char *err, size_t errlen)
{
	struct fat f;
	struct want w;
	uint8_t ent[32];
	uint64_t at = 0, cs;
	uint32_t dir, first, *cl = NULL, ncl, need, *all = NULL, i;
	const char *p = path, *q;
	int rc, r = -1;

	if (fat_open(&f, l, off, len) < 0)
		return nd_errf(err, errlen, "not a FAT12, FAT16 or FAT32 file system");
	dir = f.bits == 32 ? f.root_cluster : 0;
	for (;;) {
		while (*p == '/')
			p++;
		q = strchr(p, '/');
		if (want_of(p, q ? (size_t)(q - p) : strlen(p), &w) < 0)
			return nd_errf(err, errlen, "%s: '%.*s' is not a FAT file name (an 8.3 name, or "
					"a long name of at most %d UTF-16 characters, all in the BMP)", path,
					(int)(q ? q - p : (long)strlen(p)), p, LFN_MAX);
		rc = dir_find(&f, dir, &w, &at, ent);
		if (rc == -ENOENT)
			return nd_errf(err, errlen, "%s: '%.*s' does not exist on the FAT file system", path,
					(int)(q ? q - p : (long)strlen(p)), p);
		if (rc < 0)
			return nd_errf(err, errlen, "%s: a directory of it cannot be read (a damaged FAT)",
					path);
		first = f.bits == 32 ? le(ent + 20, 2) << 16 | le(ent + 26, 2) : le(ent + 26, 2);
		if (!q)
			break;
		if (!(ent[11] & 0x10))
			return nd_errf(err, errlen, "%s: '%.*s' is not a directory", path, (int)(q - p), p);
		if (!first && f.bits == 32)
			first = f.root_cluster; /* ".." of a top-level directory */
		dir = first;
		p = q;
	}
	if (ent[11] & 0x10)
		return nd_errf(err, errlen, "%s is a directory", path);
	if (ent[11] & 0x01)
		return nd_errf(err, errlen, "%s is read-only on the FAT file system", path);
	if (chain(&f, first, &cl, &ncl) < 0)
		return nd_errf(err, errlen, "%s: its cluster chain is damaged", path);
	cs = csize(&f);
	need = (uint32_t)((n + cs - 1) / cs);
	if (need > f.clusters) {
		nd_errf(err, errlen, "%s: %zu bytes do not fit the FAT file system", path, n);
		goto out;
	}
	all = calloc(need > ncl ? need : ncl ? ncl : 1, sizeof(*all));
	if (!all) {
		nd_errf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(all, cl, (ncl < need ? ncl : need) * sizeof(*all));
	if (need > ncl && find_free(&f, need - ncl, all + ncl) < 0) {
		nd_errf(err, errlen, "%s: no free clusters for %zu bytes (no space left on the FAT "
			 "file system)", path, n);
		goto out;
	}
	/* The data first, then the chain, then the entry that points at it. */
	for (i = 0; i < need; i++) {
		uint8_t *buf = calloc(1, cs);
		size_t take = n - (size_t)i * cs < cs ? n - (size_t)i * cs : cs;

		if (!buf) {
			nd_errf(err, errlen, "out of memory");
			goto out;
		}
		memcpy(buf, (const uint8_t *)data + (size_t)i * cs, take);
		rc = fat_io(&f, 1, buf, cs, cluster_off(&f, all[i]));
		free(buf);
		if (rc < 0)
			goto ioerr;
	}
	for (i = 0; i < need; i++)
		if ((rc = fat_set(&f, all[i], i + 1 < need ? all[i + 1] : 0x0fffffff)) < 0)
			goto ioerr;
	for (i = need; i < ncl; i++) /* what the file no longer needs */
		if ((rc = fat_set(&f, cl[i], 0)) < 0)
			goto ioerr;
	if (f.fsinfo_off && need != ncl) {
		uint8_t fi[512];

		if ((rc = fat_io(&f, 0, fi, 512, f.fsinfo_off)) < 0)
			goto ioerr;
		if (le(fi, 4) == 0x41615252 && le(fi + 484, 4) == 0x61417272 &&
		    le(fi + 488, 4) != 0xffffffff) {
			nd_put_le(fi + 488, le(fi + 488, 4) + ncl - need, 4);
			if ((rc = fat_io(&f, 1, fi, 512, f.fsinfo_off)) < 0)
				goto ioerr;
		}
	}
	first = need ? all[0] : 0;
	nd_put_le(ent + 26, first & 0xffff, 2);
	if (f.bits == 32)
		nd_put_le(ent + 20, first >> 16, 2);
	nd_put_le(ent + 28, (uint32_t)n, 4);
	if ((rc = fat_io(&f, 1, ent, 32, at)) < 0)
		goto ioerr;
	r = 0;
	goto out;
ioerr:
	nd_errf(err, errlen, "%s: %s", path, strerror(-rc));
out:
	free(cl);
	free(all);
	return r;
}
