/* SPDX-License-Identifier: MIT */
/*
 * DOC: API handlers for endpoints and blocks
 *
 * POST /v1/endpoints is the allocation hot path: decode without the lock,
 * allocate under it, build the answer under it, then wait for the group
 * commit outside it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "larchd.h"

static void not_found(struct req *rq, const char *handle)
{
	struct error err = { 0 };

	error_not_found(&err, "handle", handle, "endpoint %s not found", handle);
	req_error(rq, &err);
}

void api_endpoint_create(struct req *rq)
{
	struct larchd *d = rq->d;
	struct error err = { 0 };
	struct endpoint_spec sp;
	struct endpoint *e;
	struct mtxn tx;
	json_t *body = body_object(rq), *out = NULL;
	int r;

	if (!body)
		return;
	if (endpoint_spec_decode(body, false, &sp, &err) < 0) {
		req_error(rq, &err);
		json_decref(body);
		return;
	}
	write_begin(d, &tx);
	r = model_endpoint_create(d->model, &sp, &tx, &e, &err);
	if (r >= 0)
		out = endpoint_json(d->model, e);
	write_end(d, &tx);
	if (r < 0)
		req_error(rq, &err);
	else
		req_json(rq, r == 1 ? 200 : 201, out);
	endpoint_spec_release(&sp);
	json_decref(body);
}

void api_endpoint_get(struct req *rq)
{
	struct larchd *d = rq->d;
	struct endpoint *e;
	json_t *out = NULL;

	read_begin(d);
	if ((e = model_endpoint(d->model, rq->args[0])))
		out = endpoint_json(d->model, e);
	read_end(d);
	if (out)
		req_json(rq, 200, out);
	else
		not_found(rq, rq->args[0]);
}

void api_endpoint_list(struct req *rq)
{
	struct larchd *d = rq->d;
	const char *host = req_query(rq, "host"), *tenant = req_query(rq, "tenant"),
		   *segment = req_query(rq, "segment");
	json_t *items = json_array();
	struct endpoint *e;
	size_t it = 0;
	uint64_t rev = read_begin(d);

	while ((e = hmap_next(&d->model->endpoints, &it))) {
		if (host && (!e->host || strcmp(e->host->name, host)))
			continue;
		if (tenant && strcmp(e->segment->tenant->name, tenant))
			continue;
		if (segment && strcmp(e->segment->name, segment))
			continue;
		json_array_append_new(items, endpoint_json(d->model, e));
	}
	read_end(d);
	req_json(rq, 200, list_body(rev, items));
}

void api_endpoint_patch(struct req *rq)
{
	struct larchd *d = rq->d;
	struct error err = { 0 };
	struct endpoint *e;
	struct mtxn tx;
	json_t *body = body_object(rq), *out = NULL;
	int r;

	if (!body)
		return;
	if (endpoint_patch_check(body, &err) < 0) {
		req_error(rq, &err);
		json_decref(body);
		return;
	}
	write_begin(d, &tx);
	r = model_endpoint_patch(d->model, rq->args[0], body, &tx, &e, &err);
	if (r >= 0)
		out = endpoint_json(d->model, e);
	write_end(d, &tx);
	if (r < 0)
		req_error(rq, &err);
	else
		req_json(rq, 200, out);
	json_decref(body);
}

void api_endpoint_delete(struct req *rq)
{
	struct larchd *d = rq->d;
	struct error err = { 0 };
	struct mtxn tx;
	int r;

	write_begin(d, &tx);
	r = model_endpoint_delete(d->model, rq->args[0], &tx, &err);
	write_end(d, &tx);
	if (r < 0)
		req_error(rq, &err);
	else
		req_json(rq, 204, NULL);
}

void api_endpoint_bind(struct req *rq)
{
	static const char *const fields[] = { "host", NULL };
	struct larchd *d = rq->d;
	struct error err = { 0 };
	struct endpoint *e;
	struct mtxn tx;
	json_t *body = body_object(rq), *out = NULL, *hv;
	const char *host = NULL;
	int r;

	if (!body)
		return;
	hv = json_object_get(body, "host");
	if (jx_only(body, fields, &err) < 0 || (!hv && error_invalid(&err, "host", "",
			"host: required (a host name, or null to unbind)")) ||
	    jx_str(body, "host", false, &host, &err) < 0 ||
	    (host && name_check("host", host, &err) < 0)) {
		req_error(rq, &err);
		json_decref(body);
		return;
	}
	write_begin(d, &tx);
	r = model_endpoint_bind(d->model, rq->args[0], host, &tx, &e, &err);
	if (r >= 0)
		out = endpoint_json(d->model, e);
	write_end(d, &tx);
	if (r < 0)
		req_error(rq, &err);
	else
		req_json(rq, 200, out);
	json_decref(body);
}

void api_block_list(struct req *rq)
{
	struct larchd *d = rq->d;
	const char *host = req_query(rq, "host"), *space = req_query(rq, "space");
	json_t *items = json_array();
	uint64_t rev = read_begin(d);

	for (size_t i = 0; i < d->model->nspaces; i++) {
		struct space *s = d->model->spaces[i];
		struct block *b;
		size_t it = 0;

		if (space && strcmp(s->name, space))
			continue;
		while ((b = hmap_next(&s->blocks, &it)))
			if (!host || !strcmp(b->host->name, host))
				json_array_append_new(items, block_json(d->model, b));
	}
	read_end(d);
	req_json(rq, 200, list_body(rev, items));
}

void api_tree(struct req *rq)
{
	struct larchd *d = rq->d;
	uint64_t rev = read_begin(d);
	json_t *t = model_tree_json(d->model);

	read_end(d);
	if (!t) {
		struct error err = { 0 };

		error_set(&err, ENOMEM, 500, "internal", "", "", "out of memory");
		req_error(rq, &err);
		return;
	}
	json_object_set_new(t, "revision", json_integer((json_int_t)rev));
	req_json(rq, 200, t);
}
