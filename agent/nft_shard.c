/* SPDX-License-Identifier: MIT */
/*
 * DOC: one ruleset as several kernel tables (nft_set_tables; docs/policy.md,
 * "Several tables")
 *
 * After any rule is added, the kernel checks the whole table the rule is in:
 * it walks every chain reachable from the table's base chains (jump loops,
 * hooks), which with 27,000 rules takes about 7 ms here. With the endpoint
 * classes spread over N tables (N a power of two), a chain rewritten for a
 * changed policy costs the walk of its own table only. The compiler still
 * writes one table; the split is done here, on the ruleset read back:
 *
 * - an endpoint class (its interfaces' group) belongs to table
 *   `group & (N - 1)`: table 0 is the configured name, table k `NAME_k`;
 * - each table gets the base chains, with a rule before each dispatch by
 *   group that lets the other tables' classes through:
 *   `iifgroup & N-1 != k accept`; so a class unknown to its own table is
 *   still dropped there ("unknown workload interface");
 * - the dispatch maps (devgroup : verdict) keep their table's classes; the
 *   chains those name, the chains these jump to and the sets any of them
 *   name are copied into each table that needs them;
 * - whatever no rule names (ep_class) goes to table 0.
 *
 * A packet passes the base chains of every table (a hash lookup in its own
 * table, a compare in the others), which is why a small ruleset stays one
 * table: by default the count follows the number of rules (rs_tables_for),
 * or --nft-tables sets it.
 */
#include "nft_int.h"

static unsigned setting; /* --nft-tables; 0: by the ruleset's size */

void nft_set_tables(unsigned n)
{
	setting = n;
}

unsigned nft_tables(void)
{
	return setting;
}

unsigned nft_rs_tables(const struct nft_rs *rs)
{
	return rs && rs->nphys ? rs->nphys : 1;
}

/*
 * How many tables for rs, old the ruleset in force (or NULL): the setting,
 * or by the rules: a table per 4,096 (a power of two, at most 16), and
 * back to fewer only below a quarter of that, so that a ruleset near a
 * limit does not go back and forth (each change of the count replaces the
 * ruleset whole).
 */
unsigned rs_tables_for(const struct nft_rs *rs, const struct nft_rs *old)
{
	unsigned k = nft_rs_tables(old);
	size_t rules = 0;

	if (setting)
		return setting;
	for (size_t i = 0; i < rs->n; i++)
		if (is_chain(&rs->o[i]))
			rules += rs->o[i].n;
	while (k < NFT_TABLES_MAX && rules > (size_t)RULES_PER_TABLE * k)
		k *= 2;
	while (k > 1 && rules < (size_t)RULES_PER_TABLE / 4 * k)
		k /= 2;
	return k;
}

bool rs_dispatch_map(const struct obj *o)
{
	return o->kind == O_MAP && o->type && !strcmp(o->type, "devgroup : verdict");
}

/* The table (of n) of a dispatch map's item "GROUP : goto CHAIN"; the
 * chain in *c. */
static bool dispatch_item(const char *item, unsigned n, unsigned *shard, const char **c)
{
	uint32_t g;
	const char *end;

	if (!nft_u32_parse(item, &g, &end))
		return false;
	*shard = g & (n - 1);
	*c = strrchr(item, ' ');
	*c = *c ? *c + 1 : item;
	return true;
}

struct split {
	const struct nft_rs *rs;
	uint32_t *mask; /* per object: the tables it goes to */
	size_t *stack;
	size_t nstack;
};

static void need(struct split *s, bool chain, const char *name, size_t len, unsigned k)
{
	char buf[256];
	const struct obj *o;
	size_t i;

	if (len >= sizeof(buf))
		return;
	memcpy(buf, name, len);
	buf[len] = '\0';
	if (!(o = rs_find(s->rs, chain, buf)))
		return; /* the kernel will say */
	i = (size_t)(o - s->rs->o);
	if (s->mask[i] & (1u << k))
		return;
	s->mask[i] |= 1u << k;
	if (chain)
		s->stack[s->nstack++] = i;
}

