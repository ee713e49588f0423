/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `netdisk dnsmasq-conf`: the dnsmasq snippet that hands PXE clients their stub (cli/dnsconf.c). */
#ifndef NETDISK_CLI_DNSCONF_H
#define NETDISK_CLI_DNSCONF_H

#include <stddef.h>
#include <stdio.h>

#define DNSCONF_MAX_IMAGES 64
#define DNSCONF_NAME_LEN 63

/* What the snippet needs from a netdiskd.conf: where netdiskd listens and
 * which images it serves (names and modes, for the comments). */
struct dnsconf_server {
	char listen_host[64]; /* "0.0.0.0" or an address */
	unsigned listen_port;
	int nimages;
	struct {
		char name[DNSCONF_NAME_LEN + 1];
		char mode[16];
	} images[DNSCONF_MAX_IMAGES];
};

/* The global `listen` key and the [image NAME] sections (with their `mode`)
 * of netdiskd.conf text (len bytes, need not be NUL-terminated); every other
 * line is left to netdiskd.  0, or -1 with a message naming the line in err. */
int dnsconf_parse_server(const char *text, size_t len, struct dnsconf_server *sc, char *err,
			 size_t errlen);

/* One snippet's facts. */
struct dnsconf {
	int proxy;             /* 1: proxy-DHCP beside another DHCP server */
	char range[128];       /* full mode: START,END[,MASK][,LEASE] */
	char interface[32];    /* dnsmasq's interface= */
	char address[16];      /* this server's IPv4 address on it */
	char network[16];      /* its network address, for proxy mode */
	char netmask[16];
	char tftp_root[512];
	const char *config;    /* the netdiskd.conf read, or NULL */
	struct dnsconf_server server;
};

/* The snippet for c on f. */
void dnsconf_render(FILE *f, const struct dnsconf *c);

/* netdisk dnsmasq-conf [OPTIONS]: argv[0] is "dnsmasq-conf". */
int cmd_dnsmasq_conf(int argc, char **argv);

#endif
