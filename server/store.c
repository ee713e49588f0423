/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The versioned image store (docs/images.md): versions, their layers, pins,
 * the on-disk metadata (replaced atomically), merges and exports in the
 * background, and the admin commands the control socket runs. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "netdiskd.h"
#include "store.h"

#define STORE_FILE "store"
#define STORE_MAGIC "netdisk-store 1"
#define FLATTEN_STEP (1u << 20)
#define MERGE_ADVICE 5 /* deltas in a chain from which `versions` advises a merge */

/* ---- fault injection ------------------------------------------------------ */

static const char *cur_op = "none"; /* the operation crash points count for */

static int crash_count;
static char crash_armed[32];
static long crash_at;
static pthread_once_t crash_once = PTHREAD_ONCE_INIT;

static void crash_init(void)
{
	const char *env = getenv("NETDISKD_CRASH");

	if (env && strchr(env, ':')) {
		snprintf(crash_armed, sizeof(crash_armed), "%.*s", (int)(strchr(env, ':') - env), env);
		crash_at = strtol(strchr(env, ':') + 1, NULL, 10);
	}
}

void crash_point(const char *op)
{
	long at;

	pthread_once(&crash_once, crash_init);
	at = crash_at;
	if (at <= 0 || strcmp(op, crash_armed))
		return;
	if (__atomic_add_fetch(&crash_count, 1, __ATOMIC_SEQ_CST) == at) {
		fprintf(stderr, "netdiskd: NETDISKD_CRASH: exiting at crash point %d of %s\n",
			(int)at, op);
		_exit(86);
	}
}

/* ---- the version layer ---------------------------------------------------- */

/* The top of a version's stack: reads pass through; writes only while the
 * version is in maintenance; its `version` is the version's fixed id. */
struct ver_layer {
	struct layer l;
	uint64_t id;
	int writable; /* (atomic) cleared when the version leaves maintenance */
};

static int vl_read(struct layer *l, void *buf, size_t len, uint64_t off, int flags)
{
	return l->lower->ops->read(l->lower, buf, len, off, flags);
}

static int vl_write(struct layer *l, const void *buf, size_t len, uint64_t off)
{
	struct ver_layer *v = (struct ver_layer *)l;

	return __atomic_load_n(&v->writable, __ATOMIC_ACQUIRE) ? layer_write(l->lower, buf, len, off)
								 : -EROFS;
}

static int vl_flush(struct layer *l)
{
	return layer_flush(l->lower);
}

/* TRIM on the maintenance version: advisory, so the blocks simply stay. */
static int vl_trim(struct layer *l, uint64_t off, size_t len)
{
	(void)off;
	(void)len;
	return __atomic_load_n(&((struct ver_layer *)l)->writable, __ATOMIC_ACQUIRE) ? 0 : -EROFS;
}

static uint64_t vl_version(struct layer *l)
{
	struct ver_layer *v = (struct ver_layer *)l;

	return v->id ? v->id : layer_version(l->lower);
}

static void vl_close(struct layer *l)
{
	free(l);
}

static const struct layer_ops ver_ops = {
	.read = vl_read,
	.write = vl_write,
	.flush = vl_flush,
	.trim = vl_trim,
	.version = vl_version,
	.close = vl_close,
};

/* ---- helpers -------------------------------------------------------------- */

const char *store_state_name(int state)
{
	switch (state) {
	case VS_MAINTENANCE: return "maintenance";
	case VS_TEST: return "test";
	case VS_PRODUCTION: return "production";
	case VS_RETIRED: return "retired";
	default: return "?";
	}
}

static int state_parse(const char *s)
{
	int i;

	for (i = VS_MAINTENANCE; i <= VS_RETIRED; i++)
		if (!strcmp(s, store_state_name(i)))
			return i;
	return 0;
}

struct version *store_version(struct store *st, unsigned num)
{
	int i;

	for (i = 0; i < st->nv; i++)
		if (st->v[i].num == num)
			return &st->v[i];
	return NULL;
}

static struct base_file *store_base(struct store *st, unsigned gen)
{
	int i;

	for (i = 0; i < st->nbases; i++)
		if (st->bases[i].gen == gen)
			return &st->bases[i];
	return NULL;
}

static struct version *in_state(struct store *st, int state)
{
	struct version *best = NULL;
	int i;

	for (i = 0; i < st->nv; i++)
		if (st->v[i].state == state && (!best || st->v[i].num > best->num))
			best = &st->v[i];
	return best;
}

static struct pin *find_pin(struct store *st, const uint8_t mac[6])
{
	int i;

	for (i = 0; i < st->npins; i++)
		if (!memcmp(st->pins[i].mac, mac, 6))
			return &st->pins[i];
	return NULL;
}

static unsigned max_version(struct store *st)
{
	unsigned m = 0;
	int i;

	for (i = 0; i < st->nv; i++)
		if (st->v[i].num > m)
			m = st->v[i].num;
	return m;
}

static void delta_paths(struct store *st, unsigned num, char *data, char *map)
{
	snprintf(data, PATH_MAX, "%s/delta-%u.data", st->dir, num);
	snprintf(map, PATH_MAX, "%s/delta-%u.map", st->dir, num);
}

static void base_path(struct store *st, unsigned gen, char *out)
{
	struct base_file *b = store_base(st, gen);

	if (b && b->path[0] == '/')
		snprintf(out, PATH_MAX, "%s", b->path);
	else
		snprintf(out, PATH_MAX, "%s/base-%u.img", st->dir, gen);
}

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

/* fsync a directory, so that names made in it survive a crash.  0 or -errno. */
int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -errno;
	rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* Sessions (live or idle) reading a version of an image; *writer_live if its
 * maintenance writer was heard from within session-timeout. */
static unsigned sessions_on(struct server *s, struct image *im, unsigned num, int *writer_live,
			    struct session **writer)
{
	unsigned n = 0, b;

	if (writer_live)
		*writer_live = 0;
	for (b = 0; b < 256; b++)
		for (struct session *ss = s->bucket[b]; ss; ss = ss->next) {
			if (ss->img != im || ss->vnum != num || !ss->vn)
				continue;
			n++;
			if (ss->mode == ND_MODE_DIRECT) {
				if (writer)
					*writer = ss;
				if (writer_live && session_live(s, ss))
					*writer_live = 1;
			}
		}
	return n;
}

static unsigned pins_on(struct store *st, unsigned num)
{
	unsigned n = 0;
	int i;

	for (i = 0; i < st->npins; i++)
		n += st->pins[i].ver == num;
	return n;
}

static int children_of(struct store *st, unsigned num)
{
	int i, n = 0;

	for (i = 0; i < st->nv; i++)
		n += st->v[i].parent == num && st->v[i].num != num;
	return n;
}

/* ---- vnodes --------------------------------------------------------------- */

void store_release(struct vnode *vn)
{
	while (vn && --vn->refs == 0) {
		struct vnode *below = vn->below;

		layer_close(vn->top);
		layer_close(vn->own);
		free(vn);
		vn = below;
	}
}

/* The version's vnode, opened if need be, with a reference for the caller. */
static struct vnode *vnode_get(struct image *im, struct version *v, char *err, size_t errlen)
{
	struct store *st = im->store;
	struct vnode *vn;
	struct ver_layer *vl;
	char data[PATH_MAX], map[PATH_MAX];

