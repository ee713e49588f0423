/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TLS for NBD connections (NBD_OPT_STARTTLS), with GnuTLS: pre-shared keys
 * in the file format of nbdkit, qemu-nbd and psktool ("identity:hexkey" a
 * line) and X.509 (a directory with server-cert.pem and server-key.pem, and
 * ca-cert.pem to require and verify client certificates), the conventions of
 * nbdkit and qemu-nbd so that `nbdinfo nbds://...` and nbdcopy work with the
 * same files.  server/nbd.c calls these; this file holds no NBD logic.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include "netdiskd.h"

#define PSK_MAX 256          /* identities in a PSK file */
#define PSK_ID_MAX 128
#define PSK_KEY_MAX 128      /* bytes */

struct psk {
	char id[PSK_ID_MAX + 1];
	uint8_t key[PSK_KEY_MAX];
	unsigned len;
};

static struct {
	int on;
	gnutls_psk_server_credentials_t psk_cred;
	gnutls_certificate_credentials_t x509_cred;
	int verify_clients;      /* ca-cert.pem given: client certificates required */
	struct psk *keys;
	int nkeys;
	gnutls_priority_t prio;
} tls;

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * Parse a PSK file's text: lines "identity:hexkey" (psktool writes them),
 * blank lines and '#' comments allowed.  0, or -1 with err naming the line.
 */
static int tls_parse_psk(const char *text, struct psk **out, int *nout, char *err, size_t errlen)
{
	struct psk *keys = calloc(PSK_MAX, sizeof(*keys));
	const char *p = text;
	int n = 0, line = 0;

	if (!keys)
		return snprintf(err, errlen, "out of memory"), -1;
	while (*p) {
		const char *end = strchr(p, '\n'), *colon;
		size_t len = end ? (size_t)(end - p) : strlen(p), i;

		line++;
		if (len && p[len - 1] == '\r')
			len--;
		if (len == 0 || p[0] == '#')
			goto next;
		colon = memchr(p, ':', len);
		if (!colon || colon == p || (size_t)(colon - p) > PSK_ID_MAX) {
			snprintf(err, errlen, "line %d: want identity:hexkey (identity of 1..%d bytes)",
				 line, PSK_ID_MAX);
			goto bad;
		}
		if (n == PSK_MAX) {
			snprintf(err, errlen, "line %d: more than %d identities", line, PSK_MAX);
			goto bad;
		}
		memcpy(keys[n].id, p, (size_t)(colon - p));
		for (i = 0; i < (size_t)(colon - p); i++)
			if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e) {
				snprintf(err, errlen, "line %d: identity has a control or space character",
					 line);
				goto bad;
			}
		{
			const char *h = colon + 1;
			size_t hl = len - (size_t)(h - p);

			if (hl == 0 || hl % 2 || hl / 2 > PSK_KEY_MAX) {
				snprintf(err, errlen, "line %d: the key must be 2..%d hex digits, an even "
					 "number", line, 2 * PSK_KEY_MAX);
				goto bad;
			}
			for (i = 0; i < hl / 2; i++) {
				int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);

				if (hi < 0 || lo < 0) {
					snprintf(err, errlen, "line %d: the key is not hexadecimal", line);
					goto bad;
				}
				keys[n].key[i] = (uint8_t)(hi << 4 | lo);
			}
			keys[n].len = (unsigned)(hl / 2);
		}
		n++;
next:
		if (!end)
			break;
		p = end + 1;
	}
	if (n == 0) {
		snprintf(err, errlen, "no identity in it");
		goto bad;
	}
	*out = keys;
	*nout = n;
	return 0;
bad:
	free(keys);
	return -1;
}

int tls_psk_count(const char *text, char *err, size_t errlen)
{
	struct psk *keys;
	int n;

	if (tls_parse_psk(text, &keys, &n, err, errlen) < 0)
		return -1;
	free(keys);
	return n;
}

