/* SPDX-License-Identifier: MIT */
/*
 * The firewall's inputs, kept between passes. The first pass (and every
 * resync) reads larchd's six lists whole; later passes only read the change
 * feed from where the kept state stands and apply each change to it, so a
 * change costs the agent the changes, not another copy of every endpoint and
 * policy. Items are keyed by their store key, which is what the feed names:
 * a put replaces the item, a delete removes it. A list read at revision R
 * already holds every change up to R, so the feed's older changes of that
 * kind are skipped.
 *
 * The compiler's output does not depend on the order of tenants, blocks,
 * hosts, endpoints or namespaces; it does on the order of policies, which
 * kept_state gives sorted by key, the order larchd lists them in (by ID).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "error.h"
#include "httpc.h"
#include "kept.h"
#include "log.h"
#include "policy.h"

enum { K_TENANTS, K_BLOCKS, K_HOSTS, K_ENDPOINTS, K_POLICIES, K_NAMESPACES, K_N };

static const struct {
	const char *list, *path, *kind;
} lists[K_N] = {
	{ "tenants", "/v1/tenants", "tenant" },
	{ "blocks", "/v1/blocks", "block" },
	{ "hosts", "/v1/hosts", "host" },
	{ "endpoints", "/v1/endpoints", "endpoint" },
	{ "policies", "/v1/policies", "policy" },
	{ "namespaces", "/v1/namespaces", "namespace" },
};

struct kept {
	json_t *items[K_N];        /* store key -> object */
	unsigned long rev[K_N];    /* the list was read at this revision */
	unsigned long feed;        /* every change up to here is applied */
	unsigned long loads;       /* times the lists were read whole */
	bool loaded;
	struct policy_cache *pc;   /* the compiler's parsed documents */
	/* since kept_take: the endpoints' and policies' changes in order,
	 * and whether anything else changed (or the lists were read whole) */
	struct kept_change *ch;
	size_t nch, capch;
	bool other;
};

/* More changes than this in one pass: compile whole anyway. */
#define KEPT_CHANGES_MAX 256

void kept_changes_free(struct kept_change *ch, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(ch[i].old);
		json_decref(ch[i].neu);
	}
	free(ch);
}

static void forget_changes(struct kept *k)
{
	kept_changes_free(k->ch, k->nch);
	k->ch = NULL;
	k->nch = k->capch = 0;
	k->other = true;
}

/* An endpoint or a policy went from old to neu (either NULL), both borrowed. */
static void record(struct kept *k, json_t *old, json_t *neu, bool policy)
{
	if (k->other)
		return; /* compiled whole anyway */
	if (k->nch == KEPT_CHANGES_MAX) {
		forget_changes(k);
		return;
	}
	if (k->nch == k->capch) {
		size_t cap = k->capch ? 2 * k->capch : 16;
		struct kept_change *v = realloc(k->ch, cap * sizeof(*v));

		if (!v) {
			forget_changes(k);
			return;
		}
		k->ch = v;
		k->capch = cap;
	}
	k->ch[k->nch++] = (struct kept_change){ json_incref(old), json_incref(neu), policy };
}

void kept_take(struct kept *k, struct kept_change **ch, size_t *n, bool *other)
{
	*ch = k->ch;
	*n = k->nch;
	*other = k->other;
	k->ch = NULL;
	k->nch = k->capch = 0;
	k->other = false;
}

struct kept *kept_new(struct policy_cache *pc)
{
	struct kept *k = calloc(1, sizeof(struct kept));

	if (k)
		k->pc = pc;
	return k;
}

/* Forget everything: the next kept_sync reads the lists whole. */
static void kept_reset(struct kept *k)
{
	for (int i = 0; i < K_N; i++) {
		json_decref(k->items[i]);
		k->items[i] = NULL;
	}
	k->loaded = false;
	forget_changes(k);
}

void kept_free(struct kept *k)
{
	if (k)
		kept_reset(k); /* and the changes */
	free(k);
}

