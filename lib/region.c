/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "region.h"

void region_init(struct region *r, const struct prefix *p)
{
	memset(r, 0, sizeof(*r));
	r->prefix = *p;
}

void region_release(struct region *r)
{
	if (!r)
		return;
	free(r->items);
	r->items = NULL;
	r->n = r->cap = r->hint = 0;
}

/* Index of the first item with start > addr. */
static size_t upper_bound(const struct region *r, u128 addr)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->items[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct region_item *region_overlap(const struct region *r, u128 start, u128 end)
{
	size_t i = upper_bound(r, end);

	/* items[i-1] is the last one starting at or before end */
	if (i > 0 && r->items[i - 1].end >= start)
		return &r->items[i - 1];
	return NULL;
}

int region_find(struct region *r, unsigned len, region_skip_fn skip, void *arg, u128 *out)
{
	struct prefix want = { .family = r->prefix.family, .len = (uint8_t)len };
	u128 size_mask = prefix_hostmask(&want);
	u128 last = prefix_last(&r->prefix);
	size_t i = r->hint;
	bool solid = true; /* no gap seen so far: hint may move */
	u128 cur;

	if (len < r->prefix.len || len > prefix_bits(r->prefix.family))
		return -ENOSPC;
	if (i > r->n)
		i = r->hint = r->n;
	if (i == 0) {
		cur = r->prefix.addr;
	} else {
		if (r->items[i - 1].end == last)
			return -ENOSPC;
		cur = r->items[i - 1].end + 1;
	}
	for (;;) {
		u128 gap_end;
		bool empty;

		if (i < r->n) {
			empty = r->items[i].start == cur;
			gap_end = empty ? cur : r->items[i].start - 1;
		} else {
			empty = false;
			gap_end = last;
		}
		if (!empty) {
			/* align cur up to the wanted size, then try each slot in the gap */
			u128 c = (cur + size_mask) & ~size_mask;

			while (c >= cur && c <= gap_end && gap_end - c >= size_mask) {
				if (!skip || !skip(c, c + size_mask, arg)) {
					*out = c;
					return 0;
				}
				if (c + size_mask == last)
					break;
				c += size_mask + 1;
			}
			solid = false;
		} else if (solid) {
			r->hint = i + 1;
		}
		if (i >= r->n || r->items[i].end == last)
			return -ENOSPC;
		cur = r->items[i].end + 1;
		i++;
	}
}

int region_insert(struct region *r, u128 start, u128 end, void *owner)
{
	size_t i;

	if (start > end || !prefix_contains_addr(&r->prefix, r->prefix.family, start) ||
	    !prefix_contains_addr(&r->prefix, r->prefix.family, end))
		return -ERANGE;
	if (region_overlap(r, start, end))
		return -EEXIST;
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 8;
		struct region_item *n = realloc(r->items, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		r->items = n;
		r->cap = ncap;
	}
	i = upper_bound(r, start);
	memmove(&r->items[i + 1], &r->items[i], (r->n - i) * sizeof(r->items[0]));
	r->items[i] = (struct region_item){ start, end, owner };
	r->n++;
	if (i < r->hint)
		r->hint++;
	return 0;
}

int region_remove(struct region *r, u128 start)
{
	size_t i = upper_bound(r, start);

	if (i == 0 || r->items[i - 1].start != start)
		return -ENOENT;
	i--;
	memmove(&r->items[i], &r->items[i + 1], (r->n - i - 1) * sizeof(r->items[0]));
	r->n--;
	if (r->hint > i)
		r->hint = i;
	return 0;
}
