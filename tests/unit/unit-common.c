/* Unit tests of common/: MAC and address text, mode names, whole-buffer I/O. */

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "netdisk/proto.h"
#include "ndcommon.h"
#include "unit.h"

static void mac_syntax(void)
{
	static const char *const bad[] = {
		"", "52:54:00:12:34", "52:54:00:12:34:5", "52:54:00:12:34:567", "52-54-00-12-34-56",
		"52:54:00:12:34:56 ", " 52:54:00:12:34:56", "52:54:00:12:34:5g", "525400123456",
		"52::54:00:12:34:56", "+2:54:00:12:34:56",
	};
	uint8_t mac[6], want[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	char text[ND_MAC_STRLEN + 1];
	size_t i, rejected = 0;

	check_that(nd_mac_parse("52:54:00:AB:cd:EF", mac) == 0 && !memcmp(mac, want, 6),
		   "mac-parse-accepts-either-case", "52:54:00:AB:cd:EF not parsed right");
	nd_mac_format(want, text);
	check_that(!strcmp(text, "52:54:00:ab:cd:ef"), "mac-format", "got '%s'", text);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(mac, want, 6);
		if (nd_mac_parse(bad[i], mac) < 0 && !memcmp(mac, want, 6))
			rejected++;
		else
			check_that(0, "mac-parse-rejects", "'%s' accepted (or mac changed)", bad[i]);
	}
	check_that(rejected == sizeof(bad) / sizeof(bad[0]), "mac-parse-rejects-all-bad",
		   "%zu of %zu rejected", rejected, sizeof(bad) / sizeof(bad[0]));
}

/* Split s with default port 7: the result, host and port. */
static int split(const char *s, char *host, unsigned *port)
{
	host[0] = 0;
	*port = 0;
	return nd_split_hostport(s, host, 64, port, 7);
}

static void hostport(void)
{
	static const struct {
		const char *in, *host;
		unsigned port;
	} good[] = {
		{ "10.0.0.1:99", "10.0.0.1", 99 },
		{ "server", "server", 7 },
		{ "[::1]:10809", "::1", 10809 },
		{ "fe80::1", "fe80::1", 7 },
		{ "[::1]", "::1", 7 },
	};
	static const char *const bad[] = { "h:0", "h:65536", "h:", "[::1", ":80", "[::1]x", "" };
	char host[64], name[64];
	unsigned port;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		rc = split(good[i].in, host, &port);
		snprintf(name, sizeof(name), "hostport-%s", good[i].in);
		check_that(rc == 0 && !strcmp(host, good[i].host) && port == good[i].port, name,
			   "rc %d, host '%s', port %u", rc, host, port);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = split(bad[i], host, &port);
		snprintf(name, sizeof(name), "hostport-rejects-'%s'", bad[i]);
		check_that(rc < 0, name, "accepted as host '%s' port %u", host, port);
	}
}

static void modes(void)
{
	int m, round = 1;

	for (m = ND_MODE_DIRECT; m <= ND_MODE_READONLY; m++)
		round &= nd_mode_parse(nd_mode_text((unsigned)m)) == m;
	check_that(round, "mode-names-round-trip", "a mode's name does not parse back to it");
	check_that(nd_mode_parse("read-only") == ND_MODE_READONLY && !nd_mode_parse("Volatile") &&
		   !nd_mode_parse(""), "mode-parse", "wrong result for read-only, Volatile or ''");
}

static void full_io(void)
{
	int fd[2];
	char buf[8];

	if (!check_that(pipe(fd) == 0, "io-pipe", "pipe: %s", strerror(errno)))
		return;
	check_that(nd_write_full(fd[1], "netdisk", 7) == 0, "io-write-full", "write failed");
	close(fd[1]);
	check_that(nd_read_full(fd[0], buf, 7) == 0 && !memcmp(buf, "netdisk", 7),
		   "io-read-full", "did not read back the 7 bytes");
	errno = EINVAL;
	check_that(nd_read_full(fd[0], buf, 1) < 0 && errno == 0, "io-read-full-eof",
		   "end of file not reported as -1 with errno 0");
	close(fd[0]);
}

void unit_common(void)
{
	mac_syntax();
	hostport();
	modes();
	full_io();
}
