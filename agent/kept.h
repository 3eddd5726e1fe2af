/* SPDX-License-Identifier: MIT */
#ifndef LARCH_KEPT_H
#define LARCH_KEPT_H
#include <jansson.h>
#include <stdbool.h>

/* The firewall's inputs (larchd's lists), kept between passes and brought
 * up to date from the change feed (kept.c). */
struct httpc;
struct kept;

/* pc (may be NULL): the documents read whole are parsed into it, for the
 * compile that follows. */
struct policy_cache;
struct kept *kept_new(struct policy_cache *pc);
void kept_free(struct kept *k);
/* Bring k up to larchd's newest revision: the lists whole when whole is set
 * or nothing is kept yet, then the change feed. 1 when the lists changed
 * (or were read whole), 0 when they did not, -1 (logged) with k reset. */
int kept_sync(struct kept *k, struct httpc *h, bool whole);
/* The lists as fw_render reads them: {"tenants": {"items": [...]}, ...}. */
json_t *kept_state(struct kept *k);
/* The kept endpoints on host, as larchd's list answer {"revision", "items"}
 * (a new reference), or NULL on out of memory. */
json_t *kept_endpoints_on(struct kept *k, const char *host);
/* The endpoints' and policies' changes since the last kept_take, in order
 * (old and new record, either NULL; new references), and whether anything
 * else changed or the lists were read whole since (other: the changes are
 * not all there). The caller frees them with kept_changes_free. */
struct kept_change {
	json_t *old, *neu;
	bool policy;   /* a document of the policies' list, not an endpoint */
};
void kept_take(struct kept *k, struct kept_change **ch, size_t *n, bool *other);
void kept_changes_free(struct kept_change *ch, size_t n);
/* How many times the lists were read whole. */
unsigned long kept_loads(const struct kept *k);
#endif
