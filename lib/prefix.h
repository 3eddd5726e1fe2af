/* SPDX-License-Identifier: MIT */
#ifndef LARCH_PREFIX_H
#define LARCH_PREFIX_H

/*
 * DOC: addresses and prefixes
 *
 * One representation for both families: the address is an unsigned 128-bit
 * integer; an IPv4 address lives in the low 32 bits. All arithmetic (carving a
 * group out of its parent, the n-th block of a prefix, an address's offset in
 * its block) is integer arithmetic on that value, so the allocator never
 * branches on the family except to know how many bits there are.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct error;

typedef unsigned __int128 u128;

struct prefix {
	u128 addr;     /* host bits are always zero */
	uint8_t family; /* 4 or 6 */
	uint8_t len;   /* 0..32 or 0..128 */
};

/* Big enough for any address or prefix this module prints, with a NUL. */
#define PREFIX_STRLEN 52

static inline unsigned prefix_bits(uint8_t family)
{
	return family == 4 ? 32 : 128;
}

/* Host part of the prefix, as a mask: 2^(bits-len) - 1. */
u128 prefix_hostmask(const struct prefix *p);

/* Number of addresses minus one (so a /0 of IPv6 fits). */
static inline u128 prefix_last_offset(const struct prefix *p)
{
	return prefix_hostmask(p);
}

static inline u128 prefix_last(const struct prefix *p)
{
	return p->addr | prefix_hostmask(p);
}

/*
 * Parse "10.1.0.0/16", "fd10::/48". With PREFIX_F_STRICT, host bits must be
 * zero ("10.1.0.1/16" is an error naming the right network); without it they
 * are masked off. A bare address parses as /32 or /128. field names the JSON
 * field for the error object.
 */
enum { PREFIX_F_STRICT = 1U << 0 };
int prefix_parse(const char *s, struct prefix *p, unsigned flags,
		 const char *field, struct error *err);

/* Parse a bare address (no "/len"); p->len is set to 32 or 128. */
int addr_parse(const char *s, struct prefix *p, const char *field, struct error *err);

/* Format; buf must hold PREFIX_STRLEN bytes. Returns buf. */
char *prefix_fmt(const struct prefix *p, char *buf);
char *addr_fmt(uint8_t family, u128 addr, char *buf);

bool prefix_contains(const struct prefix *outer, const struct prefix *inner);
bool prefix_contains_addr(const struct prefix *p, uint8_t family, u128 addr);
bool prefix_overlaps(const struct prefix *a, const struct prefix *b);
int prefix_cmp(const struct prefix *a, const struct prefix *b);

/*
 * The longest prefix length whose prefix holds at least `count` addresses,
 * but never longer than max_len (so a group is never smaller than one block).
 * Returns -1 when even a /0 of the family cannot hold them.
 */
int prefix_len_for_count(uint8_t family, u128 count, unsigned max_len);

/* 2^(bits-len) as a u128, saturating at UINT128 max for an IPv6 /0. */
u128 prefix_size(const struct prefix *p);

#endif
