/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdiskd: serves disk images to network-booting clients over UDP. */

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "nbd.h"
#include "iscsi.h"
#include "netdiskd.h"
#include "trace.h"

#define BATCH 32               /* datagrams taken per recvmmsg */
#define NBD_SHUTDOWN_WAIT_S 10 /* for NBD connection threads to finish at exit */
#define SOCKET_BUFFER (16 << 20)
#define SWEEP_MS 1000          /* idle sessions are looked for at least this often */
#define CONTROL_MS 200         /* the control socket is looked at at least this often */

static volatile sig_atomic_t stopping, reload_requested;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stopping = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: netdiskd [OPTIONS] [IMAGE | NAME=IMAGE ...]\n"
		"Serves disk images to network-booting clients (UDP; see docs/server.md).\n"
		"\n"
		"  IMAGE                 a raw disk image; its name is the file name without\n"
		"                        extension; the first one is the default image\n"
		"  -c, --config FILE     images, clients and modes from FILE (docs/server.md)\n"
		"  -l, --listen ADDR:PORT  where to listen (default 0.0.0.0:%d)\n"
		"  -s, --state-dir DIR   keep overlays and sessions in DIR (default: a\n"
		"                        temporary directory, removed at exit)\n"
		"  -m, --mode MODE       write mode for IMAGE arguments: volatile (default),\n"
		"                        persistent, direct or readonly\n"
		"      --control PATH    the admin control socket (default: STATE/control)\n"
		"      --admin-key FILE|auto|none  the key direct and maintenance mode need\n"
		"                        (default auto: STATE/admin.key, made at first start;\n"
		"                        none: granted by MAC, docs/security.md)\n"
		"      --nbd-exports images|sessions|off  which NBD export names anyone may open\n"
		"                        (default sessions: only a stub's session:TOKEN; images:\n"
		"                        any image by name, for trusted networks and nbdroot=)\n"
		"  -t, --trace-dir DIR   record every session's reads (a boot trace) in a\n"
		"                        file of its own in DIR\n"
		"  -v, --verbose         also log every request (debug level)\n"
		"  -q, --quiet           log only warnings and errors\n"
		"      --log-format FMT  text (default: time level netdiskd: words key=value)\n"
		"                        or json (one object a line)\n"
		"  -h, --help            this text\n",
		ND_DEFAULT_PORT);
}

/* IMAGE or NAME=IMAGE from the command line. */
static int add_image_arg(struct config *c, const char *arg, int mode, char *err, size_t errlen)
{
	char name[NAME_MAX_LEN + 1];
	const char *eq = strchr(arg, '='), *path = eq ? eq + 1 : arg, *base, *dot;
	size_t n;

	if (eq) {
		n = (size_t)(eq - arg);
	} else {
		base = strrchr(path, '/');
		base = base ? base + 1 : path;
		dot = strrchr(base, '.');
		arg = base;
		n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	}
	snprintf(name, sizeof(name), "%.*s", (int)(n < NAME_MAX_LEN ? n : NAME_MAX_LEN + 1), arg);
	return config_add_image(c, name, path, mode, err, errlen);
}

/* What the command line says, kept so that a reload (SIGHUP) builds the
 * configuration the same way as the start did. */
struct cmdline {
	const char *config, *listen, *state, *trace, *control;
	const char *nbd_exports; /* --nbd-exports: over the config file's */
	const char *admin_key;   /* --admin-key: over the config file's */
	int mode;              /* for IMAGE arguments */
	char **images;         /* IMAGE | NAME=IMAGE arguments */
	int nimages;
};

static struct cmdline cmd;

