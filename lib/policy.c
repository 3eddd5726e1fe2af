/* SPDX-License-Identifier: MIT */
/*
 * DOC: policy documents -> struct policy
 *
 * Every document is decoded strictly: an unknown field, a wrong type or a bad
 * value is an error whose field is the path into the document
 * ("spec.ingress[0].from[1].ipBlock.except[0]"), so larchd can refuse it
 * before anything is stored. The compiler is in policy_compile.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jsonx.h"
#include "model.h"
#include "policy.h"

#define FIELD_MAX 64

static int oom(struct error *err)
{
	return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
}

static int bad(struct error *err, const char *field, const char *value, const char *why)
{
	return error_invalid(err, field, value ? value : "", "%s: %s%s%s", field,
			     value ? value : "", value ? ": " : "", why);
}

/* Field paths longer than the error's field are cut (the message says more). */
static void sub(char *out, const char *path, const char *key)
{
	if (snprintf(out, FIELD_MAX, "%s%s%s", path, *path ? "." : "", key) >= FIELD_MAX)
		out[FIELD_MAX - 1] = '\0';
}

static void idx(char *out, const char *path, size_t i)
{
	if (snprintf(out, FIELD_MAX, "%s[%zu]", path, i) >= FIELD_MAX)
		out[FIELD_MAX - 1] = '\0';
}

/* Only the keys in allowed; the error names path.key. */
static int only(json_t *o, const char *path, const char *const allowed[], struct error *err)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		size_t i;
		char f[FIELD_MAX];

		for (i = 0; allowed[i]; i++)
			if (!strcmp(k, allowed[i]))
				break;
		if (!allowed[i]) {
			sub(f, path, k);
			return error_set(err, EINVAL, 400, "unknown_field", f, "",
					 "%s: unknown field", f);
		}
	}
	return 0;
}

/* An optional member of JSON type `type` (absent or null: *out NULL); a
 * member of another type is an error naming path.key. */
static int get(json_t *o, const char *path, const char *key, json_type type, json_t **out,
	       struct error *err)
{
	json_t *v = json_object_get(o, key);
	char f[FIELD_MAX];

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (json_typeof(v) != type) {
		sub(f, path, key);
		return bad(err, f, NULL, type == JSON_OBJECT ? "must be an object"
				       : type == JSON_ARRAY ? "must be an array" : "must be a string");
	}
	*out = v;
	return 0;
}

static int get_obj(json_t *o, const char *path, const char *key, json_t **out, struct error *err)
{
	return get(o, path, key, JSON_OBJECT, out, err);
}

static int get_arr(json_t *o, const char *path, const char *key, json_t **out, struct error *err)
{
	return get(o, path, key, JSON_ARRAY, out, err);
}

static int get_str(json_t *o, const char *path, const char *key, const char **out,
		   struct error *err)
{
	json_t *v;
	int r = get(o, path, key, JSON_STRING, &v, err);

	*out = v ? json_string_value(v) : NULL;
	return r;
}

static int dup_name(const char *field, const char *s, char **out, struct error *err)
{
	int r;

	if (!s)
		return 0;
	if ((r = name_check(field, s, err)) < 0)
		return r;
	if (!(*out = strdup(s)))
		return oom(err);
	return 0;
}

/* ---- label selectors ---- */

/* Set by policy_parse_new for this thread: label keys and values in
 * selectors and namespace labels must follow Kubernetes' syntax (jsonx.c).
 * Otherwise (stored documents, the agent) only values over 63 characters are
 * refused, as older versions did, so that what was stored still loads. */
static __thread bool label_syntax;

static int label_key_check(const char *field, const char *k, struct error *err)
{
	const char *why = label_syntax ? label_key_invalid(k) : NULL;

	return why ? error_invalid(err, field, k, "%s: label key %s: %s", field, k, why) : 0;
}

static int label_value_check(const char *field, const char *v, struct error *err)
{
	const char *why = label_syntax ? label_value_invalid(v)
				       : strlen(v) > 63 ? "at most 63 characters" : NULL;

	return why ? error_invalid(err, field, v, "%s: label value %s: %s", field, v, why) : 0;
}

static int add_expr(struct labelsel *s, const char *key, enum sel_op op, struct error *err)
{
	struct sel_expr *e = realloc(s->e, (s->n + 1) * sizeof(*e));

	if (!e)
		return oom(err);
	s->e = e;
	e = &s->e[s->n];
	memset(e, 0, sizeof(*e));
	if (!(e->key = strdup(key)))
		return oom(err);
	e->op = op;
	s->n++;
	return 0;
}

