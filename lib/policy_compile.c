/* SPDX-License-Identifier: MIT */
/*
 * DOC: compiling policy for one host into an nftables ruleset
 *
 * The ruleset is one table, replaced in one `nft -f` transaction (add the
 * table, delete it, write it anew: atomic, and a failure leaves the old one):
 *
 *   chain egress   hook forward, priority filter - 1: traffic from workloads
 *   chain ingress  hook forward, priority filter:     traffic to workloads
 *   chain host_in  hook input,   priority filter - 1: workloads to this host
 *
 * Each base chain lets non-workload interfaces through at once, then
 * dispatches by interface name through a verdict map (one lookup, whatever
 * the number of endpoints) to the endpoint's own chain; an lx* interface
 * that is in no map is dropped (fail closed). An endpoint's chain checks its
 * source address (anti-spoofing, counted), accepts established flows, then
 * jumps to one shared chain per policy that selects it; a rule's peers are
 * named sets (the blocks of a tenant or segment, the addresses a selector
 * matches, the hosts), so the cost of a packet is a map lookup plus the
 * rules of the policies that select its endpoint, not all the rules there are.
 *
 * Semantics (docs/policy.md): a direction that no policy selects the
 * endpoint for follows the tenant's isolation for ingress (segment, tenant
 * or none) and allows egress; once any policy selects it, only what some
 * selecting policy allows passes (Kubernetes' additive model).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hmap.h"
#include "policy.h"
#include "policy_int.h"

/* ---- rendering ---- */

static int cmp_prefix(const void *a, const void *b)
{
	return prefix_cmp(a, b);
}

/* "\t\tcomment \"...\"\n": nft takes at most 128 characters; longer ones
 * (names can be 63 each) end in "..." */
/*
 * Text from users (names, label keys and values, handles) in a comment:
 * anything but printable ASCII, and the quote, backslash and '#' that nft
 * strings and the iptables sections ("#@ ...") give a meaning, becomes '_',
 * so that no label can end a comment or start a line of its own. In place.
 */
static char *comment_safe(char *b)
{
	for (char *p = b; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || *p == '"' || *p == '\\' ||
		    *p == '#')
			*p = '_';
	return b;
}

/* b (at least 129 bytes) as an nft comment's text: at most the 128
 * characters nft takes, made safe. In place. */
static char *nft_comment(char *b)
{
	if (strlen(b) > 128)
		memcpy(b + 125, "...", 4);
	return comment_safe(b);
}

/* A comment for the nft text (kind 'n': "\t\tcomment \"...\"") or the
 * iptables and ipset inputs ('#': "# ..."), its text made safe. */
void put_comment(FILE *f, char kind, const char *fmt, ...)
{
	char b[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (kind == '#') {
		fprintf(f, "# %s\n", comment_safe(b));
		return;
	}
	fprintf(f, "\t\tcomment \"%s\"\n", nft_comment(b));
}


static void put_addr(FILE *f, const struct prefix *p)
{
	char b[PREFIX_STRLEN];

	if (p->len == prefix_bits(p->family))
		fputs(addr_fmt(p->family, p->addr, b), f);
	else
		fputs(prefix_fmt(p, b), f);
}

/* Declare a set of these prefixes (sorted, deduplicated); returns its number,
 * or 0 when it would be empty. */
/*
 * nftables names sets and policy chains after a hash of what they stand for
 * (a set: its selector, tenant or segment, and family; a policy: its id):
 * "s" or "p" and 16 hex digits. A policy or an endpoint that comes or goes
 * then renames nothing else, and the agent's difference stays small. Two
 * keys with the same hash: the second gets "_N". Into out; -1 on out of
 * memory.
 */
static bool eq_name24(const void *val, const void *key)
{
	return !strcmp(val, key);
}

int stable_name(struct render *r, char kind, const char *key, char out[24])
{
	uint64_t h = hash_str(key);
	char *copy;

	out[0] = kind; /* "%c%016llx" */
	for (int i = 0; i < 16; i++)
		out[1 + i] = "0123456789abcdef"[(h >> (60 - 4 * i)) & 15];
	out[17] = '\0';
	for (unsigned i = 2; hmap_find(&r->names, hash_key(out), eq_name24, out); i++)
		snprintf(out, 24, "%c%016llx_%u", kind, (unsigned long long)h, i);
	if (!(copy = strdup(out)) || hmap_insert(&r->names, hash_key(copy), copy) < 0) {
		free(copy);
		return -1;
	}
	return 0;
}

/* How rules name set number `set`. */
static const char *set_ref(const struct render *r, unsigned set)
{
	return r->set_name[set];
}

/* Rendering from the kept state (r->look): a set kept under this name gets
 * a number, declaring nothing; "" (it was left out: empty) is 0. */
static unsigned look_set(struct render *r, const char *name)
{
	char (*names)[24];

	if (!*name)
		return 0;
	if (!(names = realloc(r->set_name, (r->nset + 2) * sizeof(*names)))) {
		r->unknown = true;
		return 0;
	}
	r->set_name = names;
	snprintf(names[++r->nset], sizeof(*names), "%s", name);
	return r->nset;
}

static unsigned declare_set(struct render *r, struct prefix *v, size_t n, uint8_t family,
			    bool interval, const char *what, const char *key)
{
	size_t k = 0;

	qsort(v, n, sizeof(*v), cmp_prefix);
	for (size_t i = 0; i < n; i++)
		if (v[i].family == family && (!k || prefix_cmp(&v[k - 1], &v[i])))
			v[k++] = v[i];
	if (!k)
		return 0;
	r->nset++;
	if (r->ipt) {
		hash_line(r->sets, "%s", what);
		fprintf(r->sets, "create " IPT_SET " hash:net family %s maxelem %zu\n",
			r->t, r->nset, family == 4 ? "inet" : "inet6", k < 65536 ? (size_t)65536 : 2 * k);
		for (size_t i = 0; i < k; i++) {
			fprintf(r->sets, "add " IPT_SET " ", r->t, r->nset);
			put_addr(r->sets, &v[i]);
			fputc('\n', r->sets);
		}
		return r->nset;
	}
	{
		char (*names)[24] = realloc(r->set_name, (r->nset + 1) * sizeof(*names));
		char skey[600];

		if (!names) {
			r->nset--;
			return 0;
		}
		r->set_name = names;
		snprintf(skey, sizeof(skey), "%u|%s", family, key);
		if (stable_name(r, 's', skey, names[r->nset]) < 0) {
			r->nset--;
			return 0;
		}
	}
	fprintf(r->sets, "\tset %s {\n\t\ttype %s\n", set_ref(r, r->nset),
		family == 4 ? "ipv4_addr" : "ipv6_addr");
	if (interval)
		fputs("\t\tflags interval\n", r->sets);
	comment_line(r->sets, "%s", what);
	fputs("\t\telements = { ", r->sets);
	for (size_t i = 0; i < k; i++) {
		if (i)
			fputs(i % 8 ? ", " : ",\n\t\t\t     ", r->sets);
		put_addr(r->sets, &v[i]);
	}
	fputs(" }\n\t}\n", r->sets);
	return r->nset;
}

void block_sets(struct render *r, struct cache *c, const char *tenant, const char *segment,
		unsigned out[2])
{
	struct prefix *v;
	size_t n = 0;
	char what[160];

	if (r->look) {
		const struct inc_bset *b = inc_bset_find(r->look, tenant, segment);

		out[0] = b ? look_set(r, b->name[0]) : 0;
		out[1] = b ? look_set(r, b->name[1]) : 0;
		r->unknown |= !b;
		return;
	}
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].tenant, tenant) &&
		    (segment ? c->v[i].segment && !strcmp(c->v[i].segment, segment) : !c->v[i].segment)) {
			out[0] = c->v[i].s[0];
			out[1] = c->v[i].s[1];
			return;
		}
	v = calloc(r->w->nblocks + 1, sizeof(*v));
	for (size_t i = 0; v && i < r->w->nblocks; i++)
		if (!strcmp(r->w->blocks[i].tenant, tenant) &&
		    (!segment || !strcmp(r->w->blocks[i].segment, segment)))
			v[n++] = r->w->blocks[i].cidr;
	snprintf(what, sizeof(what), "blocks of %s %s%s%s", segment ? "segment" : "tenant", tenant,
		 segment ? "/" : "", segment ? segment : "");
	out[0] = v ? declare_set(r, v, n, 4, true, what, what) : 0;
	out[1] = v ? declare_set(r, v, n, 6, true, what, what) : 0;
	free(v);
	if (!(c->v = realloc(c->v, (c->n + 1) * sizeof(*c->v)))) {
		c->n = 0;
		return;
	}
	c->v[c->n++] = (struct blockset){ tenant, segment, { out[0], out[1] } };
}

