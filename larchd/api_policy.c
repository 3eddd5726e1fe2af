/* SPDX-License-Identifier: MIT */
/*
 * DOC: API handlers for policy documents and namespaces
 *
 * POST /v1/policies takes a Policy, NetworkPolicy or SecurityGroup document
 * (its "kind"; Policy when absent) and creates or replaces it: 201 created,
 * 200 replaced or identical. POST /v1/namespaces does the same for Namespace
 * documents (their labels feed namespaceSelectors). GET lists and gets them,
 * DELETE removes them; a NetworkPolicy is addressed by namespace and name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "larchd.h"
#include "policy.h"

static void put(struct req *rq, bool ns_only)
{
	struct larchd *d = rq->d;
	struct error err = { 0 };
	json_t *body = body_object(rq), *out = NULL;
	const struct doc *doc;
	const char *kind;
	struct mtxn tx;
	int r;

	if (!body)
		return;
	kind = json_string_value(json_object_get(body, "kind"));
	if (ns_only && !kind)
		json_object_set_new(body, "kind", json_string("Namespace"));
	else if (ns_only ? strcmp(kind, "Namespace") : kind && !strcmp(kind, "Namespace")) {
		error_invalid(&err, "kind", kind, "kind: %s: %s", kind,
			      ns_only ? "POST /v1/namespaces takes Namespace documents"
				      : "Namespace documents go to POST /v1/namespaces");
		req_error(rq, &err);
		json_decref(body);
		return;
	}
	write_begin(d, &tx);
	r = model_doc_put(d->model, body, &tx, &doc, &err);
	if (r >= 0)
		out = json_loads(doc->value, 0, NULL);
	write_reply(rq, &tx, r, &err, r == 0 ? 201 : 200, out);
	json_decref(body);
}

static int cmp_doc(const void *a, const void *b)
{
	return strcmp((*(const struct doc *const *)a)->id, (*(const struct doc *const *)b)->id);
}

static void list(struct req *rq, bool namespaces)
{
	struct larchd *d = rq->d;
	const char *kind = req_query(rq, "kind");
	json_t *items = json_array();
	const struct doc *doc, **ids;
	size_t it = 0, n = 0;
	uint64_t rev;

	rev = read_begin(rq);
	ids = calloc(d->model->docs.len + 1, sizeof(*ids));
	while (ids && (doc = hmap_next(&d->model->docs, &it))) {
		if ((doc->kind == PK_NAMESPACE) != namespaces)
			continue;
		if (kind && strcmp(kind, pol_kind_name(doc->kind)))
			continue;
		ids[n++] = doc;
	}
	qsort(ids, n, sizeof(*ids), cmp_doc); /* stable order: by ID */
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, json_loads(ids[i]->value, 0, NULL));
	read_end(rq);
	free(ids);
	req_json(rq, 200, list_body(rev, items));
}

/* The document's ID from the path: /v1/policies/KIND/NAME,
 * /v1/policies/NetworkPolicy/NAMESPACE/NAME, /v1/namespaces/NAME. */
static void path_id(struct req *rq, bool ns, char *id, size_t len)
{
	if (ns)
		snprintf(id, len, "Namespace/%s", rq->args[0]);
	else if (rq->args[2])
		snprintf(id, len, "%s/%s/%s", rq->args[0], rq->args[1], rq->args[2]);
	else
		snprintf(id, len, "%s/%s", rq->args[0], rq->args[1]);
}

static void get_one(struct req *rq, bool ns)
{
	struct larchd *d = rq->d;
	const struct doc *doc;
	json_t *out = NULL;
	char id[400];

	path_id(rq, ns, id, sizeof(id));
	read_begin(rq);
	if ((doc = model_doc(d->model, id)))
		out = json_loads(doc->value, 0, NULL);
	read_end(rq);
	if (out) {
		req_json(rq, 200, out);
	} else {
		struct error err = { 0 };

		error_not_found(&err, "name", id, "%s not found", id);
		req_error(rq, &err);
	}
}

static void del_one(struct req *rq, bool ns)
{
	struct larchd *d = rq->d;
	struct error err = { 0 };
	struct mtxn tx;
	char id[400];
	int r;

	path_id(rq, ns, id, sizeof(id));
	write_begin(d, &tx);
	r = model_doc_delete(d->model, id, &tx, &err);
	write_reply(rq, &tx, r, &err, 204, NULL);
}

void api_policy_put(struct req *rq) { put(rq, false); }
void api_policy_list(struct req *rq) { list(rq, false); }
void api_policy_get(struct req *rq) { get_one(rq, false); }
void api_policy_delete(struct req *rq) { del_one(rq, false); }
void api_namespace_put(struct req *rq) { put(rq, true); }
void api_namespace_list(struct req *rq) { list(rq, true); }
void api_namespace_get(struct req *rq) { get_one(rq, true); }
void api_namespace_delete(struct req *rq) { del_one(rq, true); }

/* PATCH /v1/tenants/NAME {"isolation": "segment" | "tenant" | "none"} */
void api_tenant_patch(struct req *rq)
{
	static const char *const fields[] = { "isolation", NULL };
	struct larchd *d = rq->d;
	struct error err = { 0 };
	json_t *body = body_object(rq), *out = NULL;
	const char *iso;
	struct mtxn tx;
	int r;

	if (!body)
		return;
	if (jx_only(body, fields, &err) < 0 || jx_str(body, "isolation", false, &iso, &err) < 0) {
		req_error(rq, &err);
		json_decref(body);
		return;
	}
	write_begin(d, &tx);
	r = model_tenant_patch(d->model, rq->args[0], iso, &tx, &err);
	if (r >= 0)
		out = tenant_json(d->model, model_tenant(d->model, rq->args[0]));
	write_reply(rq, &tx, r, &err, 200, out);
	json_decref(body);
}
