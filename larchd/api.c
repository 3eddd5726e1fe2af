/* SPDX-License-Identifier: MIT */
/*
 * DOC: API handlers for the topology and tenancy objects
 *
 * Spaces, groups, hosts, tenants and segments share one shape: decode the
 * body strictly (no lock), mutate under the write lock, answer with the
 * object (201 created, 200 when an identical object already existed), all
 * through create()/get()/delete() below with a small table per kind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "larchd.h"
#include "log.h"

json_t *body_object(struct req *rq)
{
	struct error err = { 0 };
	json_t *o = jx_parse_object(rq->body, rq->body_len, &err);

	if (!o)
		req_error(rq, &err);
	return o;
}

uint64_t read_begin(struct req *rq)
{
	uint64_t rev;

	pthread_rwlock_rdlock(&rq->d->lock);
	/* no mutation can be applied while we hold the lock: the model is at
	 * the last submitted ticket, and the answer waits for it */
	rq->ticket = commit_ticket(rq->d->commit, &rev);
	return rev;
}

void read_end(struct req *rq)
{
	pthread_rwlock_unlock(&rq->d->lock);
}

void write_begin(struct larchd *d, struct mtxn *tx)
{
	mtxn_init(tx);
	pthread_rwlock_wrlock(&d->lock);
	model_sweep(d->model, tx);
}

void write_end(struct req *rq, struct mtxn *tx)
{
	rq->ticket = commit_submit(rq->d->commit, tx);
	pthread_rwlock_unlock(&rq->d->lock);
	mtxn_release(tx);
}

/* write_end, then the answer: err when r < 0, else status with out (or
 * nothing: out is dropped on an error). */
void write_reply(struct req *rq, struct mtxn *tx, int r, const struct error *err, int status,
		 json_t *out)
{
	write_end(rq, tx);
	if (r < 0) {
		json_decref(out);
		req_error(rq, err);
	} else {
		req_json(rq, status, out);
	}
}

json_t *list_body(uint64_t rev, json_t *items)
{
	json_t *o = json_object();

	json_object_set_new(o, "revision", json_integer((json_int_t)rev));
	json_object_set_new(o, "items", items);
	return o;
}

/* ---- the per-kind table ---- */

union spec {
	struct space_spec space;
	struct group_spec group;
	struct host_spec host;
	struct tenant_spec tenant;
	struct segment_spec segment;
};

struct kind {
	const char *name;
	int (*decode)(json_t *obj, union spec *sp, struct req *rq, struct error *err);
	void (*release)(union spec *sp);
	int (*create)(struct model *m, union spec *sp, struct mtxn *tx, struct error *err);
	/* find by the path arguments (or by the spec after a create) */
	const void *(*find)(struct model *m, const char *a0, const char *a1);
	const char *(*spec_name)(union spec *sp, const char **a1);
	json_t *(*to_json)(struct model *m, const void *obj);
	int (*del)(struct model *m, const char *a0, const char *a1, struct mtxn *tx, struct error *err);
};

static int dec_space(json_t *o, union spec *sp, struct req *rq, struct error *err)
{
	(void)rq;
	return space_spec_decode(o, false, &sp->space, err);
}
static int dec_group(json_t *o, union spec *sp, struct req *rq, struct error *err)
{
	(void)rq;
	return group_spec_decode(o, false, &sp->group, err);
}
static int dec_host(json_t *o, union spec *sp, struct req *rq, struct error *err)
{
	(void)rq;
	return host_spec_decode(o, false, &sp->host, err);
}
static int dec_tenant(json_t *o, union spec *sp, struct req *rq, struct error *err)
{
	(void)rq;
	return tenant_spec_decode(o, false, &sp->tenant, err);
}
static int dec_segment(json_t *o, union spec *sp, struct req *rq, struct error *err)
{
	int r = segment_spec_decode(o, false, &sp->segment, err);

	if (r < 0)
		return r;
	/* the tenant comes from the path; a body that names another is an error */
	if (sp->segment.tenant && strcmp(sp->segment.tenant, rq->args[0])) {
		r = error_invalid(err, "tenant", sp->segment.tenant,
				  "tenant: %s does not match the path's tenant %s",
				  sp->segment.tenant, rq->args[0]);
		segment_spec_release(&sp->segment);
		return r;
	}
	sp->segment.tenant = rq->args[0];
	return 0;
}

static void rel_space(union spec *sp) { space_spec_release(&sp->space); }
static void rel_group(union spec *sp) { group_spec_release(&sp->group); }
static void rel_host(union spec *sp) { host_spec_release(&sp->host); }
static void rel_tenant(union spec *sp) { tenant_spec_release(&sp->tenant); }
static void rel_segment(union spec *sp) { segment_spec_release(&sp->segment); }