/* Options into `cmd` (and logging set up); exits for --help and bad usage. */
static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, 0, 'c' },
		{ "listen", required_argument, 0, 'l' },
		{ "state-dir", required_argument, 0, 's' },
		{ "mode", required_argument, 0, 'm' },
		{ "trace-dir", required_argument, 0, 't' },
		{ "verbose", no_argument, 0, 'v' },
		{ "quiet", no_argument, 0, 'q' },
		{ "log-format", required_argument, 0, 'F' },
		{ "control", required_argument, 0, 'C' },
		{ "nbd-exports", required_argument, 0, 'E' },
		{ "admin-key", required_argument, 0, 'K' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	enum nd_log_format log_format = ND_LOG_TEXT;
	int log_level = ND_LOG_INFO;
	int opt;

	cmd.mode = ND_MODE_VOLATILE;
	while ((opt = getopt_long(argc, argv, "c:l:s:m:t:vqh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cmd.config = optarg;
			break;
		case 'l':
			cmd.listen = optarg;
			break;
		case 's':
			cmd.state = optarg;
			break;
		case 't':
			cmd.trace = optarg;
			break;
		case 'C':
			cmd.control = optarg;
			break;
		case 'K':
			if (!optarg[0] || strlen(optarg) >= PATH_MAX) {
				fprintf(stderr, "netdiskd: --admin-key takes FILE, auto or none\n");
				return -1;
			}
			cmd.admin_key = optarg;
			break;
		case 'E':
			if (strcmp(optarg, "images") && strcmp(optarg, "sessions") && strcmp(optarg, "off")) {
				fprintf(stderr, "netdiskd: --nbd-exports must be images, sessions or off, "
					"not '%s'\n", optarg);
				return -1;
			}
			cmd.nbd_exports = optarg;
			break;
		case 'm':
			cmd.mode = nd_mode_parse(optarg);
			if (!cmd.mode) {
				fprintf(stderr, "netdiskd: unknown mode '%s' (volatile, persistent, "
					"direct, readonly)\n", optarg);
				return -1;
			}
			break;
		case 'v':
			log_level = ND_LOG_DEBUG;
			break;
		case 'q':
			log_level = ND_LOG_WARN;
			break;
		case 'F':
			if (nd_log_format_parse(optarg, &log_format) < 0) {
				fprintf(stderr, "netdiskd: unknown log format '%s' (text, json)\n",
					optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	nd_log_init("netdiskd", log_level, log_format);
	cmd.images = argv + optind;
	cmd.nimages = argc - optind;
	return 0;
}

/* The configuration: the config file, then the command line over it, checked.
 * 0, or -1 with err. */
static int build_config(struct config *c, char *err, size_t errlen)
{
	int i;

	config_defaults(c);
	if (cmd.config && config_load(c, cmd.config, err, errlen) < 0)
		return -1;
	for (i = 0; i < cmd.nimages; i++)
		if (add_image_arg(c, cmd.images[i], cmd.mode, err, errlen) < 0)
			return -1;
	if (cmd.listen)
		snprintf(c->listen, sizeof(c->listen), "%s", cmd.listen);
	if (cmd.state && strlen(cmd.state) >= sizeof(c->state_dir) - 256)
		return snprintf(err, errlen, "state directory path too long"), -1;
	if (cmd.state)
		snprintf(c->state_dir, sizeof(c->state_dir), "%s", cmd.state);
	if (cmd.trace && strlen(cmd.trace) >= sizeof(c->trace_dir) - 128)
		return snprintf(err, errlen, "trace directory path too long"), -1;
	if (cmd.trace)
		snprintf(c->trace_dir, sizeof(c->trace_dir), "%s", cmd.trace);
	if (cmd.control && strlen(cmd.control) >= 108)
		return snprintf(err, errlen, "control socket path too long (at most 107 bytes)"), -1;
	if (cmd.control)
		snprintf(c->control, sizeof(c->control), "%s", cmd.control);
	if (cmd.admin_key)
		snprintf(c->admin_key_file, sizeof(c->admin_key_file), "%s", cmd.admin_key);
	if (cmd.nbd_exports)
		c->nbd_exports = !strcmp(cmd.nbd_exports, "images") ? NBD_EXPORTS_IMAGES
				 : !strcmp(cmd.nbd_exports, "sessions") ? NBD_EXPORTS_SESSIONS
									 : NBD_EXPORTS_OFF;
	return config_check(c, err, errlen);
}

/* admin-key = none with direct mode configured: say who can write what. */
static void admin_none_warn(const struct server *s)
{
	int i, n = 0;

	if (s->admin_key_path[0])
		return;
	for (i = 0; i < s->cfg.nimages; i++)
		n += s->cfg.images[i].mode == ND_MODE_DIRECT;
	for (i = 0; i < s->cfg.nclients; i++)
		n += s->cfg.clients[i].mode == ND_MODE_DIRECT;
	if (n)
		nd_log(ND_LOG_WARN, "admin-key = none: direct mode (%d image%s or client%s) is granted "
		       "by MAC, so any machine on the network that claims such a MAC writes the "
		       "image itself (docs/security.md)", n, n == 1 ? "" : "s", n == 1 ? "" : "s");
}

/* SIGHUP: build the configuration again and apply it (server/reload.c), or
 * keep the running one and say why. */
static void reload(struct server *s)
{
	struct config nc;
	char err[512];

	if (build_config(&nc, err, sizeof(err)) < 0 || config_reload(s, &nc, err, sizeof(err)) < 0)
		nd_log(ND_LOG_ERROR, "config reload refused, the running configuration stays: %s",
		       err);
	else
		persona_keys_background(s); /* keys for clients the new config added */
	config_free(&nc);
}

static int open_udp(const char *listen, char *err, size_t errlen)
{
	int size = SOCKET_BUFFER, fd = listen_socket(listen, SOCK_DGRAM, err, errlen);

	if (fd < 0)
		return -1;
	/* Large buffers absorb boot storms; the FORCE variants exceed rmem_max as root. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return fd;
}

/* Send a reply batch with one system call. */
static void send_batch(struct server *s, struct iovec (*iov)[2], unsigned n,
		       const struct sockaddr *to, socklen_t tolen)
{
	struct mmsghdr msg[ND_MAX_CHUNKS];
	unsigned i, sent = 0;

	memset(msg, 0, sizeof(msg[0]) * n);
	for (i = 0; i < n; i++) {
		msg[i].msg_hdr.msg_name = (void *)to;
		msg[i].msg_hdr.msg_namelen = tolen;
		msg[i].msg_hdr.msg_iov = iov[i];
		msg[i].msg_hdr.msg_iovlen = iov[i][1].iov_len ? 2 : 1;
	}
	while (sent < n) {
		int rc = sendmmsg(s->udp_fd, msg + sent, n - sent, 0);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			break; /* the client retransmits what it misses */
		sent += (unsigned)rc;
	}
}

/* NBD accepts pause after accept4 ran out of fds or memory: the pending
 * connection keeps the listener readable, and retrying at once would spin. */
struct accept_pause {
	int64_t until_ms;   /* CLOCK_MONOTONIC; 0 = accepting */
	unsigned ms;        /* the current pause, doubled up to ACCEPT_PAUSE_MAX_MS */
	int64_t logged_ms;  /* the last report */
	unsigned failures;  /* since then */
};

#define ACCEPT_PAUSE_MAX_MS 2000
#define ACCEPT_LOG_EVERY_MS 10000

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void accept_nbd(struct server *s, struct accept_pause *ap)
{
	int err = nbd_accept(s, s->nbd_fd);
	int64_t now = mono_ms();

	if (!err) {
		ap->ms = 0;
		return;
	}
	ap->ms = ap->ms ? ap->ms * 2 : 50;
	if (ap->ms > ACCEPT_PAUSE_MAX_MS)
		ap->ms = ACCEPT_PAUSE_MAX_MS;
	ap->until_ms = now + ap->ms;
	ap->failures++;
	if (!ap->logged_ms || now - ap->logged_ms >= ACCEPT_LOG_EVERY_MS) {
		struct rlimit rl = { 0 };

		getrlimit(RLIMIT_NOFILE, &rl);
		log_msg("cannot accept NBD connections: accept4: %s (limit %llu fds; %u failure(s) "
			"since the last report); pausing accepts for up to %u ms", strerror(err),
			(unsigned long long)rl.rlim_cur, ap->failures, ACCEPT_PAUSE_MAX_MS);
		ap->logged_ms = now;
		ap->failures = 0;
	}
}

/* Receive and handle datagrams until a signal stops us. */
static void serve(struct server *s)
{
	static uint8_t buf[BATCH][ND_MAX_DGRAM + 64];
	struct sockaddr_storage from[BATCH];
	struct mmsghdr msg[BATCH];
	struct iovec iov[BATCH];
	struct pollfd p[3] = { { s->udp_fd, POLLIN, 0 }, { s->control_fd, POLLIN, 0 },
			       { s->nbd_fd, POLLIN, 0 } };
	struct accept_pause ap = { 0 };
	int64_t control_ms = 0;
	int i, n;

	while (!stopping) {
		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = sizeof(buf[i]);
			memset(&msg[i], 0, sizeof(msg[i]));
			msg[i].msg_hdr.msg_iov = &iov[i];
			msg[i].msg_hdr.msg_iovlen = 1;
			msg[i].msg_hdr.msg_name = &from[i];
			msg[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		n = recvmmsg(s->udp_fd, msg, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED)
				log_msg("receive failed: %s", strerror(errno));
			int64_t wait = SWEEP_MS;
			int nfds = s->nbd_fd >= 0 ? 3 : 2;

			if (ap.until_ms) {
				int64_t left = ap.until_ms - mono_ms();

				if (left <= 0)
					ap.until_ms = 0; /* the pause is over */
				else
					nfds = 2; /* paused: only UDP (and control), until the pause ends */
				if (left > 0 && left < wait)
					wait = left;
			}
			p[1].revents = p[2].revents = 0;
			if (poll(p, nfds, (int)wait) > 0 && nfds == 3 && (p[2].revents & POLLIN))
				accept_nbd(s, &ap);
			n = 0;
		}
		pthread_rwlock_wrlock(&s->lock);
		/* The control socket: when poll saw it, and under a steady stream of
		 * datagrams (which skips poll) every CONTROL_MS. */
		if ((p[1].revents & POLLIN) || (n > 0 && mono_ms() - control_ms >= CONTROL_MS)) {
			control_serve(s);
			p[1].revents = 0;
			control_ms = mono_ms();
		}
		if (reload_requested) {
			reload_requested = 0;
			reload(s);
		}
		store_poll_jobs(s);
		for (i = 0; i < n; i++)
			handle_datagram(s, buf[i], msg[i].msg_len, (struct sockaddr *)&from[i],
					msg[i].msg_hdr.msg_namelen);
		sessions_sweep(s);
		pthread_rwlock_unlock(&s->lock);
	}
}

int main(int argc, char **argv)
{
	static struct server s;
	struct sigaction sa = { 0 };
	char err[512], mstats[1024];

	if (parse_args(argc, argv) < 0)
		return 2;
	if (build_config(&s.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "netdiskd: %s\n", err);
		return 2;
	}
	fd_limit_raise(&s);
	/* NBD request buffers (up to 32 MiB) always come from mmap and go back to
	 * the system when freed, so that memory use follows nbd-memory. */
	mallopt(M_MMAP_THRESHOLD, 2 << 20);
	s.iobuf_size = 2048 * ND_SECTOR_SIZE;
	s.iobuf = malloc(s.iobuf_size);
	s.send = send_batch;
	s.attach_rate = rate_table_new();
	pthread_rwlock_init(&s.lock, NULL);
	s.control_fd = -1;
	s.udp_fd = open_udp(s.cfg.listen, err, sizeof(err));
	s.nbd_fd = s.udp_fd < 0 ? -1 : nbd_listen(s.cfg.listen, err, sizeof(err));
	if (!s.attach_rate) {
		fprintf(stderr, "netdiskd: out of memory\n");
		return 1;
	}
	if (!s.iobuf || s.udp_fd < 0 || s.nbd_fd < 0 || server_open_images(&s, err, sizeof(err)) < 0 ||
	    server_state_init(&s, err, sizeof(err)) < 0 || store_init_all(&s, err, sizeof(err)) < 0 ||
	    persona_check_images(&s, err, sizeof(err)) < 0 || control_open(&s, err, sizeof(err)) < 0 ||
	    trace_init(&s.cfg, err, sizeof(err)) < 0 || mcast_open(&s, err, sizeof(err)) < 0 ||
	    tls_init(&s.cfg, err, sizeof(err)) < 0 || auth_init(&s, err, sizeof(err)) < 0) {
		fprintf(stderr, "netdiskd: %s\n", err);
		return 1;
	}
	sessions_restore(&s);
	persona_keys_background(&s);
	if (http_open(&s, err, sizeof(err)) < 0 || iscsi_open(&s, err, sizeof(err)) < 0) {
		fprintf(stderr, "netdiskd: %s\n", err);
		return 1;
	}
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < s.cfg.nimages; i++) {
		struct image *im = &s.cfg.images[i];

		log_msg("image %s: %s, %llu MiB, %s%s", im->name, im->path,
			(unsigned long long)(im->base->size >> 20), nd_mode_text(im->mode),
			strcmp(im->name, s.cfg.default_image) ? "" : " (default)");
	}
	log_msg("access: site key %s, admin key %s%s, mac-binding %s, nbd-exports %s, iscsi-exports %s",
		auth_site_required(&s) ? "required for every ATTACH" : "none",
		s.admin_key_path[0] ? s.admin_key_path : "none",
		s.admin_key_path[0] ? " (required for direct/maintenance mode)"
				    : " (direct/maintenance mode granted by MAC)",
		s.cfg.mac_binding_off ? "off" : "address",
		s.cfg.nbd_exports == NBD_EXPORTS_IMAGES ? "images" :
		s.cfg.nbd_exports == NBD_EXPORTS_SESSIONS ? "sessions" : "off",
		s.cfg.iscsi_exports == NBD_EXPORTS_IMAGES ? "images" :
		s.cfg.iscsi_exports == NBD_EXPORTS_SESSIONS ? "sessions" : "off");
	admin_none_warn(&s);
	if (s.temp_state)
		nd_log(ND_LOG_WARN, "listening on %s (UDP, and NBD on TCP), state in %s: temporary, "
		       "so sessions and overlays are lost at exit (give --state-dir to keep them)",
		       s.cfg.listen, s.state_dir);
	else
		log_msg("listening on %s (UDP, and NBD on TCP), state in %s", s.cfg.listen,
			s.state_dir);
	log_msg("limits: %u file descriptors (about %u sessions with overlays), NBD request "
		"data %u MiB, NBD connects %u/s per address", s.fd_limit,
		s.fd_limit > FD_RESERVE + 8 ? (s.fd_limit - FD_RESERVE - 8) / 2 : 0, s.cfg.nbd_memory_mib,
		s.cfg.nbd_connect_rate);
	serve(&s);
	mcast_stats_text(&s, mstats, sizeof(mstats));
	log_msg("stopping: %lu datagrams, %lu malformed, %lu for unknown sessions, "
		"%lu from the wrong address, %lu stale writes, %lu errors sent, %lu ATTACHes "
		"rate-limited, %lu too short, %lu unauthenticated, %lu refused by mac-binding, "
		"%lu sessions expired, %lu evicted: %s", s.stats.datagrams,
		s.stats.malformed, s.stats.bad_session, s.stats.wrong_peer, s.stats.stale_writes,
		metrics_udp_errors(&s), s.stats.attach_limited, s.stats.short_attach,
		s.stats.auth_refused, s.stats.mac_bound, s.stats.expired, s.stats.evicted, mstats);
	if (nbd_shutdown(NBD_SHUTDOWN_WAIT_S) < 0 || iscsi_shutdown(&s, NBD_SHUTDOWN_WAIT_S) < 0) {
		/* Freeing the sessions under running threads would be worse than
		 * what an exit without closing is: a crash, which overlays survive. */
		log_msg("NBD or iSCSI connections still busy after %d s; exiting without closing",
			NBD_SHUTDOWN_WAIT_S);
		return 1;
	}
	persona_shutdown(); /* after the builds in hand; nothing else runs now */
	http_close(&s);
	control_close(&s);
	server_close(&s);
	mcast_close(&s);
	auth_free(&s);
	config_free(&s.cfg);
	return 0;
}
