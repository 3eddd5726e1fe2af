/* SPDX-License-Identifier: MIT */
/*
 * DOC: group commit
 *
 * Handlers queue their store transactions here (in model order, under the
 * model lock) and wait. One thread takes everything queued, commits it as one
 * batch (one fsync: store_ops.commit), and wakes the waiters. While a batch
 * is being written the next one gathers, so under load each fsync carries
 * many allocations; with one client it carries one and nothing waits on a
 * timer. A failed commit is fatal: the model already holds the change, and
 * serving it unacknowledged-but-visible would be worse than restarting from
 * the store, which has every acknowledged change.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "larchd.h"
#include "log.h"

struct commit_req {
	struct mtxn tx;
	uint64_t ticket;
	struct commit_req *next;
};

struct committer {
	const struct store_ops *ops;
	struct store *st;
	struct metrics *metrics;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct commit_req *head, *tail;
	uint64_t submitted, durable, revision;
	bool stop;
};

#define BATCH_MAX 4096

static void *commit_main(void *arg)
{
	struct committer *c = arg;
	struct store_txn *txns = calloc(BATCH_MAX, sizeof(*txns));
	struct commit_req **reqs = calloc(BATCH_MAX, sizeof(*reqs));

	if (!txns || !reqs)
		fatalx("commit: out of memory");
	for (;;) {
		struct error err = { 0 };
		uint64_t last_ticket = 0, rev = 0;
		size_t n = 0;
		int r;

		pthread_mutex_lock(&c->mu);
		while (!c->head && !c->stop)
			pthread_cond_wait(&c->work, &c->mu);
		if (!c->head && c->stop) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		while (c->head && n < BATCH_MAX) {
			reqs[n++] = c->head;
			c->head = c->head->next;
		}
		if (!c->head)
			c->tail = NULL;
		pthread_mutex_unlock(&c->mu);

		for (size_t i = 0; i < n; i++) {
			txns[i] = (struct store_txn){ .ops = reqs[i]->tx.ops, .nops = reqs[i]->tx.n };
			last_ticket = reqs[i]->ticket;
		}
		r = c->ops->commit(c->st, txns, n, &err);
		if (r < 0)
			fatalx("commit: %s; exiting: the store keeps every acknowledged change, "
			       "restart to reload it", err.msg);
		for (size_t i = 0; i < n; i++) {
			if (txns[i].result < 0)
				fatalx("commit: transaction refused by the store (%d)", txns[i].result);
			if (txns[i].rev > rev)
				rev = txns[i].rev;
			mtxn_release(&reqs[i]->tx);
			free(reqs[i]);
		}
		metrics_batch(c->metrics, n);
		pthread_mutex_lock(&c->mu);
		c->durable = last_ticket;
		if (rev > c->revision)
			c->revision = rev;
		pthread_cond_broadcast(&c->done);
		pthread_mutex_unlock(&c->mu);
	}
	free(txns);
	free(reqs);
	return NULL;
}

struct committer *commit_start(const struct store_ops *ops, struct store *st,
			       struct metrics *metrics, uint64_t revision)
{
	struct committer *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;

	if (!c)
		return NULL;
	c->ops = ops;
	c->st = st;
	c->metrics = metrics;
	c->revision = revision;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->done, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&c->thread, NULL, commit_main, c) != 0) {
		free(c);
		return NULL;
	}
	return c;
}

void commit_stop(struct committer *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	free(c);
}

uint64_t commit_submit(struct committer *c, struct mtxn *tx)
{
	struct commit_req *r;
	uint64_t ticket;

	pthread_mutex_lock(&c->mu);
	if (!tx->n) {
		/* nothing to write: wait only for what is already queued */
		ticket = c->submitted;
		pthread_mutex_unlock(&c->mu);
		return ticket;
	}
	if (tx->failed || !(r = calloc(1, sizeof(*r))))
		fatalx("commit: out of memory building a transaction");
	r->tx = *tx;
	mtxn_init(tx);
	r->ticket = ++c->submitted;
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	ticket = r->ticket;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->mu);
	return ticket;
}

void commit_wait(struct committer *c, uint64_t ticket)
{
	pthread_mutex_lock(&c->mu);
	while (c->durable < ticket)
		pthread_cond_wait(&c->done, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

uint64_t commit_drain(struct committer *c)
{
	uint64_t rev;

	pthread_mutex_lock(&c->mu);
	while (c->durable < c->submitted)
		pthread_cond_wait(&c->done, &c->mu);
	rev = c->revision;
	pthread_mutex_unlock(&c->mu);
	return rev;
}

uint64_t commit_revision(struct committer *c)
{
	uint64_t rev;

	pthread_mutex_lock(&c->mu);
	rev = c->revision;
	pthread_mutex_unlock(&c->mu);
	return rev;
}

uint64_t commit_wait_revision(struct committer *c, uint64_t since, int64_t timeout_ms)
{
	struct timespec deadline;
	uint64_t rev;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c->mu);
	while (c->revision <= since && !c->stop)
		if (pthread_cond_timedwait(&c->done, &c->mu, &deadline) == ETIMEDOUT)
			break;
	rev = c->revision;
	pthread_mutex_unlock(&c->mu);
	return rev;
}
