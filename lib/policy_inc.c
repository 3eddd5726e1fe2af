/* SPDX-License-Identifier: MIT */
/*
 * DOC: endpoint changes without rendering again (nftables)
 *
 * Most changes an agent sees are endpoints coming and going: a pod on
 * another host (it may be a peer of local policies), or one on this host.
 * Rendering the whole ruleset again for that costs about 100 ms with 3,500
 * local endpoints and 12,000 policies; what changes is a few elements.
 *
 * A rendering with policy_render_nft_inc keeps the world it rendered, every
 * selector set it evaluated (with the addresses it matched, also when it
 * matched none and so was left out), the endpoint chains by what they depend
 * on, the classes and the local endpoints. An endpoint's change is then:
 *
 *   - for every selector set: does the old document match, does the new
 *     one? Their addresses leave and join the set;
 *   - a local endpoint: which policies select it (as policy_world does),
 *     hence its two chains' keys, hence its class: its interface joins the
 *     ep_class map and its addresses the spoof sets.
 *
 * Anything that would change more than elements gives up (1): a set that
 * becomes empty or stops being empty (rules appear or go), a class that
 * is new or loses its last member (chains and verdict maps change), an
 * endpoint chain not rendered. The caller then renders whole, as before.
 * Nothing here depends on the endpoints the world was built with except
 * through what was kept, so successive changes stay exact.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hmap.h"
#include "policy.h"
#include "policy_int.h"

static bool eq_group(const void *val, const void *key)
{
	return !strcmp(((const struct inc_group *)val)->key, key);
}

struct class_key {
	const char *eg, *in;
};

static uint64_t class_hash_of(const char *eg, const char *in)
{
	return hash_mix(hash_str(eg), hash_str(in));
}

static bool eq_class(const void *val, const void *key)
{
	const struct inc_class *c = val;
	const struct class_key *k = key;

	return !strcmp(c->eg, k->eg) && !strcmp(c->in, k->in);
}

/* ---- recorded while rendering ---- */

static int grow(void **v, size_t *cap, size_t want, size_t elem)
{
	size_t c = *cap ? *cap : 16;
	void *nv;

	if (want <= *cap)
		return 0;
	while (c < want)
		c *= 2;
	if (!(nv = realloc(*v, c * elem)))
		return -1;
	*v = nv;
	*cap = c;
	return 0;
}

static int cmp_prefix(const void *a, const void *b)
{
	return prefix_cmp(a, b);
}

int inc_record_set(struct policy_inc *inc, const char *key, const struct epsel *sel,
		   uint8_t family, const char *name, const struct prefix *v, size_t n)
{
	struct inc_set *s;
	struct prefix *sorted;
	size_t k = 0;

	if (grow((void **)&inc->sets, &inc->capsets, inc->nsets + 1, sizeof(*inc->sets)) < 0)
		return -1;
	s = &inc->sets[inc->nsets];
	memset(s, 0, sizeof(*s));
	if (!(s->key = strdup(key)) || !(sorted = malloc((n + 1) * sizeof(*sorted)))) {
		free(s->key);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].family == family)
			sorted[k++] = v[i];
	qsort(sorted, k, sizeof(*sorted), cmp_prefix);
	s->v = sorted;
	s->cap = n + 1;
	if (!(s->cnt = calloc(n + 1, sizeof(*s->cnt)))) {
		free(s->key);
		free(sorted);
		return -1;
	}
	/* deduplicated, as declare_set writes them, with their counts */
	for (size_t i = 0; i < k; i++) {
		if (s->n && !prefix_cmp(&s->v[s->n - 1], &sorted[i])) {
			s->cnt[s->n - 1]++;
			continue;
		}
		s->v[s->n] = sorted[i];
		s->cnt[s->n++] = 1;
	}
	s->sel = sel;
	s->family = family;
	snprintf(s->name, sizeof(s->name), "%s", name);
	inc->nsets++;
	return 0;
}

