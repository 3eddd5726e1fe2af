/* SPDX-License-Identifier: MIT */
#ifndef LARCH_JSONX_H
#define LARCH_JSONX_H

/*
 * DOC: strict JSON field access
 *
 * Request bodies are checked field by field: an unknown field, a wrong type
 * or a bad value is an error naming the field, before anything changes.
 */

#include <stdbool.h>
#include <jansson.h>

struct error;

/* -EINVAL + unknown_field error when obj has a key not in allowed (NULL-terminated). */
int jx_only(json_t *obj, const char *const allowed[], struct error *err);
/* String field: *out NULL when absent (and not required). JSON null counts as absent. */
int jx_str(json_t *obj, const char *field, bool required, const char **out, struct error *err);
/* Non-negative integer field; *present tells whether it was given. */
int jx_uint(json_t *obj, const char *field, unsigned long long max, unsigned long long *out,
	    bool *present, struct error *err);
/* Kubernetes label syntax: NULL when k (v) is a valid label key (value),
 * else what is wrong with it. A key is an optional DNS subdomain prefix
 * (at most 253 characters) and '/', then a name; a value is empty or a name.
 * A name is at most 63 letters, digits, '-', '_' and '.', beginning and
 * ending with a letter or digit. */
const char *label_key_invalid(const char *k);
const char *label_value_invalid(const char *v);
/* Labels: an object of at most 64 string values; with syntax, valid label
 * keys and values (new input), without, keys of 1-253 and values of 0-253
 * bytes (what older versions stored). *out is its canonical compact text
 * (malloc'd) or NULL. */
int jx_labels(json_t *obj, const char *field, bool syntax, char **out, struct error *err);
/* An array of strings; *out points into obj (borrowed), *n its length. */
int jx_strv(json_t *obj, const char *field, const char ***out, size_t *n, bool *present,
	    struct error *err);

/* Parse a request body as a JSON object, with an error naming line/column. */
json_t *jx_parse_object(const char *buf, size_t len, struct error *err);

#endif
