/* SPDX-License-Identifier: MIT */
#ifndef LARCH_MODEL_H
#define LARCH_MODEL_H

/*
 * DOC: the IPAM model
 *
 * The whole address model lives in memory; the store holds its durable copy.
 * A mutation (model_*_create, _delete, _bind, ...) checks everything first,
 * then changes the model and appends the store operations that make the change
 * durable to a `struct mtxn`. On any error the model is exactly as it was and
 * the mtxn holds nothing new. The caller (larchd) commits the mtxn and only
 * then acknowledges; it serialises mutations with one lock around the model.
 *
 * The hierarchy, and why every level aggregates:
 *
 *   space (CIDR, block size)
 *     region of root groups -> group prefix (per space) -> child group prefixes
 *                                                      -> blocks of the group's hosts
 *   block: owned by exactly (host, tenant/segment) in one space
 *     endpoint addresses: one per space of its segment, inside a block of
 *     (its host, its segment)
 *
 * Blocks are claimed lowest-first in the host's group prefix (struct region),
 * so an address tells by prefix alone its group, host, tenant and segment.
 * An emptied block cools down (no allocations) before going back to its group;
 * inside a block, addresses are handed out next-fit so a released address is
 * not reused at once.
 *
 * Keys in the store: /larch/{spaces,groups,hosts,tenants}/NAME,
 * /larch/segments/TENANT/NAME, /larch/blocks/SPACE/ADDR-LEN,
 * /larch/endpoints/HANDLE. Values are JSON (lib/model_json.c).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "hmap.h"
#include "prefix.h"
#include "region.h"
#include "store.h"

struct error;

#define MODEL_MAX_SPACES 32
#define MODEL_NAME_MAX 63
#define MODEL_HANDLE_MAX 253

struct space {
	char *name;
	struct prefix cidr;
	uint8_t block_len;
	uint8_t idx;              /* in model->spaces */
	struct prefix *reserved;  /* sorted */
	size_t nreserved;
	struct region root;       /* root groups' prefixes */
	struct hmap blocks;       /* block base address -> struct block */
	size_t nblocks_active, nblocks_cooling;
};

struct group {
	char *name;
	struct group *parent;
	u128 capacity;            /* addresses; 0: default sizing */
	char *labels;             /* compact JSON object or NULL */
	struct region *regions;   /* [MODEL_MAX_SPACES]; .prefix.len == 0xff: none */
	size_t nchildren, nhosts;
	size_t order;             /* creation order, for stable listings */
};

struct host {
	char *name;
	struct prefix address;
	struct group *group;
	char *labels;
	size_t nendpoints;
	size_t nblocks;
};

struct tenant {
	char *name;
	char *labels;
	size_t nsegments;
	uint8_t isolation;        /* enum isolation (lib/policy.h): default for ingress */
};

/* A policy document (Policy, NetworkPolicy, SecurityGroup, Namespace),
 * validated by lib/policy.c, kept as its canonical JSON. */
struct doc {
	char *id;                 /* "Kind/name" or "NetworkPolicy/namespace/name" */
	char *value;              /* compact JSON, sorted keys */
	uint8_t kind;             /* enum pol_kind */
};

struct segment {
	struct tenant *tenant;
	char *name;
	char *key;                /* "tenant/name" */
	uint32_t spaces;          /* bit i: model->spaces[i] */
	char *labels;
	size_t nendpoints;
};

enum block_state { BLOCK_ACTIVE = 1, BLOCK_COOLING = 2 };

struct bucket;

struct block {
	struct space *space;
	struct prefix cidr;
	struct group *group;
	struct host *host;
	struct segment *segment;
	struct bucket *bucket;
	enum block_state state;
	int64_t cool_until;       /* unix seconds, when cooling */
	uint32_t size;            /* addresses in the block */
	uint32_t used;            /* allocated, not counting reserved */
	uint32_t nreserved;
	uint32_t cursor;          /* next-fit: where the next search starts */
	uint64_t *bits;           /* allocated or reserved; points at inline_bits when size <= 64 */
	uint64_t inline_bits;
	struct block *avail_prev, *avail_next; /* bucket's blocks with room */
	struct block *cool_prev, *cool_next;   /* model's cooling list, oldest first */
	struct block *bnext, *bprev;            /* bucket's list of all its blocks */
};

