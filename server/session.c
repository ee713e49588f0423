/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sessions: attach policy (image, mode, direct-mode exclusivity), overlays, persistence. */

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "netdiskd.h"
#include "trace.h"

#define MAX_REQUEST_SECTORS 2048 /* 1 MiB: bounds the server's per-request buffer */
#define ATTACH_RETRY_S 60        /* a retried ATTACH is recognised this long after the first */
#define EVICT_UNUSED_S 1         /* at max-sessions, a session never used after its ATTACH
				  * goes after this long */
#define EVICT_IDLE_S 10          /* ... and any other after this long of silence */
#define ATTACH_RATE 10           /* ATTACHes per second one source address may send */
#define ATTACH_BURST 40          /* ... and at once */
#define ALIVE_FILE "alive"       /* state dir: mtime = when this server last ran */

static unsigned bucket_of(const uint8_t token[16])
{
	return token[0];
}

struct session *session_find(struct server *s, const uint8_t token[16])
{
	struct session *ss;

	for (ss = s->bucket[bucket_of(token)]; ss; ss = ss->next)
		if (!memcmp(ss->token, token, 16))
			return ss;
	return NULL;
}

int session_live(const struct server *s, const struct session *ss)
{
	return ss->nbd_conns > 0 ||
	       time(NULL) - __atomic_load_n(&ss->last_seen, __ATOMIC_RELAXED) <
		       (time_t)s->cfg.session_timeout;
}

