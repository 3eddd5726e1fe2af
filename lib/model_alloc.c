/* SPDX-License-Identifier: MIT */
/*
 * DOC: allocation: blocks, buckets and endpoints
 *
 * The hot path. An allocation for (host, segment) in space S looks up the
 * bucket (host, segment, S), takes the first block on its `avail` list and
 * the next free bit after the block's cursor: O(1) for the lookup and one
 * 64-bit scan for a /28. Only when no block has room does the host claim a
 * new one: the lowest free block-sized range of its group's region (see
 * lib/region.c), with the space's reserved addresses pre-marked as taken.
 *
 * An endpoint takes one address per space of its segment, all or nothing: if
 * the second space is exhausted, the first address is given back and a block
 * claimed for it is unclaimed, so a failed request leaves no trace.
 *
 * Releasing the last address of a block starts its cool-down: the block stays
 * with its host (and its route) but takes no allocations until cool_until,
 * after which model_sweep() returns it to the group.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model.h"
#include "model_internal.h"

/* ---- bitmaps ---- */

static inline bool bit_get(const uint64_t *w, uint32_t i)
{
	return (w[i >> 6] >> (i & 63)) & 1;
}

static inline void bit_set(uint64_t *w, uint32_t i)
{
	w[i >> 6] |= (uint64_t)1 << (i & 63);
}

static inline void bit_clear(uint64_t *w, uint32_t i)
{
	w[i >> 6] &= ~((uint64_t)1 << (i & 63));
}

/* First clear bit in [lo, hi), or -1. */
static int64_t bit_scan_clear(const uint64_t *w, uint32_t lo, uint32_t hi)
{
	while (lo < hi) {
		uint32_t wi = lo >> 6, wend = (wi + 1) * 64;
		uint64_t inv = ~w[wi] & (~(uint64_t)0 << (lo & 63));

		if (wend > hi) /* hi is inside this word, and not on its boundary */
			inv &= ((uint64_t)1 << (hi & 63)) - 1;
		if (inv)
			return (int64_t)wi * 64 + __builtin_ctzll(inv);
		lo = wend;
	}
	return -1;
}

/* Next-fit: first clear bit at or after `from`, wrapping round; -1 if none. */
static int64_t bit_next_clear(const uint64_t *w, uint32_t n, uint32_t from)
{
	int64_t r;

	if (from >= n)
		from = 0;
	r = bit_scan_clear(w, from, n);
	return r >= 0 ? r : bit_scan_clear(w, 0, from);
}

/*
 * Mark in `bits` (size addresses from start) every address the space never
 * hands out: its network address, its IPv4 broadcast address, its reserved
 * prefixes. Returns how many were marked.
 */
static uint32_t mark_reserved(const struct space *s, u128 start, uint32_t size, uint64_t *bits)
{
	u128 end = start + size - 1;
	uint32_t count = 0;

#define MARK(off)                              \
	do {                                   \
		if (!bit_get(bits, (off))) {   \
			bit_set(bits, (off));  \
			count++;               \
		}                              \
	} while (0)
	if (s->cidr.addr >= start && s->cidr.addr <= end)
		MARK((uint32_t)(s->cidr.addr - start));
	if (s->cidr.family == 4 && s->cidr.len < 32) {
		u128 bcast = prefix_last(&s->cidr);

		if (bcast >= start && bcast <= end)
			MARK((uint32_t)(bcast - start));
	}
	for (size_t i = 0; i < s->nreserved; i++) {
		u128 rs = s->reserved[i].addr, re = prefix_last(&s->reserved[i]);

		if (re < start || rs > end)
			continue;
		if (rs < start)
			rs = start;
		if (re > end)
			re = end;
		for (u128 a = rs; a <= re; a++)
			MARK((uint32_t)(a - start));
	}
#undef MARK
	return count;
}

