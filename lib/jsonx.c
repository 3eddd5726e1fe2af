/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jsonx.h"

static const char *type_name(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

int jx_only(json_t *obj, const char *const allowed[], struct error *err)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		bool ok = false;

		for (size_t i = 0; allowed[i]; i++)
			if (!strcmp(k, allowed[i])) {
				ok = true;
				break;
			}
		if (!ok)
			return error_set(err, EINVAL, 400, "unknown_field", k, "",
					 "%s: unknown field", k);
	}
	return 0;
}

int jx_str(json_t *obj, const char *field, bool required, const char **out, struct error *err)
{
	json_t *v = json_object_get(obj, field);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return error_invalid(err, field, "", "%s: required", field);
		return 0;
	}
	if (!json_is_string(v))
		return error_invalid(err, field, "", "%s: must be a string, not %s", field,
				     type_name(v));
	if (strlen(json_string_value(v)) != json_string_length(v))
		return error_invalid(err, field, "", "%s: must not contain NUL", field);
	*out = json_string_value(v);
	return 0;
}

int jx_uint(json_t *obj, const char *field, unsigned long long max, unsigned long long *out,
	    bool *present, struct error *err)
{
	json_t *v = json_object_get(obj, field);
	char buf[32];

	*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return error_invalid(err, field, "", "%s: must be an integer, not %s", field,
				     type_name(v));
	snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
	if (json_integer_value(v) < 0 || (unsigned long long)json_integer_value(v) > max)
		return error_invalid(err, field, buf, "%s: %s: must be 0-%llu", field, buf, max);
	*out = (unsigned long long)json_integer_value(v);
	*present = true;
	return 0;
}

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A label name (or value) of n bytes. */
static const char *name_invalid(const char *s, size_t n)
{
	if (n > 63)
		return "at most 63 characters";
	if (!alnum(s[0]) || !alnum(s[n - 1]))
		return "must begin and end with a letter or digit";
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return "only letters, digits, '-', '_' and '.'";
	return NULL;
}

const char *label_key_invalid(const char *k)
{
	const char *slash = strchr(k, '/'), *name = slash ? slash + 1 : k;

	if (slash) {
		size_t pn = (size_t)(slash - k);

		if (pn == 0 || pn > 253)
			return "the prefix before '/' must be 1 to 253 characters";
		/* a DNS subdomain: lowercase labels of letters, digits and '-' */
		for (const char *p = k, *dot; p < slash; p = dot + 1) {
			dot = memchr(p, '.', (size_t)(slash - p)) ?: slash;
			if (dot == p || dot - p > 63 || p[0] == '-' || dot[-1] == '-')
				return "the prefix before '/' must be a DNS subdomain (e.g. example.com)";
			for (const char *c = p; c < dot; c++)
				if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
					return "the prefix before '/' must be a DNS subdomain "
					       "(lowercase letters, digits, '-' and '.')";
		}
	}
	if (!*name)
		return "the name is empty";
	return name_invalid(name, strlen(name));
}

const char *label_value_invalid(const char *v)
{
	return *v ? name_invalid(v, strlen(v)) : NULL;
}

int jx_labels(json_t *obj, const char *field, bool syntax, char **out, struct error *err)
{
	json_t *v = json_object_get(obj, field), *x;
	const char *k;

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return error_invalid(err, field, "", "%s: must be an object of strings, not %s",
				     field, type_name(v));
	json_object_foreach(v, k, x) {
		const char *why;

		if (!json_is_string(x))
			return error_invalid(err, field, k, "%s: %s: value must be a string, not %s",
					     field, k, type_name(x));
		if (!syntax) {
			if (strlen(k) == 0 || strlen(k) > 253 || json_string_length(x) > 253)
				return error_invalid(err, field, k,
						     "%s: %s: keys must be 1-253 and values 0-253 bytes",
						     field, k);
			continue;
		}
		if ((why = label_key_invalid(k)))
			return error_invalid(err, field, k, "%s: label key %s: %s", field, k, why);
		if ((why = label_value_invalid(json_string_value(x))))
			return error_invalid(err, field, json_string_value(x),
					     "%s: %s: label value %s: %s", field, k,
					     json_string_value(x), why);
	}
	if (json_object_size(v) > 64)
		return error_invalid(err, field, "", "%s: at most 64 labels", field);
	if (json_object_size(v) == 0)
		return 0;
	*out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	if (!*out)
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	return 0;
}

int jx_strv(json_t *obj, const char *field, const char ***out, size_t *n, bool *present,
	    struct error *err)
{
	json_t *v = json_object_get(obj, field), *x;
	size_t i;

	*out = NULL;
	*n = 0;
	*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return error_invalid(err, field, "", "%s: must be an array of strings, not %s",
				     field, type_name(v));
	if (json_array_size(v) > 256)
		return error_invalid(err, field, "", "%s: at most 256 entries", field);
	*out = calloc(json_array_size(v) + 1, sizeof(char *));
	if (!*out)
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	json_array_foreach(v, i, x) {
		if (!json_is_string(x)) {
			free(*out);
			*out = NULL;
			return error_invalid(err, field, "", "%s[%zu]: must be a string, not %s",
					     field, i, type_name(x));
		}
		(*out)[i] = json_string_value(x);
	}
	*n = json_array_size(v);
	*present = true;
	return 0;
}

json_t *jx_parse_object(const char *buf, size_t len, struct error *err)
{
	json_error_t je;
	json_t *v;

	if (!buf || len == 0) {
		error_set(err, EINVAL, 400, "malformed", "", "", "the request body is empty; a JSON object is needed");
		return NULL;
	}
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		error_set(err, EINVAL, 400, "malformed", "", "",
			  "the body is not valid JSON: %s at line %d column %d", je.text, je.line,
			  je.column);
		return NULL;
	}
	if (!json_is_object(v)) {
		error_set(err, EINVAL, 400, "malformed", "", "",
			  "the body must be a JSON object, not %s", type_name(v));
		json_decref(v);
		return NULL;
	}
	return v;
}
