/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdiskd's shared types: configuration, images, sessions and the server. */
#ifndef NETDISKD_H
#define NETDISKD_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include "wcache.h"
#include "netdisk/proto.h"
#include "layer.h"
#include "log.h"
#include "mcast.h"
#include "metrics.h"
#include "persona.h"
#include "ndcommon.h"
#include "store.h"
#include "iscsi_chap.h"

#define NAME_MAX_LEN ND_IMAGE_NAME_LEN /* image names fit the wire field */

/* A disk image the server offers. */
struct image {
	char name[NAME_MAX_LEN + 1];
	char path[PATH_MAX];
	int mode;                /* default write mode for its clients */
	struct layer *base;      /* the image file, read-only */
	struct session *writer;  /* the direct-mode writer, if any */
	struct store *store;     /* its versions (store.c) */
	struct persona_image persona; /* personalization templates (persona.c) */
	char write_cache[WC_TEXT_MAX + 1]; /* its clients' agent write cache, "" = none */
	struct iscsi_chap chap;  /* iscsi-chap-* keys for logins to its target (iscsi.h) */
	int takeover;            /* enum takeover: how the OS takes over its clients, 0 = global */
};

/* What the config says about one client MAC. */
struct client_rule {
	uint8_t mac[6];
	char image[NAME_MAX_LEN + 1]; /* "" = the default image */
	int mode;                     /* 0 = the image's mode */
	int line;                     /* of its [client] header in the config file */
	int tester;                   /* reads the image's test version (tester = yes) */
	int on_update_reset;          /* persistent overlay follows production (on-update = reset) */
	char group[32];               /* canary group (group = NAME), "" = none */
	struct persona_client persona; /* its hostname and variables (persona.c) */
	char write_cache[WC_TEXT_MAX + 1]; /* overrides the image's, "" = the image's */
	char iscsi_initiator[224];    /* iscsi-initiator = IQN mapped to this client, "" = none */
	struct iscsi_chap chap;       /* iscsi-chap-* keys for its logins (iscsi.h) */
	int takeover;                 /* enum takeover, 0 = the image's */
};

struct config {
	char listen[128];         /* ADDR:PORT for UDP (and NBD over TCP) */
	char state_dir[PATH_MAX]; /* "" = a private temporary directory */
	char default_image[NAME_MAX_LEN + 1];
	int allow_unlisted;       /* serve MACs without a [client] section */
	unsigned session_timeout; /* seconds of silence before a session is idle */
	unsigned max_dgram;       /* largest datagram the server sends */
	unsigned window;          /* most data datagrams a client may have in flight */
	unsigned max_sessions;    /* sessions open at once; more ATTACHes get ND_ERR_BUSY */
	unsigned nbd_handshake_timeout; /* seconds from connect to a chosen export */
	unsigned nbd_idle_timeout;      /* seconds without a request before closing; 0 = never */
	unsigned nbd_io_timeout;        /* seconds a request's data or reply may stall */
	unsigned nbd_memory_mib;        /* request data all NBD connections hold at once */
	unsigned nbd_connect_rate;      /* NBD connections a second per source address; 0 = any */
	unsigned nbd_per_address;       /* NBD connections open per source address; 0 = any */
	char control[PATH_MAX];   /* the admin control socket; "" = STATE/control */
	char trace_dir[PATH_MAX]; /* "" = no read traces; else a file per session (trace.c) */
	unsigned trace_max;       /* reads recorded per session at most */
	unsigned boot_limit;      /* seconds a firmware boot may take to reach the OS handoff */
	unsigned persona_key_pool; /* SSH host key sets kept ready for unlisted clients (persona.c) */
	struct mcast_config mc;   /* the multicast-* keys (mcast.h) */
	char metrics_listen[128]; /* ADDR:PORT of /metrics and the dashboard; "" = off */
	int nbd_tls;              /* enum nbd_tls: STARTTLS off, offered or required */
	char nbd_tls_psk_file[PATH_MAX];     /* "identity:hexkey" lines; "" = no PSK */
	char nbd_tls_certificates[PATH_MAX]; /* dir: server-cert.pem, server-key.pem[, ca-cert.pem] */
	int nbd_exports;          /* enum nbd_exports: which export names NBD clients may open */
	int nbd_session_any_address; /* session:TOKEN from any address (else only its own) */
	int iscsi_exports;        /* enum nbd_exports: which targets unlisted initiators may log in to */
	char iscsi_listen[128];   /* ADDR:PORT of the iSCSI target; "" = off */
	char iscsi_prefix[160];   /* target names: PREFIX:IMAGE, PREFIX:session:TOKEN */
	int takeover;             /* enum takeover: the default (nbd) */
	int mac_binding_off;      /* mac-binding = off: an unkeyed ATTACH may take a MAC from any address */
	char site_key_file[PATH_MAX];  /* site-key: every UDP ATTACH signed with it; "" = none */
	char admin_key_file[PATH_MAX]; /* admin-key: direct/maintenance mode only with it: a file,
					 * "auto" (STATE/admin.key, made at first start) or "none" */
	struct image *images;
	int nimages;
	struct client_rule *clients;
	int nclients;
};

