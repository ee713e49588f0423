/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metrics and dashboard listener (metrics-listen, off by default): a
 * minimal HTTP/1.0 server on its own thread answering GET /metrics
 * (Prometheus text), GET /api/status (JSON) and GET / (the dashboard page,
 * server/dashboard.html built in).  One connection at a time, each bounded
 * in size and time, closed after its reply: it is for a scraper and a few
 * browsers, not the Internet.
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "netdiskd.h"
#include "dashboard.h" /* dashboard_html, dashboard_html_len: generated (server/build.mk) */

#define REQUEST_MAX 4096     /* bytes of a request head */
#define REQUEST_TIMEOUT_MS 2000

static pthread_t http_thread;
static volatile int http_stop;

/* Parse "GET /path HTTP/1.x" (or HEAD): the path (NUL-ended in place), or
 * NULL with *method_ok -1 for another method (a word of capitals), else 0. */
const char *http_request_path(char *head, size_t len, int *method_ok)
{
	char *sp, *path, *end;
	size_t m = 0;

	*method_ok = 0;
	if (len < 14 || !memchr(head, '\n', len))
		return NULL;
	if (strncmp(head, "GET ", 4) && strncmp(head, "HEAD ", 5)) {
		while (m < len && head[m] >= 'A' && head[m] <= 'Z')
			m++;
		if (m > 0 && m < len && head[m] == ' ')
			*method_ok = -1;
		return NULL;
	}
	sp = memchr(head, ' ', len);
	path = sp + 1;
	end = memchr(path, ' ', len - (size_t)(path - head));
	if (!end || *path != '/' || strncmp(end + 1, "HTTP/1.", 7))
		return NULL;
	*end = 0;
	for (char *c = path; c < end; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return NULL;
	*method_ok = 1;
	return path;
}

static void respond(int fd, int code, const char *reason, const char *type, const char *body,
		    size_t len, int head_only)
{
	char h[256];
	int n = snprintf(h, sizeof(h), "HTTP/1.0 %d %s\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
			 code, reason, type, len);

	/* (SIGPIPE is ignored: a client that went away only fails the write) */
	if (nd_write_full(fd, h, (size_t)n) == 0 && !head_only)
		nd_write_full(fd, body, len);
}

/* Read one request head within the time limit; its length, or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	int64_t deadline = (int64_t)(metrics_now_ns() / 1000000) + REQUEST_TIMEOUT_MS;

	while (len < cap - 1) {
		int64_t left = deadline - (int64_t)(metrics_now_ns() / 1000000);
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = 0;
		if (memmem(buf, len, "\r\n\r\n", 4) || memmem(buf, len, "\n\n", 2))
			return (ssize_t)len;
	}
	return -1;
}

static void serve_one(struct server *s, int fd)
{
	char buf[REQUEST_MAX + 1];
	struct strbuf out = { 0 };
	ssize_t len = read_head(fd, buf, sizeof(buf));
	int ok = 0, head_only;
	const char *path = len > 0 ? http_request_path(buf, (size_t)len, &ok) : NULL;

	head_only = len > 0 && !strncmp(buf, "HEAD ", 5);
	if (ok < 0) {
		respond(fd, 405, "Method Not Allowed", "text/plain", "GET only\n", 9, 0);
	} else if (!path) {
		if (len > 0)
			respond(fd, 400, "Bad Request", "text/plain", "bad request\n", 12, 0);
	} else if (!strcmp(path, "/metrics")) {
		pthread_rwlock_rdlock(&s->lock);
		metrics_render(s, &out);
		pthread_rwlock_unlock(&s->lock);
		respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", out.p ? out.p : "",
			out.len, head_only);
	} else if (!strcmp(path, "/api/status")) {
		pthread_rwlock_rdlock(&s->lock);
		status_json(s, &out);
		pthread_rwlock_unlock(&s->lock);
		respond(fd, 200, "OK", "application/json", out.p ? out.p : "", out.len, head_only);
	} else if (!strcmp(path, "/") || !strcmp(path, "/index.html")) {
		respond(fd, 200, "OK", "text/html; charset=utf-8", (const char *)dashboard_html,
			dashboard_html_len, head_only);
	} else {
		respond(fd, 404, "Not Found", "text/plain", "not found\n", 10, head_only);
	}
	free(out.p);
}

static void *http_main(void *arg)
{
	struct server *s = arg;

	while (!__atomic_load_n(&http_stop, __ATOMIC_RELAXED)) {
		struct pollfd p = { s->http_fd, POLLIN, 0 };
		int fd;

		if (poll(&p, 1, 200) <= 0)
			continue;
		fd = accept4(s->http_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(100000); /* out of fds: the UDP side matters more */
			continue;
		}
		serve_one(s, fd);
		close(fd);
	}
	return NULL;
}

int http_open(struct server *s, char *err, size_t errlen)
{
	s->http_fd = -1;
	if (!s->cfg.metrics_listen[0])
		return 0;
	s->http_fd = listen_socket(s->cfg.metrics_listen, SOCK_STREAM, err, errlen);
	if (s->http_fd < 0)
		return -1;
	if (listen(s->http_fd, 16) < 0) {
		snprintf(err, errlen, "metrics-listen %s: listen: %s", s->cfg.metrics_listen,
			 strerror(errno));
		close(s->http_fd);
		s->http_fd = -1;
		return -1;
	}
	if (pthread_create(&http_thread, NULL, http_main, s)) {
		snprintf(err, errlen, "metrics-listen: pthread_create failed");
		close(s->http_fd);
		s->http_fd = -1;
		return -1;
	}
	log_msg("metrics and dashboard on http://%s/ (/metrics, /api/status)",
		s->cfg.metrics_listen);
	return 0;
}

void http_close(struct server *s)
{
	if (s->http_fd < 0)
		return;
	__atomic_store_n(&http_stop, 1, __ATOMIC_RELAXED);
	pthread_join(http_thread, NULL);
	close(s->http_fd);
	s->http_fd = -1;
}
