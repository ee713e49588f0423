/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdiskd's configuration: defaults, the config file parser and its checks. */

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "netdiskd.h"
#include "iscsi.h"

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "0.0.0.0:%d", ND_DEFAULT_PORT);
	c->allow_unlisted = 1;
	c->session_timeout = 300;
	c->max_dgram = ND_MAX_DGRAM;
	c->window = 64;
	c->max_sessions = 1024;
	c->persona_key_pool = 32;
	c->nbd_handshake_timeout = 10;
	c->nbd_idle_timeout = 3600;
	c->nbd_io_timeout = 30;
	c->nbd_memory_mib = 256;
	c->nbd_connect_rate = 16;
	c->nbd_per_address = 64;
	c->trace_max = 1000000;
	c->boot_limit = 300;
	snprintf(c->iscsi_prefix, sizeof(c->iscsi_prefix), "%s", ISCSI_DEFAULT_PREFIX);
	c->nbd_exports = NBD_EXPORTS_SESSIONS; /* anonymous NBD never names an image */
	c->iscsi_exports = NBD_EXPORTS_SESSIONS; /* nor an unlisted iSCSI initiator */
	/* direct and maintenance mode need the admins' key, kept in the state
	 * directory unless the admin names one (docs/security.md) */
	snprintf(c->admin_key_file, sizeof(c->admin_key_file), "auto");
	mcast_config_defaults(&c->mc);
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

struct client_rule *config_client(struct config *c, const uint8_t mac[6])
{
	int i;

	for (i = 0; i < c->nclients; i++)
		if (!memcmp(c->clients[i].mac, mac, 6))
			return &c->clients[i];
	return NULL;
}

struct client_rule *config_client_iqn(struct config *c, const char *iqn)
{
	int i;

	for (i = 0; i < c->nclients; i++)
		if (c->clients[i].iscsi_initiator[0] && !strcasecmp(c->clients[i].iscsi_initiator, iqn))
			return &c->clients[i];
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

/* A personalization key's error, which says what was wrong itself. */
static int persona_bad(struct parser *p, const char *msg)
{
	snprintf(p->err, p->errlen, "%s:%d: %s", p->file, p->line, msg);
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
		for (int i = 0; i < c->nclients; i++)
			if (!memcmp(c->clients[i].mac, r->mac, 6)) {
				snprintf(p->err, p->errlen, "%s:%d: client %s already has a section "
					 "at line %d (one [client] section per MAC)", p->file, p->line,
					 arg, c->clients[i].line);
				return -1;
			}
		r->line = p->line;
		c->nclients++;
		p->sec = SEC_CLIENT;
		return 0;
	}
	return bad(p, "unknown section", kind);
}

/* The numeric global keys: name, range, what the number counts, and field. */
static const struct uint_key {
	const char *name;
	unsigned lo, hi;
	const char *unit;
	size_t field;
} uint_keys[] = {
	{ "session-timeout", 10, 86400, "seconds", offsetof(struct config, session_timeout) },
	{ "max-datagram", ND_MIN_DGRAM, ND_MAX_DGRAM, "", offsetof(struct config, max_dgram) },
	{ "max-sessions", 1, 1000000, "", offsetof(struct config, max_sessions) },
	{ "window", 1, 1024, "", offsetof(struct config, window) },
	{ "nbd-handshake-timeout", 1, 3600, "seconds",
	  offsetof(struct config, nbd_handshake_timeout) },
	{ "nbd-idle-timeout", 0, 604800, "seconds (0: never)",
	  offsetof(struct config, nbd_idle_timeout) },
	{ "nbd-io-timeout", 1, 3600, "seconds", offsetof(struct config, nbd_io_timeout) },
	{ "nbd-memory", 64, 1048576, "MiB", offsetof(struct config, nbd_memory_mib) },
	{ "nbd-connect-rate", 0, 100000, "a second (0: no limit)",
	  offsetof(struct config, nbd_connect_rate) },
	{ "nbd-per-address", 0, 1000000, "connections (0: no limit)",
	  offsetof(struct config, nbd_per_address) },
	{ "trace-max", 1, 100000000, "reads", offsetof(struct config, trace_max) },
	{ "boot-limit", 10, 86400, "seconds", offsetof(struct config, boot_limit) },
	{ "persona-key-pool", 0, 100000, "key sets (0: none)",
	  offsetof(struct config, persona_key_pool) },
};