/* dst = the strings given (NULL ends them), cut to len: snprintf("%s%s..")
 * without parsing a format, for the lines written per rule. */
static void cat(char *dst, size_t len, ...)
{
	va_list ap;
	const char *s;
	size_t n = 0;

	va_start(ap, len);
	while ((s = va_arg(ap, const char *))) {
		size_t l = strlen(s);

		if (l > len - 1 - n)
			l = len - 1 - n;
		memcpy(dst + n, s, l);
		n += l;
	}
	va_end(ap);
	dst[n] = '\0';
}

/* v in decimal into b (12 bytes) */
const char *uint_str(unsigned v, char b[12])
{
	char *p = b + 11;

	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	return p;
}

static const char *fam_kw(uint8_t family)
{
	return family == 4 ? "ip" : "ip6";
}

static bool eq_peerset(const void *val, const void *key)
{
	return !strcmp(((const struct peerset *)val)->key, key);
}

static size_t add_addrs(const struct w_ep *e, struct prefix *v, size_t n)
{
	for (size_t j = 0; j < e->na; j++)
		v[n++] = e->a[j];
	return n;
}

static bool eq_nsmatch(const void *val, const void *key)
{
	return !strcmp(((const struct nsmatch *)val)->key, key);
}

/* The namespaces whose labels s matches, found once per rendering: peers
 * of many policies share a namespace selector (team=a) with different pod
 * selectors. NULL: out of memory. */
static const struct nsmatch *ns_matches(const struct world *w, struct cache *c,
					const struct labelsel *s)
{
	char *key = labelsel_key(s);
	struct nsmatch *m;

	if (!key)
		return NULL;
	if ((m = hmap_find(&c->nss, hash_key(key), eq_nsmatch, key))) {
		free(key);
		return m;
	}
	if (!(m = calloc(1, sizeof(*m))) || !(m->idx = malloc((w->nnsl + 1) * sizeof(*m->idx)))) {
		free(m);
		free(key);
		return NULL;
	}
	m->key = key;
	for (size_t i = 0; i < w->nnsl; i++)
		if (wns_match(s, &w->nsl[i]))
			m->idx[m->n++] = i;
	if (hmap_insert(&c->nss, hash_key(key), m) < 0) {
		free(m->idx);
		free(m);
		free(key);
		return NULL;
	}
	return m;
}

static void cache_release(struct cache *c)
{
	struct peerset *ps;
	struct nsmatch *m;
	size_t it = 0;

	while ((ps = hmap_next(&c->peers, &it))) {
		free(ps->key);
		free(ps);
	}
	hmap_release(&c->peers);
	it = 0;
	while ((m = hmap_next(&c->nss, &it))) {
		free(m->key);
		free(m->idx);
		free(m);
	}
	hmap_release(&c->nss);
	free(c->v);
}

/* A label every endpoint sel matches has, with one of a few values, when
 * fewer endpoints have one of them than *scan (then *scan is that many):
 * those endpoints are the candidates. A key has one value per endpoint, so
 * the values' lists do not overlap. */
