/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static const char *prog = "larch";
static int verbose;

void log_init(const char *progname, int debug)
{
	prog = progname;
	verbose = debug;
}

static void vlog(const char *level, const char *fmt, va_list ap, int errnum)
{
	char buf[1024];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One fprintf per line so concurrent threads do not interleave. */
	if (errnum)
		fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: %s: %s\n",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, prog, level, buf,
			strerror(errnum));
	else
		fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: %s\n",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, prog, level, buf);
}

#define LOGFN(name, level, with_errno, cond)          \
	void name(const char *fmt, ...)               \
	{                                             \
		int e = errno;                        \
		va_list ap;                           \
		if (!(cond))                          \
			return;                       \
		va_start(ap, fmt);                    \
		vlog(level, fmt, ap, with_errno ? e : 0); \
		va_end(ap);                           \
	}

LOGFN(log_info, "info", 0, 1)
LOGFN(log_debug, "debug", 0, verbose)
LOGFN(log_warn, "warn", 1, 1)
LOGFN(log_warnx, "warn", 0, 1)

void fatal(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal", fmt, ap, e);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
