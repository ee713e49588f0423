/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Per-client personalization: the config keys, the template language, and the
 * layer between an image version and a client's overlay that holds each
 * client's identity (hostname, machine-id, SSH host keys, files), built with
 * libext2fs through a copy-on-write I/O manager (docs/personalization.md). */
#ifndef PERSONA_H
#define PERSONA_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct session;
struct config;
struct layer;
struct image;

/* A `file PATH = TEMPLATE` (or `from FILE`) of an image. */
struct persona_file {
	char *path;      /* absolute path in the image's file system */
	char *tmpl;      /* the template text */
	int line;        /* where it was set */
	unsigned mode;   /* permission bits (file-mode), default 0644 */
	unsigned uid, gid; /* file-owner, default 0:0 */
};

/* A `var NAME = VALUE`: an image's default or a client's own value. */
struct persona_var {
	char *name;
	char *value;
};

/* The personalization keys of an [image] section. */
struct persona_image {
	int on;             /* any personalization key was given */
	char *hostname;     /* hostname template, or NULL */
	int machine_id;     /* write /etc/machine-id (default yes when on) */
	int ssh_keys;       /* write SSH host keys (default yes when on) */
	int partition;      /* persona-partition: 1.., or 0: the first ext file system with /etc */
	struct persona_file *files;
	int nfiles;
	struct persona_var *vars;
	int nvars;
	int hostname_line, machine_id_line, ssh_keys_line, partition_line;
};

/* The personalization keys of a [client MAC] section. */
struct persona_client {
	int on;
	char *hostname;     /* its name, or NULL: the image's template names it */
	char *ip;           /* {ip}, or NULL: the address it attached from */
	char *index;        /* {index}, or NULL: its [client] section's position */
	struct persona_var *vars;
	int nvars;
	int hostname_line, ip_line, index_line;
};

/*
 * Config keys.  Each returns 1 if `k` is one of its keys and was set, 0 if it
 * is none of its keys, -1 with err (a message without file and line) if the
 * key or value is bad.  `dir` is the config file's directory (for `from FILE`).
 */
int persona_image_key(struct persona_image *pi, const char *k, const char *v, const char *dir,
		      int line, char *err, size_t errlen);
/* `file PATH from FILE` (a line without '='): the template is FILE's text. */
int persona_image_file_from(struct persona_image *pi, const char *path, const char *file,
			    const char *dir, int line, char *err, size_t errlen);
int persona_client_key(struct persona_client *pc, const char *k, const char *v, int line,
		       char *err, size_t errlen);
void persona_image_free(struct persona_image *pi);
void persona_client_free(struct persona_client *pc);
/* Do two sections say the same (for SIGHUP's log of what changed)? */
int persona_image_equal(const struct persona_image *a, const struct persona_image *b);
int persona_client_equal(const struct persona_client *a, const struct persona_client *b);
/* Cross-checks once the whole config is in (unknown variables, names). */
int persona_config_check(struct config *c, char *err, size_t errlen);

/*
 * The template language: text with {name} variables; {{ and }} are literal
 * braces.  tmpl_check: 0, or -1 with err naming the first problem (an
 * unterminated or empty {}, a lone }, a bad name, or a name `known` says 0 to).
 * tmpl_expand: the text with every variable replaced by `lookup`'s value
 * (malloc'd, NUL-terminated; *outlen its length), or NULL with err.
 */
int tmpl_check(const char *t, int (*known)(const char *name, void *arg), void *arg, char *err,
	       size_t errlen);
char *tmpl_expand(const char *t, const char *(*lookup)(const char *name, void *arg), void *arg,
		  size_t *outlen, char *err, size_t errlen);
/* Is s (len bytes) valid UTF-8 without NUL? */
int utf8_valid(const char *s, size_t len);
/* A config value's escapes: \n, \t, \\ (in place); -1 on another escape. */
int unescape(char *s);

/*
 * The session's personalization layer over ss->vn->top, built (or found in
 * the state directory's cache) for its client and version.  NULL and *status
 * 0 if the session is not personalized; NULL with *status (ND_ERR_PERSONA for
 * what the config or the image cannot give, ND_ERR_IO for the server's own
 * storage) and err if it cannot be had.  *id is the layer's id.
 */
struct layer *persona_open(struct server *s, struct session *ss, uint64_t *id, unsigned *status,
			   int async, char *err, size_t errlen);
/*
 * Builds off the main loop.  With `async`, persona_open never waits for
 * ssh-keygen or a build: it queues them for a worker thread and says
 * *status ND_PERSONA_PENDING (the server lock held throughout).  The attach
 * is then answered when the worker is done: a UDP ATTACH by its `done`
 * (persona_defer: called by the worker under the server lock, with `arg`,
 * which it frees), an NBD one by waiting for it (persona_wait, without the
 * server lock) and attaching again.  The next persona_open of the client
 * takes the build's result (the layer, or its refusal), once.
 */
#define ND_PERSONA_PENDING 0x10000 /* not a wire status: never sent */
/* Is a build of this client's layer for img queued or running? */
int persona_pending(struct server *s, const uint8_t mac[6], const struct image *img);
void persona_defer(struct server *s, const uint8_t mac[6],
		   void (*done)(struct server *s, void *arg), void *arg);
/* The `arg` kept for the client's build, or NULL (server lock held: it stays
 * the waiting one's until the worker takes it under that lock). */
void *persona_deferred(struct server *s, const uint8_t mac[6]);
/* Wait (without the server lock) until the client's build is done: 0, or -1
 * after timeout_s seconds. */
int persona_wait(struct server *s, const uint8_t mac[6], unsigned timeout_s);
/* At exit (server lock held, no more requests): stop the workers after the
 * builds they are doing, drop what is queued. */
void persona_shutdown(void);
/* At start and after a reload: make the SSH host keys of the configured
 * [client] sections that have none yet, in a background thread, so that their
 * first attach does not wait for ssh-keygen. */
void persona_keys_background(struct server *s);
/* At start: every personalized image's current version has a file system the
 * layer can be built in (0, or -1 with err naming the image and partitions). */
int persona_check_images(struct server *s, char *err, size_t errlen);

#endif /* PERSONA_H */
