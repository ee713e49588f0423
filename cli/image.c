/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `netdisk image ...`: the admin commands for image versions, sent to
 * netdiskd's control socket (docs/images.md, docs/cli.md). */

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "image.h"


static void image_usage(FILE *f)
{
	fprintf(f,
		"usage: netdisk image COMMAND [--control PATH] ARGS\n"
		"\n"
		"  list                                  images and their versions\n"
		"  versions IMAGE                        each version: state, delta size,\n"
		"                                        sessions and pins, boots ok/failed\n"
		"  new-version IMAGE [--note TEXT] [--from VERSION]\n"
		"                                        a maintenance version (over production)\n"
		"  promote IMAGE VERSION [--to test|production]   (default production)\n"
		"        [--group NAME] [--percent P]    with --to test: a canary, also for\n"
		"                                        the clients of group NAME and P%% of all\n"
		"  rollback IMAGE                        production back to the one before\n"
		"  merge IMAGE [--upto VERSION] [--no-wait]\n"
		"                                        squash a chain into a new base\n"
		"  delete-version IMAGE VERSION          a version nobody reads or pins\n"
		"  export IMAGE VERSION -o FILE.qcow2    a version as a qcow2 file (qemu-img)\n"
		"  reset-client IMAGE MAC                a persistent overlay starts afresh on\n"
		"                                        the current version at its next boot\n"
		"  job IMAGE                             the merge or export running\n"
		"\n"
		"The control socket is --control PATH, else $NETDISK_CONTROL, else %s.\n",
		DEFAULT_CONTROL);
}

static void bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("netdisk image: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (netdisk image --help)\n", stderr);
	va_end(ap);
	exit(2);
}

static const char *msg_prefix = "netdisk image";

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", msg_prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int request(const char *path, const char *const *fields, char **body);

int control_request(const char *who, const char *path, const char *const *fields, char **body)
{
	msg_prefix = who;
	return request(path, fields, body);
}

/* One request (fields joined by TAB) and its reply; the reply's body in
 * *body (malloc'd).  0 if the server said ok, else 1 with its error printed. */
static int request(const char *path, const char *const *fields, char **body)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char *rep = NULL;
	size_t len = 0, cap = 0;
	int fd, i;

	if (strlen(path) >= sizeof(a.sun_path))
		fatal("control socket path %s too long", path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		fatal("cannot reach netdiskd at %s: connect: %s (is it running? give --control PATH "
		      "or set NETDISK_CONTROL)", path, strerror(errno));
	for (i = 0; fields[i]; i++) {
		if (dprintf(fd, "%s%s", i ? "\t" : "", fields[i]) < 0)
			fatal("cannot send to %s: write: %s", path, strerror(errno));
	}
	if (dprintf(fd, "\n") < 0)
		fatal("cannot send to %s: write: %s", path, strerror(errno));
	for (;;) {
		ssize_t n;

		if (len + 4096 + 1 > cap && !(rep = realloc(rep, cap = cap * 2 + 8192)))
			fatal("out of memory");
		n = read(fd, rep + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fatal("cannot read the reply from %s: read: %s", path, strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!rep)
		fatal("netdiskd closed the control connection without a reply");
	rep[len] = 0;
	if (!strncmp(rep, "ok\n", 3)) {
		memmove(rep, rep + 3, len - 2);
		*body = rep;
		return 0;
	}
	if (!strncmp(rep, "error ", 6)) {
		fprintf(stderr, "%s: %s", msg_prefix, rep + 6);
		free(rep);
		return 1;
	}
	fatal("malformed reply from netdiskd: %.80s", rep);
}

static const char *check_version(const char *s)
{
	const char *p = s;

	if (!*p)
		bad_usage("VERSION must be a number from 1, not ''");
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			bad_usage("VERSION must be a number from 1, not '%s'", s);
	if (atol(s) < 1)
		bad_usage("VERSION must be a number from 1, not '%s'", s);
	return s;
}

static char *optfield(const char *key, const char *value)
{
	size_t n = strlen(key) + strlen(value) + 2;
	char *f = malloc(n);

	if (!f)
		fatal("out of memory");
	snprintf(f, n, "%s=%s", key, value);
	return f;
}

/* Poll the job until it is done, printing progress; 0 if it succeeded. */
static int wait_job(const char *control, const char *image, int show)
{
	const char *fields[] = { "job", image, NULL };
	int last = -1;

	for (;;) {
		char *body;
		unsigned long long done, total;
		unsigned ver;
		char kind[16];

		if (request(control, fields, &body))
			return 1;
		if (sscanf(body, "job %15s version=%u done=%llu total=%llu", kind, &ver, &done,
			   &total) == 4) {
			int pct = total ? (int)(done * 100 / total) : 0;

			if (show && pct != last) {
				fprintf(stderr, "\r%s of version %u: %3d%% (%llu of %llu MiB)", kind, ver,
					pct, done >> 20, total >> 20);
				last = pct;
			}
			free(body);
			usleep(200000);
			continue;
		}
		if (show && last >= 0)
			fputc('\n', stderr);
		if (strstr(body, "result=ok")) {
			char *mbps = strstr(body, "mbps=");

			if (show && mbps)
				printf("done: %.*s MB/s\n", (int)strcspn(mbps + 5, " \n"), mbps + 5);
			free(body);
			return 0;
		}
		fprintf(stderr, "netdisk image: the job failed: %s", strstr(body, "error=") ?
			strstr(body, "error=") + 6 : body);
		free(body);
		return 1;
	}
}

static int in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	while (path && *path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
		if (access(buf, X_OK) == 0)
			return 1;
		path += n + (path[n] == ':');
	}
	return 0;
}

static int do_export(const char *control, const char *image, const char *ver, const char *out)
{
	const char *fields[] = { "export", image, ver, NULL };
	const char *done[] = { "export-done", image, ver, NULL };
	char *body, raw[4200];
	pid_t pid;
	int status, rc;

	if (!in_path("qemu-img"))
		fatal("export needs qemu-img (Debian package qemu-utils)");
	if (request(control, fields, &body))
		return 1;
	if (sscanf(body, "file %4095s", raw) != 1)
		fatal("malformed reply from netdiskd: %.80s", body);
	free(body);
	rc = wait_job(control, image, isatty(2));
	if (rc == 0) {
		pid = fork();
		if (pid == 0) {
			execlp("qemu-img", "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw,
			       out, (char *)NULL);
			fprintf(stderr, "netdisk image: cannot run qemu-img: execlp: %s\n", strerror(errno));
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "netdisk image: qemu-img convert %s -> %s failed\n", raw, out);
			rc = 1;
		}
	}
	if (request(control, done, &body) == 0)
		free(body);
	if (!rc)
		printf("version %s of %s exported to %s\n", ver, image, out);
	return rc;
}