static const struct sel_expr *label_candidates(const struct world *w, const struct epsel *sel,
					       size_t *scan)
{
	const struct sel_expr *best = NULL;

	for (size_t i = 0; sel->has_pods && i < sel->pods.n; i++) {
		const struct sel_expr *e = &sel->pods.e[i];
		size_t n = 0;

		if (e->op != SEL_IN)
			continue;
		for (size_t j = 0; j < e->nvalues && n < *scan; j++) {
			const struct w_list *l = label_eps(w, e->key, e->values[j]);
			size_t lo = 0, hi = l ? l->n : 0;

			if (sel->ns)
				label_range(w, l, sel->ns, &lo, &hi);
			n += hi - lo;
		}
		if (n < *scan) {
			*scan = n;
			best = e;
		}
	}
	return best;
}

/* The set of the addresses a selector matches in one family (0: none). */
static unsigned eps_set(struct render *r, struct cache *c, const struct epsel *sel,
			uint8_t family)
{
	const struct world *w = r->w;
	/* the key on the stack when the selector kept it: most peers' sets are
	 * known, found without a key of their own */
	char kb[256], *key = sel_key_into(sel, family, kb, sizeof(kb)), *heap = NULL;
	const struct sel_expr *by;
	struct peerset *ps;
	struct prefix *v;
	size_t n = 0, lo, hi, scan;
	unsigned set;

	if (!key && !(key = heap = sel_key(sel, family))) {
		r->inc_failed = true; /* a set left out that the kept state would not know */
		r->unknown = true;
		return 0;
	}
	if (r->look) {
		const char *name = inc_set_name(r->look, key);

		free(heap);
		r->unknown |= !name;
		return name ? look_set(r, name) : 0;
	}
	if ((ps = hmap_find(&c->peers, hash_key(key), eq_peerset, key))) {
		free(heap);
		return ps->set;
	}
	/* a new set: the key is kept with it */
	if (!heap && !(key = strdup(key))) {
		r->oom = true; /* the rendering fails rather than leave the peer out */
		return 0;
	}
	/* the candidates: one namespace's endpoints, or those with one of the
	 * values a label must have, whichever are fewer */
	if (sel->ns)
		ns_range(w, w->neps, ep_ns, sel->ns, &lo, &hi);
	scan = sel->ns ? hi - lo : w->neps;
	by = label_candidates(w, sel, &scan);
	/* room for two addresses per candidate (written before they are read:
	 * no zeroing; most selectors are a namespace's, a few dozen endpoints) */
	if (!(v = malloc((2 * scan + 1) * sizeof(*v)))) {
		free(key);
		r->inc_failed = true;
		return 0;
	}
	if (by) {
		for (size_t i = 0; i < by->nvalues; i++) {
			const struct w_list *l = label_eps(w, by->key, by->values[i]);
			size_t a = 0, b = l ? l->n : 0;

			if (sel->ns)
				label_range(w, l, sel->ns, &a, &b);
			for (size_t j = a; j < b; j++)
				if (sel_match(w, sel, &w->eps[l->idx[j]]))
					n = add_addrs(&w->eps[l->idx[j]], v, n);
		}
	} else if (sel->ns) {
		/* one namespace: its range of the index */
		for (size_t i = lo; i < hi; i++)
			if (sel_match(w, sel, w->by_ns[i]))
				n = add_addrs(w->by_ns[i], v, n);
	} else if (sel->has_nss) {
		/* the namespaces the selector's namespace labels match */
		const struct nsmatch *m = ns_matches(w, c, &sel->nss);

		if (!m) {
			free(v);
			free(key);
			r->inc_failed = true;
			return 0;
		}
		for (size_t i = 0; i < m->n; i++) {
			const struct w_ns *ns = &w->nsl[m->idx[i]];

			for (size_t j = ns->lo; j < ns->hi; j++)
				if (sel_match(w, sel, w->by_ns[j]))
					n = add_addrs(w->by_ns[j], v, n);
		}
	} else {
		for (size_t i = 0; i < w->neps; i++)
			if (sel_match(w, sel, &w->eps[i]))
				n = add_addrs(&w->eps[i], v, n);
	}
	{
		char *what = sel_describe(sel);
		/* declare_set sorts and compacts v: what is kept is taken first */
		struct prefix *all = r->inc ? malloc((n + 1) * sizeof(*all)) : NULL;

		if (all)
			memcpy(all, v, n * sizeof(*all));
		set = declare_set(r, v, n, family, false, what ? what : "endpoints", key);
		free(what);
		if (r->inc && (!all || inc_record_set(r->inc, key, sel, family,
						      set ? set_ref(r, set) : "", all, n) < 0))
			r->inc_failed = true;
		free(all);
	}
	free(v);
	ps = malloc(sizeof(*ps));
	if (!ps || hmap_insert(&c->peers, hash_key(key), ps) < 0) {
		free(ps);
		free(key);
		return set;
	}
	ps->key = key;
	ps->set = set;
	return set;
}

/* Which rule and peer a set of exceptions is for (its comment). */
struct rule_at {
	const char *id;
	bool ingress;
	size_t rule, peer;
};

