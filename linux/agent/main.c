/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdisk-attach: the initramfs agent that hands the network disk to the kernel's NBD driver. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "netdisk/proto.h"
#include "agent.h"
#include "tiers.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

#define CONNECT_TRIES 30 /* about a minute of trying at boot */
#define EXPORT_FILE "/run/netdisk/export" /* see save_export() */

struct options {
	const char *table_file;
	const char *env_file;
	unsigned index;
	unsigned timeout_s;
	unsigned dead_timeout_s;
	int foreground;
	const char *write_cache; /* --write-cache, else netdisk.write-cache= */
};

/*
 * The kernel log stays open from the first message on: after switch_root the
 * agent's /dev is an empty directory of the old initramfs (devtmpfs moved to
 * the new root), and the I/O path must not open files anyway.
 */
void say(const char *fmt, ...)
{
	static int kmsg = -2;
	char line[512], msg[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "netdisk-attach: %s\n", line);
	if (kmsg == -2)
		kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (kmsg >= 0) {
		n = snprintf(msg, sizeof(msg), "<5>netdisk-attach: %s\n", line);
		if (write(kmsg, msg, (size_t)n) < 0)
			fprintf(stderr, "netdisk-attach: (kernel log unavailable)\n");
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: netdisk-attach [OPTIONS] [--configure-network | --print-table | --probe |\n"
		"                                 redirect TARGET | status]\n"
		"Hands the network disk a firmware stub booted from to the kernel's NBD driver\n"
		"(docs/handoff.md).  Without a mode: attach /dev/nbdN and keep the connection.\n"
		"\n"
		"  --configure-network  bring up the boot NIC from the boot table, write --env\n"
		"  --print-table        show the boot table\n"
		"  --probe              NBD handshake only; print the export size\n"
		"  --table FILE         read the boot table from FILE (default: ACPI, /dev/mem)\n"
		"  --env FILE           network settings file (default /run/netdisk/net.env)\n"
		"  --index N            NBD device /dev/nbdN (default 0)\n"
		"  --timeout S          NBD request timeout (default 30)\n"
		"  --dead-timeout S     how long I/O waits for a reconnect (default 3600)\n"
		"  --foreground         keep the connection keeper in the foreground\n"
		"  --write-cache SPEC   serve the device through a write cache: ram:SIZE\n"
		"                       [overflow=disk:/PATH|LABEL=L], disk:SPEC or server;\n"
		"                       'persistent' after the disk keeps it across reboots\n"
		"                       (default: netdisk.write-cache= on the kernel command\n"
		"                       line; none: the kernel talks to the server directly)\n"
		"  redirect ram|disk[:PATH]|server   send writes elsewhere from now on\n"
		"  status               the write cache's target, order and fill\n"
		"Once attached, " EXPORT_FILE " (root only) holds \"IP PORT EXPORT\".\n"
		"Without a boot table: netdisk.server=IP[:PORT] netdisk.image=NAME on the kernel\n"
		"command line.  Exit 1: no network disk to attach; 2: bad usage.\n");
}

static int read_cmdline(char *buf, size_t len)
{
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? 0 : -1;
}

/* Work out what to attach: the boot table, else the kernel command line. */
static int find_target(const struct options *o, struct target *tg, int quiet)
{
	struct nd_boot_table t;
	char where[64], cmdline[4096];

	if (table_find(o->table_file, &t, where, sizeof(where)) == 0) {
		target_from_table(tg, &t);
		if (!quiet)
			say("boot table in %s: image %.64s, server %s:%u", where, t.image,
			    inet_ntoa(tg->server), tg->nbd_port);
		return 0;
	}
	if (read_cmdline(cmdline, sizeof(cmdline)) == 0 && target_from_cmdline(tg, cmdline) == 0)
		return 0;
	if (!quiet)
		say("no boot table and no netdisk.server=/netdisk.image=: not a network disk boot");
	return -1;
}

/* Connect and handshake, retrying while the network comes up or the server restarts. */
static int connect_with_retry(const struct target *tg, unsigned tries, uint64_t *size,
			      uint16_t *flags)
{
	char err[256];
	unsigned i, wait = 1;

	for (i = 0; !tries || i < tries; i++) {
		int fd = nbd_open(tg, size, flags, err, sizeof(err));

		if (fd >= 0)
			return fd;
		if (i == 0 || i % 10 == 9)
			say("%s; retrying", err);
		sleep(wait);
		if (wait < 8)
			wait *= 2;
	}
	say("giving up: %s", err);
	return -1;
}

void scan_partitions(unsigned index)
{
	char dev[32];
	int fd, i;

	snprintf(dev, sizeof(dev), "/dev/nbd%u", index);
	for (i = 0; i < 50; i++) {
		fd = open(dev, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ioctl(fd, BLKRRPART, 0);
			close(fd);
			return;
		}
		usleep(100000);
	}
	say("cannot open %s: %s", dev, strerror(errno));
}

/* Root's lifeline: locked in memory, exempt from OOM and shutdown killing. */
static void become_keeper(void)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, "-1000", 5) < 0)
			say("cannot lower the OOM score: %s", strerror(errno));
		close(fd);
	}
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		say("mlockall failed: %s", strerror(errno));
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) < 0)
		say("PR_SET_IO_FLUSHER failed: %s", strerror(errno));
}