enum nbd_tls { NBD_TLS_OFF, NBD_TLS_ON, NBD_TLS_REQUIRE };
enum nbd_exports { NBD_EXPORTS_IMAGES, NBD_EXPORTS_SESSIONS, NBD_EXPORTS_OFF };
/* takeover = nbd|iscsi: how the OS takes a firmware stub's session over
 * (docs/handoff.md); 0 in an [image] or [client] section = inherit. */
enum takeover { TAKEOVER_NBD = 1, TAKEOVER_ISCSI = 2 };

/* A client's session: one image, one write mode, one token. */
struct session {
	struct session *next;  /* hash chain */
	uint8_t token[16];
	uint8_t mac[6];
	uint8_t kind;          /* enum nd_client_kind */
	uint32_t caps;         /* ND_CAP_* from its ATTACH */
	struct image *img;
	int mode;
	struct layer *top;     /* where this session's I/O goes */
	struct layer *own;     /* the layer it owns (overlay or writable image), or NULL */
	struct vnode *vn;      /* the image version it reads (store.h), a reference */
	struct layer *persona; /* its personalization layer over vn->top (persona.c), or NULL */
	uint64_t persona_id;   /* ... that layer's id */
	unsigned vnum;         /* ... its number: pinned until the client attaches again */
	int boot_counted;      /* its boot was counted as reaching the OS handoff or not */
	uint32_t nonce;        /* from ATTACH: a retried ATTACH gets the same session */
	uint16_t dgram, chunk, window;
	uint32_t max_sectors;
	/* The WRITE being received: its fragments apply once, older ids never. */
	int write_valid;
	int write_done;
	uint32_t write_id;
	uint64_t write_lba;
	uint32_t write_count;
	uint64_t write_got;    /* fragments received (bit per chunk) */
	time_t last_seen;      /* (atomic: NBD workers set it without the server lock) */
	time_t attached;       /* when the ATTACH that made it came (retry window) */
	time_t saved_seen;     /* last_seen as last recorded (session file's mtime) */
	char peer[64];         /* "IP:PORT" it attached from */
	struct sockaddr_storage addr; /* UDP: the only address its requests are served from */
	socklen_t addrlen;     /* 0: none (made by NBD, never served over UDP) */
	int used;              /* a request came after the ATTACH (else first to evict) */
	unsigned errs_logged;  /* storage-error kinds already logged (session_storage_error) */
	int wrong_peer_logged; /* its token came from another address: said once */
	int nbd_conns;         /* NBD or iSCSI connections using it (keep it live) */
	int os_iscsi;          /* the last of them came over iSCSI (status: transport) */
	int nbd_owned;         /* made by NBD: ends with its last connection */
	int ended;             /* ended while NBD connections still point at it */
	/* Held shared by every NBD request on the session while it uses the
	 * layers, exclusively by session_end to close them: NBD requests take
	 * only this (and the overlay's own lock), never the server lock, so one
	 * session's writes and fsyncs do not hold up another's reads. */
	pthread_rwlock_t io_lock;
	FILE *trace;           /* its read trace (trace.c), once it read */
	int trace_off;         /* not (any more) traced */
	unsigned long trace_reads;
	struct timespec trace_t0; /* its first read */
	int mc_group;          /* 1 + the index of the multicast group it joined, 0 = none */
	unsigned mc_hold_ms;   /* the hold-back its ATTACH reply announced (mcast_hold) */
	struct session_counters cnt; /* what it did (metrics.c; atomic) */
	int64_t attach_ms;     /* wall clock of its ATTACH (0: restored, unknown) */
	int64_t os_ms;         /* ... of the OS taking it over by NBD, 0 = not yet */
};

struct rate_table;