static bool skip_all_reserved(u128 start, u128 end, void *arg)
{
	const struct space *s = arg;
	uint32_t size = (uint32_t)(end - start + 1);
	uint64_t stackbits[16], *bits = stackbits;
	uint32_t nwords = (size + 63) / 64, n;

	/* cheap case first: one reserved prefix covers the whole candidate */
	for (size_t i = 0; i < s->nreserved; i++)
		if (s->reserved[i].addr <= start && prefix_last(&s->reserved[i]) >= end)
			return true;
	if (!s->nreserved && size > 2)
		return false;
	if (nwords > 16 && !(bits = calloc(nwords, sizeof(*bits))))
		return true; /* out of memory: refuse the candidate rather than misallocate */
	if (bits == stackbits)
		memset(stackbits, 0, sizeof(stackbits));
	n = mark_reserved(s, start, size, bits);
	if (bits != stackbits)
		free(bits);
	return n == size;
}

/* ---- buckets ---- */

static uint64_t bucket_hash(const struct host *h, const struct segment *sg, const struct space *s)
{
	/* the space's pointer, not its idx: deleting a space moves the last
	 * space to another idx, and the buckets must still be found */
	return hash_mix((uint64_t)(uintptr_t)h,
			(uint64_t)(uintptr_t)sg * 64 ^ (uint64_t)(uintptr_t)s);
}

struct bucket_key {
	const struct host *h;
	const struct segment *sg;
	const struct space *s;
};

static bool eq_bucket(const void *val, const void *key)
{
	const struct bucket *b = val;
	const struct bucket_key *k = key;

	return b->host == k->h && b->segment == k->sg && b->space == k->s;
}

static struct bucket *bucket_get(struct model *m, struct host *h, struct segment *sg,
				 struct space *s, bool create)
{
	struct bucket_key k = { h, sg, s };
	uint64_t hash = bucket_hash(h, sg, s);
	struct bucket *b = hmap_find(&m->buckets, hash, eq_bucket, &k);

	if (b || !create)
		return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->host = h;
	b->segment = sg;
	b->space = s;
	if (hmap_insert(&m->buckets, hash, b) < 0) {
		free(b);
		return NULL;
	}
	return b;
}

void bucket_free(struct bucket *b)
{
	struct block *x, *next;

	if (!b)
		return;
	for (x = b->blocks; x; x = next) {
		next = x->bnext;
		if (x->bits != &x->inline_bits)
			free(x->bits);
		free(x);
	}
	free(b);
}

static void avail_push(struct bucket *bk, struct block *b)
{
	b->avail_prev = NULL;
	b->avail_next = bk->avail;
	if (bk->avail)
		bk->avail->avail_prev = b;
	bk->avail = b;
}

static void avail_remove(struct bucket *bk, struct block *b)
{
	if (b->avail_prev)
		b->avail_prev->avail_next = b->avail_next;
	else if (bk->avail == b)
		bk->avail = b->avail_next;
	else
		return; /* not on the list */
	if (b->avail_next)
		b->avail_next->avail_prev = b->avail_prev;
	b->avail_prev = b->avail_next = NULL;
}

static void cool_insert(struct model *m, struct block *b)
{
	struct block *after = m->cool_tail;

	/* cool-downs are usually appended in order; loading may insert anywhere */
	while (after && after->cool_until > b->cool_until)
		after = after->cool_prev;
	b->cool_prev = after;
	b->cool_next = after ? after->cool_next : m->cool_head;
	if (b->cool_next)
		b->cool_next->cool_prev = b;
	else
		m->cool_tail = b;
	if (after)
		after->cool_next = b;
	else
		m->cool_head = b;
}

static void cool_remove(struct model *m, struct block *b)
{
	if (b->cool_prev)
		b->cool_prev->cool_next = b->cool_next;
	else
		m->cool_head = b->cool_next;
	if (b->cool_next)
		b->cool_next->cool_prev = b->cool_prev;
	else
		m->cool_tail = b->cool_prev;
	b->cool_prev = b->cool_next = NULL;
}

/* ---- blocks ---- */

static bool eq_block(const void *val, const void *key)
{
	return ((const struct block *)val)->cidr.addr == *(const u128 *)key;
}

struct block *model_block_at(const struct space *s, u128 addr)
{
	struct prefix p = { .family = s->cidr.family, .len = s->block_len };
	u128 base = addr & ~prefix_hostmask(&p);