enum ep_kind { EP_OTHER = 0, EP_POD, EP_VM, EP_CONTAINER };

struct ep_addr {
	struct block *block;
	uint32_t off;             /* offset in the block */
};

struct endpoint {
	struct segment *segment;
	struct host *host;        /* NULL: not bound yet (deferred) */
	struct endpoint *parent;
	char *attrs;              /* compact JSON object: name, namespace, interface, mac, labels */
	uint32_t nchildren;
	uint8_t kind;
	uint8_t naddrs;
	struct ep_addr *addrs;    /* inline_addrs when naddrs <= 2 */
	struct ep_addr inline_addrs[2];
	char handle[];            /* the caller's handle, allocated with the struct */
};

struct model_options {
	int64_t block_cooldown;   /* seconds */
	int64_t (*now)(void);     /* clock, for tests; NULL: time(NULL) */
};

struct model {
	struct model_options opt;
	struct space *spaces[MODEL_MAX_SPACES];
	size_t nspaces;
	struct hmap groups, hosts, tenants, segments, endpoints, buckets, docs;
	size_t ngroups_created;
	size_t nendpoints, nblocks;
	struct block *cool_head, *cool_tail;
	uint64_t allocations, releases; /* counters for metrics */
};

/* Store operations that make one mutation durable; owns its strings. */
struct mtxn {
	struct store_op *ops;
	size_t n, cap;
	bool failed; /* out of memory while building: the caller must not commit */
};

void mtxn_init(struct mtxn *tx);
void mtxn_release(struct mtxn *tx);
/* Take ownership of key and value (malloc'd). */
void mtxn_put(struct mtxn *tx, char *key, char *value);
void mtxn_del(struct mtxn *tx, char *key);

/* Specs: what a create request (or a stored value) says. Strings are borrowed. */
struct space_spec {
	const char *name;
	struct prefix cidr;
	int block_len;            /* -1: default */
	struct prefix *reserved;
	size_t nreserved;
};

struct group_spec {
	const char *name;
	const char *parent;
	u128 capacity;
	char *labels;
	/* loading only: the stored prefixes, by space name */
	json_t *prefixes;
};

struct host_spec {
	const char *name;
	struct prefix address;
	const char *group;
	char *labels;
};

struct tenant_spec {
	const char *name;
	char *labels;
	int isolation;            /* enum isolation; -1: not given (segment) */
};

struct segment_spec {
	const char *tenant;
	const char *name;
	const char **spaces;
	size_t nspaces;
	bool spaces_given;
	char *labels;
};

struct endpoint_spec {
	const char *handle;
	const char *tenant;
	const char *segment;
	const char *host;         /* NULL: deferred */
	const char *parent;
	uint8_t kind;
	char *attrs;              /* compact JSON object, NULL when none */
	/* loading only: the stored addresses [{space, address}] */
	json_t *addresses;
};

struct model *model_new(const struct model_options *opt);
void model_free(struct model *m);
int64_t model_now(const struct model *m);

/* Lookups (NULL when absent). */
struct space *model_space(const struct model *m, const char *name);
struct group *model_group(const struct model *m, const char *name);
struct host *model_host(const struct model *m, const char *name);
struct tenant *model_tenant(const struct model *m, const char *name);
struct segment *model_segment(const struct model *m, const char *tenant, const char *name);
struct endpoint *model_endpoint(const struct model *m, const char *handle);

/*
 * Mutations. Each returns 0, 1 ("already there, identical": nothing changed,
 * the request was idempotent) or -errno with err filled. tx may be NULL (no
 * store operations wanted: benchmarks, loading).
 */
int model_space_create(struct model *m, const struct space_spec *s, struct mtxn *tx, struct error *err);
int model_space_delete(struct model *m, const char *name, struct mtxn *tx, struct error *err);
int model_group_create(struct model *m, const struct group_spec *s, struct mtxn *tx, struct error *err);
int model_group_delete(struct model *m, const char *name, struct mtxn *tx, struct error *err);
int model_host_create(struct model *m, const struct host_spec *s, struct mtxn *tx, struct error *err);
int model_host_delete(struct model *m, const char *name, struct mtxn *tx, struct error *err);
int model_tenant_create(struct model *m, const struct tenant_spec *s, struct mtxn *tx, struct error *err);
int model_tenant_delete(struct model *m, const char *name, struct mtxn *tx, struct error *err);
int model_segment_create(struct model *m, const struct segment_spec *s, struct mtxn *tx, struct error *err);
int model_segment_delete(struct model *m, const char *tenant, const char *name, struct mtxn *tx, struct error *err);