int mkdirs(const char *path)
{
	char tmp[PATH_MAX], *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

int server_state_init(struct server *s, char *err, size_t errlen)
{
	static const char *const sub[] = { "sessions", "volatile", "persistent" };
	char path[PATH_MAX];
	unsigned i;

	if (s->cfg.state_dir[0]) {
		snprintf(s->state_dir, sizeof(s->state_dir), "%s", s->cfg.state_dir);
	} else {
		snprintf(s->state_dir, sizeof(s->state_dir), "/tmp/netdiskd.XXXXXX");
		if (!mkdtemp(s->state_dir)) {
			snprintf(err, errlen, "cannot create a temporary state directory: %s",
				 strerror(errno));
			return -1;
		}
		s->temp_state = 1;
	}
	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", s->state_dir, sub[i]);
		if (mkdirs(path) < 0) {
			snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int server_open_images(struct server *s, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < s->cfg.nimages; i++) {
		struct image *im = &s->cfg.images[i];

		im->base = file_layer_open(im->path, 0, err, errlen);
		if (!im->base || store_plain(im, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* Where a client's overlay for an image lives. */
static void overlay_paths(struct server *s, const struct session *ss, char *data, char *map)
{
	char mac[18], dir[PATH_MAX];
	const char *kind = ss->mode == ND_MODE_PERSISTENT ? "persistent" : "volatile";

	nd_mac_format(ss->mac, mac);
	snprintf(dir, sizeof(dir), "%s/%s/%s", s->state_dir, kind, ss->img->name);
	mkdirs(dir);
	snprintf(data, PATH_MAX, "%s/%s.data", dir, mac);
	snprintf(map, PATH_MAX, "%s/%s.map", dir, mac);
}

static void session_file(struct server *s, const uint8_t token[16], char *path)
{
	char hex[33];
	int i;

	for (i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", token[i]);
	snprintf(path, PATH_MAX, "%s/sessions/%s", s->state_dir, hex);
}

/* Record a session so that a restarted server continues it.  Its file is
 * named after the token, so logs name the fingerprint, never the path. */
static void session_save(struct server *s, const struct session *ss)
{
	char path[PATH_MAX], tmp[PATH_MAX + 4], mac[18];
	FILE *f;

	session_file(s, ss->token, path);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	nd_mac_format(ss->mac, mac);
	f = fopen(tmp, "w");
	if (!f) {
		log_msg("warning: cannot save session %08x in %s/sessions: %s",
			nd_token_fingerprint(ss->token), s->state_dir, strerror(errno));
		return;
	}
	fprintf(f, "mac=%s\nimage=%s\nmode=%d\nkind=%u\nnonce=%u\ndgram=%u\nwindow=%u\nversion=%u\n",
		mac, ss->img->name, ss->mode, ss->kind, ss->nonce, ss->dgram, ss->window, ss->vnum);
	/* Where the session is served from survives a restart with it. */
	if (ss->nbd_owned)
		fprintf(f, "origin=nbd\n");
	else
		fprintf(f, "peer=%s\n", ss->peer);
	if (fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, path))
		log_msg("warning: cannot save session %08x in %s/sessions: %s",
			nd_token_fingerprint(ss->token), s->state_dir, strerror(errno));
}

static void session_insert(struct server *s, struct session *ss)
{
	unsigned b = bucket_of(ss->token);

	ss->next = s->bucket[b];
	s->bucket[b] = ss;
	s->nsessions++;
}

static void session_unlink(struct server *s, struct session *ss)
{
	struct session **pp = &s->bucket[bucket_of(ss->token)];

	while (*pp && *pp != ss)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = ss->next;
		s->nsessions--;
	}
}

/* A new session with its I/O lock; writers (session_end) go before new readers,
 * so a busy NBD connection cannot hold the end of its session off. */
static struct session *session_new(void)
{
	struct session *ss = calloc(1, sizeof(*ss));
	pthread_rwlockattr_t a;

	if (!ss)
		return NULL;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&ss->io_lock, &a);
	pthread_rwlockattr_destroy(&a);
	return ss;
}

void session_free(struct session *ss)
{
	if (!ss)
		return;
	pthread_rwlock_destroy(&ss->io_lock);
	free(ss);
}

/* End a session, under the server lock; `why` goes into the log (NULL: quietly,
 * the caller counts it).  It leaves the table at once; its layers close when the
 * NBD requests using them are done.  Volatile overlays are not flushed, only
 * removed: nobody will read them again. */
static void end_session(struct server *s, struct session *ss, const char *why)
{
	char path[PATH_MAX], data[PATH_MAX], map[PATH_MAX], mac[18];

	nd_mac_format(ss->mac, mac);
	if (why)
		log_msg("detach mac=%s ip=%s image=%s mode=%s session=%08x (%s)", mac, ss->peer,
			ss->img->name, nd_mode_text(ss->mode), nd_token_fingerprint(ss->token), why);
	session_unlink(s, ss);
	mcast_leave(s, ss, why ? why : "session ended");
	trace_end(ss);
	pthread_rwlock_wrlock(&ss->io_lock);
	if (ss->own && ss->mode != ND_MODE_VOLATILE)
		layer_flush(ss->own);
	layer_close(ss->own);
	layer_close(ss->persona);
	ss->persona = NULL;
	if (ss->vn) {
		if (ss->mode == ND_MODE_DIRECT) /* the maintenance version it wrote */
			layer_flush(ss->top);
		store_count_boot(s, ss, 0);
		store_release(ss->vn);
		ss->vn = NULL;
	}
	if (ss->mode == ND_MODE_VOLATILE) {
		overlay_paths(s, ss, data, map);
		overlay_remove(data, map);
	}
	if (ss->img->writer == ss)
		ss->img->writer = NULL;
	session_file(s, ss->token, path);
	unlink(path);
	ss->own = ss->top = NULL;
	ss->ended = 1;
	pthread_rwlock_unlock(&ss->io_lock);
	if (!ss->nbd_conns)
		session_free(ss); /* else the last NBD connection frees it */
}

void session_end(struct server *s, struct session *ss, const char *why)
{
	end_session(s, ss, why);
}

static const struct client_rule *find_rule(struct config *c, const uint8_t mac[6]);

/*
 * Give the session the layers its mode needs, over the image version it is
 * pinned to (`want`: the one a restored session read; 0: the store chooses,
 * store_session_version), and its personalization layer between the two.
 * 0, or -1 with a message (and *status: IO, or PERSONA for a personalization
 * the config or the image cannot give).
 */
static int session_layers(struct server *s, struct session *ss, int fresh, unsigned want,
			  int async, unsigned *status, char *err, size_t errlen)
{
	char data[PATH_MAX], map[PATH_MAX], mac[18];
	struct layer *below;
	int stale = 0, reset = 0;

	*status = ND_ERR_IO;
	if (ss->mode == ND_MODE_DIRECT && !ss->img->store->versioned) {
		/* An image never versioned: direct mode writes its file, exclusively. */
		ss->own = file_layer_open(ss->img->path, 1, err, errlen);
		ss->top = ss->own;
		ss->vnum = 1;
		if (ss->own)
			ss->img->writer = ss;
		return ss->own ? 0 : -1;
	}
	ss->vn = store_session_version(s, ss, want, find_rule(&s->cfg, ss->mac), &reset, err, errlen);
	if (!ss->vn)
		return -1;
	below = ss->vn->top;
	if (ss->mode != ND_MODE_DIRECT) { /* the maintenance writer sees the golden image */
		ss->persona = persona_open(s, ss, &ss->persona_id, status, async, err, errlen);
		if (!ss->persona && *status) {
			store_release(ss->vn);
			ss->vn = NULL;
			return -1;
		}
		*status = ND_ERR_IO;
		if (ss->persona)
			below = ss->persona;
	}
	switch (ss->mode) {
	case ND_MODE_DIRECT:
		if (store_version(ss->img->store, ss->vnum)->state != VS_MAINTENANCE) {
			snprintf(err, errlen, "version %u of image %s is no longer in maintenance",
				 ss->vnum, ss->img->name);
			break;
		}
		ss->top = ss->vn->top; /* the maintenance version's delta */
		ss->img->writer = ss;
		return 0;
	case ND_MODE_READONLY:
		ss->top = below;
		return 0;
	default:
		overlay_paths(s, ss, data, map);
		ss->own = overlay_open(below, data, map, fresh || reset, &stale, err, errlen);
		ss->top = ss->own;
		if (!ss->own)
			break;
		if (stale) {
			nd_mac_format(ss->mac, mac);
			log_msg("overlay of %s on image %s was made over an older version of the image; "
				"starting it afresh", mac, ss->img->name);
		}
		return 0;
	}
	layer_close(ss->persona);
	ss->persona = NULL;
	store_release(ss->vn);
	ss->vn = NULL;
	return -1;
}

/* Negotiate datagram size, chunk, window and request size with the client. */
static void negotiate(struct server *s, struct session *ss, unsigned dgram, unsigned window)
{
	unsigned max_sectors;

	if (dgram > s->cfg.max_dgram)
		dgram = s->cfg.max_dgram;
	if (window > s->cfg.window)
		window = s->cfg.window;
	ss->dgram = (uint16_t)dgram;
	ss->chunk = nd_chunk_for_dgram(ss->dgram);
	ss->window = (uint16_t)(window ? window : 1);
	max_sectors = ND_MAX_CHUNKS * ss->chunk / ND_SECTOR_SIZE;
	ss->max_sectors = max_sectors < MAX_REQUEST_SECTORS ? max_sectors : MAX_REQUEST_SECTORS;
}

static const struct client_rule *find_rule(struct config *c, const uint8_t mac[6])
{
	return config_client(c, mac);
}

const char *session_write_cache(struct server *s, const struct session *ss)
{
	const struct client_rule *r = find_rule(&s->cfg, ss->mac);

	if (r && r->write_cache[0])
		return r->write_cache;
	return ss->img ? ss->img->write_cache : "";
}

uint64_t session_image_id(const struct session *ss)
{
	struct layer *below = ss->own && ss->own->lower ? ss->own->lower : ss->top;

	return below ? layer_version(below) : 0;
}

/* The image and mode a client gets.  NULL with *status and *why set if none. */
static struct image *choose_image(struct server *s, const uint8_t mac[6], const char *want,
				  int *mode, unsigned *status, const char **why)
{
	const struct client_rule *r = find_rule(&s->cfg, mac);
	const char *name = want[0] ? want : (r && r->image[0]) ? r->image : s->cfg.default_image;
	struct image *im;

	if (!r && !s->cfg.allow_unlisted) {
		*status = ND_ERR_DENIED;
		*why = "client not listed in the config (allow = listed)";
		return NULL;
	}
	if (r && r->image[0] && strcmp(r->image, name)) {
		*status = ND_ERR_DENIED;
		*why = "client is bound to another image";
		return NULL;
	}
	im = config_image(&s->cfg, name);
	if (!im) {
		*status = ND_ERR_NOIMAGE;
		*why = "no such image";
		return NULL;
	}
	*mode = r && r->mode ? r->mode : im->mode;
	return im;
}

/* Visit every session (the callback may end the one it is given). */
static void for_each_session(struct server *s, void (*fn)(struct server *, struct session *, void *),
			     void *arg)
{
	unsigned b;

	for (b = 0; b < 256; b++) {
		struct session *ss = s->bucket[b], *next;

		for (; ss; ss = next) {
			next = ss->next;
			fn(s, ss, arg);
		}
	}
}

/* What an ATTACH finds already holding its image. */
struct holders {
	struct image *img;
	const uint8_t *mac;
	struct session *same;  /* this client's own session on the image */
	int others_live;       /* live sessions of other clients */
	int writer_live;       /* a live direct writer other than this client */
};

static void note_holder(struct server *s, struct session *ss, void *arg)
{
	struct holders *h = arg;

	if (ss->img != h->img)
		return;
	if (!memcmp(ss->mac, h->mac, 6)) {
		h->same = ss;
		return;
	}
	if (session_live(s, ss)) {
		h->others_live++;
		if (ss->mode == ND_MODE_DIRECT)
			h->writer_live = 1;
	}
}

/* End the idle sessions of other clients on an image a direct writer takes. */
static void end_idle(struct server *s, struct session *ss, void *arg)
{
	struct holders *h = arg;

	if (ss->img == h->img && memcmp(ss->mac, h->mac, 6) && !session_live(s, ss))
		session_end(s, ss, "idle, image taken by a direct-mode writer");
}

/* Is a sockaddr the same address (and, with `port`, port) as the one a session is bound to? */
static int same_addr(const struct sockaddr_storage *a, socklen_t alen, const struct sockaddr *b,
		     socklen_t blen, int port)
{
	if (!alen || a->ss_family != b->sa_family)
		return 0;
	if (b->sa_family == AF_INET && blen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return (!port || x->sin_port == y->sin_port) && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6 && blen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return (!port || x->sin6_port == y->sin6_port) &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return 0;
}

int session_from_peer(const struct session *ss, const struct sockaddr *from, socklen_t fromlen)
{
	return same_addr(&ss->addr, ss->addrlen, from, fromlen, 1);
}

/* The least valuable session to make room with: one never used since its
 * ATTACH before any other, then the longest silent; never one in use by NBD
 * or heard from recently. */
struct victim {
	time_t now;
	struct session *best;
};

static void note_victim(struct server *s, struct session *ss, void *arg)
{
	struct victim *v = arg;
	time_t seen = __atomic_load_n(&ss->last_seen, __ATOMIC_RELAXED), quiet = v->now - seen;

	(void)s;
	if (ss->nbd_conns || quiet < (ss->used ? EVICT_IDLE_S : EVICT_UNUSED_S))
		return;
	if (!v->best || ss->used < v->best->used ||
	    (ss->used == v->best->used && seen < __atomic_load_n(&v->best->last_seen, __ATOMIC_RELAXED)))
		v->best = ss;
}

/* Make room for one more session at max-sessions.  0, or -1 if every session is live. */
static int make_room(struct server *s)
{
	struct victim v = { time(NULL), NULL };

	if (s->nsessions < s->cfg.max_sessions)
		return 0;
	for_each_session(s, note_victim, &v);
	if (!v.best)
		return -1;
	s->stats.evicted++;
	session_end(s, v.best, v.best->used ? "evicted: idle while the server is full" :
			       "evicted: unused since its ATTACH while the server is full");
	return 0;
}

/* A name from the network, fit for a log line: anything unprintable becomes '?'. */
static void loggable(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < outlen; i++)
		out[i] = in[i] > 0x20 && in[i] < 0x7f ? in[i] : '?';
	out[i] = 0;
}

/* The session's personalization layer id, 16 hex digits. */
static const char *persona_hex(const struct session *ss)
{
	static char hex[17];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)ss->persona_id);
	return hex;
}

/* The address (no port) of a peer "IP:PORT", as the owner file keeps it. */
static void peer_ip(const char *peer, char *ip, size_t len)
{
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : strlen(peer);

	snprintf(ip, len, "%.*s", (int)n, peer);
}

/* state/persistent/IMAGE/MAC.SUFFIX */
static void persistent_file(const struct server *s, const struct image *im, const uint8_t mac[6],
			    const char *suffix, char *path, size_t len)
{
	char m[ND_MAC_STRLEN + 1];

	nd_mac_format(mac, m);
	snprintf(path, len, "%s/persistent/%s/%s.%s", s->state_dir, im->name, m, suffix);
}

/*
 * mac-binding for a persistent overlay: the address its client attached
 * from last (MAC.owner beside the overlay).  An unkeyed ATTACH from another
 * address is refused while the overlay exists; 1 and the owner in `owner`
 * if this one is, else 0.
 */
static int owner_differs(const struct server *s, const struct image *im, const uint8_t mac[6],
			 const char *peer, char *owner, size_t len)
{
	char path[PATH_MAX], ip[64];
	struct stat st;
	size_t n;
	char *text;

	persistent_file(s, im, mac, "map", path, sizeof(path));
	if (stat(path, &st) < 0)
		return 0; /* no overlay yet: nothing to protect */
	persistent_file(s, im, mac, "owner", path, sizeof(path));
	text = nd_read_file(path, 128, &n);
	if (!text)
		return 0; /* an overlay from before mac-binding: its next client owns it */
	snprintf(owner, len, "%.*s", (int)strcspn(text, "\n"), text);
	free(text);
	peer_ip(peer, ip, sizeof(ip));
	return strcmp(owner, ip) != 0;
}

/* Record who owns a persistent overlay now (its attach's address). */
static void owner_save(const struct server *s, const struct session *ss, const char *peer)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], ip[64];
	FILE *f;

	if (!s->state_dir[0])
		return;
	persistent_file(s, ss->img, ss->mac, "owner", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	peer_ip(peer, ip, sizeof(ip));
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", ip) < 0 || fclose(f) != 0 || rename(tmp, path) < 0)
		log_msg("cannot record the owner of %s's persistent overlay in %s: %s",
			ss->img->name, path, strerror(errno));
}

/* The attach both transports share: `from` is NULL for NBD. */
static struct session *attach(struct server *s, const struct nd_attach_req *req,
			      const struct sockaddr *from, socklen_t fromlen, const char *peer,
			      int auth, unsigned *status)
{
	char want[NAME_MAX_LEN + 1], err[512], mac[ND_MAC_STRLEN + 1], owner[64];
	const char *why = NULL;
	struct holders h = { 0 };
	struct session *ss = NULL;
	time_t now = time(NULL);
	int mode = 0;
	unsigned n, lstatus;

	s->refusal[0] = 0;
	memcpy(want, req->image, NAME_MAX_LEN);
	want[NAME_MAX_LEN] = 0;
	nd_mac_format(req->mac, mac);
	h.mac = req->mac;
	h.img = choose_image(s, req->mac, want, &mode, status, &why);
	if (!h.img)
		goto refused;
	for_each_session(s, note_holder, &h);
	if (h.same && h.same->mode == mode) {
		/* A retried ATTACH: the same client, proven by where it speaks from. */
		if (!from && h.same->nbd_owned)
			return h.same; /* NBD: every connection from one host shares it */
		if (from && !h.same->nbd_owned && h.same->nonce == nd_get32(req->nonce) &&
		    session_from_peer(h.same, from, fromlen) && now - h.same->attached < ATTACH_RETRY_S)
			return h.same;
	}
	if (persona_pending(s, req->mac, h.img)) { /* a retransmission while its layer is built */
		*status = ND_PERSONA_PENDING;
		return NULL;
	}
	if (from && h.same && h.same->nbd_owned && session_live(s, h.same)) {
		*status = ND_ERR_BUSY;
		why = "the MAC is in use by an NBD client";
		goto refused;
	}
	/* mac-binding: a MAC is not proof, so without the site key a live
	 * session is ended and a persistent overlay reached only from the
	 * address that holds them (docs/security.md). */
	if (from && auth == AUTH_NONE && !s->cfg.mac_binding_off) {
		if (h.same && session_live(s, h.same) && h.same->addrlen &&
		    !same_addr(&h.same->addr, h.same->addrlen, from, fromlen, 0)) {
			s->stats.mac_bound++;
			*status = ND_ERR_BUSY;
			snprintf(err, sizeof(err), "the MAC has a live session from %s; it ends by its "
				 "DETACH, after session-timeout, or by an ATTACH from that address or "
				 "signed with the site key (mac-binding)", h.same->peer);
			why = err;
			goto refused;
		}
		if (mode == ND_MODE_PERSISTENT &&
		    owner_differs(s, h.img, req->mac, peer, owner, sizeof(owner))) {
			s->stats.mac_bound++;
			*status = ND_ERR_DENIED;
			snprintf(err, sizeof(err), "the MAC's persistent overlay belongs to the client at "
				 "%s; only an ATTACH from there or signed with the site key reaches it "
				 "(mac-binding)", owner);
			why = err;
			goto refused;
		}
	}
	/* admin-key: maintenance writes need the admins' key (or, over NBD,
	 * TLS), not a MAC or an export name. */
	if (mode == ND_MODE_DIRECT && auth_admin_required(s) && auth != AUTH_ADMIN) {
		*status = ND_ERR_DENIED;
		why = from ? "direct and maintenance mode need an ATTACH signed with the admin key "
			     "(admin-key)"
			   : "direct and maintenance mode over NBD need TLS when admin-key is set";
		goto refused;
	}
	/* An iSCSI initiator no [client] section names is anyone on the
	 * network: never the image's own file or its maintenance version. */
	if (mode == ND_MODE_DIRECT && auth == AUTH_ANON) {
		*status = ND_ERR_DENIED;
		why = "direct and maintenance mode are not granted to an iSCSI initiator no "
		      "[client] section names (iscsi-initiator)";
		goto refused;
	}
	/* Writing a never-versioned image's file in place would make every
	 * persistent overlay over it start afresh: a maintenance version instead. */
	if (mode == ND_MODE_DIRECT && !h.img->store->versioned &&
	    (n = store_persistent_count(s, h.img)) > 0) {
		*status = ND_ERR_DENIED;
		snprintf(err, sizeof(err), "writing image %s in place would discard the %u persistent "
			 "overlay%s made over it; create a maintenance version for this client "
			 "first: netdisk image new-version %s", h.img->name, n, n == 1 ? "" : "s",
			 h.img->name);
		why = err;
		goto refused;
	}
	if (h.writer_live && (mode == ND_MODE_DIRECT || !h.img->store->versioned)) {
		*status = ND_ERR_BUSY;
		why = h.img->store->versioned ? "the maintenance version is being written by another client"
					      : "image held by a direct-mode writer";
		goto refused;
	}
	if (mode == ND_MODE_DIRECT && h.others_live && !h.img->store->versioned) {
		*status = ND_ERR_BUSY;
		why = "direct mode needs the image alone; other clients hold it";
		goto refused;
	}
	if (h.same)
		session_end(s, h.same, "client attached again");
	if (make_room(s) < 0) {
		*status = ND_ERR_BUSY;
		why = "server full: every session is live (max-sessions)";
		goto refused;
	}
	/* An overlay takes two fds, a direct writer one: refuse cleanly (BUSY, and
	 * the reason logged) while there are fds left for accepts and logs. */
	if (fds_short(s, mode == ND_MODE_READONLY ? 0 : mode == ND_MODE_DIRECT ? 1 : 2, FD_RESERVE,
		      err, sizeof(err))) {
		*status = ND_ERR_BUSY;
		why = err;
		goto refused;
	}
	if (mode == ND_MODE_DIRECT && !h.img->store->versioned)
		for_each_session(s, end_idle, &h);
	else if (mode == ND_MODE_DIRECT && h.img->writer && h.img->writer != h.same)
		session_end(s, h.img->writer, "idle, the maintenance version taken by another writer");

	ss = session_new();
	if (!ss) {
		*status = ND_ERR_IO;
		why = "out of memory";
		goto refused;
	}
	memcpy(ss->mac, req->mac, 6);
	ss->kind = req->client_kind;
	ss->caps = nd_get32(req->caps);
	ss->img = h.img;
	ss->mode = mode;
	ss->last_seen = ss->attached = ss->saved_seen = now;
	ss->nbd_owned = !from;
	if (from && fromlen <= sizeof(ss->addr)) {
		memcpy(&ss->addr, from, fromlen);
		ss->addrlen = fromlen;
	}
	snprintf(ss->peer, sizeof(ss->peer), "%s", peer);
	negotiate(s, ss, nd_get16(req->max_dgram), nd_get16(req->window));
	/* Nonces the server makes (NBD) are random too: nothing about a session is guessable. */
	if (getrandom(ss->token, sizeof(ss->token), 0) != sizeof(ss->token) ||
	    (!from && getrandom(&ss->nonce, sizeof(ss->nonce), 0) != sizeof(ss->nonce))) {
		snprintf(err, sizeof(err), "getrandom: %s", strerror(errno));
		goto failed;
	}
	if (from)
		ss->nonce = nd_get32(req->nonce);
	if (session_layers(s, ss, mode == ND_MODE_VOLATILE, 0, 1, &lstatus, err, sizeof(err)) < 0) {
		if (lstatus == ND_PERSONA_PENDING) { /* answered when its layer is built */
			session_free(ss);
			*status = ND_PERSONA_PENDING;
			return NULL;
		}
		if (lstatus == ND_ERR_PERSONA || lstatus == ND_ERR_BUSY) {
			session_free(ss);
			*status = lstatus;
			why = err;
			goto refused;
		}
		goto failed;
	}
	session_insert(s, ss);
	metrics_attached(s, ss); /* (a session made: not an ATTACH waiting for its layer) */
	session_save(s, ss);
	if (from && mode == ND_MODE_PERSISTENT)
		owner_save(s, ss, peer);
	log_msg("attach mac=%s ip=%s image=%s mode=%s session=%08x boot_table=%s version=%u%s%s%.*s",
		mac, peer, ss->img->name, nd_mode_text(ss->mode), nd_token_fingerprint(ss->token),
		ss->caps & ND_CAP_BOOT_TABLE ? "yes" : "no", ss->vnum,
		auth == AUTH_ADMIN ? " key=admin" : auth == AUTH_SITE ? " key=site" : "",
		ss->persona ? " persona=" : "", ss->persona ? 16 : 0, persona_hex(ss));
	return ss;
failed:
	session_free(ss);
	*status = ND_ERR_IO;
	why = err;
refused:
	snprintf(s->refusal, sizeof(s->refusal), "%s", why); /* for the NBD client */
	loggable(want[0] ? want : "(default)", want, sizeof(want));
	log_msg("attach refused, %s: mac=%s ip=%s image=%s", why, mac, peer, want);
	return NULL;
}

struct session *session_attach(struct server *s, const struct nd_attach_req *req,
			       const struct sockaddr *from, socklen_t fromlen, int auth,
			       unsigned *status)
{
	char peer[64];

	format_peer(from, peer, sizeof(peer));
	return attach(s, req, from, fromlen, peer, auth, status);
}

/*
 * An NBD client naming an image: its identity is a MAC made from its IPv4
 * address.  Its session is reachable from NBD only (a UDP ATTACH with that
 * MAC never gets it), and all its connections share it.
 */
struct session *session_attach_nbd(struct server *s, const uint8_t mac[6], const char *image,
				   const char *peer, int auth, unsigned *status)
{
	struct nd_attach_req req = { 0 };

	memcpy(req.mac, mac, 6);
	req.client_kind = ND_KIND_LINUX;
	nd_put16(req.max_dgram, ND_MAX_DGRAM);
	nd_put16(req.window, 64);
	memcpy(req.image, image, strnlen(image, ND_IMAGE_NAME_LEN));
	return attach(s, &req, NULL, 0, peer, auth, status);
}

/* Token buckets by source address: may one more ATTACH from `from` be served? */
int attach_rate_ok(struct server *s, const struct sockaddr *from)
{
	unsigned dropped;
	char peer[64];

	if (rate_allow(s->attach_rate, from, ATTACH_RATE, ATTACH_BURST, 10, &dropped))
		return 1;
	s->stats.attach_limited++;
	if (dropped) { /* the reason, but not a line per datagram */
		format_peer(from, peer, sizeof(peer));
		nd_log(ND_LOG_WARN, "attach refused, more than %u ATTACHes a second from this "
		       "address (%u dropped; next report in 10 s): ip=%s", ATTACH_RATE, dropped, peer);
	}
	return 0;
}

/* Put an "IP:PORT" from a session record back into the session's bound address. */
static void restore_peer(struct session *ss, const char *peer)
{
	char ip[64];
	const char *colon = strrchr(peer, ':');
	struct sockaddr_in *in = (struct sockaddr_in *)&ss->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss->addr;
	unsigned long port;

	if (!colon || colon == peer || (size_t)(colon - peer) >= sizeof(ip))
		return;
	snprintf(ip, sizeof(ip), "%.*s", (int)(colon - peer), peer);
	port = strtoul(colon + 1, NULL, 10);
	if (port == 0 || port > 65535)
		return;
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		ss->addrlen = sizeof(*in);
	} else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		ss->addrlen = sizeof(*in6);
	}
	if (ss->addrlen)
		snprintf(ss->peer, sizeof(ss->peer), "%s", peer);
}

