/* SPDX-License-Identifier: MIT */
/*
 * DOC: the change feed, health and metrics
 *
 * /v1/changes reads the store's change log (durable changes only) after
 * `since`, long-polling on the group-commit condition when there is nothing
 * newer yet. Agents list once, then follow the feed from the list's revision.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "larchd.h"

static int query_int(struct req *rq, const char *name, long long def, long long min,
		     long long max, long long *out)
{
	const char *v = req_query(rq, name);
	char *end;
	long long x;

	if (!v) {
		*out = def;
		return 0;
	}
	errno = 0;
	x = strtoll(v, &end, 10);
	if (!*v || *end || errno || x < min || x > max) {
		struct error err = { 0 };

		error_invalid(&err, name, v, "%s: %s: must be an integer %lld-%lld", name, v, min, max);
		req_error(rq, &err);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

/* "/larch/endpoints/x" -> "endpoint" */
static json_t *kind_of(const char *key)
{
	static const char *const kinds[][2] = {
		{ "/larch/spaces/", "space" }, { "/larch/groups/", "group" },
		{ "/larch/hosts/", "host" }, { "/larch/tenants/", "tenant" },
		{ "/larch/segments/", "segment" }, { "/larch/blocks/", "block" },
		{ "/larch/endpoints/", "endpoint" }, { "/larch/docs/Namespace/", "namespace" },
		{ "/larch/docs/", "policy" },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strncmp(key, kinds[i][0], strlen(kinds[i][0])))
			return json_string(kinds[i][1]);
	return json_string("other");
}

struct feed {
	json_t *changes;
	uint64_t last;
};

static int add_change(const struct store_change *ch, void *arg)
{
	struct feed *f = arg;
	json_t *c = json_object();

	json_object_set_new(c, "revision", json_integer((json_int_t)ch->rev));
	json_object_set_new(c, "type", json_string(ch->type == STORE_PUT ? "put" : "delete"));
	json_object_set_new(c, "kind", kind_of(ch->key));
	json_object_set_new(c, "key", json_string(ch->key));
	if (ch->type == STORE_PUT) {
		json_t *o = json_loadb(ch->value, ch->value_len, 0, NULL);

		json_object_set_new(c, "object", o ? o : json_null());
	}
	json_array_append_new(f->changes, c);
	f->last = ch->rev;
	return 0;
}

void api_changes(struct req *rq)
{
	struct larchd *d = rq->d;
	struct feed f = { 0 };
	long long since, wait, limit;
	uint64_t cur;
	int r;

	if (query_int(rq, "since", 0, 0, INT64_MAX, &since) < 0 ||
	    query_int(rq, "wait", 0, 0, 300, &wait) < 0 ||
	    query_int(rq, "limit", 1000, 1, 10000, &limit) < 0)
		return;
	cur = commit_revision(d->commit);
	if (cur <= (uint64_t)since && wait > 0 && !rq->resumed) {
		/* long-poll: the HTTP layer parks the connection and calls us
		 * again when the revision moves or the wait is over */
		rq->wait_since = (uint64_t)since;
		rq->wait_ms = wait * 1000;
		return;
	}
	f.changes = json_array();
	r = d->sops->changes(d->store, (uint64_t)since, (size_t)limit, add_change, &f);
	if (r == -ESTALE) {
		struct error err = { 0 };
		char v[32];

		snprintf(v, sizeof(v), "%lld", since);
		error_set(&err, ESTALE, 410, "compacted", "since", v,
			  "since: revision %s was compacted away; list again and follow from the list's revision", v);
		req_error(rq, &err);
		json_decref(f.changes);
		return;
	}
	if (r < 0) {
		struct error err = { 0 };

		error_set(&err, EIO, 500, "internal", "", "", "store: reading the change log failed (%d)", r);
		req_error(rq, &err);
		json_decref(f.changes);
		return;
	}
	/* a full page: the client has seen up to its last revision only */
	if (json_array_size(f.changes) >= (size_t)limit)
		cur = f.last;
	else if (f.last > cur)
		cur = f.last;
	{
		json_t *o = json_object();

		json_object_set_new(o, "revision", json_integer((json_int_t)(cur > (uint64_t)since ? cur : (uint64_t)since)));
		json_object_set_new(o, "changes", f.changes);
		req_json(rq, 200, o);
	}
}

void api_healthz(struct req *rq)
{
	json_t *o = json_object();

	json_object_set_new(o, "status", json_string("ok"));
	json_object_set_new(o, "revision", json_integer((json_int_t)commit_revision(rq->d->commit)));
	req_json(rq, 200, o);
}

void api_metrics(struct req *rq)
{
	rq->status = 200;
	rq->text = metrics_render(rq->d);
}
