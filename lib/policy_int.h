/* SPDX-License-Identifier: MIT */
#ifndef LARCH_POLICY_INT_H
#define LARCH_POLICY_INT_H

/*
 * Inside the policy compiler: the world it compiles from, and the state of
 * one rendering, shared by lib/policy_world.c (building the world,
 * selector matching), lib/policy_compile.c (the nftables ruleset, the
 * policy chains and sets of both backends) and lib/policy_ipt.c (the
 * iptables endpoint chains and dispatch).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "hmap.h"
#include "policy.h"

struct w_ns;

struct w_ep {
	const char *handle, *tenant, *segment, *ns, *host;
	const struct w_ns *wns; /* its namespace in the world's index (or NULL) */
	json_t *labels, *sgs;
	struct prefix a[2];
	size_t na;
	bool local;
	char ifname[16];
	/* local endpoints: the policies that select it, per direction */
	size_t *pin, *pout;
	size_t npin, npout;
};

/* A namespace that has endpoints: its range of the world's by_ns and the
 * labels of its document (NULL: none; ns_match). */
struct w_ns {
	const char *name;
	json_t *labels;
	size_t lo, hi;
};

struct w_block {
	const char *tenant, *segment;
	struct prefix cidr;
};

struct w_tenant {
	const char *name;
	enum isolation iso;
};

struct world {
	json_t *hold;              /* the inputs, borrowed from */
	const char *host;
	void (*ifname)(const char *handle, char out[16]); /* a local endpoint's interface */
	struct w_ep *eps;
	size_t neps, nlocal;
	struct w_block *blocks;
	size_t nblocks;
	struct w_tenant *tenants;
	size_t ntenants;
	struct prefix *hosts;
	size_t nhosts;
	struct policy *pols;
	size_t npols;
	struct policy *nss;
	size_t nnss;
	bool cached;               /* pols and nss belong to a policy_cache */
	/* indexes: endpoints by namespace (then handle); policies by the
	 * namespace they apply in (NULL first) */
	struct w_ep **by_ns;
	size_t *pol_by_ns;
	struct w_ns *nsl;          /* the namespaces of by_ns, in its order */
	size_t nnsl;
	struct hmap lbl;           /* label key and value -> struct w_list of endpoints */
	struct hmap pol_lbl;       /* namespace, label -> struct w_list of policies */
};

/*
 * An index's entry: the endpoints (indexes into w->eps, in by_ns order)
 * that carry one label, what a pod selector with that label can match; or
 * the policies (indexes into w->pols, in document order) of one namespace
 * whose subjects must carry one label, or the namespace's others
 * (ep_policies' candidates).
 */
struct w_list {
	char *key;                 /* [namespace '\n'] key '\n' value, or namespace '\n' */
	size_t *idx, n, cap;
};

struct policy_inc;

struct render {
	const struct world *w;
	struct policy_inc *inc; /* nftables: what to keep for later endpoint changes (or NULL) */
	bool inc_failed;        /* out of memory keeping it */
	FILE *f;            /* the ruleset (iptables: the IPv4 rules) */
	FILE *sets;         /* set declarations, written before the chains */
	unsigned nset;
	/* nftables: set number -> name, policy -> its chains' name (see
	 * stable_name) */
	char (*set_name)[24];
	char (*pol_name)[24];
	/* nftables: how many endpoint chains use policy k's ingress (2k) and
	 * egress (2k + 1) rules (policy_chains) */
	unsigned *pol_uses;
	struct hmap names;  /* the names given so far */
	bool ipt;           /* iptables-restore and ipset restore syntax */
	FILE *f6;           /* iptables: the IPv6 rules */
	const char *t;      /* iptables: the prefix of chain and set names */
	/* rendering one chain again from what a rendering kept (inc_render_chain):
	 * sets are the kept ones, none is declared; unknown: a set it needs was
	 * not kept */
	struct policy_inc *look;
	bool unknown;
	/* the policy rules written so far in the chain being written (seen_rule) */
	struct hmap seen;
	/* nftables: the TCP port rules of the chain being written, for its
	 * chain <name>t (sub_open), or NULL */
	FILE *ft;
	char *tbuf;
	size_t tlen;
	bool oom; /* a rule could not be written: the rendering fails */
};

