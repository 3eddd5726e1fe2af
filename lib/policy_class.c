/* SPDX-License-Identifier: MIT */
/*
 * DOC: the nftables endpoint part of the policy compiler: local endpoints
 * grouped by the chains they need (group_eps, chain keys), the classes
 * those groups make and the maps that dispatch by them (ep_class, the
 * verdict maps), the anti-spoofing sets, and what later endpoint changes
 * keep of it (record_endpoints). lib/policy_compile.c writes the chains.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_int.h"

/*
 * nftables: anti-spoofing is two sets of (interface, source address) pairs,
 * one lookup per packet whatever the number of endpoints, and endpoints
 * whose chains would be the same share them: the egress chain depends only
 * on the policies that select the endpoint for egress, the ingress chain on
 * those for ingress (or, with none, on the tenant's default isolation), and
 * the chain for traffic to the host is the same for all. 3,500 endpoints in
 * 1,000 (namespace, app) groups need 1,000 ingress chains, not 3,500.
 *
 * A group's chain is named after a hash of what it depends on (e or i, then
 * 16 hex digits: stable_name), and its comment says what that is, not which endpoints
 * use it: endpoints that come and go do not rename or rewrite the chains of
 * the others, and the agent's difference stays small.
 */
void groups_free(struct groups *g)
{
	for (size_t k = 0; g->key && k < g->n; k++)
		free(g->key[k]);
	free(g->key);
	free(g->of);
	free(g->first);
	free(g->name);
}

/* What an endpoint's chain depends on, as a string (malloc'd): its
 * policies by their chains' names (which stand for their ids, whatever else
 * comes and goes), or its default. */
char *chain_key_of(const struct world *w, char (*pol_name)[24], const struct w_ep *e,
		   bool ingress)
{
	size_t n = ingress ? e->npin : e->npout, len = 2, at = 0;
	const size_t *v = ingress ? e->pin : e->pout;
	const char *tail[4] = { NULL, NULL, NULL, NULL };
	char *k;

	/* 'i' or 'o', then " name" per policy; with none (ingress) the
	 * default: " all" or " t=tenant/segment" (" t=tenant*") */
	if (ingress && !n) {
		enum isolation iso = tenant_iso(w, e->tenant);

		if (iso == ISO_NONE) {
			tail[0] = " all";
		} else {
			tail[0] = " t=";
			tail[1] = e->tenant;
			tail[2] = iso == ISO_SEGMENT ? "/" : "*";
			tail[3] = iso == ISO_SEGMENT ? e->segment : "";
		}
	}
	for (size_t i = 0; i < n; i++)
		len += 1 + strlen(pol_name[v[i]]);
	for (int t = 0; t < 4 && tail[t]; t++)
		len += strlen(tail[t]);
	if (!(k = malloc(len)))
		return NULL;
	k[at++] = ingress ? 'i' : 'o';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(pol_name[v[i]]);

		k[at++] = ' ';
		memcpy(k + at, pol_name[v[i]], l);
		at += l;
	}
	for (int t = 0; t < 4 && tail[t]; t++) {
		size_t l = strlen(tail[t]);

		memcpy(k + at, tail[t], l);
		at += l;
	}
	k[at] = '\0';
	return k;
}

static char *chain_key(const struct render *rd, const struct w_ep *e, bool ingress)
{
	return chain_key_of(rd->w, rd->pol_name, e, ingress);
}

