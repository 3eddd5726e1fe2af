/* SPDX-License-Identifier: MIT */
/*
 * DOC: the policy compiler's world
 *
 * What the compiler works from, built from larchd's lists (policy_world):
 * endpoints (sorted, indexed by namespace), blocks, tenants, hosts, parsed
 * policies and namespace documents (through a policy_cache when the caller
 * keeps one), and for every local endpoint the policies that select it, per
 * direction. Also the selector matching that building it and rendering
 * (lib/policy_compile.c) share.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hmap.h"
#include "policy.h"
#include "policy_int.h"

static int cmp_ep(const void *a, const void *b)
{
	return strcmp(((const struct w_ep *)a)->handle, ((const struct w_ep *)b)->handle);
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void lists_free(struct hmap *m);

void policy_world_free(struct world *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->neps; i++) {
		free(w->eps[i].pin);
		free(w->eps[i].pout);
	}
	for (size_t i = 0; i < w->npols && !w->cached; i++)
		policy_release(&w->pols[i]);
	for (size_t i = 0; i < w->nnss && !w->cached; i++)
		policy_release(&w->nss[i]);
	free(w->by_ns);
	free(w->nsl);
	lists_free(&w->lbl);
	lists_free(&w->pol_lbl);
	free(w->pol_by_ns);
	free(w->eps);
	free(w->blocks);
	free(w->tenants);
	free(w->hosts);
	free(w->pols);
	free(w->nss);
	json_decref(w->hold);
	free(w);
}

size_t policy_world_local(const struct world *w)
{
	return w->nlocal;
}

/* ---- matching ---- */

static bool in_values(const struct sel_expr *e, const char *v)
{
	for (size_t i = 0; i < e->nvalues; i++)
		if (!strcmp(e->values[i], v))
			return true;
	return false;
}

#define NS_NAME_LABEL "kubernetes.io/metadata.name"

/* A label's value. labels NULL: a namespace larchd has no document for,
 * which still has its name label, as in Kubernetes (ns). */
static const char *label(json_t *labels, const char *ns, const char *key)
{
	if (labels)
		return json_string_value(json_object_get(labels, key));
	return ns && !strcmp(key, NS_NAME_LABEL) ? ns : NULL;
}

static bool labels_match(const struct labelsel *s, json_t *labels, const char *ns)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct sel_expr *e = &s->e[i];
		const char *v = label(labels, ns, e->key);

		switch (e->op) {
		case SEL_IN:
			if (!v || !in_values(e, v))
				return false;
			break;
		case SEL_NOTIN:
			if (v && in_values(e, v))
				return false;
			break;
		case SEL_EXISTS:
			if (!v)
				return false;
			break;
		case SEL_NOTEXISTS:
			if (v)
				return false;
			break;
		}
	}
	return true;
}

static int cmp_ns_doc(const void *key, const void *doc)
{
	return strcmp(key, ((const struct policy *)doc)->name);
}

/* Do namespace ns's labels match? (w->nss is sorted by name) */
bool ns_match(const struct world *w, const struct labelsel *s, const char *ns)
{
	const struct policy *d = bsearch(ns, w->nss, w->nnss, sizeof(*w->nss), cmp_ns_doc);

	return labels_match(s, d ? d->labels : NULL, ns);
}

bool wns_match(const struct labelsel *s, const struct w_ns *ns)
{
	return labels_match(s, ns->labels, ns->name);
}

bool sel_match(const struct world *w, const struct epsel *s, const struct w_ep *e)
{
	if (s->tenant && strcmp(s->tenant, e->tenant))
		return false;
	if (s->segment && strcmp(s->segment, e->segment))
		return false;
	if (s->handle && strcmp(s->handle, e->handle))
		return false;
	if (s->ns && (!e->ns || strcmp(s->ns, e->ns)))
		return false;
	if (s->has_pods && !labels_match(&s->pods, e->labels, NULL))
		return false;
	if (s->has_nss && (!e->ns || !(e->wns ? wns_match(&s->nss, e->wns) :
					      ns_match(w, &s->nss, e->ns))))
		return false;
	if (s->sg) {
		size_t i;
		json_t *v;
		bool found = false;

		json_array_foreach(e->sgs, i, v)
			if (json_is_string(v) && !strcmp(json_string_value(v), s->sg))
				found = true;
		if (!found)
			return false;
	}
	return true;
}

