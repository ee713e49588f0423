/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any byte stream as an iSCSI initiator, from the login into
 * the full feature phase.  The first byte chooses a prologue: a valid login to
 * the image (odd), a discovery login (2 set), or none, so that the fuzzer
 * reaches SCSI commands, Data-Out, R2T, task management and text requests
 * without having to find a login first. */

#include "fuzz_server.h"
#include "iscsi.h"

static struct server srv;
static char image_path[] = "/tmp/netdisk-fuzz-iscsi.XXXXXX";

/* A Login Request going straight to the full feature phase, with keys. */
static size_t login_pdu(uint8_t *out, const char *keys, size_t klen)
{
	size_t padded = (klen + 3) & ~(size_t)3;

	memset(out, 0, 48 + padded);
	out[0] = 0x43;               /* Login Request, immediate */
	out[1] = 0x80 | 1 << 2 | 3;  /* T, CSG operational, NSG full feature */
	out[5] = (uint8_t)(klen >> 16);
	out[6] = (uint8_t)(klen >> 8);
	out[7] = (uint8_t)klen;
	out[8] = 0x80;               /* ISID */
	memcpy(out + 48, keys, klen);
	return 48 + padded;
}

static void teardown(void)
{
	server_close(&srv);
	unlink(image_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char normal[] =
		"InitiatorName=iqn.2000-01.org.fuzz:one\0SessionType=Normal\0"
		"TargetName=" ISCSI_DEFAULT_PREFIX ":fuzz\0InitialR2T=No\0ImmediateData=Yes\0"
		"MaxRecvDataSegmentLength=4096\0MaxBurstLength=16384\0FirstBurstLength=8192\0";
	static const char discovery[] =
		"InitiatorName=iqn.2000-01.org.fuzz:one\0SessionType=Discovery\0"
		"MaxRecvDataSegmentLength=512\0";
	uint8_t pre[48 + 512];
	size_t prelen = 0;

	if (!srv.cfg.nimages) {
		fuzz_server_open(&srv, image_path);
		srv.cfg.nbd_handshake_timeout = 1;
		srv.cfg.nbd_idle_timeout = 1;
		srv.cfg.nbd_io_timeout = 1;
		atexit(teardown);
	}
	if (size && (data[0] & 1))
		prelen = login_pdu(pre, normal, sizeof(normal) - 1);
	else if (size && (data[0] & 2))
		prelen = login_pdu(pre, discovery, sizeof(discovery) - 1);
	if (size) {
		data++;
		size--;
	}
	fuzz_feed_stream(&srv, pre, prelen, data, size, iscsi_serve);
	return 0;
}
