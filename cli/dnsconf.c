/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `netdisk dnsmasq-conf`: prints the dnsmasq snippet (proxy-DHCP or full DHCP, TFTP, BIOS/UEFI by option 93) that brings PXE clients to this netdiskd. */

#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "ndcommon.h"
#include "netdisk/proto.h"
#include "dnsconf.h"

#define CONF_MAX (1 << 20) /* a netdiskd.conf larger than this is not one */

static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r'))
		(*s)++;
	while (*e > *s && (e[0][-1] == ' ' || e[0][-1] == '\t' || e[0][-1] == '\r'))
		(*e)--;
}

/* A name netdiskd accepts for an image (server/config.c's rule). */
static int valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > DNSCONF_NAME_LEN || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("._-", s[i])) || !s[i])
			return 0;
	return 1;
}

/* One line (s..e, no newline) of netdiskd.conf; *section is 0 (global), 1
 * ([image]) or 2 (any other section). */
static int parse_line(const char *s, const char *e, unsigned line, int *section,
		      struct dnsconf_server *sc, char *err, size_t errlen)
{
	const char *eq, *k, *ke, *v;
	char val[128];

	trim(&s, &e);
	if (s == e || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		const char *close = memchr(s, ']', (size_t)(e - s)), *name;

		if (!close || close + 1 != e) {
			snprintf(err, errlen, "line %u: malformed section header", line);
			return -1;
		}
		s++;
		trim(&s, &close);
		*section = 2;
		if ((size_t)(close - s) > 6 && !memcmp(s, "image", 5) && (s[5] == ' ' || s[5] == '\t')) {
			name = s + 6;
			trim(&name, &close);
			if (!valid_name(name, (size_t)(close - name))) {
				snprintf(err, errlen, "line %u: bad image name", line);
				return -1;
			}
			if (sc->nimages == DNSCONF_MAX_IMAGES) {
				snprintf(err, errlen, "line %u: more than %d images", line,
					 DNSCONF_MAX_IMAGES);
				return -1;
			}
			snprintf(sc->images[sc->nimages].name, sizeof(sc->images[0].name), "%.*s",
				 (int)(close - name), name);
			snprintf(sc->images[sc->nimages].mode, sizeof(sc->images[0].mode), "volatile");
			sc->nimages++;
			*section = 1;
		}
		return 0;
	}
	eq = memchr(s, '=', (size_t)(e - s));
	if (!eq)
		return 0; /* netdiskd's to judge ("file PATH from FILE" and errors) */
	k = s;
	ke = eq;
	v = eq + 1;
	trim(&k, &ke);
	trim(&v, &e);
	if ((size_t)(e - v) >= sizeof(val)) {
		snprintf(err, errlen, "line %u: value too long", line);
		return -1;
	}
	snprintf(val, sizeof(val), "%.*s", (int)(e - v), v);
	if (*section == 0 && ke - k == 6 && !memcmp(k, "listen", 6)) {
		struct in_addr a;

		if (nd_split_hostport(val, sc->listen_host, sizeof(sc->listen_host),
				      &sc->listen_port, ND_DEFAULT_PORT) < 0 ||
		    inet_pton(AF_INET, sc->listen_host, &a) != 1 || !sc->listen_port ||
		    sc->listen_port > 65535) {
			snprintf(err, errlen, "line %u: listen must be ADDR:PORT with an IPv4 "
					      "address (PXE is IPv4)", line);
			return -1;
		}
	} else if (*section == 1 && ke - k == 4 && !memcmp(k, "mode", 4)) {
		size_t i, n = strlen(val);

		for (i = 0; i < n && ((val[i] >= 'a' && val[i] <= 'z') || val[i] == '-'); i++)
			;
		/* netdiskd judges the value; the comment shows a plausible one only */
		snprintf(sc->images[sc->nimages - 1].mode, sizeof(sc->images[0].mode), "%.15s",
			 i == n ? val : "?");
	}
	return 0;
}

