/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdisk: the admin and test CLI on the client core (info, read, write, bench, patch, dnsmasq-conf). */

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "ndclient.h"
#include "group.h"
#include "udp_host.h"
#include "ndcommon.h"
#include "netdisk/bootcfg.h"
#include "optrom.h"
#include "netdisk/boottable.h"
#include "image.h"
#include "status.h"
#include "conn.h"
#include "dnsconf.h"

#define CHUNK_SECTORS 2048 /* sectors per nd_read/nd_write call in read/write */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: netdisk COMMAND [OPTIONS] ARGS\n"
		"\n"
		"  info  SERVER[:PORT]                 server and session facts\n"
		"  read  SERVER[:PORT] LBA COUNT [-o FILE]   sectors to FILE (default stdout)\n"
		"  write SERVER[:PORT] LBA [-i FILE]   FILE (default stdin, whole sectors) at LBA\n"
		"  bench SERVER[:PORT] [--seconds N] [--size BYTES] [--pace MICROSECONDS]\n"
		"                                      sequential and 4 KiB random reads\n"
		"  boot-table SERVER[:PORT] -o FILE    attach (and keep) a session; write the\n"
		"                                      boot table a stub would publish for it\n"
		"  storm SERVER[:PORT] TRACE --clients N [--speed F | --no-times]\n"
		"        [--verify IMAGE] [--mac-base MAC] [--one-process]\n"
		"                                      replay a boot trace as N clients at once\n"
		"  patch STUB [--server IP[:PORT]] [--image NAME] [--attach-timeout S]\n"
		"        [--boot-path PATH] [--verbose|--quiet] [--firmware-net|--own-driver]\n"
		"        [--key FILE|--no-key]         (--key: the site key, 64 hex digits)\n"
		"                                      set the boot config in netdisk.pxe/.efi\n"
		"                                      or netdisk-virtio.rom (checksum refixed)\n"
		"  image list|versions|new-version|promote|rollback|merge|delete-version|export\n"
		"                                      image versions, through netdiskd's control\n"
		"                                      socket (netdisk image --help)\n"
		"  status [--json]                     the clients netdiskd serves now\n"
		"  clients [--watch [--interval S]]    the same, refreshed in the terminal\n"
		"  dnsmasq-conf --proxy | --range START,END [--interface IF] [--address IP]\n"
		"        [--tftp-root DIR] [--config FILE]\n"
		"                                      a dnsmasq snippet that PXE-boots BIOS and\n"
		"                                      UEFI clients into the stubs (docs/lan.md)\n"
		"\n"
		"Session options: --image NAME  --mac aa:bb:cc:dd:ee:ff  --dgram BYTES\n"
		"  --window N  --timeout SECONDS  --keep (do not detach at the end)\n"
		"  --multicast (take data from the server's multicast group when it offers\n"
		"  one)  --mc-cache BYTES (default 16M)  --mc-timeout MILLISECONDS (2000)\n"
		"  --key FILE (sign ATTACH with the site or admin key: docs/security.md)\n"
		"The port defaults to %d.  See docs/cli.md.\n",
		ND_DEFAULT_PORT);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("netdisk: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

unsigned long long parse_number(const char *what, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || !*s || end == s || s[0] == '-')
		die("%s must be a number, not '%s'", what, s);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		die("%s must be a number, not '%s'", what, s);
	return v;
}

