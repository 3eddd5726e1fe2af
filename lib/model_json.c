/* SPDX-License-Identifier: MIT */
/*
 * DOC: the model as JSON: store keys and values, API objects, request decoding
 *
 * Stored values hold only what cannot be derived: a group's prefixes (so they
 * never move), a block's owner and state, an endpoint's addresses. How full a
 * block is, which blocks a host has, who a group's children are: all derived
 * when the model is loaded, and added to the API objects on the way out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jsonx.h"
#include "model.h"
#include "model_internal.h"
#include "policy.h"

/* ---- keys ---- */

char *key_space(const char *name) { return xasprintf("/larch/spaces/%s", name); }
char *key_group(const char *name) { return xasprintf("/larch/groups/%s", name); }
char *key_host(const char *name) { return xasprintf("/larch/hosts/%s", name); }
char *key_tenant(const char *name) { return xasprintf("/larch/tenants/%s", name); }
char *key_endpoint(const char *handle) { return xasprintf("/larch/endpoints/%s", handle); }

char *key_segment(const struct segment *sg)
{
	return xasprintf("/larch/segments/%s/%s", sg->tenant->name, sg->name);
}

char *key_block(const struct block *b)
{
	char ab[PREFIX_STRLEN];

	return xasprintf("/larch/blocks/%s/%s-%u", b->space->name,
			 addr_fmt(b->cidr.family, b->cidr.addr, ab), b->cidr.len);
}

/* ---- small builders ---- */

static json_t *jprefix(const struct prefix *p)
{
	char b[PREFIX_STRLEN];

	return json_string(prefix_fmt(p, b));
}

static json_t *jaddr(uint8_t family, u128 a)
{
	char b[PREFIX_STRLEN];

	return json_string(addr_fmt(family, a, b));
}

static void set_labels(json_t *o, const char *labels)
{
	json_t *l = labels ? json_loads(labels, 0, NULL) : NULL;

	json_object_set_new(o, "labels", l ? l : json_object());
}

static json_t *ju128(u128 v)
{
	return json_integer((json_int_t)v);
}

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

/* ---- stored values ---- */

static json_t *space_stored(const struct space *s)
{
	json_t *o = json_object(), *r = json_array();

	json_object_set_new(o, "name", json_string(s->name));
	json_object_set_new(o, "cidr", jprefix(&s->cidr));
	json_object_set_new(o, "block_size", json_integer(s->block_len));
	for (size_t i = 0; i < s->nreserved; i++) {
		const struct prefix *p = &s->reserved[i];

		json_array_append_new(r, p->len == prefix_bits(p->family) ? jaddr(p->family, p->addr)
									    : jprefix(p));
	}
	json_object_set_new(o, "reserved", r);
	return o;
}

static json_t *group_stored(const struct model *m, const struct group *g)
{
	json_t *o = json_object(), *p = json_object();

	json_object_set_new(o, "name", json_string(g->name));
	if (g->parent)
		json_object_set_new(o, "parent", json_string(g->parent->name));
	if (g->capacity)
		json_object_set_new(o, "capacity", ju128(g->capacity));
	set_labels(o, g->labels);
	for (size_t i = 0; i < m->nspaces; i++)
		if (g->regions[i].prefix.len != 0xff)
			json_object_set_new(p, m->spaces[i]->name, jprefix(&g->regions[i].prefix));
	json_object_set_new(o, "prefixes", p);
	return o;
}

static json_t *host_stored(const struct host *h)
{
	json_t *o = json_object();
	char ab[PREFIX_STRLEN];

	json_object_set_new(o, "name", json_string(h->name));
	json_object_set_new(o, "address", json_string(addr_fmt(h->address.family, h->address.addr, ab)));
	json_object_set_new(o, "group", json_string(h->group->name));
	set_labels(o, h->labels);
	return o;
}

static json_t *tenant_stored(const struct tenant *t)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(t->name));
	set_labels(o, t->labels);
	json_object_set_new(o, "isolation", json_string(isolation_name(t->isolation)));
	return o;
}

static json_t *segment_stored(const struct model *m, const struct segment *sg)
{
	json_t *o = json_object(), *sp = json_array();

	json_object_set_new(o, "tenant", json_string(sg->tenant->name));
	json_object_set_new(o, "name", json_string(sg->name));
	for (size_t i = 0; i < m->nspaces; i++)
		if (sg->spaces & (1U << i))
			json_array_append_new(sp, json_string(m->spaces[i]->name));
	json_object_set_new(o, "spaces", sp);
	set_labels(o, sg->labels);
	return o;
}

