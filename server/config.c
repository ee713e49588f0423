/* netdiskd's configuration: defaults, the config file parser and its checks. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "netdiskd.h"

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "0.0.0.0:%d", ND_DEFAULT_PORT);
	c->allow_unlisted = 1;
	c->session_timeout = 300;
	c->max_dgram = ND_MAX_DGRAM;
	c->window = 64;
	c->max_sessions = 1024;
	c->trace_max = 1000000;
}

/* Image names become file names under the state directory: keep them tame. */
static int valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > NAME_MAX_LEN || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

struct image *config_image(struct config *c, const char *name)
{
	int i;

	for (i = 0; i < c->nimages; i++)
		if (!strcmp(c->images[i].name, name))
			return &c->images[i];
	return NULL;
}

int config_add_image(struct config *c, const char *name, const char *path, int mode,
		     char *err, size_t errlen)
{
	struct image *im;

	if (!valid_name(name)) {
		snprintf(err, errlen, "bad image name '%s' (letters, digits, '.', '_', '-'; "
			 "at most %d)", name, NAME_MAX_LEN);
		return -1;
	}
	if (config_image(c, name)) {
		snprintf(err, errlen, "image '%s' defined twice", name);
		return -1;
	}
	im = realloc(c->images, sizeof(*im) * (size_t)(c->nimages + 1));
	if (!im) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->images = im;
	im = &c->images[c->nimages++];
	memset(im, 0, sizeof(*im));
	snprintf(im->name, sizeof(im->name), "%s", name);
	snprintf(im->path, sizeof(im->path), "%s", path);
	im->mode = mode ? mode : ND_MODE_VOLATILE;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || !*v || *end || n < lo || n > hi)
		return -1;
	*out = (unsigned)n;
	return 0;
}

/* The section a line belongs to. */
enum section { SEC_GLOBAL, SEC_IMAGE, SEC_CLIENT };

struct parser {
	struct config *c;
	const char *file;
	char dir[PATH_MAX]; /* the config file's directory, for relative paths */
	int line;
	enum section sec;
	char *err;
	size_t errlen;
};

static int bad(struct parser *p, const char *what, const char *arg)
{
	snprintf(p->err, p->errlen, "%s:%d: %s '%s'", p->file, p->line, what, arg);
	return -1;
}

static int section_header(struct parser *p, char *s)
{
	struct config *c = p->c;
	char *kind = trim(s + 1), *arg, *close = strchr(kind, ']');

	if (!close || *trim(close + 1))
		return bad(p, "malformed section header", s);
	*close = 0;
	arg = strchr(kind, ' ');
	if (!arg)
		return bad(p, "section needs a name", kind);
	*arg++ = 0;
	arg = trim(arg);
	if (!strcmp(kind, "image")) {
		char msg[256];

		if (config_add_image(c, arg, "", 0, msg, sizeof(msg)) < 0)
			return bad(p, msg, arg);
		p->sec = SEC_IMAGE;
		return 0;
	}
	if (!strcmp(kind, "client")) {
		struct client_rule *r = realloc(c->clients, sizeof(*r) * (size_t)(c->nclients + 1));

		if (!r)
			return bad(p, "out of memory", arg);
		c->clients = r;
		r = &c->clients[c->nclients];
		memset(r, 0, sizeof(*r));
		if (nd_mac_parse(arg, r->mac) < 0)
			return bad(p, "bad MAC address (want aa:bb:cc:dd:ee:ff)", arg);
		c->nclients++;
		p->sec = SEC_CLIENT;
		return 0;
	}
	return bad(p, "unknown section", kind);
}

static int global_key(struct parser *p, const char *k, const char *v)
{
	struct config *c = p->c;

	if (!strcmp(k, "listen"))
		snprintf(c->listen, sizeof(c->listen), "%s", v);
	else if (!strcmp(k, "state-dir"))
		snprintf(c->state_dir, sizeof(c->state_dir), "%s", v);
	else if (!strcmp(k, "default-image"))
		snprintf(c->default_image, sizeof(c->default_image), "%s", v);
	else if (!strcmp(k, "allow")) {
		if (strcmp(v, "any") && strcmp(v, "listed"))
			return bad(p, "allow must be 'any' or 'listed', not", v);
		c->allow_unlisted = !strcmp(v, "any");
	} else if (!strcmp(k, "session-timeout")) {
		if (parse_uint(v, 10, 86400, &c->session_timeout) < 0)
			return bad(p, "session-timeout must be 10..86400 seconds, not", v);
	} else if (!strcmp(k, "max-datagram")) {
		if (parse_uint(v, ND_MIN_DGRAM, ND_MAX_DGRAM, &c->max_dgram) < 0)
			return bad(p, "max-datagram must be 576..65024, not", v);
	} else if (!strcmp(k, "max-sessions")) {
		if (parse_uint(v, 1, 1000000, &c->max_sessions) < 0)
			return bad(p, "max-sessions must be 1..1000000, not", v);
	} else if (!strcmp(k, "trace-dir")) {
		if (snprintf(c->trace_dir, sizeof(c->trace_dir), "%s", v) >= (int)sizeof(c->trace_dir) - 128)
			return bad(p, "trace-dir too long", v);
	} else if (!strcmp(k, "trace-max")) {
		if (parse_uint(v, 1, 100000000, &c->trace_max) < 0)
			return bad(p, "trace-max must be 1..100000000 reads, not", v);
	} else if (!strcmp(k, "window")) {
		if (parse_uint(v, 1, 1024, &c->window) < 0)
			return bad(p, "window must be 1..1024, not", v);
	} else {
		return bad(p, "unknown key", k);
	}
	return 0;
}