	if (v->vn) {
		v->vn->refs++;
		return v->vn;
	}
	vn = calloc(1, sizeof(*vn));
	vl = calloc(1, sizeof(*vl));
	if (!vn || !vl) {
		free(vn);
		free(vl);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!v->has_delta) {
		base_path(st, v->base, data);
		vn->own = file_layer_open(data, 0, err, errlen);
		if (vn->own && vn->own->size != im->base->size) {
			snprintf(err, errlen, "base %s of image %s version %u has %llu bytes, not %llu",
				 data, im->name, v->num, (unsigned long long)vn->own->size,
				 (unsigned long long)im->base->size);
			layer_close(vn->own);
			vn->own = NULL;
		}
	} else {
		struct version *p = store_version(st, v->parent);

		if (!p) {
			snprintf(err, errlen, "version %u of image %s: its parent %u is missing",
				 v->num, im->name, v->parent);
		} else if ((vn->below = vnode_get(im, p, err, errlen))) {
			delta_paths(st, v->num, data, map);
			vn->own = overlay_open_delta(vn->below->top, data, map,
						     v->state == VS_MAINTENANCE ? OVD_WRITABLE : 0,
						     err, errlen);
		}
	}
	if (!vn->own) {
		store_release(vn->below);
		free(vn);
		free(vl);
		return NULL;
	}
	vl->l.ops = &ver_ops;
	vl->l.lower = vn->own;
	vl->l.size = vn->own->size;
	vl->id = v->id;
	vl->writable = v->state == VS_MAINTENANCE;
	vn->top = &vl->l;
	vn->refs = 2; /* the store's and the caller's */
	v->vn = vn;
	return vn;
}

/* Forget the store's vnode of a version (sessions keep theirs). */
static void vnode_drop(struct version *v)
{
	store_release(v->vn);
	v->vn = NULL;
}

/* ---- the metadata file ---------------------------------------------------- */

void store_free(struct store *st)
{
	int i;

	for (i = 0; i < st->nv; i++)
		vnode_drop(&st->v[i]);
	free(st->v);
	free(st->bases);
	free(st->pins);
	st->v = NULL;
	st->bases = NULL;
	st->pins = NULL;
	st->nv = st->nbases = st->npins = st->nhistory = 0;
	st->gen = st->next = 0;
	st->uid = 0;
	st->versioned = 0;
}

static int add_version(struct store *st, const struct version *v)
{
	struct version *n = realloc(st->v, sizeof(*n) * (size_t)(st->nv + 1));

	if (!n)
		return -1;
	st->v = n;
	st->v[st->nv++] = *v;
	return 0;
}

static void remove_version(struct store *st, unsigned num)
{
	int i;

	for (i = 0; i < st->nv; i++)
		if (st->v[i].num == num) {
			vnode_drop(&st->v[i]);
			memmove(&st->v[i], &st->v[i + 1], sizeof(st->v[0]) * (size_t)(st->nv - i - 1));
			st->nv--;
			return;
		}
}

static int add_base(struct store *st, const struct base_file *b)
{
	struct base_file *n = realloc(st->bases, sizeof(*n) * (size_t)(st->nbases + 1));

	if (!n)
		return -1;
	st->bases = n;
	st->bases[st->nbases++] = *b;
	return 0;
}

static int add_pin(struct store *st, const uint8_t mac[6], unsigned ver)
{
	struct pin *n = realloc(st->pins, sizeof(*n) * (size_t)(st->npins + 1));

	if (!n)
		return -1;
	st->pins = n;
	memset(&n[st->npins], 0, sizeof(n[0]));
	memcpy(n[st->npins].mac, mac, 6);
	n[st->npins++].ver = ver;
	return 0;
}

static int perr(char *err, size_t errlen, int line, const char *what)
{
	snprintf(err, errlen, "line %d: %s", line, what);
	return -1;
}

static int parse_version(struct store *st, char *rest, int line, char *err, size_t errlen)
{
	struct version v = { 0 };
	char state[16] = "", *note = strstr(rest, " note=");
	unsigned long long created = 0, id = 0;
	int n = 0;

	if (!note)
		return perr(err, errlen, line, "version without note=");
	*note = 0;
	note += 6;
	if (sscanf(rest, "%u parent=%u base=%u delta=%d state=%15s created=%llu id=%llx ok=%lu "
		   "failed=%lu%n", &v.num, &v.parent, &v.base, &v.has_delta, state, &created, &id,
		   &v.boots_ok, &v.boots_failed, &n) != 9 || rest[n])
		return perr(err, errlen, line, "malformed version line");
	v.state = state_parse(state);
	v.created = (time_t)created;
	v.id = id;
	if (!v.num || !v.state || v.num == v.parent || (v.has_delta != 0 && v.has_delta != 1) ||
	    (v.has_delta && !v.parent) || (!v.has_delta && v.parent) || store_version(st, v.num))
		return perr(err, errlen, line, "bad version");
	if (strlen(note) >= sizeof(v.note))
		return perr(err, errlen, line, "note too long");
	snprintf(v.note, sizeof(v.note), "%s", note);
	return add_version(st, &v) < 0 ? perr(err, errlen, line, "out of memory") : 0;
}

/* Cross-checks: parents exist and are older, bases exist, one production. */
static int store_check(struct store *st, char *err, size_t errlen)
{
	int i, prod = 0, maint = 0;

	for (i = 0; i < st->nv; i++) {
		struct version *v = &st->v[i];

		if (v->has_delta && !store_version(st, v->parent)) {
			snprintf(err, errlen, "version %u: parent %u missing", v->num, v->parent);
			return -1;
		}
		if (v->has_delta && v->parent > v->num) {
			snprintf(err, errlen, "version %u: parent %u is newer", v->num, v->parent);
			return -1;
		}
		if (!v->has_delta && !store_base(st, v->base)) {
			snprintf(err, errlen, "version %u: base %u missing", v->num, v->base);
			return -1;
		}
		prod += v->state == VS_PRODUCTION;
		maint += v->state == VS_MAINTENANCE;
	}
	if (prod != 1 || maint > 1) {
		snprintf(err, errlen, "%d production and %d maintenance versions (want 1 and at most 1)",
			 prod, maint);
		return -1;
	}
	for (i = 0; i < st->npins; i++)
		if (!store_version(st, st->pins[i].ver)) {
			snprintf(err, errlen, "a pin names version %u, which is missing", st->pins[i].ver);
			return -1;
		}
	return 0;
}

