/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What netdiskd counts and how it shows it: per-session and server-wide
 * counters (added atomically from the UDP loop and the NBD workers), the
 * control socket's `status` lines (netdisk status), the dashboard's JSON and
 * the Prometheus text exposition (docs/operations.md lists every metric).
 */

#include <stdio.h>
#include <string.h>
#include <time.h>
#include "netdiskd.h"

#define ADD(field, n) __atomic_fetch_add(&(field), (unsigned long long)(n), __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Upper bounds of the request latency buckets, in nanoseconds ... */
static const uint64_t lat_bounds_ns[METRIC_BUCKETS] = {
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000,
	50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000ULL,
};
/* ... and of the boot time buckets (ATTACH to OS takeover), in seconds. */
static const unsigned boot_bounds_s[METRIC_BUCKETS] = {
	5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600,
};

static const char *const op_names[MO_OPS] = { "read", "write", "flush", "trim", "other" };
static const char *const transport_names[MT_TRANSPORTS] = { "udp", "nbd", "iscsi" };
static const char *const status_names[METRIC_STATUSES] = {
	"ok", "version", "opcode", "session", "range", "denied", "busy", "noimage", "io",
	"inval", "readonly", "nospace", "auth", "persona",
};

unsigned long long metrics_storage_errors;

uint64_t metrics_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int64_t wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void metrics_request(struct server *s, struct session *ss, int transport, int op,
		     uint64_t bytes, uint64_t ns)
{
	struct metrics *m = &s->metrics;
	unsigned b = 0;

	ADD(m->requests[transport][op], 1);
	if (op == MO_READ)
		ADD(m->bytes_read[transport], bytes);
	else if (op == MO_WRITE)
		ADD(m->bytes_written[transport], bytes);
	while (b < METRIC_BUCKETS && ns > lat_bounds_ns[b])
		b++;
	ADD(m->latency[transport][b], 1);
	ADD(m->latency_ns[transport], ns);
	if (!ss)
		return;
	ADD(ss->cnt.requests, 1);
	if (op == MO_READ) {
		ADD(ss->cnt.reads, 1);
		ADD(ss->cnt.bytes_read, bytes);
	} else if (op == MO_WRITE) {
		ADD(ss->cnt.writes, 1);
		ADD(ss->cnt.bytes_written, bytes);
	} else if (op == MO_FLUSH) {
		ADD(ss->cnt.flushes, 1);
	}
}

void metrics_error(struct server *s, struct session *ss, int transport, unsigned status)
{
	ADD(s->metrics.errors[transport][status < METRIC_STATUSES ? status : 0], 1);
	if (ss)
		ADD(ss->cnt.errors, 1);
}

unsigned long metrics_udp_errors(struct server *s)
{
	unsigned long long n = 0;
	unsigned i;

	for (i = 0; i < METRIC_STATUSES; i++)
		n += GET(s->metrics.errors[MT_UDP][i]);
	return (unsigned long)n;
}

void metrics_retransmit(struct session *ss)
{
	ADD(ss->cnt.retransmits, 1);
}

void metrics_attached(struct server *s, struct session *ss)
{
	ss->attach_ms = wall_ms();
	ss->os_ms = 0;
	ADD(s->metrics.attaches, 1);
}

void metrics_takeover(struct server *s, struct session *ss)
{
	unsigned b = 0;
	int64_t ms;

	if (ss->os_ms || !ss->attach_ms)
		return; /* counted already, or restored from the state dir: no ATTACH time */
	ss->os_ms = wall_ms();
	ms = ss->os_ms - ss->attach_ms;
	while (b < METRIC_BUCKETS && ms > (int64_t)boot_bounds_s[b] * 1000)
		b++;
	ADD(s->metrics.boot_seconds[b], 1);
	ADD(s->metrics.boot_ms_sum, ms > 0 ? ms : 0);
	ADD(s->metrics.os_takeovers, 1);
}

/* Where a session is: "firmware" (a stub over UDP), "os" (the OS's NBD
 * connection by token, or an NBD client's own), "off" (the OS had it and
 * its connection closed: shut down or rebooting). */