static json_t *block_stored(const struct block *b)
{
	json_t *o = json_object();

	json_object_set_new(o, "space", json_string(b->space->name));
	json_object_set_new(o, "cidr", jprefix(&b->cidr));
	json_object_set_new(o, "group", json_string(b->group->name));
	json_object_set_new(o, "host", json_string(b->host->name));
	json_object_set_new(o, "tenant", json_string(b->segment->tenant->name));
	json_object_set_new(o, "segment", json_string(b->segment->name));
	json_object_set_new(o, "state", json_string(b->state == BLOCK_ACTIVE ? "active" : "cooling"));
	if (b->state == BLOCK_COOLING)
		json_object_set_new(o, "cool_until", json_integer(b->cool_until));
	return o;
}

static json_t *endpoint_stored(const struct model *m, const struct endpoint *e, bool api)
{
	json_t *o = json_object(), *addrs = json_array(), *attrs;
	(void)m;

	json_object_set_new(o, "handle", json_string(e->handle));
	json_object_set_new(o, "tenant", json_string(e->segment->tenant->name));
	json_object_set_new(o, "segment", json_string(e->segment->name));
	json_object_set_new(o, "host", e->host ? json_string(e->host->name) : json_null());
	json_object_set_new(o, "kind", json_string(ep_kind_name(e->kind)));
	if (e->parent)
		json_object_set_new(o, "parent", json_string(e->parent->handle));
	if (e->attrs && (attrs = json_loads(e->attrs, 0, NULL))) {
		json_object_update(o, attrs);
		json_decref(attrs);
	}
	if (api && !json_object_get(o, "labels"))
		json_object_set_new(o, "labels", json_object());
	for (uint8_t i = 0; i < e->naddrs; i++) {
		const struct block *b = e->addrs[i].block;
		json_t *a = json_object();

		json_object_set_new(a, "space", json_string(b->space->name));
		json_object_set_new(a, "address", jaddr(b->cidr.family, block_addr(b, e->addrs[i].off)));
		if (api)
			json_object_set_new(a, "block", jprefix(&b->cidr));
		json_array_append_new(addrs, a);
	}
	json_object_set_new(o, "addresses", addrs);
	return o;
}

char *space_value(const struct space *s) { return dump(space_stored(s)); }
char *group_value(const struct model *m, const struct group *g) { return dump(group_stored(m, g)); }
char *host_value(const struct host *h) { return dump(host_stored(h)); }
char *tenant_value(const struct tenant *t) { return dump(tenant_stored(t)); }
char *segment_value(const struct model *m, const struct segment *sg) { return dump(segment_stored(m, sg)); }
char *block_value(const struct block *b) { return dump(block_stored(b)); }
char *endpoint_value(const struct model *m, const struct endpoint *e) { return dump(endpoint_stored(m, e, false)); }

/* ---- API objects ---- */

json_t *space_json(const struct model *m, const struct space *s)
{
	json_t *o = space_stored(s);
	(void)m;

	json_object_set_new(o, "family", json_integer(s->cidr.family));
	json_object_set_new(o, "blocks", json_integer((json_int_t)s->blocks.len));
	return o;
}

json_t *group_json(const struct model *m, const struct group *g)
{
	json_t *o = group_stored(m, g), *ch = json_array(), *hs = json_array();
	const struct group *x;
	const struct host *h;
	size_t it = 0;

	json_object_set_new(o, "parent", g->parent ? json_string(g->parent->name) : json_null());
	if (g->nchildren)
		while ((x = hmap_next(&m->groups, &it)))
			if (x->parent == g)
				json_array_append_new(ch, json_string(x->name));
	it = 0;
	if (g->nhosts)
		while ((h = hmap_next(&m->hosts, &it)))
			if (h->group == g)
				json_array_append_new(hs, json_string(h->name));
	json_object_set_new(o, "children", ch);
	json_object_set_new(o, "hosts", hs);
	return o;
}

json_t *host_json(const struct model *m, const struct host *h)
{
	json_t *o = host_stored(h), *bl = json_array();
	const struct bucket *bk;
	size_t it = 0;

	if (h->nblocks)
		while ((bk = hmap_next(&m->buckets, &it)))
			if (bk->host == h)
				for (const struct block *b = bk->blocks; b; b = b->bnext)
					json_array_append_new(bl, jprefix(&b->cidr));
	json_object_set_new(o, "blocks", bl);
	json_object_set_new(o, "endpoints", json_integer((json_int_t)h->nendpoints));
	return o;
}