int dnsconf_parse_server(const char *text, size_t len, struct dnsconf_server *sc, char *err,
			 size_t errlen)
{
	const char *p = text, *end = text + len, *nl;
	unsigned line = 0;
	int section = 0;

	memset(sc, 0, sizeof(*sc));
	snprintf(sc->listen_host, sizeof(sc->listen_host), "0.0.0.0");
	sc->listen_port = ND_DEFAULT_PORT;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		line++;
		if (memchr(p, 0, (size_t)(nl - p))) {
			snprintf(err, errlen, "line %u: NUL byte", line);
			return -1;
		}
		if (parse_line(p, nl, line, &section, sc, err, errlen) < 0)
			return -1;
		p = nl + 1;
	}
	return 0;
}

/* Every line names the file it belongs in, what it does, and how the
 * stubs find netdiskd from it. */
void dnsconf_render(FILE *f, const struct dnsconf *c)
{
	const struct dnsconf_server *sc = &c->server;
	int specific = strcmp(sc->listen_host, "0.0.0.0") != 0;
	int patch = (specific && strcmp(sc->listen_host, c->address)) ||
		    sc->listen_port != ND_DEFAULT_PORT;
	const char *server = specific ? sc->listen_host : c->address;
	int i;

	fprintf(f, "# dnsmasq for netdisk: %s.\n",
		c->proxy ? "proxy-DHCP beside the site's DHCP server, and TFTP"
			 : "the only DHCP server on this network, and TFTP");
	fprintf(f, "# Printed by `netdisk dnsmasq-conf`; save as /etc/dnsmasq.d/netdisk.conf\n"
		   "# and restart dnsmasq (docs/lan.md).\n#\n");
	fprintf(f, "# netdiskd: %s:%u (UDP; NBD on TCP)%s%s\n", server, sc->listen_port,
		c->config ? ", from " : "", c->config ? c->config : "");
	if (sc->nimages) {
		fprintf(f, "# images:");
		for (i = 0; i < sc->nimages; i++)
			fprintf(f, " %s (%s)%s", sc->images[i].name, sc->images[i].mode,
				i + 1 < sc->nimages ? "," : "");
		fprintf(f, "\n# (netdiskd picks each client's image: [client] sections, default-image.)\n");
	}
	fprintf(f, "# The stubs go in the TFTP root:\n"
		   "#   cp /usr/lib/netdisk/netdisk.pxe /usr/lib/netdisk/netdisk.efi %s/\n",
		c->tftp_root);
	if (patch)
		fprintf(f, "# netdiskd is not at the stubs' default (next-server, port %d): patch them\n"
			   "#   netdisk patch %s/netdisk.pxe --server %s:%u\n"
			   "#   netdisk patch %s/netdisk.efi --server %s:%u\n",
			ND_DEFAULT_PORT, c->tftp_root, server, sc->listen_port, c->tftp_root, server,
			sc->listen_port);
	else
		fprintf(f, "# The stubs find netdiskd at the next-server below, port %d.\n",
			ND_DEFAULT_PORT);
	fprintf(f, "\nport=0\n"
		   "interface=%s\n"
		   "bind-interfaces\n"
		   "enable-tftp\n"
		   "tftp-root=%s\n",
		c->interface, c->tftp_root);
	if (c->proxy) {
		fprintf(f, "# Addresses come from the site's DHCP server; dnsmasq answers PXE\n"
			   "# clients on %s/%s only with the boot file (ports 67 and 4011).\n"
			   "dhcp-range=%s,proxy,%s\n",
			c->network, c->netmask, c->network, c->netmask);
		fprintf(f, "# Client architecture (DHCP option 93): 0 (BIOS) gets netdisk.pxe,\n"
			   "# 7 and 9 (x86-64 UEFI) netdisk.efi, both from the next-server %s.\n"
			   "pxe-service=x86PC,\"netdisk (BIOS)\",netdisk.pxe,%s\n"
			   "pxe-service=BC_EFI,\"netdisk (UEFI)\",netdisk.efi,%s\n"
			   "pxe-service=x86-64_EFI,\"netdisk (UEFI)\",netdisk.efi,%s\n",
			c->address, c->address, c->address, c->address);
	} else {
		fprintf(f, "# dnsmasq gives the addresses (no other DHCP server on %s/%s).\n"
			   "dhcp-range=%s\n",
			c->network, c->netmask, c->range);
		fprintf(f, "# Client architecture (DHCP option 93): 0 (BIOS) gets netdisk.pxe,\n"
			   "# 7 and 9 (x86-64 UEFI) netdisk.efi; the next-server is %s.\n"
			   "dhcp-match=set:netdisk-bios,option:client-arch,0\n"
			   "dhcp-match=set:netdisk-efi64,option:client-arch,7\n"
			   "dhcp-match=set:netdisk-efi64,option:client-arch,9\n"
			   "dhcp-boot=tag:netdisk-bios,netdisk.pxe,,%s\n"
			   "dhcp-boot=tag:netdisk-efi64,netdisk.efi,,%s\n",
			c->address, c->address, c->address);
	}
	fprintf(f, "# log-dhcp    # uncomment to log every client's exchange\n");
}