static const char *phase(const struct session *ss)
{
	if (ss->nbd_conns > 0)
		return "os";
	return ss->os_ms || ss->nbd_owned ? "off" : "firmware";
}

static const char *transport(const struct session *ss)
{
	if (ss->nbd_conns > 0 || ss->nbd_owned)
		return ss->os_iscsi ? "iscsi" : "nbd";
	return "udp";
}

/* The boot as a status field: seconds from ATTACH to the OS takeover, or
 * "booting:N" / "stuck:N" (over boot-limit) while the firmware has it. */
static void boot_text(const struct server *s, const struct session *ss, int64_t now,
		      char *out, size_t outlen)
{
	if (!ss->attach_ms || ss->nbd_owned)
		snprintf(out, outlen, "-");
	else if (ss->os_ms)
		snprintf(out, outlen, "%.1f", (double)(ss->os_ms - ss->attach_ms) / 1000);
	else
		snprintf(out, outlen, "%s:%lld",
			 now - ss->attach_ms > (int64_t)s->cfg.boot_limit * 1000 ? "stuck" : "booting",
			 (long long)((now - ss->attach_ms) / 1000));
}

static uint64_t own_bytes(struct session *ss)
{
	return ss->own && overlay_is_delta(ss->own) ? overlay_used(ss->own) : 0;
}

/* Call fn for every live session (ended ones still held by NBD are not shown). */
static void each_session(struct server *s, void (*fn)(struct server *, struct session *, void *),
			 void *arg)
{
	unsigned i;

	for (i = 0; i < sizeof(s->bucket) / sizeof(s->bucket[0]); i++)
		for (struct session *ss = s->bucket[i]; ss; ss = ss->next)
			if (!ss->ended)
				fn(s, ss, arg);
}

struct fields {
	char mac[18], group[32], boot[32], version[16];
	const char *mode, *phase, *transport;
	long long age, idle;
	unsigned long long overlay;
};

static void fields_of(struct server *s, struct session *ss, struct fields *f)
{
	int64_t now = wall_ms();
	time_t seen = __atomic_load_n(&ss->last_seen, __ATOMIC_RELAXED);

	nd_mac_format(ss->mac, f->mac);
	mcast_group_text(s, ss, f->group, sizeof(f->group));
	boot_text(s, ss, now, f->boot, sizeof(f->boot));
	if (ss->vn)
		snprintf(f->version, sizeof(f->version), "%u", ss->vnum);
	else
		snprintf(f->version, sizeof(f->version), "-");
	f->mode = nd_mode_text((unsigned)ss->mode);
	f->phase = phase(ss);
	f->transport = transport(ss);
	f->age = ss->attach_ms ? (now - ss->attach_ms) / 1000 : -1;
	f->idle = seen ? (long long)(time(NULL) - seen) : -1;
	f->overlay = own_bytes(ss);
}

static void status_line(struct server *s, struct session *ss, void *arg)
{
	struct strbuf *out = arg;
	struct fields f;

	fields_of(s, ss, &f);
	sb_printf(out, "client\tmac=%s\tip=%s\timage=%s\tversion=%s\tmode=%s\tphase=%s\t"
		  "transport=%s\tgroup=%s\tread_bytes=%llu\twritten_bytes=%llu\trequests=%llu\t"
		  "retransmits=%llu\terrors=%llu\toverlay_bytes=%llu\tage_s=%lld\tidle_s=%lld\t"
		  "boot_s=%s\tsession=%08x\n",
		  f.mac, ss->peer[0] ? ss->peer : "-", ss->img->name, f.version, f.mode, f.phase,
		  f.transport, f.group, GET(ss->cnt.bytes_read), GET(ss->cnt.bytes_written),
		  GET(ss->cnt.requests), GET(ss->cnt.retransmits), GET(ss->cnt.errors), f.overlay,
		  f.age, f.idle, f.boot, nd_token_fingerprint(ss->token));
}

