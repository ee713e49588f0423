/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The versioned image store: an image is a base file plus a tree of immutable
 * copy-on-write version deltas; sessions read the version they are pinned to. */
#ifndef STORE_H
#define STORE_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "layer.h"

struct server;
struct image;
struct session;
struct client_rule;

enum version_state { VS_MAINTENANCE = 1, VS_TEST, VS_PRODUCTION, VS_RETIRED };

/*
 * One version's open layers, shared by every session reading it: `top` is a
 * version layer (its id never changes, so overlays made over it survive
 * merges) over `own`: the version's delta overlay (over the parent's vnode)
 * or, for a version that is a base, the base file.  Reference counted under
 * the server lock: the store holds one for the version's current vnode, each
 * session one, each child vnode one on the vnode below it.  A merge gives a
 * version a new vnode; the old one lives on while sessions still read it.
 */
struct vnode {
	struct layer *top;
	struct layer *own;
	struct vnode *below;
	unsigned refs;
};

struct version {
	unsigned num;
	unsigned parent;   /* the version its delta is over; 0: it is a base */
	unsigned base;     /* the base generation its chain starts on */
	int has_delta;     /* delta-NUM.data/.map in the store directory */
	int state;         /* enum version_state */
	time_t created;
	uint64_t id;       /* what overlays over it record; 0: the base file's mtime (legacy v1) */
	unsigned long boots_ok, boots_failed;
	char note[200];
	char canary_group[32]; /* in test: also for the clients of this group ("" none) */
	unsigned canary_percent; /* ... and for this percentage of the other clients */
	struct vnode *vn;  /* opened on first use */
};

struct pin {
	uint8_t mac[6];
	unsigned ver;
	int reset;         /* reset onto the current version at its next attach */
};

struct base_file {
	unsigned gen;
	char path[4096];
	uint64_t size, mtime_ns; /* recorded: a base changed behind our back is reported */
};

/* A merge or export running in the background. */
struct store_job {
	pthread_t thread;
	int running;              /* (atomic) */
	int kind;                 /* 1 merge, 2 export */
	unsigned ver;
	uint64_t done, total;     /* (atomic) bytes */
	int result;               /* 0 or -errno, once finished */
	int finished;             /* (atomic) the thread ended; commit under the server lock */
	char out[4096];           /* the file it writes */
	char err[256];
	struct vnode *src;        /* the chain it reads (a reference) */
	struct server *s;
	struct image *img;
	struct timespec started;  /* CLOCK_MONOTONIC */
	double mbps;              /* of the last finished job */
};

struct store {
	char dir[4096];           /* STATE/images/NAME */
	int versioned;            /* has a store file (a version was ever made) */
	uint64_t uid;
	unsigned gen;             /* highest base generation */
	unsigned next;            /* the number the next version gets (never reused) */
	struct base_file *bases;
	int nbases;
	struct version *v;
	int nv;
	struct pin *pins;
	int npins;
	unsigned history[32];     /* earlier production versions, newest last (rollback) */
	int nhistory;
	struct store_job job;
};

/* Give an opened image its in-memory store: version 1 = its file (0 or -1). */
int store_plain(struct image *im, char *err, size_t errlen);
/* Persistent overlays in the state directory made for image im. */
unsigned store_persistent_count(const struct server *s, const struct image *im);
/* Open every image's store (after the state directory exists); 0 or -1 with err. */
int store_init_all(struct server *s, char *err, size_t errlen);
void store_close_all(struct server *s);

/* Parse a store file's text into st (the fuzzer calls it too); 0 or -1 with err. */
int store_parse(struct store *st, const char *text, char *err, size_t errlen);
void store_free(struct store *st);

struct version *store_version(struct store *st, unsigned num);
const char *store_state_name(int state);

/*
 * The version a new session of this client reads, and its vnode (a reference
 * the session owns: store_release it).  `want` is a version to continue
 * (restored sessions), or 0.  For persistent sessions *fresh is set when the
 * overlay must start empty (reset onto a new version).  NULL with err.
 */
struct vnode *store_session_version(struct server *s, struct session *ss, unsigned want,
				    const struct client_rule *r, int *fresh, char *err,
				    size_t errlen);
void store_release(struct vnode *vn);
/* A firmware session reached (ok) or never reached (failed) the OS handoff. */
void store_count_boot(struct server *s, struct session *ss, int ok);
/* Count a firmware session that has not reached the handoff within boot-limit. */
void store_boot_deadline(struct server *s, struct session *ss, time_t now);
/* Finish a background job whose thread ended (main loop, server lock held). */
void store_poll_jobs(struct server *s);

/* Text a control reply is built in (control.c). */
struct strbuf {
	char *p;
	size_t len, cap;
};
void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A control command (control.c parsed it), under the server lock: 0, or -1
 * with msg set; its output is appended to out (text lines). */
int store_cmd(struct server *s, int argc, char **argv, struct strbuf *out, char *msg, size_t msglen);

/* Fault injection for the crash tests: NETDISKD_CRASH=OP:K makes netdiskd
 * _exit(86) at the K-th crash point of OP (new-version, promote, rollback,
 * merge, delete-version). */
void crash_point(const char *op);

#endif /* STORE_H */