/*
 * Rebuild one session from its file; 0 on success.  `idle` is how long the
 * session had been silent while the server still ran (downtime does not
 * count): its remaining time carries over, and one already past
 * session-timeout is ended (a volatile overlay discarded) rather than kept.
 */
static int restore_one(struct server *s, const char *hex, FILE *f, time_t idle, unsigned *expired)
{
	char line[256], image[NAME_MAX_LEN + 1] = "", macs[32] = "", peer[64] = "", err[512];
	char origin[16] = "";
	unsigned mode = 0, kind = 0, nonce = 0, dgram = 0, window = 0, version = 0, i, lstatus;
	struct session *ss;

	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "mac=%31s", macs);
		sscanf(line, "image=%64s", image);
		sscanf(line, "mode=%u", &mode);
		sscanf(line, "kind=%u", &kind);
		sscanf(line, "nonce=%u", &nonce);
		sscanf(line, "dgram=%u", &dgram);
		sscanf(line, "window=%u", &window);
		sscanf(line, "version=%u", &version);
		sscanf(line, "peer=%63s", peer);
		sscanf(line, "origin=%15s", origin);
	}
	ss = session_new();
	if (!ss || strlen(hex) != 32 || nd_mac_parse(macs, ss->mac) < 0 || mode < 1 || mode > 4 ||
	    dgram < ND_MIN_DGRAM || dgram > ND_MAX_DGRAM || !(ss->img = config_image(&s->cfg, image)))
		goto fail;
	for (i = 0; i < 16; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &ss->token[i]) != 1)
			goto fail;
	ss->mode = (int)mode;
	ss->kind = (uint8_t)kind;
	ss->nonce = nonce;
	ss->last_seen = ss->saved_seen = time(NULL) - idle;
	snprintf(ss->peer, sizeof(ss->peer), "(restored)");
	ss->nbd_owned = !strcmp(origin, "nbd");
	if (!ss->nbd_owned)
		restore_peer(ss, peer);
	negotiate(s, ss, dgram, window);
	if (session_layers(s, ss, 0, ss->img->store->versioned ? version : 0, 0, &lstatus, err,
			   sizeof(err)) < 0) {
		log_msg("cannot restore session %08x: %s", nd_token_fingerprint(ss->token), err);
		goto fail;
	}
	session_insert(s, ss);
	if (idle >= (time_t)s->cfg.session_timeout) {
		end_session(s, ss, NULL);
		(*expired)++;
	}
	return 0;