json_t *tenant_json(const struct model *m, const struct tenant *t)
{
	json_t *o = tenant_stored(t), *sgs = json_array();
	const struct segment *sg;
	size_t it = 0;

	while (t->nsegments && (sg = hmap_next(&m->segments, &it)))
		if (sg->tenant == t)
			json_array_append_new(sgs, json_string(sg->name));
	json_object_set_new(o, "segments", sgs);
	return o;
}

json_t *segment_json(const struct model *m, const struct segment *sg)
{
	json_t *o = segment_stored(m, sg);

	json_object_set_new(o, "endpoints", json_integer((json_int_t)sg->nendpoints));
	return o;
}

json_t *block_json(const struct model *m, const struct block *b)
{
	json_t *o = block_stored(b);
	(void)m;

	json_object_set_new(o, "used", json_integer(b->used));
	json_object_set_new(o, "capacity", json_integer(b->size - b->nreserved));
	return o;
}

json_t *endpoint_json(const struct model *m, const struct endpoint *e)
{
	return endpoint_stored(m, e, true);
}

/* ---- the tree ---- */

static int cmp_block_ptr(const void *a, const void *b)
{
	return prefix_cmp(&(*(struct block *const *)a)->cidr, &(*(struct block *const *)b)->cidr);
}

static int cmp_name_ptr(const void *a, const void *b)
{
	return strcmp(**(char **const *)a, **(char **const *)b);
}

static json_t *tree_host(const struct model *m, const struct space *s, const struct host *h)
{
	json_t *o = json_object(), *bl = json_array();
	struct block **v = NULL;
	const struct bucket *bk;
	size_t n = 0, it = 0;
	char ab[PREFIX_STRLEN];

	json_object_set_new(o, "name", json_string(h->name));
	json_object_set_new(o, "address", json_string(addr_fmt(h->address.family, h->address.addr, ab)));
	if (h->nblocks && (v = calloc(h->nblocks, sizeof(*v))))
		while ((bk = hmap_next(&m->buckets, &it)))
			if (bk->host == h && bk->space == s)
				for (struct block *b = bk->blocks; b && n < h->nblocks; b = b->bnext)
					v[n++] = b;
	if (n)
		qsort(v, n, sizeof(*v), cmp_block_ptr);
	for (size_t i = 0; i < n; i++) {
		json_t *b = json_object();

		json_object_set_new(b, "cidr", jprefix(&v[i]->cidr));
		json_object_set_new(b, "tenant", json_string(v[i]->segment->tenant->name));
		json_object_set_new(b, "segment", json_string(v[i]->segment->name));
		json_object_set_new(b, "state", json_string(v[i]->state == BLOCK_ACTIVE ? "active" : "cooling"));
		json_object_set_new(b, "used", json_integer(v[i]->used));
		json_object_set_new(b, "capacity", json_integer(v[i]->size - v[i]->nreserved));
		json_array_append_new(bl, b);
	}
	free(v);
	json_object_set_new(o, "blocks", bl);
	return o;
}

static json_t *tree_group(const struct model *m, const struct space *s, const struct group *g,
			  struct group **gs, size_t ng, struct host **hs, size_t nh)
{
	json_t *o = json_object(), *ch = json_array(), *ho = json_array();

	json_object_set_new(o, "name", json_string(g->name));
	if (g->regions[s->idx].prefix.len != 0xff)
		json_object_set_new(o, "prefix", jprefix(&g->regions[s->idx].prefix));
	for (size_t i = 0; i < ng; i++)
		if (gs[i]->parent == g)
			json_array_append_new(ch, tree_group(m, s, gs[i], gs, ng, hs, nh));
	for (size_t i = 0; i < nh; i++)
		if (hs[i]->group == g)
			json_array_append_new(ho, tree_host(m, s, hs[i]));
	json_object_set_new(o, "groups", ch);
	json_object_set_new(o, "hosts", ho);
	return o;
}

