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
 * write lock, so commit order is model order. Returns its ticket. */
uint64_t commit_submit(struct committer *c, struct mtxn *tx);
/* The last ticket submitted and (rev) the revision it will have. */
uint64_t commit_ticket(struct committer *c, uint64_t *rev);
bool commit_durable(struct committer *c, uint64_t ticket);

/*
 * A waiter: the caller owns the memory and must keep it until fn runs (on
 * the commit thread, or on whoever calls commit_expire). fn must not touch
 * the committer.
 */
struct commit_waiter {
	void (*fn)(void *arg);
	void *arg;
	bool feed;
	uint64_t ticket;      /* !feed: fire when this ticket is durable */
	uint64_t since;       /* feed: fire when the revision passes since, */
	int64_t deadline_ms;  /*       or at this CLOCK_MONOTONIC time */
	struct commit_waiter *next;
};
/* Register w; false (nothing registered) when it is due already. */
bool commit_defer(struct committer *c, uint64_t ticket, struct commit_waiter *w);
bool commit_defer_revision(struct committer *c, uint64_t since, int64_t deadline_ms,
			   struct commit_waiter *w);
/* Block until ticket is durable (shutdown only: no thread should wait). */
void commit_wait(struct committer *c, uint64_t ticket);
/* Fire feed waiters whose deadline passed; with all, fire every waiter and
 * refuse new ones from then on (shutdown). */
void commit_expire(struct committer *c, int64_t now_ms, bool all);
/* Wait until everything submitted so far is durable; returns the revision. */
uint64_t commit_drain(struct committer *c);
uint64_t commit_revision(struct committer *c);

/* http.c */
struct req {
	struct larchd *d;
	const char *method;
	const char *url;
	const char *args[3];  /* path parameters (the '*' parts) */
	void *conn;           /* struct MHD_Connection */
	const char *body;
	size_t body_len;
	bool resumed;          /* a long-poll woke up: answer now */
	/* output */
	uint64_t ticket;       /* answer only once this commit ticket is durable */
	uint64_t wait_since;   /* long-poll: wait for a revision past this, */
	int64_t wait_ms;       /* for at most this long (0: do not wait) */
	int status;
	json_t *json;          /* response body, or */
	char *text;            /* a text body (metrics) */
};

const char *req_query(struct req *rq, const char *name);
void req_error(struct req *rq, const struct error *err);
void req_json(struct req *rq, int status, json_t *body);
int http_start(struct larchd *d);
void http_stop(struct larchd *d);

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
void api_tenant_patch(struct req *rq);
void api_policy_put(struct req *rq);
void api_policy_list(struct req *rq);
void api_policy_get(struct req *rq);
void api_policy_delete(struct req *rq);
void api_namespace_put(struct req *rq);
void api_namespace_list(struct req *rq);
void api_namespace_get(struct req *rq);
void api_namespace_delete(struct req *rq);
void api_healthz(struct req *rq);
void api_metrics(struct req *rq);

/* api.c: the shared shape of a handler */
json_t *body_object(struct req *rq);  /* NULL: error already set */
/* Take the model lock for reading. The answer is held back until every
 * change the model shows is durable; returns the revision the model is at. */
uint64_t read_begin(struct req *rq);
void read_end(struct req *rq);
/* Take the write lock and run the housekeeping sweep into tx. */
void write_begin(struct larchd *d, struct mtxn *tx);
/* Submit tx and unlock; the answer is held back until tx is durable. */
void write_end(struct req *rq, struct mtxn *tx);
void write_reply(struct req *rq, struct mtxn *tx, int r, const struct error *err, int status,
		 json_t *out);
json_t *list_body(uint64_t rev, json_t *items);

#endif
