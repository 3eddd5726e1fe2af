/* SPDX-License-Identifier: MIT */
/*
 * DOC: route reconciliation (larch-agent)
 *
 * BIRD's krt shape: keep the desired table, dump the kernel, fix the
 * difference. Only routes of the main table carrying the agent's protocol
 * number are ever looked at, replaced or removed; nothing is flushed.
 *   - desired and absent, or present with another type / interface / next
 *     hop: NLM_F_REPLACE (one message, no window without a route);
 *   - present but not desired: removed; except a route through a workload
 *     interface, which is removed only when it was already unwanted at the
 *     previous pass. larch-cni installs a new pod's route before the agent
 *     has seen the endpoint, and a pass computed from a slightly older view
 *     must not take that route away; a pod's routes vanish with its veth
 *     anyway.
 * IPv6 proxy-NDP entries for local endpoints are added on the uplink and the
 * ones this process added and no longer wants are removed.
 */
#include "agent.h"

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wire.h"

struct reconciler {
	struct nl_route *pending;   /* unwanted workload routes seen last pass */
	size_t npending;
	struct prefix *proxy;       /* proxy entries this process installed */
	size_t nproxy;
	int proxy_ifindex;
};

struct reconciler *reconciler_new(void)
{
	return calloc(1, sizeof(struct reconciler));
}

void reconciler_free(struct reconciler *rc)
{
	if (!rc)
		return;
	free(rc->pending);
	free(rc->proxy);
	free(rc);
}

struct kroutes {
	struct nl_route *v;
	size_t n, cap;
	uint8_t proto;
	struct agent_cfg *cfg;      /* non-NULL: collect connected prefixes */
};

