/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iSCSI login (RFC 7143 section 6): the security stage with CHAP (MD5,
 * one-way and mutual, secrets per client or per image: iscsi-chap-*), the
 * operational stage's key negotiation, the target name an initiator asks
 * for mapped to a netdisk session (PREFIX:IMAGE with the initiator's client
 * identity, or PREFIX:session:TOKEN continuing a firmware stub's session),
 * and Text requests (SendTargets) in discovery and normal sessions.
 */

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "netdiskd.h"
#include "iscsi_conn.h"

#define KEY_MAX 63      /* bytes of a key name */
#define MAX_KEYS 128    /* key=value pairs in one login or text request */
#define CHAP_C_LEN 16   /* our challenge */
#define CHAP_BIN_MAX 1024

/* login status (class << 8 | detail) */
#define ST_SUCCESS 0x0000
#define ST_INITIATOR_ERROR 0x0200
#define ST_AUTH_FAILED 0x0201
#define ST_FORBIDDEN 0x0202
#define ST_NOT_FOUND 0x0203
#define ST_UNSUPPORTED_VERSION 0x0205
#define ST_MISSING_PARAM 0x0207
#define ST_NO_SESSION 0x020a
#define ST_INVALID_REQUEST 0x020b
#define ST_TARGET_ERROR 0x0300
#define ST_UNAVAILABLE 0x0301

enum auth { AUTH_START, AUTH_METHOD_CHAP, AUTH_CHALLENGED, AUTH_DONE };

struct kv {
	char *key, *val;
};

/* A login in progress. */
struct login {
	struct iconn *c;
	char *text;            /* the keys of the current request (across C-bit PDUs) */
	uint32_t text_len;
	struct kv kv[MAX_KEYS];
	unsigned nkv;
	char out[8192];        /* the keys of the response */
	uint32_t out_len;
	int stage;             /* the current stage: 0 security, 1 operational */
	int first;             /* the first request is being answered */
	enum auth auth;
	uint8_t chap_id;
	uint8_t chap_c[CHAP_C_LEN];
	int declared;          /* MaxRecvDataSegmentLength (and the TPGT) said */
	uint32_t itt;
	char image[NAME_MAX_LEN + 1];
	char token[33];        /* PREFIX:session:TOKEN, or "" */
};

/* Append "key=value" to the response. */
static void say(struct login *l, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(struct login *l, const char *key, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->out_len >= sizeof(l->out))
		return;
	n = snprintf(l->out + l->out_len, sizeof(l->out) - l->out_len, "%s=", key);
	if (n < 0 || (uint32_t)n >= sizeof(l->out) - l->out_len)
		return;
	va_start(ap, fmt);
	n += vsnprintf(l->out + l->out_len + n, sizeof(l->out) - l->out_len - (uint32_t)n, fmt, ap);
	va_end(ap);
	if (n < 0 || (uint32_t)n >= sizeof(l->out) - l->out_len)
		return; /* does not fit: left out */
	l->out_len += (uint32_t)n + 1;
}

/* Split the request's "k=v\0" pairs; -1 when malformed. */
static int parse_keys(struct login *l)
{
	uint32_t off = 0;

	l->nkv = 0;
	while (off < l->text_len) {
		char *p = l->text + off, *eq;
		size_t n = strnlen(p, l->text_len - off);

		if (n == l->text_len - off) /* the last pair must end in NUL too */
			return -1;
		off += (uint32_t)n + 1;
		if (!n)
			continue;
		eq = strchr(p, '=');
		if (!eq || eq == p || eq - p > KEY_MAX || l->nkv == MAX_KEYS)
			return -1;
		*eq = 0;
		l->kv[l->nkv].key = p;
		l->kv[l->nkv].val = eq + 1;
		l->nkv++;
	}
	return 0;
}

static const char *key(const struct login *l, const char *name)
{
	for (unsigned i = 0; i < l->nkv; i++)
		if (!strcmp(l->kv[i].key, name))
			return l->kv[i].val;
	return NULL;
}

/* Is `word` in the comma-separated list? */
static int in_list(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, word, n) && (p[n] == ',' || !p[n]))
			return 1;
	return 0;
}