fail:
	session_free(ss);
	return -1;
}

/* When this server (or the one before it on the state directory) last ran; 0 if unknown. */
static time_t last_alive(struct server *s)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/" ALIVE_FILE, s->state_dir);
	return stat(path, &st) == 0 ? st.st_mtime : 0;
}

void sessions_restore(struct server *s)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	time_t alive = last_alive(s);
	unsigned expired = 0, dropped = 0;
	struct dirent *d;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/sessions", s->state_dir);
	dp = opendir(dir);
	if (!dp)
		return;
	while ((d = readdir(dp))) {
		struct stat st;
		time_t idle = 0;
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		/* The record's mtime is when its session was last heard (sessions_sweep). */
		if (alive && fstat(fileno(f), &st) == 0 && alive > st.st_mtime)
			idle = alive - st.st_mtime;
		if (restore_one(s, d->d_name, f, idle, &expired) < 0) {
			dropped++;
			unlink(path);
		}
		fclose(f);
	}
	closedir(dp);
	if (dropped)
		log_msg("dropped %u unusable session record(s) from %s", dropped, dir);
	if (expired)
		log_msg("ended %u restored session(s) idle longer than session-timeout (%u s)",
			expired, s->cfg.session_timeout);
	if (s->nsessions)
		log_msg("restored %u session(s) from %s", s->nsessions, dir);
}