void status_lines(struct server *s, struct strbuf *out)
{
	sb_printf(out, "server\tsessions=%u\tmax_sessions=%u\tunicast_bytes=%llu\t"
		  "multicast_bytes=%llu\tattaches=%llu\tos_takeovers=%llu\t"
		  "refused_site_key=%lu\trefused_mac_binding=%lu\n",
		  s->nsessions, s->cfg.max_sessions, s->stats.tx_unicast, s->stats.tx_multicast,
		  GET(s->metrics.attaches), GET(s->metrics.os_takeovers), s->stats.auth_refused,
		  s->stats.mac_bound);
	each_session(s, status_line, out);
}

/* A JSON string of text that may hold anything (peer addresses, names). */
static void json_str(struct strbuf *out, const char *t)
{
	sb_printf(out, "\"");
	for (; *t; t++) {
		unsigned char c = (unsigned char)*t;

		if (c == '"' || c == '\\')
			sb_printf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_printf(out, "\\u%04x", c);
		else
			sb_printf(out, "%c", c);
	}
	sb_printf(out, "\"");
}

struct json_walk {
	struct strbuf *out;
	int n;
};

static void client_json(struct server *s, struct session *ss, void *arg)
{
	struct json_walk *w = arg;
	struct fields f;

	fields_of(s, ss, &f);
	sb_printf(w->out, "%s{\"mac\":", w->n++ ? "," : "");
	json_str(w->out, f.mac);
	sb_printf(w->out, ",\"ip\":");
	json_str(w->out, ss->peer[0] ? ss->peer : "");
	sb_printf(w->out, ",\"image\":");
	json_str(w->out, ss->img->name);
	sb_printf(w->out, ",\"version\":%s,\"mode\":\"%s\",\"phase\":\"%s\",\"transport\":\"%s\","
		  "\"group\":", ss->vn ? f.version : "null", f.mode, f.phase, f.transport);
	json_str(w->out, f.group);
	sb_printf(w->out, ",\"read_bytes\":%llu,\"written_bytes\":%llu,\"requests\":%llu,"
		  "\"retransmits\":%llu,\"errors\":%llu,\"overlay_bytes\":%llu,\"age_s\":%lld,"
		  "\"idle_s\":%lld,\"boot_s\":\"%s\",\"session\":\"%08x\"}",
		  GET(ss->cnt.bytes_read), GET(ss->cnt.bytes_written), GET(ss->cnt.requests),
		  GET(ss->cnt.retransmits), GET(ss->cnt.errors), f.overlay, f.age, f.idle, f.boot,
		  nd_token_fingerprint(ss->token));
}

void status_json(struct server *s, struct strbuf *out)
{
	struct json_walk w = { out, 0 };
	int i;

	sb_printf(out, "{\"time_ms\":%lld,\"sessions\":%u,\"unicast_bytes\":%llu,"
		  "\"multicast_bytes\":%llu,\"read_bytes\":%llu,\"written_bytes\":%llu,"
		  "\"refused_site_key\":%lu,\"refused_mac_binding\":%lu,"
		  "\"multicast\":%s,\"clients\":[", (long long)wall_ms(), s->nsessions,
		  s->stats.tx_unicast, s->stats.tx_multicast,
		  GET(s->metrics.bytes_read[MT_UDP]) + GET(s->metrics.bytes_read[MT_NBD]) +
			  GET(s->metrics.bytes_read[MT_ISCSI]),
		  GET(s->metrics.bytes_written[MT_UDP]) + GET(s->metrics.bytes_written[MT_NBD]) +
			  GET(s->metrics.bytes_written[MT_ISCSI]),
		  s->stats.auth_refused, s->stats.mac_bound, s->mc ? "true" : "false");
	each_session(s, client_json, &w);
	sb_printf(out, "],\"images\":[");
	for (i = 0; i < s->cfg.nimages; i++) {
		struct image *im = &s->cfg.images[i];
		struct store *st = im->store;
		int v;

		sb_printf(out, "%s{\"name\":", i ? "," : "");
		json_str(out, im->name);
		sb_printf(out, ",\"size_bytes\":%llu,\"mode\":\"%s\",\"versions\":[",
			  (unsigned long long)im->base->size, nd_mode_text((unsigned)im->mode));
		for (v = 0; st && v < st->nv; v++)
			sb_printf(out, "%s{\"num\":%u,\"state\":\"%s\",\"boots_ok\":%lu,"
				  "\"boots_failed\":%lu}", v ? "," : "", st->v[v].num,
				  store_state_name(st->v[v].state), st->v[v].boots_ok,
				  st->v[v].boots_failed);
		sb_printf(out, "]}");
	}
	sb_printf(out, "]}\n");
}