/* A numeric key: 1 if k is one (0 or -1 from setting it in *rc), else 0. */
static int numeric_key(struct parser *p, const char *k, const char *v, int *rc)
{
	char what[128];
	size_t i;

	for (i = 0; i < sizeof(uint_keys) / sizeof(uint_keys[0]); i++) {
		const struct uint_key *u = &uint_keys[i];

		if (strcmp(k, u->name))
			continue;
		*rc = 0;
		if (parse_uint(v, u->lo, u->hi, (unsigned *)((char *)p->c + u->field)) < 0) {
			snprintf(what, sizeof(what), "%s must be %u..%u%s%s, not", u->name, u->lo,
				 u->hi, u->unit[0] ? " " : "", u->unit);
			*rc = bad(p, what, v);
		}
		return 1;
	}
	return 0;
}

/* takeover = nbd|iscsi (global, [image] and [client]): how the OS takes the
 * firmware's session over (docs/handoff.md). */
static int takeover_key(struct parser *p, int *dst, const char *v)
{
	if (strcmp(v, "nbd") && strcmp(v, "iscsi"))
		return bad(p, "takeover must be nbd or iscsi, not", v);
	*dst = !strcmp(v, "nbd") ? TAKEOVER_NBD : TAKEOVER_ISCSI;
	return 0;
}

static int global_key(struct parser *p, const char *k, const char *v)
{
	struct config *c = p->c;
	char msg[160];
	int rc;

	if (numeric_key(p, k, v, &rc))
		return rc;
	if ((rc = mcast_config_key(&c->mc, k, v, msg, sizeof(msg))) != 0)
		return rc < 0 ? bad(p, msg, v) : 0;
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
	} else if (!strcmp(k, "control")) {
		if (snprintf(c->control, sizeof(c->control), "%s", v) >= 108)
			return bad(p, "control socket path too long (at most 107 bytes)", v);
	} else if (!strcmp(k, "metrics-listen")) {
		char host[128];
		unsigned port = 0;

		if (nd_split_hostport(v, host, sizeof(host), &port, 0) < 0 || !port || !host[0] ||
		    snprintf(c->metrics_listen, sizeof(c->metrics_listen), "%s", v) >=
			    (int)sizeof(c->metrics_listen))
			return bad(p, "metrics-listen must be ADDR:PORT (e.g. 127.0.0.1:9810), not", v);
	} else if (!strcmp(k, "nbd-tls")) {
		if (strcmp(v, "off") && strcmp(v, "on") && strcmp(v, "require"))
			return bad(p, "nbd-tls must be off, on or require, not", v);
		c->nbd_tls = !strcmp(v, "off") ? NBD_TLS_OFF : !strcmp(v, "on") ? NBD_TLS_ON
										: NBD_TLS_REQUIRE;
	} else if (!strcmp(k, "nbd-tls-psk-file")) {
		if (snprintf(c->nbd_tls_psk_file, sizeof(c->nbd_tls_psk_file), "%s", v) >=
		    (int)sizeof(c->nbd_tls_psk_file))
			return bad(p, "nbd-tls-psk-file too long", v);
	} else if (!strcmp(k, "nbd-tls-certificates")) {
		if (snprintf(c->nbd_tls_certificates, sizeof(c->nbd_tls_certificates), "%s", v) >=
		    (int)sizeof(c->nbd_tls_certificates) - 32)
			return bad(p, "nbd-tls-certificates too long", v);
	} else if (!strcmp(k, "nbd-exports")) {
		if (strcmp(v, "images") && strcmp(v, "sessions") && strcmp(v, "off"))
			return bad(p, "nbd-exports must be images, sessions or off, not", v);
		c->nbd_exports = !strcmp(v, "images") ? NBD_EXPORTS_IMAGES
				 : !strcmp(v, "sessions") ? NBD_EXPORTS_SESSIONS : NBD_EXPORTS_OFF;
	} else if (!strcmp(k, "iscsi-exports")) {
		if (strcmp(v, "images") && strcmp(v, "sessions") && strcmp(v, "off"))
			return bad(p, "iscsi-exports must be images, sessions or off, not", v);
		c->iscsi_exports = !strcmp(v, "images") ? NBD_EXPORTS_IMAGES
				   : !strcmp(v, "sessions") ? NBD_EXPORTS_SESSIONS : NBD_EXPORTS_OFF;
	} else if (!strcmp(k, "nbd-session-binding")) {
		if (strcmp(v, "address") && strcmp(v, "any"))
			return bad(p, "nbd-session-binding must be address or any, not", v);
		c->nbd_session_any_address = !strcmp(v, "any");
	} else if (!strcmp(k, "iscsi-listen")) {
		char host[128];
		unsigned port = 0;
		int n;

		if (nd_split_hostport(v, host, sizeof(host), &port, 0) < 0 || !host[0])
			return bad(p, "iscsi-listen must be ADDR[:PORT] (e.g. 0.0.0.0:3260), not", v);
		n = port ? snprintf(c->iscsi_listen, sizeof(c->iscsi_listen), "%s", v)
			 : snprintf(c->iscsi_listen, sizeof(c->iscsi_listen), strchr(host, ':')
				    ? "[%s]:%u" : "%s:%u", host, ISCSI_DEFAULT_PORT);
		if (n >= (int)sizeof(c->iscsi_listen))
			return bad(p, "iscsi-listen too long", v);
	} else if (!strcmp(k, "iscsi-target-prefix")) {
		if (iscsi_name_check(v, 1) < 0 ||
		    snprintf(c->iscsi_prefix, sizeof(c->iscsi_prefix), "%s", v) >=
			    (int)sizeof(c->iscsi_prefix))
			return bad(p, "iscsi-target-prefix must be an iSCSI name like "
				   "iqn.2024-01.org.example (lower case, digits, '.', '-', ':'), not", v);
	} else if (!strcmp(k, "takeover")) {
		return takeover_key(p, &c->takeover, v);
	} else if (!strcmp(k, "mac-binding")) {
		if (strcmp(v, "address") && strcmp(v, "off"))
			return bad(p, "mac-binding must be address or off, not", v);
		c->mac_binding_off = !strcmp(v, "off");
	} else if (!strcmp(k, "site-key") || !strcmp(k, "admin-key")) {
		char *dst = k[0] == 's' ? c->site_key_file : c->admin_key_file;

		if (snprintf(dst, PATH_MAX, "%s", v) >= PATH_MAX)
			return bad(p, "key file path too long", v);
	} else if (!strcmp(k, "trace-dir")) {
		if (snprintf(c->trace_dir, sizeof(c->trace_dir), "%s", v) >= (int)sizeof(c->trace_dir) - 128)
			return bad(p, "trace-dir too long", v);
	} else {
		return bad(p, "unknown key", k);
	}
	return 0;
}