	return hmap_find(&s->blocks, hash_u128(base), eq_block, &base);
}

static struct block *block_new(struct model *m, struct space *s, u128 start, struct host *h,
			       struct segment *sg)
{
	struct region *r = &h->group->regions[s->idx];
	struct bucket *bk = bucket_get(m, h, sg, s, true);
	struct block *b;

	if (!bk)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		goto fail;
	b->space = s;
	b->cidr = (struct prefix){ .addr = start, .family = s->cidr.family, .len = s->block_len };
	b->group = h->group;
	b->host = h;
	b->segment = sg;
	b->bucket = bk;
	b->state = BLOCK_ACTIVE;
	b->size = (uint32_t)prefix_size(&b->cidr);
	if (b->size <= 64) {
		b->bits = &b->inline_bits;
	} else if (!(b->bits = calloc((b->size + 63) / 64, sizeof(uint64_t)))) {
		goto fail;
	}
	b->nreserved = mark_reserved(s, start, b->size, b->bits);
	if (region_insert(r, start, prefix_last(&b->cidr), b) < 0)
		goto fail;
	if (hmap_insert(&s->blocks, hash_u128(start), b) < 0) {
		region_remove(r, start);
		goto fail;
	}
	b->bnext = bk->blocks;
	b->bprev = NULL;
	if (bk->blocks)
		bk->blocks->bprev = b;
	bk->blocks = b;
	bk->nblocks++;
	h->nblocks++;
	m->nblocks++;
	s->nblocks_active++;
	if (b->used + b->nreserved < b->size)
		avail_push(bk, b);
	return b;
fail:
	if (b && b->bits && b->bits != &b->inline_bits)
		free(b->bits);
	free(b);
	if (!bk->nblocks) {
		struct bucket_key k = { h, sg, s };

		hmap_remove(&m->buckets, bucket_hash(h, sg, s), eq_bucket, &k);
		free(bk);
	}
	return NULL;
}

/* Remove a block from everything and free it (emits a delete when tx). */
static void block_drop(struct model *m, struct block *b, struct mtxn *tx)
{
	struct bucket *bk = b->bucket;
	struct space *s = b->space;
	if (tx)
		mtxn_del(tx, key_block(b));
	if (b->state == BLOCK_COOLING) {
		cool_remove(m, b);
		s->nblocks_cooling--;
	} else {
		avail_remove(bk, b);
		s->nblocks_active--;
	}
	region_remove(&b->group->regions[s->idx], b->cidr.addr);
	hmap_remove(&s->blocks, hash_u128(b->cidr.addr), eq_block, &b->cidr.addr);
	if (b->bprev)
		b->bprev->bnext = b->bnext;
	else
		bk->blocks = b->bnext;
	if (b->bnext)
		b->bnext->bprev = b->bprev;
	bk->nblocks--;
	b->host->nblocks--;
	m->nblocks--;
	if (!bk->nblocks) {
		struct bucket_key k = { bk->host, bk->segment, bk->space };

		hmap_remove(&m->buckets, bucket_hash(bk->host, bk->segment, bk->space), eq_bucket, &k);
		free(bk);
	}
	if (b->bits != &b->inline_bits)
		free(b->bits);
	free(b);
}

static int block_claim(struct model *m, struct host *h, struct segment *sg, struct space *s,
		       struct block **out, struct error *err)
{
	struct region *r = &h->group->regions[s->idx];
	char pb[PREFIX_STRLEN];
	u128 start;

	if (r->prefix.len == 0xff)
		return error_exhausted(err, "host", h->name, "group %s has no prefix in space %s",
				       h->group->name, s->name);
	if (region_find(r, s->block_len, skip_all_reserved, s, &start) < 0)
		return error_exhausted(err, "host", h->name,
				       "space %s: group %s (%s) has no free /%u block left for host %s",
				       s->name, h->group->name, prefix_fmt(&r->prefix, pb),
				       s->block_len, h->name);
	*out = block_new(m, s, start, h, sg);
	if (!*out)
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	return 0;
}