/* Bring a file's mtime to `when` (creating it if need be). */
static void touch(const char *path, time_t when)
{
	struct timespec ts[2] = { { when, 0 }, { when, 0 } };
	int fd;

	if (utimensat(AT_FDCWD, path, ts, 0) == 0 || errno != ENOENT)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		futimens(fd, ts);
		close(fd);
	}
}

/* How stale a recorded last-heard time may get: a quarter of session-timeout, 1..60 s. */
static time_t record_interval(const struct server *s)
{
	time_t t = s->cfg.session_timeout / 4;

	return t < 1 ? 1 : t > 60 ? 60 : t;
}

static void sweep_one(struct server *s, struct session *ss, void *arg)
{
	time_t now = *(const time_t *)arg;
	char path[PATH_MAX], why[80];
	time_t seen;

	/* NBD workers set last_seen without the server lock: atomics throughout. */
	if (ss->nbd_conns)
		__atomic_store_n(&ss->last_seen, now, __ATOMIC_RELAXED);
	seen = __atomic_load_n(&ss->last_seen, __ATOMIC_RELAXED);
	store_boot_deadline(s, ss, now);
	if (!session_live(s, ss)) {
		s->stats.expired++;
		snprintf(why, sizeof(why), "idle for %lld s (session-timeout)", (long long)(now - seen));
		session_end(s, ss, why);
		return;
	}
	if (seen - ss->saved_seen >= record_interval(s)) {
		session_file(s, ss->token, path);
		touch(path, seen);
		ss->saved_seen = seen;
	}
}

