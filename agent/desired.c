/* SPDX-License-Identifier: MIT */
/*
 * DOC: the routes a host should have (larch-agent)
 *
 * From larchd's tree (spaces -> groups -> hosts -> blocks) and the list of
 * this host's endpoints, per space:
 *   - each local endpoint address: a /32 (/128) through its host interface
 *     (lib/wire.h names it from the handle); skipped while that interface
 *     does not exist (the pod is being wired or was just removed);
 *   - each of this host's blocks: a blackhole, so the host owns the block
 *     and an address not (or no longer) in use goes nowhere;
 *   - each block of another host of the same group: via that host's address
 *     when the address is of the space's family and on a link this host
 *     shares (a connected route covers it); otherwise the group's prefix
 *     on-link through the uplink (the owner answers ARP/NDP by proxy), or,
 *     without an uplink, via the next hop;
 *   - for the host's group and each of its ancestors, every sibling group's
 *     prefix via the next hop of the space's family: one route per other
 *     rack, per other spine, and so on, the fewest routes that cover the
 *     rest of the space.
 * Longest-prefix match makes the pieces fit: a local /32 beats the block's
 * blackhole, the host's blocks beat its group's prefix.
 */
#include "agent.h"

#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* Room for one more element in *v (of size elem, *n used of *cap). */
static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
	size_t ncap = *cap ? *cap * 2 : 64;
	void *p;

	if (n < *cap)
		return 0;
	if (!(p = realloc(*v, ncap * elem)))
		return -1;
	*v = p;
	*cap = ncap;
	return 0;
}

