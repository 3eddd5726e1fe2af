/* SPDX-License-Identifier: MIT */
/*
 * DOC: a selector as text: sel_key (what it means: equal keys select the
 * same endpoints; the name of its set comes from it) and sel_describe (for
 * people: the set's comment)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_int.h"

/* A growing string, for the selector keys below (they are built for every
 * peer of every policy on every pass: open_memstream and fprintf cost more
 * than the matching). oom is set when it could not grow. */
struct kbuf {
	char *s;
	size_t n, cap;
	bool oom;
};

static void kb_put(struct kbuf *b, const char *s)
{
	size_t l = strlen(s);

	if (b->oom)
		return;
	if (b->n + l + 1 > b->cap) {
		size_t cap = (b->n + l + 1) * 2;
		char *t = realloc(b->s, cap);

		if (!t) {
			b->oom = true;
			return;
		}
		b->s = t;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, l + 1);
	b->n += l;
}

static void kb_uint(struct kbuf *b, unsigned v)
{
	char t[16], *p = t + sizeof(t);

	*--p = 0;
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	kb_put(b, p);
}

static void key_sel(struct kbuf *b, const struct labelsel *s)
{
	for (size_t i = 0; i < s->n; i++) {
		kb_put(b, "(");
		kb_put(b, s->e[i].key);
		kb_put(b, " ");
		kb_uint(b, (unsigned)s->e[i].op);
		for (size_t j = 0; j < s->e[i].nvalues; j++) {
			kb_put(b, " ");
			kb_put(b, s->e[i].values[j]);
		}
		kb_put(b, ")");
	}
}

/* What a selector means, as text: equal keys select the same endpoints. */
char *sel_key(const struct epsel *s, uint8_t family)
{
	const char *const parts[] = { s->tenant, s->segment, s->ns, s->handle, s->sg };
	struct kbuf b = {0};

	kb_uint(&b, family);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		kb_put(&b, "|");
		kb_put(&b, parts[i] ?: "");
	}
	kb_put(&b, "|");
	kb_uint(&b, s->has_pods);
	key_sel(&b, &s->pods);
	kb_put(&b, "|");
	kb_uint(&b, s->has_nss);
	key_sel(&b, &s->nss);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* A label selector for people: "app=web,tier in (a,b),!debug". */
static void put_labelsel(FILE *f, const struct labelsel *s)
{
	if (!s->n)
		fputs("all", f);
	for (size_t i = 0; i < s->n; i++) {
		const struct sel_expr *e = &s->e[i];

		if (i)
			fputc(',', f);
		if (e->op == SEL_EXISTS || e->op == SEL_NOTEXISTS) {
			fprintf(f, "%s%s", e->op == SEL_NOTEXISTS ? "!" : "", e->key);
		} else if (e->op == SEL_IN && e->nvalues == 1) {
			fprintf(f, "%s=%s", e->key, e->values[0]);
		} else {
			fprintf(f, "%s %s (", e->key, e->op == SEL_IN ? "in" : "notin");
			for (size_t j = 0; j < e->nvalues; j++)
				fprintf(f, "%s%s", j ? "," : "", e->values[j]);
			fputc(')', f);
		}
	}
}

/* What a selector set holds, for people; it depends on the selector only,
 * not on the policies that use it (a set outlives any one of them).
 * malloc'd. */
char *sel_describe(const struct epsel *s)
{
	char *d = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&d, &len);

	if (!f)
		return NULL;
	fputs("endpoints", f);
	if (s->handle)
		fprintf(f, " %s", s->handle);
	if (s->tenant)
		fprintf(f, " of %s%s%s", s->tenant, s->segment ? "/" : "", s->segment ? s->segment : "");
	if (s->ns)
		fprintf(f, " in namespace %s", s->ns);
	if (s->has_nss) {
		fputs(" in namespaces ", f);
		put_labelsel(f, &s->nss);
	}
	if (s->has_pods) {
		fputs(" with ", f);
		put_labelsel(f, &s->pods);
	}
	if (s->sg)
		fprintf(f, " in group %s", s->sg);
	if (fclose(f) != 0) {
		free(d);
		return NULL;
	}
	return d;
}