/* Counters of what the server dropped or refused, for logs and tests. */
struct stats {
	unsigned long datagrams, malformed, bad_session, stale_writes;
	unsigned long wrong_peer;    /* a valid token from an address other than its session's */
	unsigned long attach_limited; /* ATTACHes dropped by the per-source rate limit */
	unsigned long short_attach;  /* ATTACHes shorter than their reply (amplification) */
	unsigned long auth_refused;  /* ATTACHes refused: site key missing, wrong or stale (auth.c) */
	unsigned long mac_bound;     /* unkeyed ATTACHes refused by mac-binding (another address's MAC) */
	unsigned long expired, evicted;
	unsigned long long tx_unicast;   /* bytes of UDP replies to clients, headers included */
	unsigned long long tx_multicast; /* bytes sent to multicast groups (mcast.c) */
	unsigned long tx_mc_datagrams, mc_reads;
	unsigned long repairs;   /* retransmitted READs of group members, answered by unicast */
	unsigned long mc_capped; /* READs answered by unicast because of multicast-rate */
	unsigned long mc_dedup;  /* blocks asked for that the group had carried lately */
};

struct server {
	struct config cfg;
	char state_dir[PATH_MAX]; /* the one in use (configured or temporary) */
	int temp_state;           /* state_dir is ours to remove at exit */
	char admin_key_path[PATH_MAX]; /* the admin key in use (auth.c), "" = admin-key = none */
	struct session *bucket[256];
	unsigned nsessions;
	struct stats stats;
	uint8_t *iobuf;           /* one request's data */
	size_t iobuf_size;
	/* Sends `n` datagrams (iov pairs: header, data) to `to`. */
	void (*send)(struct server *s, struct iovec (*iov)[2], unsigned n,
		     const struct sockaddr *to, socklen_t tolen);
	int udp_fd;
	int nbd_fd;               /* NBD listener, or -1 */
	unsigned nbd_open;        /* NBD connections being served (atomic) */
	unsigned iscsi_open;      /* iSCSI connections being served (atomic) */
	unsigned fd_limit;        /* RLIMIT_NOFILE in force; 0 = unknown (no fd checks) */
	char refusal[256];        /* why session_attach last refused, if it said ("" if not) */
	pthread_rwlock_t lock;    /* the session table and sessions' policy fields (not their I/O) */
	struct rate_table *attach_rate; /* ATTACHes per source address, or NULL: no limit */
	time_t last_sweep;        /* when idle sessions were last looked for */
	time_t alive_touched;     /* when the state directory's "alive" file was last touched */
	int control_fd;           /* the admin control socket (control.c), or -1 */
	char control_path[PATH_MAX];
	struct mcast_state *mc;   /* multicast groups (mcast.c), or NULL: multicast off */
	struct metrics metrics;   /* counters for status and /metrics (metrics.c) */
	int http_fd;              /* the metrics and dashboard listener (http.c), or -1 */
	int iscsi_fd;             /* the iSCSI listener (iscsi.c), or -1 */
	struct auth_state *auth;  /* site and admin keys (auth.c), or NULL: none configured */
};

/* How an ATTACH proved itself (auth.c). */
/* AUTH_ANON: an iSCSI initiator no [client] section names, never direct mode. */
enum attach_auth { AUTH_NONE, AUTH_SITE, AUTH_ADMIN, AUTH_ANON };

/* config.c */
void config_defaults(struct config *c);
int config_load(struct config *c, const char *path, char *err, size_t errlen);
int config_add_image(struct config *c, const char *name, const char *path, int mode,
		     char *err, size_t errlen);
int config_check(struct config *c, char *err, size_t errlen);
struct image *config_image(struct config *c, const char *name);
/* The [client] section of a MAC, or of an iscsi-initiator name; NULL if none. */
struct client_rule *config_client(struct config *c, const uint8_t mac[6]);
struct client_rule *config_client_iqn(struct config *c, const char *iqn);

/* ibft.c: takeover = nbd|iscsi and the iBFT of a session (docs/handoff.md). */
struct nd_ibft_req;
/* The takeover of a client (r may be NULL) on image im: enum takeover. */
int takeover_of(const struct config *c, const struct client_rule *r, const struct image *im);
/* The CHAP an iSCSI login of this client to this image must pass: the
 * client's if it sets a secret, else the image's (may be empty). */
const struct iscsi_chap *iscsi_chap_for(const struct client_rule *r, const struct image *im);
/* Build the iBFT for a session whose takeover is iscsi from the stub's NIC
 * facts: its length, or -1 with why.  Under the server lock. */
