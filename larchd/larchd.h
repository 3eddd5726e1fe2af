/* SPDX-License-Identifier: MIT */
#ifndef LARCHD_H
#define LARCHD_H

/*
 * DOC: larchd, how a request flows
 *
 *   HTTP (http.c) -> handler (api*.c): decode and check the body, no lock
 *     -> model lock (write) -> model_* mutation -> store ops in an mtxn
 *     -> commit_submit() (still under the lock, so commit order == model order)
 *     -> unlock -> commit_wait(): the group-commit thread (commit.c) has
 *        written the batch with one fsync -> answer.
 *
 * Reads take the model lock shared and first wait until everything already
 * applied to the model is durable, so no answer ever shows state that a crash
 * could take back, and a list's revision is exact.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "model.h"
#include "store.h"

struct committer;

struct larchd_config {
	char *listen;        /* "127.0.0.1:7420", or NULL / "none" */
	char *unix_path;
	char *db;
	char *store;
	char *token_file;
	int64_t block_cooldown;
	int64_t feed_retention;
	bool debug;
};

#define LATENCY_BUCKETS 14
#define BATCH_BUCKETS 10

struct metrics {
	atomic_uint_fast64_t requests[5][6]; /* method x status class */
	atomic_uint_fast64_t latency[LATENCY_BUCKETS + 1];
	atomic_uint_fast64_t latency_count;
	atomic_uint_fast64_t latency_sum_us;
	atomic_uint_fast64_t commits, committed_txns;
	atomic_uint_fast64_t batch[BATCH_BUCKETS + 1];
};

struct larchd {
	struct larchd_config cfg;
	struct model *model;
	pthread_rwlock_t lock;
	const struct store_ops *sops;
	struct store *store;
	struct committer *commit;
	char *token;
	struct metrics metrics;
};

/* commit.c: the group-commit queue */
struct committer *commit_start(const struct store_ops *ops, struct store *st,
			       struct metrics *metrics, uint64_t revision);
void commit_stop(struct committer *c);
/* Queue tx (its ops are taken over; tx is left empty). Call under the model
 * write lock. Returns a ticket for commit_wait(). */
uint64_t commit_submit(struct committer *c, struct mtxn *tx);
void commit_wait(struct committer *c, uint64_t ticket);
/* Wait until everything submitted so far is durable; returns the revision. */
uint64_t commit_drain(struct committer *c);
uint64_t commit_revision(struct committer *c);
/* Wait up to timeout_ms for the durable revision to pass `since`. */
uint64_t commit_wait_revision(struct committer *c, uint64_t since, int64_t timeout_ms);

/* http.c */
struct req {
	struct larchd *d;
	const char *method;
	const char *url;
	const char *args[3];  /* path parameters (the '*' parts) */
	void *conn;           /* struct MHD_Connection */
	const char *body;
	size_t body_len;
	/* output */
	int status;
	json_t *json;          /* response body, or */
	char *text;            /* a text body (metrics) */
};

const char *req_query(struct req *rq, const char *name);
void req_error(struct req *rq, const struct error *err);
void req_json(struct req *rq, int status, json_t *body);
int http_start(struct larchd *d);
void http_stop(void);

/* metrics.c */
void metrics_request(struct metrics *m, const char *method, int status, uint64_t usec);
void metrics_batch(struct metrics *m, size_t n);
char *metrics_render(struct larchd *d);

/* api*.c: handlers */
typedef void (*handler_fn)(struct req *rq);
void api_space_list(struct req *rq);
void api_space_create(struct req *rq);
void api_space_get(struct req *rq);
void api_space_delete(struct req *rq);
void api_group_list(struct req *rq);
void api_group_create(struct req *rq);
void api_group_get(struct req *rq);
void api_group_delete(struct req *rq);
void api_host_list(struct req *rq);
void api_host_create(struct req *rq);
void api_host_get(struct req *rq);
void api_host_delete(struct req *rq);
void api_tenant_list(struct req *rq);
void api_tenant_create(struct req *rq);
void api_tenant_get(struct req *rq);
void api_tenant_delete(struct req *rq);
void api_segment_list(struct req *rq);
void api_segment_create(struct req *rq);
void api_segment_get(struct req *rq);
void api_segment_delete(struct req *rq);
void api_endpoint_list(struct req *rq);
void api_endpoint_create(struct req *rq);
void api_endpoint_get(struct req *rq);
void api_endpoint_patch(struct req *rq);
void api_endpoint_delete(struct req *rq);
void api_endpoint_bind(struct req *rq);
void api_block_list(struct req *rq);
void api_tree(struct req *rq);
void api_changes(struct req *rq);
void api_healthz(struct req *rq);
void api_metrics(struct req *rq);

/* api.c: the shared shape of a handler */
json_t *body_object(struct req *rq);  /* NULL: error already set */
/* Take the model lock for reading, after everything applied is durable. */
uint64_t read_begin(struct larchd *d);
void read_end(struct larchd *d);
/* Take the write lock and run the housekeeping sweep into tx. */
void write_begin(struct larchd *d, struct mtxn *tx);
/* Submit tx, unlock, wait until durable. */
void write_end(struct larchd *d, struct mtxn *tx);
json_t *list_body(uint64_t rev, json_t *items);

#endif