static int add_value(struct sel_expr *e, const char *v, struct error *err)
{
	char **vs = realloc(e->values, (e->nvalues + 1) * sizeof(*vs));

	if (!vs)
		return oom(err);
	e->values = vs;
	if (!(vs[e->nvalues] = strdup(v)))
		return oom(err);
	e->nvalues++;
	return 0;
}

/* {matchLabels: {...}, matchExpressions: [{key, operator, values}]} */
static int parse_selector(json_t *o, const char *path, struct labelsel *s, struct error *err)
{
	static const char *const fields[] = { "matchLabels", "matchExpressions", NULL };
	json_t *ml, *mx, *v;
	const char *k;
	char f[FIELD_MAX], g[FIELD_MAX];
	size_t i;
	int r;

	if ((r = only(o, path, fields, err)) < 0 || (r = get_obj(o, path, "matchLabels", &ml, err)) < 0 ||
	    (r = get_arr(o, path, "matchExpressions", &mx, err)) < 0)
		return r;
	if (ml)
		json_object_foreach(ml, k, v) {
			sub(g, path, "matchLabels");
			sub(f, g, k);
			if (!json_is_string(v))
				return bad(err, f, NULL, "a label value must be a string");
			if ((r = label_key_check(f, k, err)) < 0 ||
			    (r = label_value_check(f, json_string_value(v), err)) < 0 ||
			    (r = add_expr(s, k, SEL_IN, err)) < 0 ||
			    (r = add_value(&s->e[s->n - 1], json_string_value(v), err)) < 0)
				return r;
		}
	json_array_foreach(mx, i, v) {
		static const char *const xf[] = { "key", "operator", "values", NULL };
		static const char *const ops[] = { "In", "NotIn", "Exists", "DoesNotExist" };
		const char *key, *op;
		json_t *vals, *x;
		size_t j, o2;

		sub(g, path, "matchExpressions");
		idx(f, g, i);
		if (!json_is_object(v))
			return bad(err, f, NULL, "must be an object");
		if ((r = only(v, f, xf, err)) < 0 || (r = get_str(v, f, "key", &key, err)) < 0 ||
		    (r = get_str(v, f, "operator", &op, err)) < 0 ||
		    (r = get_arr(v, f, "values", &vals, err)) < 0)
			return r;
		sub(g, f, "key");
		if (!key || !*key)
			return bad(err, g, NULL, "required");
		if ((r = label_key_check(g, key, err)) < 0)
			return r;
		sub(g, f, "operator");
		if (!op)
			return bad(err, g, NULL, "required");
		for (o2 = 0; o2 < 4; o2++)
			if (!strcmp(op, ops[o2]))
				break;
		if (o2 == 4)
			return bad(err, g, op, "must be In, NotIn, Exists or DoesNotExist");
		sub(g, f, "values");
		if ((o2 <= SEL_NOTIN) && json_array_size(vals) == 0)
			return bad(err, g, NULL, "In and NotIn need at least one value");
		if (o2 > SEL_NOTIN && json_array_size(vals))
			return bad(err, g, NULL, "Exists and DoesNotExist take no values");
		if ((r = add_expr(s, key, (enum sel_op)o2, err)) < 0)
			return r;
		json_array_foreach(vals, j, x) {
			char h[FIELD_MAX];

			idx(h, g, j);
			if (!json_is_string(x))
				return bad(err, h, NULL, "must be a string");
			if ((r = label_value_check(h, json_string_value(x), err)) < 0 ||
			    (r = add_value(&s->e[s->n - 1], json_string_value(x), err)) < 0)
				return r;
		}
	}
	return 0;
}

static void labelsel_release(struct labelsel *s)
{
	for (size_t i = 0; i < s->n; i++) {
		for (size_t j = 0; j < s->e[i].nvalues; j++)
			free(s->e[i].values[j]);
		free(s->e[i].values);
		free(s->e[i].key);
	}
	free(s->e);
	memset(s, 0, sizeof(*s));
}

static void epsel_release(struct epsel *s)
{
	free(s->tenant);
	free(s->segment);
	free(s->ns);
	free(s->sg);
	free(s->handle);
	free(s->key);
	labelsel_release(&s->pods);
	labelsel_release(&s->nss);
	memset(s, 0, sizeof(*s));
}

/* ---- ports ---- */