/* An IPv4 address in dotted form (and nothing else). */
static int ipv4(const char *s, struct in_addr *a)
{
	return inet_pton(AF_INET, s, a) == 1 ? 0 : -1;
}

/* --range START,END[,NETMASK][,LEASE]: the addresses are checked here (and
 * must lie in the interface's network), the lease is dnsmasq's syntax. */
static int check_range(const char *range, struct in_addr net, struct in_addr mask, char *err,
		       size_t errlen)
{
	char buf[128], *field[5], *save = NULL, *t;
	struct in_addr a;
	int n = 0, i;

	if (snprintf(buf, sizeof(buf), "%s", range) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "--range is too long");
		return -1;
	}
	for (t = strtok_r(buf, ",", &save); t && n < 5; t = strtok_r(NULL, ",", &save))
		field[n++] = t;
	if (n < 2 || n > 4 || t) {
		snprintf(err, errlen, "--range wants START,END[,NETMASK][,LEASE], not '%s'", range);
		return -1;
	}
	for (i = 0; i < 2; i++) {
		if (ipv4(field[i], &a) < 0) {
			snprintf(err, errlen, "--range: '%s' is not an IPv4 address", field[i]);
			return -1;
		}
		if ((a.s_addr & mask.s_addr) != net.s_addr) {
			char nb[16], mb[16];

			inet_ntop(AF_INET, &net, nb, sizeof(nb));
			inet_ntop(AF_INET, &mask, mb, sizeof(mb));
			snprintf(err, errlen, "--range: %s is not in the interface's network %s/%s",
				 field[i], nb, mb);
			return -1;
		}
	}
	for (i = 2; i < n; i++) {
		size_t k, len = strlen(field[i]);

		if (ipv4(field[i], &a) == 0 && i == 2)
			continue;
		if (!strcmp(field[i], "infinite"))
			continue;
		for (k = 0; k < len && field[i][k] >= '0' && field[i][k] <= '9'; k++)
			;
		if (k == 0 || len - k > 1 || (k < len && !strchr("smhdw", field[i][k]))) {
			snprintf(err, errlen, "--range: '%s' is neither a netmask nor a lease time "
					      "(e.g. 12h)", field[i]);
			return -1;
		}
	}
	return 0;
}

/* Fills interface, address, network and netmask from the machine's
 * interfaces: the one named, the one holding the address given, or the only
 * non-loopback IPv4 interface that is up. */