/* Take one address in block b (which has room). */
static uint32_t block_take(struct block *b)
{
	int64_t off = bit_next_clear(b->bits, b->size, b->cursor);

	/* b is on the avail list, so there is a clear bit */
	bit_set(b->bits, (uint32_t)off);
	b->used++;
	b->cursor = (uint32_t)off + 1;
	if (b->used + b->nreserved == b->size)
		avail_remove(b->bucket, b);
	return (uint32_t)off;
}

/*
 * Give back one address. With `hard` (undoing a failed request) an emptied
 * block is dropped at once only if `claimed` says this request claimed it;
 * otherwise an emptied block starts its cool-down (or, with no cool-down
 * configured, goes back at once).
 */
static void block_give(struct model *m, struct block *b, uint32_t off, bool undo_claim,
		       struct mtxn *tx)
{
	bool was_full = b->used + b->nreserved == b->size;

	bit_clear(b->bits, off);
	b->used--;
	if (undo_claim && b->used == 0) {
		block_drop(m, b, NULL);
		return;
	}
	if (b->used > 0 || b->state != BLOCK_ACTIVE) {
		if (was_full && b->state == BLOCK_ACTIVE)
			avail_push(b->bucket, b);
		return;
	}
	if (m->opt.block_cooldown <= 0) {
		block_drop(m, b, tx);
		return;
	}
	if (!was_full)
		avail_remove(b->bucket, b);
	b->state = BLOCK_COOLING;
	b->cool_until = model_now(m) + m->opt.block_cooldown;
	b->space->nblocks_active--;
	b->space->nblocks_cooling++;
	cool_insert(m, b);
	if (tx)
		mtxn_put(tx, key_block(b), block_value(b));
}

size_t model_sweep(struct model *m, struct mtxn *tx)
{
	int64_t now = model_now(m);
	size_t n = 0;

	while (m->cool_head && m->cool_head->cool_until <= now) {
		block_drop(m, m->cool_head, tx);
		n++;
	}
	return n;
}

static void drop_buckets_where(struct model *m, struct host *h, struct segment *sg,
			       struct mtxn *tx)
{
	struct bucket *bk;
	size_t it = 0;

	/* Rare (host or segment deletion): a full scan of the buckets is fine.
	 * Restart the scan after each drop since dropping edits the map. */
	while ((bk = hmap_next(&m->buckets, &it))) {
		if ((h && bk->host != h) || (sg && bk->segment != sg))
			continue;
		while (bk->blocks->bnext)
			block_drop(m, bk->blocks, tx);
		block_drop(m, bk->blocks, tx); /* frees bk */
		it = 0;
	}
}

void host_drop_blocks(struct model *m, struct host *h, struct mtxn *tx)
{
	drop_buckets_where(m, h, NULL, tx);
}

void segment_drop_blocks(struct model *m, struct segment *sg, struct mtxn *tx)
{
	drop_buckets_where(m, NULL, sg, tx);
}

/* ---- endpoints ---- */

void endpoint_free(struct endpoint *e)
{
	if (!e)
		return;
	free(e->attrs);
	if (e->addrs != e->inline_addrs)
		free(e->addrs);
	free(e);
}

static struct endpoint *endpoint_new(const char *handle, const char *attrs)
{
	size_t n = strlen(handle) + 1;
	struct endpoint *e = calloc(1, sizeof(*e) + n);

	if (!e)
		return NULL;
	memcpy(e->handle, handle, n);
	if (attrs && !(e->attrs = strdup(attrs))) {
		free(e);
		return NULL;
	}
	return e;
}

static void addrs_free(struct endpoint *e)
{
	if (e->addrs != e->inline_addrs)
		free(e->addrs);
	e->addrs = NULL;
	e->naddrs = 0;
}

/*
 * Allocate one address per space of sg on host h into *addrs (n of them),
 * all or nothing. Blocks claimed get a put in tx.
 */
static int alloc_addrs(struct model *m, struct host *h, struct segment *sg,
		       struct ep_addr *inline_buf, struct ep_addr **out, uint8_t *nout,
		       struct mtxn *tx, struct error *err)
{
	struct ep_addr *a = inline_buf;
	bool claimed[MODEL_MAX_SPACES] = { false };
	size_t want = (size_t)__builtin_popcount(sg->spaces);
	uint8_t n = 0;
	int r = 0;

