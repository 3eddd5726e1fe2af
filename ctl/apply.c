/* SPDX-License-Identifier: MIT */
/*
 * DOC: larchctl apply -f FILE
 *
 * A manifest is a YAML (or JSON) stream of documents, each with a `kind`:
 * Space, Group, Host, Tenant, Segment, Endpoint (the API's fields, as in
 * docs/api.md); Policy, NetworkPolicy, SecurityGroup, Namespace (created or
 * replaced, docs/policy.md); Pod (its labels go to the endpoint with its
 * namespace and name); or Topology, which nests them (groups in groups, hosts in
 * groups, segments in tenants). Everything is gathered first and created in
 * dependency order: spaces, groups parents first, hosts, tenants, segments,
 * endpoints. Creating is idempotent on the server (same content: 200), so
 * applying a manifest twice changes nothing the second time; an object that
 * exists with other content stops the run with the server's message.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "larchctl.h"
#include "yamljson.h"

struct plan {
	json_t *spaces, *groups, *hosts, *tenants, *segments, *endpoints;
	json_t *docs, *pods; /* policy documents and namespaces; Pod manifests */
};

static int bad(const char *file, size_t doc, const char *what)
{
	ctl_errorx("%s: document %zu: %s", file, doc + 1, what);
	return EXIT_USAGE;
}

/* A copy of o without the keys listed (NULL-terminated). */
static json_t *without(json_t *o, const char *const *keys)
{
	json_t *c = json_copy(o);

	for (; *keys; keys++)
		json_object_del(c, *keys);
	return c;
}

static int add_groups(struct plan *p, json_t *groups, const char *parent, const char *file,
		      size_t doc)
{
	static const char *const strip[] = { "groups", "hosts", NULL };
	size_t i, j;
	json_t *g, *h;

	if (!json_is_array(groups))
		return bad(file, doc, "groups: must be a list");
	json_array_foreach(groups, i, g) {
		const char *name = json_string_value(json_object_get(g, "name"));
		json_t *body;
		int r;

		if (!json_is_object(g) || !name)
			return bad(file, doc, "every group needs a name");
		body = without(g, strip);
		if (parent && !json_object_get(body, "parent"))
			json_object_set_new(body, "parent", json_string(parent));
		json_array_append_new(p->groups, body);
		json_array_foreach(json_object_get(g, "hosts"), j, h) {
			json_t *hb = json_copy(h);

			if (!json_is_object(h))
				return bad(file, doc, "hosts: every host must be a mapping");
			if (!json_object_get(hb, "group"))
				json_object_set_new(hb, "group", json_string(name));
			json_array_append_new(p->hosts, hb);
		}
		if (json_object_get(g, "groups") &&
		    (r = add_groups(p, json_object_get(g, "groups"), name, file, doc)) != EXIT_OK)
			return r;
	}
	return EXIT_OK;
}

static int add_tenants(struct plan *p, json_t *tenants, const char *file, size_t doc)
{
	static const char *const strip[] = { "segments", NULL };
	size_t i, j;
	json_t *t, *s;

	if (!json_is_array(tenants))
		return bad(file, doc, "tenants: must be a list");
	json_array_foreach(tenants, i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));

		if (!json_is_object(t) || !name)
			return bad(file, doc, "every tenant needs a name");
		json_array_append_new(p->tenants, without(t, strip));
		json_array_foreach(json_object_get(t, "segments"), j, s) {
			json_t *sb = json_copy(s);

			if (!json_is_object(s))
				return bad(file, doc, "segments: every segment must be a mapping");
			json_object_set_new(sb, "tenant", json_string(name));
			json_array_append_new(p->segments, sb);
		}
	}
	return EXIT_OK;
}

static int add_list(json_t *dst, json_t *src, const char *what, const char *file, size_t doc)
{
	size_t i;
	json_t *o;
	char msg[96];

	if (!src)
		return EXIT_OK;
	if (!json_is_array(src)) {
		snprintf(msg, sizeof(msg), "%s: must be a list", what);
		return bad(file, doc, msg);
	}
	json_array_foreach(src, i, o)
		json_array_append(dst, o);
	return EXIT_OK;
}