/* The match of one peer in one family into buf; false when it matches nothing. */
static bool peer_match(struct render *r, struct cache *c, const struct peer *p, uint8_t family,
		       const char *dir, const struct rule_at *at, char *buf, size_t len)
{
	const struct world *w = r->w;
	unsigned s[2] = { 0, 0 }, set;
	char b[PREFIX_STRLEN];
	bool src = !strcmp(dir, "saddr");
	FILE *f;

	switch (p->type) {
	case PEER_CIDR:
		if (p->cidr.family != family)
			return false;
		if (!(f = fmemopen(buf, len, "w")))
			return false;
		if (r->ipt) {
			struct prefix *v = calloc(p->nexcept + 1, sizeof(*v));
			char ewhat[240];

			fprintf(f, "%s %s", src ? "-s" : "-d", prefix_fmt(&p->cidr, b));
			if (p->nexcept && v) {
				memcpy(v, p->except, p->nexcept * sizeof(*v));
				snprintf(ewhat, sizeof(ewhat), "%s %s[%zu] peer %zu except",
					 at->id ? at->id : "", at->ingress ? "ingress" : "egress",
					 at->rule, at->peer);
				set = declare_set(r, v, p->nexcept, family, true, ewhat, ewhat);
				if (set)
					fprintf(f, " -m set ! --match-set " IPT_SET " %s", r->t, set,
						src ? "src" : "dst");
			}
			free(v);
			fclose(f);
			return true;
		}
		fprintf(f, "%s %s %s", fam_kw(family), dir, prefix_fmt(&p->cidr, b));
		if (p->nexcept) {
			fprintf(f, " %s %s != %s", fam_kw(family), dir, p->nexcept > 1 ? "{ " : "");
			for (size_t i = 0; i < p->nexcept; i++)
				fprintf(f, "%s%s", i ? ", " : "", prefix_fmt(&p->except[i], b));
			if (p->nexcept > 1)
				fputs(" }", f);
		}
		fclose(f);
		return true;
	case PEER_TENANT:
	case PEER_SEGMENT:
		block_sets(r, c, p->tenant, p->segment, s);
		set = s[family == 6];
		break;
	case PEER_HOSTS:
		if (!c->hosts_done && r->look) {
			r->unknown |= !r->look->hosts_done;
			c->hosts[0] = look_set(r, r->look->hosts[0]);
			c->hosts[1] = look_set(r, r->look->hosts[1]);
			c->hosts_done = true;
		}
		if (!c->hosts_done) {
			struct prefix *v = calloc(w->nhosts + 1, sizeof(*v));

			if (v) {
				memcpy(v, w->hosts, w->nhosts * sizeof(*v));
				c->hosts[0] = declare_set(r, v, w->nhosts, 4, false, "the hosts", "hosts");
				c->hosts[1] = declare_set(r, v, w->nhosts, 6, false, "the hosts", "hosts");
			}
			free(v);
			c->hosts_done = true;
		}
		set = c->hosts[family == 6];
		break;
	case PEER_EPS:
		set = eps_set(r, c, &p->sel, family);
		break;
	default:
		return false;
	}
	if (!set)
		return false;
	if (r->ipt)
		snprintf(buf, len, "-m set --match-set " IPT_SET " %s", r->t, set, src ? "src" : "dst");
	else
		cat(buf, len, fam_kw(family), " ", dir, " @", set_ref(r, set), (char *)NULL);
	return true;
}

/*
 * Policy rules repeated in one chain: a rule equal to one already written
 * in the chain (the same match and verdict, the comment aside) is not
 * written again, since the first accepts every packet the second would.
 * Several policies that select the same endpoints often allow the same
 * peer on the same port; the kernel's cost of a ruleset is mostly per
 * rule. seen_reset at the start of each chain.
 */
static void seen_reset(struct render *r)
{
	char *line;
	size_t it = 0;

	while ((line = hmap_next(&r->seen, &it)))
		free(line);
	hmap_release(&r->seen);
}

static bool seen_eq(const void *val, const void *key)
{
	return !strcmp(val, key);
}

/* true when line was written before in this chain, or cannot be
 * remembered (r->oom: the rendering fails); else the chain keeps a copy */
static bool seen_rule(struct render *r, const char *line)
{
	uint64_t h = hash_key(line);
	size_t slot;
	char *copy;

	if (hmap_lookup(&r->seen, h, seen_eq, line, &slot))
		return true;
	if (!(copy = strdup(line)) || hmap_insert_at(&r->seen, slot, h, copy) < 0) {
		free(copy);
		r->oom = true;
		return true;
	}
	return false;
}

/* iptables: multiport takes at most 15 ports (a range counts two): one
 * match per chunk. */
static size_t ipt_ports(const struct rule *rl, uint8_t pr, const char *name, char out[][512],
			size_t n, size_t max)
{
	size_t i = 0;

	while (i < rl->nports && n < max) {
		int used = 0, len = snprintf(out[n], 512, "-p %s -m multiport --dports ", name);
		bool any = false;

		for (; i < rl->nports && len < 480; i++) {
			const struct port *p = &rl->ports[i];
			int w = p->hi != p->lo ? 2 : 1;

			if (p->proto != pr)
				continue;
			if (used + w > 15)
				break;
			len += snprintf(out[n] + len, 512 - (size_t)len, any ? ",%u" : "%u", p->lo);
			if (p->hi != p->lo)
				len += snprintf(out[n] + len, 512 - (size_t)len, ":%u", p->hi);
			used += w;
			any = true;
		}
		if (any)
			n++;
	}
	return n;
}

/* The port matches of a rule in one family; n == 0: any. */
static size_t port_matches(const struct render *r, const struct rule *rl, uint8_t family,
			   char out[][512], size_t max)
{
	static const uint8_t protos[] = { 1, 6, 17, 132 };
	size_t n = 0;

	for (size_t i = 0; i < rl->nports; i++)
		if (rl->ports[i].proto == 0)
			return 0;
	for (size_t k = 0; k < sizeof(protos) && n < max; k++) {
		uint8_t pr = protos[k];
		const char *name = pr == 6 ? "tcp" : pr == 17 ? "udp" : pr == 132 ? "sctp" : NULL;
		bool any = false, some = false;
		FILE *f;

		for (size_t i = 0; i < rl->nports; i++)
			if (rl->ports[i].proto == pr) {
				some = true;
				any |= rl->ports[i].lo == 0;
			}
		if (!some)
			continue;
		if (pr == 1) {
			snprintf(out[n++], 512, "%s %s", r->ipt ? "-p" : "meta l4proto",
				 family == 4 ? "icmp" : "ipv6-icmp");
			continue;
		}
		if (any) {
			snprintf(out[n++], 512, "%s %s", r->ipt ? "-p" : "meta l4proto", name);
			continue;
		}
		if (r->ipt) {
			n = ipt_ports(rl, pr, name, out, n, max);
			continue;
		}
		/* one port or range: a plain match, not a set of one */
		size_t m = 0, one = 0;

		for (size_t i = 0; i < rl->nports; i++)
			if (rl->ports[i].proto == pr) {
				m++;
				one = i;
			}
		if (m == 1) {
			const struct port *p = &rl->ports[one];
			char lo[12], hi[12];

			cat(out[n++], 512, name, " dport ", uint_str(p->lo, lo), p->hi != p->lo ? "-" : "",
			    p->hi != p->lo ? uint_str(p->hi, hi) : "", (char *)NULL);
			continue;
		}
		if (!(f = fmemopen(out[n], 512, "w")))
			continue;
		fprintf(f, "%s dport { ", name);
		m = 0;
		for (size_t i = 0; i < rl->nports; i++) {
			const struct port *p = &rl->ports[i];

			if (p->proto != pr)
				continue;
			fprintf(f, m++ ? ", %u" : "%u", p->lo);
			if (p->hi != p->lo)
				fprintf(f, "-%u", p->hi);
		}
		fputs(" }", f);
		fclose(f);
		n++;
	}
	return n;
}