/*
 * End sessions silent for session-timeout (a volatile overlay is discarded, a
 * persistent one just closed), and keep the records' mtimes and the state
 * directory's "alive" file current so that a restart knows who was idle.
 * Call it about once a second with the server lock held.
 */
void sessions_sweep(struct server *s)
{
	time_t now = time(NULL);
	char path[PATH_MAX];

	if (now == s->last_sweep)
		return;
	s->last_sweep = now;
	for_each_session(s, sweep_one, &now);
	if (now - s->alive_touched >= record_interval(s)) {
		snprintf(path, sizeof(path), "%s/" ALIVE_FILE, s->state_dir);
		touch(path, now);
		s->alive_touched = now;
	}
}


/* Close everything; a temporary state directory goes with it. */
void server_close(struct server *s)
{
	unsigned b;
	int i;

	for (b = 0; b < 256; b++) {
		struct session *ss = s->bucket[b], *next;

		for (; ss; ss = next) {
			next = ss->next;
			trace_end(ss);
			if (ss->own)
				layer_flush(ss->own);
			layer_close(ss->own);
			layer_close(ss->persona);
			if (ss->vn && ss->mode == ND_MODE_DIRECT)
				layer_flush(ss->top);
			store_release(ss->vn);
			session_free(ss);
		}
		s->bucket[b] = NULL;
	}
	store_close_all(s);
	for (i = 0; i < s->cfg.nimages; i++)
		layer_close(s->cfg.images[i].base);
	if (s->temp_state) {
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->state_dir);
		if (system(cmd) != 0)
			log_msg("warning: could not remove %s", s->state_dir);
	}
}

