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

/* The result of one failed item: its status and the usual error body. */
static json_t *item_error(const struct error *err)
{
	return json_pack("{s:i,s:{s:s,s:s,s:s,s:s}}", "status", err->status, "error", "code",
			 err->code, "field", err->field, "value", err->value, "message", err->msg);
}

#define BULK_MAX 1000

/*
 * {"endpoints": [spec, ...]}: up to BULK_MAX independent allocations in one
 * request. Each item is its own transaction with its own result and
 * revision, exactly as if it had been POSTed alone (an item that fails
 * changes nothing); the answer comes when all of them are durable.
 */
static void endpoint_bulk(struct req *rq, json_t *body)
{
	struct larchd *d = rq->d;
	json_t *items = json_object_get(body, "endpoints"), *results, *it;
	struct endpoint_spec *specs;
	struct error *errs;
	struct mtxn tx;
	size_t n = json_array_size(items), i;
	const char *k;
	json_t *v;

	json_object_foreach(body, k, v) {
		if (strcmp(k, "endpoints")) {
			struct error err = { 0 };

			error_set(&err, EINVAL, 400, "unknown_field", k, "",
				  "%s: unknown field (a bulk request has only \"endpoints\")", k);
			req_error(rq, &err);
			return;
		}
	}
	if (!json_is_array(items) || n == 0 || n > BULK_MAX) {
		struct error err = { 0 };

		error_invalid(&err, "endpoints", "", "endpoints: must be an array of 1-%d endpoints",
			      BULK_MAX);
		req_error(rq, &err);
		return;
	}
	specs = calloc(n, sizeof(*specs));
	errs = calloc(n, sizeof(*errs));
	results = json_array();
	if (!specs || !errs || !results)
		goto out;
	/* decode every item first, without the lock */
	json_array_foreach(items, i, it) {
		if (!json_is_object(it))
			error_invalid(&errs[i], "", "", "endpoints[%zu]: must be an object", i);
		else
			endpoint_spec_decode(it, false, &specs[i], &errs[i]);
	}
	write_begin(d, &tx);
	for (i = 0; i < n; i++) {
		struct endpoint *e;
		int r = -1;

		if (!errs[i].status) {
			r = model_endpoint_create(d->model, &specs[i], &tx, &e, &errs[i]);
			/* one transaction (and revision) per item */
			if (tx.n)
				commit_submit(d->commit, &tx);
		}
		if (r < 0)
			json_array_append_new(results, item_error(&errs[i]));
		else
			json_array_append_new(results,
					      json_pack("{s:i,s:o}", "status", r == 1 ? 200 : 201,
							"endpoint", endpoint_json(d->model, e)));
	}
	write_end(rq, &tx);
	req_json(rq, 200, json_pack("{s:o}", "results", results));
	results = NULL;
	for (i = 0; i < n; i++)
		endpoint_spec_release(&specs[i]);
out:
	json_decref(results);
	free(specs);
	free(errs);
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
	if (json_object_get(body, "endpoints")) {
		endpoint_bulk(rq, body);
		json_decref(body);
		return;
	}
	if (endpoint_spec_decode(body, false, &sp, &err) < 0) {
		req_error(rq, &err);
		json_decref(body);
		return;
	}
	write_begin(d, &tx);
	r = model_endpoint_create(d->model, &sp, &tx, &e, &err);
	if (r >= 0)
		out = endpoint_json(d->model, e);
	write_reply(rq, &tx, r, &err, r == 1 ? 200 : 201, out);
	endpoint_spec_release(&sp);
	json_decref(body);
}

void api_endpoint_get(struct req *rq)
{
	struct larchd *d = rq->d;
	struct endpoint *e;
	json_t *out = NULL;

	read_begin(rq);
	if ((e = model_endpoint(d->model, rq->args[0])))
		out = endpoint_json(d->model, e);
	read_end(rq);
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
	uint64_t rev = read_begin(rq);

	while ((e = hmap_next(&d->model->endpoints, &it))) {
		if (host && (!e->host || strcmp(e->host->name, host)))
			continue;
		if (tenant && strcmp(e->segment->tenant->name, tenant))
			continue;
		if (segment && strcmp(e->segment->name, segment))
			continue;
		json_array_append_new(items, endpoint_json(d->model, e));
	}
	read_end(rq);
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
	write_reply(rq, &tx, r, &err, 200, out);
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
	write_reply(rq, &tx, r, &err, 204, NULL);
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
	write_reply(rq, &tx, r, &err, 200, out);
	json_decref(body);
}

void api_block_list(struct req *rq)
{
	struct larchd *d = rq->d;
	const char *host = req_query(rq, "host"), *space = req_query(rq, "space");
	json_t *items = json_array();
	uint64_t rev = read_begin(rq);

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
	read_end(rq);
	req_json(rq, 200, list_body(rev, items));
}

void api_tree(struct req *rq)
{
	struct larchd *d = rq->d;
	uint64_t rev = read_begin(rq);
	json_t *t = model_tree_json(d->model);

	read_end(rq);
	if (!t) {
		struct error err = { 0 };

		error_set(&err, ENOMEM, 500, "internal", "", "", "out of memory");
		req_error(rq, &err);
		return;
	}
	json_object_set_new(t, "revision", json_integer((json_int_t)rev));
	req_json(rq, 200, t);
}