/* A stable, locally administered MAC for this machine when none is given. */
static void default_mac(uint8_t mac[6])
{
	char id[64] = "";
	uint32_t h = 2166136261u;
	FILE *f = fopen("/etc/machine-id", "r");
	size_t i;

	if (f) {
		if (!fgets(id, sizeof(id), f))
			id[0] = 0;
		fclose(f);
	}
	for (i = 0; id[i]; i++)
		h = (h ^ (uint8_t)id[i]) * 16777619u;
	mac[0] = 0x02;
	mac[1] = 0x4e;
	mac[2] = (uint8_t)(h >> 24);
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static void on_event(void *ctx, int event, uint32_t arg)
{
	if (event == ND_EV_RETRY)
		fprintf(stderr, "netdisk: server not answering for %u s, retrying\n", arg / 1000);
	else if (event == ND_EV_RECOVERED)
		fprintf(stderr, "netdisk: server answers again\n");
}

const char *err_text(struct nd_client *c, int rc)
{
	static char why[200];

	switch (rc) {
	case ND_E_TIMEOUT: return "server did not answer";
	case ND_E_TRANSPORT: return "network error";
	case ND_E_PROTO: return "server sent a malformed reply";
	case ND_E_ARG: return "request outside the disk";
	case ND_E_STATUS: /* with the server's reason, when it gave one */
		snprintf(why, sizeof(why), "%s%s", nd_status_text(c->last_status),
			 nd_status_reason(c));
		return why;
	default: return "unknown error";
	}
}

/* Join the group the server offered (a failure leaves the client on unicast). */
static void join_group(struct conn *k, const struct opts *o)
{
	char err[256], a[16];

	inet_ntop(AF_INET, k->c.mc_addr, a, sizeof(a));
	if (!k->c.mc_addr[0]) {
		fprintf(stderr, "netdisk: the server offers no multicast group\n");
		return;
	}
	k->cache = malloc(o->mc_cache);
	if (!k->cache)
		die("out of memory for a %zu-byte group cache", o->mc_cache);
	if (!o->shared_group &&
	    nd_udp_host_join(&k->udp, k->c.mc_addr, k->c.mc_port, err, sizeof(err)) < 0) {
		fprintf(stderr, "netdisk: %s; reading by unicast\n", err);
		return;
	}
	if (nd_group_attach(&k->c, &k->group, k->cache, o->mc_cache, o->mc_timeout_ms) < 0)
		die("a %zu-byte group cache holds no block", o->mc_cache);
	if (!o->shared_group)
		fprintf(stderr, "netdisk: joined multicast group %s:%u (%u sectors a block)\n", a,
			k->c.mc_port, k->c.mc_sectors);
}

/* What the group brought and what it dropped (stderr). */
static void group_report(struct conn *k)
{
	const struct nd_group_stats *g = &k->group.st;

	if (!k->c.gh)
		return;
	fprintf(stderr, "netdisk: multicast: %u datagrams cached (%u duplicate), %u sectors read "
		"from the group; dropped %u malformed, %u of another stream, %u out of range, "
		"%lu not from the server; %u own-write sectors refused, %u blocks expired, "
		"%u evicted\n", g->cached, g->dup, g->hits, g->bad, g->foreign, g->range,
		k->udp.group_foreign_src, g->own, g->expired, g->evicted);
}

void connect_server(struct conn *k, const char *server, const struct opts *o)
{
	struct nd_transport tp;
	char err[256];
	int rc;

	if (nd_udp_host_open(&k->udp, server, err, sizeof(err)) < 0)
		die("%s", err);
	nd_udp_host_transport(&k->udp, &tp);
	k->tx = malloc(o->dgram);
	k->rx = malloc(o->dgram);
	if (!k->tx || !k->rx)
		die("out of memory");
	nd_client_init(&k->c, &tp, k->tx, k->rx, (uint16_t)o->dgram);
	memcpy(k->c.cfg.mac, o->mac, 6);
	k->c.cfg.client_kind = ND_KIND_TOOL;
	k->c.cfg.window = (uint16_t)o->window;
	k->c.cfg.rto_min_ms = 20;
	k->c.cfg.give_up_ms = o->timeout_s * 1000;
	k->c.cfg.event = on_event;
	k->c.cfg.key = o->key;
	if (getrandom(&k->c.cfg.nonce, sizeof(k->c.cfg.nonce), 0) < 0)
		k->c.cfg.nonce = (uint32_t)time(NULL);
	k->detach = o->detach;
	k->cache = NULL;
	if (o->multicast)
		k->c.cfg.caps |= ND_CAP_MULTICAST;
	rc = nd_attach(&k->c, o->image);
	if (rc < 0)
		die("attach to %s failed: %s", server, err_text(&k->c, rc));
	if (o->multicast)
		join_group(k, o);
}

void disconnect(struct conn *k)
{
	group_report(k);
	nd_group_detach(&k->c);
	nd_udp_host_leave(&k->udp);
	if (k->detach)
		nd_detach(&k->c);
	nd_udp_host_close(&k->udp);
	free(k->cache);
	free(k->tx);
	free(k->rx);
}

static void put_mem(void *ctx, uint32_t off, const void *data, unsigned len)
{
	memcpy((uint8_t *)ctx + off, data, len);
}

static void get_mem(void *ctx, uint32_t off, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)ctx + off, len);
}

