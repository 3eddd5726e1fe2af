/* SPDX-License-Identifier: MIT */
#ifndef LARCH_POLICY_H
#define LARCH_POLICY_H

/*
 * DOC: network policy: the documents, one model of them, and the compiler
 *
 * Three formats come in (docs/policy.md) and become one struct policy:
 *   - "Policy": Larch's own; applies to a tenant, segment, namespace, label
 *     selector or endpoint; peers are tenants, segments, selectors, CIDRs
 *     with exceptions, or the hosts;
 *   - "NetworkPolicy" (networking.k8s.io/v1), as written for kubectl;
 *   - "SecurityGroup" (OpenStack): applies to the endpoints that list it in
 *     their security_groups, in both directions.
 * "Namespace" documents carry the labels that namespaceSelectors match.
 *
 * The compiler (policy_world_*, policy_render_nft) takes everything larchd
 * holds (tenants, blocks, hosts, endpoints, documents) and the name of one
 * host, and writes the firewall ruleset for that host's endpoints only.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prefix.h"

struct error;

enum pol_kind { PK_POLICY, PK_NETPOL, PK_SECGROUP, PK_NAMESPACE };
enum sel_op { SEL_IN, SEL_NOTIN, SEL_EXISTS, SEL_NOTEXISTS };
enum isolation { ISO_SEGMENT = 0, ISO_TENANT, ISO_NONE };

struct sel_expr {
	char *key;
	enum sel_op op;
	char **values;
	size_t nvalues;
};

/* A Kubernetes label selector; no expressions selects everything. */
struct labelsel {
	struct sel_expr *e;
	size_t n;
};

/* Which endpoints: every field given must hold. */
struct epsel {
	char *tenant, *segment;   /* NULL: any */
	char *ns;                 /* the endpoint's namespace; NULL: any */
	bool has_pods;            /* endpoint labels must match pods */
	struct labelsel pods;
	bool has_nss;             /* the endpoint's Namespace labels must match nss */
	struct labelsel nss;
	char *sg;                 /* member of this security group */
	char *handle;             /* exactly this endpoint */
	char *key;                /* sel_key without the family, kept by
				   * policy_parse (NULL: computed each time) */
};

enum peer_type { PEER_EPS, PEER_CIDR, PEER_TENANT, PEER_SEGMENT, PEER_HOSTS };

struct peer {
	enum peer_type type;
	struct epsel sel;         /* PEER_EPS */
	struct prefix cidr;       /* PEER_CIDR */
	struct prefix *except;
	size_t nexcept;
	char *tenant, *segment;   /* PEER_TENANT, PEER_SEGMENT */
};

struct port {
	uint8_t proto;            /* 0 any, 1 ICMP (and ICMPv6), 6 TCP, 17 UDP, 132 SCTP */
	uint16_t lo, hi;          /* 0: any port */
};

/* Allows traffic when a peer (any, if there are none) and a port (any, if
 * there are none) match, in the family given (0: both). */
struct rule {
	uint8_t family;
	struct peer *peers;
	size_t npeers;
	struct port *ports;
	size_t nports;
};

struct policy {
	enum pol_kind kind;
	char *ns, *name;          /* ns: NetworkPolicy only */
	struct epsel applies;
	bool ingress, egress;     /* the directions it isolates */
	struct rule *in, *out;
	size_t nin, nout;
	/* Namespace documents */
	json_t *labels;
	char *id;                 /* policy_id, kept by policy_parse */
};

/* policy_parse: each selector of p keeps its key (epsel.key); -1 out of memory */
int sel_keys_keep(struct policy *p);
/* Decode any of the four kinds strictly; the error names the field. */
int policy_parse(json_t *doc, struct policy *p, struct error *err);
/* The same for a new document (a request): label keys and values must
 * also follow Kubernetes' syntax (stored documents load as they are). */
int policy_parse_new(json_t *doc, struct policy *p, struct error *err);
void policy_release(struct policy *p);
const char *pol_kind_name(enum pol_kind k);
/* "Kind/name" or "NetworkPolicy/namespace/name" (malloc'd). */
char *policy_id(const struct policy *p);
int isolation_parse(const char *s, enum isolation *iso);
const char *isolation_name(enum isolation iso);

/* ---- compiling for one host ---- */