/* write-cache = SETTING ([image] and [client]): checked here, used by the agent. */
static int write_cache_key(struct parser *p, char dst[WC_TEXT_MAX + 1], const char *v)
{
	struct wc_config w;
	char why[200];

	if (strlen(v) > WC_TEXT_MAX)
		return bad(p, "write-cache too long", v);
	if (wc_parse(v, &w, why, sizeof(why)) < 0)
		return bad(p, why, v);
	snprintf(dst, WC_TEXT_MAX + 1, "%s", v);
	return 0;
}

/* The iscsi-chap-* keys ([image] and [client]): 1 if k is none of them, else
 * 0 or -1 from setting it. */
static int chap_key(struct parser *p, struct iscsi_chap *ch, const char *k, const char *v)
{
	char *dst;
	size_t cap;
	int secret;

	if (!strcmp(k, "iscsi-chap-user"))
		dst = ch->user, cap = sizeof(ch->user), secret = 0;
	else if (!strcmp(k, "iscsi-chap-secret"))
		dst = ch->secret, cap = sizeof(ch->secret), secret = 1;
	else if (!strcmp(k, "iscsi-chap-target-user"))
		dst = ch->target_user, cap = sizeof(ch->target_user), secret = 0;
	else if (!strcmp(k, "iscsi-chap-target-secret"))
		dst = ch->target_secret, cap = sizeof(ch->target_secret), secret = 1;
	else
		return 1;
	if (strlen(v) >= cap)
		return bad(p, "too long:", k);
	if (secret && strlen(v) < CHAP_SECRET_MIN) {
		snprintf(p->err, p->errlen, "%s:%d: %s must be at least %d bytes (CHAP secrets "
			 "shorter than 96 bits are refused by RFC 7143 and Windows)", p->file,
			 p->line, k, CHAP_SECRET_MIN);
		return -1;
	}
	snprintf(dst, cap, "%s", v);
	return 0;
}