static int cmd_info(const char *server, const struct opts *o)
{
	struct conn k;
	char mac[18];

	connect_server(&k, server, o);
	nd_mac_format(o->mac, mac);
	printf("server:      %s\n", server);
	printf("image:       %s\n", k.c.image);
	printf("size:        %llu sectors (%llu MiB)\n", (unsigned long long)k.c.sectors,
	       (unsigned long long)(k.c.sectors >> 11));
	printf("mode:        %s\n", nd_mode_text(k.c.mode));
	printf("client mac:  %s\n", mac);
	printf("datagram:    %u bytes (%u data), window %u, %u sectors per request\n",
	       k.c.dgram, k.c.chunk, k.c.window, k.c.max_sectors);
	if (k.c.handoff & ND_HANDOFF_PERSONALIZED)
		printf("personalized: yes, layer %06x\n", k.c.handoff >> ND_HANDOFF_LAYER_SHIFT);
	else
		printf("personalized: no\n");
	disconnect(&k);
	return 0;
}

static int cmd_read(const char *server, uint64_t lba, uint64_t count, const char *out,
		    const struct opts *o)
{
	uint8_t *buf = malloc(CHUNK_SECTORS * ND_SECTOR_SIZE);
	FILE *f = out ? fopen(out, "wb") : stdout;
	struct conn k;

	if (!buf || !f)
		die("cannot write %s: %s", out ? out : "stdout", strerror(errno));
	connect_server(&k, server, o);
	if (lba > k.c.sectors || count > k.c.sectors - lba)
		die("sectors %llu..%llu are outside the disk (%llu sectors)",
		    (unsigned long long)lba, (unsigned long long)(lba + count - 1),
		    (unsigned long long)k.c.sectors);
	while (count) {
		uint32_t n = count < CHUNK_SECTORS ? (uint32_t)count : CHUNK_SECTORS;
		int rc = nd_read(&k.c, lba, n, put_mem, buf);

		if (rc < 0)
			die("read at sector %llu failed: %s", (unsigned long long)lba,
			    err_text(&k.c, rc));
		if (fwrite(buf, ND_SECTOR_SIZE, n, f) != n)
			die("cannot write %s: %s", out ? out : "stdout", strerror(errno));
		lba += n;
		count -= n;
	}
	if (fflush(f) || (out && fclose(f)))
		die("cannot write %s: %s", out, strerror(errno));
	disconnect(&k);
	free(buf);
	return 0;
}