static int find_interface(struct dnsconf *c, const char *want_if, const char *want_addr,
			  char *err, size_t errlen)
{
	struct ifaddrs *ifs, *i, *hit = NULL;
	struct in_addr want = { 0 };
	char names[256] = "";
	int candidates = 0;

	if (want_addr && ipv4(want_addr, &want) < 0) {
		snprintf(err, errlen, "--address: '%s' is not an IPv4 address", want_addr);
		return -1;
	}
	if (getifaddrs(&ifs) < 0) {
		snprintf(err, errlen, "getifaddrs: %s", strerror(errno));
		return -1;
	}
	for (i = ifs; i; i = i->ifa_next) {
		struct in_addr a;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask)
			continue;
		a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		if (want_if && strcmp(i->ifa_name, want_if))
			continue;
		if (want_addr && a.s_addr != want.s_addr)
			continue;
		if (!want_if && !want_addr) {
			if ((i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
				continue;
			if (candidates++ < 4) {
				char ab[16];

				inet_ntop(AF_INET, &a, ab, sizeof(ab));
				snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s %s",
					 candidates > 1 ? ", " : "", i->ifa_name, ab);
			}
		}
		if (!hit)
			hit = i;
	}
	if (!hit || candidates > 1) {
		if (candidates > 1)
			snprintf(err, errlen, "several interfaces (%s%s): say which with --interface "
					      "or --address", names, candidates > 4 ? ", ..." : "");
		else if (want_if && want_addr)
			snprintf(err, errlen, "interface %s does not hold the address %s", want_if,
				 want_addr);
		else if (want_if)
			snprintf(err, errlen, "interface %s does not exist or has no IPv4 address",
				 want_if);
		else if (want_addr)
			snprintf(err, errlen, "no interface of this machine holds the address %s",
				 want_addr);
		else
			snprintf(err, errlen, "no network interface with an IPv4 address is up");
		freeifaddrs(ifs);
		return -1;
	}
	{
		struct in_addr a = ((struct sockaddr_in *)hit->ifa_addr)->sin_addr;
		struct in_addr m = ((struct sockaddr_in *)hit->ifa_netmask)->sin_addr;
		struct in_addr n = { a.s_addr & m.s_addr };

		snprintf(c->interface, sizeof(c->interface), "%s", hit->ifa_name);
		inet_ntop(AF_INET, &a, c->address, sizeof(c->address));
		inet_ntop(AF_INET, &m, c->netmask, sizeof(c->netmask));
		inet_ntop(AF_INET, &n, c->network, sizeof(c->network));
	}
	freeifaddrs(ifs);
	return 0;
}

static void dnsconf_usage(FILE *f)
{
	fprintf(f,
		"usage: netdisk dnsmasq-conf --proxy | --range START,END[,NETMASK][,LEASE]\n"
		"         [--interface IF] [--address IP] [--tftp-root DIR] [--config FILE]\n"
		"\n"
		"Prints a dnsmasq configuration that PXE-boots BIOS clients into netdisk.pxe\n"
		"and UEFI x86-64 clients into netdisk.efi (DHCP option 93), with this machine\n"
		"as TFTP server and next-server (where the stubs find netdiskd).\n"
		"  --proxy          proxy-DHCP beside the site's DHCP server (the common case)\n"
		"  --range ...      dnsmasq is the only DHCP server and gives these addresses\n"
		"  --interface IF   the network's interface (default: the only one that is up)\n"
		"  --address IP     this server's address on it (default: the interface's)\n"
		"  --tftp-root DIR  where netdisk.pxe and netdisk.efi are (default /srv/tftp)\n"
		"  --config FILE    netdiskd.conf: its listen address and images\n"
		"See docs/lan.md.\n");
}