	if (want > 2 && !(a = calloc(want, sizeof(*a))))
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	for (size_t i = 0; i < m->nspaces; i++) {
		struct space *s = m->spaces[i];
		struct bucket *bk;
		struct block *b;

		if (!(sg->spaces & (1U << i)))
			continue;
		bk = bucket_get(m, h, sg, s, false);
		b = bk ? bk->avail : NULL;
		if (!b) {
			r = block_claim(m, h, sg, s, &b, err);
			if (r < 0)
				goto undo;
			claimed[n] = true;
		}
		a[n].block = b;
		a[n].off = block_take(b);
		n++;
	}
	if (tx)
		for (uint8_t k = 0; k < n; k++)
			if (claimed[k])
				mtxn_put(tx, key_block(a[k].block), block_value(a[k].block));
	*out = a;
	*nout = n;
	return 0;
undo:
	while (n-- > 0)
		block_give(m, a[n].block, a[n].off, claimed[n], NULL);
	if (a != inline_buf)
		free(a);
	return r;
}

static void release_addrs(struct model *m, struct endpoint *e, struct mtxn *tx)
{
	for (uint8_t i = 0; i < e->naddrs; i++)
		block_give(m, e->addrs[i].block, e->addrs[i].off, false, tx);
	m->releases += e->naddrs;
	addrs_free(e);
}

static int resolve(struct model *m, const struct endpoint_spec *sp, struct segment **sgp,
		   struct host **hp, struct endpoint **pp, struct error *err)
{
	if (!model_tenant(m, sp->tenant))
		return error_not_found(err, "tenant", sp->tenant, "tenant: %s not found", sp->tenant);
	if (!(*sgp = model_segment(m, sp->tenant, sp->segment)))
		return error_not_found(err, "segment", sp->segment,
				       "segment: %s not found in tenant %s", sp->segment, sp->tenant);
	*hp = NULL;
	if (sp->host && !(*hp = model_host(m, sp->host)))
		return error_not_found(err, "host", sp->host, "host: %s not found", sp->host);
	*pp = NULL;
	if (sp->parent && !(*pp = model_endpoint(m, sp->parent)))
		return error_not_found(err, "parent", sp->parent, "parent: endpoint %s not found",
				       sp->parent);
	return 0;
}

int model_endpoint_create(struct model *m, const struct endpoint_spec *sp, struct mtxn *tx,
			  struct endpoint **out, struct error *err)
{
	struct segment *sg;
	struct host *h;
	struct endpoint *parent, *e;
	uint64_t hash;
	size_t slot;
	int r;

	r = resolve(m, sp, &sg, &h, &parent, err);
	if (r < 0)
		return r;
	if ((e = model_endpoint_lookup(m, sp->handle, &hash, &slot))) {
		/* Idempotent: the same request again gets the same endpoint. */
		if (e->segment != sg)
			return error_conflict(err, "segment", sp->segment,
					      "handle %s is already allocated in segment %s",
					      sp->handle, e->segment->key);
		if (e->host != h)
			return error_conflict(err, "host", sp->host ? sp->host : "",
					      "handle %s is already bound to host %s (use bind to move it)",
					      sp->handle, e->host ? e->host->name : "(none)");
		*out = e;
		return 1;
	}
	if (sp->parent && !strcmp(sp->parent, sp->handle))
		return error_invalid(err, "parent", sp->parent, "parent: an endpoint cannot be its own parent");
	if (h && !sg->spaces)
		return error_conflict(err, "segment", sg->key, "segment %s has no address spaces",
				      sg->key);
	e = endpoint_new(sp->handle, sp->attrs);
	if (!e)
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	e->segment = sg;
	e->host = h;
	e->parent = parent;
	e->kind = sp->kind;
	if (h && (r = alloc_addrs(m, h, sg, e->inline_addrs, &e->addrs, &e->naddrs, tx, err)) < 0) {
		endpoint_free(e);
		return r;
	}
	if (hmap_insert_at(&m->endpoints, slot, hash, e) < 0) {
		release_addrs(m, e, NULL);
		endpoint_free(e);
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	}
	m->nendpoints++;
	m->allocations += e->naddrs;
	sg->nendpoints++;
	if (h)
		h->nendpoints++;
	if (parent)
		parent->nchildren++;
	if (tx)
		mtxn_put(tx, key_endpoint(e->handle), endpoint_value(m, e));
	*out = e;
	return 0;
}