/* asprintf's string, or NULL */
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, f);
	r = vasprintf(&s, f, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

static const char *str(json_t *o, const char *f)
{
	return json_string_value(json_object_get(o, f));
}

/* The store key of a list item: what the feed calls it (larchd's key_*
 * functions and document IDs). NULL when the item lacks what names it.
 * Documents are parsed into the compiler's cache on the way. */
static char *item_key(struct kept *k, int list, json_t *o)
{
	switch (list) {
	case K_TENANTS:
		return str(o, "name") ? fmt("/larch/tenants/%s", str(o, "name")) : NULL;
	case K_HOSTS:
		return str(o, "name") ? fmt("/larch/hosts/%s", str(o, "name")) : NULL;
	case K_ENDPOINTS:
		return str(o, "handle") ? fmt("/larch/endpoints/%s", str(o, "handle")) : NULL;
	case K_BLOCKS: {
		char *s, *slash;

		if (!str(o, "space") || !str(o, "cidr"))
			return NULL;
		s = fmt("/larch/blocks/%s/%s", str(o, "space"), str(o, "cidr"));
		if (s && (slash = strrchr(s, '/')))
			*slash = '-';
		return s;
	}
	default: { /* documents: policies and namespaces */
		struct error err = {0};
		char *id = policy_cache_id(k->pc, o, &err), *s;

		if (!id)
			return NULL;
		s = fmt("/larch/docs/%s", id);
		free(id);
		return s;
	}
	}
}

static int list_of_kind(const char *kind)
{
	for (int i = 0; i < K_N; i++)
		if (!strcmp(lists[i].kind, kind))
			return i;
	return -1;
}

/* Read the six lists whole. */
static int load(struct kept *k, struct httpc *h)
{
	unsigned long low = 0;

	kept_reset(k);
	for (int i = 0; i < K_N; i++) {
		json_t *resp, *o;
		size_t j;

		if (get_json(h, lists[i].path, &resp) < 0)
			goto fail;
		k->items[i] = json_object();
		k->rev[i] = (unsigned long)json_integer_value(json_object_get(resp, "revision"));
		low = i == 0 || k->rev[i] < low ? k->rev[i] : low;
		json_array_foreach(json_object_get(resp, "items"), j, o) {
			char *key = item_key(k, i, o);

			if (!key) {
				log_warnx("larchd: %s: an item without its name; reading again later",
					  lists[i].path);
				json_decref(resp);
				goto fail;
			}
			/* an endpoint parsed for the compiler while it is at hand
			 * (policy_cache_endpoints; documents are in item_key) */
			if (json_object_set(k->items[i], key, o) < 0 ||
			    (i == K_ENDPOINTS && policy_cache_ep(k->pc, o) < 0)) {
				free(key);
				json_decref(resp);
				goto fail;
			}
			free(key);
		}
		json_decref(resp);
	}
	k->feed = low;
	k->loaded = true;
	k->loads++;
	return 0;
fail:
	kept_reset(k);
	return -1;
}

/* An endpoint's record into the list: 1, or -1. */
static int put_endpoint(struct kept *k, const char *key, json_t *obj)
{
	/* the stored record leaves out what the list fills in: empty labels */
	if (!json_object_get(obj, "labels")) {
		if (!(obj = json_deep_copy(obj)) ||
		    json_object_set_new(obj, "labels", json_object()) < 0) {
			json_decref(obj);
			return -1;
		}
		return json_object_set_new(k->items[K_ENDPOINTS], key, obj) < 0 ? -1 : 1;
	}
	return json_object_set(k->items[K_ENDPOINTS], key, obj) < 0 ? -1 : 1;
}

/* One change of the feed: 1 when it changed a list, 0 when it did not
 * concern them, -1 when it cannot be applied. */
static int apply(struct kept *k, json_t *c)
{
	const char *kind = str(c, "kind"), *key = str(c, "key"), *type = str(c, "type");
	unsigned long rev = (unsigned long)json_integer_value(json_object_get(c, "revision"));
	json_t *obj = json_object_get(c, "object");
	int i = kind ? list_of_kind(kind) : -1;

	if (i < 0 || rev <= k->rev[i])
		return 0; /* not an input of the compiler, or already in the list */
	if (!key || !type)
		return -1;
	if (i != K_ENDPOINTS && i != K_POLICIES && !k->other) {
		k->other = true;
		log_debug("firewall: a %s changed (%s): the next pass compiles whole", kind, key);
	}
	if (!strcmp(type, "delete")) {
		json_t *was = json_object_get(k->items[i], key);

		if (!was)
			return 0; /* gone already */
		if (i == K_ENDPOINTS || i == K_POLICIES)
			record(k, was, NULL, i == K_POLICIES);
		return json_object_del(k->items[i], key) == 0;
	}
	if (strcmp(type, "put") || !json_is_object(obj))
		return -1;
	if (i == K_ENDPOINTS || i == K_POLICIES) {
		json_t *was = json_incref(json_object_get(k->items[i], key));
		int r = i == K_ENDPOINTS ? put_endpoint(k, key, obj)
			: json_object_set(k->items[i], key, obj) < 0 ? -1 : 1;

		if (r > 0)
			record(k, was, json_object_get(k->items[i], key), i == K_POLICIES);
		json_decref(was);
		return r;
	}
	return json_object_set(k->items[i], key, obj) < 0 ? -1 : 1;
}

/* Apply the feed from k->feed on, until caught up: 1 when a list changed,
 * 0 when none did, -1 on failure. */
static int catch_up(struct kept *k, struct httpc *h)
{
	int changed = 0;

	for (;;) {
		char path[96];
		json_t *resp, *c;
		struct error err = {0};
		long status;
		size_t j, n;
		int r;

		snprintf(path, sizeof(path), "/v1/changes?since=%lu&limit=10000", k->feed);
		if (httpc_request(h, "GET", path, NULL, &status, &resp, &err) < 0) {
			log_warnx("larchd: %s", err.msg);
			return -1;
		}
		if (status == 410) {
			json_decref(resp);
			log_info("firewall: revision %lu compacted away, reading the lists again",
				 k->feed);
			if (load(k, h) < 0)
				return -1;
			changed = 1;
			continue; /* the lists may stand at different revisions */
		}
		if (status != 200 || !resp) {
			log_warnx("larchd: GET %s: %ld %s", path, status, httpc_body(h));
			json_decref(resp);
			return -1;
		}
		n = json_array_size(json_object_get(resp, "changes"));
		json_array_foreach(json_object_get(resp, "changes"), j, c) {
			if ((r = apply(k, c)) < 0) {
				log_warnx("firewall: a change larchd sent cannot be applied (%s); "
					  "reading the lists again", str(c, "key") ?: "no key");
				break;
			}
			changed |= r;
		}
		if (j < n) {
			json_decref(resp);
			if (load(k, h) < 0)
				return -1;
			changed = 1;
			continue;
		}
		k->feed = (unsigned long)json_integer_value(json_object_get(resp, "revision"));
		json_decref(resp);
		if (n < 10000)
			return changed; /* not cut at the limit: caught up */
	}
}

int kept_sync(struct kept *k, struct httpc *h, bool whole)
{
	bool loaded = false;
	int r;

	if (whole || !k->loaded) {
		if (load(k, h) < 0)
			return -1;
		loaded = true;
	}
	if ((r = catch_up(k, h)) < 0) {
		kept_reset(k);
		return -1;
	}
	return loaded || r;
}

struct item {
	const char *key;
	json_t *v;
};

static int cmp_key(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->key, ((const struct item *)b)->key);
}

