/* SPDX-License-Identifier: MIT */
/*
 * DOC: group commit
 *
 * Handlers queue their store transactions here (in model order, under the
 * model lock) and wait. One thread takes everything queued, commits it as one
 * batch (one fsync: store_ops.commit), and wakes the waiters. While a batch
 * is being written the next one gathers, so under load each fsync carries
 * many allocations; with one client it carries one and nothing waits on a
 * timer. Nobody blocks on a commit: a request whose answer depends on a
 * ticket registers a waiter (struct commit_waiter, owned by the connection)
 * and the HTTP layer suspends the connection; this thread resumes it when the
 * ticket is durable (commit_defer), and a change-feed long-poll the same way
 * when the revision moves (commit_defer_revision). A failed commit is fatal: the model already holds the change, and
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
	uint64_t rev; /* the revision the store must give it */
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
	struct commit_waiter *waiters;
	/* tickets count submitted transactions; revisions count the store's.
	 * Every submitted transaction has ops and no compares, so the store
	 * gives it exactly the next revision: submitted_rev predicts it. */
	uint64_t submitted, durable, revision, submitted_rev;
	bool stop;
	bool closing; /* shutting down: register no more waiters */
};

/* Unlink the waiters that are due (under c->mu); the caller fires them. */
static struct commit_waiter *take_due(struct committer *c, int64_t now_ms, bool all)
{
	struct commit_waiter **pp = &c->waiters, *due = NULL;

	while (*pp) {
		struct commit_waiter *w = *pp;
		bool fire = all || (w->feed ? c->revision > w->since || w->deadline_ms <= now_ms
					    : c->durable >= w->ticket);

		if (fire) {
			*pp = w->next;
			w->next = due;
			due = w;
		} else {
			pp = &w->next;
		}
	}
	return due;
}

/* Fire outside c->mu: a fired waiter's memory may be gone at once. */
static void fire(struct commit_waiter *w)
{
	while (w) {
		struct commit_waiter *next = w->next;

		w->fn(w->arg);
		w = next;
	}
}

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
		struct commit_waiter *due;
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
			if (txns[i].rev != reqs[i]->rev)
				fatalx("commit: the store gave revision %llu where %llu was due",
				       (unsigned long long)txns[i].rev, (unsigned long long)reqs[i]->rev);
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
		due = take_due(c, INT64_MAX - 1, false);
		pthread_cond_broadcast(&c->done);
		pthread_mutex_unlock(&c->mu);
		fire(due);
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
	c->revision = c->submitted_rev = revision;
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
	r->rev = ++c->submitted_rev;
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

uint64_t commit_ticket(struct committer *c, uint64_t *rev)
{
	uint64_t t;

	pthread_mutex_lock(&c->mu);
	t = c->submitted;
	if (rev)
		*rev = c->submitted_rev;
	pthread_mutex_unlock(&c->mu);
	return t;
}

bool commit_durable(struct committer *c, uint64_t ticket)
{
	bool done;

	pthread_mutex_lock(&c->mu);
	done = c->durable >= ticket;
	pthread_mutex_unlock(&c->mu);
	return done;
}

bool commit_defer(struct committer *c, uint64_t ticket, struct commit_waiter *w)
{
	bool queued = false;

	pthread_mutex_lock(&c->mu);
	if (c->durable < ticket && !c->stop && !c->closing) {
		w->feed = false;
		w->ticket = ticket;
		w->next = c->waiters;
		c->waiters = w;
		queued = true;
	}
	pthread_mutex_unlock(&c->mu);
	return queued;
}

bool commit_defer_revision(struct committer *c, uint64_t since, int64_t deadline_ms,
			   struct commit_waiter *w)
{
	bool queued = false;

	pthread_mutex_lock(&c->mu);
	if (c->revision <= since && !c->stop && !c->closing) {
		w->feed = true;
		w->since = since;
		w->deadline_ms = deadline_ms;
		w->next = c->waiters;
		c->waiters = w;
		queued = true;
	}
	pthread_mutex_unlock(&c->mu);
	return queued;
}

void commit_expire(struct committer *c, int64_t now_ms, bool all)
{
	struct commit_waiter *due;

	pthread_mutex_lock(&c->mu);
	if (all)
		c->closing = true;
	due = take_due(c, now_ms, all);
	pthread_mutex_unlock(&c->mu);
	fire(due);
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