/* Group the local endpoints by chain_key (a hash table of the keys). */
int group_eps(struct render *rd, bool ingress, struct groups *g)
{
	const struct world *w = rd->w;
	size_t cap = 16, nl = 0;
	char **keys;
	size_t *slot;
	int r = -1;

	memset(g, 0, sizeof(*g));
	while (cap < 2 * w->nlocal + 2)
		cap *= 2;
	keys = calloc(w->neps, sizeof(*keys));
	slot = malloc(cap * sizeof(*slot));
	g->of = calloc(w->neps, sizeof(*g->of));
	g->first = calloc(w->nlocal + 1, sizeof(*g->first));
	g->name = calloc(w->nlocal + 1, sizeof(*g->name));
	g->key = calloc(w->nlocal + 1, sizeof(*g->key));
	if (!keys || !slot || !g->of || !g->first || !g->name || !g->key)
		goto out;
	for (size_t i = 0; i < cap; i++)
		slot[i] = SIZE_MAX;
	for (size_t i = 0; i < w->neps; i++) {
		size_t h;

		if (!w->eps[i].local)
			continue;
		if (!(keys[i] = chain_key(rd, &w->eps[i], ingress)))
			goto out;
		nl++;
		for (h = hash_key(keys[i]) & (cap - 1); slot[h] != SIZE_MAX; h = (h + 1) & (cap - 1))
			if (!strcmp(g->key[slot[h]], keys[i]))
				break;
		if (slot[h] == SIZE_MAX) {
			if (stable_name(rd, ingress ? 'i' : 'e', keys[i], g->name[g->n]) < 0)
				goto out;
			slot[h] = g->n;
			g->key[g->n] = keys[i]; /* the group's now */
			keys[i] = NULL;
			g->first[g->n++] = i;
		}
		g->of[i] = slot[h];
	}
	r = 0;
out:
	for (size_t i = 0; keys && i < w->neps; i++)
		free(keys[i]);
	free(keys);
	free(slot);
	if (r < 0)
		groups_free(g);
	return r;
}

/* The sources each local endpoint may send from, by interface. */
void spoof_sets(struct render *r)
{
	const struct world *w = r->w;
	char b[PREFIX_STRLEN];

	for (uint8_t fam = 4; fam <= 6; fam += 2) {
		size_t n = 0;

		fprintf(r->sets, "\tset spoof%u {\n\t\ttype ifname . %s\n", fam,
			fam == 4 ? "ipv4_addr" : "ipv6_addr");
		fputs("\t\tcomment \"the source addresses of each local endpoint\"\n", r->sets);
		for (size_t i = 0; i < w->neps; i++) {
			const struct w_ep *e = &w->eps[i];

			if (!e->local)
				continue;
			for (size_t k = 0; k < e->na; k++)
				if (e->a[k].family == fam) {
					fputs(n++ ? ",\n\t\t\t     \"" : "\t\telements = { \"",
					      r->sets);
					fputs(e->ifname, r->sets);
					fputs("\" . ", r->sets);
					fputs(addr_fmt(fam, e->a[k].addr, b), r->sets);
				}
		}
		fputs(n ? " }\n\t}\n" : "\t}\n", r->sets);
	}
}

/*
 * Classes: the local endpoints that share both their egress and their
 * ingress chain. The base chains dispatch by the interface's group
 * (`iifgroup`, `oifgroup`), which the agent sets to the endpoint's class
 * (agent/groups.c, from the map ep_class). An endpoint that comes or goes
 * in an existing class then changes only elements of data maps and sets,
 * never a verdict map: the kernel revalidates every jump path of the table
 * after a verdict element or a rule is added (about 15 ms with 3,500
 * endpoints), and not after a data element.
 *
 * A class's number is a hash of its two chains' names, from 2^30 to 2^31 - 1
 * (clear of the small numbers people give interface groups in
 * /etc/iproute2/group, and below 2^31, which `ip link` takes and prints as
 * a signed number), so that it stays the same whatever else comes and goes;
 * a collision takes the next free number, in the order of the names.
 */
void classes_free(struct classes *c)
{
	free(c->of);
	free(c->eg);
	free(c->in);
	free(c->id);
}

/* by the egress, then the ingress chain's name; g: the two groups */
static int cmp_class(const void *a, const void *b, void *g)
{
	const struct groups *ge = ((const struct groups **)g)[0], *gi = ((const struct groups **)g)[1];
	const size_t *x = a, *y = b;
	int r = strcmp(ge->name[x[0]], ge->name[y[0]]);

	return r ? r : strcmp(gi->name[x[1]], gi->name[y[1]]);
}

static uint32_t class_hash(const char *eg, const char *in)
{
	return ((uint32_t)hash_mix(hash_str(eg), hash_str(in)) & 0x3fffffffu) | 0x40000000u;
}

static bool eq_u32(const void *val, const void *key)
{
	return *(const uint32_t *)val == *(const uint32_t *)key;
}

int classes_of(const struct world *w, const struct groups *ge, const struct groups *gi,
	       struct classes *c)
{
	size_t (*pair)[3] = calloc(w->nlocal + 1, sizeof(*pair)), np = 0;
	const struct groups *g2[2] = { ge, gi };
	struct hmap used = { 0 };
	int r = -1;