json_t *model_tree_json(const struct model *m)
{
	json_t *o = json_object(), *sps = json_array();
	struct group **gs = calloc(m->groups.len + 1, sizeof(*gs));
	struct host **hs = calloc(m->hosts.len + 1, sizeof(*hs));
	size_t ng = 0, nh = 0, it = 0;
	void *v;

	if (!o || !gs || !hs) {
		free(gs);
		free(hs);
		json_decref(o);
		return NULL;
	}
	while ((v = hmap_next(&m->groups, &it)))
		gs[ng++] = v;
	it = 0;
	while ((v = hmap_next(&m->hosts, &it)))
		hs[nh++] = v;
	qsort(gs, ng, sizeof(*gs), cmp_name_ptr);
	qsort(hs, nh, sizeof(*hs), cmp_name_ptr);
	for (size_t i = 0; i < m->nspaces; i++) {
		const struct space *s = m->spaces[i];
		json_t *so = json_object(), *roots = json_array();

		json_object_set_new(so, "name", json_string(s->name));
		json_object_set_new(so, "cidr", jprefix(&s->cidr));
		for (size_t k = 0; k < ng; k++)
			if (!gs[k]->parent)
				json_array_append_new(roots, tree_group(m, s, gs[k], gs, ng, hs, nh));
		json_object_set_new(so, "groups", roots);
		json_array_append_new(sps, so);
	}
	json_object_set_new(o, "spaces", sps);
	free(gs);
	free(hs);
	return o;
}

/* ---- decoding ---- */

static int decode_name(json_t *obj, const char *field, const char **out, struct error *err)
{
	int r = jx_str(obj, field, true, out, err);

	return r < 0 ? r : name_check(field, *out, err);
}

static int decode_opt_name(json_t *obj, const char *field, const char **out, struct error *err)
{
	int r = jx_str(obj, field, false, out, err);

	if (r < 0 || !*out)
		return r;
	return name_check(field, *out, err);
}

int space_spec_decode(json_t *obj, bool stored, struct space_spec *sp, struct error *err)
{
	static const char *const fields[] = { "name", "cidr", "block_size", "reserved", NULL };
	static const char *const fields_out[] = { "name", "cidr", "block_size", "reserved",
						  "family", "blocks", NULL };
	const char *cidr, **rv = NULL;
	unsigned long long bl;
	bool present;
	size_t n;
	int r;

	memset(sp, 0, sizeof(*sp));
	sp->block_len = -1;
	if ((r = jx_only(obj, stored ? fields_out : fields, err)) < 0 ||
	    (r = decode_name(obj, "name", &sp->name, err)) < 0 ||
	    (r = jx_str(obj, "cidr", true, &cidr, err)) < 0 ||
	    (r = prefix_parse(cidr, &sp->cidr, PREFIX_F_STRICT, "cidr", err)) < 0 ||
	    (r = jx_uint(obj, "block_size", 128, &bl, &present, err)) < 0 ||
	    (r = jx_strv(obj, "reserved", &rv, &n, &present, err)) < 0)
		goto out;
	if (json_object_get(obj, "block_size") && !json_is_null(json_object_get(obj, "block_size")))
		sp->block_len = (int)bl;
	if (n) {
		sp->reserved = calloc(n, sizeof(*sp->reserved));
		if (!sp->reserved) {
			r = error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			r = prefix_parse(rv[i], &sp->reserved[i], PREFIX_F_STRICT, "reserved", err);
			if (r < 0)
				goto out;
			if (sp->reserved[i].family != sp->cidr.family) {
				r = error_invalid(err, "reserved", rv[i],
						  "reserved: %s is not of the space's address family", rv[i]);
				goto out;
			}
			if (!prefix_contains(&sp->cidr, &sp->reserved[i])) {
				r = error_invalid(err, "reserved", rv[i],
						  "reserved: %s is not inside the space's cidr", rv[i]);
				goto out;
			}
		}
		sp->nreserved = n;
	}
out:
	free(rv);
	if (r < 0)
		space_spec_release(sp);
	return r;
}

void space_spec_release(struct space_spec *sp)
{
	free(sp->reserved);
	sp->reserved = NULL;
	sp->nreserved = 0;
}