/* Prometheus text exposition: HELP and TYPE, then the samples. */
static void head(struct strbuf *out, const char *name, const char *type, const char *help)
{
	sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct gauge_walk {
	unsigned n[ND_MODE_READONLY + 1][3];
	unsigned long long overlay;
};

static void count_session(struct server *s, struct session *ss, void *arg)
{
	struct gauge_walk *g = arg;
	const char *p = phase(ss);
	unsigned mode = (unsigned)ss->mode <= ND_MODE_READONLY ? (unsigned)ss->mode : 0;

	g->n[mode][!strcmp(p, "firmware") ? 0 : !strcmp(p, "os") ? 1 : 2]++;
	g->overlay += own_bytes(ss);
}

static void histogram(struct strbuf *out, const char *name, const char *labels,
		      const unsigned long long *counts, double sum, int seconds_bounds)
{
	unsigned long long cum = 0;
	unsigned b;

	for (b = 0; b < METRIC_BUCKETS; b++) {
		cum += GET(counts[b]);
		if (seconds_bounds)
			sb_printf(out, "%s_bucket{%s%sle=\"%u\"} %llu\n", name, labels,
				  *labels ? "," : "", boot_bounds_s[b], cum);
		else
			sb_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
				  *labels ? "," : "", (double)lat_bounds_ns[b] / 1e9, cum);
	}
	cum += GET(counts[METRIC_BUCKETS]);
	sb_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "", cum);
	sb_printf(out, "%s_sum%s%s%s %.6f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
		  sum);
	sb_printf(out, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
		  *labels ? "}" : "", cum);
}