	memset(c, 0, sizeof(*c));
	c->of = calloc(w->neps + 1, sizeof(*c->of));
	c->eg = calloc(w->nlocal + 1, sizeof(*c->eg));
	c->in = calloc(w->nlocal + 1, sizeof(*c->in));
	c->id = calloc(w->nlocal + 1, sizeof(*c->id));
	if (!pair || !c->of || !c->eg || !c->in || !c->id)
		goto out;
	for (size_t i = 0; i < w->neps; i++)
		if (w->eps[i].local) {
			pair[np][0] = ge->of[i];
			pair[np][1] = gi->of[i];
			pair[np++][2] = i;
		}
	qsort_r(pair, np, sizeof(*pair), cmp_class, g2);
	for (size_t k = 0; k < np; k++) {
		if (!k || pair[k][0] != pair[k - 1][0] || pair[k][1] != pair[k - 1][1]) {
			uint32_t id = class_hash(ge->name[pair[k][0]], gi->name[pair[k][1]]);

			while (hmap_find(&used, id, eq_u32, &id))
				id = ((id + 1) & 0x3fffffffu) | 0x40000000u;
			c->eg[c->n] = pair[k][0];
			c->in[c->n] = pair[k][1];
			c->id[c->n] = id;
			if (hmap_insert(&used, id, &c->id[c->n]) < 0)
				goto out;
			c->n++;
		}
		c->of[pair[k][2]] = c->n - 1;
	}
	r = 0;
out:
	hmap_release(&used);
	free(pair);
	if (r < 0)
		classes_free(c);
	return r;
}

/* class number -> goto the chain of its group in g (NULL: the one chain h) */
void verdict_map(FILE *f, const char *name, const struct classes *c, const size_t *grp,
		 const struct groups *g)
{
	fprintf(f, "\tmap %s {\n\t\ttype devgroup : verdict\n", name);
	for (size_t k = 0; k < c->n; k++)
		fprintf(f, k ? ",\n\t\t\t     %u : goto %s" : "\t\telements = { %u : goto %s",
			(unsigned)c->id[k], g ? g->name[grp[k]] : "h");
	fputs(c->n ? " }\n\t}\n" : "\t}\n", f);
}

/* interface -> class number: what the agent sets as the interface's group */
void class_map(FILE *f, const struct world *w, const struct classes *c)
{
	size_t n = 0;

	fputs("\tmap ep_class {\n\t\ttype ifname : devgroup\n"
	      "\t\tcomment \"the class of each local endpoint, set as its interface's group\"\n", f);
	for (size_t i = 0; i < w->neps; i++) {
		if (!w->eps[i].local)
			continue;
		char b[12];

		fputs(n++ ? ",\n\t\t\t     \"" : "\t\telements = { \"", f);
		fputs(w->eps[i].ifname, f);
		fputs("\" : ", f);
		fputs(uint_str((unsigned)c->id[c->of[i]], b), f);
	}
	fputs(n ? " }\n\t}\n" : "\t}\n", f);
}

/* Keep the chains, classes and local endpoints for policy_inc_endpoint. */
int record_endpoints(struct render *r, const struct groups *ge, const struct groups *gi,
		     const struct classes *cl)
{
	const struct world *w = r->w;
	const struct groups *g2[2] = { ge, gi };
	size_t *members = calloc(cl->n + 1, sizeof(*members));

	if (!members)
		return -1;
	for (int d = 0; d < 2; d++)
		for (size_t g = 0; g < g2[d]->n; g++) {
			char *key = strdup(g2[d]->key[g]);

			if (!key || inc_record_group(r->inc, d == 1, key, g2[d]->name[g],
						     &w->eps[g2[d]->first[g]]) < 0) {
				free(members);
				return -1;
			}
		}
	for (size_t i = 0; i < w->neps; i++)
		if (w->eps[i].local) {
			members[cl->of[i]]++;
			if (inc_record_local(r->inc, &w->eps[i], cl->id[cl->of[i]]) < 0) {
				free(members);
				return -1;
			}
		}
	for (size_t k = 0; k < cl->n; k++)
		if (inc_record_class(r->inc, ge->name[cl->eg[k]], gi->name[cl->in[k]], cl->id[k],
				     members[k]) < 0) {
			free(members);
			return -1;
		}
	free(members);
	return inc_index_classes(r->inc);
}