static int add_doc(struct plan *p, json_t *d, const char *file, size_t doc)
{
	static const char *const strip[] = { "kind", NULL };
	const char *kind = json_string_value(json_object_get(d, "kind"));
	static const struct {
		const char *kind;
		size_t off;
	} simple[] = {
		{ "Space", offsetof(struct plan, spaces) },
		{ "Group", offsetof(struct plan, groups) },
		{ "Host", offsetof(struct plan, hosts) },
		{ "Tenant", offsetof(struct plan, tenants) },
		{ "Segment", offsetof(struct plan, segments) },
		{ "Endpoint", offsetof(struct plan, endpoints) },
	};
	const char *key;
	json_t *v;
	int r;

	if (!json_is_object(d))
		return bad(file, doc, "must be a mapping with a kind");
	if (!kind)
		return bad(file, doc, "kind: missing (Topology, Space, Group, Host, Tenant, Segment, "
			   "Endpoint, Policy, NetworkPolicy, SecurityGroup, Namespace, Pod)");
	if (!strcmp(kind, "Policy") || !strcmp(kind, "NetworkPolicy") ||
	    !strcmp(kind, "SecurityGroup") || !strcmp(kind, "Namespace")) {
		json_array_append(p->docs, d);
		return EXIT_OK;
	}
	if (!strcmp(kind, "Pod")) {
		json_array_append(p->pods, d);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (!strcmp(kind, simple[i].kind)) {
			json_t *dst = *(json_t **)((char *)p + simple[i].off);

			if (!strcmp(kind, "Group")) {
				json_t *one = json_pack("[o]", without(d, strip));

				r = add_groups(p, one, NULL, file, doc);
				json_decref(one);
				return r;
			}
			json_array_append_new(dst, without(d, strip));
			return EXIT_OK;
		}
	}
	if (strcmp(kind, "Topology")) {
		char msg[256];

		snprintf(msg, sizeof(msg),
			 "kind: %.60s: unknown (Topology, Space, Group, Host, Tenant, Segment, "
			 "Endpoint, Policy, NetworkPolicy, SecurityGroup, Namespace, Pod)",
			 kind);
		return bad(file, doc, msg);
	}
	json_object_foreach(d, key, v) {
		if (!strcmp(key, "kind") || !strcmp(key, "spaces") || !strcmp(key, "groups") ||
		    !strcmp(key, "tenants") || !strcmp(key, "endpoints") || !strcmp(key, "hosts"))
			continue;
		{
			char msg[128];

			snprintf(msg, sizeof(msg),
				 "%.40s: unknown Topology key (spaces, groups, hosts, tenants, endpoints)", key);
			return bad(file, doc, msg);
		}
	}
	if ((r = add_list(p->spaces, json_object_get(d, "spaces"), "spaces", file, doc)) ||
	    (json_object_get(d, "groups") &&
	     (r = add_groups(p, json_object_get(d, "groups"), NULL, file, doc))) ||
	    (r = add_list(p->hosts, json_object_get(d, "hosts"), "hosts", file, doc)) ||
	    (json_object_get(d, "tenants") &&
	     (r = add_tenants(p, json_object_get(d, "tenants"), file, doc))) ||
	    (r = add_list(p->endpoints, json_object_get(d, "endpoints"), "endpoints", file, doc)))
		return r;
	return EXIT_OK;
}

/* Groups whose parent comes later in the manifest wait for it. */
static json_t *parents_first(json_t *groups)
{
	json_t *out = json_array(), *done = json_object();
	size_t n = json_array_size(groups), emitted = 0;
	bool *used = calloc(n + 1, sizeof(*used));

	for (bool progress = true; progress && emitted < n;) {
		progress = false;
		for (size_t i = 0; i < n; i++) {
			json_t *g = json_array_get(groups, i);
			const char *parent = json_string_value(json_object_get(g, "parent"));
			bool parent_pending = false;

			if (used[i])
				continue;
			if (parent && !json_object_get(done, parent))
				for (size_t j = 0; j < n; j++)
					if (!used[j] && j != i &&
					    !strcmp(parent, json_string_value(json_object_get(
								    json_array_get(groups, j), "name")) ?: ""))
						parent_pending = true;
			if (parent_pending)
				continue;
			used[i] = true;
			emitted++;
			progress = true;
			json_array_append(out, g);
			json_object_set_new(done, json_string_value(json_object_get(g, "name")),
					    json_true());
		}
	}
	/* a cycle: send the rest as they are, the server names the problem */
	for (size_t i = 0; i < n; i++)
		if (!used[i])
			json_array_append(out, json_array_get(groups, i));
	free(used);
	json_decref(done);
	return out;
}

static int create_all(struct ctl *c, const struct kind *k, json_t *items)
{
	size_t i;
	json_t *o;

	json_array_foreach(items, i, o) {
		const char *name = json_string_value(
			json_object_get(o, k == &kind_endpoint ? "handle" : "name"));
		const char *tenant = json_string_value(json_object_get(o, "tenant"));
		char path[512];
		long status = 0;
		int r;

		if (k == &kind_segment)
			snprintf(path, sizeof(path), "/v1/tenants/%s/segments", tenant ? tenant : "");
		else
			snprintf(path, sizeof(path), "%s", k->path);
		r = ctl_call(c, "POST", path, o, &status, NULL);
		if (r != EXIT_OK) {
			ctl_errorx("apply stopped at %s %s%s%s", k->name,
				   k == &kind_segment && tenant ? tenant : "",
				   k == &kind_segment ? "/" : "", name ? name : "(no name)");
			return r;
		}
		if (!c->json)
			printf("%s %s%s%s %s\n", k->name, k == &kind_segment && tenant ? tenant : "",
			       k == &kind_segment ? "/" : "", name ? name : "",
			       status == 201 ? "created" : "unchanged");
	}
	return EXIT_OK;
}