int inc_record_group(struct policy_inc *inc, bool ingress, char *key, const char *name,
		     const struct w_ep *first)
{
	struct inc_group *g = calloc(1, sizeof(*g));
	size_t n = ingress ? first->npin : first->npout;

	if (!g || !(g->pols = malloc((n + 1) * sizeof(*g->pols))) ||
	    hmap_insert(&inc->groups[ingress], hash_key(key), g) < 0) {
		if (g)
			free(g->pols);
		free(g);
		free(key);
		return -1;
	}
	g->key = key;
	snprintf(g->name, sizeof(g->name), "%s", name);
	if (n)
		memcpy(g->pols, ingress ? first->pin : first->pout, n * sizeof(*g->pols));
	g->npols = n;
	g->tenant = first->tenant;
	g->segment = first->segment;
	return 0;
}

static bool eq_set_key(const void *val, const void *key)
{
	return !strcmp(((const struct inc_set *)val)->key, key);
}

int inc_index_sets(struct policy_inc *inc)
{
	for (size_t i = 0; i < inc->nsets; i++)
		if (hmap_insert(&inc->set_by, hash_key(inc->sets[i].key), &inc->sets[i]) < 0)
			return -1;
	return 0;
}

const char *inc_set_name(struct policy_inc *inc, const char *key)
{
	const struct inc_set *s = hmap_find(&inc->set_by, hash_key(key), eq_set_key, key);

	return s ? s->name : NULL;
}

static bool streq0(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

const struct inc_bset *inc_bset_find(const struct policy_inc *inc, const char *tenant,
				     const char *segment)
{
	for (size_t i = 0; i < inc->nbsets; i++)
		if (streq0(inc->bsets[i].tenant, tenant) && streq0(inc->bsets[i].segment, segment))
			return &inc->bsets[i];
	return NULL;
}

int inc_record_class(struct policy_inc *inc, const char *eg, const char *in, uint32_t id,
		     size_t members)
{
	struct inc_class *c;

	/* the table is indexed once it is whole (inc_index_classes) */
	if (grow((void **)&inc->classes, &inc->capclasses, inc->nclasses + 1, sizeof(*c)) < 0)
		return -1;
	c = &inc->classes[inc->nclasses++];
	snprintf(c->eg, sizeof(c->eg), "%s", eg);
	snprintf(c->in, sizeof(c->in), "%s", in);
	c->id = id;
	c->members = members;
	return 0;
}

int inc_index_classes(struct policy_inc *inc)
{
	for (size_t i = 0; i < inc->nclasses; i++) {
		struct inc_class *c = &inc->classes[i];

		if (hmap_insert(&inc->class_by, class_hash_of(c->eg, c->in), c) < 0)
			return -1;
	}
	return 0;
}

int inc_record_local(struct policy_inc *inc, const struct w_ep *e, uint32_t id)
{
	struct inc_local *l;

	if (grow((void **)&inc->locals, &inc->caplocals, inc->nlocals + 1, sizeof(*l)) < 0)
		return -1;
	l = &inc->locals[inc->nlocals];
	if (!(l->handle = strdup(e->handle)))
		return -1;
	memcpy(l->ifname, e->ifname, sizeof(l->ifname));
	memcpy(l->a, e->a, sizeof(l->a));
	l->na = e->na;
	l->id = id;
	inc->nlocals++;
	return 0;
}

void policy_inc_free(struct policy_inc *inc)
{
	struct inc_group *g;

	if (!inc)
		return;
	for (size_t i = 0; i < inc->nsets; i++) {
		free(inc->sets[i].key);
		free(inc->sets[i].v);
		free(inc->sets[i].cnt);
	}
	free(inc->sets);
	for (int d = 0; d < 2; d++) {
		for (size_t it = 0; (g = hmap_next(&inc->groups[d], &it));) {
			free(g->key);
			free(g->pols);
			free(g);
		}
		hmap_release(&inc->groups[d]);
	}
	free(inc->classes);
	hmap_release(&inc->class_by);
	for (size_t i = 0; i < inc->nlocals; i++)
		free(inc->locals[i].handle);
	free(inc->locals);
	free(inc->pol_name);
	free(inc->pol_uses);
	for (size_t k = 0; inc->pol_owned && k < inc->w->npols; k++)
		if (inc->pol_owned[k])
			policy_release(&inc->w->pols[k]);
	free(inc->pol_owned);
	hmap_release(&inc->set_by);
	for (size_t i = 0; i < inc->nbsets; i++) {
		free(inc->bsets[i].tenant);
		free(inc->bsets[i].segment);
	}
	free(inc->bsets);
	for (size_t i = 0; i < inc->nchains; i++)
		free(inc->chains[i].text);
	free(inc->chains);
	policy_world_free(inc->w);
	free(inc);
}

/* ---- an endpoint's change ---- */

/* The position of p in s (found), or where it would go. */
static size_t set_pos(const struct inc_set *s, const struct prefix *p, bool *found)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = prefix_cmp(&s->v[mid], p);

		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* e's addresses of the set's family join (add) or leave it; 1 when one
 * that should be there is not. */
static int set_update(struct inc_set *s, const struct w_ep *e, bool add)
{
	for (size_t j = 0; j < e->na; j++) {
		bool found;
		size_t at;

		if (e->a[j].family != s->family)
			continue;
		at = set_pos(s, &e->a[j], &found);
		if (!add) {
			if (!found)
				return 1;
			if (--s->cnt[at] == 0) {
				memmove(&s->v[at], &s->v[at + 1], (s->n - at - 1) * sizeof(*s->v));
				memmove(&s->cnt[at], &s->cnt[at + 1], (s->n - at - 1) * sizeof(*s->cnt));
				s->n--;
			}
		} else if (found) {
			s->cnt[at]++;
		} else {
			if (s->n + 1 > s->cap) {
				size_t cap = 2 * s->cap + 2;
				struct prefix *v = realloc(s->v, cap * sizeof(*v));
				unsigned *cnt;

				if (!v)
					return -1;
				s->v = v;
				if (!(cnt = realloc(s->cnt, cap * sizeof(*cnt))))
					return -1;
				s->cnt = cnt;
				s->cap = cap;
			}
			memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(*s->v));
			memmove(&s->cnt[at + 1], &s->cnt[at], (s->n - at) * sizeof(*s->cnt));
			s->v[at] = e->a[j];
			s->cnt[at] = 1;
			s->n++;
		}
		s->dirty = true;
	}
	return 0;
}