/* GnuTLS asks for the key of the identity a client names. */
static int psk_lookup(gnutls_session_t session, const char *id, gnutls_datum_t *key)
{
	int i;

	(void)session;
	for (i = 0; i < tls.nkeys; i++) {
		if (strcmp(tls.keys[i].id, id))
			continue;
		key->data = gnutls_malloc(tls.keys[i].len);
		if (!key->data)
			return -1;
		memcpy(key->data, tls.keys[i].key, tls.keys[i].len);
		key->size = tls.keys[i].len;
		return 0;
	}
	return -1; /* unknown identity: the handshake fails */
}

static int load_psk(const char *path, char *err, size_t errlen)
{
	char msg[160], *text;
	struct stat st;
	size_t n;
	int rc;

	text = nd_read_file(path, 65535, &n);
	if (!text)
		return snprintf(err, errlen, "nbd-tls-psk-file %s: %s", path,
				errno == EFBIG ? "larger than 64 KiB" : strerror(errno)), -1;
	if (stat(path, &st) == 0 && (st.st_mode & 0077))
		log_msg("warning: nbd-tls-psk-file %s is readable by others (mode %o): chmod 600",
			path, st.st_mode & 0777);
	rc = tls_parse_psk(text, &tls.keys, &tls.nkeys, msg, sizeof(msg));
	explicit_bzero(text, n); /* the keys are copied out; leave no copy behind */
	free(text);
	if (rc < 0)
		return snprintf(err, errlen, "nbd-tls-psk-file %s: %s", path, msg), -1;
	if (gnutls_psk_allocate_server_credentials(&tls.psk_cred) < 0)
		return snprintf(err, errlen, "gnutls_psk_allocate_server_credentials failed"), -1;
	gnutls_psk_set_server_credentials_function(tls.psk_cred, psk_lookup);
	return 0;
}