/*
 * nftables: the policy rules that allow one TCP port or range go to a chain
 * of their own, <name>t, which the chain reaches with one
 * `meta l4proto tcp jump`: there `th dport` needs no protocol match of its
 * own, 7 expressions a rule instead of 9 (the kernel's cost of a ruleset is
 * per rule and expression: docs/benchmarks.md, session 15). A chain has
 * it when it may hold policy rules (a policy's own chain; an endpoint
 * chain with a policy written in place), whether or not they are TCP now:
 * a policy's rules that change later change the two chains' rules, never
 * which chains there are.
 */
static void sub_open(struct render *r)
{
	r->tbuf = NULL;
	r->tlen = 0;
	if (!(r->ft = open_memstream(&r->tbuf, &r->tlen)))
		r->oom = true;
}

/* the jump to it (in the chain, after its policy rules) */
static void sub_jump(struct render *r, const char *name)
{
	fprintf(r->f, "\t\tmeta l4proto tcp jump %st\n", name);
}

/* it, after the chain */
static void sub_close(struct render *r, const char *name)
{
	if (r->ft && fclose(r->ft) != 0)
		r->oom = true;
	r->ft = NULL;
	fprintf(r->f, "\tchain %st {\n%s\t}\n", name, r->tbuf ? r->tbuf : "");
	free(r->tbuf);
	r->tbuf = NULL;
}

/* Does an endpoint chain write a policy's rules in place (sub_open)? */
static bool has_inline(const struct render *r, const size_t *v, size_t n, bool ingress)
{
	for (size_t i = 0; i < n; i++)
		if (r->pol_uses[2 * v[i] + !ingress] == 1)
			return true;
	return false;
}

/* chain p<k>i / p<k>o: one accept per (family, peer, port group); inl
 * (nftables): only those rules, written where the caller is (the one
 * endpoint chain that uses them) */
static void policy_chain(struct render *r, struct cache *c, size_t k, bool ingress, bool inl)
{
	const struct policy *p = &r->w->pols[k];
	const struct rule *rules = ingress ? p->in : p->out;
	size_t nrules = ingress ? p->nin : p->nout;
	const char *dir = ingress ? "saddr" : "daddr";
	char *own = p->id ? NULL : policy_id(p), tail[160] = "", cname[32] = "";
	const char *id = p->id ? p->id : own;

	if (!inl)
		seen_reset(r); /* a chain of its own */
	/* written in place, each rule names its policy */
	if (inl) {
		char b[512];

		snprintf(b, sizeof(b), "%s", id ? id : "");
		snprintf(tail, sizeof(tail), " comment \"%s\"", nft_comment(b));
	}
	if (r->ipt) {
		for (int k6 = 0; k6 < 2; k6++) {
			hash_line(k6 ? r->f6 : r->f, "%s %s", id ? id : "",
				  ingress ? "ingress" : "egress");
			fprintf(k6 ? r->f6 : r->f, ":%s-p%zu%c - [0:0]\n", r->t, k, ingress ? 'i' : 'o');
		}
	} else if (!inl) {
		snprintf(cname, sizeof(cname), "%s%c", r->pol_name[k], ingress ? 'i' : 'o');
		fprintf(r->f, "\tchain %s {\n", cname);
		comment_line(r->f, "%s %s", id ? id : "", ingress ? "ingress" : "egress");
		sub_open(r);
	}
	for (size_t i = 0; i < nrules; i++) {
		const struct rule *rl = &rules[i];

		for (uint8_t fam = 4; fam <= 6; fam += 2) {
			char ports[32][512], peer[4096], line[4096 + 600];
			size_t np;

			if (rl->family && rl->family != fam)
				continue;
			np = port_matches(r, rl, fam, ports, 32);
			for (size_t j = 0; j < (rl->npeers ? rl->npeers : 1); j++) {
				if (rl->npeers) {
					struct rule_at at = { id, ingress, i, j };

					if (!peer_match(r, c, &rl->peers[j], fam, dir, &at, peer,
							sizeof(peer)))
						continue;
				} else if (r->ipt) {
					peer[0] = '\0'; /* the family is the file's */
				} else {
					snprintf(peer, sizeof(peer), "meta nfproto %s",
						 fam == 4 ? "ipv4" : "ipv6");
				}
				for (size_t q = 0; q < (np ? np : 1); q++) {
					/* one TCP port or range: the TCP chain's */
					bool tcp = r->ft && np && !strncmp(ports[q], "tcp dport ", 10) &&
						   ports[q][10] != '{';

					/* iptables: "4" or "6" first, a family's file
					 * each (not written) */
					if (r->ipt) {
						int n = snprintf(line, sizeof(line),
								 "%c-A %s-p%zu%c%s%s%s%s %s%s%s",
								 '0' + fam, r->t, k, ingress ? 'i' : 'o',
								 *peer ? " " : "", peer, np ? " " : "",
								 np ? ports[q] : "",
								 ingress ? "-j ACCEPT" : "-g ",
								 ingress ? "" : r->t, ingress ? "" : "-eok");

						if (n < 0 || (size_t)n >= sizeof(line)) {
							r->oom = true; /* not written cut */
							continue;
						}
					} else if (tcp) {
						cat(line, sizeof(line), peer, " th dport ", ports[q] + 10,
						    " accept", (char *)NULL);
					} else {
						cat(line, sizeof(line), peer, np ? " " : "",
						    np ? ports[q] : "", " accept", (char *)NULL);
					}
					if (seen_rule(r, line))
						continue;
					if (r->ipt) {
						fputs(line + 1, fam == 4 ? r->f : r->f6);
						fputc('\n', fam == 4 ? r->f : r->f6);
					} else {
						FILE *o = tcp ? r->ft : r->f;

						fputs("\t\t", o);
						fputs(line, o);
						fputs(tail, o);
						fputc('\n', o);
					}
				}
			}
		}
	}
	if (!r->ipt && !inl) {
		sub_jump(r, cname);
		fputs("\t}\n", r->f);
		sub_close(r, cname);
	}
	free(own);
}

