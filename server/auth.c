/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The site key: ATTACH authenticated by HMAC-SHA256 over the request and a server challenge. */

/*
 * docs/protocol.md ("Site key") is the wire format, docs/security.md the
 * model.  A keyed client's first ATTACH carries a zero challenge; the server
 * answers AUTH with a challenge in the header's token field, and the client
 * signs the same ATTACH again with it.  Challenges are stateless: a keyed
 * hash, under a secret drawn at start, of the source address and port, the
 * request's MAC and nonce and a 30-second epoch, good for the current epoch
 * and the one before.  Nothing is stored per client, so a flood of ATTACHes
 * costs the server no memory, and a retried ATTACH (same bytes, same
 * address) within the window is accepted again and finds its session.
 * HMACs are GnuTLS's (gnutls_hmac_fast); the client core has its own
 * SHA-256 (client/sha256.c) because the firmware cannot link GnuTLS.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "netdiskd.h"

#define EPOCH_S 30       /* a challenge is good for this epoch and the one before */
#define LOG_SLOTS 64     /* sources whose refusal was logged lately */
#define LOG_EVERY_S 60   /* ... a source is logged again at most this often */

struct auth_state {
	uint8_t site[ND_KEY_LEN], admin[ND_KEY_LEN];
	uint8_t site_id[4], admin_id[4];
	int has_site, has_admin;
	uint8_t secret[32];  /* the challenges' key, new at every start */
	struct {
		char peer[64];
		time_t at;
		unsigned long refused;
	} logged[LOG_SLOTS];
};

static void key_id(const uint8_t key[ND_KEY_LEN], uint8_t id[4])
{
	uint8_t h[32];

	gnutls_hash_fast(GNUTLS_DIG_SHA256, key, ND_KEY_LEN, h);
	memcpy(id, h, 4);
}

/* admin-key = auto: write a new key to `path` (0600, 64 hex digits and a
 * newline), created whole or not at all (a temporary file, then a link that
 * fails if another start made one first). 0, or -1 with err. */
static int admin_key_make(const char *path, char *err, size_t errlen)
{
	uint8_t key[ND_KEY_LEN];
	char tmp[PATH_MAX + 16], text[2 * ND_KEY_LEN + 2];
	int fd, i, rc = -1;

	if (getrandom(key, sizeof(key), 0) != sizeof(key)) {
		snprintf(err, errlen, "getrandom for the admin key: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < ND_KEY_LEN; i++)
		snprintf(text + 2 * i, 3, "%02x", key[i]);
	text[2 * ND_KEY_LEN] = '\n';
	snprintf(tmp, sizeof(tmp), "%s.new%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "open %s for the admin key: %s", tmp, strerror(errno));
		goto out;
	}
	if (write(fd, text, 2 * ND_KEY_LEN + 1) != 2 * ND_KEY_LEN + 1 || fsync(fd) < 0) {
		snprintf(err, errlen, "write %s: %s", tmp, strerror(errno ? errno : EIO));
		close(fd);
		goto out_unlink;
	}
	close(fd);
	if (link(tmp, path) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "link %s to %s: %s", tmp, path, strerror(errno));
		goto out_unlink;
	}
	rc = 0;
out_unlink:
	unlink(tmp);
out:
	memset(key, 0, sizeof(key));
	memset(text, 0, sizeof(text));
	return rc;
}

/* The admin key's file: the configured one, or for "auto" STATE/admin.key,
 * made at the first start.  "" for admin-key = none.  0, or -1 with err. */
static int admin_key_path(struct server *s, char *path, size_t len, char *err, size_t errlen)
{
	const char *cfg = s->cfg.admin_key_file;

	path[0] = 0;
	if (!strcmp(cfg, "none"))
		return 0;
	if (strcmp(cfg, "auto")) {
		snprintf(path, len, "%s", cfg);
		return 0;
	}
	if ((size_t)snprintf(path, len, "%s/admin.key", s->state_dir) >= len) {
		snprintf(err, errlen, "state directory path too long for admin.key");
		return -1;
	}
	if (access(path, F_OK) == 0)
		return 0;
	if (admin_key_make(path, err, errlen) < 0)
		return -1;
	fsync_dir(s->state_dir); /* the key outlives a crash: stubs are patched with it */
	nd_log(ND_LOG_INFO, "admin key made: %s (admin-key = auto); direct and maintenance mode "
	       "need an ATTACH signed with it: netdisk patch netdisk.pxe --key %s, or netdisk "
	       "write --key %s", path, path, path);
	return 0;
}

int auth_init(struct server *s, char *err, size_t errlen)
{
	struct auth_state *a;
	char admin_path[PATH_MAX];

	s->auth = NULL;
	if (admin_key_path(s, admin_path, sizeof(admin_path), err, errlen) < 0)
		return -1;
	snprintf(s->admin_key_path, sizeof(s->admin_key_path), "%s", admin_path);
	if (!s->cfg.site_key_file[0] && !admin_path[0])
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (s->cfg.site_key_file[0]) {
		if (nd_key_load(s->cfg.site_key_file, a->site, err, errlen) < 0)
			goto fail;
		key_id(a->site, a->site_id);
		a->has_site = 1;
	}
	if (admin_path[0]) {
		if (nd_key_load(admin_path, a->admin, err, errlen) < 0)
			goto fail;
		key_id(a->admin, a->admin_id);
		a->has_admin = 1;
		if (a->has_site && !memcmp(a->site, a->admin, ND_KEY_LEN)) {
			snprintf(err, errlen, "admin-key and site-key are the same key: the admin "
				 "key must be one only the admins' stubs and tools have");
			goto fail;
		}
	}
	if (getrandom(a->secret, sizeof(a->secret), 0) != sizeof(a->secret)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		goto fail;
	}
	s->auth = a;
	return 0;
fail:
	memset(a, 0, sizeof(*a));
	free(a);
	return -1;
}

void auth_free(struct server *s)
{
	if (!s->auth)
		return;
	memset(s->auth, 0, sizeof(*s->auth));
	free(s->auth);
	s->auth = NULL;
}

/* The challenge for an ATTACH (its MAC and nonce) from `from` in `epoch`. */
static void challenge_for(const struct auth_state *a, const struct sockaddr *from,
			  const struct nd_attach_req *req, uint64_t epoch, uint8_t out[16])
{
	uint8_t msg[8 + 2 + 16 + 2 + 6 + 4], h[32];
	size_t n = 0;

	memset(msg, 0, sizeof(msg));
	nd_put64(msg, epoch);
	n = 8;
	if (from->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)from;

		msg[n] = 4;
		memcpy(msg + n + 2, &in->sin_addr, 4);
		memcpy(msg + n + 18, &in->sin_port, 2);
	} else if (from->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)from;

		msg[n] = 6;
		memcpy(msg + n + 2, &in6->sin6_addr, 16);
		memcpy(msg + n + 18, &in6->sin6_port, 2);
	}
	n += 20;
	memcpy(msg + n, req->mac, 6);
	memcpy(msg + n + 6, req->nonce, 4);
	gnutls_hmac_fast(GNUTLS_MAC_SHA256, a->secret, sizeof(a->secret), msg, sizeof(msg), h);
	memcpy(out, h, 16);
}