json_t *kept_state(struct kept *k)
{
	json_t *state = json_object();

	for (int i = 0; i < K_N; i++) {
		struct item *items = calloc(json_object_size(k->items[i]) + 1, sizeof(*items));
		json_t *arr = json_array(), *v;
		const char *key;
		size_t m = 0;

		if (!items || !arr) {
			free(items);
			json_decref(arr);
			json_decref(state);
			return NULL;
		}
		json_object_foreach(k->items[i], key, v)
			items[m++] = (struct item){key, v};
		if (i == K_POLICIES)
			qsort(items, m, sizeof(*items), cmp_key);
		for (size_t j = 0; j < m; j++)
			json_array_append(arr, items[j].v);
		free(items);
		if (json_object_set_new(state, lists[i].list, json_pack("{s:o}", "items", arr)) < 0) {
			json_decref(state); /* a list missing would compile as empty */
			return NULL;
		}
	}
	return state;
}

json_t *kept_endpoints_on(struct kept *k, const char *host)
{
	json_t *items = json_array(), *v;
	const char *key;

	if (!items)
		return NULL;
	json_object_foreach(k->items[K_ENDPOINTS], key, v)
		if (str(v, "host") && !strcmp(str(v, "host"), host))
			json_array_append(items, v);
	return json_pack("{s:I, s:o}", "revision", (json_int_t)k->feed, "items", items);
}

unsigned long kept_loads(const struct kept *k)
{
	return k ? k->loads : 0;
}