/* The selector sets: old's addresses leave those it matched, new's join
 * those it matches. */
static int peers_update(struct policy_inc *inc, const struct w_ep *eo, const struct w_ep *en)
{
	for (size_t i = 0; i < inc->nsets; i++) {
		struct inc_set *s = &inc->sets[i];
		bool mo = eo && sel_match(inc->w, s->sel, eo);
		bool mn = en && sel_match(inc->w, s->sel, en);
		int r;

		if (!mo && !mn)
			continue;
		if ((mn && (r = set_update(s, en, true))) || (mo && (r = set_update(s, eo, false))))
			return r;
		if (!*s->name != !s->n)
			return 1; /* empty <-> not: its rules would appear or go */
	}
	return 0;
}

static int cmp_local_handle(const void *key, const void *l)
{
	return strcmp(key, ((const struct inc_local *)l)->handle);
}

static struct inc_local *local_find(struct policy_inc *inc, const char *handle, size_t *at)
{
	size_t lo = 0, hi = inc->nlocals;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cmp_local_handle(handle, &inc->locals[mid]);

		if (!c) {
			*at = mid;
			return &inc->locals[mid];
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*at = lo;
	return NULL;
}

static struct inc_class *class_find(struct policy_inc *inc, const char *eg, const char *in)
{
	struct class_key k = { eg, in };

	return hmap_find(&inc->class_by, class_hash_of(eg, in), eq_class, &k);
}

static struct inc_class *class_of_id(struct policy_inc *inc, uint32_t id)
{
	for (size_t i = 0; i < inc->nclasses; i++)
		if (inc->classes[i].id == id)
			return &inc->classes[i];
	return NULL;
}

/* The class local endpoint e belongs in; NULL with *r 1 when it has none
 * yet (or a policy that selects it has no chain), -1 out of memory. */
static struct inc_class *class_for(struct policy_inc *inc, struct w_ep *e, int *r)
{
	const struct inc_group *g[2] = { NULL, NULL };
	struct inc_class *c = NULL;

