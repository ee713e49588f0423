/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The in-process unit tests: runs every group, or those named on the command
 * line, and exits non-zero if any check failed. */

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "unit.h"

static int failures;
static char tmpdir[] = "/tmp/netdisk-unit.XXXXXX";

int check_that(int cond, const char *name, const char *why_fmt, ...)
{
	va_list ap;

	if (cond) {
		printf("PASS %s\n", name);
	} else {
		failures++;
		printf("FAIL %s: ", name);
		va_start(ap, why_fmt);
		vprintf(why_fmt, ap);
		va_end(ap);
		putchar('\n');
	}
	fflush(stdout);
	return cond;
}

const char *unit_tmpdir(void)
{
	return tmpdir;
}

int unit_stderr_to(const char *path)
{
	int saved, fd;

	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	return saved;
}

void unit_stderr_back(int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

static void remove_tmpdir(void)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "unit: could not remove %s\n", tmpdir);
}

#define TIME_LIMIT_S 90 /* every group runs on virtual time: seconds is a hang */

static void timed_out(int sig)
{
	static const char msg[] = "FAIL unittest: still running after the time limit (a hang)\n";

	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(1);
}

static const struct {
	const char *name;
	void (*run)(void);
} groups[] = {
	{ "common", unit_common },
	{ "config", unit_config },
	{ "client", unit_client },
	{ "ipstack", unit_ipstack },
	{ "dhcp", unit_dhcp },
	{ "overlay", unit_overlay },
	{ "tiers", unit_tiers },
	{ "crypto", unit_crypto },
};

int main(int argc, char **argv)
{
	size_t i;
	int j, ran = 0;

	if (!mkdtemp(tmpdir)) {
		perror("unit: mkdtemp");
		return 2;
	}
	atexit(remove_tmpdir);
	signal(SIGALRM, timed_out);
	alarm(TIME_LIMIT_S);
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		int wanted = argc < 2;

		for (j = 1; j < argc; j++)
			wanted |= !strcmp(argv[j], groups[i].name);
		if (wanted) {
			groups[i].run();
			ran++;
		}
	}
	if (!ran) {
		fprintf(stderr, "unit: no group named so (common config client ipstack dhcp overlay tiers)\n");
		return 2;
	}
	return failures ? 1 : 0;
}