int cmd_dnsmasq_conf(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "proxy", no_argument, 0, 'p' },
		{ "range", required_argument, 0, 'r' },
		{ "interface", required_argument, 0, 'i' },
		{ "address", required_argument, 0, 'a' },
		{ "tftp-root", required_argument, 0, 't' },
		{ "config", required_argument, 0, 'c' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *want_if = NULL, *want_addr = NULL, *range = NULL;
	struct dnsconf *c = calloc(1, sizeof(*c));
	char err[512];
	int opt;

	if (!c) {
		fprintf(stderr, "netdisk dnsmasq-conf: out of memory\n");
		return 1;
	}
	snprintf(c->tftp_root, sizeof(c->tftp_root), "/srv/tftp");
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': c->proxy = 1; break;
		case 'r': range = optarg; break;
		case 'i': want_if = optarg; break;
		case 'a': want_addr = optarg; break;
		case 't':
			if (optarg[0] != '/' || strpbrk(optarg, "\n\r") ||
			    snprintf(c->tftp_root, sizeof(c->tftp_root), "%s", optarg) >=
				    (int)sizeof(c->tftp_root)) {
				fprintf(stderr, "netdisk dnsmasq-conf: --tftp-root wants an absolute "
						"directory, not '%s'\n", optarg);
				goto usage;
			}
			break;
		case 'c':
			if (strpbrk(optarg, "\n\r")) {
				fprintf(stderr, "netdisk dnsmasq-conf: --config: a path with a line "
						"break would end up in the snippet\n");
				goto usage;
			}
			c->config = optarg;
			break;
		case 'h': dnsconf_usage(stdout); free(c); return 0;
		default: goto usage;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "netdisk dnsmasq-conf: unexpected argument '%s'\n", argv[optind]);
		goto usage;
	}
	if (c->proxy == !!range) {
		fprintf(stderr, "netdisk dnsmasq-conf: say --proxy (beside the site's DHCP server) "
				"or --range START,END (dnsmasq gives the addresses), one of them\n");
		goto usage;
	}
	if (range)
		snprintf(c->range, sizeof(c->range), "%s", range);
	if (want_if && (!*want_if || strlen(want_if) >= IFNAMSIZ || strpbrk(want_if, " \t\n/"))) {
		fprintf(stderr, "netdisk dnsmasq-conf: --interface: '%s' is not an interface name\n",
			want_if);
		goto usage;
	}
	if (c->config) {
		size_t len;
		char *text = nd_read_file(c->config, CONF_MAX, &len);

		if (!text) {
			fprintf(stderr, "netdisk dnsmasq-conf: cannot read %s: %s\n", c->config,
				strerror(errno));
			free(c);
			return 1;
		}
		if (dnsconf_parse_server(text, len, &c->server, err, sizeof(err)) < 0) {
			fprintf(stderr, "netdisk dnsmasq-conf: %s: %s\n", c->config, err);
			free(text);
			free(c);
			return 1;
		}
		free(text);
	} else {
		snprintf(c->server.listen_host, sizeof(c->server.listen_host), "0.0.0.0");
		c->server.listen_port = ND_DEFAULT_PORT;
	}
	/* netdiskd bound to one address: that is the server, unless told otherwise. */
	if (!want_addr && !want_if && strcmp(c->server.listen_host, "0.0.0.0"))
		want_addr = c->server.listen_host;
	if (find_interface(c, want_if, want_addr, err, sizeof(err)) < 0) {
		fprintf(stderr, "netdisk dnsmasq-conf: %s\n", err);
		free(c);
		return 1;
	}
	if (range) {
		struct in_addr net, mask;

		inet_pton(AF_INET, c->network, &net);
		inet_pton(AF_INET, c->netmask, &mask);
		if (check_range(range, net, mask, err, sizeof(err)) < 0) {
			fprintf(stderr, "netdisk dnsmasq-conf: %s\n", err);
			goto usage;
		}
	}
	dnsconf_render(stdout, c);
	free(c);
	return fflush(stdout) == 0 ? 0 : 1;
usage:
	dnsconf_usage(stderr);
	free(c);
	return 2;
}
