/* SPDX-License-Identifier: MIT */
/*
 * DOC: model topology: spaces, groups, hosts, tenants, segments
 *
 * The slow-changing half of the model. Creating a group carves its prefix out
 * of its parent's region in every space (or out of the space itself for a
 * root group); creating a space carves a prefix for every existing group, in
 * creation order so parents come before children. Deletions are refused while
 * anything still depends on the object, so the tree never has dangling links.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "model.h"
#include "model_internal.h"
#include "policy.h"

/* ---- mtxn ---- */

void mtxn_init(struct mtxn *tx)
{
	memset(tx, 0, sizeof(*tx));
}

void mtxn_release(struct mtxn *tx)
{
	if (!tx)
		return;
	for (size_t i = 0; i < tx->n; i++) {
		free((char *)tx->ops[i].key);
		free((char *)tx->ops[i].value);
	}
	free(tx->ops);
	mtxn_init(tx);
}

static void mtxn_add(struct mtxn *tx, enum store_op_type type, char *key, char *value)
{
	if (!key || (type == STORE_PUT && !value))
		goto oom;
	if (tx->n == tx->cap) {
		size_t ncap = tx->cap ? tx->cap * 2 : 4;
		struct store_op *n = realloc(tx->ops, ncap * sizeof(*n));

		if (!n)
			goto oom;
		tx->ops = n;
		tx->cap = ncap;
	}
	tx->ops[tx->n++] = (struct store_op){ .type = type, .key = key, .value = value,
					      .value_len = value ? strlen(value) : 0 };
	return;
oom:
	free(key);
	free(value);
	tx->failed = true;
}

void mtxn_put(struct mtxn *tx, char *key, char *value)
{
	mtxn_add(tx, STORE_PUT, key, value);
}

void mtxn_del(struct mtxn *tx, char *key)
{
	mtxn_add(tx, STORE_DELETE, key, NULL);
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- names ---- */

int name_check(const char *field, const char *name, struct error *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0)
		return error_invalid(err, field, "", "%s: must not be empty", field);
	if (n > MODEL_NAME_MAX)
		return error_invalid(err, field, name, "%s: %.40s...: longer than %d characters",
				     field, name, MODEL_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (alnum)
			continue;
		if ((c == '-' || c == '.') && i > 0 && i < n - 1)
			continue;
		return error_invalid(err, field, name,
				     "%s: %s: must be lowercase letters, digits, '-' and '.', "
				     "starting and ending with a letter or digit", field, name);
	}
	return 0;
}

int handle_check(const char *field, const char *handle, struct error *err)
{
	size_t n = handle ? strlen(handle) : 0;

	if (n == 0)
		return error_invalid(err, field, "", "%s: must not be empty", field);
	if (n > MODEL_HANDLE_MAX)
		return error_invalid(err, field, "", "%s: longer than %d bytes", field,
				     MODEL_HANDLE_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = handle[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == ':' || c == '@' || c == '-')
			continue;
		return error_invalid(err, field, handle,
				     "%s: %s: only letters, digits and . _ : @ - are allowed",
				     field, handle);
	}
	return 0;
}

static const char *const kind_names[] = { "other", "pod", "vm", "container" };

const char *ep_kind_name(uint8_t kind)
{
	return kind < 4 ? kind_names[kind] : "other";
}

int ep_kind_parse(const char *s, uint8_t *kind)
{
	for (uint8_t i = 0; i < 4; i++)
		if (!strcmp(s, kind_names[i])) {
			*kind = i;
			return 0;
		}
	return -EINVAL;
}

/* ---- lookups ---- */

static bool eq_name(const void *val, const void *key)
{
	/* every named object starts with its name pointer */
	return !strcmp(*(char *const *)val, key);
}

struct seg_key {
	const char *tenant, *name;
};

static uint64_t hash_seg(const char *tenant, const char *name)
{
	return hash_mix(hash_str(tenant), hash_str(name));
}

static bool eq_segment(const void *val, const void *key)
{
	const struct segment *sg = val;
	const struct seg_key *k = key;

	return !strcmp(sg->name, k->name) && !strcmp(sg->tenant->name, k->tenant);
}