int store_parse(struct store *st, const char *text, char *err, size_t errlen)
{
	char *copy = strdup(text), *line, *save = NULL;
	int n = 0, rc = 0, magic = 0;

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (line = strtok_r(copy, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, b;
		unsigned u, g;
		char mac[32], flag[16];
		int used = 0;

		n++;
		if (n == 1) {
			magic = !strcmp(line, STORE_MAGIC);
			if (!magic)
				rc = perr(err, errlen, n, "not a netdisk store file");
			continue;
		}
		if (sscanf(line, "uid %llx%n", &a, &used) == 1 && !line[used]) {
			st->uid = a;
		} else if (sscanf(line, "gen %u%n", &u, &used) == 1 && !line[used]) {
			st->gen = u;
		} else if (sscanf(line, "next %u%n", &u, &used) == 1 && !line[used]) {
			st->next = u;
		} else if (!strncmp(line, "base ", 5)) {
			struct base_file bf = { 0 };

			if (sscanf(line, "base %u %llu %llu %n", &g, &a, &b, &used) != 3 || !line[used] ||
			    strlen(line + used) >= sizeof(bf.path) || store_base(st, g) || !g)
				rc = perr(err, errlen, n, "malformed base line");
			else {
				bf.gen = g;
				bf.size = a;
				bf.mtime_ns = b;
				snprintf(bf.path, sizeof(bf.path), "%s", line + used);
				if (add_base(st, &bf) < 0)
					rc = perr(err, errlen, n, "out of memory");
			}
		} else if (!strncmp(line, "canary ", 7)) {
			char group[32];
			struct version *cv;

			if (sscanf(line, "canary %u group=%31s percent=%u%n", &u, group, &g, &used) != 3 ||
			    line[used] || !(cv = store_version(st, u)) || g > 100)
				rc = perr(err, errlen, n, "malformed canary line");
			else {
				snprintf(cv->canary_group, sizeof(cv->canary_group), "%s",
					 strcmp(group, "-") ? group : "");
				cv->canary_percent = g;
			}
		} else if (!strncmp(line, "version ", 8)) {
			rc = parse_version(st, line + 8, n, err, errlen);
		} else if (sscanf(line, "pin %31s %u%n", mac, &u, &used) == 2) {
			uint8_t m[6];

			flag[0] = 0;
			if (line[used] && sscanf(line + used, " %15s", flag) != 1)
				flag[0] = '?';
			if (nd_mac_parse(mac, m) < 0 || find_pin(st, m) || (flag[0] && strcmp(flag, "reset")))
				rc = perr(err, errlen, n, "malformed pin line");
			else if (add_pin(st, m, u) < 0)
				rc = perr(err, errlen, n, "out of memory");
			else
				st->pins[st->npins - 1].reset = !strcmp(flag, "reset");
		} else if (!strncmp(line, "history", 7)) {
			char *p = line + 7;

			st->nhistory = 0;
			while (*p == ' ' && st->nhistory < (int)(sizeof(st->history) / sizeof(st->history[0]))) {
				char *end;
				unsigned long h = strtoul(p + 1, &end, 10);

				if (end == p + 1 || !h || h > 0xffffffffu)
					break;
				st->history[st->nhistory++] = (unsigned)h;
				p = end;
			}
			if (*p)
				rc = perr(err, errlen, n, "malformed history line");
		} else {
			rc = perr(err, errlen, n, "unknown line");
		}
	}
	free(copy);
	if (!rc && !magic)
		rc = perr(err, errlen, 1, "not a netdisk store file");
	return rc ? rc : store_check(st, err, errlen);
}

/* Write the store file: a temporary file, fsync, rename, fsync of the directory. */
static int store_save(struct store *st, char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;
	int i, rc;

	snprintf(path, sizeof(path), "%s/" STORE_FILE, st->dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	crash_point(cur_op);
	f = fopen(tmp, "w");
	if (!f) {
		snprintf(err, errlen, "cannot write %s: fopen: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, STORE_MAGIC "\nuid %016" PRIx64 "\ngen %u\nnext %u\n", st->uid, st->gen, st->next);
	for (i = 0; i < st->nbases; i++)
		fprintf(f, "base %u %" PRIu64 " %" PRIu64 " %s\n", st->bases[i].gen, st->bases[i].size,
			st->bases[i].mtime_ns, st->bases[i].path);
	for (i = 0; i < st->nv; i++) {
		struct version *v = &st->v[i];

		fprintf(f, "version %u parent=%u base=%u delta=%d state=%s created=%llu id=%" PRIx64
			" ok=%lu failed=%lu note=%s\n", v->num, v->parent, v->base, v->has_delta,
			store_state_name(v->state), (unsigned long long)v->created, v->id, v->boots_ok,
			v->boots_failed, v->note);
	}
	for (i = 0; i < st->nv; i++)
		if (st->v[i].canary_group[0] || st->v[i].canary_percent)
			fprintf(f, "canary %u group=%s percent=%u\n", st->v[i].num,
				st->v[i].canary_group[0] ? st->v[i].canary_group : "-",
				st->v[i].canary_percent);
	for (i = 0; i < st->npins; i++) {
		char mac[18];

		nd_mac_format(st->pins[i].mac, mac);
		fprintf(f, "pin %s %u%s\n", mac, st->pins[i].ver, st->pins[i].reset ? " reset" : "");
	}
	fprintf(f, "history");
	for (i = 0; i < st->nhistory; i++)
		fprintf(f, " %u", st->history[i]);
	fprintf(f, "\n");
	rc = fflush(f) || fsync(fileno(f)) ? -errno : 0;
	if (fclose(f) && !rc)
		rc = -errno;
	if (rc) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
		unlink(tmp);
		return -1;
	}
	crash_point(cur_op);
	if (rename(tmp, path) < 0) {
		snprintf(err, errlen, "cannot replace %s: rename: %s", path, strerror(errno));
		return -1;
	}
	fsync_dir(st->dir);
	crash_point(cur_op);
	st->versioned = 1;
	return 0;
}

/* Remove what the store file does not name: leftovers of an operation a crash cut. */
static void clean_orphans(struct store *st)
{
	DIR *d = opendir(st->dir);
	struct dirent *e;
	char path[PATH_MAX + 256];

	if (!d)
		return;
	while ((e = readdir(d))) {
		unsigned n;
		int keep = 0, used = 0;
		struct version *v;

		if (e->d_name[0] == '.' || !strcmp(e->d_name, STORE_FILE) || !strcmp(e->d_name, "control"))
			continue;
		if ((sscanf(e->d_name, "delta-%u.data%n", &n, &used) == 1 && !e->d_name[used]) ||
		    (sscanf(e->d_name, "delta-%u.map%n", &n, &used) == 1 && !e->d_name[used]))
			keep = (v = store_version(st, n)) && v->has_delta;
		else if (sscanf(e->d_name, "base-%u.img%n", &n, &used) == 1 && !e->d_name[used])
			keep = store_base(st, n) != NULL;
		if (keep)
			continue;
		snprintf(path, sizeof(path), "%s/%s", st->dir, e->d_name);
		if (unlink(path) == 0)
			log_msg("image store %s: removed %s, left by an operation that did not finish",
				st->dir, e->d_name);
	}
	closedir(d);
}

/* An image with no store file: version 1, its file, in production.  Every
 * image starts so when it is opened; store_init_all reads the store files. */
int store_plain(struct image *im, char *err, size_t errlen)
{
	struct store *st = im->store ? im->store : calloc(1, sizeof(*st));
	struct version v = { 0 };
	struct base_file b = { 0 };

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	im->store = st;
	store_free(st);

	b.gen = 1;
	snprintf(b.path, sizeof(b.path), "%s", im->path);
	v.num = 1;
	v.base = 1;
	v.state = VS_PRODUCTION;
	v.created = time(NULL);
	snprintf(v.note, sizeof(v.note), "the image file");
	st->gen = 1;
	if (add_base(st, &b) < 0 || add_version(st, &v) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int store_open(struct server *s, struct image *im, char *err, size_t errlen)
{
	char path[PATH_MAX], msg[256];
	struct stat sb;
	struct store *st;
	FILE *f;

	if (!im->store && store_plain(im, err, errlen) < 0)
		return -1;
	st = im->store;
	snprintf(st->dir, sizeof(st->dir), "%s/images/%s", s->state_dir, im->name);
	if (mkdir(st->dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: mkdir: %s", st->dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/" STORE_FILE, st->dir);
	f = fopen(path, "r");
	if (!f) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "cannot read %s: fopen: %s", path, strerror(errno));
			return -1;
		}
		clean_orphans(st);
		return 0;
	} else {
		char *text = NULL;
		size_t cap = 0;
		ssize_t n = getdelim(&text, &cap, '\0', f);

		fclose(f);
		store_free(st);
		if (n < 0 || store_parse(st, text, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "image store %s: %s", path, n < 0 ? strerror(errno) : msg);
			free(text);
			return -1;
		}
		free(text);
	}
	st->versioned = 1;
	/* The configured file is base 1: it must not have changed under the versions. */
	{
		struct base_file *b = store_base(st, 1);

		if (b && strcmp(b->path, im->path))
			nd_log(ND_LOG_WARN, "image %s: the config names %s, its store was made over %s; "
			       "using %s as base 1", im->name, im->path, b->path, b->path);
		if (b && stat(b->path, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    (mtime_ns(&sb) != b->mtime_ns || (uint64_t)sb.st_size != b->size))
			nd_log(ND_LOG_ERROR, "image %s: its base file %s changed after versions were made "
			       "over it (modification time or size differ): versions built on it read "
			       "wrong data; restore the file or remove %s", im->name, b->path, st->dir);
	}
	for (int i = 0; i < st->nv; i++) {
		char data[PATH_MAX], map[PATH_MAX];

		delta_paths(st, st->v[i].num, data, map);
		if (st->v[i].has_delta && (access(data, R_OK) < 0 || access(map, R_OK) < 0))
			nd_log(ND_LOG_ERROR, "image %s: the delta of version %u is missing (%s): clients "
			       "of that version cannot attach", im->name, st->v[i].num, data);
	}
	clean_orphans(st);
	return 0;
}

int store_init_all(struct server *s, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int i;

	snprintf(dir, sizeof(dir), "%s/images", s->state_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: mkdir: %s", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < s->cfg.nimages; i++) {
		struct image *im = &s->cfg.images[i];
		struct version *p;

		if (store_open(s, im, err, errlen) < 0)
			return -1;
		p = in_state(im->store, VS_PRODUCTION);
		if (im->store->versioned)
			log_msg("image %s: %d version(s), production %u", im->name, im->store->nv,
				p ? p->num : 0);
	}
	return 0;
}

void store_close_all(struct server *s)
{
	int i;

	for (i = 0; i < s->cfg.nimages; i++) {
		struct store *st = s->cfg.images[i].store;

		if (!st)
			continue;
		if (__atomic_load_n(&st->job.running, __ATOMIC_ACQUIRE)) {
			pthread_join(st->job.thread, NULL);
			unlink(st->job.out);
		}
		store_release(st->job.src);
		store_free(st);
		free(st);
		s->cfg.images[i].store = NULL;
	}
}

/* ---- sessions ------------------------------------------------------------- */

/* Is this client in a test version's canary: a tester, in its group, or in its percentage? */
static int canary_member(const struct version *t, const struct client_rule *r, const uint8_t mac[6])
{
	uint32_t h = 2166136261u ^ t->num;
	int i;

	if (r && r->tester)
		return 1;
	if (t->canary_group[0] && r && !strcmp(r->group, t->canary_group))
		return 1;
	for (i = 0; i < 6; i++)
		h = (h ^ mac[i]) * 16777619u;
	return t->canary_percent && h % 100 < t->canary_percent;
}

/* What a client reads now: the newest test version for its canary, else production. */
static struct version *current_for(struct store *st, const struct client_rule *r,
				   const uint8_t mac[6])
{
	struct version *t = in_state(st, VS_TEST);

	return t && canary_member(t, r, mac) ? t : in_state(st, VS_PRODUCTION);
}

struct vnode *store_session_version(struct server *s, struct session *ss, unsigned want,
				    const struct client_rule *r, int *fresh, char *err,
				    size_t errlen)
{
	struct image *im = ss->img;
	struct store *st = im->store;
	struct version *v = NULL;
	char mac[18], msg[256];

	*fresh = 0;
	nd_mac_format(ss->mac, mac);
	if (want) {
		v = store_version(st, want);
		if (!v) {
			snprintf(err, errlen, "version %u of image %s no longer exists", want, im->name);
			return NULL;
		}
	} else if (ss->mode == ND_MODE_DIRECT) {
		v = in_state(st, VS_MAINTENANCE);
		if (!v) {
			snprintf(err, errlen, "image %s has no maintenance version to write "
				 "(netdisk image new-version %s)", im->name, im->name);
			return NULL;
		}
	} else if (ss->mode == ND_MODE_PERSISTENT && st->versioned) {
		struct pin *p = find_pin(st, ss->mac);
		struct version *cur = current_for(st, r, ss->mac);
		int changed = 0;

		if (!p) {
			if (add_pin(st, ss->mac, cur->num) < 0) {
				snprintf(err, errlen, "out of memory");
				return NULL;
			}
			p = &st->pins[st->npins - 1];
			*fresh = 1; /* an overlay of a client new to the store starts empty */
			changed = 1;
		} else if ((p->reset || (r && r->on_update_reset)) && p->ver != cur->num) {
			log_msg("persistent overlay of %s on image %s reset from version %u onto "
				"version %u (%s)", mac, im->name, p->ver, cur->num,
				p->reset ? "netdisk image reset-client" : "on-update = reset");
			p->ver = cur->num;
			*fresh = 1;
			changed = 1;
		}
		if (p->reset) {
			p->reset = 0;
			changed = 1;
		}
		v = store_version(st, p->ver);
		cur_op = "pin";
		if (changed && store_save(st, msg, sizeof(msg)) < 0)
			log_msg("image %s: cannot record the pin of %s: %s", im->name, mac, msg);
	} else {
		v = current_for(st, r, ss->mac);
	}
	if (!v) {
		snprintf(err, errlen, "image %s: no version to read", im->name);
		return NULL;
	}
	ss->vnum = v->num;
	return vnode_get(im, v, err, errlen);
}

void store_count_boot(struct server *s, struct session *ss, int ok)
{
	struct version *v;
	char msg[256];

	if (!ss->vn || ss->boot_counted || (ss->kind != ND_KIND_BIOS && ss->kind != ND_KIND_EFI))
		return;
	ss->boot_counted = 1;
	v = store_version(ss->img->store, ss->vnum);
	if (!v)
		return;
	if (ok)
		v->boots_ok++;
	else
		v->boots_failed++;
	cur_op = "count";
	if (ss->img->store->versioned && store_save(ss->img->store, msg, sizeof(msg)) < 0)
		log_msg("image %s: cannot record a boot: %s", ss->img->name, msg);
	(void)s;
}

void store_boot_deadline(struct server *s, struct session *ss, time_t now)
{
	if (!ss->boot_counted && ss->vn && now - ss->attached >= (time_t)s->cfg.boot_limit)
		store_count_boot(s, ss, 0);
}

/* ---- background jobs: flatten a version into a file ----------------------- */

static int all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void *flatten_thread(void *arg)
{
	struct store_job *j = arg;
	struct layer *src = j->src->top;
	uint8_t *buf = malloc(FLATTEN_STEP);
	char tmp[PATH_MAX + 8];
	uint64_t off;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", j->out);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (!buf || fd < 0 || ftruncate(fd, (off_t)src->size) < 0) {
		rc = -errno;
		snprintf(j->err, sizeof(j->err), "cannot write %s: %s", tmp, strerror(errno));
	}
	crash_point(j->kind == 1 ? "merge" : "export");
	for (off = 0; !rc && off < src->size; off += FLATTEN_STEP) {
		size_t n = src->size - off < FLATTEN_STEP ? (size_t)(src->size - off) : FLATTEN_STEP;

		rc = layer_read(src, buf, n, off);
		if (rc < 0) {
			snprintf(j->err, sizeof(j->err), "cannot read version %u at %llu: %s", j->ver,
				 (unsigned long long)off, strerror(-rc));
			break;
		}
		if (!all_zero(buf, n) && (rc = pwrite_full(fd, buf, n, off)) < 0) {
			snprintf(j->err, sizeof(j->err), "cannot write %s: pwrite: %s", tmp,
				 strerror(-rc));
			break;
		}
		__atomic_store_n(&j->done, off + n, __ATOMIC_RELAXED);
		if (off == (src->size / 2) / FLATTEN_STEP * FLATTEN_STEP)
			crash_point(j->kind == 1 ? "merge" : "export");
		if (getenv("NETDISKD_MERGE_DELAY_US")) /* tests: a merge slow enough to watch */
			usleep((useconds_t)atoi(getenv("NETDISKD_MERGE_DELAY_US")));
	}
	if (!rc && fsync(fd) < 0) {
		rc = -errno;
		snprintf(j->err, sizeof(j->err), "cannot write %s: fsync: %s", tmp, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	crash_point(j->kind == 1 ? "merge" : "export");
	if (!rc && rename(tmp, j->out) < 0) {
		rc = -errno;
		snprintf(j->err, sizeof(j->err), "cannot rename %s: %s", tmp, strerror(errno));
	}
	if (rc)
		unlink(tmp);
	free(buf);
	j->result = rc;
	__atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int job_start(struct server *s, struct image *im, int kind, struct version *v,
		     const char *out, char *msg, size_t msglen)
{
	struct store_job *j = &im->store->job;
	char err[256];

	if (__atomic_load_n(&j->running, __ATOMIC_ACQUIRE)) {
		snprintf(msg, msglen, "image %s: a %s of version %u is already running (%llu%%)",
			 im->name, j->kind == 1 ? "merge" : "export", j->ver,
			 (unsigned long long)(j->total ? __atomic_load_n(&j->done, __ATOMIC_RELAXED) * 100 /
						       j->total : 0));
		return -1;
	}
	j->src = vnode_get(im, v, err, sizeof(err));
	if (!j->src) {
		snprintf(msg, msglen, "%s", err);
		return -1;
	}
	j->kind = kind;
	j->ver = v->num;
	j->done = 0;
	j->total = j->src->top->size;
	j->result = 0;
	j->finished = 0;
	j->err[0] = 0;
	j->s = s;
	j->img = im;
	clock_gettime(CLOCK_MONOTONIC, &j->started);
	snprintf(j->out, sizeof(j->out), "%s", out);
	j->running = 1;
	if (pthread_create(&j->thread, NULL, flatten_thread, j)) {
		j->running = 0;
		store_release(j->src);
		j->src = NULL;
		snprintf(msg, msglen, "cannot start the job: pthread_create failed");
		return -1;
	}
	return 0;
}

/* Removable after a merge: retired, nobody reads or pins it, nothing built on it. */
static int removable(struct server *s, struct image *im, struct version *v)
{
	struct store *st = im->store;
	int i;

	if (v->state != VS_RETIRED || pins_on(st, v->num) || children_of(st, v->num) ||
	    sessions_on(s, im, v->num, NULL, NULL))
		return 0;
	for (i = 0; i < st->nhistory; i++)
		if (st->history[i] == v->num)
			return 0;
	return 1;
}

static int base_used(struct store *st, unsigned gen)
{
	int i;

	for (i = 0; i < st->nv; i++)
		if (!st->v[i].has_delta && st->v[i].base == gen)
			return 1;
	return 0;
}

/* Does v's chain pass through version `through`? */
static int descends(struct store *st, struct version *v, unsigned through)
{
	int guard = 0;

	while (v && guard++ < 100000) {
		if (v->num == through)
			return 1;
		if (!v->has_delta)
			return 0;
		v = store_version(st, v->parent);
	}
	return 0;
}

/* A merge's new base is written: make it version `ver`'s base, atomically. */
static void merge_commit(struct server *s, struct image *im)
{
	struct store *st = im->store;
	struct store_job *j = &st->job;
	struct version *v = store_version(st, j->ver);
	struct base_file b = { 0 };
	struct stat sb;
	char err[256], data[PATH_MAX], map[PATH_MAX], path[PATH_MAX];
	unsigned removed[64], nremoved = 0, old_parent;
	int had_delta, i, again;

	cur_op = "merge";
	if (!v || stat(j->out, &sb) < 0) {
		log_msg("image %s: merge of version %u dropped: the version is gone", im->name, j->ver);
		unlink(j->out);
		return;
	}
	b.gen = st->gen + 1;
	b.size = (uint64_t)sb.st_size;
	b.mtime_ns = mtime_ns(&sb);
	snprintf(b.path, sizeof(b.path), "base-%u.img", b.gen);
	if (add_base(st, &b) < 0)
		return;
	st->gen = b.gen;
	had_delta = v->has_delta;
	old_parent = v->parent;
	v->has_delta = 0;
	v->parent = 0;
	v->base = b.gen;
	if (v->id == 0) /* legacy v1: its overlays recorded the old base's mtime */
		v->id = layer_version(j->src->top);
	/* Versions built on it reopen on the new chain (a maintenance writer keeps its own). */
	for (i = 0; i < st->nv; i++)
		if (st->v[i].num != v->num && st->v[i].state != VS_MAINTENANCE && descends(st, &st->v[i], v->num))
			vnode_drop(&st->v[i]);
	vnode_drop(v);
	/* Older versions nobody needs any more go with the merge. */
	do {
		again = 0;
		for (i = 0; i < st->nv && nremoved < 64; i++)
			if (st->v[i].num != v->num && removable(s, im, &st->v[i])) {
				removed[nremoved++] = st->v[i].has_delta ? st->v[i].num : 0;
				remove_version(st, st->v[i].num);
				again = 1;
				break;
			}
	} while (again);
	if (store_save(st, err, sizeof(err)) < 0) {
		log_msg("image %s: merge of version %u not recorded: %s", im->name, j->ver, err);
		return; /* (the store file still names the old chain; base-N.img is an orphan) */
	}
	crash_point("merge");
	if (had_delta) {
		delta_paths(st, v->num, data, map);
		overlay_remove(data, map);
	}
	for (i = 0; i < (int)nremoved; i++)
		if (removed[i]) {
			delta_paths(st, removed[i], data, map);
			overlay_remove(data, map);
		}
	for (i = 0; i < st->nbases; i++)
		if (st->bases[i].gen > 1 && !base_used(st, st->bases[i].gen)) {
			base_path(st, st->bases[i].gen, path);
			unlink(path);
			memmove(&st->bases[i], &st->bases[i + 1], sizeof(b) * (size_t)(st->nbases - i - 1));
			st->nbases--;
			i--;
		}
	store_save(st, err, sizeof(err));
	log_msg("image %s: merged version %u (was over version %u) into a new base %s, "
		"%u older version(s) removed", im->name, v->num, old_parent, b.path, nremoved);
}

void store_poll_jobs(struct server *s)
{
	int i;

	for (i = 0; i < s->cfg.nimages; i++) {
		struct image *im = &s->cfg.images[i];
		struct store_job *j = im->store ? &im->store->job : NULL;
		struct timespec now;
		double secs;

		if (!j || !__atomic_load_n(&j->running, __ATOMIC_ACQUIRE) ||
		    !__atomic_load_n(&j->finished, __ATOMIC_ACQUIRE))
			continue;
		pthread_join(j->thread, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		secs = (double)(now.tv_sec - j->started.tv_sec) + (now.tv_nsec - j->started.tv_nsec) / 1e9;
		j->mbps = j->total / 1e6 / (secs > 0 ? secs : 1e-9);
		if (j->result < 0)
			log_msg("image %s: %s of version %u failed: %s", im->name,
				j->kind == 1 ? "merge" : "export", j->ver, j->err);
		else if (j->kind == 1)
			merge_commit(s, im);
		else
			log_msg("image %s: version %u exported to %s", im->name, j->ver, j->out);
		store_release(j->src);
		j->src = NULL;
		__atomic_store_n(&j->running, 0, __ATOMIC_RELEASE);
	}
}

/* ---- admin commands ------------------------------------------------------- */

#define fail nd_errf /* (common/log.h) */

static int parse_num(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 0xffffffu)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* An option KEY=VALUE among the arguments, or NULL. */
static const char *opt(int argc, char **argv, const char *key)
{
	size_t n = strlen(key);
	int i;

	for (i = 1; i < argc; i++)
		if (!strncmp(argv[i], key, n) && argv[i][n] == '=')
			return argv[i] + n + 1;
	return NULL;
}

static int positional(int argc, char **argv)
{
	int i, n = 0;

	for (i = 0; i < argc; i++)
		n += !strchr(argv[i], '=');
	return n;
}

static struct image *want_image(struct server *s, const char *name, char *msg, size_t msglen)
{
	struct image *im = name ? config_image(&s->cfg, name) : NULL;

	if (!im)
		fail(msg, msglen, "unknown image '%s' (netdisk image list shows them)", name ? name : "");
	return im;
}

static struct version *want_version(struct image *im, const char *arg, char *msg, size_t msglen)
{
	unsigned n;
	struct version *v;

	if (parse_num(arg, &n) < 0) {
		fail(msg, msglen, "a version is a number from 1, not '%s'", arg);
		return NULL;
	}
	v = store_version(im->store, n);
	if (!v)
		fail(msg, msglen, "image %s has no version %u (netdisk image versions %s)", im->name,
		     n, im->name);
	return v;
}

static unsigned chain_deltas(struct store *st, struct version *v)
{
	unsigned n = 0;

	while (v && v->has_delta && n < 100000) {
		n++;
		v = store_version(st, v->parent);
	}
	return n;
}

static void job_line(struct store_job *j, struct strbuf *out)
{
	if (__atomic_load_n(&j->running, __ATOMIC_ACQUIRE))
		sb_printf(out, "job %s version=%u done=%llu total=%llu\n",
			  j->kind == 1 ? "merge" : "export", j->ver,
			  (unsigned long long)__atomic_load_n(&j->done, __ATOMIC_RELAXED),
			  (unsigned long long)j->total);
	else if (j->kind)
		sb_printf(out, "job none last=%s version=%u result=%s mbps=%.1f%s%s\n",
			  j->kind == 1 ? "merge" : "export", j->ver, j->result ? "failed" : "ok",
			  j->mbps, j->result ? " error=" : "", j->result ? j->err : "");
	else
		sb_printf(out, "job none\n");
}

/* A fingerprint of the version chain (store id, and each version's number,
 * parent, id and state): two servers showing the same one serve the same
 * versions in the same states. */
static uint64_t chain_fingerprint(const struct store *st)
{
	uint64_t h = 14695981039346656037ull;
	uint64_t words[5];
	int i, k;

	for (i = -1; i < st->nv; i++) {
		const struct version *v = i < 0 ? NULL : &st->v[i];
		const uint8_t *p = (const uint8_t *)words;

		memset(words, 0, sizeof(words));
		if (v) {
			words[0] = v->num;
			words[1] = v->parent;
			words[2] = v->id;
			words[3] = (uint64_t)v->state;
			words[4] = (uint64_t)v->has_delta;
		} else {
			words[0] = st->uid;
		}
		for (k = 0; k < (int)sizeof(words); k++)
			h = (h ^ p[k]) * 1099511628211ull;
	}
	return h;
}

static int cmd_list(struct server *s, struct strbuf *out)
{
	int i;

	sb_printf(out, "%-16s %-9s %-10s %-5s %-11s %-12s %s\n", "IMAGE", "VERSIONS", "PRODUCTION",
		  "TEST", "MAINTENANCE", "CHAIN", "PATH");
	for (i = 0; i < s->cfg.nimages; i++) {
		struct image *im = &s->cfg.images[i];
		struct version *p = in_state(im->store, VS_PRODUCTION), *t = in_state(im->store, VS_TEST),
			       *m = in_state(im->store, VS_MAINTENANCE);
		char ts[16] = "-", ms[16] = "-";

		if (t)
			snprintf(ts, sizeof(ts), "%u", t->num);
		if (m)
			snprintf(ms, sizeof(ms), "%u", m->num);
		sb_printf(out, "%-16s %-9d %-10u %-5s %-11s %012llx %s\n", im->name, im->store->nv,
			  p ? p->num : 0, ts, ms,
			  (unsigned long long)(chain_fingerprint(im->store) >> 16), im->path);
	}
	return 0;
}

static int cmd_versions(struct server *s, struct image *im, struct strbuf *out)
{
	struct store *st = im->store;
	struct version *p = in_state(st, VS_PRODUCTION);
	int i;

	sb_printf(out, "%-4s %-11s %-20s %-6s %10s %8s %5s %8s %8s  %s\n", "VER", "STATE", "CREATED",
		  "ON", "DELTA", "SESSIONS", "PINS", "BOOTS-OK", "FAILED", "NOTE");
	for (i = 0; i < st->nv; i++) {
		struct version *v = &st->v[i];
		char when[32], on[16], size[24] = "-", err[256];
		struct tm tm;

		gmtime_r(&v->created, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (v->has_delta)
			snprintf(on, sizeof(on), "v%u", v->parent);
		else
			snprintf(on, sizeof(on), "base%u", v->base);
		if (v->has_delta) {
			struct vnode *vn = vnode_get(im, v, err, sizeof(err));

			if (vn) {
				snprintf(size, sizeof(size), "%.1fM", overlay_used(vn->own) / 1048576.0);
				store_release(vn);
			} else {
				snprintf(size, sizeof(size), "unreadable");
			}
		}
		sb_printf(out, "%-4u %-11s %-20s %-6s %10s %8u %5u %8lu %8lu  %s\n", v->num,
			  store_state_name(v->state), when, on, size, sessions_on(s, im, v->num, NULL, NULL),
			  pins_on(st, v->num), v->boots_ok, v->boots_failed, v->note);
	}
	for (i = 0; i < st->nv; i++)
		if (st->v[i].state == VS_TEST)
			sb_printf(out, "canary %u: testers%s%s, %u%% of the others\n", st->v[i].num,
				  st->v[i].canary_group[0] ? ", group " : "", st->v[i].canary_group,
				  st->v[i].canary_percent);
	job_line(&st->job, out);
	if (p && chain_deltas(st, p) >= MERGE_ADVICE)
		sb_printf(out, "advice: production reads through %u deltas; netdisk image merge %s\n",
			  chain_deltas(st, p), im->name);
	return 0;
}

/* Call fn(mac, arg) for every persistent overlay in the state directory made
 * for image im; the number of them. */
static unsigned for_each_persistent(const struct server *s, const struct image *im,
				    void (*fn)(const uint8_t mac[6], void *arg), void *arg)
{
	char dir[PATH_MAX];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	if (!s->state_dir[0])
		return 0;
	snprintf(dir, sizeof(dir), "%s/persistent/%s", s->state_dir, im->name);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		uint8_t mac[6];
		char m[18];

		if (strlen(e->d_name) != 21 || strcmp(e->d_name + 17, ".map"))
			continue;
		snprintf(m, sizeof(m), "%.17s", e->d_name);
		if (nd_mac_parse(m, mac) < 0)
			continue;
		n++;
		if (fn)
			fn(mac, arg);
	}
	if (d)
		closedir(d);
	return n;
}

static void pin_to_v1(const uint8_t mac[6], void *arg)
{
	struct store *st = arg;

	if (!find_pin(st, mac))
		add_pin(st, mac, 1);
}

unsigned store_persistent_count(const struct server *s, const struct image *im)
{
	return for_each_persistent(s, im, NULL, NULL);
}

/* Turn a plain image into a store: version 1 is the file as it is now, and the
 * persistent overlays already made over it are pinned to it. */
static int make_versioned(struct server *s, struct image *im, char *msg, size_t msglen)
{
	struct store *st = im->store;
	struct version *v1 = store_version(st, 1);
	struct base_file *b = store_base(st, 1);
	struct stat sb;

	if (st->versioned)
		return 0;
	if (im->writer)
		return fail(msg, msglen, "image %s is being written in place by a direct-mode client; "
			    "wait until it shuts down", im->name);
	if (!v1 || !b || stat(b->path, &sb) < 0)
		return fail(msg, msglen, "cannot examine %s: stat: %s", im->path, strerror(errno));
	b->size = (uint64_t)sb.st_size;
	b->mtime_ns = mtime_ns(&sb);
	if (v1->vn)
		v1->id = layer_version(v1->vn->top);
	else
		v1->id = S_ISREG(sb.st_mode) ? mtime_ns(&sb) : 0;
	if (!v1->id) /* a block device has no mtime: its id is made up now */
		getrandom(&v1->id, sizeof(v1->id), 0);
	if (v1->vn)
		((struct ver_layer *)v1->vn->top)->id = v1->id;
	getrandom(&st->uid, sizeof(st->uid), 0);
	for_each_persistent(s, im, pin_to_v1, st);
	return 0;
}

static int cmd_new_version(struct server *s, struct image *im, int argc, char **argv,
			   struct strbuf *out, char *msg, size_t msglen)
{
	struct store *st = im->store;
	struct version *m = in_state(st, VS_MAINTENANCE), *from = in_state(st, VS_PRODUCTION);
	struct version nv = { 0 };
	const char *note = opt(argc, argv, "note"), *f = opt(argc, argv, "from");
	char data[PATH_MAX], map[PATH_MAX], err[256];
	struct vnode *below;
	struct layer *delta;

	if (f && !(from = want_version(im, f, msg, msglen)))
		return -1;
	if (m)
		return fail(msg, msglen, "image %s already has a maintenance version (%u): promote or "
			    "delete it first", im->name, m->num);
	if (from->state == VS_MAINTENANCE)
		return fail(msg, msglen, "version %u is in maintenance", from->num);
	if (note && strlen(note) >= sizeof(nv.note))
		return fail(msg, msglen, "the note is too long (at most %zu bytes)", sizeof(nv.note) - 1);
	if (make_versioned(s, im, msg, msglen) < 0)
		return -1;
	/* Numbers are never used twice: a deleted version's number stays gone. */
	nv.num = max_version(st) + 1 > st->next ? max_version(st) + 1 : st->next;
	st->next = nv.num + 1;
	nv.parent = from->num;
	nv.base = from->base;
	nv.has_delta = 1;
	nv.state = VS_MAINTENANCE;
	nv.created = time(NULL);
	getrandom(&nv.id, sizeof(nv.id), 0);
	nv.id |= 1;
	snprintf(nv.note, sizeof(nv.note), "%s", note ? note : "");
	below = vnode_get(im, from, err, sizeof(err));
	if (!below)
		return fail(msg, msglen, "%s", err);
	crash_point(cur_op);
	delta_paths(st, nv.num, data, map);
	delta = overlay_open_delta(below->top, data, map, OVD_CREATE | OVD_WRITABLE, err, sizeof(err));
	if (!delta) {
		store_release(below);
		return fail(msg, msglen, "%s", err);
	}
	fsync_dir(st->dir);
	crash_point(cur_op);
	layer_close(delta);
	store_release(below);
	if (add_version(st, &nv) < 0)
		return fail(msg, msglen, "out of memory");
	if (store_save(st, err, sizeof(err)) < 0) {
		remove_version(st, nv.num);
		overlay_remove(data, map);
		return fail(msg, msglen, "%s", err);
	}
	log_msg("image %s: version %u created over version %u, in maintenance%s%s", im->name, nv.num,
		nv.parent, nv.note[0] ? ": " : "", nv.note);
	sb_printf(out, "version %u of %s created over version %u, in maintenance\n", nv.num, im->name,
		  nv.parent);
	return 0;
}

/* The maintenance writer of v must be gone; an idle one is ended.  0 or -1. */
static int writer_gone(struct server *s, struct image *im, struct version *v, char *msg,
		       size_t msglen)
{
	struct session *w = NULL;
	int live;
	char mac[18];

	sessions_on(s, im, v->num, &live, &w);
	if (w && live) {
		nd_mac_format(w->mac, mac);
		return fail(msg, msglen, "version %u is being written by %s (maintenance): shut it "
			    "down first", v->num, mac);
	}
	if (w)
		session_end(s, w, "its maintenance version leaves maintenance");
	return 0;
}

static int cmd_promote(struct server *s, struct image *im, int argc, char **argv,
		       struct strbuf *out, char *msg, size_t msglen)
{
	struct store *st = im->store;
	struct version *v = want_version(im, argv[2], msg, msglen), *prod;
	const char *to = opt(argc, argv, "to"), *group = opt(argc, argv, "group");
	const char *percent = opt(argc, argv, "percent");
	int target = to ? state_parse(to) : VS_PRODUCTION, old;
	unsigned pct = 0;
	char err[256];

	if (!v)
		return -1;
	if (target != VS_TEST && target != VS_PRODUCTION)
		return fail(msg, msglen, "--to takes test or production, not '%s'", to);
	if ((group || percent) && target != VS_TEST)
		return fail(msg, msglen, "--group and --percent are for --to test (a canary)");
	if (percent && (parse_num(percent, &pct) < 0 || pct > 100))
		return fail(msg, msglen, "--percent takes 1..100, not '%s'", percent);
	if (group && (strlen(group) >= sizeof(v->canary_group) || strchr(group, ' ')))
		return fail(msg, msglen, "--group takes one word of at most %zu bytes",
			    sizeof(v->canary_group) - 1);
	if (v->state == VS_TEST && target == VS_TEST && (group || percent)) {
		/* Widen or narrow a running canary. */
		snprintf(v->canary_group, sizeof(v->canary_group), "%s", group ? group : "");
		v->canary_percent = pct;
		if (store_save(st, err, sizeof(err)) < 0)
			return fail(msg, msglen, "%s", err);
		sb_printf(out, "image %s: version %u in test for %s%s%s%u%% of the others\n", im->name,
			  v->num, "testers", group ? ", group " : "", group ? group : "", pct);
		return 0;
	}
	if (v->state == target)
		return fail(msg, msglen, "version %u is already in %s", v->num, store_state_name(target));
	if (v->state == VS_PRODUCTION)
		return fail(msg, msglen, "version %u is in production: promote another version, or "
			    "netdisk image rollback %s", v->num, im->name);
	if (v->state == VS_MAINTENANCE) {
		if (writer_gone(s, im, v, msg, msglen) < 0)
			return -1;
		if (v->vn) {
			int rc = layer_flush(v->vn->own);

			if (rc < 0)
				return fail(msg, msglen, "cannot flush version %u: fdatasync: %s", v->num,
					    strerror(-rc));
			__atomic_store_n(&((struct ver_layer *)v->vn->top)->writable, 0, __ATOMIC_RELEASE);
		}
	}
	crash_point(cur_op);
	old = v->state;
	prod = in_state(st, VS_PRODUCTION);
	snprintf(v->canary_group, sizeof(v->canary_group), "%s", group ? group : "");
	v->canary_percent = pct;
	if (target == VS_PRODUCTION) {
		if (st->nhistory == (int)(sizeof(st->history) / sizeof(st->history[0]))) {
			memmove(st->history, st->history + 1, sizeof(st->history[0]) * (size_t)(st->nhistory - 1));
			st->nhistory--;
		}
		st->history[st->nhistory++] = prod->num;
		prod->state = VS_RETIRED;
	}
	v->state = target;
	if (store_save(st, err, sizeof(err)) < 0) {
		v->state = old;
		if (target == VS_PRODUCTION) {
			prod->state = VS_PRODUCTION;
			st->nhistory--;
		}
		return fail(msg, msglen, "%s", err);
	}
	log_msg("image %s: version %u promoted from %s to %s", im->name, v->num,
		store_state_name(old), store_state_name(target));
	sb_printf(out, "image %s: version %u is now in %s%s\n", im->name, v->num,
		  store_state_name(target),
		  target == VS_PRODUCTION ? " (clients get it at their next boot)" : "");
	if (target == VS_TEST)
		sb_printf(out, "canary: testers%s%s, and %u%% of the other clients\n",
			  group ? ", group " : "", group ? group : "", pct);
	return 0;
}

static int cmd_rollback(struct server *s, struct image *im, struct strbuf *out, char *msg,
			size_t msglen)
{
	struct store *st = im->store;
	struct version *prod = in_state(st, VS_PRODUCTION), *back = NULL;
	char err[256];
	int n = st->nhistory;

	(void)s;
	while (n > 0 && !(back = store_version(st, st->history[n - 1])))
		n--;
	if (!back || back == prod)
		return fail(msg, msglen, "image %s has no earlier production version to roll back to",
			    im->name);
	crash_point(cur_op);
	prod->state = VS_RETIRED;
	back->state = VS_PRODUCTION;
	st->nhistory = n - 1;
	if (store_save(st, err, sizeof(err)) < 0) {
		prod->state = VS_PRODUCTION;
		back->state = VS_RETIRED;
		st->nhistory = n;
		return fail(msg, msglen, "%s", err);
	}
	log_msg("image %s: rolled back from version %u to version %u", im->name, prod->num, back->num);
	sb_printf(out, "image %s: version %u is in production again (version %u retired)\n", im->name,
		  back->num, prod->num);
	return 0;
}

static int cmd_merge(struct server *s, struct image *im, int argc, char **argv,
		     struct strbuf *out, char *msg, size_t msglen)
{
	struct store *st = im->store;
	const char *upto = opt(argc, argv, "upto");
	struct version *v = upto ? want_version(im, upto, msg, msglen) : in_state(st, VS_PRODUCTION);
	char path[PATH_MAX];

	if (!v)
		return -1;
	if (v->state == VS_MAINTENANCE)
		return fail(msg, msglen, "version %u is in maintenance (still changing): merge up to "
			    "a promoted version", v->num);
	if (!v->has_delta)
		return fail(msg, msglen, "version %u is a base already: nothing to merge", v->num);
	if (make_versioned(s, im, msg, msglen) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/base-%u.img", st->dir, st->gen + 1);
	if (job_start(s, im, 1, v, path, msg, msglen) < 0)
		return -1;
	log_msg("image %s: merging version %u (%u deltas) into a new base in the background",
		im->name, v->num, chain_deltas(st, v));
	sb_printf(out, "merging version %u of %s into a new base\n", v->num, im->name);
	return 0;
}

static int cmd_delete(struct server *s, struct image *im, char **argv, struct strbuf *out,
		      char *msg, size_t msglen)
{
	struct store *st = im->store;
	struct version *v = want_version(im, argv[2], msg, msglen);
	char data[PATH_MAX], map[PATH_MAX], err[256];
	unsigned num, n;
	int i;

	if (!v)
		return -1;
	num = v->num;
	if (v->state == VS_PRODUCTION)
		return fail(msg, msglen, "version %u is in production: promote another one first", num);
	if (children_of(st, num))
		return fail(msg, msglen, "version %u has versions built on it: delete them first, or "
			    "merge", num);
	if ((n = pins_on(st, num)))
		return fail(msg, msglen, "version %u is pinned by %u persistent overlay(s): reset them "
			    "(netdisk image reset-client) first", num, n);
	if (__atomic_load_n(&st->job.running, __ATOMIC_ACQUIRE) && st->job.ver == num)
		return fail(msg, msglen, "version %u is being merged or exported", num);
	if (v->state == VS_MAINTENANCE && writer_gone(s, im, v, msg, msglen) < 0)
		return -1;
	if ((n = sessions_on(s, im, num, NULL, NULL)))
		return fail(msg, msglen, "version %u is read by %u session(s): they keep it until they "
			    "boot again", num, n);
	if (!v->has_delta)
		return fail(msg, msglen, "version %u is a base, not a delta", num);
	crash_point(cur_op);
	for (i = 0; i < st->nhistory; i++)
		if (st->history[i] == num) {
			memmove(&st->history[i], &st->history[i + 1],
				sizeof(st->history[0]) * (size_t)(st->nhistory - i - 1));
			st->nhistory--;
			i--;
		}
	remove_version(st, num);
	if (store_save(st, err, sizeof(err)) < 0)
		return fail(msg, msglen, "%s (restart netdiskd to reload the store)", err);
	delta_paths(st, num, data, map);
	overlay_remove(data, map);
	crash_point(cur_op);
	log_msg("image %s: version %u deleted", im->name, num);
	sb_printf(out, "image %s: version %u deleted\n", im->name, num);
	return 0;
}

static int cmd_export(struct server *s, struct image *im, char **argv, struct strbuf *out,
		      char *msg, size_t msglen)
{
	struct version *v = want_version(im, argv[2], msg, msglen);
	char path[PATH_MAX];

	if (!v)
		return -1;
	if (v->state == VS_MAINTENANCE)
		return fail(msg, msglen, "version %u is in maintenance (still changing)", v->num);
	snprintf(path, sizeof(path), "%s/export-%u.raw", im->store->dir, v->num);
	if (job_start(s, im, 2, v, path, msg, msglen) < 0)
		return -1;
	sb_printf(out, "file %s\n", path);
	return 0;
}

static int cmd_export_done(struct image *im, char **argv, struct strbuf *out, char *msg,
			   size_t msglen)
{
	char path[PATH_MAX];
	unsigned n;

	if (parse_num(argv[2], &n) < 0)
		return fail(msg, msglen, "a version is a number from 1, not '%s'", argv[2]);
	snprintf(path, sizeof(path), "%s/export-%u.raw", im->store->dir, n);
	if (unlink(path) < 0)
		return fail(msg, msglen, "cannot remove %s: unlink: %s", path, strerror(errno));
	sb_printf(out, "removed %s\n", path);
	return 0;
}

static int cmd_reset_client(struct image *im, char **argv, struct strbuf *out, char *msg,
			    size_t msglen)
{
	struct store *st = im->store;
	uint8_t mac[6];
	struct pin *p;
	char err[256];

	if (nd_mac_parse(argv[2], mac) < 0)
		return fail(msg, msglen, "a MAC is aa:bb:cc:dd:ee:ff, not '%s'", argv[2]);
	p = find_pin(st, mac);
	if (!p)
		return fail(msg, msglen, "%s has no persistent overlay pinned on image %s", argv[2],
			    im->name);
	cur_op = "pin";
	p->reset = 1;
	if (store_save(st, err, sizeof(err)) < 0) {
		p->reset = 0;
		return fail(msg, msglen, "%s", err);
	}
	sb_printf(out, "%s: its persistent overlay on %s (version %u) starts afresh on the current "
		  "version at its next boot\n", argv[2], im->name, p->ver);
	return 0;
}

/* Commands: argv[0] the verb, then positional arguments, then KEY=VALUE options. */
int store_cmd(struct server *s, int argc, char **argv, struct strbuf *out, char *msg, size_t msglen)
{
	static const struct {
		const char *verb;
		int args; /* positional arguments after the verb */
		const char *opts; /* options it takes, space-separated */
	} verbs[] = {
		{ "list", 0, "" },         { "versions", 1, "" },
		{ "new-version", 1, "note from" }, { "promote", 2, "to group percent" },
		{ "rollback", 1, "" },     { "merge", 1, "upto" },
		{ "job", 1, "" },          { "delete-version", 2, "" },
		{ "export", 2, "" },       { "export-done", 2, "" },
		{ "reset-client", 2, "" },
	};
	struct image *im = NULL;
	size_t i;
	int j;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[0], verbs[i].verb))
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0]))
		return fail(msg, msglen, "unknown command '%s'", argv[0]);
	if (positional(argc, argv) != verbs[i].args + 1)
		return fail(msg, msglen, "%s takes %d argument(s)", argv[0], verbs[i].args);
	for (j = 1; j < argc; j++) {
		const char *eq = strchr(argv[j], '=');
		char key[32], padded[64];

		if (!eq)
			continue;
		snprintf(key, sizeof(key), " %.*s ", (int)(eq - argv[j] < 24 ? eq - argv[j] : 24), argv[j]);
		snprintf(padded, sizeof(padded), " %s ", verbs[i].opts);
		if (key[1] == ' ' || !strstr(padded, key))
			return fail(msg, msglen, "%s takes no option '%.*s'", argv[0],
				    (int)(eq - argv[j]), argv[j]);
	}
	if (verbs[i].args && !(im = want_image(s, argv[1], msg, msglen)))
		return -1;
	cur_op = verbs[i].verb; /* (static: crash points and saves name it) */
	if (!strcmp(argv[0], "list"))
		return cmd_list(s, out);
	if (!strcmp(argv[0], "versions"))
		return cmd_versions(s, im, out);
	if (!strcmp(argv[0], "job")) {
		job_line(&im->store->job, out);
		return 0;
	}
	if (!s->cfg.state_dir[0] && strcmp(argv[0], "export") && strcmp(argv[0], "export-done"))
		return fail(msg, msglen, "netdiskd runs with a temporary state directory: versions "
			    "would be lost at exit (give --state-dir)");
	if (!strcmp(argv[0], "new-version"))
		return cmd_new_version(s, im, argc, argv, out, msg, msglen);
	if (!strcmp(argv[0], "promote"))
		return cmd_promote(s, im, argc, argv, out, msg, msglen);
	if (!strcmp(argv[0], "rollback"))
		return cmd_rollback(s, im, out, msg, msglen);
	if (!strcmp(argv[0], "merge"))
		return cmd_merge(s, im, argc, argv, out, msg, msglen);
	if (!strcmp(argv[0], "delete-version"))
		return cmd_delete(s, im, argv, out, msg, msglen);
	if (!strcmp(argv[0], "export"))
		return cmd_export(s, im, argv, out, msg, msglen);
	if (!strcmp(argv[0], "export-done"))
		return cmd_export_done(im, argv, out, msg, msglen);
	return cmd_reset_client(im, argv, out, msg, msglen);
}