/* Wait for the kernel to report the connection dead, then give it a new one. */
static void keep_connected(const struct options *o, const struct target *tg)
{
	char err[256];

	for (;;) {
		uint64_t size;
		uint16_t flags;
		int fd;

		if (genl_nbd_wait_dead(o->index, err, sizeof(err)) < 0) {
			say("%s", err);
			sleep(5);
			continue;
		}
		say("connection to the server lost; reconnecting (I/O waits)");
		fd = connect_with_retry(tg, 0, &size, &flags);
		if (genl_nbd_reconfigure(o->index, fd, err, sizeof(err)) < 0)
			say("%s", err);
		else
			say("reconnected /dev/nbd%u", o->index);
		close(fd); /* the kernel holds its own reference */
	}
}

/*
 * The export the disk came from, for root's scripts (another NBD client on the
 * same session): "IP PORT EXPORT" in EXPORT_FILE, readable by root only,
 * since a session export holds the token.  It is never logged.
 */
static void save_export(const struct target *tg)
{
	int fd = open(EXPORT_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || dprintf(fd, "%s %u %s\n", inet_ntoa(tg->server), tg->nbd_port,
			      tg->export_name) < 0)
		say("cannot write %s: %s", EXPORT_FILE, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * The write-cache setting: --write-cache, else netdisk.write-cache= on the
 * kernel command line (commas for spaces; "none" turns a server's setting
 * off), else what the server gave with the handshake (netdiskd.conf).
 * 1 with wc filled, 0 for none.
 */
static int write_cache_setting(const struct options *o, struct wc_config *wc)
{
	char cmdline[4096], value[WC_TEXT_MAX + 1], err[200], *p;
	const char *v = o->write_cache, *from = "--write-cache";

	if (!v && read_cmdline(cmdline, sizeof(cmdline)) == 0 &&
	    (p = strstr(cmdline, "netdisk.write-cache=")) && (p == cmdline || p[-1] == ' ')) {
		snprintf(value, sizeof(value), "%.*s", (int)strcspn(p + 20, " \n"), p + 20);
		v = value;
		from = "netdisk.write-cache=";
	}
	if (!v && nbd_write_cache[0]) {
		v = nbd_write_cache;
		from = "the server";
	}
	if (!v || !strcmp(v, "none"))
		return 0;
	if (wc_parse(v, wc, err, sizeof(err)) < 0) {
		say("%s (from %s); no write cache", err, from);
		return 0;
	}
	say("write cache %s (from %s)", v, from);
	return 1;
}

/*
 * Attach through the agent: a child (the keeper) serves /dev/nbdN from the
 * write-redirection chain; this process returns once the partitions are
 * read.  0, or -1 when the cache could not be set up (then attach directly).
 */
static int attach_serving(const struct options *o, const struct target *tg,
			  const struct wc_config *wc, uint64_t size, uint16_t flags)
{
	char c;
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		say("pipe2 failed: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		say("fork failed: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		setsid();
		become_keeper(); /* before the RAM tier and buffers exist: all locked */
		if (serve_setup(tg, wc, size, o->index) < 0 ||
		    serve_run(size, flags, o->index, pfd[1]) < 0)
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1) {
		close(pfd[0]);
		say("the write cache could not be set up; attaching without it");
		return -1;
	}
	close(pfd[0]);
	say("attached /dev/nbd%u through the agent (write cache %s): %s:%u export %s, %llu MiB",
	    o->index, chain_target_name(wc->target), inet_ntoa(tg->server), tg->nbd_port,
	    tg->shown, (unsigned long long)(size >> 20));
	save_export(tg);
	return 0;
}

static int attach(const struct options *o)
{
	struct wc_config wc;
	struct target tg;
	uint64_t size;
	uint16_t flags;
	char err[256];
	int fd;

	if (find_target(o, &tg, 0) < 0)
		return 1;
	fd = connect_with_retry(&tg, CONNECT_TRIES, &size, &flags);
	if (fd < 0)
		return 1;
	if (write_cache_setting(o, &wc)) {
		int rc;

		close(fd); /* the serving agent's workers make their own connections */
		rc = attach_serving(o, &tg, &wc, size, flags);
		if (rc >= 0)
			return rc;
		fd = connect_with_retry(&tg, CONNECT_TRIES, &size, &flags);
		if (fd < 0)
			return 1;
	}
	if (genl_nbd_connect(o->index, fd, size, flags, o->timeout_s, o->dead_timeout_s, err,
			     sizeof(err)) < 0) {
		say("%s", err);
		return 1;
	}
	close(fd);
	scan_partitions(o->index);
	say("attached /dev/nbd%u: %s:%u export %s, %llu MiB%s", o->index, inet_ntoa(tg.server),
	    tg.nbd_port, tg.shown, (unsigned long long)(size >> 20),
	    tg.have_table && (tg.table.flags & ND_BT_FLAG_PERSONALIZED) ? ", personalized" : "");
	save_export(&tg);
	if (!o->foreground && fork() != 0)
		return 0; /* the initramfs goes on to mount root; the child keeps the link */
	setsid();
	become_keeper();
	keep_connected(o, &tg);
	return 0;
}

static int probe(const struct options *o)
{
	struct target tg;
	uint64_t size;
	uint16_t flags;
	char err[256];
	int fd;

	if (find_target(o, &tg, 1) < 0) {
		fprintf(stderr, "netdisk-attach: no boot table and no netdisk.server=\n");
		return 1;
	}
	fd = nbd_open(&tg, &size, &flags, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "netdisk-attach: %s\n", err);
		return 1;
	}
	printf("export %s size %llu flags 0x%x\n", tg.shown, (unsigned long long)size,
	       flags);
	close(fd);
	return 0;
}

/* The shutdown killing spree spares processes whose argv[0] starts with '@'. */
static void rename_for_shutdown(char **argv)
{
	static char name[] = "@netdisk-attach";

	if (argv[0][0] == '@')
		return;
	argv[0] = name;
	execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "configure-network", no_argument, 0, 'n' },
		{ "print-table", no_argument, 0, 'p' },
		{ "probe", no_argument, 0, 'P' },
		{ "table", required_argument, 0, 't' },
		{ "env", required_argument, 0, 'e' },
		{ "index", required_argument, 0, 'i' },
		{ "timeout", required_argument, 0, 'T' },
		{ "dead-timeout", required_argument, 0, 'D' },
		{ "foreground", no_argument, 0, 'f' },
		{ "write-cache", required_argument, 0, 'W' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct options o = { NULL, "/run/netdisk/net.env", 0, 30, 3600, 0, NULL };
	struct nd_boot_table t;
	char where[64];
	int opt, mode = 0;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n': case 'p': case 'P': mode = opt; break;
		case 't': o.table_file = optarg; break;
		case 'e': o.env_file = optarg; break;
		case 'i': o.index = (unsigned)atoi(optarg); break;
		case 'T': o.timeout_s = (unsigned)atoi(optarg); break;
		case 'D': o.dead_timeout_s = (unsigned)atoi(optarg); break;
		case 'f': o.foreground = 1; break;
		case 'W': o.write_cache = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 2 == argc && !strcmp(argv[optind], "redirect")) {
		char req[200];

		snprintf(req, sizeof(req), "redirect %s", argv[optind + 1]);
		return ctl_request(o.index, req);
	}
	if (optind + 1 == argc && !strcmp(argv[optind], "status"))
		return ctl_request(o.index, "status");
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	switch (mode) {
	case 'n':
		if (table_find(o.table_file, &t, where, sizeof(where)) < 0)
			return 1;
		return net_configure(&t, o.env_file) < 0 ? 1 : 0;
	case 'p':
		if (table_find(o.table_file, &t, where, sizeof(where)) < 0) {
			fprintf(stderr, "netdisk-attach: no boot table found\n");
			return 1;
		}
		table_print(&t, where);
		return 0;
	case 'P':
		return probe(&o);
	default:
		rename_for_shutdown(argv);
		return attach(&o);
	}
}