int group_spec_decode(json_t *obj, bool stored, struct group_spec *sp, struct error *err)
{
	static const char *const fields[] = { "name", "parent", "capacity", "labels", NULL };
	static const char *const fields_st[] = { "name", "parent", "capacity", "labels", "prefixes",
						 "children", "hosts", NULL };
	unsigned long long cap = 0;
	bool present;
	int r;

	memset(sp, 0, sizeof(*sp));
	if ((r = jx_only(obj, stored ? fields_st : fields, err)) < 0 ||
	    (r = decode_name(obj, "name", &sp->name, err)) < 0 ||
	    (r = decode_opt_name(obj, "parent", &sp->parent, err)) < 0 ||
	    (r = jx_uint(obj, "capacity", (1ULL << 62), &cap, &present, err)) < 0 ||
	    (r = jx_labels(obj, "labels", !stored, &sp->labels, err)) < 0)
		return r;
	if (present && cap == 0)
		return error_invalid(err, "capacity", "0", "capacity: must be at least 1 address");
	sp->capacity = cap;
	if (sp->parent && !strcmp(sp->parent, sp->name)) {
		group_spec_release(sp);
		return error_invalid(err, "parent", sp->parent, "parent: a group cannot be its own parent");
	}
	if (stored)
		sp->prefixes = json_object_get(obj, "prefixes");
	return 0;
}

void group_spec_release(struct group_spec *sp)
{
	free(sp->labels);
	sp->labels = NULL;
}

int host_spec_decode(json_t *obj, bool stored, struct host_spec *sp, struct error *err)
{
	static const char *const fields[] = { "name", "address", "group", "labels", NULL };
	static const char *const fields_st[] = { "name", "address", "group", "labels", "blocks",
						 "endpoints", NULL };
	const char *a;
	int r;

	memset(sp, 0, sizeof(*sp));
	if ((r = jx_only(obj, stored ? fields_st : fields, err)) < 0 ||
	    (r = decode_name(obj, "name", &sp->name, err)) < 0 ||
	    (r = jx_str(obj, "address", true, &a, err)) < 0 ||
	    (r = addr_parse(a, &sp->address, "address", err)) < 0 ||
	    (r = decode_name(obj, "group", &sp->group, err)) < 0 ||
	    (r = jx_labels(obj, "labels", !stored, &sp->labels, err)) < 0)
		return r;
	return 0;
}

void host_spec_release(struct host_spec *sp)
{
	free(sp->labels);
	sp->labels = NULL;
}

int tenant_spec_decode(json_t *obj, bool stored, struct tenant_spec *sp, struct error *err)
{
	static const char *const fields[] = { "name", "labels", "isolation", NULL };
	static const char *const fields_st[] = { "name", "labels", "isolation", "segments", NULL };
	const char *iso;
	enum isolation v;
	int r;

	memset(sp, 0, sizeof(*sp));
	sp->isolation = -1;
	if ((r = jx_only(obj, stored ? fields_st : fields, err)) < 0 ||
	    (r = decode_name(obj, "name", &sp->name, err)) < 0 ||
	    (r = jx_str(obj, "isolation", false, &iso, err)) < 0)
		return r;
	if (iso) {
		if (isolation_parse(iso, &v) < 0)
			return error_invalid(err, "isolation", iso,
					     "isolation: %s: must be segment, tenant or none", iso);
		sp->isolation = (int)v;
	}
	if ((r = jx_labels(obj, "labels", !stored, &sp->labels, err)) < 0)
		return r;
	return 0;
}

void tenant_spec_release(struct tenant_spec *sp)
{
	free(sp->labels);
	sp->labels = NULL;
}

int segment_spec_decode(json_t *obj, bool stored, struct segment_spec *sp, struct error *err)
{
	static const char *const fields[] = { "name", "tenant", "spaces", "labels", NULL };
	static const char *const fields_st[] = { "name", "tenant", "spaces", "labels", "endpoints", NULL };
	int r;

	memset(sp, 0, sizeof(*sp));
	if ((r = jx_only(obj, stored ? fields_st : fields, err)) < 0 ||
	    (r = decode_name(obj, "name", &sp->name, err)) < 0 ||
	    (r = decode_opt_name(obj, "tenant", &sp->tenant, err)) < 0 ||
	    (r = jx_strv(obj, "spaces", &sp->spaces, &sp->nspaces, &sp->spaces_given, err)) < 0 ||
	    (r = jx_labels(obj, "labels", !stored, &sp->labels, err)) < 0)
		goto fail;
	for (size_t i = 0; i < sp->nspaces; i++)
		if ((r = name_check("spaces", sp->spaces[i], err)) < 0)
			goto fail;
	return 0;
fail:
	segment_spec_release(sp);
	return r;
}

void segment_spec_release(struct segment_spec *sp)
{
	free(sp->labels);
	free(sp->spaces);
	sp->labels = NULL;
	sp->spaces = NULL;
}