/* iptables: a set's name; generation 0 here, the agent renumbers it when it
 * applies (ipset names are global: a new ruleset gets new sets). */
#define IPT_SET "%s-0-%u"

/* The blocks of a tenant (segment NULL) or segment, per family: set numbers. */
struct blockset {
	const char *tenant, *segment;
	unsigned s[2];
};

/* Selector peers with the same meaning share one set: key -> set number. */
struct peerset {
	char *key;
	unsigned set;
};

/* The namespaces (indexes into the world's nsl) a namespace selector
 * matches (eps_set). */
struct nsmatch {
	char *key;
	size_t *idx, n;
};

struct cache {
	struct blockset *v;
	size_t n;
	unsigned hosts[2];
	bool hosts_done;
	struct hmap peers;  /* struct peerset */
	struct hmap nss;    /* struct nsmatch */
};

/* lib/policy_world.c: selector matching and the namespace index */
bool ep_parse(json_t *o, const char *host, void (*ifname)(const char *handle, char out[16]),
	      struct w_ep *e);
int ep_policies(const struct world *w, struct w_ep *e);
bool ns_match(const struct world *w, const struct labelsel *s, const char *ns);
bool wns_match(const struct labelsel *s, const struct w_ns *ns);
/* the endpoints with label key=value (NULL: none) */
const struct w_list *label_eps(const struct world *w, const char *key, const char *value);
/* [*lo, *hi) of l's endpoints: those in namespace ns */
void label_range(const struct world *w, const struct w_list *l, const char *ns, size_t *lo,
		 size_t *hi);
bool sel_match(const struct world *w, const struct epsel *s, const struct w_ep *e);
/* [*lo, *hi): the entries 0..n-1, sorted by namespace, in namespace ns */
void ns_range(const struct world *w, size_t n, const char *(*ns_at)(const struct world *, size_t),
	      const char *ns, size_t *lo, size_t *hi);
const char *ep_ns(const struct world *w, size_t i); /* w->by_ns[i]'s namespace */

/* lib/policy_class.c: local endpoints grouped by their chains (endpoints
 * with the same policies share a chain), classes (an egress and an ingress
 * group together: an interface group number) */
struct groups {
	size_t *of;    /* endpoint index -> group */
	size_t *first; /* group -> its first endpoint */
	char (*name)[24]; /* group -> its chain's name (stable_name) */
	char **key;    /* group -> what its chain depends on (chain_key) */
	size_t n;
};

struct classes {
	size_t *of;      /* endpoint index -> class */
	size_t *eg, *in; /* class -> its egress and ingress group */
	uint32_t *id;    /* class -> its number */
	size_t n;
};

void groups_free(struct groups *g);
int group_eps(struct render *rd, bool ingress, struct groups *g);
void spoof_sets(struct render *r);
void classes_free(struct classes *c);
int classes_of(const struct world *w, const struct groups *ge, const struct groups *gi,
	       struct classes *c);
void verdict_map(FILE *f, const char *name, const struct classes *c, const size_t *grp,
		 const struct groups *g);
void class_map(FILE *f, const struct world *w, const struct classes *c);
int record_endpoints(struct render *r, const struct groups *ge, const struct groups *gi,
		     const struct classes *cl);
/* lib/policy_compile.c helpers they share */
int stable_name(struct render *r, char kind, const char *key, char out[24]);
const char *uint_str(unsigned v, char b[12]);

