/* SPDX-License-Identifier: MIT */
/*
 * DOC: libyaml's document API to jansson
 *
 * yaml_parser_load() gives one document at a time as a node graph; we walk
 * it recursively. Aliases in libyaml's document API are already resolved to
 * node indices, so an alias is just a second path to the same node: the
 * walk counts every node it emits and stops at YJ_MAX_NODES, which bounds
 * both "billion laughs" expansion and plain size. Recursion depth is bounded
 * too (YJ_MAX_DEPTH).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "error.h"
#include "yamljson.h"

#define YJ_MAX_NODES 1000000
#define YJ_MAX_DEPTH 128

struct walk {
	yaml_document_t *doc;
	const char *name;
	size_t nodes;
	struct error *err;
};

static int fail_at(struct walk *w, const yaml_node_t *n, const char *fmt, const char *arg)
{
	char msg[256];

	snprintf(msg, sizeof(msg), fmt, arg);
	return error_set(w->err, EINVAL, 400, "invalid", "", "", "%s:%zu:%zu: %s", w->name,
			 n->start_mark.line + 1, n->start_mark.column + 1, msg);
}

static bool is_one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

/* A plain scalar, typed as YAML 1.2's core schema does. */
static json_t *plain_scalar(const char *s, size_t len)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	static const char *const infs[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL };
	static const char *const ninfs[] = { "-.inf", "-.Inf", "-.INF", NULL };
	char *end;

	if (strlen(s) != len) /* an embedded NUL: keep it a string */
		return json_stringn(s, len);
	if (is_one_of(s, nulls))
		return json_null();
	if (is_one_of(s, trues))
		return json_true();
	if (is_one_of(s, falses))
		return json_false();
	if (is_one_of(s, infs) || is_one_of(s, ninfs) || !strcmp(s, ".nan") || !strcmp(s, ".NaN"))
		return json_stringn(s, len); /* JSON has no inf/nan: keep the text */
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o') && s[2]) {
		errno = 0;
		unsigned long long v = strtoull(s + 2, &end, s[1] == 'x' ? 16 : 8);

		if (!*end && !errno && v <= (unsigned long long)INT64_MAX)
			return json_integer((json_int_t)v);
		return json_stringn(s, len);
	}
	if (strspn(s, "+-0123456789") == len && len && strpbrk(s, "0123456789") &&
	    strspn(s + 1, "0123456789") == len - 1) {
		errno = 0;
		long long v = strtoll(s, &end, 10);

		if (!*end && !errno)
			return json_integer(v);
		return json_stringn(s, len);
	}
	if (strpbrk(s, "0123456789") && strspn(s, "+-0123456789.eE") == len) {
		double d = strtod(s, &end);

		if (!*end)
			return json_real(d);
	}
	return json_stringn(s, len);
}

static json_t *walk_node(struct walk *w, yaml_node_t *n, int depth)
{
	json_t *out = NULL;

	if (++w->nodes > YJ_MAX_NODES) {
		fail_at(w, n, "more than %s nodes (aliases included): refusing", "1000000");
		return NULL;
	}
	if (depth > YJ_MAX_DEPTH) {
		fail_at(w, n, "nested deeper than %s levels", "128");
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE: {
		const char *s = (const char *)n->data.scalar.value;
		size_t len = n->data.scalar.length;

		if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			out = plain_scalar(s, len);
		else
			out = json_stringn(s, len);
		if (!out)
			fail_at(w, n, "%s: not valid UTF-8", "scalar");
		return out;
	}
	case YAML_SEQUENCE_NODE:
		out = json_array();
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			json_t *v = walk_node(w, yaml_document_get_node(w->doc, *it), depth + 1);

			if (!v) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, v);
		}
		return out;
	case YAML_MAPPING_NODE:
		out = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
		     p++) {
			yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
			json_t *v;
			char *key;

			if (k->type != YAML_SCALAR_NODE) {
				fail_at(w, k, "%s: mapping keys must be scalars", "key");
				json_decref(out);
				return NULL;
			}
			key = strndup((const char *)k->data.scalar.value, k->data.scalar.length);
			if (!key || json_object_get(out, key)) {
				if (key)
					fail_at(w, k, "%s: duplicate key", key);
				free(key);
				json_decref(out);
				return NULL;
			}
			v = walk_node(w, yaml_document_get_node(w->doc, p->value), depth + 1);
			if (!v || json_object_set_new(out, key, v) < 0) {
				if (v)
					fail_at(w, k, "%s: key is not valid UTF-8", "key");
				free(key);
				json_decref(out);
				return NULL;
			}
			free(key);
		}
		return out;
	default:
		fail_at(w, n, "%s: unexpected YAML node", "node");
		return NULL;
	}
}

static json_t *load(yaml_parser_t *p, const char *name, struct error *err)
{
	json_t *docs = json_array();
	struct walk w = { .name = name, .err = err };

	for (;;) {
		yaml_document_t doc;
		yaml_node_t *root;
		json_t *v;

		if (!yaml_parser_load(p, &doc)) {
			error_set(err, EINVAL, 400, "invalid", "", "", "%s:%zu:%zu: %s%s%s", name,
				  p->problem_mark.line + 1, p->problem_mark.column + 1,
				  p->problem ? p->problem : "YAML error",
				  p->context ? " " : "", p->context ? p->context : "");
			json_decref(docs);
			return NULL;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) { /* end of the stream */
			yaml_document_delete(&doc);
			return docs;
		}
		w.doc = &doc;
		v = walk_node(&w, root, 0);
		yaml_document_delete(&doc);
		if (!v) {
			json_decref(docs);
			return NULL;
		}
		json_array_append_new(docs, v);
	}
}

json_t *yamljson_load_string(const char *buf, size_t len, const char *name, struct error *err)
{
	yaml_parser_t p;
	json_t *docs;

	if (!yaml_parser_initialize(&p)) {
		error_set(err, ENOMEM, 500, "internal", "", "", "%s: out of memory", name);
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	docs = load(&p, name, err);
	yaml_parser_delete(&p);
	return docs;
}

json_t *yamljson_load_file(const char *path, struct error *err)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	const char *name = strcmp(path, "-") ? path : "<stdin>";
	yaml_parser_t p;
	json_t *docs;

	if (!f) {
		error_set(err, errno, 400, "invalid", "", path, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (!yaml_parser_initialize(&p)) {
		if (f != stdin)
			fclose(f);
		error_set(err, ENOMEM, 500, "internal", "", "", "%s: out of memory", name);
		return NULL;
	}
	yaml_parser_set_input_file(&p, f);
	docs = load(&p, name, err);
	yaml_parser_delete(&p);
	if (f != stdin)
		fclose(f);
	return docs;
}