/* A CHAP setting that cannot work: a name without a secret, or mutual CHAP
 * without one-way CHAP.  0, or -1 with err. */
static int chap_check(const struct iscsi_chap *ch, const char *who, char *err, size_t errlen)
{
	if ((ch->user[0] && !ch->secret[0]) || (ch->target_user[0] && !ch->target_secret[0]))
		snprintf(err, errlen, "%s: an iscsi-chap-*user without its iscsi-chap-*secret", who);
	else if (ch->target_secret[0] && !ch->secret[0])
		snprintf(err, errlen, "%s: iscsi-chap-target-secret (mutual CHAP) needs "
			 "iscsi-chap-secret too", who);
	else if (ch->target_secret[0] && !strcmp(ch->secret, ch->target_secret))
		snprintf(err, errlen, "%s: the target's CHAP secret must differ from the "
			 "initiator's (RFC 7143)", who);
	else
		return 0;
	return -1;
}

static int image_key(struct parser *p, const char *k, const char *v)
{
	struct image *im = &p->c->images[p->c->nimages - 1];
	char msg[512];
	int rc;

	if ((rc = persona_image_key(&im->persona, k, v, p->dir, p->line, msg, sizeof(msg))) != 0)
		return rc < 0 ? persona_bad(p, msg) : 0;
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
	} else if (!strcmp(k, "write-cache")) {
		return write_cache_key(p, im->write_cache, v);
	} else if (!strcmp(k, "takeover")) {
		return takeover_key(p, &im->takeover, v);
	} else if ((rc = chap_key(p, &im->chap, k, v)) != 1) {
		return rc;
	} else {
		return bad(p, "unknown image key", k);
	}
	return 0;
}

