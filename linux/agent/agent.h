/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdisk-attach: the initramfs agent that hands the network disk to the kernel's NBD driver. */
#ifndef AGENT_H
#define AGENT_H

#include <stdint.h>
#include <netinet/in.h>
#include "netdisk/boottable.h"
#include "wcache.h"

/* Where the disk is and who this machine is. */
struct target {
	int have_table;          /* from a boot table (else the command line) */
	struct nd_boot_table table;
	struct in_addr server;
	uint16_t nbd_port;
	char export_name[128];   /* "session:HEX" or an image name */
	char shown[80];          /* what messages show: "session FINGERPRINT" (never the
				  * token: it opens the session) or the image name */
};

/* table.c: find the boot table (file, ACPI, /dev/mem).  0 if found. */
int table_find(const char *file, struct nd_boot_table *t, char *where, size_t wherelen);
/* Fill a target from a table, or from netdisk.server=/netdisk.image= on the command line. */
int target_from_table(struct target *tg, const struct nd_boot_table *t);
int target_from_cmdline(struct target *tg, const char *cmdline);
void table_print(const struct nd_boot_table *t, const char *where);

/* net.c: bring up the interface with the table's MAC and address; writes net.env. */
int net_configure(const struct nd_boot_table *t, const char *env_path);

/* nbd.c: TCP + NBD handshake (OPT_GO).  The socket, or -1 with a message. */
int nbd_open(const struct target *tg, uint64_t *size, uint16_t *flags, char *err, size_t errlen);
/* The write-cache setting the server gave with the last handshake ("" = none). */
extern char nbd_write_cache[];
/* The image version the server said the session reads (last handshake):
 * what a persistent disk tier must have been made over.  have = 0: the
 * server did not say (an older netdiskd). */
struct nbd_image {
	int have;
	uint32_t vnum;
	uint64_t id;
	char name[65];
};
extern struct nbd_image nbd_image;

/* genl.c: the kernel NBD driver over generic netlink. */
int genl_nbd_connect(unsigned index, int sock, uint64_t size, uint16_t flags,
		     unsigned timeout_s, unsigned dead_timeout_s, char *err, size_t errlen);
int genl_nbd_reconfigure(unsigned index, int sock, char *err, size_t errlen);
/* Block until the kernel says device `index` lost its connection.  0, or -1. */
int genl_nbd_wait_dead(unsigned index, char *err, size_t errlen);

/* main.c: make the kernel read /dev/nbdN's partition table now, so root= can find its partition. */
void scan_partitions(unsigned index);

/* serve.c: the agent as the block server behind a write-redirection chain. */
struct wc_config;
int serve_setup(const struct target *tg, const struct wc_config *wc, uint64_t size,
		unsigned index);
int serve_run(uint64_t size, uint16_t flags, unsigned index, int ready_fd);
/* Send a control request to the agent serving /dev/nbdN; prints the answer; exit code. */
int ctl_request(unsigned index, const char *request);

/* Log to the kernel log (console) and stderr. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* AGENT_H */