/* ---- indexes ---- */

static int nscmp(const char *a, const char *b)
{
	return !a ? (b ? -1 : 0) : !b ? 1 : strcmp(a, b);
}

struct ns_rank {
	const char *name;
	size_t rank;
};

static bool eq_ns_rank(const void *val, const void *key)
{
	return !strcmp(((const struct ns_rank *)val)->name, key);
}

static int cmp_ns_rank(const void *a, const void *b)
{
	return strcmp((*(struct ns_rank *const *)a)->name, (*(struct ns_rank *const *)b)->name);
}

/* Each namespace's place in name order (1 and up; 0: none), found once. */
static size_t ns_rank_of(const struct hmap *m, const char *ns)
{
	const struct ns_rank *r = ns ? hmap_find(m, hash_key(ns), eq_ns_rank, ns) : NULL;

	return r ? r->rank : 0;
}

/* Stable counting sort of n items by rank (0..nr): order[] gets them. */
static int by_rank(const size_t *rank, size_t n, size_t nr, size_t *order)
{
	size_t *at = calloc(nr + 2, sizeof(*at));

	if (!at)
		return -1;
	for (size_t i = 0; i < n; i++)
		at[rank[i] + 1]++;
	for (size_t r = 1; r <= nr + 1; r++)
		at[r] += at[r - 1];
	for (size_t i = 0; i < n; i++)
		order[at[rank[i]]++] = i;
	free(at);
	return 0;
}

/*
 * w->by_ns (endpoints by namespace, then handle: w->eps is in handle
 * order) and w->pol_by_ns (policies by the namespace they apply in, then
 * document order), no namespace first: the distinct namespaces sorted by
 * name, then each list in one counting pass, not a sort comparing names.
 */
static int ns_order(struct world *w)
{
	struct hmap m = HMAP_INIT;
	struct ns_rank **v = NULL, *r;
	size_t nv = 0, *rank = NULL, *order = NULL, n = w->neps > w->npols ? w->neps : w->npols;
	size_t it = 0;
	int ret = -1;

	if (!(rank = calloc(n + 1, sizeof(*rank))) || !(order = calloc(n + 1, sizeof(*order))))
		goto out;
	for (size_t i = 0; i < w->neps + w->npols; i++) {
		const char *ns = i < w->neps ? w->eps[i].ns : w->pols[i - w->neps].applies.ns;
		uint64_t h;
		size_t slot;

		if (!ns || hmap_lookup(&m, h = hash_key(ns), eq_ns_rank, ns, &slot))
			continue;
		if (!(r = malloc(sizeof(*r))) || hmap_insert_at(&m, slot, h, r) < 0) {
			free(r);
			goto out;
		}
		r->name = ns;
		nv++;
	}
	if (!(v = calloc(nv + 1, sizeof(*v))))
		goto out;
	nv = 0;
	while ((r = hmap_next(&m, &it)))
		v[nv++] = r;
	qsort(v, nv, sizeof(*v), cmp_ns_rank);
	for (size_t i = 0; i < nv; i++)
		v[i]->rank = i + 1;
	for (size_t i = 0; i < w->neps; i++)
		rank[i] = ns_rank_of(&m, w->eps[i].ns);
	if (by_rank(rank, w->neps, nv, order) < 0)
		goto out;
	for (size_t i = 0; i < w->neps; i++)
		w->by_ns[i] = &w->eps[order[i]];
	for (size_t k = 0; k < w->npols; k++)
		rank[k] = ns_rank_of(&m, w->pols[k].applies.ns);
	if (by_rank(rank, w->npols, nv, w->pol_by_ns) < 0)
		goto out;
	ret = 0;
out:
	for (size_t i = 0; v && i < nv; i++)
		free(v[i]);
	if (!v) {
		it = 0;
		while ((r = hmap_next(&m, &it)))
			free(r);
	}
	hmap_release(&m);
	free(v);
	free(rank);
	free(order);
	return ret;
}