static int cr_space(struct model *m, union spec *sp, struct mtxn *tx, struct error *err)
{
	return model_space_create(m, &sp->space, tx, err);
}
static int cr_group(struct model *m, union spec *sp, struct mtxn *tx, struct error *err)
{
	return model_group_create(m, &sp->group, tx, err);
}
static int cr_host(struct model *m, union spec *sp, struct mtxn *tx, struct error *err)
{
	return model_host_create(m, &sp->host, tx, err);
}
static int cr_tenant(struct model *m, union spec *sp, struct mtxn *tx, struct error *err)
{
	return model_tenant_create(m, &sp->tenant, tx, err);
}
static int cr_segment(struct model *m, union spec *sp, struct mtxn *tx, struct error *err)
{
	return model_segment_create(m, &sp->segment, tx, err);
}

static const void *f_space(struct model *m, const char *a, const char *b) { (void)b; return model_space(m, a); }
static const void *f_group(struct model *m, const char *a, const char *b) { (void)b; return model_group(m, a); }
static const void *f_host(struct model *m, const char *a, const char *b) { (void)b; return model_host(m, a); }
static const void *f_tenant(struct model *m, const char *a, const char *b) { (void)b; return model_tenant(m, a); }
static const void *f_segment(struct model *m, const char *a, const char *b) { return model_segment(m, a, b); }

static const char *n_space(union spec *sp, const char **b) { *b = NULL; return sp->space.name; }
static const char *n_group(union spec *sp, const char **b) { *b = NULL; return sp->group.name; }
static const char *n_host(union spec *sp, const char **b) { *b = NULL; return sp->host.name; }
static const char *n_tenant(union spec *sp, const char **b) { *b = NULL; return sp->tenant.name; }
static const char *n_segment(union spec *sp, const char **b) { *b = sp->segment.name; return sp->segment.tenant; }

static json_t *j_space(struct model *m, const void *o) { return space_json(m, o); }
static json_t *j_group(struct model *m, const void *o) { return group_json(m, o); }
static json_t *j_host(struct model *m, const void *o) { return host_json(m, o); }
static json_t *j_tenant(struct model *m, const void *o) { return tenant_json(m, o); }
static json_t *j_segment(struct model *m, const void *o) { return segment_json(m, o); }

static int d_space(struct model *m, const char *a, const char *b, struct mtxn *tx, struct error *err)
{
	(void)b;
	return model_space_delete(m, a, tx, err);
}
static int d_group(struct model *m, const char *a, const char *b, struct mtxn *tx, struct error *err)
{
	(void)b;
	return model_group_delete(m, a, tx, err);
}
static int d_host(struct model *m, const char *a, const char *b, struct mtxn *tx, struct error *err)
{
	(void)b;
	return model_host_delete(m, a, tx, err);
}
static int d_tenant(struct model *m, const char *a, const char *b, struct mtxn *tx, struct error *err)
{
	(void)b;
	return model_tenant_delete(m, a, tx, err);
}
static int d_segment(struct model *m, const char *a, const char *b, struct mtxn *tx, struct error *err)
{
	return model_segment_delete(m, a, b, tx, err);
}

static const struct kind K_SPACE = { "space", dec_space, rel_space, cr_space, f_space, n_space, j_space, d_space };
static const struct kind K_GROUP = { "group", dec_group, rel_group, cr_group, f_group, n_group, j_group, d_group };
static const struct kind K_HOST = { "host", dec_host, rel_host, cr_host, f_host, n_host, j_host, d_host };
static const struct kind K_TENANT = { "tenant", dec_tenant, rel_tenant, cr_tenant, f_tenant, n_tenant, j_tenant, d_tenant };
static const struct kind K_SEGMENT = { "segment", dec_segment, rel_segment, cr_segment, f_segment, n_segment, j_segment, d_segment };

static void create(struct req *rq, const struct kind *k)
{
	struct larchd *d = rq->d;
	struct error err = { 0 };
	union spec sp;
	struct mtxn tx;
	json_t *body = body_object(rq), *out = NULL;
	const char *a0, *a1;
	int r;

	if (!body)
		return;
	if (k->decode(body, &sp, rq, &err) < 0) {
		req_error(rq, &err);
		json_decref(body);
		return;
	}
	write_begin(d, &tx);
	r = k->create(d->model, &sp, &tx, &err);
	if (r >= 0) {
		a0 = k->spec_name(&sp, &a1);
		out = k->to_json(d->model, k->find(d->model, a0, a1));
	}
	write_reply(rq, &tx, r, &err, r == 1 ? 200 : 201, out);
	k->release(&sp);
	json_decref(body);
}