static int cmd_write(const char *server, uint64_t lba, const char *in, const struct opts *o)
{
	uint8_t *buf = malloc(CHUNK_SECTORS * ND_SECTOR_SIZE);
	FILE *f = in ? fopen(in, "rb") : stdin;
	struct conn k;
	size_t got;
	int rc;

	if (!buf || !f)
		die("cannot read %s: %s", in ? in : "stdin", strerror(errno));
	connect_server(&k, server, o);
	while ((got = fread(buf, 1, CHUNK_SECTORS * ND_SECTOR_SIZE, f)) > 0) {
		uint32_t n = (uint32_t)(got / ND_SECTOR_SIZE);

		if (got % ND_SECTOR_SIZE)
			die("input is not a whole number of 512-byte sectors");
		if (lba > k.c.sectors || n > k.c.sectors - lba)
			die("write at sector %llu would pass the end of the disk (%llu sectors)",
			    (unsigned long long)lba, (unsigned long long)k.c.sectors);
		rc = nd_write(&k.c, lba, n, get_mem, buf);
		if (rc < 0)
			die("write at sector %llu failed: %s", (unsigned long long)lba,
			    err_text(&k.c, rc));
		lba += n;
	}
	if (ferror(f))
		die("cannot read %s: %s", in ? in : "stdin", strerror(errno));
	rc = nd_flush(&k.c);
	if (rc < 0)
		die("flush failed: %s", err_text(&k.c, rc));
	disconnect(&k);
	free(buf);
	return 0;
}

/* The boot table a stub would publish for this session (for kexec and tests). */
static int cmd_boot_table(const char *server, const char *out, struct opts *o)
{
	struct nd_boot_table t;
	struct nd_netfacts n;
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	struct conn k;
	FILE *f;

	if (!out)
		die("boot-table needs -o FILE");
	o->detach = 0;
	connect_server(&k, server, o);
	if (getpeername(k.udp.fd, (struct sockaddr *)&peer, &len) < 0 || peer.sin_family != AF_INET)
		die("boot-table needs an IPv4 server");
	memset(&n, 0, sizeof(n));
	memcpy(n.mac, o->mac, 6);
	memcpy(n.server, &peer.sin_addr, 4);
	n.port = ntohs(peer.sin_port);
	nd_boot_table(&k.c, 0, &n, &t);
	f = fopen(out, "wb");
	if (!f || fwrite(&t, sizeof(t), 1, f) != 1 || fclose(f))
		die("cannot write %s: %s", out, strerror(errno));
	disconnect(&k);
	return 0;
}

double seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sort helper for latencies. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One benchmark pass: `size`-byte reads, sequential or at random aligned offsets.
 * Prints throughput and the requests' latency percentiles.  With `pace` (seconds)
 * a request is due every `pace` and its latency counts from when it was due, so
 * a server that stalls is charged for every request the stall held up. */
