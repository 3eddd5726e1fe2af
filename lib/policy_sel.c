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

/* What a selector means, as text, the family aside (malloc'd; NULL: out of
 * memory). */
static char *sel_key_base(const struct epsel *s)
{
	const char *const parts[] = { s->tenant, s->segment, s->ns, s->handle, s->sg };
	struct kbuf b = {0};

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

/* What a selector means, as text: equal keys select the same endpoints.
 * The compiler asks for it once per peer and rule; a parsed policy keeps
 * the part after the family (sel_keys_keep). */
char *sel_key(const struct epsel *s, uint8_t family)
{
	char *base = s->key ? s->key : sel_key_base(s), *k;
	size_t n;

	if (!base)
		return NULL;
	n = strlen(base);
	if ((k = malloc(n + 4))) {
		int l = snprintf(k, 4, "%u", family);

		memcpy(k + l, base, n + 1);
	}
	if (base != s->key)
		free(base);
	return k;
}

char *labelsel_key(const struct labelsel *s)
{
	struct kbuf b = {0};

	kb_put(&b, "");
	key_sel(&b, s);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

char *sel_key_into(const struct epsel *s, uint8_t family, char *buf, size_t len)
{
	size_t n;

	if (!s->key || family > 9 || (n = strlen(s->key)) + 2 > len)
		return NULL;
	buf[0] = (char)('0' + family);
	memcpy(buf + 1, s->key, n + 1);
	return buf;
}

static int keep_key(struct epsel *s)
{
	free(s->key);
	return (s->key = sel_key_base(s)) ? 0 : -1;
}

static int keep_keys(struct rule *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < v[i].npeers; j++)
			if (v[i].peers[j].type == PEER_EPS && keep_key(&v[i].peers[j].sel) < 0)
				return -1;
	return 0;
}

int sel_keys_keep(struct policy *p)
{
	if (keep_key(&p->applies) < 0 || keep_keys(p->in, p->nin) < 0 ||
	    keep_keys(p->out, p->nout) < 0)
		return -1;
	return 0;
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