struct world;

/*
 * Parsed policy and namespace documents kept from one policy_world call to
 * the next, keyed by the JSON object itself: a caller that hands the same
 * (unchanged, never modified) object again gets it parsed only once. Each
 * call drops the documents it was not given.
 */
struct policy_cache;
struct policy_cache *policy_cache_new(void);
void policy_cache_free(struct policy_cache *pc);
/* Endpoint documents too, as policy_world reads them for this host (with
 * this interface naming): parsed once, when policy_cache_ep is given them
 * (as they arrive) or at the first policy_world call that has them, and
 * kept while they are in the lists. -1: out of memory. */
void policy_cache_endpoints(struct policy_cache *pc, const char *host,
			    void (*ifname)(const char *handle, char out[16]));
int policy_cache_ep(struct policy_cache *pc, json_t *doc);
/* Document doc parsed, through pc: its ID ("Kind/name" or
 * "NetworkPolicy/namespace/name", malloc'd), or NULL with err set. The
 * next policy_world call finds doc parsed. */
char *policy_cache_id(struct policy_cache *pc, json_t *doc, struct error *err);

/*
 * From larchd's lists (each the "items" array of its GET): /v1/tenants,
 * /v1/blocks, /v1/hosts, /v1/endpoints, /v1/policies, /v1/namespaces.
 * ifname(handle) names the host side of a local endpoint's interface.
 * pc (may be NULL): a world built with it is valid until the next
 * policy_world call with the same cache, or until policy_cache_free.
 */
struct world *policy_world(json_t *tenants, json_t *blocks, json_t *hosts, json_t *endpoints,
			   json_t *policies, json_t *namespaces, const char *host,
			   void (*ifname)(const char *handle, char out[16]),
			   struct policy_cache *pc, struct error *err);
void policy_world_free(struct world *w);
/* How many local endpoints the ruleset covers. */
size_t policy_world_local(const struct world *w);

/* The nftables ruleset (one `nft -f` transaction that replaces table inet
 * TABLE), malloc'd; NULL on out of memory. */
char *policy_render_nft(const struct world *w, const char *table);
/*
 * The iptables ruleset, malloc'd (NULL on out of memory): after a line
 * "#@ ipset" the `ipset restore` script of the sets (named PREFIX-0-N: the
 * agent renumbers generation 0 when it applies), then after "#@ iptables"
 * and "#@ ip6tables" the `iptables-restore --noflush` inputs of the chains
 * PREFIX-*, entered from PREFIX-forward and PREFIX-input.
 */
char *policy_render_ipt(const struct world *w, const char *prefix);

/*
 * Incremental: a change of endpoints alone (no policy, namespace, tenant,
 * block or host changed) only adds and removes elements of sets and maps
 * the last rendering declared, as long as no set becomes empty or stops
 * being empty, and a local endpoint comes into or leaves a class that has
 * other members. policy_render_nft_inc renders as policy_render_nft and
 * keeps, in *inc, what such changes need; *inc owns w from then on (NULL,
 * and w still the caller's, when it returns NULL). policy_inc_endpoint
 * applies one endpoint's change (old and new document, either NULL):
 * 0 when done, 1 when it needs a full rendering instead, -1 out of memory;
 * after 1 or -1, inc is of no further use (free it). policy_inc_patches
 * gives the sets and maps changed since it was last called, each with all
 * of its elements in the order a full rendering writes them. The result
 * equals what policy_render_nft would render from the changed world
 * (the agent checks that in its tests: LARCH_AGENT_CHECK_INC).
 */
struct policy_inc;
struct policy_patch {
	char name[24];
	char **items;   /* the elements as the nft text writes them */
	size_t n;
	char *chain;    /* or: the chain's text, as the nft text writes it */
};
char *policy_render_nft_inc(struct world *w, const char *table, struct policy_inc **inc);
int policy_inc_endpoint(struct policy_inc *inc, json_t *old, json_t *neu);
int policy_inc_policy(struct policy_inc *inc, json_t *old, json_t *neu);
int policy_inc_patches(struct policy_inc *inc, struct policy_patch **out, size_t *n);
void policy_patches_free(struct policy_patch *p, size_t n);
void policy_inc_free(struct policy_inc *inc);

#endif
