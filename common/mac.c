/* MAC addresses as text: the one syntax, aa:bb:cc:dd:ee:ff, parsed strictly. */

#include <stdio.h>
#include "ndcommon.h"

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int nd_mac_parse(const char *s, uint8_t mac[6])
{
	uint8_t v[6];
	int i;

	/* Each group is exactly two digits, joined by ':'; nothing after. */
	for (i = 0; i < 6; i++) {
		const char *g = s + 3 * i;
		int hi = hex_digit(g[0]), lo = hi < 0 ? -1 : hex_digit(g[1]);

		if (lo < 0 || g[2] != (i < 5 ? ':' : '\0'))
			return -1;
		v[i] = (uint8_t)(hi << 4 | lo);
	}
	for (i = 0; i < 6; i++)
		mac[i] = v[i];
	return 0;
}

void nd_mac_format(const uint8_t mac[6], char out[ND_MAC_STRLEN + 1])
{
	snprintf(out, ND_MAC_STRLEN + 1, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
}