static int client_key(struct parser *p, const char *k, const char *v)
{
	struct client_rule *r = &p->c->clients[p->c->nclients - 1];
	char msg[512];
	int rc;

	if ((rc = persona_client_key(&r->persona, k, v, p->line, msg, sizeof(msg))) != 0)
		return rc < 0 ? persona_bad(p, msg) : 0;
	if (!strcmp(k, "image")) {
		if (strlen(v) > NAME_MAX_LEN)
			return bad(p, "image name too long", v);
		snprintf(r->image, sizeof(r->image), "%s", v);
	} else if (!strcmp(k, "mode")) {
		r->mode = nd_mode_parse(v);
		if (!r->mode && !strcmp(v, "maintenance"))
			r->mode = ND_MODE_DIRECT; /* what direct mode is on a versioned image */
		if (!r->mode)
			return bad(p, "mode must be direct, volatile, persistent or readonly, not", v);
	} else if (!strcmp(k, "tester")) {
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return bad(p, "tester must be yes or no, not", v);
		r->tester = !strcmp(v, "yes");
	} else if (!strcmp(k, "group")) {
		if (strlen(v) >= sizeof(r->group) || strchr(v, ' '))
			return bad(p, "group must be one word of at most 31 bytes, not", v);
		snprintf(r->group, sizeof(r->group), "%s", v);
	} else if (!strcmp(k, "on-update")) {
		if (strcmp(v, "keep") && strcmp(v, "reset"))
			return bad(p, "on-update must be keep or reset, not", v);
		r->on_update_reset = !strcmp(v, "reset");
	} else if (!strcmp(k, "write-cache")) {
		return write_cache_key(p, r->write_cache, v);
	} else if (!strcmp(k, "takeover")) {
		return takeover_key(p, &r->takeover, v);
	} else if (!strcmp(k, "iscsi-initiator")) {
		if (iscsi_name_check(v, 0) < 0 || strlen(v) >= sizeof(r->iscsi_initiator))
			return bad(p, "iscsi-initiator must be an iSCSI name (iqn.... or eui....), not", v);
		for (int i = 0; i < p->c->nclients - 1; i++)
			if (!strcasecmp(p->c->clients[i].iscsi_initiator, v)) {
				snprintf(p->err, p->errlen, "%s:%d: iscsi-initiator %s is already the "
					 "client's at line %d", p->file, p->line, v,
					 p->c->clients[i].line);
				return -1;
			}
		snprintf(r->iscsi_initiator, sizeof(r->iscsi_initiator), "%s", v);
	} else if ((rc = chap_key(p, &r->chap, k, v)) != 1) {
		return rc;
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
	if (!eq && p->sec == SEC_IMAGE && !strncmp(s, "file ", 5) && (v = strstr(s, " from "))) {
		/* file PATH from FILE: a personalization template kept in a file */
		char msg[512];

		*v = 0;
		k = trim(s + 5);
		v = trim(v + 6);
		if (persona_image_file_from(&p->c->images[p->c->nimages - 1].persona, k, v, p->dir,
					    p->line, msg, sizeof(msg)) < 0)
			return persona_bad(p, msg);
		return 0;
	}
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

/* Two image names for one file (or block device) would let a direct-mode writer
 * of one name change the disk under the other name's clients: refuse it.  Paths
 * that cannot be examined are left for opening the image to report. */
static int same_file_twice(struct config *c, char *err, size_t errlen)
{
	struct stat a, b;
	int i, j;

	for (i = 0; i < c->nimages; i++) {
		if (stat(c->images[i].path, &a) < 0)
			continue;
		for (j = i + 1; j < c->nimages; j++) {
			if (stat(c->images[j].path, &b) < 0)
				continue;
			if (S_ISBLK(a.st_mode) && S_ISBLK(b.st_mode) ? a.st_rdev != b.st_rdev
			    : a.st_dev != b.st_dev || a.st_ino != b.st_ino)
				continue;
			snprintf(err, errlen, "images '%s' (%s) and '%s' (%s) are the same file: "
				 "serve it under one name", c->images[i].name, c->images[i].path,
				 c->images[j].name, c->images[j].path);
			return -1;
		}
	}
	return 0;
}

/* Cross-checks once everything (file and command line) is in. */
/* A relative image path is relative to where netdiskd started: made absolute
 * now, since the image store records and compares the path of version 1. */
static int absolute_path(struct image *im, char *err, size_t errlen)
{
	char cwd[PATH_MAX], *rel;

	if (im->path[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd))) {
		snprintf(err, errlen, "image '%s': getcwd: %s", im->name, strerror(errno));
		return -1;
	}
	rel = strdup(im->path);
	if (!rel) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((size_t)snprintf(im->path, sizeof(im->path), "%s/%s", cwd, rel) >= sizeof(im->path)) {
		snprintf(err, errlen, "image '%s': path too long: %s/%s", im->name, cwd, rel);
		free(rel);
		return -1;
	}
	free(rel);
	return 0;
}

int config_check(struct config *c, char *err, size_t errlen)
{
	char who[NAME_MAX_LEN + 16];
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
		if (absolute_path(im, err, errlen) < 0)
			return -1;
		if (im->mode == ND_MODE_PERSISTENT && !c->state_dir[0]) {
			snprintf(err, errlen, "image '%s' is persistent: give a state directory "
				 "(--state-dir or state-dir =) to keep overlays in", im->name);
			return -1;
		}
		snprintf(who, sizeof(who), "image '%s'", im->name);
		if (chap_check(&im->chap, who, err, errlen) < 0)
			return -1;
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
		snprintf(who, sizeof(who), "client %s", mac);
		if (chap_check(&r->chap, who, err, errlen) < 0)
			return -1;
	}
	if (same_file_twice(c, err, errlen) < 0)
		return -1;
	if (c->default_image[0] && !config_image(c, c->default_image)) {
		snprintf(err, errlen, "default-image '%s' is not defined", c->default_image);
		return -1;
	}
	if (!c->default_image[0])
		snprintf(c->default_image, sizeof(c->default_image), "%s", c->images[0].name);
	if (ibft_config_check(c, err, errlen) < 0)
		return -1;
	return persona_config_check(c, err, errlen);
}

void config_free(struct config *c)
{
	int i;

	for (i = 0; i < c->nimages; i++)
		persona_image_free(&c->images[i].persona);
	for (i = 0; i < c->nclients; i++)
		persona_client_free(&c->clients[i].persona);
	free(c->images);
	free(c->clients);
	c->images = NULL;
	c->clients = NULL;
}