enum isolation tenant_iso(const struct world *w, const char *tenant)
{
	for (size_t i = 0; i < w->ntenants; i++)
		if (!strcmp(w->tenants[i].name, tenant))
			return w->tenants[i].iso;
	return ISO_SEGMENT;
}

/* What the group's chain depends on (chain_key), for people. */
static void chain_comment(FILE *f, const struct world *w, const struct w_ep *e, bool ingress)
{
	size_t n = ingress ? e->npin : e->npout;
	enum isolation iso = tenant_iso(w, e->tenant);

	if (n == 1) {
		char *id = policy_id(&w->pols[ingress ? e->pin[0] : e->pout[0]]);

		comment_line(f, "%s under %s", ingress ? "ingress" : "egress", id ? id : "1 policy");
		free(id);
	} else if (n) {
		comment_line(f, "%s under %zu policies", ingress ? "ingress" : "egress", n);
	}
	else if (!ingress)
		comment_line(f, "egress, no policy");
	else if (iso == ISO_NONE)
		/* not naming the tenant: the chain is shared by every tenant
		 * that allows all (its key names none), so its text must not
		 * depend on which endpoint comes first */
		comment_line(f, "ingress, no policy: the tenant allows all");
	else if (iso == ISO_TENANT)
		comment_line(f, "ingress, no policy: from tenant %s", e->tenant);
	else
		comment_line(f, "ingress, no policy: from segment %s/%s", e->tenant, e->segment);
}

/* Policy k's rules for e's chain: a jump to its chain, or the rules
 * themselves when e's chain is the only one that uses them (see
 * policy_chains). */
static void policy_rules(struct render *r, struct cache *c, size_t k, bool ingress)
{
	if (r->pol_uses[2 * k + !ingress] == 1)
		policy_chain(r, c, k, ingress, true);
	else
		fprintf(r->f, "\t\tjump %s%c\n", r->pol_name[k], ingress ? 'i' : 'o');
}

static void egress_chain(struct render *r, struct cache *c, const char *name,
			 const struct w_ep *e)
{
	FILE *f = r->f;
	bool sub = has_inline(r, e->pout, e->npout, false);

	seen_reset(r);
	fprintf(f, "\tchain %s {\n", name);
	chain_comment(f, r->w, e, false);
	fputs("\t\tiifname . ip saddr != @spoof4 counter drop comment \"spoofed\"\n"
	      "\t\tiifname . ip6 saddr != @spoof6 counter drop comment \"spoofed\"\n"
	      "\t\tct state established,related accept\n", f);
	if (sub)
		sub_open(r);
	for (size_t i = 0; i < e->npout; i++)
		policy_rules(r, c, e->pout[i], false);
	if (sub)
		sub_jump(r, name);
	fputs(e->npout ? "\t\tcounter drop comment \"egress not allowed\"\n" : "\t\taccept\n", f);
	fputs("\t}\n", f);
	if (sub)
		sub_close(r, name);
}

static void ingress_chain(struct render *r, struct cache *c, const char *name, const struct w_ep *e)
{
	FILE *f = r->f;
	bool sub = has_inline(r, e->pin, e->npin, true);

	seen_reset(r);
	fprintf(f, "\tchain %s {\n", name);
	chain_comment(f, r->w, e, true);
	fputs("\t\tct state established,related accept\n", f);
	if (sub)
		sub_open(r);
	if (e->npin) {
		for (size_t i = 0; i < e->npin; i++)
			policy_rules(r, c, e->pin[i], true);
		if (sub)
			sub_jump(r, name);
	} else {
		enum isolation iso = tenant_iso(r->w, e->tenant);
		unsigned s[2];

		if (iso == ISO_NONE) {
			fputs("\t\taccept\n", f);
		} else {
			block_sets(r, c, e->tenant, iso == ISO_SEGMENT ? e->segment : NULL, s);
			for (int k = 0; k < 2; k++)
				if (s[k])
					fprintf(f, "\t\t%s saddr @%s accept\n", k ? "ip6" : "ip",
						set_ref(r, s[k]));
		}
	}
	fputs("\t\tcounter drop comment \"ingress not allowed\"\n\t}\n", f);
	if (sub)
		sub_close(r, name);
}

/* Traffic from an endpoint to this host: its own sources, and IPv6
 * link-local (neighbour discovery). */
static const char nft_host_chain[] =
	"\tchain h {\n"
	"\t\tcomment \"to the host from a local endpoint\"\n"
	"\t\tiifname . ip saddr != @spoof4 counter drop comment \"spoofed\"\n"
	"\t\tip6 saddr != fe80::/10 iifname . ip6 saddr != @spoof6 counter drop comment \"spoofed\"\n"
	"\t\taccept\n"
	"\t}\n";

/*
 * The policies' chains, for those used by more than one endpoint chain.
 * A policy whose rules (in one direction) one endpoint chain alone uses,
 * the usual case (a policy selects one kind of workload), has them written
 * in that chain instead of a chain of its own and a jump: half the kernel's
 * work to walk the table's jumps, which it does after every rule added
 * (docs/policy.md, "Policies written in place").
 */