/* Each set (@name) and chain (jump, goto) that a rule names, not in its
 * comment: fn(ctx, chain, name, len); stops at the first fn giving false. */
static bool each_name(const char *rule, bool (*fn)(void *, bool, const char *, size_t),
		      void *ctx)
{
	const char *p = rule, *end = strstr(rule, " comment \"");

	if (!end)
		end = rule + strlen(rule);
	while (p < end) {
		size_t n;

		while (p < end && *p == ' ')
			p++;
		n = strcspn(p, " ");
		if (p + n > end)
			n = (size_t)(end - p);
		if (*p == '@' && n > 1 && !fn(ctx, false, p + 1, n - 1))
			return false;
		if (n == 4 && (!strncmp(p, "jump", 4) || !strncmp(p, "goto", 4))) {
			p += n;
			while (p < end && *p == ' ')
				p++;
			n = strcspn(p, " ");
			if (!fn(ctx, true, p, n))
				return false;
		}
		p += n;
	}
	return true;
}

struct need_ctx {
	struct split *s;
	unsigned k;
};

static bool need_fn(void *ctx, bool chain, const char *name, size_t len)
{
	struct need_ctx *c = ctx;

	need(c->s, chain, name, len, c->k);
	return true;
}

static void names_of(struct split *s, const char *rule, unsigned k)
{
	struct need_ctx c = { s, k };

	each_name(rule, need_fn, &c);
}

/* Object o for table k of n: a copy, filtered (dispatch maps) or with the
 * rule that lets other tables' classes through (base chains). */
static int copy_obj(struct obj *d, const struct obj *o, unsigned k, unsigned n)
{
	*d = (struct obj){ .kind = o->kind, .interval = o->interval };
	if (!(d->name = strdup(o->name)) || (o->type && !(d->type = strdup(o->type))) ||
	    (o->comment && !(d->comment = strdup(o->comment))))
		return -1;
	if (rs_dispatch_map(o)) {
		if (!(d->item = calloc(o->n + 1, sizeof(*d->item))))
			return -1;
		d->cap = o->n + 1;
		for (size_t i = 0; i < o->n; i++) {
			unsigned sh;
			const char *c;

			if (dispatch_item(o->item[i], n, &sh, &c) && sh != k)
				continue;
			if (!(d->item[d->n] = strdup(o->item[i])))
				return -1;
			d->n++;
		}
		return 0;
	}
	if (!is_chain(o) || !o->type) {
		/* as it is: the table's copy borrows the items (rs_tables_sync) */
		d->item = o->item;
		d->n = o->n;
		d->cap = o->cap;
		d->borrowed = true;
		return 0;
	}
	if (!(d->item = calloc(2 * o->n + 1, sizeof(*d->item))))
		return -1;
	d->cap = 2 * o->n + 1;
	for (size_t i = 0; i < o->n; i++) {
		const char *r = o->item[i];

		if ((!strncmp(r, "iifgroup vmap @", 15) || !strncmp(r, "oifgroup vmap @", 15)) &&
		    asprintf(&d->item[d->n++], "%.8s & %u != %u accept", r, n - 1, k) < 0) {
			d->item[--d->n] = NULL;
			return -1;
		}
		if (!(d->item[d->n] = strdup(r)))
			return -1;
		d->n++;
	}
	return 0;
}

static void tables_free(struct nft_rs *rs)
{
	for (unsigned k = 0; k < rs->nphys; k++)
		nft_rs_free(rs->phys[k]);
	free(rs->phys);
	rs->phys = NULL;
	rs->nphys = 0;
}

void rs_tables_free(struct nft_rs *rs)
{
	tables_free(rs);
}

char *nft_table_name(const char *table, unsigned k)
{
	char *t = NULL;

	if (!k)
		return strdup(table);
	return asprintf(&t, "%s_%u", table, k) < 0 ? NULL : t;
}

