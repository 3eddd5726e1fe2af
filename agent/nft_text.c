/* SPDX-License-Identifier: MIT */
/*
 * DOC: the rendered nftables text, read back into sets, maps and chains
 * (nft_rs_parse; see agent/nft.h): only the dialect the compiler writes.
 */
#include "nft_int.h"

/* ---- the text, read back ---- */



static uint64_t name_hash(bool chain, const char *name)
{
	return hash_mix(hash_str(name), chain);
}

struct name_key {
	bool chain;
	const char *name;
};

static bool eq_name(const void *val, const void *key)
{
	const struct obj *o = val;
	const struct name_key *k = key;

	return is_chain(o) == k->chain && !strcmp(o->name, k->name);
}

const struct obj *rs_find(const struct nft_rs *rs, bool chain, const char *name)
{
	struct name_key k = { chain, name };

	return hmap_find(&rs->names, name_hash(chain, name), eq_name, &k);
}

int rs_index(struct nft_rs *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		if (hmap_insert(&rs->names, name_hash(is_chain(&rs->o[i]), rs->o[i].name),
				&rs->o[i]) < 0)
			return -1;
	return 0;
}

char *const *nft_rs_map(const struct nft_rs *rs, const char *name, size_t *n)
{
	const struct obj *o = rs_find(rs, false, name);

	*n = o ? o->n : 0;
	return o ? o->item : NULL;
}

void nft_rs_free(struct nft_rs *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++) {
		struct obj *o = &rs->o[i];

		for (size_t k = 0; !o->borrowed && k < o->n; k++)
			free(o->item[k]);
		if (!o->borrowed)
			free(o->item);
		free(o->name);
		free(o->type);
		free(o->comment);
	}
	free(rs->o);
	free(rs->table);
	rs_tables_free(rs);
	hmap_release(&rs->names);
	free(rs);
}

static int push(struct obj *o, const char *s, size_t len)
{
	char *c;

	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 8;
		char **v = realloc(o->item, cap * sizeof(*v));

		if (!v)
			return -1;
		o->item = v;
		o->cap = cap;
	}
	if (!(c = strndup(s, len)))
		return -1;
	o->item[o->n++] = c;
	return 0;
}

static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* One line of "elements = { a, b,\n c }": its elements; *more while the
 * closing brace is still to come. */
static int elem_line(struct obj *o, char *s, bool *more)
{
	size_t n;

	s = trim(s);
	n = strlen(s);
	*more = !(n && s[n - 1] == '}');
	if (!*more)
		s[n - 1] = '\0';
	while (s) {
		char *c = strchr(s, ','), *e;

		if (c)
			*c++ = '\0';
		e = trim(s);
		if (*e && push(o, e, strlen(e)) < 0)
			return -1;
		s = c;
	}
	return 0;
}

static struct obj *new_obj(struct nft_rs *rs, enum obj_kind kind, const char *name)
{
	struct obj *o;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 64;
		struct obj *v = realloc(rs->o, cap * sizeof(*v));

		if (!v)
			return NULL;
		rs->o = v;
		rs->cap = cap;
	}
	o = &rs->o[rs->n];
	*o = (struct obj){ .kind = kind, .name = strdup(name) };
	if (!o->name)
		return NULL;
	rs->n++;
	return o;
}

struct nft_rs *nft_rs_parse(const char *text, char *err, size_t errlen)
{
	struct nft_rs *rs = calloc(1, sizeof(*rs));
	char *copy = strdup(text), *line, *next;
	struct obj *cur = NULL;
	bool in_table = false, in_elems = false, done = false;
	const char *why = "cannot read";
	char *deleted = NULL; /* the table a "delete table" line names */
	int ln = 0;

	if (!rs || !copy) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (line = copy; line && *line; line = next) {
		char kw[8], name[256], *t;
		int pos = 0;

		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		ln++;
		if (in_elems) {
			if (elem_line(cur, line, &in_elems) < 0)
				goto oom;
			continue;
		}
		if (!*line || *line == '#')
			continue;
		if (!in_table) {
			if (sscanf(line, "table inet %255s {%n", name, &pos) == 1 && pos &&
			    !line[pos]) {
				if (next && next[0] == '}' && (next[1] == '\n' || !next[1])) {
					/* "table inet T {" "}": creates it, if missing */
					next = strchr(next, '\n');
					next = next ? next + 1 : NULL;
					ln++;
					continue;
				}
				if (done) {
					why = "a second table";
					goto bad;
				}
				if (!(rs->table = strdup(name)))
					goto oom;
				in_table = true;
				continue;
			}
			if (sscanf(line, "delete table inet %255s%n", name, &pos) == 1 && !line[pos] &&
			    !deleted) {
				if (!(deleted = strdup(name)))
					goto oom;
				continue;
			}
			why = "not a table";
			goto bad;
		}
		if (!cur && !strcmp(line, "}")) {
			in_table = false;
			done = true;
			continue;
		}
		if (!cur) {
			enum obj_kind kind;

			if (sscanf(line, "\t%7s %255s {%n", kw, name, &pos) != 2 || !pos || line[pos]) {
				why = "not a set, map or chain";
				goto bad;
			}
			if (!strcmp(kw, "set"))
				kind = O_SET;
			else if (!strcmp(kw, "map"))
				kind = O_MAP;
			else if (!strcmp(kw, "chain"))
				kind = O_CHAIN;
			else {
				why = "not a set, map or chain";
				goto bad;
			}
			if (!(cur = new_obj(rs, kind, name)))
				goto oom;
			continue;
		}
		if (!strcmp(line, "\t}")) {
			cur = NULL;
			continue;
		}
		t = trim(line);
		if (!strncmp(t, "type ", 5) && !cur->type && !cur->n) {
			if (!(cur->type = strdup(t + 5)))
				goto oom;
		} else if (!strcmp(t, "flags interval") && cur->kind == O_SET && !cur->n) {
			cur->interval = true;
		} else if (!strncmp(t, "comment \"", 9) && strlen(t) > 9 && t[strlen(t) - 1] == '"' &&
			   !strchr(t + 9, '"')[1] && !cur->comment && !cur->n) {
			if (!(cur->comment = strndup(t + 9, strlen(t) - 10)))
				goto oom;
		} else if (!strncmp(t, "elements = { ", 13) && !is_chain(cur) && !cur->n) {
			if (elem_line(cur, t + 13, &in_elems) < 0)
				goto oom;
		} else if (is_chain(cur)) {
			if (push(cur, t, strlen(t)) < 0)
				goto oom;
		} else {
			why = "not part of a set or map";
			goto bad;
		}
	}
	if (in_table || cur || in_elems || !rs->table) {
		why = "the table does not end";
		goto bad;
	}
	if (deleted && strcmp(deleted, rs->table)) {
		snprintf(err, errlen, "it deletes table %s but writes table %s", deleted, rs->table);
		goto fail;
	}
	for (size_t i = 0; i < rs->n; i++) {
		struct obj *o = &rs->o[i];

		if (rs_find(rs, is_chain(o), o->name)) {
			snprintf(err, errlen, "%s %s declared twice", is_chain(o) ? "chain" : "set",
				 o->name);
			goto fail;
		}
		if (hmap_insert(&rs->names, name_hash(is_chain(o), o->name), o) < 0)
			goto oom;
	}
	free(copy);
	free(deleted);
	return rs;
bad:
	snprintf(err, errlen, "line %d: %s", ln, why);
	goto fail;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	free(copy);
	free(deleted);
	nft_rs_free(rs);
	return NULL;
}