static int collect(const struct nl_route *r, void *arg)
{
	struct kroutes *k = arg;

	if (k->cfg) {
		/* proto kernel, no gateway, main table: a connected subnet. */
		if (r->protocol == 2 && r->table == 254 && !r->has_gw && r->type == NL_RT_UNICAST &&
		    r->dst.len < prefix_bits(r->dst.family) &&
		    k->cfg->nconnected < sizeof(k->cfg->connected) / sizeof(k->cfg->connected[0]) &&
		    !(r->dst.family == 6 && (r->dst.addr >> 118) == 0x3fa /* fe80::/10 */))
			k->cfg->connected[k->cfg->nconnected++] = r->dst;
		return 0;
	}
	if (r->protocol != k->proto || r->table != 254)
		return 0;
	if (k->n == k->cap) {
		size_t ncap = k->cap ? k->cap * 2 : 64;
		struct nl_route *v = realloc(k->v, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		k->v = v;
		k->cap = ncap;
	}
	k->v[k->n++] = *r;
	return 0;
}

int reconcile_connected(struct nl *nl, struct agent_cfg *cfg)
{
	struct kroutes k = {.cfg = cfg};
	int ret;

	cfg->nconnected = 0;
	ret = nl_route_dump(nl, 4, collect, &k);
	if (!ret)
		ret = nl_route_dump(nl, 6, collect, &k);
	return ret;
}

/* Order of destinations: both tables are sorted by it and walked together,
 * so a pass costs O(n log n) with thousands of local endpoints. */
static int dst_cmp(const struct nl_route *a, const struct nl_route *b)
{
	if (a->dst.family != b->dst.family)
		return a->dst.family < b->dst.family ? -1 : 1;
	if (a->dst.len != b->dst.len)
		return a->dst.len < b->dst.len ? -1 : 1;
	return a->dst.addr < b->dst.addr ? -1 : a->dst.addr > b->dst.addr;
}

static int route_qcmp(const void *a, const void *b)
{
	return dst_cmp(a, b);
}

static int want_qcmp(const void *a, const void *b)
{
	return dst_cmp(&(*(const struct want *const *)a)->r, &(*(const struct want *const *)b)->r);
}

static bool same_dst(const struct nl_route *a, const struct nl_route *b)
{
	return !dst_cmp(a, b);
}

static bool same_route(const struct nl_route *want, const struct nl_route *have)
{
	if (want->type != have->type || want->has_gw != have->has_gw)
		return false;
	if (want->has_gw && want->gw != have->gw)
		return false;
	/* A gateway route's interface is the kernel's choice unless we set one. */
	return !want->oif || want->oif == have->oif;
}

static bool workload_route(const struct nl_route *r)
{
	char name[IF_NAMESIZE];

	return r->oif && if_indextoname((unsigned)r->oif, name) &&
	       !strncmp(name, WIRE_IF_PREFIX, strlen(WIRE_IF_PREFIX));
}

static const char *route_str(const struct nl_route *r, char *buf, size_t len)
{
	char d[PREFIX_STRLEN], g[PREFIX_STRLEN], ifn[IF_NAMESIZE] = "";

	prefix_fmt(&r->dst, d);
	if (r->oif)
		if_indextoname((unsigned)r->oif, ifn);
	if (r->type == NL_RT_BLACKHOLE)
		snprintf(buf, len, "blackhole %s", d);
	else if (r->has_gw)
		snprintf(buf, len, "%s via %s%s%s", d, addr_fmt(r->dst.family, r->gw, g),
			 ifn[0] ? " dev " : "", ifn);
	else
		snprintf(buf, len, "%s dev %s", d, ifn[0] ? ifn : "?");
	return buf;
}

static int addr_qcmp(const void *a, const void *b)
{
	const struct prefix *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/*
 * Proxy entries are not dumped: every wanted entry is (re)installed each pass
 * (NLM_F_REPLACE, so one deleted by hand comes back), and the ones this
 * process installed and no longer wants are removed (all of them when the
 * uplink changed). Both lists are kept sorted and walked together.
 */
static void reconcile_proxy(struct reconciler *rc, struct nl *nl, const struct agent_cfg *cfg,
			    const struct desired *d, struct route_stats *st)
{
	struct prefix *want = NULL;
	size_t nwant = 0, k = 0;

	if (d->nproxy && cfg->uplink_index && (want = malloc(d->nproxy * sizeof(*want)))) {
		memcpy(want, d->proxy, d->nproxy * sizeof(*want));
		qsort(want, d->nproxy, sizeof(*want), addr_qcmp);
		nwant = d->nproxy;
	}
	for (size_t i = 0; i < rc->nproxy; i++) {
		while (k < nwant && want[k].addr < rc->proxy[i].addr)
			k++;
		if (rc->proxy_ifindex != cfg->uplink_index || k == nwant ||
		    want[k].addr != rc->proxy[i].addr)
			nl_neigh_set(nl, rc->proxy_ifindex, 6, rc->proxy[i].addr, NULL, false);
	}
	free(rc->proxy);
	rc->proxy = want;
	rc->nproxy = 0;
	rc->proxy_ifindex = cfg->uplink_index;
	for (size_t i = 0; i < nwant; i++) {
		int ret = nl_neigh_set(nl, cfg->uplink_index, 6, want[i].addr, NULL, true);

		if (ret < 0) {
			char b[PREFIX_STRLEN];

			log_warnx("proxy ndp %s: %s", prefix_fmt(&want[i], b), strerror(-ret));
			st->errors++;
			continue;
		}
		want[rc->nproxy++] = want[i]; /* keeps the sorted order */
	}
}

int reconcile_routes(struct reconciler *rc, struct nl *nl, const struct agent_cfg *cfg,
		     const struct desired *d, struct route_stats *st)
{
	struct kroutes k = {.proto = cfg->proto};
	struct nl_route *pending = NULL;
	size_t npending = 0;
	bool *matched = NULL;
	const struct want **order = NULL;
	char buf[160];
	int ret;

	memset(st, 0, sizeof(*st));
	ret = nl_route_dump(nl, 4, collect, &k);
	if (!ret)
		ret = nl_route_dump(nl, 6, collect, &k);
	if (ret < 0)
		goto out;
	matched = calloc(k.n + 1, sizeof(*matched));
	pending = calloc(k.n + 1, sizeof(*pending));
	order = calloc(d->n + 1, sizeof(*order));
	if (!matched || !pending || !order) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < d->n; i++)
		order[i] = &d->v[i];
	if (d->n)
		qsort(order, d->n, sizeof(*order), want_qcmp);
	if (k.n) /* k.v is NULL when the kernel has none of our routes */
		qsort(k.v, k.n, sizeof(*k.v), route_qcmp);
	for (size_t i = 0, j = 0; i < d->n; i++) {
		const struct nl_route *w = &order[i]->r;
		const struct nl_route *have = NULL;

		while (j < k.n && dst_cmp(&k.v[j], w) < 0)
			j++;
		for (size_t t = j; t < k.n && same_dst(&k.v[t], w); t++) {
			matched[t] = true;
			have = have ? have : &k.v[t];
		}
		if (have && same_route(w, have))
			continue;
		ret = nl_route_add(nl, w, true);
		if ((ret == -ENODEV || ret == -ENETDOWN) && w->oif) {
			/* The pod's veth went away since the pass read it (a DEL
			 * racing the pass), or the CNI plugin has created it but
			 * not yet set it up (it adds this route itself once it
			 * has): nothing to route to yet, not a fault. */
			log_debug("route %s (%s): interface %s", route_str(w, buf, sizeof(buf)),
				  order[i]->what, ret == -ENODEV ? "gone" : "not up yet");
			continue;
		}
		if (ret < 0) {
			log_warnx("route %s (%s): %s", route_str(w, buf, sizeof(buf)), order[i]->what,
				  strerror(-ret));
			st->errors++;
			continue;
		}
		log_info("route %s %s (%s)", have ? "replace" : "add",
			 route_str(w, buf, sizeof(buf)), order[i]->what);
		if (have)
			st->replaced++;
		else
			st->added++;
	}
	for (size_t j = 0; j < k.n; j++) {
		bool seen_before = false;

		if (matched[j])
			continue;
		if (workload_route(&k.v[j])) {
			for (size_t p = 0; p < rc->npending; p++)
				seen_before |= same_dst(&rc->pending[p], &k.v[j]) &&
					       rc->pending[p].oif == k.v[j].oif;
			if (!seen_before) {
				pending[npending++] = k.v[j];
				st->kept_pending++;
				continue;
			}
		}
		ret = nl_route_del(nl, &k.v[j]);
		if (ret < 0 && ret != -ESRCH) {
			log_warnx("route delete %s: %s", route_str(&k.v[j], buf, sizeof(buf)),
				  strerror(-ret));
			st->errors++;
			continue;
		}
		log_info("route delete %s (no longer wanted)", route_str(&k.v[j], buf, sizeof(buf)));
		st->removed++;
	}
	free(rc->pending);
	rc->pending = pending;
	rc->npending = npending;
	pending = NULL;
	reconcile_proxy(rc, nl, cfg, d, st);
	ret = 0;
out:
	free(pending);
	free(matched);
	free(order);
	free(k.v);
	return ret;
}
