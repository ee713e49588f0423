/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-client personalization (issue #18): the config keys and templates, and
 * the layer between an image version and a client's overlay that gives each
 * client its own hostname, /etc/hosts, /etc/machine-id, SSH host keys and
 * files.  The layer is a version delta (server/overlay.c) written by
 * libext2fs through an io_manager of our own that reads the version's blocks
 * and writes only into the delta, never into the version or the base.  It is
 * built into temporary files, renamed when complete, and cached in
 * STATE/persona/<image>/ under a hash of everything that went into it.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <et/com_err.h>
#include "fat.h"
#include "netdiskd.h"
#include "persona.h"

extern char **environ;

#define MAX_TEMPLATE (1u << 20) /* a template or expanded file: at most 1 MiB */
#define MAX_VARS 64

/* ---- the template language ---------------------------------------------- */

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

int utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + len;

	while (p < e) {
		unsigned c = *p++, n, cp;

		if (c == 0)
			return 0;
		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return 0;
		if ((size_t)(e - p) < n)
			return 0;
		while (n--) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (*p++ & 0x3f);
		}
		/* overlong 3- and 4-byte forms, surrogates, beyond U+10FFFF */
		if ((c >= 0xe0 && cp < 0x800) || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (c >= 0xf0 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
	}
	return 1;
}

int unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s != '\\') {
			*o++ = *s;
			continue;
		}
		switch (*++s) {
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case '\\': *o++ = '\\'; break;
		default: return -1;
		}
	}
	*o = 0;
	return 0;
}

/* Walk a template: call `var` for each {name}, `lit` for each run of text. */
static int tmpl_walk(const char *t, int (*var)(const char *name, void *arg),
		     int (*lit)(const char *p, size_t n, void *arg), void *arg, char *err,
		     size_t errlen)
{
	const char *p = t;

	while (*p) {
		const char *q = p;

		while (*q && *q != '{' && *q != '}')
			q++;
		if (q > p && lit && lit(p, (size_t)(q - p), arg) < 0)
			goto nomem;
		p = q;
		if (!*p)
			break;
		if (p[0] == p[1]) { /* {{ or }} */
			if (lit && lit(p, 1, arg) < 0)
				goto nomem;
			p += 2;
			continue;
		}
		if (*p == '}') {
			snprintf(err, errlen, "template: a lone '}' at byte %zu (write }} for a brace)",
				 (size_t)(p - t));
			return -1;
		} else {
			char name[33];
			size_t n = 0;

			for (q = p + 1; *q && *q != '}'; q++) {
				if (!name_char(*q) || n >= sizeof(name) - 1) {
					snprintf(err, errlen, "template: bad variable name at byte %zu "
						 "(letters, digits, '_', '-', at most 32; {{ for a brace)",
						 (size_t)(q - t));
					return -1;
				}
				name[n++] = *q;
			}
			if (!*q) {
				snprintf(err, errlen, "template: '{' at byte %zu is never closed",
					 (size_t)(p - t));
				return -1;
			}
			if (!n) {
				snprintf(err, errlen, "template: empty {} at byte %zu", (size_t)(p - t));
				return -1;
			}
			name[n] = 0;
			if (var(name, arg) < 0) {
				if (!err[0])
					snprintf(err, errlen, "template: unknown variable {%s}", name);
				return -1;
			}
			p = q + 1;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "template: expansion larger than %u bytes", MAX_TEMPLATE);
	return -1;
}

struct check_ctx {
	int (*known)(const char *, void *);
	void *arg;
};

static int check_var(const char *name, void *arg)
{
	struct check_ctx *c = arg;

	return c->known && !c->known(name, c->arg) ? -1 : 0;
}

int tmpl_check(const char *t, int (*known)(const char *name, void *arg), void *arg, char *err,
	       size_t errlen)
{
	struct check_ctx c = { known, arg };

	err[0] = 0;
	if (!utf8_valid(t, strlen(t))) {
		snprintf(err, errlen, "template is not UTF-8");
		return -1;
	}
	return tmpl_walk(t, check_var, NULL, &c, err, errlen);
}

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > MAX_TEMPLATE)
		return -1;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *q = realloc(b->p, cap);

		if (!q)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

struct expand_ctx {
	struct buf b;
	const char *(*lookup)(const char *, void *);
	void *arg;
	int toobig;
};

static int expand_lit(const char *p, size_t n, void *arg)
{
	struct expand_ctx *x = arg;

	return buf_add(&x->b, p, n);
}

static int expand_var(const char *name, void *arg)
{
	struct expand_ctx *x = arg;
	const char *v = x->lookup(name, x->arg);

	if (!v)
		return -1;
	if (buf_add(&x->b, v, strlen(v)) < 0) {
		x->toobig = 1;
		return -1;
	}
	return 0;
}

char *tmpl_expand(const char *t, const char *(*lookup)(const char *name, void *arg), void *arg,
		  size_t *outlen, char *err, size_t errlen)
{
	struct expand_ctx x = { { NULL, 0, 0 }, lookup, arg, 0 };

	err[0] = 0;
	if (buf_add(&x.b, "", 0) < 0 || tmpl_walk(t, expand_var, expand_lit, &x, err, errlen) < 0) {
		if (x.toobig)
			snprintf(err, errlen, "template: expansion larger than %u bytes", MAX_TEMPLATE);
		else if (!err[0])
			snprintf(err, errlen, "out of memory");
		free(x.b.p);
		return NULL;
	}
	*outlen = x.b.len;
	return x.b.p;
}

/* ---- config keys --------------------------------------------------------- */

static const char *const builtin_vars[] = { "mac", "ip", "hostname", "image", "version", "index" };

static int is_builtin(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(builtin_vars) / sizeof(builtin_vars[0]); i++)
		if (!strcmp(builtin_vars[i], name))
			return 1;
	return 0;
}

#define fail nd_errf /* (common/log.h) */

/* A value as the config gives it: UTF-8, escapes resolved; malloc'd or NULL with err. */
static char *value_text(const char *v, const char *what, char *err, size_t errlen)
{
	char *s;

	if (!utf8_valid(v, strlen(v))) {
		fail(err, errlen, "%s is not UTF-8", what);
		return NULL;
	}
	s = strdup(v);
	if (!s) {
		fail(err, errlen, "out of memory");
		return NULL;
	}
	if (unescape(s) < 0) {
		fail(err, errlen, "%s: unknown escape (\\n, \\t and \\\\ only)", what);
		free(s);
		return NULL;
	}
	return s;
}

/* RFC 1123 host name: labels of letters, digits and '-', 1..63 each, 253 in all. */
static int valid_hostname(const char *h)
{
	size_t n = strlen(h), label = 0, i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		char c = h[i];

		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-') || (c == '-' && label == 0) || ++label > 63)
			return 0;
	}
	return h[n - 1] != '-' && h[n - 1] != '.';
}

static int valid_var_name(const char *n)
{
	size_t i, len = strlen(n);

	if (!len || len > 32)
		return 0;
	for (i = 0; i < len; i++)
		if (!name_char(n[i]))
			return 0;
	return 1;
}

#define ESP_PREFIX "esp:" /* file esp:/PATH: a file on the image's FAT (EFI system) partition */

static int is_esp(const char *p)
{
	return !strncmp(p, ESP_PREFIX, 4);
}

static int valid_path(const char *p)
{
	const char *c;

	if (is_esp(p))
		p += 4;
	if (p[0] != '/' || strlen(p) > 255 || p[strlen(p) - 1] == '/' || strstr(p, "//"))
		return 0;
	for (c = p; *c; c++)
		if (*c == ' ' || *c == '\t' || (unsigned char)*c < 0x20)
			return 0;
	return !strstr(p, "/./") && !strstr(p, "/../") && strcmp(strrchr(p, '/'), "/.") &&
	       strcmp(strrchr(p, '/'), "/..");
}

