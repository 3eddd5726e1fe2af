/* SPDX-License-Identifier: MIT */
/*
 * DOC: the iptables backend's endpoint chains and dispatch
 *
 * Per local endpoint its egress, to-host and ingress chains, and the trees
 * of chains that dispatch by interface name (iptables has no verdict map);
 * the policy chains and sets are lib/policy_compile.c's, for both backends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"
#include "prefix.h"

/* ---- iptables ---- */

/* A line into both families' rules. */
static void both(struct render *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void both(struct render *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(r->f, fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	vfprintf(r->f6, fmt, ap);
	va_end(ap);
}

/* Drop what does not come from the endpoint's own addresses (host: IPv6
 * link-local too). One address: one negated match; none: drop the family;
 * more: the sources accepted into a chain of their own first. */
static void ipt_spoof(struct render *r, const char *idx, const struct w_ep *e, char kind, bool host)
{
	char b[PREFIX_STRLEN];

	for (uint8_t fam = 4; fam <= 6; fam += 2) {
		FILE *f = fam == 4 ? r->f : r->f6;
		size_t n = 0, only = 0;
		bool ll = host && fam == 6; /* link-local too */

		for (size_t i = 0; i < e->na; i++)
			if (e->a[i].family == fam) {
				n++;
				only = i;
			}
		n += ll;
		if (n == 0) {
			fprintf(f, "-A %s-%c%s -m comment --comment spoofed -j DROP\n", r->t, kind, idx);
		} else if (n == 1) {
			fprintf(f, "-A %s-%c%s ! -s %s -m comment --comment spoofed -j DROP\n", r->t,
				kind, idx, n == (size_t)ll ? "fe80::/10" : addr_fmt(fam, e->a[only].addr, b));
		} else {
			/* several sources: each returns to the rest of the chain
			 * through a chain of its own; anything else is dropped */
			fprintf(f, ":%s-%c%ss - [0:0]\n", r->t, kind, idx);
			for (size_t i = 0; i < e->na; i++)
				if (e->a[i].family == fam)
					fprintf(f, "-A %s-%c%ss -s %s -j RETURN\n", r->t, kind, idx,
						addr_fmt(fam, e->a[i].addr, b));
			if (ll)
				fprintf(f, "-A %s-%c%ss -s fe80::/10 -j RETURN\n", r->t, kind, idx);
			fprintf(f, "-A %s-%c%ss -m comment --comment spoofed -j DROP\n", r->t, kind, idx);
			fprintf(f, "-A %s-%c%s -j %s-%c%ss\n", r->t, kind, idx, r->t, kind, idx);
		}
	}
}

/* An endpoint's chains are named after its interface (PREFIX-e<12 hex>, -h,
 * -i): the same endpoint keeps its chains whatever comes and goes. */
void ipt_endpoint_chains(struct render *r, struct cache *c, const struct w_ep *e)
{
	const char *t = r->t, *idx = e->ifname + 2;

	/* from the endpoint, forwarded; allowed goes on to the ingress side */
	hash_line(r->f, "egress of %s", e->handle);
	hash_line(r->f6, "egress of %s", e->handle);
	both(r, ":%s-e%s - [0:0]\n", t, idx);
	ipt_spoof(r, idx, e, 'e', false);
	both(r, "-A %s-e%s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", t, idx);
	for (size_t i = 0; i < e->npout; i++)
		both(r, "-A %s-e%s -j %s-p%zuo\n", t, idx, t, e->pout[i]);
	if (e->npout)
		both(r, "-A %s-e%s -m comment --comment \"egress not allowed\" -j DROP\n", t, idx);
	else
		both(r, "-A %s-e%s -g %s-eok\n", t, idx, t);
	/* from the endpoint to this host */
	hash_line(r->f, "to the host from %s", e->handle);
	hash_line(r->f6, "to the host from %s", e->handle);
	both(r, ":%s-h%s - [0:0]\n", t, idx);
	ipt_spoof(r, idx, e, 'h', true);
	both(r, "-A %s-h%s -j ACCEPT\n", t, idx);
	/* to the endpoint */
	hash_line(r->f, "ingress of %s", e->handle);
	hash_line(r->f6, "ingress of %s", e->handle);
	both(r, ":%s-i%s - [0:0]\n", t, idx);
	both(r, "-A %s-i%s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", t, idx);
	if (e->npin) {
		for (size_t i = 0; i < e->npin; i++)
			both(r, "-A %s-i%s -j %s-p%zui\n", t, idx, t, e->pin[i]);
	} else {
		enum isolation iso = tenant_iso(r->w, e->tenant);
		unsigned s[2];

		if (iso == ISO_NONE) {
			both(r, "-A %s-i%s -j ACCEPT\n", t, idx);
		} else {
			block_sets(r, c, e->tenant, iso == ISO_SEGMENT ? e->segment : NULL, s);
			for (int k = 0; k < 2; k++)
				if (s[k])
					fprintf(k ? r->f6 : r->f,
						"-A %s-i%s -m set --match-set " IPT_SET " src -j ACCEPT\n",
						t, idx, t, s[k]);
		}
	}
	both(r, "-A %s-i%s -m comment --comment \"ingress not allowed\" -j DROP\n", t, idx);
}

static int cmp_ifname(const void *a, const void *b)
{
	return strcmp((*(const struct w_ep *const *)a)->ifname, (*(const struct w_ep *const *)b)->ifname);
}

#define IPT_FANOUT 16
#define IPT_CHAIN_MAX 28 /* iptables chain names: 28 characters */

/*
 * Dispatch by interface name without a verdict map: a tree of chains keyed
 * by the name's next character (`-i lx3a+`), so a packet meets at most
 * IPT_FANOUT rules per level (the names are "lx" and hex: a few levels for
 * thousands of endpoints). v: sorted by name, all sharing their first pos
 * characters; root: the tree's first chain, whose name the others extend
 * with the characters they stand for. Whatever matches no endpoint is
 * dropped (fail closed).
 */
static void ipt_dispatch(struct render *r, const char *root, const char *chain, const char *opt,
			 char kind, struct w_ep **v, size_t n, size_t pos)
{
	size_t i = 0;

	/* a character all of them share decides nothing: skip it */
	while (n > IPT_FANOUT && v[0]->ifname[pos] && v[0]->ifname[pos] == v[n - 1]->ifname[pos])
		pos++;
	while (i < n) {
		size_t j = i + 1;
		char sub[64];

		if (n > IPT_FANOUT && v[i]->ifname[pos])
			while (j < n && v[j]->ifname[pos] == v[i]->ifname[pos])
				j++;
		if (snprintf(sub, sizeof(sub), "%s-%.*s", root, (int)pos - 1, v[i]->ifname + 2) >
		    IPT_CHAIN_MAX)
			j = i + 1; /* no deeper chain fits: one rule each */
		if (j - i == 1) {
			both(r, "-A %s %s %s -g %s-%c%s\n", chain, opt, v[i]->ifname, r->t, kind,
			     v[i]->ifname + 2);
			i++;
			continue;
		}
		both(r, ":%s - [0:0]\n-A %s %s %.*s+ -g %s\n", sub, chain, opt, (int)pos + 1,
		     v[i]->ifname, sub);
		ipt_dispatch(r, root, sub, opt, kind, v + i, j - i, pos + 1);
		i = j;
	}
	both(r, "-A %s -m comment --comment \"unknown workload interface\" -j DROP\n", chain);
}

void ipt_top(struct render *r)
{
	const struct world *w = r->w;
	struct w_ep **v = calloc(w->nlocal + 1, sizeof(*v));
	const char *t = r->t;
	char name[64];
	size_t n = 0;

	for (size_t i = 0; v && i < w->neps; i++)
		if (w->eps[i].local)
			v[n++] = &w->eps[i];
	if (v)
		qsort(v, n, sizeof(*v), cmp_ifname);
	for (int k = 0; k < 3; k++) {
		static const char *const what[3] = { "from", "to", "tohost" };

		snprintf(name, sizeof(name), "%s-%s", t, what[k]);
		both(r, ":%s - [0:0]\n", name);
		ipt_dispatch(r, name, name, k == 1 ? "-o" : "-i", "eih"[k], v, n, 2);
	}
	free(v);
	both(r, "# allowed egress: on to the ingress side of a local workload, or out\n"
		":%s-eok - [0:0]\n-A %s-eok -o lx+ -g %s-to\n-A %s-eok -j ACCEPT\n"
		"# jumped to from FORWARD and INPUT (the agent inserts the jumps)\n"
		":%s-forward - [0:0]\n-A %s-forward -i lx+ -g %s-from\n"
		"-A %s-forward -o lx+ -g %s-to\n"
		":%s-input - [0:0]\n-A %s-input -i lx+ -g %s-tohost\n",
	     t, t, t, t, t, t, t, t, t, t, t, t);
}

static int cmp_line(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t lx = strcspn(x, "\n"), ly = strcspn(y, "\n");
	int c = memcmp(x, y, lx < ly ? lx : ly);

	return c ? c : (lx > ly) - (lx < ly);
}

/*
 * iptables-restore wants a chain declared before a rule jumps to it: the
 * declarations (":NAME - [0:0]", which also flush an existing chain) first,
 * sorted by name, then the rules. Sorted, because iptables-nft keeps its
 * chains in a list sorted by name: in order, 48,000 declarations load in a
 * third of the time (docs/benchmarks.md). malloc'd.
 */
char *hoist_chains(const char *body)
{
	size_t n = strlen(body), k = 0, nd = 0;
	char *out = malloc(n + 1);
	const char **decl;

	for (const char *p = body; *p; p++)
		nd += *p == ':' && (p == body || p[-1] == '\n');
	decl = calloc(nd + 1, sizeof(*decl));
	if (!out || !decl) {
		free(out);
		free(decl);
		return NULL;
	}
	nd = 0;
	for (const char *p = body; *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p + 1) : strlen(p);

		if (*p == ':')
			decl[nd++] = p;
		p += len;
	}
	qsort(decl, nd, sizeof(*decl), cmp_line);
	for (size_t i = 0; i < nd; i++) {
		const char *e = strchr(decl[i], '\n');
		size_t len = e ? (size_t)(e - decl[i] + 1) : strlen(decl[i]);

		memcpy(out + k, decl[i], len);
		k += len;
	}
	for (const char *p = body; *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p + 1) : strlen(p);

		if (*p != ':') {
			memcpy(out + k, p, len);
			k += len;
		}
		p += len;
	}
	out[k] = '\0';
	free(decl);
	return out;
}
