/* netdiskd's log: one timestamped line per event on standard error. */

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include "netdiskd.h"

void log_msg(const char *fmt, ...)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	va_list ap;

	/* localtime_r: NBD connection threads log concurrently. */
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
	fprintf(stderr, "%s netdiskd: ", when);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