/* Allocate (or find, idempotently) an endpoint; *out points at it. */
int model_endpoint_create(struct model *m, const struct endpoint_spec *s, struct mtxn *tx,
			  struct endpoint **out, struct error *err);
int model_endpoint_delete(struct model *m, const char *handle, struct mtxn *tx, struct error *err);
/* host NULL: unbind. */
int model_endpoint_bind(struct model *m, const char *handle, const char *host, struct mtxn *tx,
			struct endpoint **out, struct error *err);
/* Replace the attributes named in attrs (a JSON object of kind/name/namespace/interface/mac/labels). */
int model_endpoint_patch(struct model *m, const char *handle, json_t *attrs, struct mtxn *tx,
			 struct endpoint **out, struct error *err);

/* Tenant settings that can change: isolation (NULL: keep). */
int model_tenant_patch(struct model *m, const char *name, const char *isolation, struct mtxn *tx,
		       struct error *err);

/* Policy documents: create or replace (0 created, 1 identical, 2 replaced). */
int model_doc_put(struct model *m, json_t *doc, struct mtxn *tx, const struct doc **out,
		  struct error *err);
int model_doc_delete(struct model *m, const char *id, struct mtxn *tx, struct error *err);
const struct doc *model_doc(const struct model *m, const char *id);

/* Return expired cooling blocks to their groups (callers run it before
 * allocating, so expired blocks are reused). Returns how many. */
size_t model_sweep(struct model *m, struct mtxn *tx);

/*
 * Decode a request body (stored == false) or a stored value (stored == true:
 * also accepts the stored-only fields) into a spec, strictly: unknown fields
 * and bad values are errors naming the field. The spec borrows strings from
 * obj and owns what the decoder allocated: release it with spec_release().
 */
int space_spec_decode(json_t *obj, bool stored, struct space_spec *sp, struct error *err);
int group_spec_decode(json_t *obj, bool stored, struct group_spec *sp, struct error *err);
int host_spec_decode(json_t *obj, bool stored, struct host_spec *sp, struct error *err);
int tenant_spec_decode(json_t *obj, bool stored, struct tenant_spec *sp, struct error *err);
int segment_spec_decode(json_t *obj, bool stored, struct segment_spec *sp, struct error *err);
int endpoint_spec_decode(json_t *obj, bool stored, struct endpoint_spec *sp, struct error *err);
/* Check an endpoint PATCH body (kind name namespace interface mac labels). */
int endpoint_patch_check(json_t *obj, struct error *err);
void space_spec_release(struct space_spec *sp);
void group_spec_release(struct group_spec *sp);
void host_spec_release(struct host_spec *sp);
void tenant_spec_release(struct tenant_spec *sp);
void segment_spec_release(struct segment_spec *sp);
void endpoint_spec_release(struct endpoint_spec *sp);

/* API representations: new references, NULL on out of memory. */
json_t *space_json(const struct model *m, const struct space *s);
json_t *group_json(const struct model *m, const struct group *g);
json_t *host_json(const struct model *m, const struct host *h);
json_t *tenant_json(const struct model *m, const struct tenant *t);
json_t *segment_json(const struct model *m, const struct segment *sg);
json_t *block_json(const struct model *m, const struct block *b);
json_t *endpoint_json(const struct model *m, const struct endpoint *e);
json_t *model_tree_json(const struct model *m);

/* Load the whole model from the store (start-up). */
int model_load(struct model *m, struct store *st, const struct store_ops *ops, struct error *err);

/* Check every invariant of the model (tests, and `larchd --check`); 0 or -EUCLEAN with err. */
int model_check(const struct model *m, struct error *err);

/* Block helpers. */
struct block *model_block_at(const struct space *s, u128 addr);
static inline u128 block_addr(const struct block *b, uint32_t off)
{
	return b->cidr.addr + off;
}

/* Names. */
int name_check(const char *field, const char *name, struct error *err);
int handle_check(const char *field, const char *handle, struct error *err);
const char *ep_kind_name(uint8_t kind);
int ep_kind_parse(const char *s, uint8_t *kind);

#endif
