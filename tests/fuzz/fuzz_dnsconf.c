/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any bytes as a netdiskd.conf into `netdisk dnsmasq-conf`'s reader (cli/dnsconf.c); an accepted file must give a sane listen port and image names that are safe to print in the snippet. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../cli/dnsconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dnsconf c;
	char err[256];
	int i;

	memset(&c, 0, sizeof(c));
	if (dnsconf_parse_server((const char *)data, size, &c.server, err, sizeof(err)) < 0) {
		if (!memchr(err, 0, sizeof(err)) || !err[0])
			abort();
		return 0;
	}
	if (c.server.listen_port < 1 || c.server.listen_port > 65535 || c.server.nimages < 0 ||
	    c.server.nimages > DNSCONF_MAX_IMAGES || strpbrk(c.server.listen_host, "\n\r "))
		abort();
	for (i = 0; i < c.server.nimages; i++)
		if (!c.server.images[i].name[0] || strpbrk(c.server.images[i].name, "\n\r ,") ||
		    strpbrk(c.server.images[i].mode, "\n\r"))
			abort();
	/* The whole snippet renders without tripping a sanitizer. */
	c.proxy = size & 1;
	snprintf(c.interface, sizeof(c.interface), "eth0");
	snprintf(c.address, sizeof(c.address), "192.0.2.2");
	snprintf(c.network, sizeof(c.network), "192.0.2.0");
	snprintf(c.netmask, sizeof(c.netmask), "255.255.255.0");
	snprintf(c.range, sizeof(c.range), "192.0.2.100,192.0.2.199");
	snprintf(c.tftp_root, sizeof(c.tftp_root), "/srv/tftp");
	{
		FILE *f = fopen("/dev/null", "w");

		if (f) {
			dnsconf_render(f, &c);
			fclose(f);
		}
	}
	return 0;
}