int rs_split(struct nft_rs *rs, unsigned ntables)
{
	struct split s = { .rs = rs };
	int r = -1;

	if (nft_rs_tables(rs) == ntables)
		return 0;
	tables_free(rs);
	if (ntables == 1)
		return 0;
	s.mask = calloc(rs->n + 1, sizeof(*s.mask));
	s.stack = calloc(rs->n * ntables + 1, sizeof(*s.stack));
	rs->phys = calloc(ntables, sizeof(*rs->phys));
	if (!s.mask || !s.stack || !rs->phys)
		goto out;
	for (size_t i = 0; i < rs->n; i++) {
		const struct obj *o = &rs->o[i];

		if (is_chain(o) && o->type) {
			s.mask[i] = (1u << ntables) - 1;
			for (unsigned k = 0; k < ntables; k++)
				for (size_t j = 0; j < o->n; j++)
					names_of(&s, o->item[j], k);
		} else if (rs_dispatch_map(o)) {
			s.mask[i] = (1u << ntables) - 1;
			for (size_t j = 0; j < o->n; j++) {
				unsigned k;
				const char *c;

				if (dispatch_item(o->item[j], ntables, &k, &c))
					need(&s, true, c, strlen(c), k);
			}
		}
	}
	/* the chains named so far, and what their rules name, per table */
	while (s.nstack) {
		size_t i = s.stack[--s.nstack];
		const struct obj *o = &rs->o[i];

		for (unsigned k = 0; k < ntables; k++)
			if (s.mask[i] & (1u << k))
				for (size_t j = 0; j < o->n; j++)
					names_of(&s, o->item[j], k);
	}
	for (unsigned k = 0; k < ntables; k++) {
		struct nft_rs *p = calloc(1, sizeof(*p));

		if (!(rs->phys[k] = p) || !(p->table = nft_table_name(rs->table, k)) ||
		    !(p->o = calloc(rs->n + 1, sizeof(*p->o))))
			goto out;
		p->cap = rs->n + 1;
		for (size_t i = 0; i < rs->n; i++) {
			if (!(s.mask[i] ? s.mask[i] & (1u << k) : k == 0))
				continue;
			if (copy_obj(&p->o[p->n++], &rs->o[i], k, ntables) < 0)
				goto out;
		}
		if (rs_index(p) < 0)
			goto out;
	}
	rs->nphys = ntables;
	r = 0;
out:
	if (r < 0) {
		for (unsigned k = 0; rs->phys && k < ntables; k++)
			nft_rs_free(rs->phys[k]);
		free(rs->phys);
		rs->phys = NULL;
	}
	free(s.mask);
	free(s.stack);
	return r;
}

static bool present_fn(void *ctx, bool chain, const char *name, size_t len)
{
	char buf[256];

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, name, len);
	buf[len] = '\0';
	return rs_find(ctx, chain, buf) != NULL;
}

bool names_present(const struct nft_rs *p, char *const *rule, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!each_name(rule[i], present_fn, (void *)p))
			return false;
	return true;
}

void rs_tables_sync(struct nft_rs *rs, const struct obj *o)
{
	for (unsigned k = 0; k < rs->nphys; k++) {
		struct obj *x = (struct obj *)rs_find(rs->phys[k], is_chain(o), o->name);

		if (!x)
			continue;
		if (!x->borrowed) {
			tables_free(rs); /* not a patch's (patch_build): split again */
			return;
		}
		x->item = o->item;
		x->n = o->n;
		x->cap = o->cap;
	}
}

bool nft_rs_same_tables(struct nft_rs *fresh, const struct nft_rs *kept, char *why, size_t len)
{
	char w[512];

	if (!kept->nphys)
		return true; /* split again when next needed */
	if (rs_split(fresh, kept->nphys) < 0 || fresh->nphys != kept->nphys) {
		snprintf(why, len, "cannot split the ruleset into %u tables", kept->nphys);
		return false;
	}
	for (unsigned k = 0; k < kept->nphys; k++)
		if (!nft_rs_same(fresh->phys[k], kept->phys[k], w, sizeof(w))) {
			snprintf(why, len, "table %s: %s", kept->phys[k]->table, w);
			return false;
		}
	return true;
}

int nft_rs_split_new(struct nft_rs *rs)
{
	return rs_split(rs, rs_tables_for(rs, NULL));
}