int cmd_image(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "control", required_argument, 0, 'C' },
		{ "note", required_argument, 0, 'N' },
		{ "from", required_argument, 0, 'F' },
		{ "to", required_argument, 0, 'T' },
		{ "group", required_argument, 0, 'G' },
		{ "percent", required_argument, 0, 'P' },
		{ "upto", required_argument, 0, 'U' },
		{ "no-wait", no_argument, 0, 'W' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *control = getenv("NETDISK_CONTROL"), *note = NULL, *from = NULL, *to = NULL;
	const char *upto = NULL, *out = NULL, *group = NULL, *percent = NULL, *sub, *fields[10];
	int opt, nowait = 0, n = 0, rc, i, want;
	char *body;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		image_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'C': control = optarg; break;
		case 'N': note = optarg; break;
		case 'F': from = optarg; break;
		case 'T': to = optarg; break;
		case 'G': group = optarg; break;
		case 'P': percent = optarg; break;
		case 'U': upto = optarg; break;
		case 'W': nowait = 1; break;
		case 'o': out = optarg; break;
		case 'h': image_usage(stdout); return 0;
		default:
			bad_usage("unknown option or missing value: %s", argv[optind - 1]);
		}
	}
	if (!control || !*control)
		control = DEFAULT_CONTROL;
	argv += optind;
	argc -= optind;
	if (argc < 1)
		bad_usage("no command");
	sub = argv[0];
	argv++;
	argc--;
	want = !strcmp(sub, "list") ? 0
	       : !strcmp(sub, "versions") || !strcmp(sub, "new-version") || !strcmp(sub, "rollback") ||
			 !strcmp(sub, "merge") || !strcmp(sub, "job") ? 1
	       : !strcmp(sub, "promote") || !strcmp(sub, "delete-version") ||
			 !strcmp(sub, "export") || !strcmp(sub, "reset-client") ? 2 : -1;
	if (want < 0)
		bad_usage("unknown command '%s'", sub);
	if (argc != want)
		bad_usage("%s takes %s%s", sub,
			  want == 0 ? "no arguments" : want == 1 ? "IMAGE" : "IMAGE ",
			  want < 2 ? "" : !strcmp(sub, "reset-client") ? "MAC" : "VERSION");
	if (note && strcmp(sub, "new-version"))
		bad_usage("--note is for new-version");
	if (from && strcmp(sub, "new-version"))
		bad_usage("--from is for new-version");
	if (to && strcmp(sub, "promote"))
		bad_usage("--to is for promote");
	if ((group || percent) && (!to || strcmp(to, "test")))
		bad_usage("--group and --percent are for promote --to test (a canary)");
	if (percent && (strspn(percent, "0123456789") != strlen(percent) || !*percent ||
			atoi(percent) < 1 || atoi(percent) > 100))
		bad_usage("--percent takes 1..100, not '%s'", percent);
	if ((upto || nowait) && strcmp(sub, "merge"))
		bad_usage("--upto and --no-wait are for merge");
	if (out && strcmp(sub, "export"))
		bad_usage("-o is for export");
	if (to && strcmp(to, "test") && strcmp(to, "production"))
		bad_usage("--to takes test or production, not '%s'", to);
	if (note)
		for (i = 0; note[i]; i++)
			if ((unsigned char)note[i] < 0x20 || note[i] == 0x7f)
				bad_usage("--note must be one line of printable text");
	if (from)
		check_version(from);
	if (upto)
		check_version(upto);
	if (want == 2 && strcmp(sub, "reset-client"))
		check_version(argv[1]);
	if (!strcmp(sub, "export")) {
		if (!out)
			bad_usage("export needs -o FILE.qcow2");
		return do_export(control, argv[0], argv[1], out);
	}
	fields[n++] = sub;
	for (i = 0; i < argc; i++)
		fields[n++] = argv[i];
	if (note)
		fields[n++] = optfield("note", note);
	if (from)
		fields[n++] = optfield("from", from);
	if (to)
		fields[n++] = optfield("to", to);
	if (upto)
		fields[n++] = optfield("upto", upto);
	if (group)
		fields[n++] = optfield("group", group);
	if (percent)
		fields[n++] = optfield("percent", percent);
	fields[n] = NULL;
	rc = request(control, fields, &body);
	if (rc)
		return rc;
	fputs(body, stdout);
	free(body);
	if (!strcmp(sub, "merge") && !nowait)
		return wait_job(control, argv[0], 1);
	return 0;
}
