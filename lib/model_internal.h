/* SPDX-License-Identifier: MIT */
#ifndef LARCH_MODEL_INTERNAL_H
#define LARCH_MODEL_INTERNAL_H

/* Shared between lib/model*.c only. */

#include <stdarg.h>

#include "model.h"

/* (host, segment, space): the blocks that may serve an allocation. */
struct bucket {
	struct host *host;
	struct segment *segment;
	struct space *space;
	struct block *avail;   /* active blocks with room */
	struct block *blocks;  /* all its blocks (bnext/bprev) */
	size_t nblocks;
};

char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xstrdup(const char *s);

/* Store keys (malloc'd). */
char *key_space(const char *name);
char *key_group(const char *name);
char *key_host(const char *name);
char *key_tenant(const char *name);
char *key_segment(const struct segment *sg);
char *key_block(const struct block *b);
char *key_endpoint(const char *handle);

/* Stored values (malloc'd compact JSON). */
char *space_value(const struct space *s);
char *group_value(const struct model *m, const struct group *g);
char *host_value(const struct host *h);
char *tenant_value(const struct tenant *t);
char *segment_value(const struct model *m, const struct segment *sg);
char *block_value(const struct block *b);
char *endpoint_value(const struct model *m, const struct endpoint *e);

void endpoint_free(struct endpoint *e);
void model_docs_free(struct model *m);
void bucket_free(struct bucket *b);
void host_drop_blocks(struct model *m, struct host *h, struct mtxn *tx);
void segment_drop_blocks(struct model *m, struct segment *sg, struct mtxn *tx);
int model_endpoint_index(struct model *m, struct endpoint *e);
struct endpoint *model_endpoint_lookup(const struct model *m, const char *handle,
				       uint64_t *hash, size_t *slot);
void model_endpoint_unindex(struct model *m, struct endpoint *e);
struct group **model_groups_ordered(const struct model *m, size_t *n);

/* Loading: recreate a stored block / endpoint exactly. */
int model_block_restore(struct model *m, struct space *s, const struct prefix *cidr,
			struct host *h, struct segment *sg, enum block_state state,
			int64_t cool_until, struct error *err);
int model_endpoint_restore(struct model *m, const struct endpoint_spec *sp, struct error *err);

#endif