/* [*lo, *hi) of the n entries, sorted by namespace, whose namespace
 * (ns_at(w, i)) is ns: two binary searches. */
void ns_range(const struct world *w, size_t n, const char *(*ns_at)(const struct world *, size_t),
		     const char *ns, size_t *lo, size_t *hi)
{
	for (int upper = 0; upper < 2; upper++) {
		size_t a = upper ? *lo : 0, b = n;

		while (a < b) {
			size_t m = (a + b) / 2;
			int c = nscmp(ns_at(w, m), ns);

			if (c < 0 || (upper && c == 0))
				a = m + 1;
			else
				b = m;
		}
		*(upper ? hi : lo) = a;
	}
}

/* w->nsl: the namespaces of the endpoints in by_ns order, each with its
 * range and its document's labels, found once (not per selector and
 * endpoint); each endpoint points at its own. */
static int ns_index(struct world *w)
{
	size_t n = 0;

	if (!(w->nsl = calloc(w->neps + 1, sizeof(*w->nsl))))
		return -1;
	for (size_t i = 0, j; i < w->neps; i = j) {
		const char *ns = w->by_ns[i]->ns;
		const struct policy *d;

		for (j = i + 1; j < w->neps && !nscmp(w->by_ns[j]->ns, ns); j++)
			;
		if (!ns)
			continue;
		d = bsearch(ns, w->nss, w->nnss, sizeof(*w->nss), cmp_ns_doc);
		w->nsl[n] = (struct w_ns){ ns, d ? d->labels : NULL, i, j };
		for (size_t k = i; k < j; k++)
			w->by_ns[k]->wns = &w->nsl[n];
		n++;
	}
	w->nnsl = n;
	return 0;
}

/* a, '\n', b [, '\n', c] into buf, or malloc'd when longer (*heap); NULL:
 * out of memory. The keys of the label and policy indexes, per endpoint
 * and label: no format to parse. */
static char *join(const char *a, const char *b, const char *c, char *buf, size_t len,
		  char **heap)
{
	size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0, n = la + 1 + lb + (c ? 1 + lc : 0);
	char *out = buf;

	*heap = NULL;
	if (n + 1 > len && !(out = *heap = malloc(n + 1)))
		return NULL;
	memcpy(out, a, la);
	out[la] = '\n';
	memcpy(out + la + 1, b, lb);
	if (c) {
		out[la + 1 + lb] = '\n';
		memcpy(out + la + 2 + lb, c, lc);
	}
	out[n] = '\0';
	return out;
}

static bool eq_list(const void *val, const void *key)
{
	return !strcmp(((const struct w_list *)val)->key, key);
}

/* The entry of m for join(a, b, c), or NULL. */
static const struct w_list *list_find(const struct hmap *m, const char *a, const char *b,
				      const char *c)
{
	char buf[256], *heap, *k = join(a, b, c, buf, sizeof(buf), &heap);
	const struct w_list *l = k ? hmap_find(m, hash_key(k), eq_list, k) : NULL;

	free(heap);
	return l;
}

/* v appended to the entry of m for join(a, b, c) (once when given twice in
 * a row). -1: out of memory. */
static int list_add(struct hmap *m, const char *a, const char *b, const char *c, size_t v)
{
	char buf[256], *heap, *k = join(a, b, c, buf, sizeof(buf), &heap);
	struct w_list *l;
	uint64_t h;
	size_t slot;

	if (!k)
		return -1;
	h = hash_key(k);
	if (!(l = hmap_lookup(m, h, eq_list, k, &slot))) {
		if (!(l = calloc(1, sizeof(*l))) || !(l->key = strdup(k)) ||
		    hmap_insert_at(m, slot, h, l) < 0) {
			if (l)
				free(l->key);
			free(l);
			free(heap);
			return -1;
		}
	}
	free(heap);
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8, *t = realloc(l->idx, cap * sizeof(*t));

		if (!t)
			return -1;
		l->idx = t;
		l->cap = cap;
	}
	if (!l->n || l->idx[l->n - 1] != v)
		l->idx[l->n++] = v;
	return 0;
}

