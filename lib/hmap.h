/* SPDX-License-Identifier: MIT */
#ifndef LARCH_HMAP_H
#define LARCH_HMAP_H

/*
 * DOC: hash map of pointers
 *
 * Open addressing with linear probing. The map stores (hash, value pointer);
 * the value holds its own key, and lookups pass an `eq` callback that compares
 * a stored value with the key sought. That keeps one allocation per object
 * (the object itself) however many maps index it: names, handles, block bases.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hmap_ent {
	uint64_t hash;
	void *val; /* NULL: empty; HMAP_TOMB: deleted */
};

struct hmap {
	struct hmap_ent *tab;
	size_t cap; /* power of two, or 0 */
	size_t len;
	size_t used; /* len + tombstones */
};

typedef bool (*hmap_eq_fn)(const void *val, const void *key);

#define HMAP_INIT { NULL, 0, 0, 0 }

uint64_t hash_str(const char *s);
/* The same purpose, eight bytes at a time, for keys that live in memory
 * only: hash_str's values name chains and sets (stable_name) and must not
 * change, this one's may. */
uint64_t hash_key(const char *s);
uint64_t hash_u128(unsigned __int128 v);
uint64_t hash_mix(uint64_t a, uint64_t b);

void *hmap_find(const struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key);
/*
 * Look a key up and, when absent, remember where it would go: *slot is then
 * valid for hmap_insert_at() as long as the map is not changed in between.
 * One probe sequence instead of two on the allocation hot path.
 */
void *hmap_lookup(const struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key, size_t *slot);
int hmap_insert_at(struct hmap *m, size_t slot, uint64_t hash, void *val);
/* Insert a value whose key is not in the map yet. -ENOMEM on failure. */
int hmap_insert(struct hmap *m, uint64_t hash, void *val);
/* Remove and return the value matching key, or NULL. */
void *hmap_remove(struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key);
void hmap_release(struct hmap *m); /* frees the table, not the values */

/* Iterate: for (size_t i = 0; (v = hmap_next(m, &i)); ) */
void *hmap_next(const struct hmap *m, size_t *iter);

#endif
