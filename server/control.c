/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The admin control socket: a unix stream socket (STATE/control, mode 0660)
 * taking one request line per connection: `status` (metrics.c, for netdisk
 * status) and `netdisk image ...`'s commands (store.c). */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "netdiskd.h"

#define CONTROL_MAX 4096  /* bytes in a request line */
#define CONTROL_ARGS 8    /* fields in a request */
#define CONTROL_FIELD 1024

void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
		char *p = realloc(b->p, cap);

		if (!p)
			return;
		b->p = p;
		b->cap = cap;
	}
}

/*
 * A request is one line: fields separated by TAB, ended by one '\n'; the
 * first field is the command, KEY=VALUE fields are options.  No empty
 * fields, no other control characters, at most CONTROL_ARGS fields of
 * CONTROL_FIELD bytes.  The fields are cut out of `line` in place.
 */
int control_parse(char *line, size_t len, char **argv, int maxargs, char *err, size_t errlen)
{
	size_t i, start = 0;
	int argc = 0;

	if (len == 0 || len > CONTROL_MAX || line[len - 1] != '\n') {
		snprintf(err, errlen, "a request is one line of at most %d bytes ended by a newline",
			 CONTROL_MAX);
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\t' || i == len - 1) {
			if (i == start) {
				snprintf(err, errlen, "empty field %d", argc + 1);
				return -1;
			}
			if (i - start > CONTROL_FIELD) {
				snprintf(err, errlen, "field %d longer than %d bytes", argc + 1, CONTROL_FIELD);
				return -1;
			}
			if (argc == maxargs) {
				snprintf(err, errlen, "more than %d fields", maxargs);
				return -1;
			}
			line[i] = 0;
			argv[argc++] = line + start;
			start = i + 1;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(err, errlen, "control character 0x%02x in field %d", c, argc + 1);
			return -1;
		}
	}
	return argc;
}

int control_open(struct server *s, char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (s->cfg.control[0])
		snprintf(s->control_path, sizeof(s->control_path), "%s", s->cfg.control);
	else
		snprintf(s->control_path, sizeof(s->control_path), "%s/control", s->state_dir);
	if (strlen(s->control_path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "control socket path %s too long (at most %zu bytes): give "
			 "--control PATH", s->control_path, sizeof(a.sun_path) - 1);
		return -1;
	}
	memcpy(a.sun_path, s->control_path, strlen(s->control_path) + 1);
	/* A socket left by a netdiskd that died; anything else is not ours to remove. */
	if (lstat(s->control_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(s->control_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "control socket: socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(s->control_path, 0660) < 0 ||
	    listen(fd, 16) < 0) {
		snprintf(err, errlen, "control socket %s: bind/chmod/listen: %s", s->control_path,
			 strerror(errno));
		close(fd);
		return -1;
	}
	s->control_fd = fd;
	return 0;
}

void control_close(struct server *s)
{
	if (s->control_fd < 0)
		return;
	close(s->control_fd);
	unlink(s->control_path);
	s->control_fd = -1;
}

static void reply(int fd, const char *text, size_t len)
{
	while (len) {
		ssize_t n = write(fd, text, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

/* Serve one waiting connection, if any (the caller holds the server lock). */
void control_serve(struct server *s)
{
	char buf[CONTROL_MAX + 1], msg[512], *argv[CONTROL_ARGS];
	struct timeval tv = { 1, 0 };
	struct strbuf out = { 0 };
	struct ucred cred = { 0 };
	socklen_t credlen = sizeof(cred);
	size_t len = 0;
	int fd = s->control_fd < 0 ? -1 : accept4(s->control_fd, NULL, NULL, SOCK_CLOEXEC), argc;

	if (fd < 0)
		return;
	/* A slow client holds the server for at most a second. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen);
	while (len < sizeof(buf) - 1 && (len == 0 || buf[len - 1] != '\n')) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	argc = control_parse(buf, len, argv, CONTROL_ARGS, msg, sizeof(msg));
	if (argc > 0) {
		nd_log(ND_LOG_DEBUG, "control request uid=%u cmd=%s", (unsigned)cred.uid, argv[0]);
		if (!strcmp(argv[0], "status") && argc == 1) {
			status_lines(s, &out);
			reply(fd, "ok\n", 3);
			reply(fd, out.p ? out.p : "", out.len);
		} else if (store_cmd(s, argc, argv, &out, msg, sizeof(msg)) == 0) {
			reply(fd, "ok\n", 3);
			if (out.p)
				reply(fd, out.p, out.len);
		} else {
			argc = -1;
		}
	}
	if (argc < 0) {
		char line[sizeof(msg) + 8];
		int n = snprintf(line, sizeof(line), "error %s\n", msg);

		reply(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
	free(out.p);
	close(fd);
}