static bool eq_endpoint(const void *val, const void *key)
{
	return !strcmp(((const struct endpoint *)val)->handle, key);
}

struct space *model_space(const struct model *m, const char *name)
{
	for (size_t i = 0; i < m->nspaces; i++)
		if (!strcmp(m->spaces[i]->name, name))
			return m->spaces[i];
	return NULL;
}

struct group *model_group(const struct model *m, const char *name)
{
	return hmap_find(&m->groups, hash_str(name), eq_name, name);
}

struct host *model_host(const struct model *m, const char *name)
{
	return hmap_find(&m->hosts, hash_str(name), eq_name, name);
}

struct tenant *model_tenant(const struct model *m, const char *name)
{
	return hmap_find(&m->tenants, hash_str(name), eq_name, name);
}

struct segment *model_segment(const struct model *m, const char *tenant, const char *name)
{
	struct seg_key k = { tenant, name };

	return hmap_find(&m->segments, hash_seg(tenant, name), eq_segment, &k);
}

struct endpoint *model_endpoint(const struct model *m, const char *handle)
{
	return hmap_find(&m->endpoints, hash_str(handle), eq_endpoint, handle);
}

struct endpoint *model_endpoint_lookup(const struct model *m, const char *handle,
				       uint64_t *hash, size_t *slot)
{
	*hash = hash_str(handle);
	return hmap_lookup(&m->endpoints, *hash, eq_endpoint, handle, slot);
}

void model_endpoint_unindex(struct model *m, struct endpoint *e)
{
	hmap_remove(&m->endpoints, hash_str(e->handle), eq_endpoint, e->handle);
}

int model_endpoint_index(struct model *m, struct endpoint *e)
{
	return hmap_insert(&m->endpoints, hash_str(e->handle), e);
}

/* ---- life cycle ---- */

static int64_t default_now(void)
{
	return (int64_t)time(NULL);
}

int64_t model_now(const struct model *m)
{
	return m->opt.now ? m->opt.now() : default_now();
}

struct model *model_new(const struct model_options *opt)
{
	struct model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	if (opt)
		m->opt = *opt;
	return m;
}

static void space_free(struct space *s)
{
	if (!s)
		return;
	region_release(&s->root);
	hmap_release(&s->blocks);
	free(s->reserved);
	free(s->name);
	free(s);
}

static void group_free(struct group *g)
{
	if (!g)
		return;
	if (g->regions)
		for (size_t i = 0; i < MODEL_MAX_SPACES; i++)
			region_release(&g->regions[i]);
	free(g->regions);
	free(g->labels);
	free(g->name);
	free(g);
}