static int parse_proto(const char *field, json_t *v, uint8_t *proto, struct error *err)
{
	static const struct { const char *name; uint8_t p; } names[] = {
		{ "tcp", 6 }, { "udp", 17 }, { "sctp", 132 }, { "icmp", 1 }, { "icmpv6", 1 },
		{ "ipv6-icmp", 1 }, { "any", 0 },
	};
	char low[16];
	const char *s;
	size_t i;

	if (!v || json_is_null(v)) {
		*proto = 0;
		return 0;
	}
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (names[i].p && names[i].p == n && n != 1) {
				*proto = (uint8_t)n;
				return 0;
			}
		if (n == 1 || n == 58) {
			*proto = 1;
			return 0;
		}
		return bad(err, field, NULL, "protocol numbers supported: 1, 6, 17, 58, 132");
	}
	if (!json_is_string(v))
		return bad(err, field, NULL, "must be a protocol name");
	s = json_string_value(v);
	for (i = 0; s[i] && i < sizeof(low) - 1; i++)
		low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	low[i] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(low, names[i].name)) {
			*proto = names[i].p;
			return 0;
		}
	return bad(err, field, s, "must be TCP, UDP, SCTP, ICMP or any");
}

static int parse_portnum(const char *field, json_t *v, uint16_t *out, struct error *err)
{
	json_int_t n;

	if (json_is_string(v))
		return bad(err, field, json_string_value(v),
			   "named ports are not supported: give the port number");
	if (!json_is_integer(v))
		return bad(err, field, NULL, "must be a port number");
	n = json_integer_value(v);
	if (n < 1 || n > 65535) {
		char s[24];

		snprintf(s, sizeof(s), "%lld", (long long)n);
		return bad(err, field, s, "must be 1-65535");
	}
	*out = (uint16_t)n;
	return 0;
}

static int add_port(struct rule *r, const struct port *p, struct error *err)
{
	struct port *v = realloc(r->ports, (r->nports + 1) * sizeof(*v));

	if (!v)
		return oom(err);
	r->ports = v;
	v[r->nports++] = *p;
	return 0;
}

/* Kubernetes and Larch: {protocol, port, endPort} (Larch also end_port). */
static int parse_port(json_t *o, const char *path, struct rule *r, struct error *err)
{
	static const char *const fields[] = { "protocol", "port", "endPort", "end_port", NULL };
	struct port p = { 6, 0, 0 };
	json_t *proto, *port, *end;
	char f[FIELD_MAX];
	int rc;

	if (!json_is_object(o))
		return bad(err, path, NULL, "must be an object");
	if ((rc = only(o, path, fields, err)) < 0)
		return rc;
	proto = json_object_get(o, "protocol");
	port = json_object_get(o, "port");
	end = json_object_get(o, "endPort");
	if (!end)
		end = json_object_get(o, "end_port");
	sub(f, path, "protocol");
	if (proto && (rc = parse_proto(f, proto, &p.proto, err)) < 0)
		return rc;
	if (port && !json_is_null(port)) {
		sub(f, path, "port");
		if (p.proto != 6 && p.proto != 17 && p.proto != 132)
			return bad(err, f, NULL, "ports need protocol TCP, UDP or SCTP");
		if ((rc = parse_portnum(f, port, &p.lo, err)) < 0)
			return rc;
		p.hi = p.lo;
	}
	if (end && !json_is_null(end)) {
		sub(f, path, json_object_get(o, "endPort") ? "endPort" : "end_port");
		if (!p.lo)
			return bad(err, f, NULL, "needs port");
		if ((rc = parse_portnum(f, end, &p.hi, err)) < 0)
			return rc;
		if (p.hi < p.lo)
			return bad(err, f, NULL, "must not be below port");
	}
	return add_port(r, &p, err);
}

/* ---- peers ---- */

static struct peer *new_peer(struct rule *r, struct error *err)
{
	struct peer *v = realloc(r->peers, (r->npeers + 1) * sizeof(*v));

	if (!v) {
		oom(err);
		return NULL;
	}
	r->peers = v;
	memset(&v[r->npeers], 0, sizeof(*v));
	return &v[r->npeers++];
}

static int parse_cidr_except(json_t *o, const char *path, const char *ckey, const char *xkey,
			     struct peer *p, struct error *err)
{
	const char *cidr;
	json_t *ex, *v;
	char f[FIELD_MAX], g[FIELD_MAX];
	size_t i;
	int r;

	if ((r = get_str(o, path, ckey, &cidr, err)) < 0 || (r = get_arr(o, path, xkey, &ex, err)) < 0)
		return r;
	sub(f, path, ckey);
	if (!cidr)
		return bad(err, f, NULL, "required");
	if ((r = prefix_parse(cidr, &p->cidr, 0, f, err)) < 0)
		return r;
	p->type = PEER_CIDR;
	if (json_array_size(ex) && !(p->except = calloc(json_array_size(ex), sizeof(*p->except))))
		return oom(err);
	json_array_foreach(ex, i, v) {
		sub(g, path, xkey);
		idx(f, g, i);
		if (!json_is_string(v))
			return bad(err, f, NULL, "must be a CIDR");
		if ((r = prefix_parse(json_string_value(v), &p->except[i], 0, f, err)) < 0)
			return r;
		if (!prefix_contains(&p->cidr, &p->except[i]) || p->except[i].len == p->cidr.len)
			return bad(err, f, json_string_value(v), "an exception must lie inside the cidr");
		p->nexcept++;
	}
	return 0;
}