/* Equal, in time that does not depend on where they differ. */
static int same_bytes(const uint8_t *x, const uint8_t *y, size_t n)
{
	uint8_t d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

int auth_check(struct server *s, const uint8_t *pkt, const struct sockaddr *from,
	       uint8_t challenge[16], const char **why)
{
	const struct auth_state *a = s->auth;
	const struct nd_hdr *h = (const struct nd_hdr *)pkt;
	const struct nd_attach_req *req = (const struct nd_attach_req *)(pkt + ND_HDR_SIZE);
	const struct nd_auth_trailer *t =
		(const struct nd_auth_trailer *)(pkt + ND_HDR_SIZE + ND_AUTH_OFFSET);
	uint64_t epoch = (uint64_t)time(NULL) / EPOCH_S;
	uint8_t prev[16], mac[32];
	const uint8_t *key;
	int kind;

	challenge_for(a, from, req, epoch, challenge);
	if (nd_get32(t->magic) != ND_AUTH_MAGIC) {
		*why = "not signed with the site key (an unkeyed client: netdisk patch --key)";
		return AUTH_NONE;
	}
	if (a->has_site && !memcmp(t->key_id, a->site_id, 4))
		key = a->site, kind = AUTH_SITE;
	else if (a->has_admin && !memcmp(t->key_id, a->admin_id, 4))
		key = a->admin, kind = AUTH_ADMIN;
	else {
		*why = "signed with a key this server does not have (another site's key?)";
		return -1;
	}
	challenge_for(a, from, req, epoch - 1, prev);
	if (!same_bytes(h->token, challenge, 16) && !same_bytes(h->token, prev, 16)) {
		*why = "no challenge or a stale one: challenged";
		return -2; /* the normal first round of a keyed client */
	}
	gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, ND_KEY_LEN, pkt, ND_AUTH_SIGNED, mac);
	if (!same_bytes(mac, t->hmac, 32)) {
		*why = "the authenticator is wrong (a different key with the same id, or a forged request)";
		return -1;
	}
	*why = NULL;
	return kind;
}

/* Log a refused ATTACH once per source and minute, with the count so far. */
void auth_log_refusal(struct server *s, const struct sockaddr *from, const uint8_t mac[6],
		      const char *why)
{
	struct auth_state *a = s->auth;
	char peer[64], ip[64], m[ND_MAC_STRLEN + 1], *colon;
	time_t now = time(NULL);
	unsigned i, slot = 0, oldest = 0;

	format_peer(from, peer, sizeof(peer));
	snprintf(ip, sizeof(ip), "%s", peer);
	colon = strrchr(ip, ':');
	if (colon)
		*colon = 0; /* one entry per address, whatever its port */
	for (i = 0; i < LOG_SLOTS; i++) {
		if (!strcmp(a->logged[i].peer, ip))
			break;
		if (a->logged[i].at < a->logged[oldest].at)
			oldest = i;
	}
	if (i < LOG_SLOTS) {
		slot = i;
		a->logged[slot].refused++;
		if (now - a->logged[slot].at < LOG_EVERY_S)
			return;
	} else {
		slot = oldest;
		snprintf(a->logged[slot].peer, sizeof(a->logged[slot].peer), "%s", ip);
		a->logged[slot].refused = 1;
	}
	a->logged[slot].at = now;
	nd_mac_format(mac, m);
	nd_log(ND_LOG_WARN, "attach refused, %s: mac=%s ip=%s (%lu from this address; said again "
	       "at most every %d s; %lu refused in all)", why, m, peer, a->logged[slot].refused,
	       LOG_EVERY_S, s->stats.auth_refused);
}

int auth_site_required(const struct server *s)
{
	return s->auth && s->auth->has_site;
}

int auth_admin_required(const struct server *s)
{
	return s->auth && s->auth->has_admin;
}
