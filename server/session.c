/* Sessions: attach policy (image, mode, direct-mode exclusivity), overlays, persistence. */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "netdiskd.h"
#include "trace.h"

#define MAX_REQUEST_SECTORS 2048 /* 1 MiB: bounds the server's per-request buffer */

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
	return ss->nbd_conns > 0 || time(NULL) - ss->last_seen < (time_t)s->cfg.session_timeout;
}

static int mkdirs(const char *path)
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
		if (!im->base)
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

/* Record a session so that a restarted server continues it. */
static void session_save(struct server *s, const struct session *ss)
{
	char path[PATH_MAX], tmp[PATH_MAX + 4], mac[18];
	FILE *f;

	session_file(s, ss->token, path);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	nd_mac_format(ss->mac, mac);
	f = fopen(tmp, "w");
	if (!f) {
		log_msg("warning: cannot save session to %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "mac=%s\nimage=%s\nmode=%d\nkind=%u\nnonce=%u\ndgram=%u\nwindow=%u\n", mac,
		ss->img->name, ss->mode, ss->kind, ss->nonce, ss->dgram, ss->window);
	if (fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, path))
		log_msg("warning: cannot save session to %s: %s", path, strerror(errno));
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

void session_end(struct server *s, struct session *ss, const char *why)
{
	char path[PATH_MAX], data[PATH_MAX], map[PATH_MAX], mac[18];

	nd_mac_format(ss->mac, mac);
	log_msg("detach mac=%s ip=%s image=%s mode=%s (%s)", mac, ss->peer, ss->img->name,
		nd_mode_text(ss->mode), why);
	session_unlink(s, ss);
	trace_end(ss);
	if (ss->own)
		layer_flush(ss->own);
	layer_close(ss->own);
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
	if (!ss->nbd_conns)
		free(ss); /* else the last NBD connection frees it */
}

/* Give the session the layer its mode needs.  0, or -1 with a message. */
static int session_layers(struct server *s, struct session *ss, int fresh, char *err,
			  size_t errlen)
{
	char data[PATH_MAX], map[PATH_MAX], mac[18];
	int stale = 0;

	switch (ss->mode) {
	case ND_MODE_DIRECT:
		ss->own = file_layer_open(ss->img->path, 1, err, errlen);
		ss->top = ss->own;
		if (ss->own)
			ss->img->writer = ss;
		return ss->own ? 0 : -1;
	case ND_MODE_READONLY:
		ss->top = ss->img->base;
		return 0;
	default:
		overlay_paths(s, ss, data, map);
		ss->own = overlay_open(ss->img->base, data, map, fresh, &stale, err, errlen);
		ss->top = ss->own;
		if (stale) {
			nd_mac_format(ss->mac, mac);
			log_msg("overlay of %s on image %s was made over an older version of the image; "
				"starting it afresh", mac, ss->img->name);
		}
		return ss->own ? 0 : -1;
	}
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
	int i;

	for (i = 0; i < c->nclients; i++)
		if (!memcmp(c->clients[i].mac, mac, 6))
			return &c->clients[i];
	return NULL;
}

/* The image and mode a client gets.  NULL with *status set if none. */
static struct image *choose_image(struct server *s, const uint8_t mac[6], const char *want,
				  int *mode, unsigned *status)
{
	const struct client_rule *r = find_rule(&s->cfg, mac);
	const char *name = want[0] ? want : (r && r->image[0]) ? r->image : s->cfg.default_image;
	struct image *im;

	if (!r && !s->cfg.allow_unlisted) {
		*status = ND_ERR_DENIED;
		return NULL;
	}
	if (r && r->image[0] && strcmp(r->image, name)) {
		*status = ND_ERR_DENIED; /* this client is bound to another image */
		return NULL;
	}
	im = config_image(&s->cfg, name);
	if (!im) {
		*status = ND_ERR_NOIMAGE;
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
	uint32_t nonce;
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

struct session *session_attach(struct server *s, const struct nd_attach_req *req,
			       const char *peer, unsigned *status)
{
	char want[NAME_MAX_LEN + 1], err[512], mac[18];
	struct holders h = { 0 };
	struct session *ss;
	int mode;

	memcpy(want, req->image, NAME_MAX_LEN);
	want[NAME_MAX_LEN] = 0;
	h.mac = req->mac;
	h.nonce = nd_get32(req->nonce);
	h.img = choose_image(s, req->mac, want, &mode, status);
	if (!h.img)
		return NULL;
	for_each_session(s, note_holder, &h);
	if (h.same && h.same->nonce == h.nonce && h.same->mode == mode)
		return h.same; /* a retried ATTACH: same answer */
	if (h.writer_live || (mode == ND_MODE_DIRECT && h.others_live)) {
		*status = ND_ERR_BUSY;
		return NULL;
	}
	if (h.same)
		session_end(s, h.same, "client attached again");
	if (s->nsessions >= s->cfg.max_sessions) {
		log_msg("attach refused: %u sessions open (max-sessions)", s->nsessions);
		*status = ND_ERR_BUSY;
		return NULL;
	}
	if (mode == ND_MODE_DIRECT)
		for_each_session(s, end_idle, &h);

	ss = calloc(1, sizeof(*ss));
	if (!ss) {
		*status = ND_ERR_IO;
		return NULL;
	}
	memcpy(ss->mac, req->mac, 6);
	ss->kind = req->client_kind;
	ss->caps = nd_get32(req->caps);
	ss->img = h.img;
	ss->mode = mode;
	ss->nonce = h.nonce;
	ss->last_seen = time(NULL);
	snprintf(ss->peer, sizeof(ss->peer), "%s", peer);
	negotiate(s, ss, nd_get16(req->max_dgram), nd_get16(req->window));
	if (getrandom(ss->token, sizeof(ss->token), 0) != sizeof(ss->token) ||
	    session_layers(s, ss, mode == ND_MODE_VOLATILE, err, sizeof(err)) < 0) {
		log_msg("attach refused: %s", err);
		free(ss);
		*status = ND_ERR_IO;
		return NULL;
	}
	session_insert(s, ss);
	session_save(s, ss);
	nd_mac_format(ss->mac, mac);
	log_msg("attach mac=%s ip=%s image=%s mode=%s boot_table=%s", mac, peer, ss->img->name,
		nd_mode_text(ss->mode), ss->caps & ND_CAP_BOOT_TABLE ? "yes" : "no");
	return ss;
}

/* Rebuild one session from its file; 0 on success. */
static int restore_one(struct server *s, const char *hex, FILE *f)
{
	char line[256], image[NAME_MAX_LEN + 1] = "", macs[32] = "", err[512];
	unsigned mode = 0, kind = 0, nonce = 0, dgram = 0, window = 0, i;
	struct session *ss;

	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "mac=%31s", macs);
		sscanf(line, "image=%64s", image);
		sscanf(line, "mode=%u", &mode);
		sscanf(line, "kind=%u", &kind);
		sscanf(line, "nonce=%u", &nonce);
		sscanf(line, "dgram=%u", &dgram);
		sscanf(line, "window=%u", &window);
	}
	ss = calloc(1, sizeof(*ss));
	if (!ss || strlen(hex) != 32 || nd_mac_parse(macs, ss->mac) < 0 || mode < 1 || mode > 4 ||
	    dgram < ND_MIN_DGRAM || dgram > ND_MAX_DGRAM || !(ss->img = config_image(&s->cfg, image)))
		goto fail;
	for (i = 0; i < 16; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &ss->token[i]) != 1)
			goto fail;
	ss->mode = (int)mode;
	ss->kind = (uint8_t)kind;
	ss->nonce = nonce;
	ss->last_seen = time(NULL);
	snprintf(ss->peer, sizeof(ss->peer), "(restored)");
	negotiate(s, ss, dgram, window);
	if (session_layers(s, ss, 0, err, sizeof(err)) < 0) {
		log_msg("cannot restore session %s: %s", hex, err);
		goto fail;
	}
	session_insert(s, ss);
	return 0;
fail:
	free(ss);
	return -1;
}

