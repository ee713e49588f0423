/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of netdiskd's config parser: each kind of bad input gets its
 * own error, naming the file and line; good input loads. */

#include <stdio.h>
#include <string.h>
#include "netdiskd.h"
#include "iscsi.h"
#include "unit.h"

/* Load text as a config file: the parser's result and its error. */
static int load(const char *text, char *err, size_t errlen)
{
	char path[256];
	struct config c;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/netdiskd.conf", unit_tmpdir());
	f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "cannot write %s", path);
		return -2;
	}
	fputs(text, f);
	fclose(f);
	config_defaults(&c);
	err[0] = 0;
	rc = config_load(&c, path, err, errlen);
	if (rc == 0)
		rc = config_check(&c, err, errlen);
	config_free(&c);
	return rc;
}

static void expect_error(const char *name, const char *text, const char *want)
{
	char err[512];
	int rc = load(text, err, sizeof(err));

	check_that(rc == -1 && strstr(err, want), name, "want an error with '%s', got rc %d '%s'",
		   want, rc, err);
}

/* iSCSI's CRC32C: RFC 3720 B.4's vectors, and a digest continued over parts. */
static void crc32c(void)
{
	static const uint8_t zeros[32], ones[32] = { [0 ... 31] = 0xff };
	uint8_t inc[32];

	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	check_that(iscsi_crc32c(0, zeros, 32) == 0x8a9136aa && iscsi_crc32c(0, ones, 32) == 0x62a8ab43 &&
		   iscsi_crc32c(0, inc, 32) == 0x46dd794e && iscsi_crc32c(0, "123456789", 9) == 0xe3069283,
		   "iscsi-crc32c-vectors", "got %08x %08x %08x", iscsi_crc32c(0, zeros, 32),
		   iscsi_crc32c(0, ones, 32), iscsi_crc32c(0, inc, 32));
	check_that(iscsi_crc32c(iscsi_crc32c(0, inc, 13), inc + 13, 19) == 0x46dd794e,
		   "iscsi-crc32c-continued", "continuing a digest over a second part");
}