static int mac_check(const char *mac, struct error *err)
{
	unsigned v[6];
	char tail;

	if (strlen(mac) != 17 ||
	    sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &tail) != 6)
		return error_invalid(err, "mac", mac, "mac: %s: must be six hex bytes such as 02:00:0a:40:00:02", mac);
	return 0;
}

/* security_groups: the names of the SecurityGroups that apply (OpenStack ports). */
static int sgs_check(json_t *obj, json_t *attrs, struct error *err)
{
	const char **v;
	size_t n;
	bool present;
	int r;

	if ((r = jx_strv(obj, "security_groups", &v, &n, &present, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if ((r = name_check("security_groups", v[i], err)) < 0)
			break;
	free(v);
	if (r < 0)
		return r;
	if (present && attrs)
		json_object_set(attrs, "security_groups", json_object_get(obj, "security_groups"));
	return 0;
}

/* The free-text attributes an endpoint carries, checked one by one (stored:
 * as loaded from the store, labels as older versions accepted them). */
static int attrs_check(json_t *obj, json_t *attrs, bool stored, struct error *err)
{
	static const char *const text[] = { "name", "namespace", "interface", NULL };
	const char *s;
	char *labels = NULL;
	int r;

	for (size_t i = 0; text[i]; i++) {
		if ((r = jx_str(obj, text[i], false, &s, err)) < 0)
			return r;
		if (s && strlen(s) > 253)
			return error_invalid(err, text[i], "", "%s: longer than 253 bytes", text[i]);
		if (s && attrs)
			json_object_set_new(attrs, text[i], json_string(s));
	}
	if ((r = jx_str(obj, "interface", false, &s, err)) < 0)
		return r;
	if (s && (strlen(s) == 0 || strlen(s) > 15 || strchr(s, '/') || strchr(s, ' ')))
		return error_invalid(err, "interface", s,
				     "interface: %s: must be a Linux interface name (1-15 bytes, no '/' or space)", s);
	if ((r = jx_str(obj, "mac", false, &s, err)) < 0)
		return r;
	if (s && (r = mac_check(s, err)) < 0)
		return r;
	if (s && attrs)
		json_object_set_new(attrs, "mac", json_string(s));
	if ((r = jx_labels(obj, "labels", !stored, &labels, err)) < 0)
		return r;
	if (labels && attrs)
		json_object_set(attrs, "labels", json_object_get(obj, "labels"));
	free(labels);
	return sgs_check(obj, attrs, err);
}

int endpoint_spec_decode(json_t *obj, bool stored, struct endpoint_spec *sp, struct error *err)
{
	static const char *const fields[] = { "handle", "tenant", "segment", "host", "parent",
					      "kind", "name", "namespace", "interface", "mac",
					      "labels", "security_groups", NULL };
	static const char *const fields_st[] = { "handle", "tenant", "segment", "host", "parent",
						 "kind", "name", "namespace", "interface", "mac",
						 "labels", "security_groups", "addresses", NULL };
	const char *kind;
	json_t *attrs;
	int r;

	memset(sp, 0, sizeof(*sp));
	if ((r = jx_only(obj, stored ? fields_st : fields, err)) < 0 ||
	    (r = jx_str(obj, "handle", true, &sp->handle, err)) < 0 ||
	    (r = handle_check("handle", sp->handle, err)) < 0 ||
	    (r = decode_name(obj, "tenant", &sp->tenant, err)) < 0 ||
	    (r = decode_name(obj, "segment", &sp->segment, err)) < 0 ||
	    (r = decode_opt_name(obj, "host", &sp->host, err)) < 0 ||
	    (r = jx_str(obj, "parent", false, &sp->parent, err)) < 0 ||
	    (sp->parent && (r = handle_check("parent", sp->parent, err)) < 0) ||
	    (r = jx_str(obj, "kind", false, &kind, err)) < 0)
		return r;
	if (kind && ep_kind_parse(kind, &sp->kind) < 0)
		return error_invalid(err, "kind", kind, "kind: %s: must be pod, vm, container or other", kind);
	attrs = json_object();
	if (!attrs)
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	r = attrs_check(obj, attrs, stored, err);
	if (r == 0 && json_object_size(attrs))
		sp->attrs = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(attrs);
	if (r < 0)
		return r;
	if (stored)
		sp->addresses = json_object_get(obj, "addresses");
	return 0;
}

int endpoint_patch_check(json_t *obj, struct error *err)
{
	static const char *const fields[] = { "kind", "name", "namespace", "interface", "mac",
					      "labels", "security_groups", NULL };
	const char *kind;
	uint8_t k;
	int r;

	if ((r = jx_only(obj, fields, err)) < 0 || (r = jx_str(obj, "kind", false, &kind, err)) < 0)
		return r;
	if (json_is_null(json_object_get(obj, "kind")))
		return error_invalid(err, "kind", "null", "kind: cannot be removed, set another kind");
	if (kind && ep_kind_parse(kind, &k) < 0)
		return error_invalid(err, "kind", kind, "kind: %s: must be pod, vm, container or other", kind);
	return attrs_check(obj, NULL, false, err);
}

void endpoint_spec_release(struct endpoint_spec *sp)
{
	free(sp->attrs);
	sp->attrs = NULL;
}

/* ---- loading ---- */

struct load_ctx {
	struct model *m;
	struct error *err;
	const char *kind;
	json_t *pending;   /* groups waiting for their parent; endpoint parent links */
};

static json_t *parse_value(const struct store_kv *kv, struct load_ctx *c)
{
	json_error_t je;
	json_t *o = json_loadb(kv->value, kv->value_len, 0, &je);

	if (!o || !json_is_object(o)) {
		error_set(c->err, EINVAL, 500, "corrupt", "key", kv->key,
			  "store: %s: value is not a JSON object: %s", kv->key, je.text);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Prefix err's message with the store key it came from. */
static void err_in_key(struct error *err, const char *key)
{
	char tmp[sizeof(err->msg)];
	int n;

	if (!err)
		return;
	memcpy(tmp, err->msg, sizeof(tmp));
	n = snprintf(err->msg, sizeof(err->msg), "store: %.200s: ", key);
	if (n > 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, "%.*s",
			 (int)(sizeof(err->msg) - (size_t)n - 1), tmp);
}

static int endpoint_restore_create(struct model *m, const struct endpoint_spec *sp, struct mtxn *tx,
			    struct error *err)
{
	(void)tx;
	return model_endpoint_restore(m, sp, err);
}

#define LOAD_FN(fn, type, decode, create, release)                                  \
	static int fn(const struct store_kv *kv, void *arg)                         \
	{                                                                           \
		struct load_ctx *c = arg;                                           \
		struct type sp;                                                     \
		json_t *o = parse_value(kv, c);                                     \
		int r;                                                              \
		if (!o)                                                             \
			return -EINVAL;                                             \
		r = decode(o, true, &sp, c->err);                                   \
		if (r == 0) {                                                       \
			r = create(c->m, &sp, NULL, c->err);                        \
			release(&sp);                                               \
		}                                                                   \
		json_decref(o);                                                     \
		if (r < 0) {                                                        \
			err_in_key(c->err, kv->key);                                \
			return r;                                                   \
		}                                                                   \
		return 0;                                                           \
	}

LOAD_FN(load_space, space_spec, space_spec_decode, model_space_create, space_spec_release)
LOAD_FN(load_host, host_spec, host_spec_decode, model_host_create, host_spec_release)
LOAD_FN(load_tenant, tenant_spec, tenant_spec_decode, model_tenant_create, tenant_spec_release)
LOAD_FN(load_segment, segment_spec, segment_spec_decode, model_segment_create, segment_spec_release)
LOAD_FN(load_endpoint, endpoint_spec, endpoint_spec_decode, endpoint_restore_create, endpoint_spec_release)

static int load_doc(const struct store_kv *kv, void *arg)
{
	struct load_ctx *c = arg;
	json_t *o = parse_value(kv, c);
	int r;

	if (!o)
		return -EINVAL;
	r = model_doc_put(c->m, o, NULL, NULL, c->err);
	json_decref(o);
	return r < 0 ? r : 0;
}

static int collect(const struct store_kv *kv, void *arg)
{
	struct load_ctx *c = arg;
	json_t *o = parse_value(kv, c);

	if (!o)
		return -EINVAL;
	json_array_append_new(c->pending, o);
	return 0;
}

static int load_block(const struct store_kv *kv, void *arg)
{
	struct load_ctx *c = arg;
	json_t *o = parse_value(kv, c);
	const char *sname, *cidr, *host, *tenant, *seg, *state;
	struct space *s;
	struct host *h;
	struct segment *sg;
	struct prefix p;
	int r = -EINVAL;

	if (!o)
		return -EINVAL;
	sname = json_string_value(json_object_get(o, "space"));
	cidr = json_string_value(json_object_get(o, "cidr"));
	host = json_string_value(json_object_get(o, "host"));
	tenant = json_string_value(json_object_get(o, "tenant"));
	seg = json_string_value(json_object_get(o, "segment"));
	state = json_string_value(json_object_get(o, "state"));
	if (!sname || !cidr || !host || !tenant || !seg || !state || !(s = model_space(c->m, sname)) ||
	    !(h = model_host(c->m, host)) || !(sg = model_segment(c->m, tenant, seg)) ||
	    prefix_parse(cidr, &p, PREFIX_F_STRICT, "cidr", c->err) < 0) {
		error_set(c->err, EINVAL, 500, "corrupt", "key", kv->key,
			  "store: %s: block refers to a missing space, host or segment", kv->key);
		goto out;
	}
	r = model_block_restore(c->m, s, &p, h, sg,
				!strcmp(state, "cooling") ? BLOCK_COOLING : BLOCK_ACTIVE,
				json_integer_value(json_object_get(o, "cool_until")), c->err);
out:
	json_decref(o);
	return r;
}

static int load_groups(struct load_ctx *c, json_t *all)
{
	size_t left = json_array_size(all);
	bool progress = true;

	/* parents first, whatever the key order */
	while (left && progress) {
		size_t i;
		json_t *o;

		progress = false;
		json_array_foreach(all, i, o) {
			struct group_spec sp;
			int r;

			if (json_is_null(o))
				continue;
			r = group_spec_decode(o, true, &sp, c->err);
			if (r < 0)
				return r;
			if (sp.parent && !model_group(c->m, sp.parent)) {
				group_spec_release(&sp);
				continue;
			}
			r = model_group_create(c->m, &sp, NULL, c->err);
			group_spec_release(&sp);
			if (r < 0)
				return r;
			json_array_set_new(all, i, json_null());
			left--;
			progress = true;
		}
	}
	if (left)
		return error_set(c->err, EINVAL, 500, "corrupt", "", "",
				 "store: %zu groups have a parent that does not exist", left);
	return 0;
}

static int link_parents(const struct store_kv *kv, void *arg)
{
	struct load_ctx *c = arg;
	json_t *o = parse_value(kv, c);
	const char *handle, *parent;
	struct endpoint *e, *p;

	if (!o)
		return -EINVAL;
	handle = json_string_value(json_object_get(o, "handle"));
	parent = json_string_value(json_object_get(o, "parent"));
	if (parent) {
		e = handle ? model_endpoint(c->m, handle) : NULL;
		p = model_endpoint(c->m, parent);
		if (!e || !p) {
			json_decref(o);
			return error_set(c->err, EINVAL, 500, "corrupt", "key", kv->key,
					 "store: %s: parent endpoint %s does not exist", kv->key, parent);
		}
		e->parent = p;
		p->nchildren++;
	}
	json_decref(o);
	return 0;
}

static int endpoint_has_parent(const struct store_kv *kv, void *arg)
{
	/* cheap pre-filter so link_parents parses only endpoints with a parent */
	if (memmem(kv->value, kv->value_len, "\"parent\"", 8))
		return link_parents(kv, arg);
	return 0;
}

int model_load(struct model *m, struct store *st, const struct store_ops *ops, struct error *err)
{
	struct load_ctx c = { .m = m, .err = err };
	uint64_t rev;
	int r;

	if ((r = ops->range(st, "/larch/spaces/", load_space, &c, &rev)) < 0)
		return r;
	c.pending = json_array();
	r = ops->range(st, "/larch/groups/", collect, &c, &rev);
	if (r == 0)
		r = load_groups(&c, c.pending);
	json_decref(c.pending);
	if (r < 0)
		return r;
	if ((r = ops->range(st, "/larch/hosts/", load_host, &c, &rev)) < 0 ||
	    (r = ops->range(st, "/larch/tenants/", load_tenant, &c, &rev)) < 0 ||
	    (r = ops->range(st, "/larch/segments/", load_segment, &c, &rev)) < 0 ||
	    (r = ops->range(st, "/larch/blocks/", load_block, &c, &rev)) < 0 ||
	    (r = ops->range(st, "/larch/endpoints/", load_endpoint, &c, &rev)) < 0 ||
	    (r = ops->range(st, "/larch/endpoints/", endpoint_has_parent, &c, &rev)) < 0 ||
	    (r = ops->range(st, "/larch/docs/", load_doc, &c, &rev)) < 0)
		return r;
	return 0;
}
