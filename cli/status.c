/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `netdisk status` and `netdisk clients --watch`: the live client table from
 * netdiskd's control socket (its `status` request, server/metrics.c), as a
 * table for people or as JSON for scripts.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "image.h"
#include "status.h"

#define MAX_FIELDS 32

/* One reply line: its kind ("server" or "client") and key=value fields. */
struct line {
	const char *kind;
	const char *key[MAX_FIELDS], *val[MAX_FIELDS];
	int n;
};

/* Cut a reply line (TAB-separated, in place) into its fields; 0, or -1. */
static int status_parse_line(char *text, struct line *l)
{
	char *save = NULL, *f = strtok_r(text, "\t", &save);

	l->kind = f;
	l->n = 0;
	if (!f)
		return -1;
	while ((f = strtok_r(NULL, "\t", &save)) && l->n < MAX_FIELDS) {
		char *eq = strchr(f, '=');

		if (!eq || eq == f)
			return -1;
		*eq = 0;
		l->key[l->n] = f;
		l->val[l->n++] = eq + 1;
	}
	return 0;
}

static const char *get(const struct line *l, const char *key)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->key[i], key))
			return l->val[i];
	return "?";
}

/* Bytes for people: 0, 512, 3.2K, 18.1M, 1.4G. */
static const char *human(const char *v, char *buf, size_t len)
{
	double b = strtod(v, NULL);
	const char *unit = "KMGT";
	int i = -1;

	if (b < 1024) {
		snprintf(buf, len, "%.0f", b);
		return buf;
	}
	while (b >= 1024 && i < 3) {
		b /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f%c", b, unit[i]);
	return buf;
}

/* "booting:12" -> "booting 12s", "stuck:400" -> "STUCK 400s", "8.4" -> "8.4s". */
static const char *boot_text(const char *v, char *buf, size_t len)
{
	if (!strncmp(v, "booting:", 8))
		snprintf(buf, len, "booting %ss", v + 8);
	else if (!strncmp(v, "stuck:", 6))
		snprintf(buf, len, "STUCK %ss", v + 6);
	else if (!strcmp(v, "-"))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%ss", v);
	return buf;
}

static void print_table(char *body, FILE *out)
{
	char *save = NULL, *text, a[16], b[16], c[16], d[32], iv[96];
	int clients = 0;

	fprintf(out, "%-17s %-21s %-16s %-10s %-8s %-4s %-20s %7s %7s %8s %5s %4s %7s %-13s %6s %5s\n",
		"MAC", "IP", "IMAGE@VERSION", "MODE", "PHASE", "VIA", "GROUP", "READ", "WRITTEN",
		"REQUESTS", "RETR", "ERRS", "OVERLAY", "BOOT", "AGE", "IDLE");
	for (text = strtok_r(body, "\n", &save); text; text = strtok_r(NULL, "\n", &save)) {
		struct line l;

		if (status_parse_line(text, &l) < 0)
			continue;
		if (!strcmp(l.kind, "server")) {
			fprintf(out, "# %s sessions of at most %s; sent %s unicast, %s multicast\n",
				get(&l, "sessions"), get(&l, "max_sessions"),
				human(get(&l, "unicast_bytes"), a, sizeof(a)),
				human(get(&l, "multicast_bytes"), b, sizeof(b)));
			if (strcmp(get(&l, "refused_site_key"), "?") &&
			    (strcmp(get(&l, "refused_site_key"), "0") ||
			     strcmp(get(&l, "refused_mac_binding"), "0")))
				fprintf(out, "# ATTACHes refused: %s without the site key, %s by "
					"mac-binding (docs/security.md)\n",
					get(&l, "refused_site_key"), get(&l, "refused_mac_binding"));
			continue;
		}
		if (strcmp(l.kind, "client"))
			continue;
		clients++;
		snprintf(iv, sizeof(iv), "%s%s%s", get(&l, "image"),
			 strcmp(get(&l, "version"), "-") ? "@" : "",
			 strcmp(get(&l, "version"), "-") ? get(&l, "version") : "");
		fprintf(out, "%-17s %-21s %-16s %-10s %-8s %-4s %-20s %7s ", get(&l, "mac"),
			get(&l, "ip"), iv, get(&l, "mode"), get(&l, "phase"), get(&l, "transport"),
			get(&l, "group"), human(get(&l, "read_bytes"), a, sizeof(a)));
		fprintf(out, "%7s %8s %5s %4s %7s %-13s %5ss %4ss\n",
			human(get(&l, "written_bytes"), b, sizeof(b)), get(&l, "requests"),
			get(&l, "retransmits"), get(&l, "errors"),
			human(get(&l, "overlay_bytes"), c, sizeof(c)),
			boot_text(get(&l, "boot_s"), d, sizeof(d)), get(&l, "age_s"), get(&l, "idle_s"));
	}
	if (!clients)
		fprintf(out, "(no clients)\n");
}

/* A JSON value: a decimal number (0, 12, 8.4) as a number, "-" as null, else
 * a string (the server's values hold no quote, backslash or control character). */
static void json_value(const char *v, FILE *out)
{
	const char *p = v;

	if (!strcmp(v, "-")) {
		fputs("null", out);
		return;
	}
	if (*p == '0')
		p++;
	else
		while (*p >= '0' && *p <= '9' && *v >= '1')
			p++;
	if (p > v && *p == '.' && p[1] >= '0' && p[1] <= '9')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (p > v && !*p)
		fputs(v, out);
	else
		fprintf(out, "\"%s\"", v);
}

static void print_json(char *body, FILE *out)
{
	char *save = NULL, *text;
	int clients = 0, i;

	fputs("{", out);
	for (text = strtok_r(body, "\n", &save); text; text = strtok_r(NULL, "\n", &save)) {
		struct line l;

		if (status_parse_line(text, &l) < 0)
			continue;
		if (!strcmp(l.kind, "server"))
			fputs("\"server\":{", out);
		else if (!strcmp(l.kind, "client"))
			fprintf(out, "%s{", clients++ ? "," : "\"clients\":[");
		else
			continue;
		for (i = 0; i < l.n; i++) {
			fprintf(out, "%s\"%s\":", i ? "," : "", l.key[i]);
			json_value(l.val[i], out);
		}
		fputs(!strcmp(l.kind, "server") ? "}," : "}", out);
	}
	fputs(clients ? "]}\n" : "\"clients\":[]}\n", out);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: netdisk status [--json] [--control PATH]\n"
		   "       netdisk clients [--watch [--interval SECONDS] [--count N]] [--control PATH]\n"
		   "\n"
		   "The clients netdiskd serves now: MAC, IP, image@version, mode, phase (firmware,\n"
		   "os, off), transport, multicast group, bytes read and written, requests,\n"
		   "retransmissions, errors, overlay size, boot time (ATTACH to the OS taking\n"
		   "over; STUCK past boot-limit), session age and when it was last heard.\n"
		   "The control socket is --control PATH, else $NETDISK_CONTROL, else %s.\n",
		DEFAULT_CONTROL);
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "control", required_argument, 0, 'C' },
		{ "json", no_argument, 0, 'j' },
		{ "watch", no_argument, 0, 'w' },
		{ "interval", required_argument, 0, 'i' },
		{ "count", required_argument, 0, 'n' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *control = getenv("NETDISK_CONTROL"), *fields[] = { "status", NULL };
	int opt, json = 0, watch = 0, count = 0, round;
	double interval = 2;
	char *end;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'C': control = optarg; break;
		case 'j': json = 1; break;
		case 'w': watch = 1; break;
		case 'i':
			interval = strtod(optarg, &end);
			if (*end || !(interval >= 0.1 && interval <= 3600)) {
				fprintf(stderr, "netdisk %s: --interval wants 0.1..3600 seconds, not '%s'\n",
					argv[0], optarg);
				return 2;
			}
			break;
		case 'n':
			count = (int)strtol(optarg, &end, 10);
			if (*end || count < 1) {
				fprintf(stderr, "netdisk %s: --count wants a positive number, not '%s'\n",
					argv[0], optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "netdisk %s: unknown option or missing value: %s\n", argv[0],
				argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (json && watch) || (!strcmp(argv[0], "status") && watch)) {
		usage(stderr);
		return 2;
	}
	if (!control || !*control)
		control = DEFAULT_CONTROL;
	for (round = 1;; round++) {
		char *body;
		time_t now = time(NULL);

		if (control_request(!strcmp(argv[0], "status") ? "netdisk status" : "netdisk clients",
				    control, fields, &body))
			return 1;
		if (watch && isatty(STDOUT_FILENO))
			fputs("\033[H\033[2J", stdout);
		if (watch)
			printf("netdisk clients, %.24s, every %g s (Ctrl-C quits)\n", ctime(&now),
			       interval);
		if (json)
			print_json(body, stdout);
		else
			print_table(body, stdout);
		free(body);
		fflush(stdout);
		if (!watch || (count && round >= count))
			return 0;
		usleep((useconds_t)(interval * 1e6));
	}
}
