/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What netdiskd counts for `netdisk status`, the Prometheus endpoint and the
 * dashboard: per-session counters and server-wide request, byte, error and
 * latency counters by transport (metrics.c renders them, http.c serves). */
#ifndef NETDISKD_METRICS_H
#define NETDISKD_METRICS_H

#include <stdint.h>

enum metric_transport { MT_UDP, MT_NBD, MT_ISCSI, MT_TRANSPORTS };
enum metric_op { MO_READ, MO_WRITE, MO_FLUSH, MO_TRIM, MO_OTHER, MO_OPS };

#define METRIC_STATUSES 14  /* ND_OK .. ND_ERR_PERSONA: errors by protocol status */
#define METRIC_BUCKETS 14   /* request latency histogram (metrics.c: bounds) */

/* One session's counters (added atomically: NBD workers run without the server lock). */
struct session_counters {
	unsigned long long requests, reads, writes, flushes;
	unsigned long long bytes_read, bytes_written;
	unsigned long long retransmits; /* READs marked RETRY, WRITE fragments received twice */
	unsigned long long errors;      /* error replies */
};

/* The server's counters since it started (atomic too). */
struct metrics {
	unsigned long long requests[MT_TRANSPORTS][MO_OPS];
	unsigned long long bytes_read[MT_TRANSPORTS], bytes_written[MT_TRANSPORTS];
	unsigned long long errors[MT_TRANSPORTS][METRIC_STATUSES];
	unsigned long long latency[MT_TRANSPORTS][METRIC_BUCKETS + 1]; /* last: above all */
	unsigned long long latency_ns[MT_TRANSPORTS];
	unsigned long long attaches, os_takeovers;
	unsigned long long boot_seconds[METRIC_BUCKETS + 1]; /* ATTACH to OS takeover */
	unsigned long long boot_ms_sum;
};

struct server;
struct session;
struct strbuf;

/* Storage errors (session_storage_error), process-wide. */
extern unsigned long long metrics_storage_errors;

/* A request done: its op, the bytes it moved, how long it took. */
void metrics_request(struct server *s, struct session *ss, int transport, int op,
		     uint64_t bytes, uint64_t ns);
/* An error reply with protocol status `status` (ND_ERR_*), ss may be NULL. */
void metrics_error(struct server *s, struct session *ss, int transport, unsigned status);
void metrics_retransmit(struct session *ss);
/* A session made by ATTACH or NBD (its boot time starts). */
void metrics_attached(struct server *s, struct session *ss);
/* Error replies sent over UDP, every status (the exit line). */
unsigned long metrics_udp_errors(struct server *s);
/* The OS took the session over (its first NBD connection by token). */
void metrics_takeover(struct server *s, struct session *ss);
uint64_t metrics_now_ns(void);

/* Under the server lock (shared): the control socket's `status` reply (one
 * line a client, TAB-separated key=value fields), the JSON of the
 * dashboard's /api/status, and the Prometheus text of /metrics. */
void status_lines(struct server *s, struct strbuf *out);
void status_json(struct server *s, struct strbuf *out);
void metrics_render(struct server *s, struct strbuf *out);

#endif