static int policy_chains(struct render *r, struct cache *c, const struct groups *ge,
			 const struct groups *gi)
{
	const struct world *w = r->w;

	if (!(r->pol_uses = calloc(2 * w->npols + 1, sizeof(*r->pol_uses))))
		return -1;
	for (int d = 0; d < 2; d++) {
		const struct groups *g = d ? gi : ge;

		for (size_t i = 0; i < g->n; i++) {
			const struct w_ep *e = &w->eps[g->first[i]];
			const size_t *v = d ? e->pin : e->pout;

			for (size_t j = 0, n = d ? e->npin : e->npout; j < n; j++)
				r->pol_uses[2 * v[j] + !d]++;
		}
	}
	for (size_t k = 0; k < w->npols; k++) {
		if (r->pol_uses[2 * k] > 1)
			policy_chain(r, c, k, true, false);
		if (r->pol_uses[2 * k + 1] > 1)
			policy_chain(r, c, k, false, false);
	}
	return 0;
}

/* All of the nftables endpoint part: chains, the spoofing sets, the maps. */
static int nft_endpoints(struct render *r, struct cache *c)
{
	const struct world *w = r->w;
	struct groups ge, gi;
	struct classes cl;

	if (group_eps(r, false, &ge) < 0)
		return -1;
	if (group_eps(r, true, &gi) < 0) {
		groups_free(&ge);
		return -1;
	}
	if (classes_of(w, &ge, &gi, &cl) < 0) {
		groups_free(&ge);
		groups_free(&gi);
		return -1;
	}
	if (r->inc && record_endpoints(r, &ge, &gi, &cl) < 0)
		r->inc_failed = true;
	if (policy_chains(r, c, &ge, &gi) < 0) {
		classes_free(&cl);
		groups_free(&ge);
		groups_free(&gi);
		return -1;
	}
	for (size_t g = 0; g < ge.n; g++)
		egress_chain(r, c, ge.name[g], &w->eps[ge.first[g]]);
	for (size_t g = 0; g < gi.n; g++)
		ingress_chain(r, c, gi.name[g], &w->eps[gi.first[g]]);
	fputs(nft_host_chain, r->f);
	spoof_sets(r);
	class_map(r->f, w, &cl);
	verdict_map(r->f, "from_ep", &cl, cl.eg, &ge);
	verdict_map(r->f, "to_host", &cl, NULL, NULL);
	verdict_map(r->f, "to_ep", &cl, cl.in, &gi);
	classes_free(&cl);
	groups_free(&ge);
	groups_free(&gi);
	return 0;
}

/* The base chains: pass other interfaces, dispatch workloads by their
 * interface's group (the endpoint's class). */
static const char nft_base_chains[] =
	"\tchain egress {\n"
	"\t\ttype filter hook forward priority filter - 1; policy accept;\n"
	"\t\tiifname != \"lx*\" accept\n"
	"\t\tiifgroup vmap @from_ep\n"
	"\t\tcounter drop comment \"unknown workload interface\"\n"
	"\t}\n"
	"\tchain ingress {\n"
	"\t\ttype filter hook forward priority filter; policy accept;\n"
	"\t\toifname != \"lx*\" accept\n"
	"\t\toifgroup vmap @to_ep\n"
	"\t\tcounter drop comment \"unknown workload interface\"\n"
	"\t}\n"
	"\tchain host_in {\n"
	"\t\ttype filter hook input priority filter - 1; policy accept;\n"
	"\t\tiifname != \"lx*\" accept\n"
	"\t\tiifgroup vmap @to_host\n"
	"\t\tcounter drop comment \"unknown workload interface\"\n"
	"\t}\n";

/* For a policy's change later: the names the blocks' and hosts' sets got,
 * and the selector sets by key. */
static int keep_sets(struct render *r, const struct cache *c)
{
	struct policy_inc *inc = r->inc;

	if (!(inc->bsets = calloc(c->n + 1, sizeof(*inc->bsets))))
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		struct inc_bset *b = &inc->bsets[inc->nbsets++];

		if (!(b->tenant = strdup(c->v[i].tenant)) ||
		    (c->v[i].segment && !(b->segment = strdup(c->v[i].segment))))
			return -1;
		for (int k = 0; k < 2; k++)
			if (c->v[i].s[k])
				snprintf(b->name[k], sizeof(b->name[k]), "%s", set_ref(r, c->v[i].s[k]));
	}
	inc->hosts_done = c->hosts_done;
	for (int k = 0; k < 2 && c->hosts_done; k++)
		if (c->hosts[k])
			snprintf(inc->hosts[k], sizeof(inc->hosts[k]), "%s", set_ref(r, c->hosts[k]));
	return inc_index_sets(inc);
}

/* Render for either backend. nft: one text; iptables: the ipset restore
 * script, then the IPv4 and IPv6 iptables-restore inputs, each after a
 * marker line (#@ ipset, #@ iptables, #@ ip6tables). */
