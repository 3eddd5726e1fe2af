/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

int error_set(struct error *err, int errnum, int status, const char *code,
	      const char *field, const char *value, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -errnum;
	err->status = status;
	copy(err->code, sizeof(err->code), code);
	copy(err->field, sizeof(err->field), field);
	copy(err->value, sizeof(err->value), value);
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -errnum;
}

void error_clear(struct error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}
