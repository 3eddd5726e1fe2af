/* SPDX-License-Identifier: MIT */
#ifndef LARCH_AGENT_NFT_INT_H
#define LARCH_AGENT_NFT_INT_H

/*
 * Inside the nftables netlink backend (agent/nft.h): the ruleset read back
 * (agent/nft_text.c), the batch and the sets' elements (agent/nft.c), the
 * rules' expressions (agent/nft_rule.c).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "hmap.h"
#include "nft.h"

/* ---- the text, read back ---- */

enum obj_kind { O_SET, O_MAP, O_CHAIN };

struct obj {
	enum obj_kind kind;
	char *name;
	char *type;      /* set, map: its type; chain: a base chain's line, or NULL */
	char *comment;
	bool interval;
	/* a table's copy (agent/nft_shard.c) of an object it holds as it is:
	 * item is the whole ruleset's array, not its own */
	bool borrowed;
	char **item;     /* elements, or rules */
	size_t n, cap;
};

struct nft_rs {
	char *table;
	struct obj *o;
	size_t n, cap;
	struct hmap names; /* (kind class, name) -> obj */
	/* with several tables (agent/nft_shard.c): the ruleset as each table
	 * holds it, table 0 first */
	struct nft_rs **phys;
	unsigned nphys;
};

static inline bool is_chain(const struct obj *o)
{
	return o->kind == O_CHAIN;
}

/* ---- the batch ---- */

/* What a message was about, for the error that names it. */
struct what {
	const struct obj *o;
	const char *item;  /* the rule or first element, or NULL */
	const char *op;
};

struct batch {
	struct nftnl_batch *b;
	const char *table;
	uint32_t seq0, seq, set_id;
	struct nlmsghdr *last;
	struct what *w;
	size_t nw, capw;
	struct nft_stats st;
	char *err;
	size_t errlen;
	int fail;            /* an errno: out of memory, or text it cannot read */
};

/* ---- sets and their elements ---- */

struct stype {
	const char *name;
	uint32_t key_type, key_len;
	bool map, concat;
	uint32_t byteorder; /* nft's, in the set's user data: 1 host, 2 big endian */
	int af;             /* the address part: AF_INET, AF_INET6, 0: none */
	uint32_t data_type; /* a map's: T_VERDICT, or T_DEVGROUP (4 bytes, host order) */
};

/* nft's datatype numbers; a concatenation's is (a << 6) | b */
enum { T_VERDICT = 1, T_IPADDR = 7, T_IP6ADDR = 8, T_INET_SERVICE = 13, T_DEVGROUP = 35,
       T_IFNAME = 41 };

/* One element as the kernel takes it. */
struct elem {
	uint8_t key[32];
	uint32_t flags;     /* NFT_SET_ELEM_INTERVAL_END */
	bool open;          /* an interval to the end of the address space */
	bool is_verdict;    /* a map's element: verdict (and chain) */
	bool has_data;      /* a data map's element: data (a devgroup) */
	uint32_t data;
	uint32_t verdict;
	const char *chain;  /* jump, goto: into the item's text */
};

struct range {
	uint8_t lo[16], hi[16];
};

/* agent/nft_text.c */
const struct obj *rs_find(const struct nft_rs *rs, bool chain, const char *name);
/* Index rs->o by kind class and name (rs->names empty before). -1: out of memory. */
int rs_index(struct nft_rs *rs);

/* agent/nft.c: the batch, sets and elements */
void batch_fail(struct batch *b, int e, const struct obj *o, const char *item, const char *why);
struct nlmsghdr *batch_msg(struct batch *b, uint16_t type, uint16_t flags, const struct obj *o,
			    const char *item, const char *op);
void batch_sent(struct batch *b);
extern const struct stype stypes[8];
bool ifname_key(const char *s, uint8_t key[16], const char **end);
bool nft_addr_parse(const char *s, int af, uint8_t a[16], int *len);
bool next_addr(const uint8_t *hi, size_t n, uint8_t *out);
size_t range_elems(struct range *r, size_t n, size_t alen, bool merge, struct elem *e);
struct elem *intervals(const struct obj *o, const struct stype *ty, bool merge, size_t *n,
		       const char **bad);
void elems_msgs(struct batch *b, const struct obj *o, const char *name, uint32_t id,
		uint32_t key_len, const struct elem *e, size_t n, bool add);

/* agent/nft_shard.c: how many tables for rs (old: the ruleset in force, or
 * NULL); split rs into n tables (rs->phys, kept while the count stays; none
 * for 1); is every set and chain the rules name in table p? */
#define RULES_PER_TABLE 4096
unsigned rs_tables_for(const struct nft_rs *rs, const struct nft_rs *old);
int rs_split(struct nft_rs *rs, unsigned n);
void rs_tables_free(struct nft_rs *rs);
bool names_present(const struct nft_rs *p, char *const *rule, size_t n);
/* a map from devgroup to verdict: the dispatch by class, split by table */
bool rs_dispatch_map(const struct obj *o);
/* o of rs was patched: its copies in the tables follow */
void rs_tables_sync(struct nft_rs *rs, const struct obj *o);

/* agent/nft_rule.c: one rule of chain o appended; the chain created */
void rule_add(struct batch *b, const struct obj *o, const char *line);
void chain_add(struct batch *b, const struct obj *o);

#endif
