/* SPDX-License-Identifier: MIT */
#ifndef LARCH_AGENT_H
#define LARCH_AGENT_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "nl.h"
#include "prefix.h"

#define AGENT_MAX_DEPTH 32

struct agent_cfg {
	const char *host;        /* this host's name in larchd */
	uint8_t proto;           /* rtm_protocol of every route the agent owns */
	int uplink_index;        /* the interface towards the fabric; 0 if none */
	bool has_nh4, has_nh6;   /* next hops towards other groups */
	u128 nh4, nh6;
	/* Connected (on-link) prefixes, from the last kernel dump. */
	struct prefix connected[64];
	size_t nconnected;
};

struct want {
	struct nl_route r;
	char what[96];           /* why the route exists, for the log */
};

struct desired {
	struct want *v;
	size_t n, cap;
	struct prefix *proxy;    /* IPv6 proxy-NDP entries on the uplink */
	size_t nproxy, capproxy;
	unsigned missing_ifaces; /* local endpoints whose interface is not there */
};

int desired_build(const struct agent_cfg *cfg, json_t *tree, json_t *endpoints,
		  struct desired *d);
void desired_clear(struct desired *d);

struct route_stats {
	unsigned added, replaced, removed, kept_pending, errors;
};

struct reconciler;
struct reconciler *reconciler_new(void);
void reconciler_free(struct reconciler *rc);
/* Reads the connected prefixes of the families into cfg->connected. */
int reconcile_connected(struct nl *nl, struct agent_cfg *cfg);
/* Makes the kernel's Larch routes equal to d (see route.c). */
int reconcile_routes(struct reconciler *rc, struct nl *nl, const struct agent_cfg *cfg,
		     const struct desired *d, struct route_stats *st);

/* main.c: GET path from larchd; 0 with *out on 200, -1 otherwise (logged). */
struct httpc;
int get_json(struct httpc *h, const char *path, json_t **out);

/* firewall.c */
struct error;
struct policy_cache;
enum fw_kind { FW_NONE, FW_NFT, FW_IPT };
/* state: {"tenants", "blocks", "hosts", "endpoints", "policies", "namespaces"}, each
 * larchd's list answer ({"items": [...]}). Returns the ruleset (malloc'd):
 * table is the nftables table, or for iptables the prefix of chains and sets.
 * pc (may be NULL) keeps the parsed documents for the next call. */
/* pc keeps endpoint documents parsed for this host as fw_render reads them */
void fw_cache_endpoints(struct policy_cache *pc, const char *host);
/* nftables: the kernel's time (ms) in the last update the agent sent */
double fw_kernel_ms(void);
char *fw_render(json_t *state, const char *host, const char *table, enum fw_kind kind,
		size_t *nlocal, struct policy_cache *pc, bool keep, struct error *err);
/*
 * nftables, keep (with pc): fw_render also keeps what later endpoint
 * changes need (lib/policy_inc.c); it goes with the ruleset once fw_apply
 * puts that text in force, or fw_unchanged says it already is.
 * fw_apply_changes then turns endpoint and policy changes (kept.c) into
 * element changes and rewritten chains of the ruleset in force, without
 * rendering the rest: 0 done (out says what), 1 it cannot (compile whole),
 * -1 the kernel refused (errbuf; nothing changed). fw_same_as: is the
 * ruleset in force exactly text? (tests: LARCH_AGENT_CHECK_INC).
 */
struct kept_change;
struct fw_fast {
	size_t sets;        /* sets, maps and chains changed */
	size_t policies;    /* of the changes, policies */
	unsigned long msgs; /* netlink messages */
	double kernel_ms;
	double ms[4];       /* following the changes, their elements, the batch, the groups */
};
void fw_unchanged(void);
int fw_apply_changes(const struct kept_change *ch, size_t n, struct fw_fast *out, char *errbuf,
		       size_t errlen);
bool fw_same_as(const char *text, char *why, size_t len);
void fw_inc_drop(void);
/* Apply a rendered ruleset whole, or leave the previous one (-1, the
 * tools' message in errbuf). */
int fw_apply(enum fw_kind kind, const char *table, const char *text, char *errbuf, size_t errlen);
/* Is the agent's ruleset still hooked in (a resync restores it if not)? */
bool fw_present(enum fw_kind kind, const char *table);
/* Forget the ruleset in force: the next nftables apply replaces the table. */
void fw_forget(void);
/*
 * nftables: set each local endpoint's interface group to its class (the map
 * ep_class of the ruleset in force), and other `lx` interfaces' to 0. all:
 * every interface (a link dump: agent start, resync); else only where what
 * the ruleset wants differs from what the agent set last. Returns the
 * failures (logged).
 */
unsigned fw_groups(bool all);
/* After an nftables apply: the classes the ruleset in force wants, from its
 * map ep_class (rs: read over netlink; NULL: from the text nft -f took). */
struct nft_rs;
void fw_groups_wanted(const struct nft_rs *rs, const char *text);
/* Before the difference from old to rs is applied: the interfaces whose
 * group number stands for other chains in rs than in old get group 0. */
void fw_groups_before(const struct nft_rs *old, const struct nft_rs *rs);
/* nftables: a thread that sets the group of each `lx` interface as it
 * appears or changes (link events), so that a pod's interface created after
 * the pass that compiled its class is dispatched at once. 0 or -errno. */
int fw_groups_watch(void);
/* --apply FILE [--from OLD] (tests, benches): put the rendered ruleset FILE
 * in force in this network namespace as the agent does: the difference from
 * OLD (which must be the ruleset in force), or the whole ruleset; prints
 * what it did and how long it took. nftables: over netlink; iptables: ipset
 * and iptables-restore (OLD's sets: the newest generation there is). Exit
 * status. */
int fw_apply_file(enum fw_kind kind, const char *table, const char *path, const char *from);

#endif