static int yes_no(const char *v, int *out)
{
	if (!strcmp(v, "yes"))
		*out = 1;
	else if (!strcmp(v, "no"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* Add a var, refusing a second value for one name. */
static int add_var(struct persona_var **vars, int *n, const char *name, const char *v, char *err,
		   size_t errlen)
{
	struct persona_var *nv;
	char *val;
	int i;

	if (!valid_var_name(name))
		return fail(err, errlen, "bad variable name '%s' (letters, digits, '_', '-'; at most 32)",
			    name);
	if (is_builtin(name))
		return fail(err, errlen, "variable '%s' is built in; it cannot be set", name);
	for (i = 0; i < *n; i++)
		if (!strcmp((*vars)[i].name, name))
			return fail(err, errlen, "duplicate key: var %s is already set in this section", name);
	if (*n >= MAX_VARS)
		return fail(err, errlen, "more than %d variables in one section", MAX_VARS);
	val = value_text(v, "the value", err, errlen);
	if (!val)
		return -1;
	nv = realloc(*vars, sizeof(*nv) * (size_t)(*n + 1));
	if (!nv) {
		free(val);
		return fail(err, errlen, "out of memory");
	}
	*vars = nv;
	nv[*n].name = strdup(name);
	nv[*n].value = val;
	if (!nv[*n].name) {
		free(val);
		return fail(err, errlen, "out of memory");
	}
	(*n)++;
	return 0;
}

static struct persona_file *find_file(struct persona_image *pi, const char *path)
{
	int i;

	for (i = 0; i < pi->nfiles; i++)
		if (!strcmp(pi->files[i].path, path))
			return &pi->files[i];
	return NULL;
}

/* Read a `from FILE` template (relative to the config's directory). */
static char *read_template_file(const char *name, const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX], *t;
	size_t n;

	if (name[0] == '/' || !dir[0])
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	t = nd_read_file(path, MAX_TEMPLATE, &n);
	if (!t) {
		if (errno == EFBIG || errno == EINVAL)
			fail(err, errlen, "template file %s: not a regular file of at most %u bytes",
			     path, MAX_TEMPLATE);
		else
			fail(err, errlen, "cannot read template file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (!utf8_valid(t, n)) {
		fail(err, errlen, "template file %s is not UTF-8 (or holds a NUL byte)", path);
		free(t);
		return NULL;
	}
	return t;
}

static int image_key(struct persona_image *pi, const char *k, const char *v, int from,
		     const char *dir, int line, char *err, size_t errlen);

/* "KEY ARG" keys: the word and its argument, or 0. */
static int split_key(const char *k, const char *word, const char **arg)
{
	size_t n = strlen(word);

	if (strncmp(k, word, n) || (k[n] != ' ' && k[n] != '\t'))
		return 0;
	*arg = k + n;
	while (**arg == ' ' || **arg == '\t')
		(*arg)++;
	return 1;
}

int persona_image_key(struct persona_image *pi, const char *k, const char *v, const char *dir,
		      int line, char *err, size_t errlen)
{
	return image_key(pi, k, v, 0, dir, line, err, errlen);
}

int persona_image_file_from(struct persona_image *pi, const char *path, const char *file,
			    const char *dir, int line, char *err, size_t errlen)
{
	char k[300];

	snprintf(k, sizeof(k), "file %s", path);
	return image_key(pi, k, file, 1, dir, line, err, errlen);
}

static int image_key(struct persona_image *pi, const char *k, const char *v, int from,
		     const char *dir, int line, char *err, size_t errlen)
{
	const char *arg;
	struct persona_file *f;
	char *t;

	if (!strcmp(k, "hostname")) {
		if (pi->hostname)
			return fail(err, errlen, "duplicate key: hostname is already set at line %d",
				    pi->hostname_line);
		if (!(pi->hostname = value_text(v, "hostname template", err, errlen)))
			return -1;
		if (tmpl_check(pi->hostname, NULL, NULL, err, errlen) < 0)
			return -1;
		pi->hostname_line = line;
	} else if (!strcmp(k, "machine-id") || !strcmp(k, "ssh-host-keys")) {
		int *field = k[0] == 'm' ? &pi->machine_id : &pi->ssh_keys;
		int *at = k[0] == 'm' ? &pi->machine_id_line : &pi->ssh_keys_line;

		if (*at)
			return fail(err, errlen, "duplicate key: %s is already set at line %d", k, *at);
		if (yes_no(v, field) < 0)
			return fail(err, errlen, "%s must be yes or no, not '%s'", k, v);
		*at = line;
	} else if (!strcmp(k, "persona-partition")) {
		char *end;
		long n = strtol(v, &end, 10);

		if (pi->partition_line)
			return fail(err, errlen, "duplicate key: persona-partition is already set at "
				    "line %d", pi->partition_line);
		if (*end || n < 1 || n > 128)
			return fail(err, errlen, "persona-partition must be 1..128, not '%s'", v);
		pi->partition = (int)n;
		pi->partition_line = line;
	} else if (split_key(k, "var", &arg)) {
		if (add_var(&pi->vars, &pi->nvars, arg, v, err, errlen) < 0)
			return -1;
	} else if (split_key(k, "file", &arg)) {
		if (!valid_path(arg))
			return fail(err, errlen, "file '%s': want an absolute path (or esp:/PATH) without "
				    "spaces, '.', '..' or '//'", arg);
		if ((f = find_file(pi, arg)))
			return fail(err, errlen, "duplicate key: file %s is already set at line %d", arg,
				    f->line);
		if (from)
			t = read_template_file(v, dir, err, errlen);
		else
			t = value_text(v, "template", err, errlen);
		if (!t)
			return -1;
		if (tmpl_check(t, NULL, NULL, err, errlen) < 0) {
			free(t);
			return -1;
		}
		f = realloc(pi->files, sizeof(*f) * (size_t)(pi->nfiles + 1));
		if (!f) {
			free(t);
			return fail(err, errlen, "out of memory");
		}
		pi->files = f;
		f = &f[pi->nfiles];
		memset(f, 0, sizeof(*f));
		f->path = strdup(arg);
		f->tmpl = t;
		f->line = line;
		f->mode = 0644;
		if (!f->path) {
			free(t);
			return fail(err, errlen, "out of memory");
		}
		pi->nfiles++;
	} else if (split_key(k, "file-mode", &arg) || split_key(k, "file-owner", &arg)) {
		int mode = k[5] == 'm';
		unsigned a, b;
		char c;

		if (!(f = find_file(pi, arg)))
			return fail(err, errlen, "%s %s: no `file %s = ...` before it in this section",
				    mode ? "file-mode" : "file-owner", arg, arg);
		if (mode) {
			if (sscanf(v, "%o%c", &a, &c) != 1 || a > 07777 || v[0] < '0' || v[0] > '7')
				return fail(err, errlen, "file-mode must be octal 0..7777, not '%s'", v);
			f->mode = a;
		} else {
			if (sscanf(v, "%u:%u%c", &a, &b, &c) != 2 || v[0] < '0' || v[0] > '9')
				return fail(err, errlen, "file-owner must be UID:GID (numbers), not '%s'", v);
			f->uid = a;
			f->gid = b;
		}
	} else {
		return 0;
	}
	if (!pi->on) {
		pi->on = 1;
		if (!pi->machine_id_line)
			pi->machine_id = 1;
		if (!pi->ssh_keys_line)
			pi->ssh_keys = 1;
	}
	return 1;
}

int persona_client_key(struct persona_client *pc, const char *k, const char *v, int line,
		       char *err, size_t errlen)
{
	const char *arg;
	char **field = NULL;
	int *at = NULL;

	if (!strcmp(k, "hostname"))
		field = &pc->hostname, at = &pc->hostname_line;
	else if (!strcmp(k, "ip"))
		field = &pc->ip, at = &pc->ip_line;
	else if (!strcmp(k, "index"))
		field = &pc->index, at = &pc->index_line;
	if (field) {
		if (*field)
			return fail(err, errlen, "duplicate key: %s is already set at line %d", k, *at);
		if (!(*field = value_text(v, k, err, errlen)))
			return -1;
		*at = line;
		if (field == &pc->hostname && !valid_hostname(v))
			return fail(err, errlen, "hostname '%s' is not a host name (letters, digits, "
				    "'-' and dots; labels of at most 63)", v);
		if (field != &pc->hostname && (strchr(v, ' ') || strlen(v) > 63))
			return fail(err, errlen, "%s must be one word of at most 63 bytes", k);
	} else if (split_key(k, "var", &arg)) {
		if (add_var(&pc->vars, &pc->nvars, arg, v, err, errlen) < 0)
			return -1;
	} else {
		return 0;
	}
	pc->on = 1;
	return 1;
}

static void free_vars(struct persona_var *v, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

void persona_image_free(struct persona_image *pi)
{
	int i;

	free(pi->hostname);
	for (i = 0; i < pi->nfiles; i++) {
		free(pi->files[i].path);
		free(pi->files[i].tmpl);
	}
	free(pi->files);
	free_vars(pi->vars, pi->nvars);
	memset(pi, 0, sizeof(*pi));
}

void persona_client_free(struct persona_client *pc)
{
	free(pc->hostname);
	free(pc->ip);
	free(pc->index);
	free_vars(pc->vars, pc->nvars);
	memset(pc, 0, sizeof(*pc));
}

static int str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static int vars_eq(const struct persona_var *a, int na, const struct persona_var *b, int nb)
{
	int i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (!str_eq(a[i].name, b[i].name) || !str_eq(a[i].value, b[i].value))
			return 0;
	return 1;
}

int persona_image_equal(const struct persona_image *a, const struct persona_image *b)
{
	int i;

	if (a->on != b->on || !str_eq(a->hostname, b->hostname) || a->machine_id != b->machine_id ||
	    a->ssh_keys != b->ssh_keys || a->partition != b->partition || a->nfiles != b->nfiles ||
	    !vars_eq(a->vars, a->nvars, b->vars, b->nvars))
		return 0;
	for (i = 0; i < a->nfiles; i++)
		if (!str_eq(a->files[i].path, b->files[i].path) ||
		    !str_eq(a->files[i].tmpl, b->files[i].tmpl) || a->files[i].mode != b->files[i].mode ||
		    a->files[i].uid != b->files[i].uid || a->files[i].gid != b->files[i].gid)
			return 0;
	return 1;
}

int persona_client_equal(const struct persona_client *a, const struct persona_client *b)
{
	return a->on == b->on && str_eq(a->hostname, b->hostname) && str_eq(a->ip, b->ip) &&
	       str_eq(a->index, b->index) && vars_eq(a->vars, a->nvars, b->vars, b->nvars);
}

static const char *var_of(const struct persona_var *v, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return v[i].value;
	return NULL;
}

/* What a template of an image may use for one client (NULL rule: any client). */
struct known_ctx {
	const struct persona_image *pi;
	const struct client_rule *r;
	int in_hostname; /* {hostname} inside the hostname template itself */
	const char *missing;
};

static int known_var(const char *name, void *arg)
{
	struct known_ctx *k = arg;

	if (is_builtin(name))
		return !(k->in_hostname && !strcmp(name, "hostname"));
	if (var_of(k->pi->vars, k->pi->nvars, name) ||
	    (k->r && var_of(k->r->persona.vars, k->r->persona.nvars, name)))
		return 1;
	return 0;
}

/* Check one template of an image for a client (or the image alone). */
static int check_tmpl(struct config *c, struct image *im, const struct client_rule *r,
		      const char *what, int line, const char *t, int in_hostname, char *err,
		      size_t errlen)
{
	struct known_ctx k = { &im->persona, r, in_hostname, NULL };
	char msg[256], mac[18];

	(void)c;
	if (tmpl_check(t, known_var, &k, msg, sizeof(msg)) == 0)
		return 0;
	if (r) {
		nd_mac_format(r->mac, mac);
		return fail(err, errlen, "line %d: image %s, %s, for client %s (line %d): %s%s", line,
			    im->name, what, mac, r->line, msg,
			    in_hostname && strstr(msg, "{hostname}") ? " (the hostname template "
			    "cannot use itself)" : " (not built in, not a `var` of the image or of "
			    "the client)");
	}
	return fail(err, errlen, "line %d: image %s, %s: %s%s", line, im->name, what, msg,
		    in_hostname && strstr(msg, "{hostname}") ? " (the hostname template cannot "
		    "use itself)" : " (not built in, not a `var` of the image, of no client)");
}

/* Is a variable set by any client section?  (Unlisted clients: checked at attach.) */
static int any_client_var(struct config *c, const char *name)
{
	int i;

	for (i = 0; i < c->nclients; i++)
		if (var_of(c->clients[i].persona.vars, c->clients[i].persona.nvars, name))
			return 1;
	return 0;
}

struct image_known {
	struct config *c;
	struct image *im;
	int in_hostname;
};

static int image_known_var(const char *name, void *arg)
{
	struct image_known *k = arg;

	if (is_builtin(name))
		return !(k->in_hostname && !strcmp(name, "hostname"));
	return var_of(k->im->persona.vars, k->im->persona.nvars, name) || any_client_var(k->c, name);
}

int persona_config_check(struct config *c, char *err, size_t errlen)
{
	int i, j, f;

	for (i = 0; i < c->nimages; i++) {
		struct image *im = &c->images[i];
		struct persona_image *pi = &im->persona;
		struct image_known k = { c, im, 0 };
		char msg[256];

		/* Unknown everywhere: an error whoever the client. */
		for (f = -1; f < pi->nfiles; f++) {
			const char *t = f < 0 ? pi->hostname : pi->files[f].tmpl;

			if (!t)
				continue;
			k.in_hostname = f < 0;
			if (tmpl_check(t, image_known_var, &k, msg, sizeof(msg)) < 0)
				return fail(err, errlen, "line %d: image %s, %s%s: %s (not built in, not "
					    "a `var` of the image or of any client)%s",
					    f < 0 ? pi->hostname_line : pi->files[f].line, im->name,
					    f < 0 ? "hostname" : "file ", f < 0 ? "" : pi->files[f].path,
					    msg, f < 0 && strstr(msg, "{hostname}") ? "; the hostname "
					    "template cannot use {hostname}" : "");
		}
		/* Each listed client bound to the image (or to the default one). */
		for (j = 0; j < c->nclients; j++) {
			struct client_rule *r = &c->clients[j];
			const char *img = r->image[0] ? r->image : c->default_image;

			if (strcmp(img, im->name))
				continue;
			if (pi->hostname && !r->persona.hostname &&
			    check_tmpl(c, im, r, "hostname", pi->hostname_line, pi->hostname, 1, err,
				       errlen) < 0)
				return -1;
			for (f = 0; f < pi->nfiles; f++) {
				char what[300];

				snprintf(what, sizeof(what), "file %s", pi->files[f].path);
				if (check_tmpl(c, im, r, what, pi->files[f].line, pi->files[f].tmpl, 0,
					       err, errlen) < 0)
					return -1;
			}
		}
	}
	return 0;
}

/* ---- SHA-512 based identities --------------------------------------------- */

static void hex(const uint8_t *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

/* The site secret: 32 random bytes made once in STATE/persona/site-secret. */
static int site_secret(struct server *s, uint8_t secret[32], char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	int fd;

	snprintf(path, sizeof(path), "%s/persona/site-secret", s->state_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		int rc = pread_full(fd, secret, 32, 0);

		close(fd);
		if (rc == 0)
			return 0;
		return fail(err, errlen, "cannot read %s: read: %s (delete it only if every "
			    "machine-id may change)", path, strerror(-rc));
	}
	if (errno != ENOENT)
		return fail(err, errlen, "cannot open %s: open: %s", path, strerror(errno));
	if (getrandom(secret, 32, 0) != 32)
		return fail(err, errlen, "getrandom: %s", strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || pwrite_full(fd, secret, 32, 0) < 0 || fsync(fd) < 0 || close(fd) < 0 ||
	    link(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		if (e == EEXIST) /* made meanwhile: use that one */
			return site_secret(s, secret, err, errlen);
		return fail(err, errlen, "cannot create %s: %s", path, strerror(e));
	}
	unlink(tmp);
	return 0;
}

/* ---- the I/O manager: reads the version, writes only into the layer ------- */

struct ndio {
	struct layer *l;   /* the layer being built (a writable delta over the version) */
	uint64_t off, len; /* the partition in it, bytes */
	unsigned long writes, unchanged;
};

static __thread struct ndio *ndio_next; /* what the next open is for */
static struct struct_io_manager nd_io_manager_s;

static errcode_t ndio_open(const char *name, int flags, io_channel *channel)
{
	io_channel io = NULL;
	errcode_t e;

	(void)flags;
	if (!ndio_next)
		return EXT2_ET_BAD_DEVICE_NAME;
	e = ext2fs_get_memzero(sizeof(*io), &io);
	if (e)
		return e;
	e = ext2fs_get_mem(strlen(name) + 1, &io->name);
	if (e) {
		ext2fs_free_mem(&io);
		return e;
	}
	strcpy(io->name, name);
	io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	io->manager = &nd_io_manager_s;
	io->block_size = 1024;
	io->refcount = 1;
	io->private_data = ndio_next;
	*channel = io;
	return 0;
}

static errcode_t ndio_close(io_channel io)
{
	if (--io->refcount > 0)
		return 0;
	ext2fs_free_mem(&io->name);
	ext2fs_free_mem(&io);
	return 0;
}

static errcode_t ndio_set_blksize(io_channel io, int blksize)
{
	io->block_size = blksize;
	return 0;
}

/* The byte range of `count` blocks (negative: bytes) at `block`, checked. */
static errcode_t ndio_range(io_channel io, unsigned long long block, int count, uint64_t *off,
			    size_t *len)
{
	struct ndio *d = io->private_data;
	uint64_t o = block * (uint64_t)io->block_size;
	size_t n = count < 0 ? (size_t)-(int64_t)count : (size_t)count * (size_t)io->block_size;

	if (o > d->len || n > d->len - o)
		return EXT2_ET_LLSEEK_FAILED;
	*off = d->off + o;
	*len = n;
	return 0;
}

static errcode_t ndio_read64(io_channel io, unsigned long long block, int count, void *data)
{
	struct ndio *d = io->private_data;
	uint64_t off;
	size_t len;
	errcode_t e = ndio_range(io, block, count, &off, &len);
	int rc;

	if (e)
		return e;
	rc = layer_read(d->l, data, len, off);
	return rc < 0 ? -rc : 0;
}

/* A write lands in the layer only if it changes what the client would read:
 * libext2fs rewrites every bitmap and descriptor block it holds at close. */
static errcode_t ndio_write_at(struct ndio *d, uint64_t off, size_t len, const void *data)
{
	uint8_t stack[4096], *cur = len <= sizeof(stack) ? stack : malloc(len);
	int rc;

	if (!cur)
		return EXT2_ET_NO_MEMORY;
	rc = layer_read(d->l, cur, len, off);
	if (rc == 0 && !memcmp(cur, data, len)) {
		d->unchanged++;
	} else if (rc == 0) {
		rc = layer_write(d->l, data, len, off);
		d->writes++;
	}
	if (cur != stack)
		free(cur);
	return rc < 0 ? -rc : 0;
}

static errcode_t ndio_write64(io_channel io, unsigned long long block, int count, const void *data)
{
	uint64_t off;
	size_t len;
	errcode_t e = ndio_range(io, block, count, &off, &len);

	return e ? e : ndio_write_at(io->private_data, off, len, data);
}

static errcode_t ndio_read(io_channel io, unsigned long block, int count, void *data)
{
	return ndio_read64(io, block, count, data);
}

static errcode_t ndio_write(io_channel io, unsigned long block, int count, const void *data)
{
	return ndio_write64(io, block, count, data);
}

static errcode_t ndio_write_byte(io_channel io, unsigned long offset, int count, const void *data)
{
	struct ndio *d = io->private_data;

	if (count < 0 || offset > d->len || (uint64_t)count > d->len - offset)
		return EXT2_ET_LLSEEK_FAILED;
	return ndio_write_at(d, d->off + offset, (size_t)count, data);
}

static errcode_t ndio_flush(io_channel io)
{
	(void)io;
	return 0; /* the layer is flushed once, when it is complete */
}

static errcode_t ndio_set_option(io_channel io, const char *option, const char *arg)
{
	(void)io, (void)option, (void)arg;
	return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager nd_io_manager_s = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "netdisk layer I/O manager",
	.open = ndio_open,
	.close = ndio_close,
	.set_blksize = ndio_set_blksize,
	.read_blk = ndio_read,
	.write_blk = ndio_write,
	.flush = ndio_flush,
	.write_byte = ndio_write_byte,
	.set_option = ndio_set_option,
	.read_blk64 = ndio_read64,
	.write_blk64 = ndio_write64,
};

/* ---- partitions ------------------------------------------------------------ */

struct part {
	int num;           /* 1.. as Linux numbers them; 0: the whole disk */
	uint64_t off, len; /* bytes */
	int ext;           /* holds an ext2/3/4 superblock */
};

#define MAX_PARTS 16

/* The partitions of the disk in `l` from its GPT or MBR (primary partitions
 * only), or the whole disk if it has neither; their count, or -errno. */
static int find_parts(struct layer *l, struct part *p)
{
	uint8_t s0[512], h[512], *ents = NULL;
	int n = 0, i, rc, gpt = 0;

	if ((rc = layer_read(l, s0, 512, 0)) < 0)
		return rc;
	if (s0[510] == 0x55 && s0[511] == 0xaa)
		for (i = 0; i < 4; i++)
			gpt |= s0[446 + 16 * i + 4] == 0xee;
	if (gpt) {
		uint64_t lba, cnt, esz;

		if ((rc = layer_read(l, h, 512, 512)) < 0)
			return rc;
		lba = nd_get_le(h + 72, 8);
		cnt = (uint32_t)nd_get_le(h + 80, 4);
		esz = (uint32_t)nd_get_le(h + 84, 4);
		if (memcmp(h, "EFI PART", 8) || esz < 128 || esz > 512 || cnt > 256 ||
		    lba * 512 + cnt * esz > l->size)
			return -EINVAL;
		ents = malloc(cnt * esz);
		if (!ents)
			return -ENOMEM;
		if ((rc = layer_read(l, ents, cnt * esz, lba * 512)) < 0) {
			free(ents);
			return rc;
		}
		for (i = 0; i < (int)cnt && n < MAX_PARTS; i++) {
			const uint8_t *e = ents + (size_t)i * esz;
			uint64_t first = nd_get_le(e + 32, 8), last = nd_get_le(e + 40, 8);
			static const uint8_t zero[16];

			if (!memcmp(e, zero, 16) || last < first || (last + 1) * 512 > l->size)
				continue;
			p[n++] = (struct part){ i + 1, first * 512, (last - first + 1) * 512, 0 };
		}
		free(ents);
	} else if (s0[510] == 0x55 && s0[511] == 0xaa) {
		for (i = 0; i < 4; i++) {
			const uint8_t *e = s0 + 446 + 16 * i;
			uint64_t start = (uint32_t)nd_get_le(e + 8, 4), count = (uint32_t)nd_get_le(e + 12, 4);

			if (!e[4] || e[4] == 0x05 || e[4] == 0x0f || e[4] == 0x85 || !count ||
			    (start + count) * 512 > l->size)
				continue;
			p[n++] = (struct part){ i + 1, start * 512, count * 512, 0 };
		}
	}
	if (!n)
		p[n++] = (struct part){ 0, 0, l->size, 0 };
	for (i = 0; i < n; i++) {
		uint8_t magic[2];

		if (p[i].len >= 2048 && layer_read(l, magic, 2, p[i].off + 1024 + 56) == 0)
			p[i].ext = magic[0] == 0x53 && magic[1] == 0xef;
	}
	return n;
}

/* The first FAT (12/16/32) partition of the disk in `l` (the EFI system partition). */
static int find_fat(struct layer *l, struct part *out)
{
	struct part p[MAX_PARTS];
	int n = find_parts(l, p), i;

	for (i = 0; i < n; i++)
		if (fat_probe(l, p[i].off, p[i].len)) {
			*out = p[i];
			return 0;
		}
	return -1;
}

/* Open the file system of partition `pt` in `l` (writes land in l). */
static errcode_t fs_open(struct ndio *d, struct layer *l, const struct part *pt, int rw,
			 ext2_filsys *fs)
{
	errcode_t e;

	d->l = l;
	d->off = pt->off;
	d->len = pt->len;
	ndio_next = d;
	e = ext2fs_open2("netdisk", NULL, EXT2_FLAG_64BITS | (rw ? EXT2_FLAG_RW : 0) |
			 EXT2_FLAG_MASTER_SB_ONLY, 0, 0, &nd_io_manager_s, fs);
	ndio_next = NULL;
	return e;
}

static const char *part_name(const struct part *pt, char *buf, size_t n)
{
	if (pt->num)
		snprintf(buf, n, "partition %d", pt->num);
	else
		snprintf(buf, n, "the whole disk (no partition table)");
	return buf;
}

/* The partition to personalize: persona-partition, or the first ext file
 * system with an /etc directory.  0, or -1 with err. */
static int choose_part(struct layer *l, const struct persona_image *pi, const char *image,
		       struct part *out, char *err, size_t errlen)
{
	struct part p[MAX_PARTS];
	char seen[512] = "", pn[64];
	int n = find_parts(l, p), i;

	if (n < 0)
		return fail(err, errlen, "image %s: cannot read its partition table: %s", image,
			    n == -EINVAL ? "a GPT header that does not fit the disk" : strerror(-n));
	for (i = 0; i < n; i++) {
		struct ndio d = { 0 };
		ext2_filsys fs = NULL;
		ext2_ino_t ino;
		size_t len = strlen(seen);

		if (pi->partition && p[i].num != pi->partition)
			continue;
		snprintf(seen + len, sizeof(seen) - len, "%s%s: %s", len ? "; " : "",
			 part_name(&p[i], pn, sizeof(pn)), p[i].ext ? "ext2/3/4" : "not ext2/3/4");
		if (!p[i].ext)
			continue;
		if (fs_open(&d, l, &p[i], 0, &fs)) {
			len = strlen(seen);
			snprintf(seen + len, sizeof(seen) - len, " that libext2fs cannot open");
			continue;
		}
		if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, "etc", &ino) == 0) {
			ext2fs_close_free(&fs);
			*out = p[i];
			return 0;
		}
		ext2fs_close_free(&fs);
		len = strlen(seen);
		snprintf(seen + len, sizeof(seen) - len, " without /etc");
	}
	if (pi->partition && !seen[0])
		return fail(err, errlen, "image %s has no partition %d (persona-partition)", image,
			    pi->partition);
	return fail(err, errlen, "image %s has no ext2/3/4 file system with /etc to personalize "
		    "(%s)", image, seen);
}

int persona_check_images(struct server *s, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < s->cfg.nimages; i++) {
		struct image *im = &s->cfg.images[i];
		struct part pt;
		int j, want = im->persona.on;

		for (j = 0; j < s->cfg.nclients && !want; j++)
			want = s->cfg.clients[j].persona.on &&
			       !strcmp(s->cfg.clients[j].image[0] ? s->cfg.clients[j].image
								   : s->cfg.default_image, im->name);
		if (want && choose_part(im->base, &im->persona, im->name, &pt, err, errlen) < 0)
			return -1;
		for (j = 0; j < im->persona.nfiles; j++)
			if (is_esp(im->persona.files[j].path) && find_fat(im->base, &pt) < 0)
				return fail(err, errlen, "image %s: file %s: the image has no FAT "
					    "partition", im->name, im->persona.files[j].path);
	}
	return 0;
}

/* ---- what a client's layer holds ------------------------------------------- */

struct out_file {
	char *path;
	char *data;
	size_t len;
	unsigned mode, uid, gid;
};

/* Everything a layer build needs, copied out of the config and the session
 * under the server lock (job_prepare), so that a worker thread can build it
 * without that lock (persona_worker): only s->state_dir (fixed after start),
 * img->name (images never change on reload) and vn (a held reference) are
 * shared, all read-only. */
struct persona_job {
	struct server *s;
	struct session *ss;                /* job_prepare only */
	const struct persona_image *pi;    /* ... */
	const struct client_rule *r;       /* ... */
	const struct image *img;
	struct vnode *vn;                  /* the version it is built over (a reference) */
	unsigned vnum;
	struct part pt;                    /* the ext partition */
	char dir[PATH_MAX];                /* STATE/persona/IMAGE */
	char mac12[13], idhex[17];
	uint64_t id;
	char data[PATH_MAX + 96], map[PATH_MAX + 96]; /* the layer's files */
	int built;                         /* job_make built it (else it was there) */
	char mac[18], ip[64], index[24], version[16], hostname[256];
	int have_hostname;
	struct out_file *files;
	int nfiles;
	int ssh_dir_needed; /* write SSH host keys into /etc/ssh */
};

static const char *job_var(const char *name, void *arg)
{
	struct persona_job *j = arg;
	const char *v;

	if (!strcmp(name, "mac"))
		return j->mac;
	if (!strcmp(name, "ip"))
		return j->ip;
	if (!strcmp(name, "image"))
		return j->img->name;
	if (!strcmp(name, "version"))
		return j->version;
	if (!strcmp(name, "index"))
		return j->index;
	if (!strcmp(name, "hostname"))
		return j->have_hostname ? j->hostname : NULL;
	if (j->r && (v = var_of(j->r->persona.vars, j->r->persona.nvars, name)))
		return v;
	return var_of(j->pi->vars, j->pi->nvars, name);
}

static int add_out(struct persona_job *j, const char *path, char *data, size_t len, unsigned mode,
		   unsigned uid, unsigned gid)
{
	struct out_file *f;
	int i;

	for (i = 0; i < j->nfiles; i++)
		if (!strcmp(j->files[i].path, path)) { /* a `file` of the image wins */
			free(data);
			return 0;
		}
	f = realloc(j->files, sizeof(*f) * (size_t)(j->nfiles + 1));
	if (!f) {
		free(data);
		return -1;
	}
	j->files = f;
	f[j->nfiles++] = (struct out_file){ strdup(path), data, len, mode, uid, gid };
	return f[j->nfiles - 1].path ? 0 : -1;
}

static void job_free(struct persona_job *j)
{
	int i;

	for (i = 0; i < j->nfiles; i++) {
		free(j->files[i].path);
		free(j->files[i].data);
	}
	free(j->files);
}

static char *dupn(const char *s, size_t *len)
{
	*len = strlen(s);
	return strdup(s);
}

/* Read a whole small file of the state directory; malloc'd, or NULL. */
static char *slurp(const char *path, size_t *len)
{
	return nd_read_file(path, 65535, len);
}

/* The client's SSH host keys, made once with ssh-keygen in
 * STATE/persona/keys/<mac>/ and kept across versions and rebuilds. */
static const char *const key_types[] = { "ed25519", "ecdsa" };

static double ms_since(const struct timespec *t0);

/* Serializes making and reading key files: the main loop (an attach) and the
 * background thread of persona_keys_background never see half a key set. */
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;

/* One key type with ssh-keygen into DIR/ssh_host_TYPE_key[.pub], made under
 * temporary names and renamed (the public half first: a private key is
 * there only with it); 0, or -1 with err. */
static int keygen(const char *dir, const char *type, const char *comment, char *err, size_t errlen)
{
	char key[PATH_MAX + 64], tmp[PATH_MAX + 80], pubsrc[PATH_MAX + 96], pubdst[PATH_MAX + 96];
	char *argv[12];
	pid_t pid;
	int st, rc;

	snprintf(key, sizeof(key), "%s/ssh_host_%s_key", dir, type);
	snprintf(tmp, sizeof(tmp), "%s/.new_%s_key", dir, type);
	snprintf(pubsrc, sizeof(pubsrc), "%s.pub", tmp);
	snprintf(pubdst, sizeof(pubdst), "%s.pub", key);
	unlink(tmp);
	unlink(pubsrc);
	argv[0] = "ssh-keygen", argv[1] = "-q", argv[2] = "-t";
	argv[3] = (char *)type, argv[4] = "-N", argv[5] = "";
	argv[6] = "-C", argv[7] = (char *)comment, argv[8] = "-f", argv[9] = tmp;
	argv[10] = NULL;
	rc = posix_spawnp(&pid, "ssh-keygen", NULL, NULL, argv, environ);
	if (rc)
		return fail(err, errlen, "cannot run ssh-keygen for the SSH host keys "
			    "(install openssh-client, or set ssh-host-keys = no): "
			    "posix_spawnp: %s", strerror(rc));
	while ((rc = (int)waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (rc < 0)
		return fail(err, errlen, "ssh-keygen -t %s: waitpid: %s", type, strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return fail(err, errlen, "ssh-keygen -t %s failed (status %d)", type, st);
	if (rename(pubsrc, pubdst) < 0 || rename(tmp, key) < 0)
		return fail(err, errlen, "cannot keep SSH key in %s: rename: %s", dir, strerror(errno));
	return 0;
}

/* ---- the pool of key sets made ahead for clients without a [client] section -- */

#define POOL_QUIET_MS 300 /* a refill waits for this long without a set taken */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER; /* a set was taken, or stop */
static int pool_started, pool_stop;
static int pool_target; /* complete sets to keep ready (persona-key-pool; pool_lock) */
static pthread_t pool_thread;

static int64_t pool_taken_ms; /* CLOCK_MONOTONIC of the last set taken (pool_lock) */

static int64_t mono_ms_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Complete sets in the pool (named by 16 hex digits; ".new-*" are being made). */
static int pool_count(const char *pool)
{
	struct dirent *d;
	DIR *dp = opendir(pool);
	int n = 0;

	if (!dp)
		return 0;
	while ((d = readdir(dp)))
		n += d->d_name[0] != '.';
	closedir(dp);
	return n;
}

/* Give a client a ready set: rename one into its key directory DIR (which
 * must not exist yet).  0, or -1 if the pool is empty. */
static int pool_take(const char *state_dir, const char *dir)
{
	char pool[PATH_MAX], src[PATH_MAX + 300];
	struct dirent *d;
	DIR *dp;
	int rc = -1;

	snprintf(pool, sizeof(pool), "%s/persona/keys/pool", state_dir);
	if (!(dp = opendir(pool)))
		return -1;
	while (rc < 0 && (d = readdir(dp))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(src, sizeof(src), "%s/%s", pool, d->d_name);
		if (rename(src, dir) == 0)
			rc = 0;
	}
	closedir(dp);
	if (rc == 0) {
		pthread_mutex_lock(&pool_lock);
		pool_taken_ms = mono_ms_now();
		pthread_cond_signal(&pool_cond);
		pthread_mutex_unlock(&pool_lock);
	}
	return rc;
}

/* Make one set into the pool: under a ".new-" name, renamed when whole. */
static int pool_make_one(const char *pool, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 32], dst[PATH_MAX + 32], hexid[17];
	uint8_t r[8];
	size_t t;

	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		return fail(err, errlen, "getrandom: %s", strerror(errno));
	hex(r, 8, hexid);
	snprintf(tmp, sizeof(tmp), "%s/.new-%s", pool, hexid);
	snprintf(dst, sizeof(dst), "%s/%s", pool, hexid);
	if (mkdirs(tmp) < 0)
		return fail(err, errlen, "cannot create %s: mkdir: %s", tmp, strerror(errno));
	for (t = 0; t < sizeof(key_types) / sizeof(key_types[0]); t++)
		if (keygen(tmp, key_types[t], "root@netdisk", err, errlen) < 0)
			return -1;
	if (rename(tmp, dst) < 0)
		return fail(err, errlen, "cannot keep SSH key set %s: rename: %s", dst, strerror(errno));
	return 0;
}

/* Remove a directory and the files in it (no subdirectories). */
static void remove_flat_dir(const char *dir)
{
	char path[PATH_MAX + 300];
	struct dirent *d;
	DIR *dp = opendir(dir);

	if (!dp)
		return;
	while ((d = readdir(dp)))
		if (d->d_name[0] != '.' || (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))) {
			snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
			unlink(path);
		}
	closedir(dp);
	rmdir(dir);
}

/* While sets are being taken (an attach storm), wait for a quiet moment
 * before making more (pool_lock held): 1 if it waited. */
static int pool_quiet_wait(void)
{
	int64_t left = pool_taken_ms + POOL_QUIET_MS - mono_ms_now();
	struct timespec until;

	if (left <= 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += left * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&pool_cond, &pool_lock, &until);
	return 1;
}

/* The pool keeper: fills the pool to KEY_POOL sets, then waits for one to be
 * taken; gives up (until a restart) if ssh-keygen fails. */
static void *pool_keeper(void *arg)
{
	char *pool = arg, err[512], path[PATH_MAX + 300];
	struct timespec t0;
	struct dirent *d;
	DIR *dp;
	int made = 0, logged = 0;

	/* Sets a stopped server was making are not whole: remove them. */
	if ((dp = opendir(pool))) {
		while ((d = readdir(dp)))
			if (!strncmp(d->d_name, ".new-", 5)) {
				snprintf(path, sizeof(path), "%s/%s", pool, d->d_name);
				remove_flat_dir(path);
			}
		closedir(dp);
	}
	/* Below the builds: its ssh-keygen runs (children inherit it) take what
	 * CPU the attaches leave. */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&pool_lock);
	while (!pool_stop) {
		int n = pool_count(pool);

		if (n >= pool_target) {
			if (!logged && pool_target) {
				nd_log(ND_LOG_INFO, "persona key pool: %d SSH host key sets ready for "
				       "clients without a [client] section (%d made in %.0f ms)",
				       n, made, ms_since(&t0));
				logged = 1;
			}
			pthread_cond_wait(&pool_cond, &pool_lock);
			continue;
		}
		if (n >= pool_target / 4 && pool_quiet_wait()) /* sets being taken: later */
			continue;
		if (logged)
			clock_gettime(CLOCK_MONOTONIC, &t0), made = 0, logged = 0;
		pthread_mutex_unlock(&pool_lock);
		if (pool_make_one(pool, err, sizeof(err)) < 0) {
			nd_log(ND_LOG_WARN, "persona key pool: stopped (clients without a [client] "
			       "section get keys made at their first attach): %s", err);
			pthread_mutex_lock(&pool_lock);
			break;
		}
		made++;
		pthread_mutex_lock(&pool_lock);
	}
	pthread_mutex_unlock(&pool_lock);
	free(pool);
	return NULL;
}

/* At start and reload: the pool's size (0 unless an unlisted client may need
 * SSH host keys), and its keeper started once. */
static void pool_start(struct server *s)
{
	char *pool;
	int i, want = 0;

	for (i = 0; i < s->cfg.nimages; i++)
		want |= s->cfg.images[i].persona.on && s->cfg.images[i].persona.ssh_keys;
	pthread_mutex_lock(&pool_lock);
	pool_target = want && s->cfg.allow_unlisted ? (int)s->cfg.persona_key_pool : 0;
	pthread_cond_signal(&pool_cond);
	pthread_mutex_unlock(&pool_lock);
	if (!pool_target || pool_started || !(pool = malloc(PATH_MAX)))
		return;
	snprintf(pool, PATH_MAX, "%s/persona/keys/pool", s->state_dir);
	if (mkdirs(pool) < 0 || pthread_create(&pool_thread, NULL, pool_keeper, pool) != 0) {
		free(pool);
		return;
	}
	pool_started = 1;
}

/* Make the key types missing from STATE/persona/keys/MAC12/ (keys_lock held);
 * with `pool`, a client without any takes a set from the pool if there is one. */
static int make_keys(const char *state_dir, const char *mac12, int pool, char *err, size_t errlen)
{
	char dir[PATH_MAX], key[PATH_MAX + 64], comment[64];
	size_t t;

	snprintf(dir, sizeof(dir), "%s/persona/keys/%s", state_dir, mac12);
	if (pool && access(dir, F_OK) != 0 && pool_take(state_dir, dir) == 0)
		return 0;
	if (mkdirs(dir) < 0)
		return fail(err, errlen, "cannot create %s: mkdir: %s", dir, strerror(errno));
	snprintf(comment, sizeof(comment), "root@netdisk-%s", mac12);
	for (t = 0; t < sizeof(key_types) / sizeof(key_types[0]); t++) {
		snprintf(key, sizeof(key), "%s/ssh_host_%s_key", dir, key_types[t]);
		if (access(key, R_OK) != 0 && keygen(dir, key_types[t], comment, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* Are all of a client's key types there already? */
static int have_keys(const char *state_dir, const char *mac12)
{
	char key[PATH_MAX + 64];
	size_t t;

	for (t = 0; t < sizeof(key_types) / sizeof(key_types[0]); t++) {
		snprintf(key, sizeof(key), "%s/persona/keys/%s/ssh_host_%s_key", state_dir, mac12,
			 key_types[t]);
		if (access(key, R_OK) != 0)
			return 0;
	}
	return 1;
}

static void mac12_of(const char *mac, char mac12[13])
{
	size_t i, k;

	for (i = k = 0; mac[i] && k < 12; i++)
		if (mac[i] != ':')
			mac12[k++] = mac[i];
	mac12[k] = 0;
}

static int ssh_keys(struct persona_job *j, char *err, size_t errlen)
{
	char key[PATH_MAX + 64], tmp[PATH_MAX + 80], mac12[13];
	size_t t;
	int rc = 0;

	mac12_of(j->mac, mac12);
	pthread_mutex_lock(&keys_lock);
	if (make_keys(j->s->state_dir, mac12, 1, err, errlen) < 0) {
		pthread_mutex_unlock(&keys_lock);
		return -1;
	}
	for (t = 0; t < sizeof(key_types) / sizeof(key_types[0]) && !rc; t++) {
		char *priv, *pub;
		size_t plen, qlen;

		snprintf(key, sizeof(key), "%s/persona/keys/%s/ssh_host_%s_key", j->s->state_dir,
			 mac12, key_types[t]);
		priv = slurp(key, &plen);
		snprintf(tmp, sizeof(tmp), "%s.pub", key);
		pub = slurp(tmp, &qlen);
		if (!priv || !pub) {
			free(priv);
			free(pub);
			rc = fail(err, errlen, "cannot read SSH host key %s: %s", key, strerror(errno));
			break;
		}
		snprintf(key, sizeof(key), "/etc/ssh/ssh_host_%s_key", key_types[t]);
		if (add_out(j, key, priv, plen, 0600, 0, 0) < 0)
			rc = fail(err, errlen, "out of memory");
		snprintf(key, sizeof(key), "/etc/ssh/ssh_host_%s_key.pub", key_types[t]);
		if (!rc && add_out(j, key, pub, qlen, 0644, 0, 0) < 0)
			rc = fail(err, errlen, "out of memory");
	}
	pthread_mutex_unlock(&keys_lock);
	return rc;
}

/* The background key maker: the MACs (12 hex digits each) whose keys it makes. */
struct keys_bg {
	char state_dir[PATH_MAX];
	int n;
	char mac12[][13];
};

static void *keys_bg_thread(void *arg)
{
	struct keys_bg *b = arg;
	struct timespec t0;
	char err[512];
	int i, made = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < b->n; i++) {
		pthread_mutex_lock(&keys_lock);
		if (make_keys(b->state_dir, b->mac12[i], 0, err, sizeof(err)) < 0)
			nd_log(ND_LOG_WARN, "persona: SSH host keys of %s not made ahead (its first "
			       "attach makes them): %s", b->mac12[i], err);
		else
			made++;
		pthread_mutex_unlock(&keys_lock);
	}
	nd_log(ND_LOG_INFO, "persona keys made ahead for %d of %d configured client(s) in %.0f ms",
	       made, b->n, ms_since(&t0));
	free(b);
	return NULL;
}

void persona_keys_background(struct server *s)
{
	struct config *c = &s->cfg;
	struct keys_bg *b;
	pthread_attr_t a;
	pthread_t t;
	int i;

	pool_start(s);
	b = calloc(1, sizeof(*b) + sizeof(b->mac12[0]) * (size_t)(c->nclients + 1));
	if (!b)
		return;
	snprintf(b->state_dir, sizeof(b->state_dir), "%s", s->state_dir);
	for (i = 0; i < c->nclients; i++) {
		const struct client_rule *r = &c->clients[i];
		struct image *im = config_image(c, r->image[0] ? r->image : c->default_image);
		const struct persona_image *pi = im ? &im->persona : NULL;
		char mac[18];

		/* the rule of job_resolve: keys when the image asks, or a client
		 * section personalizes an image that has no keys of its own */
		if (!pi || !((pi->on && pi->ssh_keys) || (r->persona.on && !pi->on)))
			continue;
		nd_mac_format(r->mac, mac);
		mac12_of(mac, b->mac12[b->n]);
		if (!have_keys(s->state_dir, b->mac12[b->n]))
			b->n++;
	}
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (!b->n || pthread_create(&t, &a, keys_bg_thread, b) != 0)
		free(b);
	pthread_attr_destroy(&a);
}

/* Everything the layer will hold for this client; 0 or -1 with err. */
static int job_resolve(struct persona_job *j, char *err, size_t errlen)
{
	const struct persona_image *pi = j->pi;
	const struct persona_client *pc = j->r ? &j->r->persona : NULL;
	uint8_t secret[32], in[38], h[EXT2FS_SHA512_LENGTH];
	char *t, idbuf[40];
	size_t len;
	int f;

	nd_mac_format(j->ss->mac, j->mac);
	if (pc && pc->ip) {
		snprintf(j->ip, sizeof(j->ip), "%s", pc->ip);
	} else {
		const char *p = j->ss->peer, *c = strrchr(p, ':');
		size_t n = c ? (size_t)(c - p) : strlen(p);

		if (*p == '[' && n >= 2)
			p++, n -= 2;
		snprintf(j->ip, sizeof(j->ip), "%.*s", (int)n, p);
	}
	if (pc && pc->index)
		snprintf(j->index, sizeof(j->index), "%s", pc->index);
	else if (j->r)
		snprintf(j->index, sizeof(j->index), "%d", (int)(j->r - j->s->cfg.clients) + 1);
	else
		snprintf(j->index, sizeof(j->index), "%02x%02x%02x", j->ss->mac[3], j->ss->mac[4],
			 j->ss->mac[5]);
	snprintf(j->version, sizeof(j->version), "%u", j->ss->vnum);

	if (pc && pc->hostname) {
		snprintf(j->hostname, sizeof(j->hostname), "%s", pc->hostname);
		j->have_hostname = 1;
	} else if (pi->hostname) {
		t = tmpl_expand(pi->hostname, job_var, j, &len, err, errlen);
		if (!t)
			return -1;
		if (!valid_hostname(t)) {
			fail(err, errlen, "the hostname template of image %s gives '%.64s', which is "
			     "not a host name", j->img->name, t);
			free(t);
			return -1;
		}
		snprintf(j->hostname, sizeof(j->hostname), "%s", t);
		free(t);
		j->have_hostname = 1;
	}
	/* The image's own files first: they win over the generated ones. */
	for (f = 0; f < pi->nfiles; f++) {
		char msg[256];

		t = tmpl_expand(pi->files[f].tmpl, job_var, j, &len, msg, sizeof(msg));
		if (!t)
			return fail(err, errlen, "file %s (line %d): %s", pi->files[f].path,
				    pi->files[f].line, msg);
		if (add_out(j, pi->files[f].path, t, len, pi->files[f].mode, pi->files[f].uid,
			    pi->files[f].gid) < 0)
			return fail(err, errlen, "out of memory");
	}
	if (j->have_hostname) {
		char hosts[700];

		snprintf(hosts, sizeof(hosts), "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
			 "::1\tlocalhost ip6-localhost ip6-loopback\n", j->hostname);
		if (add_out(j, "/etc/hostname", (t = malloc(strlen(j->hostname) + 2)) ?
			    strcat(strcpy(t, j->hostname), "\n") : NULL, strlen(j->hostname) + 1,
			    0644, 0, 0) < 0 || !t ||
		    add_out(j, "/etc/hosts", dupn(hosts, &len), strlen(hosts), 0644, 0, 0) < 0)
			return fail(err, errlen, "out of memory");
	}
	if (pi->machine_id || (pc && pc->on && !pi->on)) {
		if (site_secret(j->s, secret, err, errlen) < 0)
			return -1;
		memcpy(in, secret, 32);
		memcpy(in + 32, j->ss->mac, 6);
		ext2fs_sha512(in, sizeof(in), h);
		hex(h, 16, idbuf);
		idbuf[32] = '\n';
		idbuf[33] = 0;
		/* A version 4 UUID's variant and version nibbles, as systemd makes them. */
		idbuf[12] = '4';
		idbuf[16] = "89ab"[h[8] & 3];
		if (add_out(j, "/etc/machine-id", dupn(idbuf, &len), 33, 0444, 0, 0) < 0)
			return fail(err, errlen, "out of memory");
	}
	j->ssh_dir_needed = pi->ssh_keys || (pc && pc->on && !pi->on);
	return 0;
}

/* ---- writing files with libext2fs -------------------------------------------- */

static int fs_fail(char *err, size_t errlen, const char *what, const char *path, errcode_t e)
{
	const char *hint = e == EXT2_ET_BLOCK_ALLOC_FAIL || e == EXT2_ET_INODE_ALLOC_FAIL ||
			   e == EXT2_ET_DIR_NO_SPACE || e == ENOSPC ? " (no space left in the "
			   "image's file system)" : "";

	return fail(err, errlen, "%s %s: %s%s", what, path, error_message(e), hint);
}

/* Drop one link to inode `ino` named `name` in `dir`; free it if it was the last. */
static errcode_t drop(ext2_filsys fs, ext2_ino_t dir, const char *name, ext2_ino_t ino)
{
	struct ext2_inode_large inode;
	errcode_t e = ext2fs_unlink(fs, dir, name, ino, 0);

	if (e || (e = ext2fs_read_inode_full(fs, ino, (struct ext2_inode *)&inode, sizeof(inode))))
		return e;
	if (inode.i_links_count > 1) {
		inode.i_links_count--;
		return ext2fs_write_inode_full(fs, ino, (struct ext2_inode *)&inode, sizeof(inode));
	}
	inode.i_links_count = 0;
	inode.i_dtime = fs->now ? fs->now : time(NULL);
	if (ext2fs_inode_has_valid_blocks2(fs, (struct ext2_inode *)&inode) &&
	    (e = ext2fs_punch(fs, ino, (struct ext2_inode *)&inode, NULL, 0, ~0ULL)))
		return e;
	e = ext2fs_write_inode_full(fs, ino, (struct ext2_inode *)&inode, sizeof(inode));
	if (!e)
		ext2fs_inode_alloc_stats2(fs, ino, -1, 0);
	return e;
}

static int put_file(ext2_filsys fs, const struct out_file *of, char *err, size_t errlen)
{
	char dirpath[260], *slash;
	const char *name;
	ext2_ino_t dir, ino = 0;
	struct ext2_inode inode;
	ext2_file_t file;
	unsigned int written;
	errcode_t e;
	uint32_t now = fs->now ? (uint32_t)fs->now : (uint32_t)time(NULL);

	snprintf(dirpath, sizeof(dirpath), "%s", of->path);
	slash = strrchr(dirpath, '/');
	name = of->path + (slash - dirpath) + 1;
	*slash = 0;
	e = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, dirpath[0] ? dirpath : "/", &dir);
	if (e || (e = ext2fs_read_inode(fs, dir, &inode)) || !LINUX_S_ISDIR(inode.i_mode))
		return fail(err, errlen, "file %s: its directory %s does not exist in the image",
			    of->path, dirpath[0] ? dirpath : "/");
	e = ext2fs_lookup(fs, dir, name, (int)strlen(name), NULL, &ino);
	if (e == 0) {
		if ((e = ext2fs_read_inode(fs, ino, &inode)))
			return fs_fail(err, errlen, "cannot read the inode of", of->path, e);
		if (LINUX_S_ISDIR(inode.i_mode))
			return fail(err, errlen, "file %s is a directory in the image", of->path);
		if (!LINUX_S_ISREG(inode.i_mode)) { /* a symbolic link (or other): replaced */
			if ((e = drop(fs, dir, name, ino)))
				return fs_fail(err, errlen, "cannot remove", of->path, e);
			ino = 0;
		}
	} else {
		ino = 0;
	}
	if (!ino) {
		if ((e = ext2fs_new_inode(fs, dir, LINUX_S_IFREG | 0644, NULL, &ino)))
			return fs_fail(err, errlen, "cannot create", of->path, e);
		e = ext2fs_link(fs, dir, name, ino, EXT2_FT_REG_FILE);
		if (e == EXT2_ET_DIR_NO_SPACE) {
			if ((e = ext2fs_expand_dir(fs, dir)))
				return fs_fail(err, errlen, "cannot grow the directory of", of->path, e);
			e = ext2fs_link(fs, dir, name, ino, EXT2_FT_REG_FILE);
		}
		if (e)
			return fs_fail(err, errlen, "cannot link", of->path, e);
		ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
		memset(&inode, 0, sizeof(inode));
		inode.i_links_count = 1;
		if (ext2fs_has_feature_inline_data(fs->super)) {
			inode.i_flags |= EXT4_INLINE_DATA_FL;
		} else if (ext2fs_has_feature_extents(fs->super)) {
			ext2_extent_handle_t handle;

			inode.i_flags &= ~EXT4_EXTENTS_FL;
			if ((e = ext2fs_extent_open2(fs, ino, &inode, &handle)))
				return fs_fail(err, errlen, "cannot create", of->path, e);
			ext2fs_extent_free(handle);
		}
		inode.i_mode = LINUX_S_IFREG | (of->mode & 07777);
		inode.i_atime = inode.i_ctime = inode.i_mtime = now;
		if ((e = ext2fs_write_new_inode(fs, ino, &inode)))
			return fs_fail(err, errlen, "cannot create", of->path, e);
		if ((inode.i_flags & EXT4_INLINE_DATA_FL) && (e = ext2fs_inline_data_init(fs, ino)))
			return fs_fail(err, errlen, "cannot create", of->path, e);
	}
	if ((e = ext2fs_file_open(fs, ino, EXT2_FILE_WRITE, &file)))
		return fs_fail(err, errlen, "cannot open", of->path, e);
	e = ext2fs_file_set_size2(file, 0);
	if (!e && of->len)
		e = ext2fs_file_write(file, of->data, (unsigned)of->len, &written);
	if (!e && of->len && written != of->len)
		e = EXT2_ET_SHORT_WRITE;
	if (!e)
		e = ext2fs_file_close(file);
	else
		ext2fs_file_close(file);
	if (e)
		return fs_fail(err, errlen, "cannot write", of->path, e);
	if ((e = ext2fs_read_inode(fs, ino, &inode)))
		return fs_fail(err, errlen, "cannot read the inode of", of->path, e);
	inode.i_mode = LINUX_S_IFREG | (of->mode & 07777);
	inode.i_uid = (uint16_t)of->uid;
	ext2fs_set_i_uid_high(inode, of->uid >> 16);
	inode.i_gid = (uint16_t)of->gid;
	ext2fs_set_i_gid_high(inode, of->gid >> 16);
	inode.i_mtime = inode.i_ctime = now;
	if ((e = ext2fs_write_inode(fs, ino, &inode)))
		return fs_fail(err, errlen, "cannot write the inode of", of->path, e);
	return 0;
}

/* Other SSH host keys the image carries (rsa, dsa): every client would share them. */
static int drop_other_keys(ext2_filsys fs, char *err, size_t errlen)
{
	static const char *const others[] = { "rsa", "dsa" };
	char name[64];
	ext2_ino_t dir, ino;
	size_t i, pub;
	errcode_t e;

	if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, "etc/ssh", &dir))
		return 0;
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		for (pub = 0; pub < 2; pub++) {
			snprintf(name, sizeof(name), "ssh_host_%s_key%s", others[i], pub ? ".pub" : "");
			if (ext2fs_lookup(fs, dir, name, (int)strlen(name), NULL, &ino))
				continue;
			if ((e = drop(fs, dir, name, ino)))
				return fs_fail(err, errlen, "cannot remove /etc/ssh/", name, e);
		}
	return 0;
}

/* ---- the layer ----------------------------------------------------------------- */

/* A read-only view of a built personalization delta.  Its version is the
 * version's id mixed with the layer's: a client overlay made over another
 * personalization starts afresh, as over another image version. */
struct persona_layer {
	struct layer l;
	uint64_t id;
};

static int pl_read(struct layer *l, void *buf, size_t len, uint64_t off, int flags)
{
	return l->lower->ops->read(l->lower, buf, len, off, flags);
}

static int pl_write(struct layer *l, const void *buf, size_t len, uint64_t off)
{
	(void)l, (void)buf, (void)len, (void)off;
	return -EROFS;
}

static int pl_flush(struct layer *l)
{
	(void)l;
	return 0;
}

static uint64_t pl_version(struct layer *l)
{
	struct persona_layer *p = (struct persona_layer *)l;

	return layer_version(l->lower->lower) ^ p->id;
}

static void pl_close(struct layer *l)
{
	layer_close(l->lower);
	free(l);
}

static const struct layer_ops persona_ops = {
	.read = pl_read,
	.write = pl_write,
	.flush = pl_flush,
	.version = pl_version,
	.close = pl_close,
};

/* The hash of everything the layer holds, over the version it is built on. */
static uint64_t job_hash(struct persona_job *j, const struct part *pt, char idhex[17])
{
	struct buf b = { NULL, 0, 0 };
	uint8_t h[EXT2FS_SHA512_LENGTH];
	char line[128];
	uint64_t id = 0;
	int i, ok;

	snprintf(line, sizeof(line), "netdisk persona 1\nversion-id %llx\nvnum %u\npart %d\n",
		 (unsigned long long)layer_version(j->vn->top), j->vnum, pt->num);
	ok = buf_add(&b, line, strlen(line)) == 0;
	for (i = 0; ok && i < j->nfiles; i++) {
		const struct out_file *f = &j->files[i];

		snprintf(line, sizeof(line), "\n%zu %o %u %u %zu\n", strlen(f->path), f->mode, f->uid,
			 f->gid, f->len);
		ok = buf_add(&b, line, strlen(line)) == 0 && buf_add(&b, f->path, strlen(f->path)) == 0 &&
		     buf_add(&b, f->data, f->len) == 0;
	}
	ok = ok && buf_add(&b, j->ssh_dir_needed ? "\ndrop-keys\n" : "\n", 1 + 10 * !!j->ssh_dir_needed) == 0;
	if (ok)
		ext2fs_sha512((const unsigned char *)b.p, b.len, h);
	else /* (too big to hash: never cached) */
		getrandom(h, sizeof(h), 0);
	free(b.p);
	for (i = 0; i < 8; i++)
		id = id << 8 | h[i];
	hex(h, 8, idhex);
	return id;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Remove this client's other layers of the image (older versions, templates). */
static void prune(const char *dir, const char *mac12, const char *keep)
{
	char path[PATH_MAX + 300];
	struct dirent *d;
	DIR *dp = opendir(dir);
	size_t n = strlen(mac12);

	if (!dp)
		return;
	while ((d = readdir(dp)))
		if (!strncmp(d->d_name, mac12, n) && d->d_name[n] == '-' &&
		    strncmp(d->d_name, keep, strlen(keep))) {
			snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
			unlink(path);
		}
	closedir(dp);
}

static int mkdir_p2(const char *a, char *err, size_t errlen)
{
	if (mkdirs(a) < 0)
		return fail(err, errlen, "cannot create %s: mkdir: %s", a, strerror(errno));
	return 0;
}

/* Build the layer into data/map (temporary names): 0, or -1 with err and *status. */
static int build(struct persona_job *j, const struct part *pt, const char *data, const char *map,
		 unsigned long *writes, uint64_t *used, unsigned *status, char *err, size_t errlen)
{
	struct layer *delta;
	struct ndio d = { 0 };
	ext2_filsys fs = NULL;
	errcode_t e;
	int i, rc = -1;

	delta = overlay_open_delta(j->vn->top, data, map, OVD_WRITABLE | OVD_CREATE, err, errlen);
	if (!delta) {
		*status = ND_ERR_IO;
		return -1;
	}
	*status = ND_ERR_PERSONA;
	if ((e = fs_open(&d, delta, pt, 1, &fs))) {
		fs_fail(err, errlen, "cannot open the file system of image", j->img->name, e);
		goto out;
	}
	if (ext2fs_has_feature_journal_needs_recovery(fs->super)) {
		fail(err, errlen, "the file system of image %s needs journal recovery (it was not "
		     "unmounted cleanly): run e2fsck on the image", j->img->name);
		goto out;
	}
	if ((e = ext2fs_read_bitmaps(fs))) {
		fs_fail(err, errlen, "cannot read the bitmaps of image", j->img->name, e);
		goto out;
	}
	if (j->ssh_dir_needed) {
		ext2_ino_t ino;

		if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, "etc/ssh", &ino) == 0) {
			if (drop_other_keys(fs, err, errlen) < 0)
				goto out;
		} else { /* no SSH server in the image: no keys */
			for (i = 0; i < j->nfiles; i++)
				if (!strncmp(j->files[i].path, "/etc/ssh/ssh_host_", 18))
					j->files[i].len = (size_t)-1;
		}
	}
	for (i = 0; i < j->nfiles; i++) {
		if (j->files[i].len == (size_t)-1 || is_esp(j->files[i].path))
			continue;
		if (put_file(fs, &j->files[i], err, errlen) < 0)
			goto out;
		crash_point("persona"); /* tests: a crash halfway through the build */
	}
	e = ext2fs_close_free(&fs);
	if (e) {
		fs_fail(err, errlen, "cannot write the file system of image", j->img->name, e);
		goto out;
	}
	for (i = 0; i < j->nfiles; i++) {
		struct part fp;

		if (!is_esp(j->files[i].path))
			continue;
		if (find_fat(delta, &fp) < 0) {
			fail(err, errlen, "file %s: image %s has no FAT partition", j->files[i].path,
			     j->img->name);
			goto out;
		}
		if (fat_put_file(delta, fp.off, fp.len, j->files[i].path + 4, j->files[i].data,
				 j->files[i].len, err, errlen) < 0)
			goto out;
		crash_point("persona");
	}
	if ((rc = layer_flush(delta)) < 0) {
		*status = ND_ERR_IO;
		fail(err, errlen, "cannot write personalization layer %s: fdatasync: %s", data,
		     strerror(-rc));
		goto out;
	}
	*writes = d.writes;
	*used = overlay_used(delta);
	rc = 0;
out:
	if (fs)
		ext2fs_free(fs);
	layer_close(delta);
	if (rc < 0) {
		rc = -1;
		unlink(data);
		unlink(map);
	}
	return rc;
}

/* The client's [client] rule, or NULL. */
static const struct client_rule *rule_of(struct server *s, const uint8_t mac[6])
{
	int i;

	for (i = 0; i < s->cfg.nclients; i++)
		if (!memcmp(s->cfg.clients[i].mac, mac, 6))
			return &s->cfg.clients[i];
	return NULL;
}

/* Under the server lock: what the layer holds (everything but the SSH keys,
 * which job_keys adds) and where it goes.  0, 1 if the session is not
 * personalized, or -1 with *status and err. */
static int job_prepare(struct server *s, struct session *ss, struct persona_job *j,
		       unsigned *status, char *err, size_t errlen)
{
	char msg[512], keys[PATH_MAX + 16];

	j->r = rule_of(s, ss->mac);
	if (!ss->img->persona.on && !(j->r && j->r->persona.on))
		return 1;
	j->s = s, j->ss = ss, j->pi = &ss->img->persona, j->img = ss->img;
	j->vn = ss->vn, j->vnum = ss->vnum;
	*status = ND_ERR_PERSONA;
	if (choose_part(ss->vn->top, j->pi, ss->img->name, &j->pt, msg, sizeof(msg)) < 0)
		return fail(err, errlen, "personalization: %s (version %u)", msg, ss->vnum);
	snprintf(j->dir, sizeof(j->dir), "%s/persona/%s", s->state_dir, ss->img->name);
	snprintf(keys, sizeof(keys), "%s/persona/keys", s->state_dir);
	if (mkdir_p2(j->dir, msg, sizeof(msg)) < 0 || mkdir_p2(keys, msg, sizeof(msg)) < 0) {
		*status = ND_ERR_IO;
		return fail(err, errlen, "personalization: %s", msg);
	}
	if (job_resolve(j, msg, sizeof(msg)) < 0)
		return fail(err, errlen, "personalization of image %s: %s", ss->img->name, msg);
	mac12_of(j->mac, j->mac12);
	j->ss = NULL, j->pi = NULL, j->r = NULL; /* not past the lock */
	return 0;
}

/* Are the client's SSH host keys there to be read at once (no ssh-keygen to
 * wait for, nor the key maker's lock)? */
static int job_keys_ready(struct persona_job *j)
{
	int ok;

	if (!j->ssh_dir_needed)
		return 1;
	if (pthread_mutex_trylock(&keys_lock))
		return 0;
	ok = have_keys(j->s->state_dir, j->mac12);
	pthread_mutex_unlock(&keys_lock);
	return ok;
}

/* The SSH keys, the layer's id and names: 0, or -1 with *status and err. */
static int job_name(struct persona_job *j, unsigned *status, char *err, size_t errlen)
{
	char msg[512], base[64];

	*status = ND_ERR_PERSONA;
	if (j->ssh_dir_needed && ssh_keys(j, msg, sizeof(msg)) < 0)
		return fail(err, errlen, "personalization of image %s: %s", j->img->name, msg);
	j->id = job_hash(j, &j->pt, j->idhex);
	snprintf(base, sizeof(base), "%s-%s", j->mac12, j->idhex);
	snprintf(j->data, sizeof(j->data), "%s/%s.data", j->dir, base);
	snprintf(j->map, sizeof(j->map), "%s/%s.map", j->dir, base);
	return 0;
}

static int job_cached(const struct persona_job *j)
{
	struct stat st;

	return stat(j->map, &st) == 0 && stat(j->data, &st) == 0;
}

/* An open layer's size for the log: its allocated blocks plus its map. */
static uint64_t layer_bytes(const struct persona_job *j, struct layer *l)
{
	struct stat st;

	return overlay_used(l->lower) + (stat(j->map, &st) == 0 ? (uint64_t)st.st_size : 0);
}

/* Test knob: NETDISKD_PERSONA_DELAY_MS makes every build that long slower
 * (tests/t-persona.sh watches other clients being served meanwhile). */
static void test_delay(void)
{
	const char *v = getenv("NETDISKD_PERSONA_DELAY_MS");

	if (v && atoi(v) > 0)
		usleep((useconds_t)atoi(v) * 1000);
}

/* The slow part, without the server lock: make the SSH keys if need be, and
 * build the layer unless it is there; 0, or -1 with *status and err. */
static int job_make(struct persona_job *j, unsigned *status, char *err, size_t errlen)
{
	char tdata[PATH_MAX + 96], tmap[PATH_MAX + 96], msg[512];
	unsigned long writes = 0;
	uint64_t used = 0;
	struct timespec t0;
	struct stat st;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (job_name(j, status, err, errlen) < 0)
		return -1;
	if (job_cached(j))
		return 0;
	nd_log(ND_LOG_INFO, "persona building mac=%s image=%s version=%u", j->mac, j->img->name,
	       j->vnum);
	test_delay();
	snprintf(tdata, sizeof(tdata), "%s/%s.tmp.data", j->dir, j->mac12);
	snprintf(tmap, sizeof(tmap), "%s/%s.tmp.map", j->dir, j->mac12);
	if (build(j, &j->pt, tdata, tmap, &writes, &used, status, msg, sizeof(msg)) < 0)
		return fail(err, errlen, "personalization of image %s version %u, partition %d: %s",
			    j->img->name, j->vnum, j->pt.num, msg);
	/* The data first: a map without its data never looks complete. */
	crash_point("persona");
	if (rename(tdata, j->data) < 0 || (crash_point("persona"), rename(tmap, j->map) < 0)) {
		*status = ND_ERR_IO;
		fail(err, errlen, "personalization: cannot keep layer %s: rename: %s", j->data,
		     strerror(errno));
		unlink(tdata), unlink(tmap), unlink(j->data);
		return -1;
	}
	snprintf(msg, sizeof(msg), "%s-%s", j->mac12, j->idhex);
	prune(j->dir, j->mac12, msg);
	j->built = 1;
	nd_log(ND_LOG_INFO, "persona built mac=%s image=%s version=%u layer=%s partition=%d "
	       "hostname=%s files=%d ms=%.1f bytes=%llu writes=%lu", j->mac, j->img->name, j->vnum,
	       j->idhex, j->pt.num, j->have_hostname ? j->hostname : "-", j->nfiles, ms_since(&t0),
	       (unsigned long long)(used + (stat(j->map, &st) == 0 ? (uint64_t)st.st_size : 0)),
	       writes);
	return 0;
}

/* The built layer, opened over the version: the persona layer, or NULL with
 * *status and err. */
static struct layer *job_open(struct persona_job *j, unsigned *status, char *err, size_t errlen)
{
	struct persona_layer *pl;
	struct layer *delta;
	char msg[512];

	*status = ND_ERR_IO;
	delta = overlay_open_delta(j->vn->top, j->data, j->map, 0, msg, sizeof(msg));
	if (!delta) {
		fail(err, errlen, "personalization: %s", msg);
		unlink(j->data), unlink(j->map); /* rebuilt at the next attach */
		return NULL;
	}
	pl = calloc(1, sizeof(*pl));
	if (!pl) {
		layer_close(delta);
		fail(err, errlen, "out of memory");
		return NULL;
	}
	pl->l.ops = &persona_ops;
	pl->l.lower = delta;
	pl->l.size = delta->size;
	pl->id = j->id;
	*status = 0;
	return &pl->l;
}

/* ---- builds off the main loop ------------------------------------------------ */

#define PERSONA_WORKERS 2  /* builds at once (libext2fs and ssh-keygen: CPU) */
#define DONE_KEEP_S 120    /* a finished build's result waits this long for its client */

/* A client's build, queued, running or finished; one per client and image. */
struct pending {
	struct pending *next;
	uint8_t mac[6];
	const struct image *img;
	enum { P_QUEUED, P_BUILDING, P_DONE } state;
	unsigned status;     /* its result (P_DONE): 0, or why not */
	char err[512];
	time_t finished;
	struct persona_job job;
	void (*done)(struct server *s, void *arg); /* answer the waiting ATTACH */
	void *arg;           /* ... its copy of it (freed with free()) */
};

static pthread_mutex_t pend_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pend_work = PTHREAD_COND_INITIALIZER;  /* a job was queued, or stop */
static pthread_cond_t pend_done = PTHREAD_COND_INITIALIZER;  /* a job finished */
static struct pending *pend_list;
static pthread_t workers[PERSONA_WORKERS];
static int nworkers, pend_stop;

/* The client's build (pend_lock held), dropping finished ones nobody came
 * back for. */
static struct pending *pend_find(const uint8_t mac[6], const struct image *img)
{
	struct pending **pp = &pend_list, *p;
	time_t now = time(NULL);

	while ((p = *pp)) {
		if (p->state == P_DONE && now - p->finished > DONE_KEEP_S) {
			*pp = p->next;
			job_free(&p->job);
			free(p->arg);
			free(p);
			continue;
		}
		if (!memcmp(p->mac, mac, 6) && p->img == img)
			return p;
		pp = &p->next;
	}
	return NULL;
}

static void pend_unlink(struct pending *p)
{
	struct pending **pp = &pend_list;

	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
}

/* A worker: takes queued builds one at a time and builds them without the
 * server lock; then, under it, gives the version back and answers the
 * waiting ATTACH (its `done`), which finds the layer built. */
static void *persona_worker(void *arg)
{
	struct server *s = arg;
	struct pending *p;

	pthread_mutex_lock(&pend_lock);
	while (!pend_stop) {
		void (*done)(struct server *, void *);
		void *darg;

		for (p = pend_list; p && p->state != P_QUEUED; p = p->next)
			;
		if (!p) {
			pthread_cond_wait(&pend_work, &pend_lock);
			continue;
		}
		p->state = P_BUILDING;
		pthread_mutex_unlock(&pend_lock);
		p->status = 0;
		if (job_make(&p->job, &p->status, p->err, sizeof(p->err)) == 0)
			p->status = 0;
		else if (!p->status)
			p->status = ND_ERR_IO;
		pthread_rwlock_wrlock(&s->lock);
		store_release(p->job.vn);
		p->job.vn = NULL;
		pthread_mutex_lock(&pend_lock);
		p->state = P_DONE;
		p->finished = time(NULL);
		done = p->done, darg = p->arg;
		p->done = NULL, p->arg = NULL;
		pthread_cond_broadcast(&pend_done);
		pthread_mutex_unlock(&pend_lock);
		if (done)
			done(s, darg); /* p may be gone after this */
		pthread_rwlock_unlock(&s->lock);
		pthread_mutex_lock(&pend_lock);
	}
	pthread_mutex_unlock(&pend_lock);
	return NULL;
}

/* Queue the job at the end (pend_lock held): builds go in arrival order.
 * 0; -2 if max-sessions builds wait already; -1 if no worker can be had. */
static int pend_queue(struct server *s, struct session *ss, struct persona_job *j)
{
	struct pending *p, **pp = &pend_list;
	unsigned waiting = 0;

	for (; *pp; pp = &(*pp)->next)
		waiting += (*pp)->state != P_DONE;
	if (waiting >= s->cfg.max_sessions)
		return -2;
	while (nworkers < PERSONA_WORKERS &&
	       pthread_create(&workers[nworkers], NULL, persona_worker, s) == 0)
		nworkers++;
	if (!nworkers || !(p = calloc(1, sizeof(*p))))
		return -1;
	memcpy(p->mac, ss->mac, 6);
	p->img = ss->img;
	p->job = *j;
	p->job.vn->refs++; /* (server lock held) given back by the worker, under it */
	memset(j, 0, sizeof(*j)); /* its files are the queued job's now */
	*pp = p;
	pthread_cond_signal(&pend_work);
	return 0;
}

int persona_pending(struct server *s, const uint8_t mac[6], const struct image *img)
{
	struct pending *p;
	int busy;

	(void)s;
	pthread_mutex_lock(&pend_lock);
	p = pend_find(mac, img);
	busy = p && p->state != P_DONE;
	pthread_mutex_unlock(&pend_lock);
	return busy;
}

void *persona_deferred(struct server *s, const uint8_t mac[6])
{
	struct pending *p;
	void *arg;

	(void)s;
	pthread_mutex_lock(&pend_lock);
	for (p = pend_list; p && (memcmp(p->mac, mac, 6) || p->state == P_DONE); p = p->next)
		;
	arg = p ? p->arg : NULL;
	pthread_mutex_unlock(&pend_lock);
	return arg;
}

void persona_defer(struct server *s, const uint8_t mac[6],
		   void (*done)(struct server *s, void *arg), void *arg)
{
	struct pending *p;

	(void)s;
	pthread_mutex_lock(&pend_lock);
	for (p = pend_list; p && (memcmp(p->mac, mac, 6) || p->state == P_DONE); p = p->next)
		;
	if (p) {
		free(p->arg); /* the latest ATTACH is the one answered */
		p->done = done, p->arg = arg;
		arg = NULL;
	}
	pthread_mutex_unlock(&pend_lock);
	free(arg);
}

/* Is a build of the client's (any image) queued or running?  (pend_lock held) */
static int pend_busy(const uint8_t mac[6])
{
	struct pending *p;

	for (p = pend_list; p; p = p->next)
		if (!memcmp(p->mac, mac, 6) && p->state != P_DONE)
			return 1;
	return 0;
}

int persona_wait(struct server *s, const uint8_t mac[6], unsigned timeout_s)
{
	struct timespec until;
	int rc = 0;

	(void)s;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_s;
	pthread_mutex_lock(&pend_lock);
	while (pend_busy(mac) && !rc)
		rc = pthread_cond_timedwait(&pend_done, &pend_lock, &until);
	pthread_mutex_unlock(&pend_lock);
	return rc ? -1 : 0;
}

void persona_shutdown(void)
{
	struct pending *p;
	int i;

	pthread_mutex_lock(&pool_lock);
	pool_stop = 1;
	pthread_cond_signal(&pool_cond);
	pthread_mutex_unlock(&pool_lock);
	if (pool_started)
		pthread_join(pool_thread, NULL);
	pool_started = 0;

	pthread_mutex_lock(&pend_lock);
	pend_stop = 1;
	pthread_cond_broadcast(&pend_work);
	pthread_mutex_unlock(&pend_lock);
	for (i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	nworkers = 0;
	while ((p = pend_list)) { /* (the server lock held, for the versions) */
		pend_list = p->next;
		store_release(p->job.vn);
		job_free(&p->job);
		free(p->arg);
		free(p);
	}
}

struct layer *persona_open(struct server *s, struct session *ss, uint64_t *id, unsigned *status,
			   int async, char *err, size_t errlen)
{
	struct persona_job j = { 0 };
	struct pending *p;
	struct layer *l = NULL;
	struct timespec t0;
	int quiet = 0, rc;

	*status = 0;
	if (async) {
		/* A build of this client's finished: its result, once. */
		pthread_mutex_lock(&pend_lock);
		p = pend_find(ss->mac, ss->img);
		if (p && p->state != P_DONE) {
			pthread_mutex_unlock(&pend_lock);
			*status = ND_PERSONA_PENDING;
			return NULL;
		}
		if (p) {
			pend_unlink(p);
			*status = p->status;
			snprintf(err, errlen, "%s", p->err);
			quiet = p->job.built; /* it said "built" */
			job_free(&p->job);
			free(p->arg);
			free(p);
		}
		pthread_mutex_unlock(&pend_lock);
		if (*status)
			return NULL;
	}
	rc = job_prepare(s, ss, &j, status, err, errlen);
	if (rc) {
		job_free(&j);
		if (rc > 0)
			*status = 0;
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (async) {
		int need = !job_keys_ready(&j);

		if (!need && job_name(&j, status, err, errlen) < 0)
			goto out;
		if (need || !job_cached(&j)) {
			/* Keys to make or a layer to build: a worker does it, and
			 * the ATTACH is answered when it is done. */
			pthread_mutex_lock(&pend_lock);
			rc = pend_queue(s, ss, &j);
			pthread_mutex_unlock(&pend_lock);
			if (rc == 0) {
				*status = ND_PERSONA_PENDING;
				goto out;
			}
			if (rc == -2) {
				*status = ND_ERR_BUSY;
				fail(err, errlen, "server full: max-sessions personalization layers are "
				     "being built already");
				goto out;
			} /* else no worker: built here */
		}
	}
	if (job_make(&j, status, err, errlen) < 0 || !(l = job_open(&j, status, err, errlen)))
		goto out;
	*id = j.id;
	if (!j.built && !quiet)
		nd_log(ND_LOG_INFO, "persona reused mac=%s image=%s version=%u layer=%s partition=%d "
		       "hostname=%s files=%d ms=%.1f bytes=%llu writes=0", j.mac, ss->img->name,
		       ss->vnum, j.idhex, j.pt.num, j.have_hostname ? j.hostname : "-", j.nfiles,
		       ms_since(&t0), (unsigned long long)layer_bytes(&j, l));
out:
	job_free(&j);
	return l;
}