void unit_config(void)
{
	char err[512], line[5000];
	int rc;

	rc = load("listen = 127.0.0.1:10809\nstate-dir = /tmp\n# comment\n[image disk]\n"
		  "path = /x.img\nmode = persistent\n[client 52:54:00:12:34:56]\nimage = disk\n",
		  err, sizeof(err));
	check_that(rc == 0, "config-good-loads", "rc %d: %s", rc, err);
	expect_error("config-unknown-key", "[image a]\npath = /a\n[client 52:54:00:00:00:01]\n"
		     "colour = red\n", "netdiskd.conf:4: unknown client key 'colour'");
	expect_error("config-unknown-global-key", "speed = 9\n", ":1: unknown key 'speed'");
	expect_error("config-bad-mac", "[client 52-54-00-00-00-01]\n",
		     ":1: bad MAC address (want aa:bb:cc:dd:ee:ff) '52-54-00-00-00-01'");
	expect_error("config-bad-mode", "[image a]\npath = /a\nmode = sometimes\n",
		     ":3: mode must be direct, volatile, persistent or readonly, not 'sometimes'");
	expect_error("config-window-range", "window = 0\n", ":1: window must be 1..1024, not '0'");
	expect_error("config-number-junk", "max-datagram = 1500x\n",
		     ":1: max-datagram must be 576..65024, not '1500x'");
	expect_error("config-multicast-mode", "multicast = sometimes\n",
		     ":1: multicast must be off, auto or always, not 'sometimes'");
	expect_error("config-multicast-group", "multicast-group = 10.0.0.1/24\n",
		     ":1: multicast-group must be an IPv4 multicast ADDR[/PREFIX] (224.0.0.0/4), not '10.0.0.1/24'");
	expect_error("config-multicast-datagram", "multicast-datagram = 1000000\n",
		     ":1: multicast-datagram must be 560..16432 bytes, not '1000000'");
	expect_error("config-multicast-ttl", "multicast-ttl = 0\n", ":1: multicast-ttl must be 1..255, not '0'");
	expect_error("config-write-cache-bad", "[image a]\npath = /a\nwrite-cache = ram:lots\n",
		     ":3: write-cache: bad RAM size 'lots'");
	expect_error("config-client-write-cache-bad",
		     "[client 52:54:00:00:00:01]\nwrite-cache = disk:sdb\n", ":2: write-cache: bad disk 'sdb'");
	{
		struct config c = { 0 };
		char path[300];
		FILE *f;

		snprintf(path, sizeof(path), "%s/wc.conf", unit_tmpdir());
		f = fopen(path, "w");
		if (f) {
			fputs("[image a]\npath = /a\nwrite-cache = ram:64M overflow=disk:LABEL=ndcache\n"
			      "[client 52:54:00:00:00:01]\nwrite-cache = server\n", f);
			fclose(f);
		}
		rc = config_load(&c, path, err, sizeof(err));
		check_that(rc == 0 && c.nimages == 1 &&
				   !strcmp(c.images[0].write_cache, "ram:64M overflow=disk:LABEL=ndcache") &&
				   c.nclients == 1 && !strcmp(c.clients[0].write_cache, "server"),
			   "config-write-cache", "rc %d: %s", rc, err);
		if (rc == 0)
			config_free(&c);
	}
	expect_error("config-no-equals", "\n\nlisten\n", ":3: expected KEY = VALUE, got 'listen'");
	expect_error("config-empty-value", "listen =\n", ":1: empty value for 'listen'");
	expect_error("config-bad-section", "[disk a]\n", ":1: unknown section 'disk'");
	expect_error("config-section-no-name", "[image]\n", ":1: section needs a name 'image'");
	expect_error("config-malformed-header", "[image a\n", ":1: malformed section header");
	expect_error("config-bad-image-name", "[image ../etc]\n", "bad image name '../etc'");
	expect_error("config-image-twice", "[image a]\npath=/a\n[image a]\n",
		     ":3: image 'a' defined twice");
	expect_error("config-no-image", "listen = 127.0.0.1:1\n", "no image to serve");
	expect_error("config-image-no-path", "[image a]\n", "image 'a' has no path");
	expect_error("config-persistent-needs-state", "[image a]\npath = /a\nmode = persistent\n",
		     "image 'a' is persistent: give a state directory");
	expect_error("config-client-unknown-image",
		     "[image a]\npath = /a\n[client 52:54:00:00:00:01]\nimage = b\n",
		     "client 52:54:00:00:00:01: no image 'b'");
	expect_error("config-default-image-undefined", "default-image = b\n[image a]\npath = /a\n",
		     "default-image 'b' is not defined");
	memset(line, 'x', sizeof(line) - 2);
	memcpy(line, "listen = ", 9);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = 0;
	expect_error("config-line-too-long", line, ":1: line too long");
	/* iSCSI keys (docs/iscsi.md) */
	crc32c();
	rc = load("iscsi-listen = 127.0.0.1\niscsi-target-prefix = iqn.2024-01.org.example\n"
		  "[image a]\npath = /a\niscsi-chap-user = lab\niscsi-chap-secret = 0123456789ab\n"
		  "[client 52:54:00:12:34:56]\niscsi-initiator = iqn.1991-05.com.microsoft:pc1\n",
		  err, sizeof(err));
	check_that(rc == 0, "config-iscsi-loads", "rc %d: %s", rc, err);
	expect_error("config-iscsi-listen-bad", "iscsi-listen = :3260\n",
		     ":1: iscsi-listen must be ADDR[:PORT]");
	expect_error("config-iscsi-prefix-bad", "iscsi-target-prefix = IQN.Upper:\n",
		     ":1: iscsi-target-prefix must be an iSCSI name");
	expect_error("config-iscsi-initiator-bad",
		     "[client 52:54:00:12:34:56]\niscsi-initiator = not a name\n",
		     ":2: iscsi-initiator must be an iSCSI name");
	expect_error("config-iscsi-initiator-twice",
		     "[client 52:54:00:12:34:56]\niscsi-initiator = iqn.2000-01.x:a\n"
		     "[client 52:54:00:12:34:57]\niscsi-initiator = IQN.2000-01.x:A\n",
		     ":4: iscsi-initiator IQN.2000-01.x:A is already the client's at line 1");
	expect_error("config-iscsi-chap-short", "[image a]\npath = /a\niscsi-chap-secret = short\n",
		     ":3: iscsi-chap-secret must be at least 12 bytes");
	expect_error("config-iscsi-chap-user-no-secret", "[image a]\npath = /a\niscsi-chap-user = x\n",
		     "image 'a': an iscsi-chap-*user without its iscsi-chap-*secret");
	expect_error("config-iscsi-mutual-alone",
		     "[image a]\npath = /a\niscsi-chap-target-secret = 0123456789abc\n",
		     "image 'a': iscsi-chap-target-secret (mutual CHAP) needs iscsi-chap-secret");
	expect_error("config-iscsi-mutual-same",
		     "[image a]\npath = /a\n[client 52:54:00:12:34:56]\n"
		     "iscsi-chap-secret = 0123456789abc\niscsi-chap-target-secret = 0123456789abc\n",
		     "client 52:54:00:12:34:56: the target's CHAP secret must differ");
	/* takeover = nbd|iscsi and the iBFT it asks for (docs/handoff.md) */
	rc = load("iscsi-listen = 127.0.0.1\ntakeover = iscsi\n[image a]\npath = /a\ntakeover = nbd\n"
		  "[client 52:54:00:12:34:56]\ntakeover = iscsi\n", err, sizeof(err));
	check_that(rc == 0, "config-takeover-loads", "rc %d: %s", rc, err);
	expect_error("config-takeover-bad", "takeover = smb\n", ":1: takeover must be nbd or iscsi");
	expect_error("config-takeover-no-target", "[image a]\npath = /a\ntakeover = iscsi\n",
		     "image 'a': takeover = iscsi needs the iSCSI target (iscsi-listen)");
	{
		/* Names the iBFT cannot hold: each fits its key, together they
		 * exceed the ND_IBFT_MAX bytes the stubs keep. */
		static char text[2048];
		char prefix[160], ini[224], user[224], secret[256];

		memset(prefix, 'p', sizeof(prefix) - 1), prefix[sizeof(prefix) - 1] = 0;
		memcpy(prefix, "iqn.2000-01.x:", 14);
		memset(ini, 'i', sizeof(ini) - 1), ini[sizeof(ini) - 1] = 0;
		memcpy(ini, "iqn.2000-01.y:", 14);
		memset(user, 'u', sizeof(user) - 1), user[sizeof(user) - 1] = 0;
		memset(secret, 's', sizeof(secret) - 1), secret[sizeof(secret) - 1] = 0;
		snprintf(text, sizeof(text), "iscsi-listen = 127.0.0.1\niscsi-target-prefix = %s\n"
			 "[image a]\npath = /a\n[client 52:54:00:12:34:56]\ntakeover = iscsi\n"
			 "iscsi-initiator = %s\niscsi-chap-user = %s\niscsi-chap-secret = %s\n",
			 prefix, ini, user, secret);
		expect_error("config-takeover-ibft-too-long", text,
			     "client 52:54:00:12:34:56: its iBFT (initiator name 223 bytes, target "
			     "name 200");
		/* the same client with takeover = nbd needs no iBFT */
		snprintf(text, sizeof(text), "iscsi-listen = 127.0.0.1\niscsi-target-prefix = %s\n"
			 "[image a]\npath = /a\n[client 52:54:00:12:34:56]\ntakeover = nbd\n"
			 "iscsi-initiator = %s\niscsi-chap-user = %s\niscsi-chap-secret = %s\n",
			 prefix, ini, user, secret);
		rc = load(text, err, sizeof(err));
		check_that(rc == 0, "config-takeover-nbd-long-names", "rc %d: %s", rc, err);
	}
	expect_error("config-iscsi-initiator-too-long",
		     "[client 52:54:00:12:34:56]\niscsi-initiator = iqn.2000-01.x:"
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		     ":2: iscsi-initiator must be an iSCSI name");
	rc = config_load(&(struct config){ 0 }, "/nonexistent/netdiskd.conf", err, sizeof(err));
	check_that(rc == -1 && strstr(err, "cannot open config /nonexistent/netdiskd.conf: No such"),
		   "config-missing-file", "got rc %d '%s'", rc, err);
}