/* A numerical value (decimal or 0x hex); -1 if it is not one. */
static int number(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long long n;

	if (!*v || *v == '-' || *v == '+' || *v == ' ')
		return -1;
	n = strtoull(v, &end, 0);
	if (*end || n < lo || n > hi)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

/* The operational keys (and the declarative ones we note): negotiate each. */
static void operational_key(struct login *l, const char *k, const char *v)
{
	struct iconn *c = l->c;
	uint32_t n;

	if (!strcmp(k, "HeaderDigest") || !strcmp(k, "DataDigest")) {
		int crc = 0, ok = 0;

		for (const char *p = v; p && !ok; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
			if (!strncmp(p, "CRC32C", 6) && (p[6] == ',' || !p[6]))
				ok = crc = 1;
			else if (!strncmp(p, "None", 4) && (p[4] == ',' || !p[4]))
				ok = 1;
		}
		if (!ok) {
			say(l, k, "Reject");
			return;
		}
		*(k[0] == 'H' ? &c->want_hdigest : &c->want_ddigest) = crc;
		say(l, k, "%s", crc ? "CRC32C" : "None");
	} else if (!strcmp(k, "MaxConnections") || !strcmp(k, "MaxOutstandingR2T")) {
		say(l, k, number(v, 1, 65535, &n) ? "Reject" : "1");
	} else if (!strcmp(k, "ErrorRecoveryLevel")) {
		say(l, k, number(v, 0, 2, &n) ? "Reject" : "0");
	} else if (!strcmp(k, "InitialR2T") || !strcmp(k, "ImmediateData") ||
		   !strcmp(k, "DataPDUInOrder") || !strcmp(k, "DataSequenceInOrder")) {
		int yes = !strcmp(v, "Yes");

		if (!yes && strcmp(v, "No")) {
			say(l, k, "Reject");
			return;
		}
		if (!strcmp(k, "InitialR2T")) /* OR with ours, No: theirs */
			c->initial_r2t = yes;
		else if (!strcmp(k, "ImmediateData")) /* AND with ours, Yes: theirs */
			c->immediate_data = yes;
		else /* OR with ours, Yes */
			yes = 1;
		say(l, k, "%s", yes ? "Yes" : "No");
	} else if (!strcmp(k, "MaxRecvDataSegmentLength")) {
		if (number(v, 512, 16777215, &n))
			say(l, k, "Reject");
		else
			c->max_send = n; /* declarative: ours goes out once (declare) */
	} else if (!strcmp(k, "MaxBurstLength") || !strcmp(k, "FirstBurstLength")) {
		uint32_t ours = k[0] == 'M' ? OUR_MAX_BURST : OUR_FIRST_BURST;

		if (number(v, 512, 16777215, &n)) {
			say(l, k, "Reject");
			return;
		}
		n = n < ours ? n : ours;
		*(k[0] == 'M' ? &c->max_burst : &c->first_burst) = n;
		say(l, k, "%u", n);
	} else if (!strcmp(k, "DefaultTime2Wait") || !strcmp(k, "DefaultTime2Retain")) {
		if (number(v, 0, 3600, &n))
			say(l, k, "Reject");
		else /* Wait: the maximum with ours (2); Retain: the minimum with ours (0) */
			say(l, k, "%u", k[11] == 'W' ? (n > 2 ? n : 2) : 0);
	} else if (!strcmp(k, "IFMarker") || !strcmp(k, "OFMarker")) {
		say(l, k, "No");
	} else if (!strcmp(k, "IFMarkInt") || !strcmp(k, "OFMarkInt")) {
		say(l, k, "Irrelevant");
	} else if (!strcmp(k, "InitiatorName") || !strcmp(k, "InitiatorAlias") ||
		   !strcmp(k, "TargetName") || !strcmp(k, "SessionType") ||
		   !strcmp(k, "AuthMethod") || !strncmp(k, "CHAP_", 5)) {
		/* declarative, or the security stage's */
	} else if (!strcmp(k, "TargetAlias") || !strcmp(k, "TargetAddress") ||
		   !strcmp(k, "TargetPortalGroupTag") || !strcmp(k, "SendTargets")) {
		say(l, k, "Irrelevant"); /* the target's to say, or not a login key */
	} else {
		say(l, k, "NotUnderstood");
	}
}

static void declare(struct login *l)
{
	if (l->declared)
		return;
	l->declared = 1;
	say(l, "MaxRecvDataSegmentLength", "%u", OUR_MAX_RECV);
}

/* May this initiator (r: its [client] section, or NULL) log in to images
 * by name (iscsi-exports)?  A listed initiator may unless iSCSI is off; an
 * unlisted one only with iscsi-exports = images.  Under the server lock. */
static int may_name_images(const struct config *cfg, const struct client_rule *r)
{
	return cfg->iscsi_exports == NBD_EXPORTS_IMAGES ||
	       (r && cfg->iscsi_exports == NBD_EXPORTS_SESSIONS);
}

/* The target an initiator asks for, and the CHAP it must pass: from its
 * [client] section (by iscsi-initiator, or for a session the client's MAC)
 * if that sets a secret, else from the image.  Under the server lock. */
static unsigned resolve(struct login *l, const char *target)
{
	struct iconn *c = l->c;
	struct config *cfg = &c->s->cfg;
	size_t plen = strlen(cfg->iscsi_prefix);
	const struct client_rule *r = config_client_iqn(cfg, c->initiator);
	const struct image *im = NULL;

	memset(&c->chap, 0, sizeof(c->chap));
	if (cfg->iscsi_exports == NBD_EXPORTS_OFF) {
		snprintf(c->why, sizeof(c->why), "iSCSI logins are off on this server (iscsi-exports)");
		return ST_FORBIDDEN;
	}
	if (c->discovery) {
		if (r && r->chap.secret[0])
			c->chap = r->chap;
		return ST_SUCCESS;
	}
	snprintf(c->target, sizeof(c->target), "%s", target);
	if (strncasecmp(target, cfg->iscsi_prefix, plen) || target[plen] != ':') {
		snprintf(c->why, sizeof(c->why), "no target %s (targets are %s:IMAGE)", target,
			 cfg->iscsi_prefix);
		return ST_NOT_FOUND;
	}
	target += plen + 1;
	if (!strncmp(target, "session:", 8)) {
		uint8_t tok[16];
		struct session *ss;
		unsigned i;

		snprintf(l->token, sizeof(l->token), "%s", target + 8);
		for (i = 0; i < 16 && strlen(l->token) == 32; i++)
			if (sscanf(l->token + 2 * i, "%2hhx", &tok[i]) != 1)
				break;
		ss = i == 16 ? session_find(c->s, tok) : NULL;
		if (!ss || ss->ended) {
			snprintf(c->why, sizeof(c->why), "no session %.16s... (it ended, or the "
				 "token is wrong)", l->token);
			return ST_NOT_FOUND;
		}
		r = config_client(cfg, ss->mac);
		im = ss->img;
	} else {
		if (!may_name_images(cfg, r)) {
			snprintf(c->why, sizeof(c->why), "only PREFIX:session:TOKEN targets are served "
				 "to an initiator no [client] section names (iscsi-exports = sessions)");
			return ST_FORBIDDEN;
		}
		im = config_image(cfg, target);
		if (!im) {
			snprintf(c->why, sizeof(c->why), "no image %s", target);
			return ST_NOT_FOUND;
		}
		snprintf(l->image, sizeof(l->image), "%s", target);
	}
	c->chap = *iscsi_chap_for(r, im);
	return ST_SUCCESS;
}

/* The MAC an initiator without a [client] section is known by: 02:69 and a
 * hash of its name, so that each initiator gets its own overlay. */
static void iqn_mac(const char *iqn, uint8_t mac[6])
{
	uint32_t h = 2166136261u;

	for (; *iqn; iqn++)
		h = (h ^ (uint8_t)(*iqn >= 'A' && *iqn <= 'Z' ? *iqn + 32 : *iqn)) * 16777619u;
	mac[0] = 0x02;
	mac[1] = 0x69;
	nd_put32(mac + 2, h);
}

/* The full feature phase starts: the netdisk session this login uses. */
#define ISCSI_PERSONA_WAIT_S 60 /* a login waits this long for its personalization */

static unsigned attach(struct login *l)
{
	struct iconn *c = l->c;
	struct server *s = c->s;
	struct session *ss;
	unsigned st = ST_SUCCESS, status = ND_OK;
	int policy = 0;

	if (c->discovery)
		return ST_SUCCESS;
	pthread_rwlock_wrlock(&s->lock);
	if (l->token[0]) {
		ss = session_continue(s, l->token, &c->sa, &policy, c->why, sizeof(c->why));
		if (!ss) {
			st = policy ? ST_FORBIDDEN : ST_NOT_FOUND;
			if (!policy)
				snprintf(c->why, sizeof(c->why), "the session ended");
		}
	} else {
		const struct client_rule *r = config_client_iqn(&s->cfg, c->initiator);
		uint8_t mac[6];
		int auth;

		if (r)
			memcpy(mac, r->mac, 6);
		else
			iqn_mac(c->initiator, mac);
		/* an initiator no [client] section names never gets direct mode */
		auth = r ? AUTH_NONE : AUTH_ANON;
		ss = session_attach_nbd(s, mac, l->image, c->peer, auth, &status);
		/* A personalization layer being built: wait as NBD does (nbd.c). */
		for (int tries = 0; !ss && status == ND_PERSONA_PENDING && tries < 3; tries++) {
			pthread_rwlock_unlock(&s->lock);
			persona_wait(s, mac, ISCSI_PERSONA_WAIT_S);
			pthread_rwlock_wrlock(&s->lock);
			ss = session_attach_nbd(s, mac, l->image, c->peer, auth, &status);
		}
		if (!ss) {
			st = status == ND_ERR_NOIMAGE ? ST_NOT_FOUND : status == ND_ERR_DENIED
			     ? ST_FORBIDDEN : status == ND_ERR_BUSY ? ST_UNAVAILABLE : ST_TARGET_ERROR;
			snprintf(c->why, sizeof(c->why), "%s", s->refusal[0] ? s->refusal
				 : "the session could not be made");
		}
	}
	if (ss) {
		ss->nbd_conns++;
		ss->os_iscsi = 1;
		c->ss = ss;
	}
	pthread_rwlock_unlock(&s->lock);
	return st;
}

/* "0x..." (hex) or "0b..." (base64) CHAP values; their length, or -1. */
static int chap_decode(const char *v, uint8_t *out, size_t cap)
{
	size_t n, i;

	if (!strncasecmp(v, "0x", 2)) {
		v += 2;
		n = strlen(v);
		if (!n || n % 2 || n / 2 > cap)
			return -1;
		for (i = 0; i < n / 2; i++)
			if (sscanf(v + 2 * i, "%2hhx", &out[i]) != 1 ||
			    !strchr("0123456789abcdefABCDEF", v[2 * i]) ||
			    !strchr("0123456789abcdefABCDEF", v[2 * i + 1]))
				return -1;
		return (int)(n / 2);
	}
	if (!strncasecmp(v, "0b", 2)) {
		gnutls_datum_t in = { (unsigned char *)v + 2, (unsigned)strlen(v + 2) }, res;
		int len;

		if (!in.size || gnutls_base64_decode2(&in, &res) < 0)
			return -1;
		len = res.size <= cap ? (int)res.size : -1;
		if (len > 0)
			memcpy(out, res.data, res.size);
		gnutls_free(res.data);
		return len;
	}
	return -1;
}

/* MD5(id || secret || challenge): the CHAP response. */
static int chap_md5(uint8_t id, const char *secret, const uint8_t *ch, size_t chlen, uint8_t out[16])
{
	uint8_t buf[1 + CHAP_SECRET_MAX + CHAP_BIN_MAX];
	size_t sl = strlen(secret);

	buf[0] = id;
	memcpy(buf + 1, secret, sl);
	memcpy(buf + 1 + sl, ch, chlen);
	return gnutls_hash_fast(GNUTLS_DIG_MD5, buf, 1 + sl + chlen, out);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* The security stage's keys.  ST_SUCCESS, or why the login fails. */
static unsigned security(struct login *l)
{
	struct iconn *c = l->c;
	const struct iscsi_chap *ch = &c->chap;
	const char *v;

	if ((v = key(l, "AuthMethod"))) {
		if (ch->secret[0] && in_list(v, "CHAP")) {
			say(l, "AuthMethod", "CHAP");
			l->auth = AUTH_METHOD_CHAP;
		} else if (!ch->secret[0] && in_list(v, "None")) {
			say(l, "AuthMethod", "None");
			l->auth = AUTH_DONE;
		} else {
			snprintf(c->why, sizeof(c->why), "AuthMethod=%.60s, but %s", v,
				 ch->secret[0] ? "CHAP is required" : "no CHAP secret is configured");
			return ST_AUTH_FAILED;
		}
	}
	if ((v = key(l, "CHAP_A"))) {
		char chex[2 * CHAP_C_LEN + 1];

		if (l->auth != AUTH_METHOD_CHAP || !in_list(v, "5")) {
			snprintf(c->why, sizeof(c->why), "CHAP_A=%.40s: only MD5 (5) is offered", v);
			return ST_AUTH_FAILED;
		}
		if (gnutls_rnd(GNUTLS_RND_NONCE, &l->chap_id, 1) < 0 ||
		    gnutls_rnd(GNUTLS_RND_NONCE, l->chap_c, sizeof(l->chap_c)) < 0) {
			snprintf(c->why, sizeof(c->why), "gnutls_rnd failed");
			return ST_TARGET_ERROR;
		}
		hex(l->chap_c, sizeof(l->chap_c), chex);
		say(l, "CHAP_A", "5");
		say(l, "CHAP_I", "%u", l->chap_id);
		say(l, "CHAP_C", "0x%s", chex);
		l->auth = AUTH_CHALLENGED;
	}
	if ((v = key(l, "CHAP_R"))) {
		uint8_t r[CHAP_BIN_MAX], want[16], ic[CHAP_BIN_MAX];
		const char *n = key(l, "CHAP_N"), *ii = key(l, "CHAP_I"), *icv = key(l, "CHAP_C");
		uint32_t iid;
		int rl = chap_decode(v, r, sizeof(r)), icl;

		if (l->auth != AUTH_CHALLENGED || !n) {
			snprintf(c->why, sizeof(c->why), "CHAP_R out of turn or without CHAP_N");
			return ST_AUTH_FAILED;
		}
		if (chap_md5(l->chap_id, ch->secret, l->chap_c, sizeof(l->chap_c), want) < 0 ||
		    rl != 16 || memcmp(r, want, 16) || (ch->user[0] && strcmp(n, ch->user))) {
			snprintf(c->why, sizeof(c->why), "CHAP failed for name %.64s (wrong secret "
				 "or name)", n);
			return ST_AUTH_FAILED;
		}
		if (ii || icv) { /* mutual: the initiator authenticates us */
			char rhex[33];

			icl = icv ? chap_decode(icv, ic, sizeof(ic)) : -1;
			if (!ii || icl <= 0 || number(ii, 0, 255, &iid)) {
				snprintf(c->why, sizeof(c->why), "malformed mutual CHAP_I/CHAP_C");
				return ST_AUTH_FAILED;
			}
			if (!ch->target_secret[0]) {
				snprintf(c->why, sizeof(c->why), "mutual CHAP asked, but no "
					 "iscsi-chap-target-secret is configured");
				return ST_AUTH_FAILED;
			}
			if (icl == sizeof(l->chap_c) && !memcmp(ic, l->chap_c, sizeof(l->chap_c))) {
				snprintf(c->why, sizeof(c->why), "the initiator's challenge is ours "
					 "(reflection)");
				return ST_AUTH_FAILED;
			}
			if (chap_md5((uint8_t)iid, ch->target_secret, ic, (size_t)icl, want) < 0) {
				snprintf(c->why, sizeof(c->why), "MD5 failed");
				return ST_TARGET_ERROR;
			}
			hex(want, 16, rhex);
			say(l, "CHAP_N", "%s", ch->target_user[0] ? ch->target_user : c->target);
			say(l, "CHAP_R", "0x%s", rhex);
		}
		l->auth = AUTH_DONE;
	}
	return ST_SUCCESS;
}

/* Send a Login Response with the keys gathered, at `status`. */
static int respond(struct login *l, int transit, int csg, int nsg, unsigned status)
{
	struct iconn *c = l->c;
	uint8_t h[BHS_LEN] = { OP_LOGIN_RSP };

	h[1] = (uint8_t)((transit ? 0x80 : 0) | csg << 2 | (transit ? nsg : 0));
	memcpy(h + 8, c->isid, 6);
	nd_put16(h + 14, status == ST_SUCCESS && transit && nsg == 3 ? c->tsih : 0);
	nd_put32(h + 16, l->itt);
	iconn_numbers(c, h, 1);
	h[36] = (uint8_t)(status >> 8);
	h[37] = (uint8_t)status;
	return iconn_send(c, h, l->out, status == ST_SUCCESS ? l->out_len : 0);
}

/* Fail the login with `status` (c->why says why for the log): -1. */
static int refuse(struct login *l, int csg, unsigned status)
{
	l->out_len = 0;
	respond(l, 0, csg, 0, status);
	return -1;
}

/* The first request: who logs in to what. */
static unsigned first_request(struct login *l)
{
	struct iconn *c = l->c;
	const char *in = key(l, "InitiatorName"), *type = key(l, "SessionType");
	const char *target = key(l, "TargetName");
	static uint16_t next_tsih;
	unsigned st;

	if (!in || iscsi_name_check(in, 0) < 0) {
		snprintf(c->why, sizeof(c->why), "no valid InitiatorName");
		return ST_MISSING_PARAM;
	}
	snprintf(c->initiator, sizeof(c->initiator), "%s", in);
	c->discovery = type && !strcmp(type, "Discovery");
	if (type && !c->discovery && strcmp(type, "Normal")) {
		snprintf(c->why, sizeof(c->why), "SessionType=%.40s", type);
		return ST_INITIATOR_ERROR;
	}
	if (!c->discovery && !target) {
		snprintf(c->why, sizeof(c->why), "no TargetName");
		return ST_MISSING_PARAM;
	}
	if (nd_get16(c->bhs + 14)) { /* TSIH: adding a connection to a session (MaxConnections=1) */
		snprintf(c->why, sizeof(c->why), "a second connection for a session");
		return ST_NO_SESSION;
	}
	pthread_rwlock_rdlock(&c->s->lock);
	st = resolve(l, target ? target : "");
	pthread_rwlock_unlock(&c->s->lock);
	c->tsih = __atomic_add_fetch(&next_tsih, 1, __ATOMIC_RELAXED);
	if (!c->tsih)
		c->tsih = __atomic_add_fetch(&next_tsih, 1, __ATOMIC_RELAXED);
	return st;
}

int iscsi_login(struct iconn *c)
{
	struct login *l = calloc(1, sizeof(*l));
	int rc = -1;

	if (!l || !(l->text = malloc(LOGIN_TEXT_MAX + 1))) {
		free(l);
		return -1;
	}
	l->c = c;
	l->first = 1;
	for (;;) {
		uint8_t f = c->bhs[1];
		int transit = f & 0x80, cont = f & 0x40, csg = f >> 2 & 3, nsg = f & 3;
		unsigned st;

		if ((c->bhs[0] & 0x3f) != OP_LOGIN_REQ) {
			snprintf(c->why, sizeof(c->why), "opcode 0x%02x during login", c->bhs[0] & 0x3f);
			break;
		}
		l->itt = nd_get32(c->bhs + 16);
		if (l->first && !l->text_len) {
			memcpy(c->isid, c->bhs + 8, 6);
			c->expcmdsn = nd_get32(c->bhs + 24);
			c->statsn = 1;
		}
		if (c->bhs[3] > 0) { /* VersionMin */
			snprintf(c->why, sizeof(c->why), "iSCSI version %u wanted", c->bhs[3]);
			rc = refuse(l, csg, ST_UNSUPPORTED_VERSION);
			break;
		}
		if (c->dlen > LOGIN_TEXT_MAX - l->text_len) {
			snprintf(c->why, sizeof(c->why), "login keys over %u bytes", LOGIN_TEXT_MAX);
			rc = refuse(l, csg, ST_INITIATOR_ERROR);
			break;
		}
		memcpy(l->text + l->text_len, c->data, c->dlen);
		l->text_len += c->dlen;
		l->out_len = 0;
		if (cont) { /* more keys follow: an empty answer asks for them */
			if (transit || respond(l, 0, csg, 0, ST_SUCCESS) || iconn_read_pdu(c))
				break;
			continue;
		}
		l->text[l->text_len] = 0;
		if (parse_keys(l)) {
			snprintf(c->why, sizeof(c->why), "malformed login keys");
			rc = refuse(l, csg, ST_INITIATOR_ERROR);
			break;
		}
		st = l->first ? first_request(l) : ST_SUCCESS;
		if (st == ST_SUCCESS && (csg == 2 || csg == 3 || (transit && nsg <= csg) ||
					 (transit && nsg == 2) || (!l->first && csg < l->stage))) {
			snprintf(c->why, sizeof(c->why), "stage %d to %d", csg, nsg);
			st = ST_INVALID_REQUEST;
		}
		if (st == ST_SUCCESS && csg == 0)
			st = security(l);
		if (st == ST_SUCCESS && csg == 1 && c->chap.secret[0] && l->auth != AUTH_DONE) {
			snprintf(c->why, sizeof(c->why), "CHAP is required: no security stage");
			st = ST_AUTH_FAILED;
		}
		if (st != ST_SUCCESS) {
			rc = refuse(l, csg, st);
			break;
		}
		l->stage = csg;
		for (unsigned i = 0; i < l->nkv; i++)
			operational_key(l, l->kv[i].key, l->kv[i].val);
		if (l->first && !c->discovery)
			say(l, "TargetPortalGroupTag", "1");
		if (csg == 0 && transit && l->auth != AUTH_DONE && !(l->auth == AUTH_START &&
								     !c->chap.secret[0]))
			transit = 0; /* CHAP goes on */
		/* Our declarations are operational keys: never in a security
		 * stage response that moves on to the operational stage
		 * (open-iscsi fails such a login as a negotiation error). */
		if (csg == 1)
			declare(l);
		if (transit && nsg == 3) {
			declare(l);
			if ((st = attach(l)) != ST_SUCCESS) {
				rc = refuse(l, csg, st);
				break;
			}
		}
		if (respond(l, transit, csg, nsg, ST_SUCCESS))
			break;
		l->first = 0;
		l->text_len = 0;
		if (transit && nsg == 3) {
			c->hdigest = c->want_hdigest;
			c->ddigest = c->want_ddigest;
			c->full_feature = 1;
			if (!c->discovery)
				iconn_reinstate(c);
			rc = 1;
			break;
		}
		if (transit)
			l->stage = nsg;
		if (iconn_read_pdu(c))
			break;
	}
	free(l->text);
	free(l);
	return rc;
}

/* ---- Text requests: SendTargets ---- */

/* Append "TargetName=...\0TargetAddress=...\0" for one image (or session). */
static int add_target(struct iconn *c, char **buf, uint32_t *len, const char *name)
{
	char one[600];
	int n = snprintf(one, sizeof(one), "TargetName=%s", name);
	int m = snprintf(one + n + 1, sizeof(one) - (size_t)n - 1, "TargetAddress=%s,1", c->portal);
	char *p = realloc(*buf, *len + (uint32_t)(n + m + 2));

	if (!p)
		return -1;
	memcpy(p + *len, one, (size_t)(n + m + 2));
	*buf = p;
	*len += (uint32_t)(n + m + 2);
	return 0;
}

/* The reply to SendTargets=WHAT: every image's target in a discovery session
 * (All) if this initiator may log in to images by name (iscsi-exports), else
 * none (session tokens are never listed); in a normal session the one
 * logged in to. */
static int send_targets(struct iconn *c, const char *what)
{
	struct server *s = c->s;
	char name[400];
	int rc = 0;

	pthread_rwlock_rdlock(&s->lock);
	if (c->discovery && !may_name_images(&s->cfg, config_client_iqn(&s->cfg, c->initiator))) {
		/* nothing it may name */
	} else if (c->discovery && !strcmp(what, "All")) {
		for (int i = 0; i < s->cfg.nimages && rc == 0; i++) {
			snprintf(name, sizeof(name), "%s:%s", s->cfg.iscsi_prefix, s->cfg.images[i].name);
			rc = add_target(c, &c->text_out, &c->text_len, name);
		}
	} else if (c->discovery) {
		const char *p = s->cfg.iscsi_prefix;
		size_t n = strlen(p);

		if (!strncasecmp(what, p, n) && what[n] == ':' && config_image(&s->cfg, what + n + 1))
			rc = add_target(c, &c->text_out, &c->text_len, what);
	} else if (!what[0] || !strcmp(what, c->target) || !strcmp(what, "All")) {
		rc = add_target(c, &c->text_out, &c->text_len, c->target);
	}
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

/* Send the next part of the text reply, at most MaxRecvDataSegmentLength. */
static int text_part(struct iconn *c, uint32_t itt)
{
	uint8_t h[BHS_LEN] = { OP_TEXT_RSP };
	uint32_t n = c->text_len - c->text_off;
	int rc;

	if (n > c->max_send) {
		n = c->max_send;
		h[1] = 0x40; /* C: more follows when asked */
		c->text_ttt = c->next_ttt++;
		if (c->text_ttt == 0xffffffffu)
			c->text_ttt = c->next_ttt++;
		nd_put32(h + 20, c->text_ttt);
	} else {
		h[1] = 0x80;
		nd_put32(h + 20, 0xffffffffu);
	}
	nd_put32(h + 16, itt);
	iconn_numbers(c, h, 1);
	rc = iconn_send(c, h, c->text_out ? c->text_out + c->text_off : NULL, n);
	c->text_off += n;
	if (c->text_off >= c->text_len) {
		free(c->text_out);
		c->text_out = NULL;
		c->text_len = c->text_off = 0;
	}
	return rc;
}

int iscsi_text(struct iconn *c)
{
	uint32_t itt = nd_get32(c->bhs + 16), ttt = nd_get32(c->bhs + 20);
	struct login l = { 0 };
	const char *v;

	if (!iconn_cmdsn(c))
		return 0;
	if (ttt != 0xffffffffu && c->text_out && ttt == c->text_ttt)
		return text_part(c, itt);
	free(c->text_out); /* a new request ends a reply not fully asked for */
	c->text_out = NULL;
	c->text_len = c->text_off = 0;
	if (c->bhs[1] & 0x40) { /* keys continued over PDUs: not offered here */
		snprintf(c->why, sizeof(c->why), "a continued Text request");
		return -1;
	}
	l.c = c;
	l.text = (char *)c->data;
	l.text_len = c->dlen;
	if (parse_keys(&l)) {
		snprintf(c->why, sizeof(c->why), "malformed text keys");
		return -1;
	}
	if ((v = key(&l, "SendTargets")) && send_targets(c, v) < 0)
		return -1;
	for (unsigned i = 0; i < l.nkv; i++) /* anything else: not negotiated after login */
		if (strcmp(l.kv[i].key, "SendTargets")) {
			char *p;

			l.out_len = 0;
			say(&l, l.kv[i].key, "NotUnderstood");
			p = realloc(c->text_out, c->text_len + l.out_len);
			if (!p)
				return -1;
			memcpy(p + c->text_len, l.out, l.out_len);
			c->text_out = p;
			c->text_len += l.out_len;
		}
	return text_part(c, itt);
}