int model_endpoint_delete(struct model *m, const char *handle, struct mtxn *tx, struct error *err)
{
	struct endpoint *e = model_endpoint(m, handle);

	if (!e)
		return error_not_found(err, "handle", handle, "endpoint %s not found", handle);
	if (e->nchildren)
		return error_conflict(err, "handle", handle,
				      "endpoint %s still has %u child endpoints", handle, e->nchildren);
	release_addrs(m, e, tx);
	if (e->host)
		e->host->nendpoints--;
	if (e->parent)
		e->parent->nchildren--;
	e->segment->nendpoints--;
	m->nendpoints--;
	model_endpoint_unindex(m, e);
	if (tx)
		mtxn_del(tx, key_endpoint(handle));
	endpoint_free(e);
	return 0;
}

int model_endpoint_bind(struct model *m, const char *handle, const char *host, struct mtxn *tx,
			struct endpoint **out, struct error *err)
{
	struct endpoint *e = model_endpoint(m, handle);
	struct host *h = NULL;
	struct ep_addr tmp[2], *addrs = NULL;
	uint8_t n = 0;
	int r;

	if (!e)
		return error_not_found(err, "handle", handle, "endpoint %s not found", handle);
	if (host && !(h = model_host(m, host)))
		return error_not_found(err, "host", host, "host: %s not found", host);
	*out = e;
	if (e->host == h)
		return 1;
	if (h && !e->segment->spaces)
		return error_conflict(err, "segment", e->segment->key,
				      "segment %s has no address spaces", e->segment->key);
	/* New addresses first: if that fails nothing has changed. */
	if (h && (r = alloc_addrs(m, h, e->segment, tmp, &addrs, &n, tx, err)) < 0)
		return r;
	if (e->host) {
		release_addrs(m, e, tx);
		e->host->nendpoints--;
	}
	e->host = h;
	if (addrs == tmp) {
		memcpy(e->inline_addrs, tmp, n * sizeof(tmp[0]));
		addrs = e->inline_addrs;
	}
	e->addrs = addrs;
	e->naddrs = n;
	m->allocations += n;
	if (h)
		h->nendpoints++;
	if (tx)
		mtxn_put(tx, key_endpoint(e->handle), endpoint_value(m, e));
	return 0;
}

int model_endpoint_patch(struct model *m, const char *handle, json_t *patch, struct mtxn *tx,
			 struct endpoint **out, struct error *err)
{
	struct endpoint *e = model_endpoint(m, handle);
	json_t *attrs, *v;
	const char *k;
	char *s;
	uint8_t kind;

	if (!e)
		return error_not_found(err, "handle", handle, "endpoint %s not found", handle);
	kind = e->kind;
	attrs = e->attrs ? json_loads(e->attrs, 0, NULL) : json_object();
	if (!attrs)
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	json_object_foreach(patch, k, v) {
		if (!strcmp(k, "kind")) {
			ep_kind_parse(json_string_value(v), &kind); /* validated by the caller */
			continue;
		}
		if (json_is_null(v))
			json_object_del(attrs, k);
		else
			json_object_set(attrs, k, v);
	}
	s = json_object_size(attrs) ? json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(attrs);
	free(e->attrs);
	e->attrs = s;
	e->kind = kind;
	*out = e;
	if (tx)
		mtxn_put(tx, key_endpoint(e->handle), endpoint_value(m, e));
	return 0;
}

/* ---- restore from the store ---- */