static void bench_pass(struct conn *k, const char *name, uint32_t size, int random,
		       double seconds, double pace, uint8_t *buf)
{
	uint32_t sectors = size / ND_SECTOR_SIZE;
	uint64_t span = k->c.sectors / sectors, i = 0, n = 0, cap = 1 << 16;
	uint32_t retrans = k->c.retransmits;
	uint64_t rnd = 88172645463325252ull;
	double start = seconds_now(), now = start, *lat = malloc(cap * sizeof(*lat));
	int rc;

	if (span == 0)
		die("the disk is smaller than one %u-byte read", size);
	if (!lat)
		die("out of memory");
	while (now - start < seconds) {
		uint64_t slot;
		double t0 = now;

		if (pace) {
			t0 = start + (double)n * pace;
			while ((now = seconds_now()) < t0)
				usleep((useconds_t)((t0 - now) * 1e6));
		}

		if (random) {
			rnd ^= rnd << 13;
			rnd ^= rnd >> 7;
			rnd ^= rnd << 17;
			slot = rnd % span;
		} else {
			slot = i++ % span;
		}
		rc = nd_read(&k->c, slot * sectors, sectors, put_mem, buf);
		if (rc < 0)
			die("%s read failed: %s", name, err_text(&k->c, rc));
		now = seconds_now();
		if (n == cap && !(lat = realloc(lat, (cap *= 2) * sizeof(*lat))))
			die("out of memory");
		lat[n++] = now - t0;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("%-10s %7u B  %10.1f MB/s  %10.0f req/s  %llu requests  %u retransmits  "
	       "p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", name,
	       size, n * (double)size / (now - start) / 1e6, n / (now - start),
	       (unsigned long long)n, k->c.retransmits - retrans, lat[n / 2] * 1e3,
	       lat[n * 99 / 100] * 1e3, lat[n - 1] * 1e3);
	free(lat);
}

/*
 * ATTACH latency: the client rebooting (a new nonce) ATTACH_SAMPLES times,
 * each ATTACH timed from the first datagram to the grant (both round trips
 * with --key).  Paced to stay inside the server's per-source ATTACH rate
 * limit (10 a second, bursts of 40), which would otherwise be what it times.
 */
#define ATTACH_SAMPLES 16
static void bench_attach(struct conn *k, const struct opts *o)
{
	double t[ATTACH_SAMPLES], t0;
	unsigned i;
	int rc;

	for (i = 0; i < ATTACH_SAMPLES; i++) {
		usleep(130000);
		k->c.cfg.nonce++;
		t0 = seconds_now();
		rc = nd_attach(&k->c, o->image);
		t[i] = (seconds_now() - t0) * 1e6;
		if (rc < 0)
			die("attach failed: %s", err_text(&k->c, rc));
	}
	qsort(t, ATTACH_SAMPLES, sizeof(t[0]), cmp_double);
	printf("attach    %s: median %.0f us, min %.0f us over %u ATTACHes\n",
	       o->key ? "signed" : "unsigned", (t[ATTACH_SAMPLES / 2 - 1] + t[ATTACH_SAMPLES / 2]) / 2,
	       t[0], ATTACH_SAMPLES);
}

static int cmd_bench(const char *server, uint32_t size, double seconds, double pace,
		     const struct opts *o)
{
	uint8_t *buf = malloc(size);
	struct conn k;

	if (!buf || size < ND_SECTOR_SIZE || size % ND_SECTOR_SIZE)
		die("--size must be a multiple of 512");
	connect_server(&k, server, o);
	if (size / ND_SECTOR_SIZE > k.c.max_sectors)
		die("--size %u is more than one request may carry (%u sectors)", size,
		    k.c.max_sectors);
	printf("netdisk bench: %s, image %s (%llu MiB), datagram %u, window %u\n", server,
	       k.c.image, (unsigned long long)(k.c.sectors >> 11), k.c.dgram, k.c.window);
	bench_attach(&k, o);
	bench_pass(&k, "sequential", size, 0, seconds, pace, buf);
	bench_pass(&k, "random", 4096, 1, seconds, pace, buf);
	disconnect(&k);
	free(buf);
	return 0;
}

/* Find the one boot config block in a stub binary. */
static struct nd_bootcfg *find_bootcfg(uint8_t *data, size_t len, const char *file)
{
	struct nd_bootcfg *found = NULL;
	size_t i;

	for (i = 0; i + sizeof(*found) <= len; i++) {
		if (memcmp(data + i, ND_BOOTCFG_MAGIC, 8))
			continue;
		if (found)
			die("%s has more than one boot config block", file);
		found = (struct nd_bootcfg *)(data + i);
	}
	if (!found)
		die("%s has no boot config block: is it netdisk.pxe, netdisk.efi or netdisk-virtio.rom?", file);
	if (found->version != ND_BOOTCFG_VERSION)
		die("%s has boot config version %u; this tool writes version %u", file,
		    found->version, ND_BOOTCFG_VERSION);
	return found;
}

/* What `patch` changes: NULL/negative fields stay as they are. */
struct patch {
	const char *server;
	const char *image;
	const char *boot_path;
	long timeout;
	int verbose;
	int firmware_net;
	const uint8_t *key;   /* --key: the site key to put in; NULL = leave it */
	int no_key;           /* --no-key: take it out */
};

/* Set or clear one flag when the option asked for it (want >= 0). */
static void set_flag(struct nd_bootcfg *b, uint8_t flag, int want)
{
	if (want >= 0)
		b->flags = (uint8_t)((b->flags & ~flag) | (want ? flag : 0));
}

static void apply_patch(struct nd_bootcfg *b, const struct patch *p)
{
	if (p->server) {
		char host[64];
		unsigned port;
		struct in_addr a;

		if (nd_split_hostport(p->server, host, sizeof(host), &port, ND_DEFAULT_PORT) < 0 ||
		    inet_pton(AF_INET, host, &a) != 1)
			die("--server wants an IPv4 address with an optional port, not '%s'",
			    p->server);
		memcpy(b->server_ip, &a, 4);
		nd_put16(b->server_port, (uint16_t)port);
	}
	if (p->image) {
		if (strlen(p->image) >= sizeof(b->image))
			die("--image name too long (at most %zu)", sizeof(b->image) - 1);
		memset(b->image, 0, sizeof(b->image));
		memcpy(b->image, p->image, strlen(p->image));
	}
	if (p->boot_path) {
		if (strlen(p->boot_path) >= sizeof(b->boot_path))
			die("--boot-path too long (at most %zu)", sizeof(b->boot_path) - 1);
		memset(b->boot_path, 0, sizeof(b->boot_path));
		memcpy(b->boot_path, p->boot_path, strlen(p->boot_path));
	}
	if (p->timeout >= 0) {
		if (p->timeout > 65535)
			die("--attach-timeout must be at most 65535 seconds");
		nd_put16(b->attach_timeout, (uint16_t)p->timeout);
	}
	set_flag(b, ND_BOOTCFG_VERBOSE, p->verbose);
	set_flag(b, ND_BOOTCFG_FIRMWARE_NET, p->firmware_net);
	if (p->key) {
		memcpy(b->site_key, p->key, sizeof(b->site_key));
		set_flag(b, ND_BOOTCFG_KEYED, 1);
	} else if (p->no_key) {
		memset(b->site_key, 0, sizeof(b->site_key));
		set_flag(b, ND_BOOTCFG_KEYED, 0);
	}
}

static void show_bootcfg(const struct nd_bootcfg *b)
{
	char ip[16];
	unsigned port = nd_get16(b->server_port), timeout = nd_get16(b->attach_timeout);

	inet_ntop(AF_INET, b->server_ip, ip, sizeof(ip));
	printf("server:         %s\n", nd_get32(b->server_ip) ? ip : "DHCP next-server");
	printf("port:           %u\n", port ? port : ND_DEFAULT_PORT);
	printf("image:          %.*s\n", (int)sizeof(b->image),
	       b->image[0] ? b->image : "(server decides)");
	printf("attach timeout: %u s\n", timeout ? timeout : 60);
	printf("boot path:      %.*s\n", (int)sizeof(b->boot_path),
	       b->boot_path[0] ? b->boot_path : "\\EFI\\BOOT\\BOOTX64.EFI (UEFI)");
	printf("verbose:        %s\n", b->flags & ND_BOOTCFG_VERBOSE ? "yes" : "no");
	printf("network:        %s\n", b->flags & ND_BOOTCFG_FIRMWARE_NET
						? "the firmware's (PXE, SNP/UDP4)"
						: "own driver for virtio-net, else the firmware's");
	if (b->flags & ND_BOOTCFG_KEYED) {
		uint8_t id[4];

		nd_key_id(b->site_key, id);
		printf("site key:       yes (id %02x%02x%02x%02x)\n", id[0], id[1], id[2], id[3]);
	} else {
		printf("site key:       no\n");
	}
}

/*
 * An option ROM (netdisk-virtio.rom) must stay one: it is checked before
 * the change, and its checksum byte (the last) is set again after it.
 */
static void rom_check(const uint8_t *data, size_t len, const char *file, const char *when)
{
	struct nd_optrom_info info;
	char err[160];

	if (nd_optrom_check(data, len, &info, err, sizeof(err)))
		die("%s: not a valid option ROM %s: %s", file, when, err);
}

static int cmd_patch(const char *file, const struct patch *p)
{
	struct stat st;
	uint8_t *data;
	size_t len;
	int fd = open(file, O_RDWR), rom;

	if (fd < 0 || fstat(fd, &st) < 0)
		die("cannot open %s: %s", file, strerror(errno));
	len = (size_t)st.st_size;
	data = malloc(len + 1);
	if (!data || read(fd, data, len) != st.st_size)
		die("cannot read %s", file);
	rom = nd_optrom_is_rom(data, len);
	if (rom)
		rom_check(data, len, file, "before patching");
	{
		struct nd_bootcfg *b = find_bootcfg(data, len, file);
		off_t at = (off_t)((uint8_t *)b - data);

		apply_patch(b, p);
		if (rom) {
			nd_optrom_resum(data, len);
			rom_check(data, len, file, "after patching");
		}
		if (pwrite(fd, b, sizeof(*b), at) != (ssize_t)sizeof(*b) ||
		    (rom && pwrite(fd, data + len - 1, 1, (off_t)len - 1) != 1) || fsync(fd) < 0)
			die("cannot write %s: %s", file, strerror(errno));
		show_bootcfg(b);
		if (rom)
			printf("option ROM:     checksum fixed\n");
	}
	close(fd);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "image", required_argument, 0, 'I' },
		{ "mac", required_argument, 0, 'M' },
		{ "dgram", required_argument, 0, 'D' },
		{ "window", required_argument, 0, 'W' },
		{ "timeout", required_argument, 0, 'T' },
		{ "keep", no_argument, 0, 'K' },
		{ "seconds", required_argument, 0, 'S' },
		{ "pace", required_argument, 0, 'P' },
		{ "size", required_argument, 0, 'Z' },
		{ "server", required_argument, 0, 'H' },
		{ "attach-timeout", required_argument, 0, 'A' },
		{ "boot-path", required_argument, 0, 'B' },
		{ "verbose", no_argument, 0, 'V' },
		{ "quiet", no_argument, 0, 'Q' },
		{ "firmware-net", no_argument, 0, 'F' },
		{ "own-driver", no_argument, 0, 'O' },
		{ "multicast", no_argument, 0, 'G' },
		{ "mc-cache", required_argument, 0, 'C' },
		{ "mc-timeout", required_argument, 0, 'E' },
		{ "clients", required_argument, 0, 'n' },
		{ "mac-base", required_argument, 0, 'M' },
		{ "verify", required_argument, 0, 'v' },
		{ "no-times", no_argument, 0, 't' },
		{ "speed", required_argument, 0, 'p' },
		{ "one-process", no_argument, 0, '1' },
		{ "key", required_argument, 0, 'k' },
		{ "no-key", no_argument, 0, 'N' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct opts o = { NULL, { 0 }, 0, ND_DEFAULT_DGRAM, 64, 15, 1, 0, 16 << 20, 2000, 0, NULL };
	struct patch p = { NULL, NULL, NULL, -1, -1, -1, NULL, 0 };
	static uint8_t key[ND_KEYFILE_LEN];
	char why[4096 + 160];
	struct storm_opts so = { 1, 0, 1.0, NULL, 0 };
	const char *cmd, *out = NULL, *in = NULL;
	double seconds = 5, pace_us = 0;
	uint32_t size = 65536;
	int opt, bench_dgram = 1;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "image"))
		return cmd_image(argc - 1, argv + 1);
	if (!strcmp(cmd, "status") || !strcmp(cmd, "clients"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(cmd, "dnsmasq-conf"))
		return cmd_dnsmasq_conf(argc - 1, argv + 1);
	argv++;
	argc--;
	while ((opt = getopt_long(argc, argv, "o:i:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'I': o.image = optarg; break;
		case 'M':
			if (nd_mac_parse(optarg, o.mac) < 0)
				die("--mac wants aa:bb:cc:dd:ee:ff, not '%s'", optarg);
			o.have_mac = 1;
			break;
		case 'D':
			o.dgram = (unsigned)parse_number("--dgram", optarg);
			if (o.dgram < ND_MIN_DGRAM || o.dgram > ND_MAX_DGRAM)
				die("--dgram must be %d..%d", ND_MIN_DGRAM, ND_MAX_DGRAM);
			bench_dgram = 0;
			break;
		case 'W':
			o.window = (unsigned)parse_number("--window", optarg);
			if (o.window < 1 || o.window > 1024)
				die("--window must be 1..1024");
			break;
		case 'T': o.timeout_s = (unsigned)parse_number("--timeout", optarg); break;
		case 'K': o.detach = 0; break;
		case 'G': o.multicast = 1; break;
		case 'C': o.mc_cache = (size_t)parse_number("--mc-cache", optarg); break;
		case 'E': o.mc_timeout_ms = (unsigned)parse_number("--mc-timeout", optarg); break;
		case 'S': seconds = (double)parse_number("--seconds", optarg); break;
		case 'P': pace_us = (double)parse_number("--pace", optarg); break;
		case 'Z': size = (uint32_t)parse_number("--size", optarg); break;
		case 'H': p.server = optarg; break;
		case 'A': p.timeout = (long)parse_number("--attach-timeout", optarg); break;
		case 'B': p.boot_path = optarg; break;
		case 'V': p.verbose = 1; break;
		case 'Q': p.verbose = 0; break;
		case 'F': p.firmware_net = 1; break;
		case 'O': p.firmware_net = 0; break;
		case 'n': so.clients = (unsigned)parse_number("--clients", optarg); break;
		case 'v': so.verify = optarg; break;
		case 't': so.no_times = 1; break;
		case '1': so.one_process = 1; break;
		case 'p':
			so.speed = strtod(optarg, NULL);
			if (!(so.speed >= 0.001 && so.speed <= 1e6))
				die("--speed must be 0.001..1000000, not '%s'", optarg);
			break;
		case 'o': out = optarg; break;
		case 'i': in = optarg; break;
		case 'k':
			if (nd_key_load(optarg, key, why, sizeof(why)) < 0)
				die("--key: %s", why);
			o.key = p.key = key;
			break;
		case 'N': p.no_key = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.have_mac)
		default_mac(o.mac);
	argv += optind;
	argc -= optind;
	if (!strcmp(cmd, "patch") && argc == 1) {
		p.image = o.image;
		return cmd_patch(argv[0], &p);
	}
	if (!strcmp(cmd, "boot-table") && argc == 1)
		return cmd_boot_table(argv[0], out, &o);
	if (!strcmp(cmd, "info") && argc == 1)
		return cmd_info(argv[0], &o);
	if (!strcmp(cmd, "read") && argc == 3)
		return cmd_read(argv[0], parse_number("LBA", argv[1]),
				parse_number("COUNT", argv[2]), out, &o);
	if (!strcmp(cmd, "write") && argc == 2)
		return cmd_write(argv[0], parse_number("LBA", argv[1]), in, &o);
	if (!strcmp(cmd, "storm") && argc == 2) {
		if (!o.have_mac) /* locally administered, "NS": storm clients */
			memcpy(o.mac, "\x02\x4e\x53\x00\x00\x00", 6);
		return cmd_storm(argv[0], argv[1], &so, &o);
	}
	if (!strcmp(cmd, "bench") && argc == 1) {
		if (bench_dgram)
			o.dgram = ND_MAX_DGRAM; /* measure the protocol, not the MTU */
		return cmd_bench(argv[0], size, seconds, pace_us / 1e6, &o);
	}
	fprintf(stderr, "netdisk: bad command or arguments: %s\n", cmd);
	usage(stderr);
	return 2;
}