static void lists_free(struct hmap *m)
{
	struct w_list *l;
	size_t it = 0;

	while ((l = hmap_next(m, &it))) {
		free(l->key);
		free(l->idx);
		free(l);
	}
	hmap_release(m);
}

const struct w_list *label_eps(const struct world *w, const char *key, const char *value)
{
	return list_find(&w->lbl, key, value, NULL);
}

/* w->lbl: for each label (key and value), the endpoints that carry it, in
 * by_ns order (by namespace: label_range) */
static int label_index(struct world *w)
{
	for (size_t i = 0; i < w->neps; i++) {
		struct w_ep *e = w->by_ns[i];
		const char *k;
		json_t *v;

		json_object_foreach(e->labels, k, v)
			if (json_is_string(v) &&
			    list_add(&w->lbl, k, json_string_value(v), NULL, (size_t)(e - w->eps)) < 0)
				return -1;
	}
	return 0;
}

/* an endpoint's place in the namespace order: 0 for none, else 1 + the
 * index of its namespace in w->nsl */
static size_t ns_rank(const struct world *w, const struct w_ep *e)
{
	return e->wns ? (size_t)(e->wns - w->nsl) + 1 : 0;
}

void label_range(const struct world *w, const struct w_list *l, const char *ns, size_t *lo,
		 size_t *hi)
{
	size_t a = 0, b = 0, rank;

	*lo = *hi = 0;
	if (!l || !ns)
		return;
	/* the namespace's rank: any of its endpoints tells */
	ns_range(w, w->neps, ep_ns, ns, &a, &b);
	if (a == b)
		return;
	rank = ns_rank(w, w->by_ns[a]);
	for (int upper = 0; upper < 2; upper++) {
		size_t x = upper ? *lo : 0, y = l->n;

		while (x < y) {
			size_t m = (x + y) / 2, r = ns_rank(w, &w->eps[l->idx[m]]);

			if (r < rank || (upper && r == rank))
				x = m + 1;
			else
				y = m;
		}
		*(upper ? hi : lo) = x;
	}
}

const char *ep_ns(const struct world *w, size_t i)
{
	return w->by_ns[i]->ns;
}

static const char *pol_ns(const struct world *w, size_t i)
{
	return w->pols[w->pol_by_ns[i]].applies.ns;
}

static int cmp_ns_name(const void *a, const void *b)
{
	return strcmp(((const struct policy *)a)->name, ((const struct policy *)b)->name);
}

/* ---- building the world ---- */

