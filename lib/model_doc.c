/* SPDX-License-Identifier: MIT */
/*
 * DOC: model: policy documents
 *
 * Policies, NetworkPolicies, SecurityGroups and Namespaces are stored as the
 * JSON they were given (canonical: compact, sorted keys) under
 * /larch/docs/ID, after lib/policy.c has decoded them strictly. A put with
 * the same ID replaces the document (kubectl apply's meaning); references
 * (tenants, segments, security groups) may name objects that do not exist
 * yet, as in Kubernetes: they match nothing until they do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model_internal.h"
#include "policy.h"

static bool eq_id(const void *val, const void *key)
{
	return !strcmp(((const struct doc *)val)->id, key);
}

const struct doc *model_doc(const struct model *m, const char *id)
{
	return hmap_find(&m->docs, hash_str(id), eq_id, id);
}

int model_doc_put(struct model *m, json_t *obj, struct mtxn *tx, const struct doc **out,
		  struct error *err)
{
	struct policy p;
	struct doc *d;
	char *id, *value;
	int r;

	/* tx: a request, whose labels must follow the syntax; without: loading */
	if ((r = (tx ? policy_parse_new : policy_parse)(obj, &p, err)) < 0)
		return r;
	id = policy_id(&p);
	if (!json_object_get(obj, "kind"))
		json_object_set_new(obj, "kind", json_string(pol_kind_name(p.kind)));
	value = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (!id || !value) {
		policy_release(&p);
		free(id);
		free(value);
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	}
	d = (struct doc *)model_doc(m, id);
	if (d && !strcmp(d->value, value)) {
		r = 1;
		free(value);
		free(id);
	} else if (d) {
		r = 2;
		free(d->value);
		d->value = value;
		free(id);
	} else {
		if (!(d = calloc(1, sizeof(*d))) || hmap_insert(&m->docs, hash_str(id), d) < 0) {
			free(d);
			free(id);
			free(value);
			policy_release(&p);
			return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
		}
		d->id = id;
		d->value = value;
		r = 0;
	}
	d->kind = (uint8_t)p.kind;
	policy_release(&p);
	if (tx && r != 1)
		mtxn_put(tx, xasprintf("/larch/docs/%s", d->id), xstrdup(d->value));
	if (out)
		*out = d;
	return r;
}

int model_doc_delete(struct model *m, const char *id, struct mtxn *tx, struct error *err)
{
	struct doc *d = hmap_remove(&m->docs, hash_str(id), eq_id, id);

	if (!d)
		return error_not_found(err, "name", id, "%s not found", id);
	if (tx)
		mtxn_del(tx, xasprintf("/larch/docs/%s", d->id));
	free(d->id);
	free(d->value);
	free(d);
	return 0;
}

void model_docs_free(struct model *m)
{
	struct doc *d;
	size_t it = 0;

	while ((d = hmap_next(&m->docs, &it))) {
		free(d->id);
		free(d->value);
		free(d);
	}
	hmap_release(&m->docs);
}
