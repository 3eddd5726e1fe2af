/* SPDX-License-Identifier: MIT */
#ifndef LARCH_AGENT_NFT_H
#define LARCH_AGENT_NFT_H

/*
 * DOC: the nftables backend over netlink
 *
 * The compiler renders an `nft -f` text (lib/policy_compile.c). The agent
 * does not hand that text to nft: it reads it back into objects (sets, maps,
 * chains and their rules; nft_rs_parse) and sends them to the kernel itself
 * as one nf_tables netlink batch: one transaction, in force whole or not at
 * all. With the ruleset in force known, the batch carries only the
 * difference: elements added and deleted, chains rewritten, objects created
 * or deleted. nft_rs_parse() knows exactly the nft syntax the compiler writes;
 * anything else is refused with the line it could not read, and the agent
 * then falls back to `nft -f`.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nft_rs;

/* Read a rendered ruleset; NULL (err says which line) when it is not in the
 * dialect the compiler writes, or out of memory. */
struct nft_rs *nft_rs_parse(const char *text, char *err, size_t errlen);
void nft_rs_free(struct nft_rs *rs);

struct nft_stats {
	unsigned long msgs;        /* netlink messages in the batch */
	unsigned long bytes;       /* the batch's size */
	unsigned long sets, chains, rules, elems; /* what it created (elements: added) */
	unsigned long deleted;     /* elements, rules (flushed chains), chains, sets deleted */
	bool replaced;             /* the whole table (not a difference) */
	double build_ms, kernel_ms; /* building the batch; sending it until the answer */
};

/*
 * Put rs in force in one transaction. old: the ruleset in force (the last
 * one this process applied): send only the difference; NULL: replace the
 * whole table. 0; -1 with err (the kernel's answer and the object it was
 * about) and nothing changed; -2 when a rule, type or element is not in the
 * dialect this backend reads (err names it; nothing sent). st (may be NULL)
 * says what the batch held.
 */
int nft_rs_apply(const struct nft_rs *old, const struct nft_rs *rs, struct nft_stats *st,
		 char *err, size_t errlen);

/*
 * Change the elements of some sets and maps, and the rules of some chains,
 * of rs, the ruleset in force, in one transaction: each patch gives all of
 * a set's elements as they are to be, or a chain's text (lib/policy_inc.c).
 * On success (0) rs holds them (the patches' items are swapped with the old
 * ones); -1 with err when the kernel refused (nothing changed); -2 when a
 * patch names no set or chain of rs, an interval set, or would change more
 * than elements and rules (nothing sent).
 */
struct policy_patch;
int nft_rs_patch(struct nft_rs *rs, struct policy_patch *p, size_t n, struct nft_stats *st,
		 char *err, size_t errlen);

/* Do a and b hold the same objects, items in the same order? When not, why
 * names the first difference. */
bool nft_rs_same(const struct nft_rs *a, const struct nft_rs *b, char *why, size_t len);

/* With several tables (nft_set_tables): does kept, the ruleset in force,
 * hold in each table what fresh, split now, would? */
bool nft_rs_same_tables(struct nft_rs *fresh, const struct nft_rs *kept, char *why, size_t len);

/* The elements of set or map `name` as the text gives them (NULL, *n 0: no
 * such set). */
char *const *nft_rs_map(const struct nft_rs *rs, const char *name, size_t *n);

/* A decimal number of 32 bits (a devgroup, as nft lists it), after any
 * blanks, into out; where it ends in *end. */
bool nft_u32_parse(const char *s, uint32_t *out, const char **end);

/*
 * Spread the ruleset over n tables (a power of two, at most 16; 1: the one
 * table the compiler writes; 0, the default: by the number of rules, a
 * table per 4,096), so that a rule added costs the kernel's check of one
 * table only (agent/nft_shard.c). When the count changes the ruleset is
 * replaced whole, and the agent's tables beyond the count are deleted.
 */
void nft_set_tables(unsigned n);
unsigned nft_tables(void);
/* The tables rs is spread over (1: not split). */
unsigned nft_rs_tables(const struct nft_rs *rs);
/* Split rs as applying it to nothing would (--apply --from OLD takes OLD
 * for what is in force). -1: out of memory. */
int nft_rs_split_new(struct nft_rs *rs);
#define NFT_TABLES_MAX 16
/* Table k of them: `table`, then `table_k` (malloc'd; NULL: out of memory). */
char *nft_table_name(const char *table, unsigned k);

/* Does table inet `table` exist in this network namespace? */
bool nft_table_present(const char *table);

#endif
