/* netdiskd's log: one timestamped line per event on standard error. */

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include "netdiskd.h"

void log_msg(const char *fmt, ...)
{
	char when[32];
	time_t t = time(NULL);
	va_list ap;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
	fprintf(stderr, "%s netdiskd: ", when);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