void session_storage_error(struct session *ss, const char *op, uint64_t off, uint64_t len,
			   int rc)
{
	unsigned kind = rc == -ENOSPC ? 1 : rc == -EDQUOT ? 2 : rc == -EIO ? 4 : 8;
	char mac[ND_MAC_STRLEN + 1];
	const char *name = strerrorname_np(-rc);

	/* Once per session and kind: a full disk fails every write after the first.
	 * (NBD requests run side by side under the session's io_lock, hence the atomic.) */
	__atomic_fetch_add(&metrics_storage_errors, 1, __ATOMIC_RELAXED);
	if (__atomic_fetch_or(&ss->errs_logged, kind, __ATOMIC_RELAXED) & kind)
		return;
	nd_mac_format(ss->mac, mac);
	nd_log(ND_LOG_ERROR, "storage error, %s: op=%s image=%s mac=%s ip=%s session=%08x "
	       "offset=%llu len=%llu errno=%s (further %s errors of this session not logged)",
	       strerror(-rc), op, ss->img->name, mac, ss->peer, nd_token_fingerprint(ss->token),
	       (unsigned long long)off, (unsigned long long)len, name ? name : "unknown",
	       name ? name : "such");
}

/* Is the TCP peer on the host its session attached from (its UDP address)?
 * Sessions NBD or iSCSI made have none: any host of theirs may reopen them. */