/* Policy documents and namespaces: created or replaced (the server says which). */
static int apply_docs(struct ctl *c, json_t *docs)
{
	size_t i;
	json_t *d;

	json_array_foreach(docs, i, d) {
		const char *kind = json_string_value(json_object_get(d, "kind"));
		json_t *md = json_object_get(d, "metadata");
		const char *name = json_string_value(json_object_get(md ? md : d, "name"));
		long status = 0;
		int r = ctl_call(c, "POST", !strcmp(kind, "Namespace") ? "/v1/namespaces" : "/v1/policies",
				 d, &status, NULL);

		if (r != EXIT_OK) {
			ctl_errorx("apply stopped at %s %s", kind, name ? name : "(no name)");
			return r;
		}
		if (!c->json)
			printf("%s %s %s\n", kind, name ? name : "",
			       status == 201 ? "created" : "applied");
	}
	return EXIT_OK;
}

/* Pod manifests: their labels go to the endpoint with that namespace and name. */
static int apply_pods(struct ctl *c, json_t *pods)
{
	json_t *eps = NULL, *pod;
	size_t i;
	int r;

	if (!json_array_size(pods))
		return EXIT_OK;
	if ((r = ctl_call(c, "GET", "/v1/endpoints", NULL, NULL, &eps)) != EXIT_OK)
		return r;
	json_array_foreach(pods, i, pod) {
		json_t *md = json_object_get(pod, "metadata"), *labels, *e, *body;
		const char *name = json_string_value(json_object_get(md, "name"));
		const char *ns = json_string_value(json_object_get(md, "namespace"));
		const char *handle = NULL;
		char path[600];
		size_t j;

		if (!name) {
			ctl_errorx("Pod: metadata.name is required");
			r = EXIT_USAGE;
			break;
		}
		ns = ns ? ns : "default";
		json_array_foreach(json_object_get(eps, "items"), j, e) {
			const char *en = json_string_value(json_object_get(e, "name"));
			const char *ens = json_string_value(json_object_get(e, "namespace"));

			if (en && ens && !strcmp(en, name) && !strcmp(ens, ns))
				handle = json_string_value(json_object_get(e, "handle"));
		}
		if (!handle) {
			ctl_errorx("Pod %s/%s: no endpoint has this namespace and name", ns, name);
			r = EXIT_SERVER;
			break;
		}
		labels = json_object_get(md, "labels");
		body = json_pack("{sO}", "labels", labels ? labels : json_object());
		snprintf(path, sizeof(path), "/v1/endpoints/%s", handle);
		r = ctl_call(c, "PATCH", path, body, NULL, NULL);
		json_decref(body);
		if (r != EXIT_OK)
			break;
		if (!c->json)
			printf("Pod %s/%s labels set on endpoint %s\n", ns, name, handle);
	}
	json_decref(eps);
	return r;
}

int cmd_apply(struct ctl *c, int argc, char **argv)
{
	struct plan p = { json_array(), json_array(), json_array(), json_array(),
			  json_array(), json_array(), json_array(), json_array() };
	const char *file = NULL;
	struct error err = { 0 };
	json_t *docs, *d, *groups;
	size_t i;
	int ch, r = EXIT_OK;

	optind = 0; /* 0: glibc re-reads the optstring (permuting or not) */
	opterr = 0;
	while ((ch = getopt(argc, argv, "+f:h")) != -1) {
		if (ch == 'f') {
			file = optarg;
		} else {
			fprintf(stderr, "usage: larchctl apply -f FILE   (YAML or JSON; - for stdin; "
					"see docs/cli.md for the manifest format)\n");
			return ch == 'h' ? EXIT_OK : EXIT_USAGE;
		}
	}
	if (!file || optind != argc) {
		fprintf(stderr, "usage: larchctl apply -f FILE\n");
		return EXIT_USAGE;
	}
	docs = yamljson_load_file(file, &err);
	if (!docs) {
		ctl_errorx("%s", err.msg);
		return EXIT_USAGE;
	}
	json_array_foreach(docs, i, d)
		if (!json_is_null(d) && (r = add_doc(&p, d, file, i)) != EXIT_OK)
			goto out;
	groups = parents_first(p.groups);
	if ((r = create_all(c, &kind_space, p.spaces)) == EXIT_OK &&
	    (r = create_all(c, &kind_group, groups)) == EXIT_OK &&
	    (r = create_all(c, &kind_host, p.hosts)) == EXIT_OK &&
	    (r = create_all(c, &kind_tenant, p.tenants)) == EXIT_OK &&
	    (r = create_all(c, &kind_segment, p.segments)) == EXIT_OK)
		r = create_all(c, &kind_endpoint, p.endpoints);
	if (r == EXIT_OK)
		r = apply_docs(c, p.docs);
	if (r == EXIT_OK)
		r = apply_pods(c, p.pods);
	json_decref(groups);
out:
	json_decref(docs);
	json_decref(p.spaces);
	json_decref(p.groups);
	json_decref(p.hosts);
	json_decref(p.tenants);
	json_decref(p.segments);
	json_decref(p.endpoints);
	json_decref(p.docs);
	json_decref(p.pods);
	return r;
}