static int push(struct desired *d, const struct nl_route *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int push(struct desired *d, const struct nl_route *r, const char *fmt, ...)
{
	va_list ap;

	if (grow((void **)&d->v, &d->cap, d->n, sizeof(*d->v)) < 0)
		return -1;
	d->v[d->n].r = *r;
	va_start(ap, fmt);
	vsnprintf(d->v[d->n].what, sizeof(d->v[d->n].what), fmt, ap);
	va_end(ap);
	d->n++;
	return 0;
}

static int push_proxy(struct desired *d, uint8_t family, u128 addr)
{
	if (grow((void **)&d->proxy, &d->capproxy, d->nproxy, sizeof(*d->proxy)) < 0)
		return -1;
	d->proxy[d->nproxy++] = (struct prefix){.addr = addr, .family = family,
						.len = (uint8_t)prefix_bits(family)};
	return 0;
}

void desired_clear(struct desired *d)
{
	free(d->v);
	free(d->proxy);
	memset(d, 0, sizeof(*d));
}

static bool onlink(const struct agent_cfg *cfg, uint8_t family, u128 addr)
{
	for (size_t i = 0; i < cfg->nconnected; i++)
		if (prefix_contains_addr(&cfg->connected[i], family, addr))
			return true;
	return false;
}

/* Finds the host in a group subtree; fills path[] with the groups from the
 * top down to the host's group. Returns the depth or -1. */
static int find_host(json_t *groups, const char *host, json_t **path, int depth, json_t **hostobj)
{
	size_t i, k;
	json_t *g, *h;

	if (depth >= AGENT_MAX_DEPTH)
		return -1;
	json_array_foreach(groups, i, g) {
		path[depth] = g;
		json_array_foreach(json_object_get(g, "hosts"), k, h) {
			if (!strcmp(json_string_value(json_object_get(h, "name")) ?: "", host)) {
				*hostobj = h;
				return depth + 1;
			}
		}
		int r = find_host(json_object_get(g, "groups"), host, path, depth + 1, hostobj);
		if (r > 0)
			return r;
	}
	return -1;
}

static int parse_prefix(json_t *v, struct prefix *p)
{
	const char *s = json_string_value(v);

	return s ? prefix_parse(s, p, 0, "prefix", NULL) : -1;
}

static int space_routes(const struct agent_cfg *cfg, json_t *space, struct desired *d)
{
	json_t *path[AGENT_MAX_DEPTH], *me = NULL, *b, *h, *g;
	struct prefix sp, p;
	size_t i, k;
	int depth;

	if (parse_prefix(json_object_get(space, "cidr"), &sp) < 0)
		return -1;
	depth = find_host(json_object_get(space, "groups"), cfg->host, path, 0, &me);
	if (depth < 0)
		return 0; /* this space has no group above us: nothing to route */
	const struct nl_route base = {.type = NL_RT_UNICAST, .protocol = cfg->proto};
	const u128 *nh = sp.family == 4 ? (cfg->has_nh4 ? &cfg->nh4 : NULL)
				       : (cfg->has_nh6 ? &cfg->nh6 : NULL);

	/* Own blocks: blackholes. */
	json_array_foreach(json_object_get(me, "blocks"), i, b) {
		struct nl_route r = base;

		if (parse_prefix(json_object_get(b, "cidr"), &r.dst) < 0)
			return -1;
		r.type = NL_RT_BLACKHOLE;
		if (push(d, &r, "own block") < 0)
			return -1;
	}
	/* Peers in the same group. */
	json_t *mygroup = path[depth - 1];
	bool need_group_route = false;
	json_array_foreach(json_object_get(mygroup, "hosts"), i, h) {
		const char *name = json_string_value(json_object_get(h, "name"));
		struct prefix addr;
		bool direct;

		if (!name || !strcmp(name, cfg->host))
			continue;
		direct = !parse_prefix(json_object_get(h, "address"), &addr) &&
			 addr.family == sp.family && onlink(cfg, addr.family, addr.addr);
		json_array_foreach(json_object_get(h, "blocks"), k, b) {
			struct nl_route r = base;

			if (!direct) {
				need_group_route = true;
				break;
			}
			if (parse_prefix(json_object_get(b, "cidr"), &r.dst) < 0)
				return -1;
			r.has_gw = true;
			r.gw = addr.addr;
			if (push(d, &r, "block of peer %s", name) < 0)
				return -1;
		}
	}
	if (need_group_route && (cfg->uplink_index || nh) &&
	    !parse_prefix(json_object_get(mygroup, "prefix"), &p)) {
		struct nl_route r = base;

		r.dst = p;
		if (cfg->uplink_index) {
			r.oif = cfg->uplink_index;
		} else {
			r.has_gw = true;
			r.gw = *nh;
		}
		if (push(d, &r, "own group %s, peers on-link",
			 json_string_value(json_object_get(mygroup, "name"))) < 0)
			return -1;
	}
	/* Siblings at every level, via the next hop. */
	for (int level = depth - 1; level >= 0 && nh; level--) {
		json_t *siblings = level ? json_object_get(path[level - 1], "groups")
					 : json_object_get(space, "groups");

		json_array_foreach(siblings, i, g) {
			struct nl_route r = base;

			if (g == path[level])
				continue;
			if (parse_prefix(json_object_get(g, "prefix"), &r.dst) < 0)
				continue; /* a group without a prefix in this space */
			r.has_gw = true;
			r.gw = *nh;
			if (push(d, &r, "group %s", json_string_value(json_object_get(g, "name"))) < 0)
				return -1;
		}
	}
	return 0;
}

static int cmp_ifname(const void *a, const void *b)
{
	return strcmp(((const struct if_nameindex *)a)->if_name,
		      ((const struct if_nameindex *)b)->if_name);
}

/* The host's interfaces sorted by name (one netlink dump instead of a
 * socket and an ioctl per endpoint), or NULL. */
static struct if_nameindex *ifs_sorted(size_t *n)
{
	struct if_nameindex *ifs = if_nameindex();

	*n = 0;
	if (!ifs)
		return NULL;
	while (ifs[*n].if_index)
		(*n)++;
	qsort(ifs, *n, sizeof(*ifs), cmp_ifname);
	return ifs;
}

static int ifindex_of(const struct if_nameindex *ifs, size_t n, char *name)
{
	struct if_nameindex key = {.if_name = name}, *f;

	if (!ifs)
		return (int)if_nametoindex(name);
	f = bsearch(&key, ifs, n, sizeof(*ifs), cmp_ifname);
	return f ? (int)f->if_index : 0;
}

int desired_build(const struct agent_cfg *cfg, json_t *tree, json_t *endpoints,
		  struct desired *d)
{
	json_t *space, *ep, *a;
	size_t i, k, nifs;
	struct if_nameindex *ifs;
	int r = -1;

	json_array_foreach(json_object_get(tree, "spaces"), i, space) {
		if (space_routes(cfg, space, d) < 0)
			return -1;
	}
	ifs = ifs_sorted(&nifs);
	json_array_foreach(json_object_get(endpoints, "items"), i, ep) {
		const char *handle = json_string_value(json_object_get(ep, "handle"));
		char ifname[IFNAMSIZ];
		int ifindex;

		if (!handle)
			continue;
		wire_host_ifname(handle, ifname);
		ifindex = ifindex_of(ifs, nifs, ifname);
		if (!ifindex) {
			d->missing_ifaces++;
			continue;
		}
		json_array_foreach(json_object_get(ep, "addresses"), k, a) {
			struct nl_route rt = {.type = NL_RT_UNICAST, .protocol = cfg->proto,
					      .oif = ifindex};

			if (addr_parse(json_string_value(json_object_get(a, "address")) ?: "",
				       &rt.dst, "address", NULL) < 0 ||
			    push(d, &rt, "endpoint %s", handle) < 0 ||
			    (rt.dst.family == 6 && cfg->uplink_index &&
			     push_proxy(d, 6, rt.dst.addr) < 0))
				goto out;
		}
	}
	r = 0;
out:
	if (ifs)
		if_freenameindex(ifs);
	return r;
}