void metrics_render(struct server *s, struct strbuf *out)
{
	static const char *const phases[3] = { "firmware", "os", "off" };
	struct metrics *m = &s->metrics;
	struct gauge_walk g = { 0 };
	unsigned t, o, i;
	char labels[64];

	each_session(s, count_session, &g);
	head(out, "netdisk_requests_total", "counter", "Requests served, by transport and operation.");
	for (t = 0; t < MT_TRANSPORTS; t++)
		for (o = 0; o < MO_OPS; o++)
			sb_printf(out, "netdisk_requests_total{transport=\"%s\",op=\"%s\"} %llu\n",
				  transport_names[t], op_names[o], GET(m->requests[t][o]));
	head(out, "netdisk_read_bytes_total", "counter", "Bytes clients read, by transport.");
	for (t = 0; t < MT_TRANSPORTS; t++)
		sb_printf(out, "netdisk_read_bytes_total{transport=\"%s\"} %llu\n",
			  transport_names[t], GET(m->bytes_read[t]));
	head(out, "netdisk_written_bytes_total", "counter", "Bytes clients wrote, by transport.");
	for (t = 0; t < MT_TRANSPORTS; t++)
		sb_printf(out, "netdisk_written_bytes_total{transport=\"%s\"} %llu\n",
			  transport_names[t], GET(m->bytes_written[t]));
	head(out, "netdisk_errors_total", "counter",
	     "Error replies, by transport and protocol status (NBD errors mapped).");
	for (t = 0; t < MT_TRANSPORTS; t++)
		for (i = 1; i < METRIC_STATUSES; i++)
			sb_printf(out, "netdisk_errors_total{transport=\"%s\",status=\"%s\"} %llu\n",
				  transport_names[t], status_names[i], GET(m->errors[t][i]));
	head(out, "netdisk_request_duration_seconds", "histogram",
	     "Time from a request's arrival to its reply, by transport.");
	for (t = 0; t < MT_TRANSPORTS; t++) {
		snprintf(labels, sizeof(labels), "transport=\"%s\"", transport_names[t]);
		histogram(out, "netdisk_request_duration_seconds", labels, m->latency[t],
			  (double)GET(m->latency_ns[t]) / 1e9, 0);
	}
	head(out, "netdisk_sessions", "gauge", "Live sessions, by write mode and phase.");
	for (o = ND_MODE_DIRECT; o <= ND_MODE_READONLY; o++)
		for (i = 0; i < 3; i++)
			sb_printf(out, "netdisk_sessions{mode=\"%s\",phase=\"%s\"} %u\n",
				  nd_mode_text(o), phases[i], g.n[o][i]);
	head(out, "netdisk_overlay_bytes", "gauge", "Bytes held in live sessions' own overlays.");
	sb_printf(out, "netdisk_overlay_bytes %llu\n", g.overlay);
	head(out, "netdisk_sent_bytes_total", "counter",
	     "UDP bytes sent, headers included, by unicast or multicast.");
	sb_printf(out, "netdisk_sent_bytes_total{kind=\"unicast\"} %llu\n", s->stats.tx_unicast);
	sb_printf(out, "netdisk_sent_bytes_total{kind=\"multicast\"} %llu\n", s->stats.tx_multicast);
	head(out, "netdisk_multicast_repairs_total", "counter",
	     "Retransmitted READs of multicast group members, answered by unicast.");
	sb_printf(out, "netdisk_multicast_repairs_total %lu\n", s->stats.repairs);
	head(out, "netdisk_multicast_clients", "gauge", "Members of each image's multicast group.");
	for (i = 0; i < (unsigned)s->cfg.nimages; i++) {
		unsigned peak;

		sb_printf(out, "netdisk_multicast_clients{image=\"%s\"} %u\n", s->cfg.images[i].name,
			  mcast_group_members(s, (int)i, &peak));
	}
	head(out, "netdisk_storage_errors_total", "counter",
	     "Image or overlay reads, writes and flushes that failed.");
	sb_printf(out, "netdisk_storage_errors_total %llu\n", GET(metrics_storage_errors));
	head(out, "netdisk_dropped_datagrams_total", "counter",
	     "UDP datagrams dropped or refused before a session handled them, by reason.");
	sb_printf(out, "netdisk_dropped_datagrams_total{reason=\"malformed\"} %lu\n",
		  s->stats.malformed);
	sb_printf(out, "netdisk_dropped_datagrams_total{reason=\"unknown_session\"} %lu\n",
		  s->stats.bad_session);
	sb_printf(out, "netdisk_dropped_datagrams_total{reason=\"wrong_peer\"} %lu\n",
		  s->stats.wrong_peer);
	sb_printf(out, "netdisk_dropped_datagrams_total{reason=\"attach_rate\"} %lu\n",
		  s->stats.attach_limited);
	sb_printf(out, "netdisk_dropped_datagrams_total{reason=\"short_attach\"} %lu\n",
		  s->stats.short_attach);
	head(out, "netdisk_attach_refused_total", "counter",
	     "ATTACHes refused by the access model, by reason (docs/security.md).");
	sb_printf(out, "netdisk_attach_refused_total{reason=\"site_key\"} %lu\n",
		  s->stats.auth_refused);
	sb_printf(out, "netdisk_attach_refused_total{reason=\"mac_binding\"} %lu\n",
		  s->stats.mac_bound);
	head(out, "netdisk_attaches_total", "counter", "Sessions made by ATTACH.");
	sb_printf(out, "netdisk_attaches_total %llu\n", GET(m->attaches));
	head(out, "netdisk_boot_duration_seconds", "histogram",
	     "Time from a firmware ATTACH to the OS taking the session over.");
	histogram(out, "netdisk_boot_duration_seconds", "", m->boot_seconds,
		  (double)GET(m->boot_ms_sum) / 1000, 1);
}