static int image_key(struct parser *p, const char *k, const char *v)
{
	struct image *im = &p->c->images[p->c->nimages - 1];

	if (!strcmp(k, "path")) {
		int n = v[0] == '/' || !p->dir[0]
			? snprintf(im->path, sizeof(im->path), "%s", v)
			: snprintf(im->path, sizeof(im->path), "%s/%s", p->dir, v);

		if ((size_t)n >= sizeof(im->path))
			return bad(p, "path too long", v);
	} else if (!strcmp(k, "mode")) {
		im->mode = nd_mode_parse(v);
		if (!im->mode)
			return bad(p, "mode must be direct, volatile, persistent or readonly, not", v);
	} else {
		return bad(p, "unknown image key", k);
	}
	return 0;
}

static int client_key(struct parser *p, const char *k, const char *v)
{
	struct client_rule *r = &p->c->clients[p->c->nclients - 1];

	if (!strcmp(k, "image")) {
		if (strlen(v) > NAME_MAX_LEN)
			return bad(p, "image name too long", v);
		snprintf(r->image, sizeof(r->image), "%s", v);
	} else if (!strcmp(k, "mode")) {
		r->mode = nd_mode_parse(v);
		if (!r->mode)
			return bad(p, "mode must be direct, volatile, persistent or readonly, not", v);
	} else {
		return bad(p, "unknown client key", k);
	}
	return 0;
}

static int parse_line(struct parser *p, char *s)
{
	char *eq, *k, *v;

	s = trim(s);
	if (!*s || *s == '#' || *s == ';')
		return 0;
	if (*s == '[')
		return section_header(p, s);
	eq = strchr(s, '=');
	if (!eq)
		return bad(p, "expected KEY = VALUE, got", s);
	*eq = 0;
	k = trim(s);
	v = trim(eq + 1);
	if (!*v)
		return bad(p, "empty value for", k);
	switch (p->sec) {
	case SEC_IMAGE:
		return image_key(p, k, v);
	case SEC_CLIENT:
		return client_key(p, k, v);
	default:
		return global_key(p, k, v);
	}
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct parser p = { c, path, "", 0, SEC_GLOBAL, err, errlen };
	char buf[4096], *slash;
	FILE *f = fopen(path, "r");
	int rc = 0;

	if (!f) {
		snprintf(err, errlen, "cannot open config %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(p.dir, sizeof(p.dir), "%s", path);
	slash = strrchr(p.dir, '/');
	if (slash)
		*slash = 0;
	else
		p.dir[0] = 0;
	while (rc == 0 && fgets(buf, sizeof(buf), f)) {
		p.line++;
		if (!strchr(buf, '\n') && !feof(f))
			rc = bad(&p, "line too long", "");
		else
			rc = parse_line(&p, buf);
	}
	fclose(f);
	return rc;
}

/* Cross-checks once everything (file and command line) is in. */
int config_check(struct config *c, char *err, size_t errlen)
{
	int i;

	if (c->nimages == 0) {
		snprintf(err, errlen, "no image to serve (give IMAGE or --config with [image NAME])");
		return -1;
	}
	for (i = 0; i < c->nimages; i++) {
		struct image *im = &c->images[i];

		if (!im->path[0]) {
			snprintf(err, errlen, "image '%s' has no path", im->name);
			return -1;
		}
		if (im->mode == ND_MODE_PERSISTENT && !c->state_dir[0]) {
			snprintf(err, errlen, "image '%s' is persistent: give a state directory "
				 "(--state-dir or state-dir =) to keep overlays in", im->name);
			return -1;
		}
	}
	for (i = 0; i < c->nclients; i++) {
		struct client_rule *r = &c->clients[i];
		char mac[18];

		nd_mac_format(r->mac, mac);
		if (r->image[0] && !config_image(c, r->image)) {
			snprintf(err, errlen, "client %s: no image '%s'", mac, r->image);
			return -1;
		}
		if (r->mode == ND_MODE_PERSISTENT && !c->state_dir[0]) {
			snprintf(err, errlen, "client %s is persistent: give a state directory", mac);
			return -1;
		}
	}
	if (c->default_image[0] && !config_image(c, c->default_image)) {
		snprintf(err, errlen, "default-image '%s' is not defined", c->default_image);
		return -1;
	}
	if (!c->default_image[0])
		snprintf(c->default_image, sizeof(c->default_image), "%s", c->images[0].name);
	return 0;
}

void config_free(struct config *c)
{
	free(c->images);
	free(c->clients);
	c->images = NULL;
	c->clients = NULL;
}