static int load_x509(const char *dir, char *err, size_t errlen)
{
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	int rc;

	snprintf(cert, sizeof(cert), "%s/server-cert.pem", dir);
	snprintf(key, sizeof(key), "%s/server-key.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir);
	if ((rc = gnutls_certificate_allocate_credentials(&tls.x509_cred)) < 0)
		return snprintf(err, errlen, "gnutls_certificate_allocate_credentials: %s",
				gnutls_strerror(rc)), -1;
	rc = gnutls_certificate_set_x509_key_file(tls.x509_cred, cert, key, GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		return snprintf(err, errlen, "nbd-tls-certificates: %s and %s: "
				"gnutls_certificate_set_x509_key_file: %s", cert, key,
				gnutls_strerror(rc)), -1;
	if (access(ca, R_OK) == 0) {
		rc = gnutls_certificate_set_x509_trust_file(tls.x509_cred, ca, GNUTLS_X509_FMT_PEM);
		if (rc <= 0)
			return snprintf(err, errlen, "nbd-tls-certificates: %s: "
					"gnutls_certificate_set_x509_trust_file: %s", ca,
					rc < 0 ? gnutls_strerror(rc) : "no certificate in it"), -1;
		tls.verify_clients = 1;
	}
	return 0;
}

int tls_init(const struct config *c, char *err, size_t errlen)
{
	const char *prio = "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK";
	int rc;

	if (c->nbd_tls == NBD_TLS_OFF)
		return 0;
	if ((rc = gnutls_global_init()) < 0)
		return snprintf(err, errlen, "gnutls_global_init: %s", gnutls_strerror(rc)), -1;
	if (!c->nbd_tls_psk_file[0] && !c->nbd_tls_certificates[0])
		return snprintf(err, errlen, "nbd-tls is on but neither nbd-tls-psk-file nor "
				"nbd-tls-certificates is set"), -1;
	if (c->nbd_tls_psk_file[0] && load_psk(c->nbd_tls_psk_file, err, errlen) < 0)
		return -1;
	if (c->nbd_tls_certificates[0] && load_x509(c->nbd_tls_certificates, err, errlen) < 0)
		return -1;
	if ((rc = gnutls_priority_init(&tls.prio, prio, NULL)) < 0)
		return snprintf(err, errlen, "gnutls_priority_init: %s", gnutls_strerror(rc)), -1;
	tls.on = 1;
	log_msg("nbd tls %s: %s%s%s%s", c->nbd_tls == NBD_TLS_REQUIRE ? "required" : "offered",
		tls.psk_cred ? "psk" : "", tls.psk_cred && tls.x509_cred ? "+" : "",
		tls.x509_cred ? "x509" : "", tls.verify_clients ? " (client certificates verified)" : "");
	return 0;
}

int tls_enabled(void)
{
	return tls.on;
}

/*
 * The TLS handshake on fd after STARTTLS was acknowledged, bounded by
 * `timeout_ms`.  The session, or NULL with `why` (for the log).
 */
void *tls_accept(int fd, unsigned timeout_ms, char *identity, size_t idlen, char *why,
		 size_t whylen)
{
	gnutls_session_t s;
	int rc;

	identity[0] = 0;
	if ((rc = gnutls_init(&s, GNUTLS_SERVER)) < 0) {
		snprintf(why, whylen, "gnutls_init: %s", gnutls_strerror(rc));
		return NULL;
	}
	gnutls_priority_set(s, tls.prio);
	if (tls.psk_cred)
		gnutls_credentials_set(s, GNUTLS_CRD_PSK, tls.psk_cred);
	if (tls.x509_cred) {
		gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tls.x509_cred);
		if (tls.verify_clients)
			gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
	}
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, timeout_ms);
	do
		rc = gnutls_handshake(s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0) {
		snprintf(why, whylen, "TLS handshake failed: gnutls_handshake: %s", gnutls_strerror(rc));
		gnutls_deinit(s);
		return NULL;
	}
	if (gnutls_auth_get_type(s) == GNUTLS_CRD_PSK) {
		const char *id = gnutls_psk_server_get_username(s);

		snprintf(identity, idlen, "psk:%s", id ? id : "?");
	} else if (tls.verify_clients) {
		unsigned status = 0;
		const gnutls_datum_t *certs;
		unsigned ncerts = 0;
		gnutls_x509_crt_t crt;
		char dn[256];
		size_t dnlen = sizeof(dn);

		if ((rc = gnutls_certificate_verify_peers2(s, &status)) < 0 || status) {
			snprintf(why, whylen, "client certificate not trusted (ca-cert.pem)");
			gnutls_deinit(s);
			return NULL;
		}
		certs = gnutls_certificate_get_peers(s, &ncerts);
		if (ncerts && gnutls_x509_crt_init(&crt) == 0) {
			if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
			    gnutls_x509_crt_get_dn(crt, dn, &dnlen) == 0)
				snprintf(identity, idlen, "x509:%s", dn);
			gnutls_x509_crt_deinit(crt);
		}
	} else {
		snprintf(identity, idlen, "x509");
	}
	/* A log field: no spaces (a DN may have them). */
	for (char *p = identity; *p; p++)
		if (*p == ' ')
			*p = '_';
	return s;
}

ssize_t tls_recv(void *session, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = gnutls_record_recv(session, buf, len);

		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0) {
			errno = EIO;
			return -1;
		}
		return n;
	}
}

int tls_pending(void *session)
{
	return gnutls_record_check_pending(session) > 0;
}

int tls_send_all(void *session, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = gnutls_record_send(session, buf, len);

		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			return -1;
		buf = (const uint8_t *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

/* A reply: header and data, the two in one record when the data is small. */
int tls_send2(void *session, const void *a, size_t alen, const void *b, size_t blen)
{
	int rc;

	if (blen > 16384)
		return tls_send_all(session, a, alen) || tls_send_all(session, b, blen) ? -1 : 0;
	gnutls_record_cork(session);
	gnutls_record_send(session, a, alen);
	if (blen)
		gnutls_record_send(session, b, blen);
	do
		rc = gnutls_record_uncork(session, GNUTLS_RECORD_WAIT);
	while (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED);
	return rc < 0 ? -1 : 0;
}

void tls_close(void *session)
{
	if (!session)
		return;
	gnutls_bye(session, GNUTLS_SHUT_WR);
	gnutls_deinit(session);
}