static void get(struct req *rq, const struct kind *k)
{
	struct larchd *d = rq->d;
	const void *o;
	json_t *out = NULL;

	bool tenant_known;

	read_begin(rq);
	o = k->find(d->model, rq->args[0], rq->args[1]);
	if (o)
		out = k->to_json(d->model, o);
	tenant_known = k == &K_SEGMENT && model_tenant(d->model, rq->args[0]);
	read_end(rq);
	if (out) {
		req_json(rq, 200, out);
	} else {
		struct error err = { 0 };

		if (k == &K_SEGMENT && !tenant_known)
			error_not_found(&err, "tenant", rq->args[0], "tenant %s not found", rq->args[0]);
		else
			error_not_found(&err, "name", rq->args[k == &K_SEGMENT ? 1 : 0], "%s %s not found",
					k->name, rq->args[k == &K_SEGMENT ? 1 : 0]);
		req_error(rq, &err);
	}
}

static void del(struct req *rq, const struct kind *k)
{
	struct larchd *d = rq->d;
	struct error err = { 0 };
	struct mtxn tx;
	int r;

	write_begin(d, &tx);
	r = k->del(d->model, rq->args[0], rq->args[1], &tx, &err);
	write_reply(rq, &tx, r, &err, 204, NULL);
}

static int cmp_json_name(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

	return strcmp(json_string_value(json_object_get(x, "name")),
		      json_string_value(json_object_get(y, "name")));
}

/* Sort a list of objects by name, for stable output. */
static json_t *sorted(json_t *items)
{
	size_t n = json_array_size(items);
	json_t **v = calloc(n + 1, sizeof(*v)), *out = json_array();

	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(items, i);
	qsort(v, n, sizeof(*v), cmp_json_name);
	for (size_t i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(items);
	return out;
}

static void list_hmap(struct req *rq, const struct kind *k, const struct hmap *(*map)(struct model *))
{
	struct larchd *d = rq->d;
	json_t *items = json_array();
	uint64_t rev;
	const void *o;
	size_t it = 0;

	rev = read_begin(rq);
	while ((o = hmap_next(map(d->model), &it)))
		json_array_append_new(items, k->to_json(d->model, o));
	read_end(rq);
	req_json(rq, 200, list_body(rev, sorted(items)));
}

static const struct hmap *m_groups(struct model *m) { return &m->groups; }
static const struct hmap *m_hosts(struct model *m) { return &m->hosts; }
static const struct hmap *m_tenants(struct model *m) { return &m->tenants; }

void api_space_list(struct req *rq)
{
	struct larchd *d = rq->d;
	json_t *items = json_array();
	uint64_t rev = read_begin(rq);

	for (size_t i = 0; i < d->model->nspaces; i++)
		json_array_append_new(items, space_json(d->model, d->model->spaces[i]));
	read_end(rq);
	req_json(rq, 200, list_body(rev, sorted(items)));
}

void api_space_create(struct req *rq) { create(rq, &K_SPACE); }
void api_space_get(struct req *rq) { get(rq, &K_SPACE); }
void api_space_delete(struct req *rq) { del(rq, &K_SPACE); }
void api_group_list(struct req *rq) { list_hmap(rq, &K_GROUP, m_groups); }
void api_group_create(struct req *rq) { create(rq, &K_GROUP); }
void api_group_get(struct req *rq) { get(rq, &K_GROUP); }
void api_group_delete(struct req *rq) { del(rq, &K_GROUP); }
void api_host_list(struct req *rq) { list_hmap(rq, &K_HOST, m_hosts); }
void api_host_create(struct req *rq) { create(rq, &K_HOST); }
void api_host_get(struct req *rq) { get(rq, &K_HOST); }
void api_host_delete(struct req *rq) { del(rq, &K_HOST); }
void api_tenant_list(struct req *rq) { list_hmap(rq, &K_TENANT, m_tenants); }
void api_tenant_create(struct req *rq) { create(rq, &K_TENANT); }
void api_tenant_get(struct req *rq) { get(rq, &K_TENANT); }
void api_tenant_delete(struct req *rq) { del(rq, &K_TENANT); }
void api_segment_create(struct req *rq) { create(rq, &K_SEGMENT); }
void api_segment_get(struct req *rq) { get(rq, &K_SEGMENT); }
void api_segment_delete(struct req *rq) { del(rq, &K_SEGMENT); }

void api_segment_list(struct req *rq)
{
	struct larchd *d = rq->d;
	json_t *items = json_array();
	const struct segment *sg;
	size_t it = 0;
	uint64_t rev = read_begin(rq);
	bool known = model_tenant(d->model, rq->args[0]) != NULL;

	while ((sg = hmap_next(&d->model->segments, &it)))
		if (!strcmp(sg->tenant->name, rq->args[0]))
			json_array_append_new(items, segment_json(d->model, sg));
	read_end(rq);
	if (!known) {
		struct error err = { 0 };

		json_decref(items);
		error_not_found(&err, "tenant", rq->args[0], "tenant %s not found", rq->args[0]);
		req_error(rq, &err);
		return;
	}
	req_json(rq, 200, list_body(rev, sorted(items)));
}
