/* SPDX-License-Identifier: MIT */
/* Output backends: aligned tables, or the server's JSON as it came. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "larchctl.h"

/* Append piece (taken over) to *out after sep; *out NULL on failure. */
static void join(char **out, const char *sep, char *piece)
{
	char *tmp = NULL;

	if (*out && piece && asprintf(&tmp, "%s%s%s", *out, (*out)[0] ? sep : "", piece) < 0)
		tmp = NULL;
	free(piece);
	free(*out);
	*out = tmp;
}

/* Addresses and blocks read better as their text; objects as k=v pairs. */
char *cell_text(json_t *v)
{
	char *out = NULL;
	size_t i;
	json_t *e;
	const char *k;

	if (!v || json_is_null(v))
		return strdup("-");
	if (json_is_string(v))
		return strdup(json_string_value(v)[0] ? json_string_value(v) : "-");
	if (json_is_integer(v)) {
		if (asprintf(&out, "%lld", (long long)json_integer_value(v)) < 0)
			return NULL;
		return out;
	}
	if (json_is_boolean(v))
		return strdup(json_is_true(v) ? "yes" : "no");
	if (json_is_array(v) || json_is_object(v)) {
		out = strdup("");
		if (json_is_array(v)) {
			json_array_foreach(v, i, e) {
				json_t *addr = json_is_object(e) ? json_object_get(e, "address") : NULL;

				join(&out, ",", cell_text(addr ? addr : e));
			}
		} else {
			json_object_foreach(v, k, e) {
				char *s = cell_text(e), *kv = NULL;

				if (s && asprintf(&kv, "%s=%s", k, s) < 0)
					kv = NULL;
				free(s);
				join(&out, ",", kv);
			}
		}
		if (out && !out[0]) {
			free(out);
			return strdup("-");
		}
		return out;
	}
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* body: a list answer, {"revision": N, "items": [...]} */
static void table_list(const struct kind *k, json_t *body)
{
	json_t *items = json_object_get(body, "items");
	size_t ncols = 0, nrows = json_array_size(items), r, i;
	size_t *width;
	char **cells;

	while (k->cols[ncols].header)
		ncols++;
	width = calloc(ncols, sizeof(*width));
	cells = calloc((nrows + 1) * ncols, sizeof(*cells));
	if (!width || !cells)
		goto out;
	for (i = 0; i < ncols; i++) {
		cells[i] = strdup(k->cols[i].header);
		width[i] = strlen(cells[i]);
	}
	for (r = 0; r < nrows; r++) {
		json_t *o = json_array_get(items, r);

		for (i = 0; i < ncols; i++) {
			char *s = cell_text(json_object_get(o, k->cols[i].field));

			cells[(r + 1) * ncols + i] = s;
			if (s && strlen(s) > width[i])
				width[i] = strlen(s);
		}
	}
	for (r = 0; r <= nrows; r++) {
		for (i = 0; i < ncols; i++) {
			const char *s = cells[r * ncols + i] ? cells[r * ncols + i] : "?";

			if (i + 1 == ncols)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)width[i], s);
		}
	}
out:
	if (cells)
		for (i = 0; i < (nrows + 1) * ncols; i++)
			free(cells[i]);
	free(cells);
	free(width);
}

/* One object: every field, one per line. */
static void table_object(const struct kind *k, json_t *obj)
{
	const char *key;
	size_t w = 0;
	json_t *v;
	(void)k;

	json_object_foreach(obj, key, v)
		if (strlen(key) > w)
			w = strlen(key);
	json_object_foreach(obj, key, v) {
		char *s = cell_text(v);

		printf("%-*s  %s\n", (int)w, key, s ? s : "?");
		free(s);
	}
}

static void json_raw(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	putchar('\n');
}

/* -o json prints what the server said, lists with their revision */
static void json_kind(const struct kind *k, json_t *v)
{
	(void)k;
	json_raw(v);
}

const struct output output_table = { table_object, table_list, json_raw };
const struct output output_json = { json_kind, json_kind, json_raw };