void sessions_restore(struct server *s)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *d;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/sessions", s->state_dir);
	dp = opendir(dir);
	if (!dp)
		return;
	while ((d = readdir(dp))) {
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (restore_one(s, d->d_name, f) < 0) {
			log_msg("dropping unusable session record %s", path);
			unlink(path);
		}
		fclose(f);
	}
	closedir(dp);
	if (s->nsessions)
		log_msg("restored %u session(s) from %s", s->nsessions, dir);
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
			free(ss);
		}
		s->bucket[b] = NULL;
	}
	for (i = 0; i < s->cfg.nimages; i++)
		layer_close(s->cfg.images[i].base);
	if (s->temp_state) {
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->state_dir);
		if (system(cmd) != 0)
			log_msg("warning: could not remove %s", s->state_dir);
	}
}

void session_storage_error(const struct session *ss, const char *op, uint64_t off,
			   uint64_t len, int rc)
{
	char mac[ND_MAC_STRLEN + 1];
	const char *name = strerrorname_np(-rc);

	nd_mac_format(ss->mac, mac);
	nd_log(ND_LOG_ERROR, "storage error, %s: op=%s image=%s mac=%s ip=%s offset=%llu "
	       "len=%llu errno=%s", strerror(-rc), op, ss->img->name, mac, ss->peer,
	       (unsigned long long)off, (unsigned long long)len, name ? name : "unknown");
}