/* A NetworkPolicy peer: podSelector / namespaceSelector / ipBlock. */
static int parse_k8s_peer(json_t *o, const char *path, const char *ns, struct rule *r,
			  struct error *err)
{
	static const char *const fields[] = { "podSelector", "namespaceSelector", "ipBlock", NULL };
	static const char *const ipf[] = { "cidr", "except", NULL };
	json_t *ps, *nss, *ipb;
	struct peer *p;
	char f[FIELD_MAX];
	int rc;

	if (!json_is_object(o))
		return bad(err, path, NULL, "must be an object");
	if ((rc = only(o, path, fields, err)) < 0 || (rc = get_obj(o, path, "podSelector", &ps, err)) < 0 ||
	    (rc = get_obj(o, path, "namespaceSelector", &nss, err)) < 0 ||
	    (rc = get_obj(o, path, "ipBlock", &ipb, err)) < 0)
		return rc;
	if (ipb && (ps || nss))
		return bad(err, path, NULL, "ipBlock cannot be combined with a selector");
	if (!ipb && !ps && !nss)
		return bad(err, path, NULL, "needs podSelector, namespaceSelector or ipBlock");
	if (!(p = new_peer(r, err)))
		return -ENOMEM;
	if (ipb) {
		sub(f, path, "ipBlock");
		if ((rc = only(ipb, f, ipf, err)) < 0)
			return rc;
		return parse_cidr_except(ipb, f, "cidr", "except", p, err);
	}
	p->type = PEER_EPS;
	if (ps) {
		sub(f, path, "podSelector");
		p->sel.has_pods = true;
		if ((rc = parse_selector(ps, f, &p->sel.pods, err)) < 0)
			return rc;
	}
	if (nss) {
		sub(f, path, "namespaceSelector");
		p->sel.has_nss = true;
		if ((rc = parse_selector(nss, f, &p->sel.nss, err)) < 0)
			return rc;
	} else if (!(p->sel.ns = strdup(ns))) {
		/* a podSelector alone: pods of the policy's own namespace */
		return oom(err);
	}
	return 0;
}

static struct rule *new_rule(struct rule **v, size_t *n, struct error *err)
{
	struct rule *x = realloc(*v, (*n + 1) * sizeof(*x));

	if (!x) {
		oom(err);
		return NULL;
	}
	*v = x;
	memset(&x[*n], 0, sizeof(*x));
	return &x[(*n)++];
}

static int parse_rules(json_t *arr, const char *path, const char *peerkey, const char *ns,
		       struct rule **v, size_t *n, struct error *err);

/* The directions a policy names (its format's words for them) into p. */
static int parse_types(json_t *types, const char *path, const char *in, const char *out,
		       struct policy *p, struct error *err)
{
	json_t *t;
	size_t i;

	json_array_foreach(types, i, t) {
		char f[FIELD_MAX];
		const char *s = json_string_value(t);

		idx(f, path, i);
		if (s && !strcmp(s, in))
			p->ingress = true;
		else if (s && !strcmp(s, out))
			p->egress = true;
		else {
			char why[64];

			snprintf(why, sizeof(why), "must be %s or %s", in, out);
			return bad(err, f, s, why);
		}
	}
	return 0;
}