int ibft_for_session(struct server *s, const struct session *ss, const struct nd_ibft_req *q,
		     uint8_t *out, size_t cap, char *why, size_t whylen);
/* takeover = iscsi needs iscsi-listen, and every such client's iBFT must fit
 * ND_IBFT_MAX: 0, or -1 with err (config load and reload). */
int ibft_config_check(const struct config *c, char *err, size_t errlen);
void config_free(struct config *c);

/* session.c */
int server_open_images(struct server *s, char *err, size_t errlen);
int server_state_init(struct server *s, char *err, size_t errlen);
struct session *session_find(struct server *s, const uint8_t token[16]);
/* The write-cache setting the session's agent gets: its client's, else its
 * image's, "" for none (lock held). */
const char *session_write_cache(struct server *s, const struct session *ss);
/* The id of what the session reads under its own overlay (the image version,
 * or its personalization layer): it changes when that content does. */
uint64_t session_image_id(const struct session *ss);
/* A UDP ATTACH; auth is how it proved itself (enum attach_auth). */
struct session *session_attach(struct server *s, const struct nd_attach_req *req,
			       const struct sockaddr *from, socklen_t fromlen, int auth,
			       unsigned *status);
/* auth: AUTH_ADMIN for a connection over TLS (the admin credential),
 * AUTH_ANON for an unlisted iSCSI initiator (never direct mode), else AUTH_NONE. */
struct session *session_attach_nbd(struct server *s, const uint8_t mac[6], const char *image,
				   const char *peer, int auth, unsigned *status);
/* A TCP front end (NBD, iSCSI) continues session TOKEN (32 hex digits), under
 * the server lock: the session (its boot counted as reaching the OS), or NULL
 * with *policy set and why filled when nbd-session-binding refused it. */
struct session *session_continue(struct server *s, const char *hex,
				 const struct sockaddr_storage *sa, int *policy, char *why,
				 size_t whylen);
/* A TCP connection using ss closes (takes the server lock): the last one ends
 * a session it made, frees an ended one. */
void session_conn_put(struct server *s, struct session *ss);
int session_from_peer(const struct session *ss, const struct sockaddr *from, socklen_t fromlen);
int attach_rate_ok(struct server *s, const struct sockaddr *from);
void sessions_sweep(struct server *s);
void session_end(struct server *s, struct session *ss, const char *why);
void session_free(struct session *ss);
void sessions_restore(struct server *s);
void server_close(struct server *s);
int session_live(const struct server *s, const struct session *ss);
/* Log a storage error (a layer call's -errno) where it becomes a client's
 * error status: once per session and kind of error, with operation, image,
 * client, offset and errno. */
void session_storage_error(struct session *ss, const char *op, uint64_t off,
			   uint64_t len, int rc);

/* reload.c: apply a new configuration (SIGHUP) to a running server, all or
 * nothing; 0, or -1 with err saying why nothing was applied.  Takes over
 * n's client array (n keeps the old one, for config_free). */
int config_reload(struct server *s, struct config *n, char *err, size_t errlen);

/* tls.c: NBD over TLS with GnuTLS (PSK and X.509), for nbd.c */
int tls_init(const struct config *c, char *err, size_t errlen);
int tls_enabled(void);
/* The handshake on fd, bounded; the session, or NULL with why.  identity gets
 * "psk:NAME" or "x509:DN" of the client. */
void *tls_accept(int fd, unsigned timeout_ms, char *identity, size_t idlen, char *why,
		 size_t whylen);
ssize_t tls_recv(void *session, void *buf, size_t len);
int tls_pending(void *session);
int tls_send_all(void *session, const void *buf, size_t len);
int tls_send2(void *session, const void *a, size_t alen, const void *b, size_t blen);
void tls_close(void *session);
/* Identities in a PSK file's text, or -1 with err (for the config check and the fuzzer). */
int tls_psk_count(const char *text, char *err, size_t errlen);

/* session.c: make path and its missing parents (mode 0700); 0, or -1 (errno). */
int mkdirs(const char *path);

/* http.c: the metrics-listen thread (off when the key is not set) */
int http_open(struct server *s, char *err, size_t errlen);
void http_close(struct server *s);
/* "GET /path HTTP/1.x" (or HEAD): the path, cut out in place, or NULL;
 * *method_ok -1 for another method (exported for the fuzzer). */
const char *http_request_path(char *head, size_t len, int *method_ok);