/* lib/policy_compile.c */
void put_comment(FILE *f, char kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define comment_line(f, ...) put_comment(f, 'n', __VA_ARGS__)
#define hash_line(f, ...) put_comment(f, '#', __VA_ARGS__)
void block_sets(struct render *r, struct cache *c, const char *tenant, const char *segment,
		unsigned out[2]);
enum isolation tenant_iso(const struct world *w, const char *tenant);

/*
 * lib/policy_inc.c: what a rendering keeps so that a later change of
 * endpoints alone can be turned into element changes without rendering
 * again (policy_inc_endpoint). Recorded while rendering (nftables only).
 */
struct inc_set {          /* a selector's set: the addresses it matched */
	char *key;            /* sel_key, family first */
	const struct epsel *sel;
	uint8_t family;
	char name[24];        /* "": it matched nothing, so it was not declared */
	struct prefix *v;     /* sorted (prefix_cmp) */
	unsigned *cnt;        /* how many endpoints gave each */
	size_t n, cap;
	bool dirty;
};

struct inc_group {        /* an endpoint chain: what it depends on, its name */
	char *key;
	char name[24];
	/* its first endpoint's policies in this direction (indexes into the
	 * world's), tenant and segment: what the chain is rendered from */
	size_t *pols, npols;
	const char *tenant, *segment;
};

struct inc_bset {         /* a tenant's or segment's blocks: its sets' names */
	char *tenant, *segment; /* owned: a policy's peer may have named them */
	char name[2][24];     /* IPv4, IPv6; "": no block, not declared */
};

struct inc_chain {        /* a chain rendered again, not yet sent */
	char name[24];
	char *text;
};

struct inc_class {
	char eg[24], in[24];  /* its egress and ingress chains */
	uint32_t id;
	size_t members;
};

struct inc_local {        /* a local endpoint, as the maps and spoof sets see it */
	char *handle;
	char ifname[16];
	struct prefix a[2];
	size_t na;
	uint32_t id;          /* its class */
};

struct policy_inc {
	struct world *w;      /* owned: the world rendered, for matching */
	char (*pol_name)[24]; /* owned: the policies' chain names ("" unused) */
	struct inc_set *sets;
	size_t nsets, capsets;
	struct hmap groups[2];   /* key -> struct inc_group: egress, ingress */
	struct inc_class *classes;
	size_t nclasses, capclasses;
	struct hmap class_by;    /* (egress, ingress name) -> struct inc_class */
	struct inc_local *locals; /* sorted by handle, as the world's endpoints */
	size_t nlocals, caplocals;
	bool locals_dirty;
	/* for a policy's change (policy_inc_policy) */
	unsigned *pol_uses;      /* owned: the rendering's (struct render) */
	bool *pol_owned;         /* w->pols[k] is a document parsed here: release it */
	struct hmap set_by;      /* key -> struct inc_set */
	struct inc_bset *bsets;
	size_t nbsets;
	char hosts[2][24];       /* the hosts' sets, when a rule used them */
	bool hosts_done;
	struct inc_chain *chains;
	size_t nchains, capchains;
};

int inc_record_set(struct policy_inc *inc, const char *key, const struct epsel *sel,
		   uint8_t family, const char *name, const struct prefix *v, size_t n);
int inc_record_group(struct policy_inc *inc, bool ingress, char *key, const char *name,
		     const struct w_ep *first);
int inc_record_class(struct policy_inc *inc, const char *eg, const char *in, uint32_t id,
		     size_t members);
int inc_index_classes(struct policy_inc *inc); /* once all are recorded */
int inc_index_sets(struct policy_inc *inc);    /* the same */
/* A kept selector set's name by key ("" empty, so not declared); NULL: not
 * kept (never evaluated). */
const char *inc_set_name(struct policy_inc *inc, const char *key);
const struct inc_bset *inc_bset_find(const struct policy_inc *inc, const char *tenant,
				     const char *segment);
int inc_record_local(struct policy_inc *inc, const struct w_ep *e, uint32_t id);
char *chain_key_of(const struct world *w, char (*pol_name)[24], const struct w_ep *e,
		   bool ingress);
/* lib/policy_sel.c: what a selector means, as text (malloc'd; equal
 * keys select the same endpoints), family first; and as words for people
 * (malloc'd; NULL when out of memory) */
char *sel_key(const struct epsel *s, uint8_t family);
/* the same into buf, when the selector kept its key and it fits (else NULL) */
char *sel_key_into(const struct epsel *s, uint8_t family, char *buf, size_t len);
char *labelsel_key(const struct labelsel *s); /* the same for a label selector */
char *sel_describe(const struct epsel *s);
/* The text of the chain that holds policy k's rules in one direction (its
 * own, or the one endpoint chain group g that uses them), rendered from what
 * inc kept. 0; 1 when a set it needs was not kept; -1 out of memory. */
int inc_render_chain(struct policy_inc *inc, size_t k, bool ingress,
		     const struct inc_group *g, char **text);

/* lib/policy_ipt.c */
void ipt_endpoint_chains(struct render *r, struct cache *c, const struct w_ep *e);
void ipt_top(struct render *r);
char *hoist_chains(const char *body);

#endif
