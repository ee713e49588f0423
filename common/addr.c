/* HOST:PORT addresses as given on command lines and in config files. */

#include <stdlib.h>
#include <string.h>
#include "ndcommon.h"

int nd_split_hostport(const char *s, char *host, size_t hostlen, unsigned *port,
		      unsigned default_port)
{
	const char *colon, *end;
	size_t n;

	*port = default_port;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end)
			return -1;
		n = (size_t)(end - s - 1);
		s++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (!colon && end[1])
			return -1;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		n = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, s, n);
	host[n] = 0;
	if (colon) {
		char *stop;
		unsigned long p = strtoul(colon + 1, &stop, 10);

		if (!colon[1] || *stop || p == 0 || p > 65535)
			return -1;
		*port = (unsigned)p;
	}
	return 0;
}
