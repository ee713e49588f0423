/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Bringing up the boot NIC with the address the boot table gives (no DHCP needed). */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <net/route.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "agent.h"
#include "ndcommon.h"
#include "netdisk/proto.h"

/* The interface whose hardware address is mac, into name. */
static int find_interface(const uint8_t mac[6], char *name, size_t namelen)
{
	char want[18], have[32], path[300];
	struct dirent *d;
	DIR *dp = opendir("/sys/class/net");
	int found = -1;

	nd_mac_format(mac, want);
	while (dp && found < 0 && (d = readdir(dp))) {
		FILE *f;

		if (d->d_name[0] == '.' || strlen(d->d_name) >= namelen)
			continue;
		snprintf(path, sizeof(path), "/sys/class/net/%s/address", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(have, sizeof(have), f) && !strncmp(have, want, 17)) {
			memcpy(name, d->d_name, strlen(d->d_name) + 1);
			found = 0;
		}
		fclose(f);
	}
	if (dp)
		closedir(dp);
	return found;
}

/* Is ifname driven by a driver that does not reset its device when it probes
 * it?  A NIC the BIOS's PXE stack used is still running when Linux starts
 * (the stub reads through it until the last INT 13h).  Most drivers reset
 * the device at probe; vmxnet3 does not, and QEMU's vmxnet3 ignores an
 * ACTIVATE while the firmware's rings are live, so Linux sends nothing
 * (docs/compat.md).  Closing the interface once (quiesce and reset) before
 * the open that configures it fixes that. */
static int needs_close_first(const char *ifname)
{
	char path[300], target[300];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/class/net/%s/device/driver", ifname);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = 0;
	base = strrchr(target, '/');
	return !strcmp(base ? base + 1 : target, "vmxnet3");
}

static void set_addr(struct sockaddr *sa, const uint8_t ip[4])
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;

	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	memcpy(&in->sin_addr, ip, 4);
}

static int prefix_len(const uint8_t mask[4])
{
	uint32_t m = ((uint32_t)mask[0] << 24) | (mask[1] << 16) | (mask[2] << 8) | mask[3];
	int n = 0;

	while (m & 0x80000000u) {
		n++;
		m <<= 1;
	}
	return n;
}

static int add_default_route(int fd, const char *ifname, const uint8_t gw[4])
{
	struct rtentry rt;

	memset(&rt, 0, sizeof(rt));
	set_addr(&rt.rt_dst, (const uint8_t *)"\0\0\0\0");
	set_addr(&rt.rt_genmask, (const uint8_t *)"\0\0\0\0");
	set_addr(&rt.rt_gateway, gw);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = (char *)ifname;
	return ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST ? -1 : 0;
}

/* Record the settings as the initramfs' udhcpc script does. */
static int write_env(const char *path, const char *ifname, const struct nd_boot_table *t)
{
	char ip[16], gw[16], server[16];
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	inet_ntop(AF_INET, t->client_ip, ip, sizeof(ip));
	inet_ntop(AF_INET, t->gateway, gw, sizeof(gw));
	inet_ntop(AF_INET, t->server_ip, server, sizeof(server));
	fprintf(f, "interface=%s\nip=%s\nmask=%d\nrouter=%s\nsiaddr=%s\ntakeover=%s\n", ifname, ip,
		prefix_len(t->netmask), memcmp(t->gateway, "\0\0\0\0", 4) ? gw : "", server,
		nd_get32(t->handoff) & ND_HANDOFF_ISCSI ? "iscsi" : "nbd");
	return fclose(f);
}

int net_configure(const struct nd_boot_table *t, const char *env_path)
{
	struct ifreq ifr;
	char ifname[IFNAMSIZ];
	char mac[ND_MAC_STRLEN + 1];
	int fd, rc = -1;

	if (find_interface(t->mac, ifname, sizeof(ifname)) < 0) {
		nd_mac_format(t->mac, mac);
		say("no network interface has the boot NIC's address %s (driver not loaded?)",
		    mac);
		return -1;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		goto out;
	if (needs_close_first(ifname)) {
		/* open (if nobody has: the reset happens on the close path), close */
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			goto out;
		ifr.ifr_flags &= ~IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			goto out;
		say("%s: closed once, so that its driver resets what the firmware left running",
		    ifname);
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		goto out;
	set_addr(&ifr.ifr_addr, t->client_ip);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		goto out;
	set_addr(&ifr.ifr_netmask, t->netmask);
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		goto out;
	if (memcmp(t->gateway, "\0\0\0\0", 4) && add_default_route(fd, ifname, t->gateway) < 0)
		goto out;
	rc = env_path ? write_env(env_path, ifname, t) : 0;
out:
	if (rc < 0)
		say("cannot configure %s: %s", ifname, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}