static int push_idx(size_t **v, size_t *n, size_t x)
{
	size_t *p = realloc(*v, (*n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	p[(*n)++] = x;
	*v = p;
	return 0;
}

struct pc_ent {
	json_t *doc;        /* a reference: its address is the key */
	struct policy p;
	unsigned gen;       /* the last policy_world call that used it */
};

/* An endpoint document as the compiler reads it (ep_parse), kept while
 * the document is in the lists. */
struct ep_ent {
	json_t *doc;        /* a reference: its address is the key */
	struct w_ep e;
	bool taken;         /* ep_parse took it */
	unsigned gen;
};

struct policy_cache {
	struct hmap m;      /* struct pc_ent */
	struct hmap eps;    /* struct ep_ent, when host is set */
	const char *host;
	void (*ifname)(const char *handle, char out[16]);
	unsigned gen;
};

struct policy_cache *policy_cache_new(void)
{
	return calloc(1, sizeof(struct policy_cache));
}

void policy_cache_endpoints(struct policy_cache *pc, const char *host,
			    void (*ifname)(const char *handle, char out[16]))
{
	pc->host = host;
	pc->ifname = ifname;
}

static void pc_drop(struct pc_ent *e)
{
	policy_release(&e->p);
	json_decref(e->doc);
	free(e);
}

void policy_cache_free(struct policy_cache *pc)
{
	struct pc_ent *e;
	size_t it = 0;

	if (!pc)
		return;
	while ((e = hmap_next(&pc->m, &it)))
		pc_drop(e);
	hmap_release(&pc->m);
	it = 0;
	{
		struct ep_ent *x;

		while ((x = hmap_next(&pc->eps, &it))) {
			json_decref(x->doc);
			free(x);
		}
	}
	hmap_release(&pc->eps);
	free(pc);
}

static uint64_t hash_doc(const json_t *doc)
{
	return hash_mix((uint64_t)(uintptr_t)doc, 0x9e3779b97f4a7c15ULL);
}

static bool eq_doc(const void *val, const void *key)
{
	return ((const struct pc_ent *)val)->doc == key;
}

static bool eq_ep_doc(const void *val, const void *key)
{
	return ((const struct ep_ent *)val)->doc == key;
}

/* Endpoint document o as ep_parse reads it, parsed once while o is in the
 * lists (pc's host), marked used by this generation. NULL: out of memory. */
static const struct ep_ent *ep_cached(struct policy_cache *pc, json_t *o)
{
	struct ep_ent *x;
	size_t slot;

	if (!(x = hmap_lookup(&pc->eps, hash_doc(o), eq_ep_doc, o, &slot))) {
		if (!(x = calloc(1, sizeof(*x))))
			return NULL;
		x->taken = ep_parse(o, pc->host, pc->ifname, &x->e);
		if (hmap_insert_at(&pc->eps, slot, hash_doc(o), x) < 0) {
			free(x);
			return NULL;
		}
		x->doc = json_incref(o);
	}
	x->gen = pc->gen;
	return x;
}

int policy_cache_ep(struct policy_cache *pc, json_t *doc)
{
	if (!pc->host)
		return 0;
	return ep_cached(pc, doc) ? 0 : -1;
}

/* Document o parsed into *out: from pc when it has o, else parsed (and
 * kept in pc). Without pc, *out is the caller's to release. */
static int parse_doc(struct policy_cache *pc, json_t *o, struct policy *out, struct error *err)
{
	struct pc_ent *e;
	size_t slot;

	if (!pc)
		return policy_parse(o, out, err);
	if (!(e = hmap_lookup(&pc->m, hash_doc(o), eq_doc, o, &slot))) {
		if (!(e = calloc(1, sizeof(*e))))
			goto oom;
		if (policy_parse(o, &e->p, err) < 0) {
			free(e);
			return -1;
		}
		if (hmap_insert_at(&pc->m, slot, hash_doc(o), e) < 0) {
			policy_release(&e->p);
			free(e);
			goto oom;
		}
		e->doc = json_incref(o);
	}
	e->gen = pc->gen;
	*out = e->p;
	return 0;
oom:
	error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	return -1;
}

char *policy_cache_id(struct policy_cache *pc, json_t *doc, struct error *err)
{
	struct policy p;
	char *id;

	if (parse_doc(pc, doc, &p, err) < 0)
		return NULL;
	if (!(id = policy_id(&p)))
		error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	if (!pc)
		policy_release(&p);
	return id;
}

/* Drop the documents the last call was not given. */
static void pc_sweep(struct policy_cache *pc)
{
	struct pc_ent *e;
	size_t it = 0;

	while ((e = hmap_next(&pc->m, &it)))
		if (e->gen != pc->gen) {
			hmap_remove(&pc->m, hash_doc(e->doc), eq_doc, e->doc);
			pc_drop(e);
		}
	it = 0;
	{
		struct ep_ent *x;

		while ((x = hmap_next(&pc->eps, &it)))
			if (x->gen != pc->gen) {
				hmap_remove(&pc->eps, hash_doc(x->doc), eq_ep_doc, x->doc);
				json_decref(x->doc);
				free(x);
			}
	}
}

/* Endpoint document o into *e (pointers into o); false when it is not one
 * the compiler takes (no handle, tenant or segment). At most two addresses
 * (one per family). */
bool ep_parse(json_t *o, const char *host, void (*ifname)(const char *handle, char out[16]),
	      struct w_ep *e)
{
	json_t *a;
	size_t j;

	memset(e, 0, sizeof(*e));
	e->handle = str(o, "handle");
	e->tenant = str(o, "tenant");
	e->segment = str(o, "segment");
	e->host = str(o, "host");
	e->ns = str(o, "namespace");
	e->labels = json_object_get(o, "labels");
	e->sgs = json_object_get(o, "security_groups");
	if (!e->handle || !e->tenant || !e->segment)
		return false;
	json_array_foreach(json_object_get(o, "addresses"), j, a) {
		if (e->na < 2 && str(a, "address") &&
		    prefix_parse(str(a, "address"), &e->a[e->na], 0, "address", NULL) == 0)
			e->na++;
	}
	e->local = host && e->host && !strcmp(e->host, host);
	if (e->local)
		ifname(e->handle, e->ifname);
	return true;
}

/* w->pol_lbl: the policies of each namespace by the first label their
 * subjects must carry (one list per value it may have), or with the
 * others of the namespace; in document order. An endpoint's candidates
 * are then those of its labels, not all of its namespace's. */
static int policy_index(struct world *w)
{
	for (size_t k = 0; k < w->npols; k++) {
		const struct epsel *a = &w->pols[k].applies;
		const struct sel_expr *by = NULL;

		if (!a->ns)
			continue; /* ep_policies takes these all */
		for (size_t i = 0; a->has_pods && !by && i < a->pods.n; i++)
			if (a->pods.e[i].op == SEL_IN)
				by = &a->pods.e[i];
		if (!by) {
			if (list_add(&w->pol_lbl, a->ns, "", NULL, k) < 0)
				return -1;
			continue;
		}
		for (size_t i = 0; i < by->nvalues; i++)
			if (list_add(&w->pol_lbl, a->ns, by->key, by->values[i], k) < 0)
				return -1;
	}
	return 0;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return (x > y) - (x < y);
}

/* Which policies select local endpoint e, per direction (e->pin, e->pout):
 * those of any namespace, then those of the endpoint's, in document order.
 * -1 on out of memory. */
int ep_policies(const struct world *w, struct w_ep *e)
{
	size_t lo0, hi0, lo, hi, *cand, nc = 0;
	int r = 0;

	ns_range(w, w->npols, pol_ns, NULL, &lo0, &hi0);
	if (e->ns)
		ns_range(w, w->npols, pol_ns, e->ns, &lo, &hi);
	else
		lo = hi = 0;
	/* those of any namespace, then of the endpoint's namespace: the others
	 * and those of its labels (policy_index); in document order, each once */
	if (!(cand = malloc((hi0 - lo0 + hi - lo + 1) * sizeof(*cand))))
		return -1;
	while (lo0 < hi0)
		cand[nc++] = w->pol_by_ns[lo0++];
	if (lo < hi) {
		const struct w_list *l = list_find(&w->pol_lbl, e->ns, "", NULL);
		size_t first = nc, m = 0;
		const char *k;
		json_t *v;

		for (size_t i = 0; l && i < l->n && nc < first + hi - lo; i++)
			cand[nc++] = l->idx[i];
		json_object_foreach(e->labels, k, v) {
			if (!json_is_string(v))
				continue;
			l = list_find(&w->pol_lbl, e->ns, k, json_string_value(v));
			for (size_t i = 0; l && i < l->n && nc < first + hi - lo; i++)
				cand[nc++] = l->idx[i];
		}
		/* merged with those of any namespace */
		qsort(cand, nc, sizeof(*cand), cmp_size);
		for (size_t i = 0; i < nc; i++)
			if (!m || cand[i] != cand[m - 1])
				cand[m++] = cand[i];
		nc = m;
	}
	for (size_t c = 0; c < nc && r == 0; c++) {
		const struct policy *p = &w->pols[cand[c]];

		if (!sel_match(w, &p->applies, e))
			continue;
		if ((p->ingress && push_idx(&e->pin, &e->npin, cand[c]) < 0) ||
		    (p->egress && push_idx(&e->pout, &e->npout, cand[c]) < 0))
			r = -1;
	}
	free(cand);
	return r;
}

/*
 * Local endpoints that no selector can tell apart (the same tenant,
 * segment, namespace, labels and security groups) are selected by the same
 * policies: ep_policies (a selector match per policy of the namespace) runs
 * once for each such group, the others copy its lists. Not when a policy
 * selects an endpoint by its handle (any_handle), nor for labels that are
 * not all strings.
 */
static bool ep_sel_hash(const struct w_ep *e, uint64_t *h)
{
	const char *k;
	json_t *v;
	size_t i;
	uint64_t lh = 0;

	json_object_foreach(e->labels, k, v) {
		if (!json_is_string(v))
			return false;
		lh ^= hash_mix(hash_key(k), hash_key(json_string_value(v)));
	}
	*h = hash_mix(hash_mix(hash_key(e->tenant), hash_key(e->segment)),
		      hash_mix(e->ns ? hash_key(e->ns) : 1, lh));
	json_array_foreach(e->sgs, i, v)
		*h = hash_mix(*h, json_is_string(v) ? hash_key(json_string_value(v)) : 2);
	return true;
}

static bool json_same(json_t *a, json_t *b)
{
	return (!a || !b) ? a == b : json_equal(a, b);
}

static bool eq_ep_sel(const void *val, const void *key)
{
	const struct w_ep *a = val, *b = key;

	return !strcmp(a->tenant, b->tenant) && !strcmp(a->segment, b->segment) &&
	       (a->ns && b->ns ? !strcmp(a->ns, b->ns) : a->ns == b->ns) &&
	       json_same(a->labels, b->labels) && json_same(a->sgs, b->sgs);
}

static int copy_idx(size_t **dst, size_t *nd, const size_t *src, size_t n)
{
	*nd = n;
	if (!n)
		return 0;
	if (!(*dst = malloc(n * sizeof(**dst))))
		return -1;
	memcpy(*dst, src, n * sizeof(**dst));
	return 0;
}

/* ep_policies for every local endpoint of w, once per group of alike ones */
static int all_ep_policies(struct world *w)
{
	struct hmap seen = HMAP_INIT;
	bool any_handle = false;
	int r = 0;

	for (size_t k = 0; k < w->npols && !any_handle; k++)
		any_handle = w->pols[k].applies.handle != NULL;
	for (size_t i = 0; i < w->neps && r == 0; i++) {
		struct w_ep *e = &w->eps[i], *like;
		uint64_t h;
		size_t slot;

		if (!e->local)
			continue;
		if (any_handle || !ep_sel_hash(e, &h)) {
			r = ep_policies(w, e);
			continue;
		}
		if ((like = hmap_lookup(&seen, h, eq_ep_sel, e, &slot))) {
			if (copy_idx(&e->pin, &e->npin, like->pin, like->npin) < 0 ||
			    copy_idx(&e->pout, &e->npout, like->pout, like->npout) < 0)
				r = -1;
			continue;
		}
		if ((r = ep_policies(w, e)) == 0 && hmap_insert_at(&seen, slot, h, e) < 0)
			r = -1;
	}
	hmap_release(&seen);
	return r;
}

struct world *policy_world(json_t *tenants, json_t *blocks, json_t *hosts, json_t *endpoints,
			   json_t *policies, json_t *namespaces, const char *host,
			   void (*ifname)(const char *handle, char out[16]),
			   struct policy_cache *pc, struct error *err)
{
	struct world *w = calloc(1, sizeof(*w));
	size_t i;
	json_t *o;

	if (!w)
		goto oom;
	w->hold = json_pack("[OOOOOO]", tenants, blocks, hosts, endpoints, policies, namespaces);
	w->host = host;
	w->ifname = ifname;
	w->eps = calloc(json_array_size(endpoints) + 1, sizeof(*w->eps));
	w->blocks = calloc(json_array_size(blocks) + 1, sizeof(*w->blocks));
	w->tenants = calloc(json_array_size(tenants) + 1, sizeof(*w->tenants));
	w->hosts = calloc(json_array_size(hosts) + 1, sizeof(*w->hosts));
	w->pols = calloc(json_array_size(policies) + 1, sizeof(*w->pols));
	/* Namespace documents may come in either list */
	w->nss = calloc(json_array_size(namespaces) + json_array_size(policies) + 1,
			sizeof(*w->nss));
	if (!w->hold || !w->eps || !w->blocks || !w->tenants || !w->hosts || !w->pols || !w->nss)
		goto oom;
	json_array_foreach(tenants, i, o) {
		const char *iso = str(o, "isolation");

		w->tenants[w->ntenants].name = str(o, "name");
		if (iso && isolation_parse(iso, &w->tenants[w->ntenants].iso) < 0) {
			error_invalid(err, "isolation", iso, "tenant %s: isolation %s is unknown",
				      str(o, "name"), iso);
			goto fail;
		}
		w->ntenants++;
	}
	json_array_foreach(blocks, i, o) {
		struct w_block *b = &w->blocks[w->nblocks];

		b->tenant = str(o, "tenant");
		b->segment = str(o, "segment");
		if (!b->tenant || !b->segment || !str(o, "cidr") ||
		    prefix_parse(str(o, "cidr"), &b->cidr, 0, "cidr", err) < 0)
			goto fail;
		w->nblocks++;
	}
	json_array_foreach(hosts, i, o)
		if (str(o, "address") && prefix_parse(str(o, "address"), &w->hosts[w->nhosts], 0,
						      "address", NULL) == 0)
			w->nhosts++;
	if (pc)
		pc->gen++;
	json_array_foreach(endpoints, i, o) {
		struct w_ep *e = &w->eps[w->neps];

		if (pc && pc->host && !strcmp(pc->host, host ? host : "") && pc->ifname == ifname) {
			/* parsed when it came (kept.c), or now and kept */
			const struct ep_ent *x = ep_cached(pc, o);

			if (!x)
				goto oom;
			if (!x->taken)
				continue;
			*e = x->e;
		} else if (!ep_parse(o, host, ifname, e)) {
			continue;
		}
		if (e->local)
			w->nlocal++;
		w->neps++;
	}
	qsort(w->eps, w->neps, sizeof(*w->eps), cmp_ep);
	w->cached = pc != NULL;
	json_array_foreach(policies, i, o) {
		if (parse_doc(pc, o, &w->pols[w->npols], err) < 0)
			goto fail;
		if (w->pols[w->npols].kind == PK_NAMESPACE) {
			w->nss[w->nnss++] = w->pols[w->npols];
			continue;
		}
		w->npols++;
	}
	json_array_foreach(namespaces, i, o) {
		if (parse_doc(pc, o, &w->nss[w->nnss], err) < 0)
			goto fail;
		w->nnss++;
	}
	if (pc)
		pc_sweep(pc);
	qsort(w->nss, w->nnss, sizeof(*w->nss), cmp_ns_name);
	w->by_ns = calloc(w->neps + 1, sizeof(*w->by_ns));
	w->pol_by_ns = calloc(w->npols + 1, sizeof(*w->pol_by_ns));
	if (!w->by_ns || !w->pol_by_ns)
		goto oom;
	if (ns_order(w) < 0 || ns_index(w) < 0 || label_index(w) < 0 || policy_index(w) < 0)
		goto oom;
	/* which policies select each local endpoint, per direction: those of
	 * any namespace, then those of the endpoint's, in document order */
	if (all_ep_policies(w) < 0)
		goto oom;
	return w;
oom:
	error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
fail:
	policy_world_free(w);
	if (pc)
		pc_sweep(pc); /* as on success: what this call did not use goes */
	return NULL;
}