static char *render(const struct world *w, const char *table, bool ipt, struct policy_inc *inc)
{
	struct render r = { .w = w, .ipt = ipt, .t = table, .inc = inc };
	struct cache c = { 0 };
	char *body = NULL, *sets = NULL, *body6 = NULL, *out = NULL, *gen = NULL;
	size_t blen = 0, slen = 0, b6len = 0;
	bool *used;

	r.f = open_memstream(&body, &blen);
	r.sets = open_memstream(&sets, &slen);
	if (ipt)
		r.f6 = open_memstream(&body6, &b6len);
	used = calloc(2 * w->npols + 1, sizeof(*used));
	if (!r.f || !r.sets || (ipt && !r.f6) || !used)
		goto done;
	for (size_t i = 0; i < w->neps; i++) {
		const struct w_ep *e = &w->eps[i];

		if (!e->local)
			continue;
		for (size_t k = 0; k < e->npin; k++)
			used[2 * e->pin[k]] = true;
		for (size_t k = 0; k < e->npout; k++)
			used[2 * e->pout[k] + 1] = true;
	}
	if (!ipt) {
		if (!(r.pol_name = calloc(w->npols + 1, sizeof(*r.pol_name))))
			goto done;
		for (size_t k = 0; k < w->npols; k++) {
			char *own = NULL;
			const char *id;

			if (!used[2 * k] && !used[2 * k + 1])
				continue;
			id = w->pols[k].id ? w->pols[k].id : (own = policy_id(&w->pols[k]));
			if (!id || stable_name(&r, 'p', id, r.pol_name[k]) < 0) {
				free(own);
				goto done;
			}
			free(own);
		}
	}
	for (size_t k = 0; ipt && k < w->npols; k++) {
		if (used[2 * k])
			policy_chain(&r, &c, k, true, false);
		if (used[2 * k + 1])
			policy_chain(&r, &c, k, false, false);
	}
	if (ipt) {
		for (size_t i = 0; i < w->neps; i++)
			if (w->eps[i].local)
				ipt_endpoint_chains(&r, &c, &w->eps[i]);
		ipt_top(&r);
	} else {
		if (nft_endpoints(&r, &c) < 0)
			goto done;
		fputs(nft_base_chains, r.f);
	}
	if (fclose(r.f) != 0 || fclose(r.sets) != 0 || (r.f6 && fclose(r.f6) != 0)) {
		r.f = r.sets = r.f6 = NULL;
		goto done;
	}
	r.f = r.sets = r.f6 = NULL;
	if (r.oom)
		goto done;
	if (asprintf(&gen, "# generated by larch-agent for host %s: %zu local endpoints, %zu policies\n",
		     w->host ? w->host : "-", w->nlocal, w->npols) < 0) {
		gen = NULL;
		goto done;
	}
	if (ipt) {
		char *h4 = hoist_chains(body), *h6 = hoist_chains(body6);

		if (!h4 || !h6 ||
		    asprintf(&out,
			     "%s#@ ipset\n%s"
			     "#@ iptables\n*filter\n%sCOMMIT\n"
			     "#@ ip6tables\n*filter\n%sCOMMIT\n",
			     gen, sets, h4, h6) < 0)
			out = NULL;
		free(h4);
		free(h6);
	} else {
		/* the sets and chains are megabytes: put together by length, not
		 * through a format */
		char *head = NULL;
		size_t hl, sl = strlen(sets), bl = strlen(body);

		if (asprintf(&head, "%stable inet %s {\n}\ndelete table inet %s\ntable inet %s {\n", gen,
			     table, table, table) < 0)
			head = NULL;
		if (head && (out = malloc((hl = strlen(head)) + sl + bl + 3))) {
			memcpy(out, head, hl);
			memcpy(out + hl, sets, sl);
			memcpy(out + hl + sl, body, bl);
			memcpy(out + hl + sl + bl, "}\n", 3);
		}
		free(head);
	}
done:
	free(gen);
	if (r.f)
		fclose(r.f);
	if (r.sets)
		fclose(r.sets);
	if (r.f6)
		fclose(r.f6);
	free(body);
	free(body6);
	free(sets);
	free(used);
	if (inc && out && !r.inc_failed && keep_sets(&r, &c) < 0)
		r.inc_failed = true;
	free(r.set_name);
	if (inc && out && !r.inc_failed) {
		inc->pol_name = r.pol_name; /* the chains' names of the policies, kept */
		inc->pol_uses = r.pol_uses;
	} else {
		free(r.pol_uses);
		free(r.pol_name);
		if (inc && out) {
			free(out); /* could not keep what the caller asked for */
			out = NULL;
		}
	}
	{
		char *name;
		size_t it = 0;

		while ((name = hmap_next(&r.names, &it)))
			free(name);
		hmap_release(&r.names);
	}
	seen_reset(&r);
	cache_release(&c);
	return out;
}

char *policy_render_nft(const struct world *w, const char *table)
{
	return render(w, table, false, NULL);
}

char *policy_render_nft_inc(struct world *w, const char *table, struct policy_inc **inc)
{
	struct policy_inc *k = calloc(1, sizeof(*k));
	char *out;

	*inc = NULL;
	if (!k)
		return NULL;
	k->w = w;
	if (!(out = render(w, table, false, k))) {
		k->w = NULL; /* the caller's still */
		policy_inc_free(k);
		return NULL;
	}
	*inc = k;
	return out;
}

char *policy_render_ipt(const struct world *w, const char *prefix)
{
	return render(w, prefix, true, NULL);
}

int inc_render_chain(struct policy_inc *inc, size_t k, bool ingress,
		     const struct inc_group *g, char **text)
{
	struct render r = { .w = inc->w, .look = inc, .pol_name = inc->pol_name,
			    .pol_uses = inc->pol_uses };
	struct cache c = { 0 };
	char *decl = NULL;
	size_t len = 0, dlen = 0;
	int ret = -1;

	*text = NULL;
	r.f = open_memstream(text, &len);
	r.sets = open_memstream(&decl, &dlen);
	if (!r.f || !r.sets)
		goto out;
	if (!g) {
		policy_chain(&r, &c, k, ingress, false);
	} else {
		struct w_ep e = { .tenant = g->tenant, .segment = g->segment };

		if (ingress) {
			e.pin = g->pols;
			e.npin = g->npols;
			ingress_chain(&r, &c, g->name, &e);
		} else {
			e.pout = g->pols;
			e.npout = g->npols;
			egress_chain(&r, &c, g->name, &e);
		}
	}
	if (fclose(r.f) != 0 || fclose(r.sets) != 0) {
		r.f = r.sets = NULL;
		goto out;
	}
	r.f = r.sets = NULL;
	if (r.oom)
		goto out;
	/* a set declared would be one the kept state does not have */
	ret = r.unknown || dlen ? 1 : 0;
out:
	if (r.f)
		fclose(r.f);
	if (r.sets)
		fclose(r.sets);
	free(decl);
	free(r.set_name);
	cache_release(&c);
	hmap_release(&r.names);
	seen_reset(&r);
	if (ret != 0) {
		free(*text);
		*text = NULL;
	}
	return ret;
}