/* control.c */
int control_open(struct server *s, char *err, size_t errlen);
void control_serve(struct server *s); /* one connection, under the server lock */
void control_close(struct server *s);
/* Parse one request line into NUL-terminated fields; their count, or -1 with err. */
int control_parse(char *line, size_t len, char **argv, int maxargs, char *err, size_t errlen);

/* limits.c */
#define FD_RESERVE 16 /* fds kept free for transient opens, accepts and logs */
void fd_limit_raise(struct server *s);
int fds_in_use(void);
int fds_short(const struct server *s, unsigned need, unsigned reserve, char *why, size_t whylen);
struct rate_table;
struct rate_table *rate_table_new(void);
void rate_table_free(struct rate_table *t);
int rate_allow(struct rate_table *t, const struct sockaddr *sa, unsigned rate, unsigned burst,
	       unsigned report_s, unsigned *refused);
int addr_conn_take(const struct sockaddr *sa, unsigned max, unsigned *open);
void addr_conn_give(const struct sockaddr *sa);
int64_t mono_now_ms(void);
/* A TCP connection's reads wait until deadline_ms (CLOCK_MONOTONIC; 0 = for
 * ever), or with stall_s set, until stall_s seconds pass without a byte. */
struct io_limit {
	int64_t deadline_ms;
	unsigned stall_s;
	const char *awaiting;  /* what the reader waits for, for the log */
	const char *key;       /* the setting that bounds the wait */
	unsigned secs;
	int timed_out;         /* a read ran out of time: the log says so */
};
/* From now on reads wait for `what` until `secs` from now (0: for ever), or with
 * `stall`, until `secs` pass without a byte. */
void io_expect(struct io_limit *l, const char *what, const char *key, unsigned secs, int stall);
/* Wait until fd has input or the limit runs out (-1, timed_out set). */
int io_wait(struct io_limit *l, int fd);
/* One front end's refusals at accept (logged once a second) and connect rates. */
struct refusals {
	const char *proto;     /* "nbd", "iscsi": the log line's first word */
	pthread_mutex_t lock;
	int64_t last;
	unsigned quiet;
	struct rate_table *rates;
};
/* May a new connection from sa be served, with open_now TCP connections open:
 * max-sessions, nbd-per-address, nbd-connect-rate and file descriptors?  1
 * (the address's count taken: addr_conn_give at its end), or 0 (refused,
 * logged; the caller closes it). */
int tcp_admit(struct server *s, struct refusals *r, unsigned open_now,
	      const struct sockaddr_storage *sa, const char *peer);
/* Run fn(arg) on a detached thread of its own: 0, or -1. */
int tcp_spawn(void *(*fn)(void *), void *arg);
/* Log a refusal of its own (rate-limited like tcp_admit's). */
void tcp_refused(struct refusals *r, const char *peer, const char *why);

/* auth.c: the site key (docs/security.md) */
struct auth_state;
int auth_init(struct server *s, char *err, size_t errlen);
void auth_free(struct server *s);
/* Check a whole ATTACH datagram (len >= ND_HDR_SIZE + ND_ATTACH_REQ_LEN):
 * AUTH_SITE or AUTH_ADMIN if its authenticator is right and its challenge
 * fresh, else -1 with a challenge for `from` in challenge[16] and why. */
int auth_check(struct server *s, const uint8_t *pkt, const struct sockaddr *from,
	       uint8_t challenge[16], const char **why);
/* Is every UDP ATTACH to carry the site key (site-key set)? */
int auth_site_required(const struct server *s);
/* fsync a directory (store.c), so that names made in it survive a crash.  0 or -errno. */
int fsync_dir(const char *dir);
/* Does direct/maintenance mode over UDP need the admin key (admin-key set)? */
int auth_admin_required(const struct server *s);
/* Log a refused ATTACH: once per source address and minute, with counts. */
void auth_log_refusal(struct server *s, const struct sockaddr *from, const uint8_t mac[6],
		      const char *why);

/* udp.c */
void handle_datagram(struct server *s, const uint8_t *pkt, size_t len,
		     const struct sockaddr *from, socklen_t fromlen);
void format_peer(const struct sockaddr *sa, char *out, size_t outlen);

/* net.c */
int listen_socket(const char *listen, int socktype, char *err, size_t errlen);

/* An info-level log line (common/log.h has the levels and the format). */
#define log_msg(...) nd_log(ND_LOG_INFO, __VA_ARGS__)

#endif /* NETDISKD_H */
