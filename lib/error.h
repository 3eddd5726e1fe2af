/* SPDX-License-Identifier: MIT */
#ifndef LARCH_ERROR_H
#define LARCH_ERROR_H

/*
 * DOC: error objects
 *
 * Library code returns 0 / -errno and, where a person must read the reason,
 * fills a struct error on the way. The HTTP layer turns it into
 * {"error": {"code", "field", "value", "message"}} with err->status; the CLI
 * prints err->msg. Messages are lowercase and name the offending value first:
 * "cidr: 10.1.0.0/33: prefix length must be 0-32".
 */

struct error {
	int status;       /* HTTP status this maps to (400, 404, 409, ...) */
	char code[24];    /* machine-readable: invalid, not_found, conflict, ... */
	char field[64];   /* the offending field, "" when none */
	char value[160];  /* the offending value, "" when none */
	char msg[512];    /* the whole human message */
};

/* Fill err (NULL is allowed and ignored); returns -errnum for `return error_set(...)`. */
int error_set(struct error *err, int errnum, int status, const char *code,
	      const char *field, const char *value, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

void error_clear(struct error *err);

/* Shorthands for the common cases; each returns -errnum. */
#define error_invalid(err, field, value, ...) \
	error_set(err, EINVAL, 400, "invalid", field, value, __VA_ARGS__)
#define error_not_found(err, field, value, ...) \
	error_set(err, ENOENT, 404, "not_found", field, value, __VA_ARGS__)
#define error_conflict(err, field, value, ...) \
	error_set(err, EBUSY, 409, "conflict", field, value, __VA_ARGS__)
#define error_exists(err, field, value, ...) \
	error_set(err, EEXIST, 409, "exists", field, value, __VA_ARGS__)
#define error_exhausted(err, field, value, ...) \
	error_set(err, ENOSPC, 409, "exhausted", field, value, __VA_ARGS__)

#endif