static int same_host(const struct session *ss, const struct sockaddr_storage *sa)
{
	const struct sockaddr_storage *a = &ss->addr;

	if (!ss->addrlen)
		return 1;
	if (a->ss_family == AF_INET && sa->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6 && sa->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	return 0;
}

static int parse_token(const char *hex, uint8_t token[16])
{
	unsigned i;

	if (strlen(hex) != 32)
		return -1;
	for (i = 0; i < 16; i++)
		if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
		    sscanf(hex + 2 * i, "%2hhx", &token[i]) != 1)
			return -1;
	return 0;
}

struct session *session_continue(struct server *s, const char *hex,
				 const struct sockaddr_storage *sa, int *policy, char *why,
				 size_t whylen)
{
	uint8_t token[16];
	struct session *ss = parse_token(hex, token) ? NULL : session_find(s, token);

	*policy = 0;
	if (!ss)
		return NULL;
	if (!s->cfg.nbd_session_any_address && !same_host(ss, sa)) {
		*policy = 1;
		snprintf(why, whylen, "session %08x attached from %s: its token is taken only "
			 "from there (nbd-session-binding)", nd_token_fingerprint(ss->token), ss->peer);
		return NULL;
	}
	store_count_boot(s, ss, 1); /* a firmware boot reached the OS handoff */
	metrics_takeover(s, ss);
	return ss;
}

void session_conn_put(struct server *s, struct session *ss)
{
	pthread_rwlock_wrlock(&s->lock);
	__atomic_store_n(&ss->last_seen, time(NULL), __ATOMIC_RELAXED);
	if (--ss->nbd_conns == 0) {
		if (ss->ended)
			session_free(ss);
		else if (ss->nbd_owned)
			session_end(s, ss, ss->os_iscsi ? "last iSCSI connection closed"
							: "last NBD connection closed");
		else if (ss->mode == ND_MODE_DIRECT)
			/* the writer shut down: others may take the image */
			__atomic_store_n(&ss->last_seen, 0, __ATOMIC_RELAXED);
	}
	pthread_rwlock_unlock(&s->lock);
}