static int parse_netpol(json_t *doc, struct policy *p, struct error *err)
{
	static const char *const top[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	static const char *const meta[] = { "name", "namespace", "labels", "annotations", "uid",
					    "resourceVersion", "generation", "creationTimestamp",
					    NULL };
	static const char *const spec[] = { "podSelector", "policyTypes", "ingress", "egress", NULL };
	json_t *md, *sp, *ps, *types, *in, *out;
	const char *api, *name, *ns;
	int r;

	if ((r = only(doc, "", top, err)) < 0 || (r = get_str(doc, "", "apiVersion", &api, err)) < 0 ||
	    (r = get_obj(doc, "", "metadata", &md, err)) < 0 || (r = get_obj(doc, "", "spec", &sp, err)) < 0)
		return r;
	if (!api || strcmp(api, "networking.k8s.io/v1"))
		return bad(err, "apiVersion", api, "must be networking.k8s.io/v1");
	if (!md)
		return bad(err, "metadata", NULL, "required");
	if ((r = only(md, "metadata", meta, err)) < 0 ||
	    (r = get_str(md, "metadata", "name", &name, err)) < 0 ||
	    (r = get_str(md, "metadata", "namespace", &ns, err)) < 0)
		return r;
	if (!name)
		return bad(err, "metadata.name", NULL, "required");
	if ((r = dup_name("metadata.name", name, &p->name, err)) < 0 ||
	    (r = dup_name("metadata.namespace", ns ? ns : "default", &p->ns, err)) < 0)
		return r;
	if (!sp)
		return bad(err, "spec", NULL, "required");
	if ((r = only(sp, "spec", spec, err)) < 0 || (r = get_obj(sp, "spec", "podSelector", &ps, err)) < 0 ||
	    (r = get_arr(sp, "spec", "policyTypes", &types, err)) < 0 ||
	    (r = get_arr(sp, "spec", "ingress", &in, err)) < 0 ||
	    (r = get_arr(sp, "spec", "egress", &out, err)) < 0)
		return r;
	if (!ps)
		return bad(err, "spec.podSelector", NULL, "required (use {} to select every pod)");
	if (!(p->applies.ns = strdup(p->ns)))
		return oom(err);
	p->applies.has_pods = true;
	if ((r = parse_selector(ps, "spec.podSelector", &p->applies.pods, err)) < 0)
		return r;
	if (types) {
		if ((r = parse_types(types, "spec.policyTypes", "Ingress", "Egress", p, err)) < 0)
			return r;
	} else {
		/* the API's default: Ingress, and Egress when there are egress rules */
		p->ingress = true;
		p->egress = out != NULL;
	}
	if ((r = parse_rules(in, "spec.ingress", "from", p->ns, &p->in, &p->nin, err)) < 0 ||
	    (r = parse_rules(out, "spec.egress", "to", p->ns, &p->out, &p->nout, err)) < 0)
		return r;
	return 0;
}

/* ---- Larch's own format ---- */

/* {tenant, segment, namespace, selector, endpoint, security_group} */
static int parse_epsel(json_t *o, const char *path, struct epsel *s, bool *any, struct error *err)
{
	static const char *const fields[] = { "tenant", "segment", "namespace", "selector",
					      "endpoint", NULL };
	const char *tenant, *seg, *ns, *ep;
	json_t *sel;
	char f[FIELD_MAX];
	int r;

	if ((r = only(o, path, fields, err)) < 0 || (r = get_str(o, path, "tenant", &tenant, err)) < 0 ||
	    (r = get_str(o, path, "segment", &seg, err)) < 0 ||
	    (r = get_str(o, path, "namespace", &ns, err)) < 0 ||
	    (r = get_str(o, path, "endpoint", &ep, err)) < 0 ||
	    (r = get_obj(o, path, "selector", &sel, err)) < 0)
		return r;
	sub(f, path, "segment");
	if (seg && !tenant)
		return bad(err, f, seg, "a segment needs its tenant");
	sub(f, path, "tenant");
	if ((r = dup_name(f, tenant, &s->tenant, err)) < 0)
		return r;
	sub(f, path, "segment");
	if ((r = dup_name(f, seg, &s->segment, err)) < 0)
		return r;
	sub(f, path, "namespace");
	if ((r = dup_name(f, ns, &s->ns, err)) < 0)
		return r;
	if (ep && !(s->handle = strdup(ep)))
		return oom(err);
	if (sel) {
		sub(f, path, "selector");
		s->has_pods = true;
		if ((r = parse_selector(sel, f, &s->pods, err)) < 0)
			return r;
	}
	*any = !tenant && !ns && !ep && !sel;
	return 0;
}

static int parse_larch_peer(json_t *o, const char *path, struct rule *r, struct error *err)
{
	struct peer *p;
	json_t *host = json_object_get(o, "host");
	bool any;
	int rc;

	if (!json_is_object(o))
		return bad(err, path, NULL, "must be an object");
	if (!(p = new_peer(r, err)))
		return -ENOMEM;
	if (json_object_get(o, "cidr")) {
		static const char *const f[] = { "cidr", "except", NULL };

		if ((rc = only(o, path, f, err)) < 0)
			return rc;
		return parse_cidr_except(o, path, "cidr", "except", p, err);
	}
	if (host) {
		static const char *const f[] = { "host", NULL };
		char g[FIELD_MAX];

		sub(g, path, "host");
		if ((rc = only(o, path, f, err)) < 0)
			return rc;
		if (!json_is_true(host))
			return bad(err, g, NULL, "must be true");
		p->type = PEER_HOSTS;
		return 0;
	}
	if ((rc = parse_epsel(o, path, &p->sel, &any, err)) < 0)
		return rc;
	if (any)
		return bad(err, path, NULL,
			   "a peer needs tenant, segment, namespace, selector, endpoint, cidr or host");
	p->type = PEER_EPS;
	if (!p->sel.has_pods && !p->sel.ns && !p->sel.handle) {
		/* a tenant or segment: its blocks */
		p->type = p->sel.segment ? PEER_SEGMENT : PEER_TENANT;
		p->tenant = p->sel.tenant;
		p->segment = p->sel.segment;
		p->sel.tenant = p->sel.segment = NULL;
	}
	return 0;
}

/* ingress or egress rules: {from|to, ports} (Larch: also family). ns: the
 * NetworkPolicy's namespace, whose peers are Kubernetes peers; NULL: Larch. */
static int parse_rules(json_t *arr, const char *path, const char *peerkey, const char *ns,
		       struct rule **v, size_t *n, struct error *err)
{
	const char *const fields[] = { peerkey, "ports", ns ? NULL : "family", NULL };
	json_t *o, *peers, *ports, *x, *fam;
	char f[FIELD_MAX], g[FIELD_MAX], h[FIELD_MAX];
	size_t i, j;
	int rc;

	json_array_foreach(arr, i, o) {
		struct rule *r;

		idx(f, path, i);
		if (!json_is_object(o))
			return bad(err, f, NULL, "must be an object");
		if ((rc = only(o, f, fields, err)) < 0 ||
		    (rc = get_arr(o, f, peerkey, &peers, err)) < 0 ||
		    (rc = get_arr(o, f, "ports", &ports, err)) < 0)
			return rc;
		if (!(r = new_rule(v, n, err)))
			return -ENOMEM;
		if (!ns && (fam = json_object_get(o, "family"))) {
			sub(g, f, "family");
			if (!json_is_integer(fam) ||
			    (json_integer_value(fam) != 4 && json_integer_value(fam) != 6))
				return bad(err, g, NULL, "must be 4 or 6");
			r->family = (uint8_t)json_integer_value(fam);
		}
		sub(g, f, peerkey);
		json_array_foreach(peers, j, x) {
			idx(h, g, j);
			rc = ns ? parse_k8s_peer(x, h, ns, r, err) : parse_larch_peer(x, h, r, err);
			if (rc < 0)
				return rc;
		}
		sub(g, f, "ports");
		json_array_foreach(ports, j, x) {
			idx(h, g, j);
			if ((rc = parse_port(x, h, r, err)) < 0)
				return rc;
		}
	}
	return 0;
}

static int parse_larch(json_t *doc, struct policy *p, struct error *err)
{
	static const char *const top[] = { "kind", "name", "applies_to", "types", "ingress",
					   "egress", NULL };
	json_t *ap, *types, *in, *out;
	const char *name;
	bool any;
	int r;

	if ((r = only(doc, "", top, err)) < 0 || (r = get_str(doc, "", "name", &name, err)) < 0 ||
	    (r = get_obj(doc, "", "applies_to", &ap, err)) < 0 ||
	    (r = get_arr(doc, "", "types", &types, err)) < 0 ||
	    (r = get_arr(doc, "", "ingress", &in, err)) < 0 ||
	    (r = get_arr(doc, "", "egress", &out, err)) < 0)
		return r;
	if (!name)
		return bad(err, "name", NULL, "required");
	if ((r = dup_name("name", name, &p->name, err)) < 0)
		return r;
	if (!ap)
		return bad(err, "applies_to", NULL,
			   "required: tenant, segment, namespace, selector or endpoint");
	if ((r = parse_epsel(ap, "applies_to", &p->applies, &any, err)) < 0)
		return r;
	if (any)
		return bad(err, "applies_to", NULL,
			   "needs tenant, segment, namespace, selector or endpoint");
	if (types) {
		if ((r = parse_types(types, "types", "ingress", "egress", p, err)) < 0)
			return r;
	} else {
		p->ingress = in != NULL || out == NULL;
		p->egress = out != NULL;
	}
	if ((r = parse_rules(in, "ingress", "from", NULL, &p->in, &p->nin, err)) < 0 ||
	    (r = parse_rules(out, "egress", "to", NULL, &p->out, &p->nout, err)) < 0)
		return r;
	return 0;
}

/* ---- OpenStack security groups ---- */

static int parse_sg_rule(json_t *o, const char *path, struct policy *p, struct error *err)
{
	static const char *const fields[] = { "direction", "ethertype", "protocol",
					      "port_range_min", "port_range_max",
					      "remote_ip_prefix", "remote_group", "description",
					      NULL };
	const char *dir, *eth, *rip, *rg;
	json_t *pmin, *pmax;
	struct rule *r;
	struct port port = { 0, 0, 0 };
	char f[FIELD_MAX];
	int rc;

	if (!json_is_object(o))
		return bad(err, path, NULL, "must be an object");
	if ((rc = only(o, path, fields, err)) < 0 || (rc = get_str(o, path, "direction", &dir, err)) < 0 ||
	    (rc = get_str(o, path, "ethertype", &eth, err)) < 0 ||
	    (rc = get_str(o, path, "remote_ip_prefix", &rip, err)) < 0 ||
	    (rc = get_str(o, path, "remote_group", &rg, err)) < 0)
		return rc;
	sub(f, path, "direction");
	if (!dir || (strcmp(dir, "ingress") && strcmp(dir, "egress")))
		return bad(err, f, dir, "must be ingress or egress");
	r = !strcmp(dir, "ingress") ? new_rule(&p->in, &p->nin, err) : new_rule(&p->out, &p->nout, err);
	if (!r)
		return -ENOMEM;
	sub(f, path, "ethertype");
	if (!eth || !strcmp(eth, "IPv4"))
		r->family = 4;
	else if (!strcmp(eth, "IPv6"))
		r->family = 6;
	else
		return bad(err, f, eth, "must be IPv4 or IPv6");
	sub(f, path, "protocol");
	if ((rc = parse_proto(f, json_object_get(o, "protocol"), &port.proto, err)) < 0)
		return rc;
	pmin = json_object_get(o, "port_range_min");
	pmax = json_object_get(o, "port_range_max");
	if (pmin && !json_is_null(pmin)) {
		sub(f, path, "port_range_min");
		if (port.proto != 6 && port.proto != 17 && port.proto != 132)
			return bad(err, f, NULL, "port ranges need protocol tcp, udp or sctp "
				   "(ICMP type and code are not matched)");
		if ((rc = parse_portnum(f, pmin, &port.lo, err)) < 0)
			return rc;
		port.hi = port.lo;
		if (pmax && !json_is_null(pmax)) {
			sub(f, path, "port_range_max");
			if ((rc = parse_portnum(f, pmax, &port.hi, err)) < 0)
				return rc;
			if (port.hi < port.lo)
				return bad(err, f, NULL, "must not be below port_range_min");
		}
	} else if (pmax && !json_is_null(pmax)) {
		sub(f, path, "port_range_max");
		return bad(err, f, NULL, "needs port_range_min");
	}
	if (port.proto && (rc = add_port(r, &port, err)) < 0)
		return rc;
	if (rip && rg)
		return bad(err, path, NULL, "give remote_ip_prefix or remote_group, not both");
	if (rip) {
		struct peer *pe = new_peer(r, err);

		if (!pe)
			return -ENOMEM;
		sub(f, path, "remote_ip_prefix");
		if ((rc = prefix_parse(rip, &pe->cidr, 0, f, err)) < 0)
			return rc;
		if (pe->cidr.family != r->family)
			return bad(err, f, rip, "does not match the ethertype");
		pe->type = PEER_CIDR;
	} else if (rg) {
		struct peer *pe = new_peer(r, err);

		if (!pe)
			return -ENOMEM;
		sub(f, path, "remote_group");
		pe->type = PEER_EPS;
		if ((rc = dup_name(f, rg, &pe->sel.sg, err)) < 0)
			return rc;
	}
	return 0;
}

static int parse_sg(json_t *doc, struct policy *p, struct error *err)
{
	static const char *const top[] = { "kind", "name", "description", "rules", NULL };
	const char *name;
	json_t *rules, *o;
	size_t i;
	int r;

	if ((r = only(doc, "", top, err)) < 0 || (r = get_str(doc, "", "name", &name, err)) < 0 ||
	    (r = get_arr(doc, "", "rules", &rules, err)) < 0)
		return r;
	if (!name)
		return bad(err, "name", NULL, "required");
	if ((r = dup_name("name", name, &p->name, err)) < 0 ||
	    (r = dup_name("name", name, &p->applies.sg, err)) < 0)
		return r;
	p->ingress = p->egress = true;
	json_array_foreach(rules, i, o) {
		char f[FIELD_MAX];

		idx(f, "rules", i);
		if ((r = parse_sg_rule(o, f, p, err)) < 0)
			return r;
	}
	return 0;
}

/* ---- namespaces ---- */

static int parse_namespace(json_t *doc, struct policy *p, struct error *err)
{
	static const char *const top[] = { "apiVersion", "kind", "metadata", "name", "labels", NULL };
	static const char *const meta[] = { "name", "labels", "annotations", "uid",
					    "resourceVersion", "creationTimestamp", NULL };
	json_t *md, *labels, *v;
	const char *name, *k;
	int r;

	if ((r = only(doc, "", top, err)) < 0 || (r = get_obj(doc, "", "metadata", &md, err)) < 0)
		return r;
	if (md) {
		if ((r = only(md, "metadata", meta, err)) < 0 ||
		    (r = get_str(md, "metadata", "name", &name, err)) < 0 ||
		    (r = get_obj(md, "metadata", "labels", &labels, err)) < 0)
			return r;
		if (!name)
			return bad(err, "metadata.name", NULL, "required");
	} else {
		if ((r = get_str(doc, "", "name", &name, err)) < 0 ||
		    (r = get_obj(doc, "", "labels", &labels, err)) < 0)
			return r;
		if (!name)
			return bad(err, "name", NULL, "required");
	}
	if ((r = dup_name(md ? "metadata.name" : "name", name, &p->name, err)) < 0)
		return r;
	p->labels = labels ? json_deep_copy(labels) : json_object();
	if (!p->labels)
		return oom(err);
	json_object_foreach(p->labels, k, v) {
		char f[FIELD_MAX];

		snprintf(f, sizeof(f), "%slabels.%s", md ? "metadata." : "", k);
		if (!json_is_string(v))
			return bad(err, f, NULL, "a label value must be a string");
		if ((r = label_key_check(f, k, err)) < 0 ||
		    (r = label_value_check(f, json_string_value(v), err)) < 0)
			return r;
	}
	/* as Kubernetes sets it, so namespaceSelectors can name a namespace */
	json_object_set_new(p->labels, "kubernetes.io/metadata.name", json_string(name));
	return 0;
}

int policy_parse_new(json_t *doc, struct policy *p, struct error *err)
{
	int r;

	label_syntax = true;
	r = policy_parse(doc, p, err);
	label_syntax = false;
	return r;
}

int policy_parse(json_t *doc, struct policy *p, struct error *err)
{
	const char *kind;
	int r;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(doc))
		return bad(err, "", NULL, "a policy document must be a JSON object");
	if ((r = get_str(doc, "", "kind", &kind, err)) < 0)
		return r;
	if (!kind || !strcmp(kind, "Policy")) {
		p->kind = PK_POLICY;
		r = parse_larch(doc, p, err);
	} else if (!strcmp(kind, "NetworkPolicy")) {
		p->kind = PK_NETPOL;
		r = parse_netpol(doc, p, err);
	} else if (!strcmp(kind, "SecurityGroup")) {
		p->kind = PK_SECGROUP;
		r = parse_sg(doc, p, err);
	} else if (!strcmp(kind, "Namespace")) {
		p->kind = PK_NAMESPACE;
		r = parse_namespace(doc, p, err);
	} else {
		r = bad(err, "kind", kind, "must be Policy, NetworkPolicy, SecurityGroup or Namespace");
	}
	if (r >= 0 && (sel_keys_keep(p) < 0 || !(p->id = policy_id(p))))
		r = oom(err);
	if (r < 0)
		policy_release(p);
	return r;
}