	*r = 1;
	if (ep_policies(inc->w, e) < 0) {
		*r = -1;
		goto out;
	}
	for (size_t i = 0; i < e->npin; i++)
		if (!inc->pol_name[e->pin[i]][0])
			goto out;
	for (size_t i = 0; i < e->npout; i++)
		if (!inc->pol_name[e->pout[i]][0])
			goto out;
	for (int d = 0; d < 2; d++) {
		char *key = chain_key_of(inc->w, inc->pol_name, e, d == 1);

		if (!key) {
			*r = -1;
			goto out;
		}
		g[d] = hmap_find(&inc->groups[d], hash_key(key), eq_group, key);
		free(key);
		if (!g[d])
			goto out;
	}
	if ((c = class_find(inc, g[0]->name, g[1]->name)))
		*r = 0;
out:
	free(e->pin);
	free(e->pout);
	e->pin = e->pout = NULL;
	e->npin = e->npout = 0;
	return c;
}

static int locals_update(struct policy_inc *inc, struct w_ep *eo, struct w_ep *en)
{
	struct inc_class *cn = NULL, *co = NULL;
	struct inc_local *l;
	size_t at;
	int r;

	if (en && !(cn = class_for(inc, en, &r)))
		return r;
	if (eo) {
		if (!(l = local_find(inc, eo->handle, &at)) || !(co = class_of_id(inc, l->id)))
			return 1;
		if (co->members == 1 && co != cn)
			return 1; /* its class goes: chains and verdict maps change */
		co->members--;
		free(l->handle);
		memmove(l, l + 1, (inc->nlocals - at - 1) * sizeof(*l));
		inc->nlocals--;
		inc->locals_dirty = true;
	}
	if (en) {
		if (local_find(inc, en->handle, &at))
			return 1;
		if (grow((void **)&inc->locals, &inc->caplocals, inc->nlocals + 1,
			 sizeof(*inc->locals)) < 0)
			return -1;
		l = &inc->locals[at];
		memmove(l + 1, l, (inc->nlocals - at) * sizeof(*l));
		inc->nlocals++;
		memset(l, 0, sizeof(*l));
		if (!(l->handle = strdup(en->handle))) {
			memmove(l, l + 1, (inc->nlocals - at - 1) * sizeof(*l));
			inc->nlocals--;
			return -1;
		}
		memcpy(l->ifname, en->ifname, sizeof(l->ifname));
		memcpy(l->a, en->a, sizeof(l->a));
		l->na = en->na;
		l->id = cn->id;
		cn->members++;
		inc->locals_dirty = true;
	}
	return 0;
}

int policy_inc_endpoint(struct policy_inc *inc, json_t *old, json_t *neu)
{
	struct w_ep eo, en;
	bool ho = old && ep_parse(old, inc->w->host, inc->w->ifname, &eo);
	bool hn = neu && ep_parse(neu, inc->w->host, inc->w->ifname, &en);
	int r;

	if ((r = peers_update(inc, ho ? &eo : NULL, hn ? &en : NULL)))
		return r;
	if ((ho && eo.local) || (hn && en.local))
		return locals_update(inc, ho && eo.local ? &eo : NULL, hn && en.local ? &en : NULL);
	return 0;
}

/* ---- a policy's change ---- */

/* Do a and b select the same endpoints in the same directions (so the
 * same endpoint chains hold their rules)? -1: out of memory. */
static int same_subject(const struct policy *a, const struct policy *b)
{
	char *ka = sel_key(&a->applies, 0), *kb = sel_key(&b->applies, 0);
	int r = ka && kb ? a->kind == b->kind && a->ingress == b->ingress &&
				   a->egress == b->egress && !strcmp(ka, kb)
			 : -1;

	free(ka);
	free(kb);
	return r;
}

/* Calls f on every selector peer of p's rules, until it returns true. */
static const struct epsel *each_sel(const struct policy *p,
				    bool (*f)(const struct epsel *, const void *), const void *arg)
{
	for (int d = 0; d < 2; d++) {
		const struct rule *rules = d ? p->out : p->in;

		for (size_t i = 0, n = d ? p->nout : p->nin; i < n; i++)
			for (size_t j = 0; j < rules[i].npeers; j++)
				if (rules[i].peers[j].type == PEER_EPS && f(&rules[i].peers[j].sel, arg))
					return &rules[i].peers[j].sel;
	}
	return NULL;
}

static bool is_sel(const struct epsel *s, const void *arg)
{
	return s == arg;
}

static bool policy_owns_sel(const struct policy *p, const struct epsel *sel)
{
	return each_sel(p, is_sel, sel) != NULL;
}

static bool has_key(const struct epsel *s, const void *key)
{
	/* the family is the key's first part */
	char *k = sel_key(s, *(const char *)key == '6' ? 6 : 4);
	bool same = k && !strcmp(k, key);

	free(k);
	return same;
}

static const struct epsel *policy_sel_by_key(const struct policy *p, const char *key)
{
	return each_sel(p, has_key, key);
}

/* The endpoint chain that alone uses policy k's rules in one direction. */
static const struct inc_group *group_with(struct policy_inc *inc, bool ingress, size_t k)
{
	const struct inc_group *g;

	for (size_t it = 0; (g = hmap_next(&inc->groups[ingress], &it));)
		for (size_t i = 0; i < g->npols; i++)
			if (g->pols[i] == k)
				return g;
	return NULL;
}

/* Does every set that text a names (@name) appear in text b too? */
static bool refs_kept(const char *a, const char *b)
{
	for (const char *p = strchr(a, '@'); p; p = strchr(p + 1, '@')) {
		size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz0123456789_");
		bool found = false;

		for (const char *q = strchr(b, '@'); q && !found; q = strchr(q + 1, '@'))
			found = !strncmp(p, q, n + 1) && !strchr("abcdefghijklmnopqrstuvwxyz0123456789_",
								   q[n + 1] ? q[n + 1] : '@');
		if (!found)
			return false;
	}
	return true;
}

static int queue_chain(struct policy_inc *inc, const char *name, char *text)
{
	struct inc_chain *c;

	for (size_t i = 0; i < inc->nchains; i++)
		if (!strcmp(inc->chains[i].name, name)) {
			free(inc->chains[i].text);
			inc->chains[i].text = text;
			return 0;
		}
	if (grow((void **)&inc->chains, &inc->capchains, inc->nchains + 1, sizeof(*c)) < 0) {
		free(text);
		return -1;
	}
	c = &inc->chains[inc->nchains++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->text = text;
	return 0;
}

/* The chains of a rendered text ("\tchain NAME {" ... "\t}" each: one, or a
 * chain and its TCP chain): where each starts, its length and name. */
struct blocks {
	const char *at[2];
	size_t len[2];
	char name[2][32];
	size_t n;
};

static int chain_blocks(const char *text, struct blocks *b)
{
	const char *p = text;

	b->n = 0;
	while (*p) {
		const char *end = strstr(p, "\n\t}\n"), *brace = strchr(p, ' ');
		size_t l;

		if (b->n == 2 || strncmp(p, "\tchain ", 7) || !end || !brace ||
		    !(brace = strchr(brace + 1, ' ')) || (l = (size_t)(brace - p - 7)) >= 32)
			return -1;
		memcpy(b->name[b->n], p + 7, l);
		b->name[b->n][l] = '\0';
		b->at[b->n] = p;
		b->len[b->n] = (size_t)(end + 4 - p);
		b->n++;
		p = end + 4;
	}
	return 0;
}

/* Are was and now the same chains (names), rendered before and after? */
static bool same_chains(const char *was, const char *now, struct blocks *a, struct blocks *b)
{
	if (chain_blocks(was, a) < 0 || chain_blocks(now, b) < 0 || a->n != b->n)
		return false;
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(a->name[i], b->name[i]))
			return false;
	return true;
}

/* The chains of now that differ from was's (same_chains), queued. */
static int queue_chains(struct policy_inc *inc, const struct blocks *a, const struct blocks *b)
{
	for (size_t i = 0; i < b->n; i++) {
		char *t;

		if (a->len[i] == b->len[i] && !memcmp(a->at[i], b->at[i], b->len[i]))
			continue;
		if (!(t = strndup(b->at[i], b->len[i])) || queue_chain(inc, b->name[i], t) < 0)
			return -1;
	}
	return 0;
}

int policy_inc_policy(struct policy_inc *inc, json_t *old, json_t *neu)
{
	struct world *w = inc->w;
	const struct inc_group *g[2] = { NULL, NULL };
	char *was[2] = { NULL, NULL }, *now[2] = { NULL, NULL };
	const struct epsel **to = NULL;
	struct blocks bw[2], bn[2];
	struct policy pn, po;
	struct error err = {0};
	size_t k;
	int r;

	if (!old || !neu)
		return 1; /* a policy added or deleted: chains come or go */
	if (policy_parse(neu, &pn, &err) < 0)
		return 1; /* the whole rendering says what is wrong with it */
	for (k = 0; k < w->npols; k++)
		if (w->pols[k].kind == pn.kind && streq0(w->pols[k].ns, pn.ns) &&
		    !strcmp(w->pols[k].name, pn.name))
			break;
	/* a Namespace document (labels that selectors read), a policy the
	 * world does not have, or one that selects other endpoints now: whole */
	r = pn.kind == PK_NAMESPACE || k == w->npols ? 0 : same_subject(&w->pols[k], &pn);
	if (r != 1) {
		policy_release(&pn);
		return r < 0 ? -1 : 1;
	}
	po = w->pols[k];
	/* the chains that hold its rules, before and after */
	for (int d = 0; d < 2; d++) {
		unsigned u = inc->pol_uses ? inc->pol_uses[2 * k + !d] : 0;

		if (!u)
			continue;
		if (u == 1 && !(g[d] = group_with(inc, d == 1, k))) {
			r = 1;
			goto out;
		}
		if ((r = inc_render_chain(inc, k, d == 1, g[d], &was[d])) != 0)
			goto out;
		w->pols[k] = pn;
		r = inc_render_chain(inc, k, d == 1, g[d], &now[d]);
		w->pols[k] = po;
		if (r != 0)
			goto out;
		/* a set it named no longer named may be named nowhere else now:
		 * it would go, which elements cannot say */
		if (!refs_kept(was[d], now[d])) {
			r = 1;
			goto out;
		}
	}
	/* the kept sets that test endpoints with a selector of the old
	 * document's test them with the new one's (which names them all) */
	r = -1;
	if (!(to = calloc(inc->nsets + 1, sizeof(*to))))
		goto out;
	for (size_t i = 0; i < inc->nsets; i++)
		if (policy_owns_sel(&po, inc->sets[i].sel) &&
		    !(to[i] = policy_sel_by_key(&pn, inc->sets[i].key))) {
			r = 1;
			goto out;
		}
	if (w->cached && !inc->pol_owned && !(inc->pol_owned = calloc(w->npols + 1, sizeof(bool))))
		goto out;
	/* the same chains before and after (a chain, and its TCP chain), or
	 * compile whole; then the ones that changed, queued */
	for (int d = 0; d < 2; d++)
		if (now[d] && !same_chains(was[d], now[d], &bw[d], &bn[d])) {
			r = 1;
			goto out;
		}
	r = -1;
	for (int d = 0; d < 2; d++)
		if (now[d] && queue_chains(inc, &bw[d], &bn[d]) < 0)
			goto out;
	for (size_t i = 0; i < inc->nsets; i++)
		if (to[i])
			inc->sets[i].sel = to[i];
	/* the old document: the world's to release when it is not a cache's,
	 * or this state's when it parsed it */
	if (!w->cached || inc->pol_owned[k])
		policy_release(&po);
	w->pols[k] = pn;
	if (w->cached)
		inc->pol_owned[k] = true;
	free(to);
	for (int d = 0; d < 2; d++) {
		free(was[d]);
		free(now[d]);
	}
	return 0;
out:
	free(to);
	for (int d = 0; d < 2; d++) {
		free(was[d]);
		free(now[d]);
	}
	policy_release(&pn);
	return r;
}

/* ---- what changed, as elements ---- */

static int push_item(struct policy_patch *p, size_t *cap, char *s)
{
	if (!s || grow((void **)&p->items, cap, p->n + 1, sizeof(*p->items)) < 0) {
		free(s);
		return -1;
	}
	p->items[p->n++] = s;
	return 0;
}

/* As the rendering writes a set's element (put_addr). */
static char *addr_item(const struct prefix *a)
{
	char b[PREFIX_STRLEN];

	return strdup(a->len == prefix_bits(a->family) ? addr_fmt(a->family, a->addr, b)
							: prefix_fmt(a, b));
}

static int patch_new(struct policy_patch **out, size_t *n, size_t *cap, const char *name)
{
	if (grow((void **)out, cap, *n + 1, sizeof(**out)) < 0)
		return -1;
	memset(&(*out)[*n], 0, sizeof(**out));
	snprintf((*out)[*n].name, sizeof((*out)[*n].name), "%s", name);
	(*n)++;
	return 0;
}

/* The local endpoints' items: spoof4, spoof6 (interface . address), and
 * ep_class (interface : class), in the order of their handles. */
static int locals_patches(struct policy_inc *inc, struct policy_patch **out, size_t *n,
			  size_t *cap)
{
	static const char *const names[3] = { "spoof4", "spoof6", "ep_class" };

	for (int k = 0; k < 3; k++) {
		struct policy_patch *p;
		size_t icap = 0;

		if (patch_new(out, n, cap, names[k]) < 0)
			return -1;
		p = &(*out)[*n - 1];
		for (size_t i = 0; i < inc->nlocals; i++) {
			const struct inc_local *l = &inc->locals[i];
			char b[PREFIX_STRLEN], *s;

			if (k == 2) {
				if (asprintf(&s, "\"%s\" : %u", l->ifname, (unsigned)l->id) < 0)
					s = NULL;
				if (push_item(p, &icap, s) < 0)
					return -1;
				continue;
			}
			for (size_t j = 0; j < l->na; j++) {
				if (l->a[j].family != (k ? 6 : 4))
					continue;
				if (asprintf(&s, "\"%s\" . %s", l->ifname,
					     addr_fmt(l->a[j].family, l->a[j].addr, b)) < 0)
					s = NULL;
				if (push_item(p, &icap, s) < 0)
					return -1;
			}
		}
	}
	return 0;
}

int policy_inc_patches(struct policy_inc *inc, struct policy_patch **out, size_t *n)
{
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < inc->nsets; i++) {
		struct inc_set *s = &inc->sets[i];
		struct policy_patch *p;
		size_t icap = 0;

		if (!s->dirty || !*s->name)
			continue;
		if (patch_new(out, n, &cap, s->name) < 0)
			goto oom;
		p = &(*out)[*n - 1];
		for (size_t j = 0; j < s->n; j++)
			if (push_item(p, &icap, addr_item(&s->v[j])) < 0)
				goto oom;
		s->dirty = false;
	}
	if (inc->locals_dirty) {
		if (locals_patches(inc, out, n, &cap) < 0)
			goto oom;
		inc->locals_dirty = false;
	}
	for (size_t i = 0; i < inc->nchains; i++) {
		if (patch_new(out, n, &cap, inc->chains[i].name) < 0)
			goto oom;
		(*out)[*n - 1].chain = inc->chains[i].text;
		inc->chains[i].text = NULL;
	}
	inc->nchains = 0;
	return 0;
oom:
	policy_patches_free(*out, *n);
	*out = NULL;
	*n = 0;
	return -1;
}

void policy_patches_free(struct policy_patch *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		for (size_t k = 0; k < p[i].n; k++)
			free(p[i].items[k]);
		free(p[i].items);
		free(p[i].chain);
	}
	free(p);
}