void model_free(struct model *m)
{
	void *v;
	size_t it;

	if (!m)
		return;
	it = 0;
	while ((v = hmap_next(&m->endpoints, &it)))
		endpoint_free(v);
	it = 0;
	while ((v = hmap_next(&m->buckets, &it)))
		bucket_free(v);
	it = 0;
	while ((v = hmap_next(&m->hosts, &it))) {
		free(((struct host *)v)->name);
		free(((struct host *)v)->labels);
		free(v);
	}
	it = 0;
	while ((v = hmap_next(&m->groups, &it)))
		group_free(v);
	it = 0;
	while ((v = hmap_next(&m->segments, &it))) {
		struct segment *sg = v;

		free(sg->name);
		free(sg->key);
		free(sg->labels);
		free(sg);
	}
	it = 0;
	while ((v = hmap_next(&m->tenants, &it))) {
		free(((struct tenant *)v)->name);
		free(((struct tenant *)v)->labels);
		free(v);
	}
	for (size_t i = 0; i < m->nspaces; i++)
		space_free(m->spaces[i]);
	hmap_release(&m->endpoints);
	hmap_release(&m->buckets);
	hmap_release(&m->hosts);
	hmap_release(&m->groups);
	hmap_release(&m->segments);
	hmap_release(&m->tenants);
	model_docs_free(m);
	free(m);
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* ---- spaces ---- */

/* The region a group carves its prefix from, in space s. */
static struct region *parent_region(struct space *s, struct group *parent)
{
	return parent ? &parent->regions[s->idx] : &s->root;
}

static bool region_present(const struct region *r)
{
	return r->prefix.len != 0xff;
}

/* Prefix length a group gets in space s under region pr. */
static int group_len(const struct space *s, const struct region *pr, u128 capacity)
{
	if (capacity)
		return prefix_len_for_count(s->cidr.family, capacity, s->block_len);
	return pr->prefix.len + 4 > s->block_len ? s->block_len : pr->prefix.len + 4;
}

/*
 * Give group g a prefix in space s (lowest free in the parent's region), or
 * the stored one when `want` is given (loading). Fills err on failure.
 */
static int group_carve(struct space *s, struct group *g, const struct prefix *want,
		       struct error *err)
{
	struct region *pr = parent_region(s, g->parent);
	struct prefix p = { .family = s->cidr.family };
	char pb[PREFIX_STRLEN];
	int len, r;

	if (!region_present(pr))
		return error_conflict(err, "parent", g->parent ? g->parent->name : "",
				      "group %s: parent has no prefix in space %s", g->name, s->name);
	if (want) {
		p = *want;
	} else {
		u128 start;

		len = group_len(s, pr, g->capacity);
		if (len < 0 || len < pr->prefix.len) {
			char cap[48];

			snprintf(cap, sizeof(cap), "%llu", (unsigned long long)g->capacity);
			return error_exhausted(err, "capacity", cap,
					       "group %s: capacity %s does not fit in %s of space %s",
					       g->name, cap, prefix_fmt(&pr->prefix, pb), s->name);
		}
		r = region_find(pr, (unsigned)len, NULL, NULL, &start);
		if (r < 0)
			return error_exhausted(err, "name", g->name,
					       "space %s: no free /%d left in %s %s for group %s",
					       s->name, len, g->parent ? "group" : "space",
					       g->parent ? g->parent->name : prefix_fmt(&pr->prefix, pb),
					       g->name);
		p.addr = start;
		p.len = (uint8_t)len;
	}
	r = region_insert(pr, p.addr, prefix_last(&p), g);
	if (r < 0)
		return error_conflict(err, "prefixes", prefix_fmt(&p, pb),
				      "group %s: prefix %s does not fit its parent", g->name, pb);
	region_init(&g->regions[s->idx], &p);
	return 0;
}

static void group_uncarve(struct space *s, struct group *g)
{
	struct region *pr = parent_region(s, g->parent);

	region_remove(pr, g->regions[s->idx].prefix.addr);
	region_release(&g->regions[s->idx]);
	g->regions[s->idx].prefix.len = 0xff;
}

/* Groups in creation order (parents are always created before children). */
static struct group **groups_ordered(const struct model *m, size_t *n)
{
	struct group **v = calloc(m->groups.len + 1, sizeof(*v));
	struct group *g;
	size_t it = 0, k = 0;

	if (!v)
		return NULL;
	while ((g = hmap_next(&m->groups, &it)))
		v[k++] = g;
	for (size_t i = 1; i < k; i++) { /* insertion sort on order: small n, rare call */
		struct group *x = v[i];
		size_t j = i;

		while (j > 0 && v[j - 1]->order > x->order) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
	*n = k;
	return v;
}

struct group **model_groups_ordered(const struct model *m, size_t *n)
{
	return groups_ordered(m, n);
}

static bool space_same(const struct space *s, const struct space_spec *sp, int block_len)
{
	if (prefix_cmp(&s->cidr, &sp->cidr) || s->block_len != block_len ||
	    s->nreserved != sp->nreserved)
		return false;
	/* s->reserved is sorted, the request's list is in any order: compare
	 * as sets (each side contained in the other) */
	for (size_t i = 0; i < sp->nreserved; i++) {
		bool in_s = false, in_sp = false;

		for (size_t j = 0; j < s->nreserved; j++) {
			in_s |= !prefix_cmp(&sp->reserved[i], &s->reserved[j]);
			in_sp |= !prefix_cmp(&s->reserved[i], &sp->reserved[j]);
		}
		if (!in_s || !in_sp)
			return false;
	}
	return true;
}

static int cmp_prefix_qsort(const void *a, const void *b)
{
	return prefix_cmp(a, b);
}

int model_space_create(struct model *m, const struct space_spec *sp, struct mtxn *tx,
		       struct error *err)
{
	struct space *s, *old;
	struct group **gs = NULL;
	size_t ng = 0, done = 0;
	char pb[PREFIX_STRLEN], qb[PREFIX_STRLEN];
	int block_len, r;

	block_len = sp->block_len >= 0 ? sp->block_len : (sp->cidr.family == 4 ? 28 : 124);
	if ((old = model_space(m, sp->name))) {
		if (space_same(old, sp, block_len))
			return 1;
		return error_exists(err, "name", sp->name,
				    "space %s already exists with other settings", sp->name);
	}
	{
		unsigned bits = prefix_bits(sp->cidr.family);

		if (block_len < (int)sp->cidr.len || block_len > (int)bits - 1 ||
		    bits - (unsigned)block_len > 16) {
			char v[16];

			snprintf(v, sizeof(v), "%d", block_len);
			return error_invalid(err, "block_size", v,
					     "block_size: %d: must be between /%u and /%u and not "
					     "shorter than the space's /%u", block_len,
					     bits > 16 ? bits - 16 : 0, bits - 1, sp->cidr.len);
		}
	}
	for (size_t i = 0; i < m->nspaces; i++)
		if (prefix_overlaps(&m->spaces[i]->cidr, &sp->cidr))
			return error_conflict(err, "cidr", prefix_fmt(&sp->cidr, pb),
					      "cidr: %s overlaps space %s (%s)", pb,
					      m->spaces[i]->name,
					      prefix_fmt(&m->spaces[i]->cidr, qb));
	for (size_t i = 0; i < sp->nreserved; i++)
		if (!prefix_contains(&sp->cidr, &sp->reserved[i]))
			return error_invalid(err, "reserved", prefix_fmt(&sp->reserved[i], pb),
					     "reserved: %s is not inside the space's %s", pb,
					     prefix_fmt(&sp->cidr, qb));
	if (m->nspaces >= MODEL_MAX_SPACES)
		return error_exhausted(err, "name", sp->name, "too many spaces (at most %d)",
				       MODEL_MAX_SPACES);

	s = calloc(1, sizeof(*s));
	if (!s || !(s->name = strdup(sp->name)))
		goto oom;
	s->cidr = sp->cidr;
	s->block_len = (uint8_t)block_len;
	s->idx = (uint8_t)m->nspaces;
	if (sp->nreserved) {
		s->reserved = malloc(sp->nreserved * sizeof(*s->reserved));
		if (!s->reserved)
			goto oom;
		memcpy(s->reserved, sp->reserved, sp->nreserved * sizeof(*s->reserved));
		qsort(s->reserved, sp->nreserved, sizeof(*s->reserved), cmp_prefix_qsort);
		s->nreserved = sp->nreserved;
	}
	region_init(&s->root, &s->cidr);

	/* Every existing group gets a prefix in the new space, parents first. */
	gs = groups_ordered(m, &ng);
	if (!gs && m->groups.len)
		goto oom;
	for (done = 0; done < ng; done++) {
		r = group_carve(s, gs[done], NULL, err);
		if (r < 0)
			goto undo;
	}
	m->spaces[m->nspaces++] = s;
	if (tx) {
		mtxn_put(tx, key_space(s->name), space_value(s));
		for (size_t i = 0; i < ng; i++)
			mtxn_put(tx, key_group(gs[i]->name), group_value(m, gs[i]));
	}
	free(gs);
	return 0;
oom:
	error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	r = -ENOMEM;
undo:
	while (done-- > 0)
		group_uncarve(s, gs[done]);
	free(gs);
	space_free(s);
	return r;
}

int model_space_delete(struct model *m, const char *name, struct mtxn *tx, struct error *err)
{
	struct space *s = model_space(m, name);
	struct group **gs;
	size_t ng;

	if (!s)
		return error_not_found(err, "name", name, "space %s not found", name);
	if (s->blocks.len)
		return error_conflict(err, "name", name, "space %s still holds %zu blocks", name,
				      s->blocks.len);
	{
		struct segment *sg;
		size_t it = 0;

		while ((sg = hmap_next(&m->segments, &it)))
			if (sg->spaces & (1U << s->idx))
				return error_conflict(err, "name", name,
						      "space %s is used by segment %s", name, sg->key);
	}
	gs = groups_ordered(m, &ng);
	if (!gs && m->groups.len)
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	/* children first, so each uncarve finds its parent's region intact */
	for (size_t i = ng; i-- > 0;)
		group_uncarve(s, gs[i]);
	/* keep indexes dense: move the last space into the hole */
	{
		size_t idx = s->idx, last = m->nspaces - 1;

		if (idx != last) {
			struct space *ls = m->spaces[last];
			struct segment *sg;
			size_t it = 0;

			for (size_t i = 0; i < ng; i++) {
				gs[i]->regions[idx] = gs[i]->regions[last];
				gs[i]->regions[last].prefix.len = 0xff;
				gs[i]->regions[last].items = NULL;
				gs[i]->regions[last].n = gs[i]->regions[last].cap = 0;
			}
			while ((sg = hmap_next(&m->segments, &it)))
				if (sg->spaces & (1U << last))
					sg->spaces = (sg->spaces & ~(1U << last)) | (1U << idx);
			ls->idx = (uint8_t)idx;
			m->spaces[idx] = ls;
		}
		m->spaces[last] = NULL;
		m->nspaces--;
	}
	if (tx) {
		mtxn_del(tx, key_space(name));
		for (size_t i = 0; i < ng; i++)
			mtxn_put(tx, key_group(gs[i]->name), group_value(m, gs[i]));
	}
	free(gs);
	space_free(s);
	return 0;
}

/* ---- groups ---- */

int model_group_create(struct model *m, const struct group_spec *sp, struct mtxn *tx,
		       struct error *err)
{
	struct group *g, *parent = NULL, *old;
	size_t done = 0;
	int r;

	if (sp->parent && !(parent = model_group(m, sp->parent)))
		return error_not_found(err, "parent", sp->parent, "parent: group %s not found",
				       sp->parent);
	if ((old = model_group(m, sp->name))) {
		if (old->parent == parent && old->capacity == sp->capacity &&
		    str_eq(old->labels, sp->labels))
			return 1;
		return error_exists(err, "name", sp->name,
				    "group %s already exists with other settings", sp->name);
	}
	g = calloc(1, sizeof(*g));
	if (!g || !(g->name = strdup(sp->name)) || (sp->labels && !(g->labels = strdup(sp->labels))) ||
	    !(g->regions = calloc(MODEL_MAX_SPACES, sizeof(*g->regions))))
		goto oom;
	for (size_t i = 0; i < MODEL_MAX_SPACES; i++)
		g->regions[i].prefix.len = 0xff;
	g->parent = parent;
	g->capacity = sp->capacity;
	for (done = 0; done < m->nspaces; done++) {
		struct space *s = m->spaces[done];
		struct prefix want, *wp = NULL;

		if (sp->prefixes) {
			json_t *v = json_object_get(sp->prefixes, s->name);

			if (!json_is_string(v) ||
			    prefix_parse(json_string_value(v), &want, PREFIX_F_STRICT, "prefixes", err) < 0) {
				r = error_invalid(err, "prefixes", s->name,
						  "group %s: no valid stored prefix in space %s",
						  sp->name, s->name);
				goto undo;
			}
			wp = &want;
		}
		r = group_carve(s, g, wp, err);
		if (r < 0)
			goto undo;
	}
	if (hmap_insert(&m->groups, hash_str(g->name), g) < 0)
		goto oom;
	g->order = m->ngroups_created++;
	if (parent)
		parent->nchildren++;
	if (tx)
		mtxn_put(tx, key_group(g->name), group_value(m, g));
	return 0;
oom:
	r = error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
undo:
	while (done-- > 0)
		group_uncarve(m->spaces[done], g);
	group_free(g);
	return r;
}

int model_group_delete(struct model *m, const char *name, struct mtxn *tx, struct error *err)
{
	struct group *g = model_group(m, name);

	if (!g)
		return error_not_found(err, "name", name, "group %s not found", name);
	if (g->nchildren)
		return error_conflict(err, "name", name, "group %s still has %zu child groups",
				      name, g->nchildren);
	if (g->nhosts)
		return error_conflict(err, "name", name, "group %s still has %zu hosts", name,
				      g->nhosts);
	for (size_t i = 0; i < m->nspaces; i++)
		group_uncarve(m->spaces[i], g);
	hmap_remove(&m->groups, hash_str(name), eq_name, name);
	if (g->parent)
		g->parent->nchildren--;
	if (tx)
		mtxn_del(tx, key_group(name));
	group_free(g);
	return 0;
}

/* ---- hosts ---- */

int model_host_create(struct model *m, const struct host_spec *sp, struct mtxn *tx,
		      struct error *err)
{
	struct group *g = model_group(m, sp->group);
	struct host *h;

	if (!g)
		return error_not_found(err, "group", sp->group, "group: %s not found", sp->group);
	if ((h = model_host(m, sp->name))) {
		if (h->group == g && !prefix_cmp(&h->address, &sp->address) &&
		    str_eq(h->labels, sp->labels))
			return 1;
		return error_exists(err, "name", sp->name,
				    "host %s already exists with other settings", sp->name);
	}
	h = calloc(1, sizeof(*h));
	if (!h || !(h->name = strdup(sp->name)) ||
	    (sp->labels && !(h->labels = strdup(sp->labels))) ||
	    hmap_insert(&m->hosts, hash_str(h->name), h) < 0) {
		if (h) {
			free(h->name);
			free(h->labels);
		}
		free(h);
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	}
	h->address = sp->address;
	h->group = g;
	g->nhosts++;
	if (tx)
		mtxn_put(tx, key_host(h->name), host_value(h));
	return 0;
}

int model_host_delete(struct model *m, const char *name, struct mtxn *tx, struct error *err)
{
	struct host *h = model_host(m, name);

	if (!h)
		return error_not_found(err, "name", name, "host %s not found", name);
	if (h->nendpoints)
		return error_conflict(err, "name", name, "host %s still has %zu endpoints", name,
				      h->nendpoints);
	/* Its blocks are all empty (cooling): give them back now. */
	host_drop_blocks(m, h, tx);
	hmap_remove(&m->hosts, hash_str(name), eq_name, name);
	h->group->nhosts--;
	if (tx)
		mtxn_del(tx, key_host(name));
	free(h->name);
	free(h->labels);
	free(h);
	return 0;
}

/* ---- tenants and segments ---- */

int model_tenant_create(struct model *m, const struct tenant_spec *sp, struct mtxn *tx,
			struct error *err)
{
	struct tenant *t = model_tenant(m, sp->name);

	if (t) {
		if (str_eq(t->labels, sp->labels) &&
		    (sp->isolation < 0 ? ISO_SEGMENT : sp->isolation) == t->isolation)
			return 1;
		return error_exists(err, "name", sp->name,
				    "tenant %s already exists with other labels or isolation "
				    "(PATCH /v1/tenants/%s changes the isolation)", sp->name, sp->name);
	}
	t = calloc(1, sizeof(*t));
	if (!t || !(t->name = strdup(sp->name)) ||
	    (sp->labels && !(t->labels = strdup(sp->labels))) ||
	    hmap_insert(&m->tenants, hash_str(t->name), t) < 0) {
		if (t) {
			free(t->name);
			free(t->labels);
		}
		free(t);
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	}
	t->isolation = (uint8_t)(sp->isolation < 0 ? ISO_SEGMENT : sp->isolation);
	if (tx)
		mtxn_put(tx, key_tenant(t->name), tenant_value(t));
	return 0;
}

int model_tenant_patch(struct model *m, const char *name, const char *isolation, struct mtxn *tx,
		       struct error *err)
{
	struct tenant *t = model_tenant(m, name);
	enum isolation iso;

	if (!t)
		return error_not_found(err, "name", name, "tenant %s not found", name);
	if (!isolation)
		return 1;
	if (isolation_parse(isolation, &iso) < 0)
		return error_invalid(err, "isolation", isolation,
				     "isolation: %s: must be segment, tenant or none", isolation);
	if (t->isolation == iso)
		return 1;
	t->isolation = (uint8_t)iso;
	if (tx)
		mtxn_put(tx, key_tenant(t->name), tenant_value(t));
	return 0;
}

int model_tenant_delete(struct model *m, const char *name, struct mtxn *tx, struct error *err)
{
	struct tenant *t = model_tenant(m, name);

	if (!t)
		return error_not_found(err, "name", name, "tenant %s not found", name);
	if (t->nsegments)
		return error_conflict(err, "name", name, "tenant %s still has %zu segments", name,
				      t->nsegments);
	hmap_remove(&m->tenants, hash_str(name), eq_name, name);
	if (tx)
		mtxn_del(tx, key_tenant(name));
	free(t->name);
	free(t->labels);
	free(t);
	return 0;
}

int model_segment_create(struct model *m, const struct segment_spec *sp, struct mtxn *tx,
			 struct error *err)
{
	struct tenant *t = model_tenant(m, sp->tenant);
	struct segment *sg;
	uint32_t spaces = 0;

	if (!t)
		return error_not_found(err, "tenant", sp->tenant, "tenant: %s not found", sp->tenant);
	if (sp->spaces_given) {
		for (size_t i = 0; i < sp->nspaces; i++) {
			struct space *s = model_space(m, sp->spaces[i]);

			if (!s)
				return error_not_found(err, "spaces", sp->spaces[i],
						       "spaces: space %s not found", sp->spaces[i]);
			spaces |= 1U << s->idx;
		}
	} else {
		for (size_t i = 0; i < m->nspaces; i++)
			spaces |= 1U << i;
	}
	if ((sg = model_segment(m, sp->tenant, sp->name))) {
		if ((!sp->spaces_given || sg->spaces == spaces) && str_eq(sg->labels, sp->labels))
			return 1;
		return error_exists(err, "name", sp->name,
				    "segment %s/%s already exists with other settings", sp->tenant,
				    sp->name);
	}
	sg = calloc(1, sizeof(*sg));
	if (!sg || !(sg->name = strdup(sp->name)) ||
	    !(sg->key = xasprintf("%s/%s", t->name, sp->name)) ||
	    (sp->labels && !(sg->labels = strdup(sp->labels))) ||
	    hmap_insert(&m->segments, hash_seg(t->name, sp->name), sg) < 0) {
		if (sg) {
			free(sg->name);
			free(sg->key);
			free(sg->labels);
		}
		free(sg);
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	}
	sg->tenant = t;
	sg->spaces = spaces;
	t->nsegments++;
	if (tx)
		mtxn_put(tx, key_segment(sg), segment_value(m, sg));
	return 0;
}

int model_segment_delete(struct model *m, const char *tenant, const char *name,
			 struct mtxn *tx, struct error *err)
{
	struct segment *sg = model_segment(m, tenant, name);

	if (!sg) {
		if (!model_tenant(m, tenant))
			return error_not_found(err, "tenant", tenant, "tenant %s not found", tenant);
		return error_not_found(err, "name", name, "segment %s/%s not found", tenant, name);
	}
	if (sg->nendpoints)
		return error_conflict(err, "name", name, "segment %s still has %zu endpoints",
				      sg->key, sg->nendpoints);
	segment_drop_blocks(m, sg, tx);
	hmap_remove(&m->segments, hash_seg(sg->tenant->name, sg->name), eq_segment,
		    &(struct seg_key){ sg->tenant->name, sg->name });
	sg->tenant->nsegments--;
	if (tx)
		mtxn_del(tx, key_segment(sg));
	free(sg->name);
	free(sg->key);
	free(sg->labels);
	free(sg);
	return 0;
}