static void rules_release(struct rule *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < v[i].npeers; j++) {
			epsel_release(&v[i].peers[j].sel);
			free(v[i].peers[j].except);
			free(v[i].peers[j].tenant);
			free(v[i].peers[j].segment);
		}
		free(v[i].peers);
		free(v[i].ports);
	}
	free(v);
}

void policy_release(struct policy *p)
{
	free(p->ns);
	free(p->name);
	epsel_release(&p->applies);
	rules_release(p->in, p->nin);
	rules_release(p->out, p->nout);
	json_decref(p->labels);
	free(p->id);
	memset(p, 0, sizeof(*p));
}

const char *pol_kind_name(enum pol_kind k)
{
	static const char *const n[] = { "Policy", "NetworkPolicy", "SecurityGroup", "Namespace" };

	return n[k];
}

char *policy_id(const struct policy *p)
{
	char *s = NULL;

	if (p->id)
		return strdup(p->id);
	if (p->kind == PK_NETPOL) {
		if (asprintf(&s, "%s/%s/%s", pol_kind_name(p->kind), p->ns, p->name) < 0)
			return NULL;
	} else if (asprintf(&s, "%s/%s", pol_kind_name(p->kind), p->name) < 0) {
		return NULL;
	}
	return s;
}

int isolation_parse(const char *s, enum isolation *iso)
{
	if (!strcmp(s, "segment"))
		*iso = ISO_SEGMENT;
	else if (!strcmp(s, "tenant"))
		*iso = ISO_TENANT;
	else if (!strcmp(s, "none"))
		*iso = ISO_NONE;
	else
		return -1;
	return 0;
}

const char *isolation_name(enum isolation iso)
{
	return iso == ISO_TENANT ? "tenant" : iso == ISO_NONE ? "none" : "segment";
}
