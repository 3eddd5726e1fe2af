/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

static char tomb_;
#define HMAP_TOMB ((void *)&tomb_)

uint64_t hash_mix(uint64_t a, uint64_t b)
{
	/* splitmix64 finaliser over a combination: cheap and well spread */
	uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ULL;
	}
	return hash_mix(h, 0);
}

uint64_t hash_key(const char *s)
{
	size_t n = strlen(s);
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n, w;

	for (; n >= 8; n -= 8, s += 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, s, n);
	return hash_mix(h, w);
}

uint64_t hash_u128(unsigned __int128 v)
{
	return hash_mix((uint64_t)v, (uint64_t)(v >> 64));
}

void *hmap_find(const struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key)
{
	size_t mask, i;

	if (!m->cap)
		return NULL;
	mask = m->cap - 1;
	for (i = hash & mask;; i = (i + 1) & mask) {
		struct hmap_ent *e = &m->tab[i];

		if (!e->val)
			return NULL;
		if (e->val != HMAP_TOMB && e->hash == hash && eq(e->val, key))
			return e->val;
	}
}

static int grow(struct hmap *m)
{
	size_t ncap = m->cap ? m->cap : 16;
	struct hmap_ent *ntab, *old = m->tab;
	size_t oldcap = m->cap;

	/* keep live entries under a quarter after growing: probes stay short */
	while (m->len * 4 >= ncap)
		ncap *= 2;
	ntab = calloc(ncap, sizeof(*ntab));
	if (!ntab)
		return -ENOMEM;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].val && old[i].val != HMAP_TOMB) {
			size_t j = old[i].hash & (ncap - 1);

			while (ntab[j].val)
				j = (j + 1) & (ncap - 1);
			ntab[j] = old[i];
		}
	}
	free(old);
	m->tab = ntab;
	m->cap = ncap;
	m->used = m->len;
	return 0;
}

int hmap_insert(struct hmap *m, uint64_t hash, void *val)
{
	size_t mask, i;

	if ((m->used + 1) * 2 >= m->cap) {
		int r = grow(m);

		if (r < 0)
			return r;
	}
	mask = m->cap - 1;
	for (i = hash & mask; m->tab[i].val && m->tab[i].val != HMAP_TOMB; i = (i + 1) & mask)
		;
	if (!m->tab[i].val)
		m->used++;
	m->tab[i].hash = hash;
	m->tab[i].val = val;
	m->len++;
	return 0;
}

void *hmap_remove(struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key)
{
	size_t mask, i;

	if (!m->cap)
		return NULL;
	mask = m->cap - 1;
	for (i = hash & mask;; i = (i + 1) & mask) {
		struct hmap_ent *e = &m->tab[i];
		void *v = e->val;

		if (!v)
			return NULL;
		if (v != HMAP_TOMB && e->hash == hash && eq(v, key)) {
			e->val = HMAP_TOMB;
			m->len--;
			return v;
		}
	}
}

void *hmap_lookup(const struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key, size_t *slot)
{
	size_t mask, i, tomb = SIZE_MAX;

	*slot = SIZE_MAX;
	if (!m->cap)
		return NULL;
	mask = m->cap - 1;
	for (i = hash & mask;; i = (i + 1) & mask) {
		struct hmap_ent *e = &m->tab[i];

		if (!e->val) {
			*slot = tomb != SIZE_MAX ? tomb : i;
			return NULL;
		}
		if (e->val == HMAP_TOMB) {
			if (tomb == SIZE_MAX)
				tomb = i;
		} else if (e->hash == hash && eq(e->val, key)) {
			return e->val;
		}
	}
}

int hmap_insert_at(struct hmap *m, size_t slot, uint64_t hash, void *val)
{
	/* a slot from before a needed growth is useless: insert the slow way */
	if (slot == SIZE_MAX || (m->used + 1) * 2 >= m->cap)
		return hmap_insert(m, hash, val);
	if (!m->tab[slot].val)
		m->used++;
	m->tab[slot].hash = hash;
	m->tab[slot].val = val;
	m->len++;
	return 0;
}

void *hmap_next(const struct hmap *m, size_t *iter)
{
	while (*iter < m->cap) {
		void *v = m->tab[(*iter)++].val;

		if (v && v != HMAP_TOMB)
			return v;
	}
	return NULL;
}

void hmap_release(struct hmap *m)
{
	free(m->tab);
	m->tab = NULL;
	m->cap = m->len = m->used = 0;
}
