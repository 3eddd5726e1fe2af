/* SPDX-License-Identifier: MIT */
#ifndef LARCH_REGION_H
#define LARCH_REGION_H

/*
 * DOC: regions: what is taken inside a prefix
 *
 * A region is a prefix (a space's CIDR, or a group's prefix in one space) and
 * the sorted, non-overlapping list of the ranges carved out of it: the
 * prefixes of child groups and the blocks claimed by hosts. Finding room is
 * "the lowest aligned range of the wanted size that overlaps nothing", which
 * is what keeps every level aggregated: a child is always inside its parent.
 *
 * Claims are lowest-first, so most claims land past the last item; `hint`
 * remembers how far from the start the region is packed solid, so a claim
 * scans only the part that may have holes.
 */

#include <stdbool.h>
#include <stddef.h>

#include "prefix.h"

struct region_item {
	u128 start;
	u128 end; /* inclusive */
	void *owner;
};

struct region {
	struct prefix prefix;
	struct region_item *items;
	size_t n, cap;
	size_t hint; /* items[0..hint) leave no gap between each other and the start */
};

/* Return true to refuse a candidate range (e.g. every address in it reserved). */
typedef bool (*region_skip_fn)(u128 start, u128 end, void *arg);

void region_init(struct region *r, const struct prefix *p);
void region_release(struct region *r);

/*
 * Lowest free range of prefix length `len` (same family as the region).
 * 0 and *start set, or -ENOSPC.
 */
int region_find(struct region *r, unsigned len, region_skip_fn skip, void *arg, u128 *start);

/* Add [start, end]; -EEXIST if it overlaps an item, -ERANGE if outside, -ENOMEM. */
int region_insert(struct region *r, u128 start, u128 end, void *owner);

/* Remove the item starting at start; -ENOENT if none. */
int region_remove(struct region *r, u128 start);

/* The item overlapping [start, end], or NULL. */
struct region_item *region_overlap(const struct region *r, u128 start, u128 end);

#endif
