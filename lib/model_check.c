/* SPDX-License-Identifier: MIT */
/*
 * DOC: the model's invariants, checked from scratch
 *
 * model_check() walks everything and verifies what the allocator promises,
 * without trusting the allocator's own bookkeeping: no address is held twice;
 * every address is inside its block and the block is owned by the endpoint's
 * host and segment; every block is inside its host's group prefix; group
 * prefixes nest in their parent's and siblings do not overlap; network,
 * broadcast and reserved addresses are never held; the counters match. The
 * randomized tests call it after every step; larchd calls it after loading.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model.h"
#include "model_internal.h"

#define BAD(...) error_set(err, EUCLEAN, 500, "invariant", "", "", __VA_ARGS__)

static int check_region(const struct region *r, const char *what, struct error *err)
{
	char pb[PREFIX_STRLEN];

	for (size_t i = 0; i < r->n; i++) {
		const struct region_item *it = &r->items[i];

		if (!prefix_contains_addr(&r->prefix, r->prefix.family, it->start) ||
		    !prefix_contains_addr(&r->prefix, r->prefix.family, it->end) || it->start > it->end)
			return BAD("%s %s: item %zu lies outside", what, prefix_fmt(&r->prefix, pb), i);
		if (i && r->items[i - 1].end >= it->start)
			return BAD("%s %s: items %zu and %zu overlap", what, prefix_fmt(&r->prefix, pb), i - 1, i);
	}
	return 0;
}

struct held {
	u128 addr;
	uint8_t space;
	const struct endpoint *e;
};

static int cmp_held(const void *a, const void *b)
{
	const struct held *x = a, *y = b;

	if (x->space != y->space)
		return x->space < y->space ? -1 : 1;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return 0;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const void *const *)a, y = (uintptr_t)*(const void *const *)b;

	return x < y ? -1 : x > y;
}

static bool never_handed_out(const struct space *s, u128 a)
{
	if (a == s->cidr.addr)
		return true;
	if (s->cidr.family == 4 && s->cidr.len < 32 && a == prefix_last(&s->cidr))
		return true;
	for (size_t i = 0; i < s->nreserved; i++)
		if (prefix_contains_addr(&s->reserved[i], s->cidr.family, a))
			return true;
	return false;
}

int model_check(const struct model *m, struct error *err)
{
	struct held *held = NULL;
	size_t nheld = 0, cap = 0, it, n_ep = 0, n_blocks = 0;
	const struct group *g;
	const struct endpoint *e;
	const struct host *h;
	char pb[PREFIX_STRLEN], qb[PREFIX_STRLEN];
	int r = 0;

	for (size_t i = 0; i < m->nspaces; i++) {
		const struct space *s = m->spaces[i];

		if (s->idx != i)
			return BAD("space %s: index %u at position %zu", s->name, s->idx, i);
		if ((r = check_region(&s->root, "space", err)) < 0)
			return r;
	}
	/* groups: prefixes nest, and each is an item of its parent's region */
	it = 0;
	while ((g = hmap_next(&m->groups, &it))) {
		for (size_t i = 0; i < m->nspaces; i++) {
			const struct space *s = m->spaces[i];
			const struct region *gr = &g->regions[i];
			const struct region *pr = g->parent ? &g->parent->regions[i] : &s->root;
			struct region_item *item;

			if (gr->prefix.len == 0xff)
				return BAD("group %s has no prefix in space %s", g->name, s->name);
			if (!prefix_contains(&pr->prefix, &gr->prefix))
				return BAD("group %s: %s is not inside its parent's %s", g->name,
					   prefix_fmt(&gr->prefix, pb), prefix_fmt(&pr->prefix, qb));
			item = region_overlap(pr, gr->prefix.addr, prefix_last(&gr->prefix));
			if (!item || item->owner != g || item->start != gr->prefix.addr ||
			    item->end != prefix_last(&gr->prefix))
				return BAD("group %s: %s is not recorded in its parent's region", g->name,
					   prefix_fmt(&gr->prefix, pb));
			if ((r = check_region(gr, "group", err)) < 0)
				return r;
		}
	}
	/* blocks */
	for (size_t i = 0; i < m->nspaces; i++) {
		const struct space *s = m->spaces[i];
		const struct block *b;

		it = 0;
		while ((b = hmap_next(&s->blocks, &it))) {
			const struct region *gr = &b->host->group->regions[i];
			struct region_item *item;
			uint32_t bits = 0, nres = 0;

			n_blocks++;
			if (b->space != s || b->cidr.len != s->block_len || b->group != b->host->group)
				return BAD("block %s: wrong space, size or group", prefix_fmt(&b->cidr, pb));
			if (!prefix_contains(&gr->prefix, &b->cidr))
				return BAD("block %s of host %s is outside its group %s (%s)",
					   prefix_fmt(&b->cidr, pb), b->host->name, b->group->name,
					   prefix_fmt(&gr->prefix, qb));
			item = region_overlap(gr, b->cidr.addr, prefix_last(&b->cidr));
			if (!item || item->owner != b)
				return BAD("block %s is not recorded in group %s", prefix_fmt(&b->cidr, pb),
					   b->group->name);
			if (b->bucket->host != b->host || b->bucket->segment != b->segment ||
			    b->bucket->space != s)
				return BAD("block %s: bucket does not match its owner", prefix_fmt(&b->cidr, pb));
			for (uint32_t k = 0; k < b->size; k++) {
				bool set = (b->bits[k >> 6] >> (k & 63)) & 1;

				bits += set;
				if (never_handed_out(s, block_addr(b, k))) {
					nres++;
					if (!set)
						return BAD("block %s: reserved address at offset %u is not marked",
							   prefix_fmt(&b->cidr, pb), k);
				}
			}
			if (nres != b->nreserved || bits != b->used + b->nreserved)
				return BAD("block %s: %u bits set, used %u, reserved %u (counted %u)",
					   prefix_fmt(&b->cidr, pb), bits, b->used, b->nreserved, nres);
			if (b->state == BLOCK_COOLING && b->used)
				return BAD("block %s is cooling but holds %u addresses", prefix_fmt(&b->cidr, pb), b->used);
		}
	}
	if (n_blocks != m->nblocks)
		return BAD("%zu blocks counted, the model says %zu", n_blocks, m->nblocks);

	/* endpoints: collect every held address, then look for duplicates */
	it = 0;
	while ((e = hmap_next(&m->endpoints, &it))) {
		uint32_t spaces_seen = 0;

		n_ep++;
		if (!e->host && e->naddrs)
			return BAD("endpoint %s is unbound but holds addresses", e->handle);
		if (e->host && e->naddrs != (uint8_t)__builtin_popcount(e->segment->spaces))
			return BAD("endpoint %s holds %u addresses for %d spaces", e->handle, e->naddrs,
				   __builtin_popcount(e->segment->spaces));
		for (uint8_t k = 0; k < e->naddrs; k++) {
			const struct block *b = e->addrs[k].block;
			u128 a = block_addr(b, e->addrs[k].off);

			if (e->addrs[k].off >= b->size || !((b->bits[e->addrs[k].off >> 6] >> (e->addrs[k].off & 63)) & 1))
				return BAD("endpoint %s: address not marked in block %s", e->handle,
					   prefix_fmt(&b->cidr, pb));
			if (b->host != e->host || b->segment != e->segment || b->state != BLOCK_ACTIVE)
				return BAD("endpoint %s: block %s belongs to %s/%s, not to the endpoint's host and segment",
					   e->handle, prefix_fmt(&b->cidr, pb), b->host->name, b->segment->key);
			if (never_handed_out(b->space, a))
				return BAD("endpoint %s holds %s, a network, broadcast or reserved address",
					   e->handle, addr_fmt(b->cidr.family, a, pb));
			if (spaces_seen & (1U << b->space->idx))
				return BAD("endpoint %s holds two addresses in space %s", e->handle, b->space->name);
			spaces_seen |= 1U << b->space->idx;
			if (nheld == cap) {
				struct held *nh;

				cap = cap ? cap * 2 : 1024;
				nh = realloc(held, cap * sizeof(*nh));
				if (!nh) {
					free(held);
					return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
				}
				held = nh;
			}
			held[nheld++] = (struct held){ a, b->space->idx, e };
		}
	}
	if (n_ep != m->nendpoints)
		r = BAD("%zu endpoints counted, the model says %zu", n_ep, m->nendpoints);
	if (r == 0 && nheld) {
		qsort(held, nheld, sizeof(*held), cmp_held);
		for (size_t i = 1; i < nheld; i++)
			if (!cmp_held(&held[i - 1], &held[i])) {
				r = BAD("address %s is held by both %s and %s",
					addr_fmt(m->spaces[held[i].space]->cidr.family, held[i].addr, pb),
					held[i - 1].e->handle, held[i].e->handle);
				break;
			}
	}
	free(held);
	if (r < 0)
		return r;
	/* per-block used counts agree with the endpoints */
	{
		size_t total_used = 0;

		for (size_t i = 0; i < m->nspaces; i++) {
			const struct block *b;

			it = 0;
			while ((b = hmap_next(&m->spaces[i]->blocks, &it)))
				total_used += b->used;
		}
		if (total_used != nheld)
			return BAD("blocks count %zu used addresses, endpoints hold %zu", total_used, nheld);
	}
	/* per-host endpoint counts, in one pass: hosts sorted by pointer */
	{
		size_t nh = m->hosts.len, k = 0;
		struct hcount { const struct host *h; size_t n; } *hc = calloc(nh + 1, sizeof(*hc));

		if (!hc)
			return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
		it = 0;
		while ((h = hmap_next(&m->hosts, &it)))
			hc[k++].h = h;
		qsort(hc, nh, sizeof(*hc), cmp_ptr);
		it = 0;
		while ((e = hmap_next(&m->endpoints, &it))) {
			size_t lo = 0, hi = nh;

			if (!e->host)
				continue;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;

				if ((uintptr_t)hc[mid].h < (uintptr_t)e->host)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == nh || hc[lo].h != e->host) {
				free(hc);
				return BAD("endpoint %s is bound to a host that does not exist", e->handle);
			}
			hc[lo].n++;
		}
		for (k = 0; k < nh; k++)
			if (hc[k].n != hc[k].h->nendpoints) {
				r = BAD("host %s: %zu endpoints counted, the model says %zu", hc[k].h->name,
					hc[k].n, hc[k].h->nendpoints);
				break;
			}
		free(hc);
	}
	return r;
}