int model_block_restore(struct model *m, struct space *s, const struct prefix *cidr,
			struct host *h, struct segment *sg, enum block_state state,
			int64_t cool_until, struct error *err)
{
	char pb[PREFIX_STRLEN];
	struct block *b;

	if (cidr->family != s->cidr.family || cidr->len != s->block_len ||
	    !prefix_contains(&h->group->regions[s->idx].prefix, cidr))
		return error_invalid(err, "cidr", prefix_fmt(cidr, pb),
				     "stored block %s is not a /%u inside group %s of host %s", pb,
				     s->block_len, h->group->name, h->name);
	b = block_new(m, s, cidr->addr, h, sg);
	if (!b)
		return error_conflict(err, "cidr", prefix_fmt(cidr, pb),
				      "stored block %s overlaps another block or group", pb);
	if (state == BLOCK_COOLING) {
		avail_remove(b->bucket, b);
		b->state = BLOCK_COOLING;
		b->cool_until = cool_until;
		s->nblocks_active--;
		s->nblocks_cooling++;
		cool_insert(m, b);
	}
	return 0;
}

int model_endpoint_restore(struct model *m, const struct endpoint_spec *sp, struct error *err)
{
	struct segment *sg;
	struct host *h;
	struct endpoint *parent, *e;
	size_t n = json_array_size(sp->addresses), i;
	json_t *a;
	int r;

	/* parents are linked by the loader once every endpoint exists */
	struct endpoint_spec tmp = *sp;

	tmp.parent = NULL;
	r = resolve(m, &tmp, &sg, &h, &parent, err);
	if (r < 0)
		return r;
	if (model_endpoint(m, sp->handle))
		return error_exists(err, "handle", sp->handle, "endpoint %s stored twice", sp->handle);
	if (n && !h)
		return error_invalid(err, "addresses", sp->handle,
				     "endpoint %s has addresses but no host", sp->handle);
	e = endpoint_new(sp->handle, sp->attrs);
	if (!e)
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	e->addrs = e->inline_addrs;
	if (n > 2 && !(e->addrs = calloc(n, sizeof(*e->addrs)))) {
		endpoint_free(e);
		return error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
	}
	e->segment = sg;
	e->host = h;
	e->kind = sp->kind;
	json_array_foreach(sp->addresses, i, a) {
		const char *sname = json_string_value(json_object_get(a, "space"));
		const char *astr = json_string_value(json_object_get(a, "address"));
		struct space *s = sname ? model_space(m, sname) : NULL;
		struct prefix ap;
		struct block *b;
		uint32_t off;

		if (!s || !astr || addr_parse(astr, &ap, "address", err) < 0 ||
		    !(b = model_block_at(s, ap.addr)) || !prefix_contains(&b->cidr, &ap)) {
			r = error_invalid(err, "addresses", astr ? astr : "",
					  "endpoint %s: stored address %s is in no block of space %s",
					  sp->handle, astr ? astr : "?", sname ? sname : "?");
			goto fail;
		}
		off = (uint32_t)(ap.addr - b->cidr.addr);
		if (b->host != h || b->segment != sg || bit_get(b->bits, off) ||
		    b->state != BLOCK_ACTIVE) {
			r = error_conflict(err, "addresses", astr,
					   "endpoint %s: stored address %s is taken, reserved or in "
					   "a block of another owner", sp->handle, astr);
			goto fail;
		}
		bit_set(b->bits, off);
		b->used++;
		if (off + 1 > b->cursor)
			b->cursor = off + 1;
		if (b->used + b->nreserved == b->size)
			avail_remove(b->bucket, b);
		e->addrs[e->naddrs].block = b;
		e->addrs[e->naddrs].off = off;
		e->naddrs++;
	}
	if (model_endpoint_index(m, e) < 0) {
		r = error_set(err, ENOMEM, 500, "internal", "", "", "out of memory");
		goto fail;
	}
	m->nendpoints++;
	sg->nendpoints++;
	if (h)
		h->nendpoints++;
	return 0;
fail:
	while (e->naddrs-- > 0) {
		struct block *b = e->addrs[e->naddrs].block;
		bool was_full = b->used + b->nreserved == b->size;

		bit_clear(b->bits, e->addrs[e->naddrs].off);
		b->used--;
		if (was_full)
			avail_push(b->bucket, b);
	}
	endpoint_free(e);
	return r;
}
