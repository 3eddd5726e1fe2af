/* SPDX-License-Identifier: MIT */
/*
 * DOC: Prometheus metrics
 *
 * Counters are atomics bumped on the request path; gauges are read from the
 * model under the read lock when /metrics is scraped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "larchd.h"

static const char *const methods[] = { "GET", "POST", "PATCH", "DELETE", "other" };
static const double latency_bounds[LATENCY_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};
static const unsigned batch_bounds[BATCH_BUCKETS] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 1024 };

void metrics_request(struct metrics *m, const char *method, int status, uint64_t usec)
{
	size_t mi = 4, ci = (size_t)(status / 100);
	size_t b = 0;

	for (size_t i = 0; i < 4; i++)
		if (!strcmp(method, methods[i]))
			mi = i;
	if (ci > 5)
		ci = 0;
	atomic_fetch_add(&m->requests[mi][ci], 1);
	while (b < LATENCY_BUCKETS && (double)usec / 1e6 > latency_bounds[b])
		b++;
	atomic_fetch_add(&m->latency[b], 1);
	atomic_fetch_add(&m->latency_count, 1);
	atomic_fetch_add(&m->latency_sum_us, usec);
}

void metrics_batch(struct metrics *m, size_t n)
{
	size_t b = 0;

	while (b < BATCH_BUCKETS && n > batch_bounds[b])
		b++;
	atomic_fetch_add(&m->batch[b], 1);
	atomic_fetch_add(&m->commits, 1);
	atomic_fetch_add(&m->committed_txns, n);
}

char *metrics_render(struct larchd *d)
{
	struct metrics *m = &d->metrics;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint64_t cum = 0;

	if (!f)
		return NULL;
	pthread_rwlock_rdlock(&d->lock);
	fprintf(f, "# HELP larch_allocations_total Addresses handed out.\n"
		   "# TYPE larch_allocations_total counter\nlarch_allocations_total %llu\n",
		(unsigned long long)d->model->allocations);
	fprintf(f, "# HELP larch_releases_total Addresses given back.\n"
		   "# TYPE larch_releases_total counter\nlarch_releases_total %llu\n",
		(unsigned long long)d->model->releases);
	fprintf(f, "# HELP larch_endpoints Endpoints that exist.\n"
		   "# TYPE larch_endpoints gauge\nlarch_endpoints %zu\n", d->model->nendpoints);
	fprintf(f, "# HELP larch_blocks Blocks by space and state.\n# TYPE larch_blocks gauge\n");
	for (size_t i = 0; i < d->model->nspaces; i++) {
		struct space *s = d->model->spaces[i];

		fprintf(f, "larch_blocks{space=\"%s\",state=\"active\"} %zu\n", s->name, s->nblocks_active);
		fprintf(f, "larch_blocks{space=\"%s\",state=\"cooling\"} %zu\n", s->name, s->nblocks_cooling);
	}
	pthread_rwlock_unlock(&d->lock);

	fprintf(f, "# HELP larch_store_commits_total Durable store commits (each one fsync).\n"
		   "# TYPE larch_store_commits_total counter\nlarch_store_commits_total %llu\n",
		(unsigned long long)atomic_load(&m->commits));
	fprintf(f, "# HELP larch_store_commit_batch_size Transactions per commit.\n"
		   "# TYPE larch_store_commit_batch_size histogram\n");
	for (size_t b = 0; b < BATCH_BUCKETS; b++) {
		cum += atomic_load(&m->batch[b]);
		fprintf(f, "larch_store_commit_batch_size_bucket{le=\"%u\"} %llu\n", batch_bounds[b],
			(unsigned long long)cum);
	}
	cum += atomic_load(&m->batch[BATCH_BUCKETS]);
	fprintf(f, "larch_store_commit_batch_size_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	fprintf(f, "larch_store_commit_batch_size_sum %llu\nlarch_store_commit_batch_size_count %llu\n",
		(unsigned long long)atomic_load(&m->committed_txns),
		(unsigned long long)atomic_load(&m->commits));

	fprintf(f, "# HELP larch_http_requests_total HTTP requests by method and status class.\n"
		   "# TYPE larch_http_requests_total counter\n");
	for (size_t mi = 0; mi < 5; mi++)
		for (size_t ci = 1; ci < 6; ci++) {
			uint64_t v = atomic_load(&m->requests[mi][ci]);

			if (v)
				fprintf(f, "larch_http_requests_total{method=\"%s\",code=\"%zuxx\"} %llu\n",
					methods[mi], ci, (unsigned long long)v);
		}
	fprintf(f, "# HELP larch_http_request_duration_seconds Time to answer a request.\n"
		   "# TYPE larch_http_request_duration_seconds histogram\n");
	cum = 0;
	for (size_t b = 0; b < LATENCY_BUCKETS; b++) {
		cum += atomic_load(&m->latency[b]);
		fprintf(f, "larch_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
			latency_bounds[b], (unsigned long long)cum);
	}
	cum += atomic_load(&m->latency[LATENCY_BUCKETS]);
	fprintf(f, "larch_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
		(unsigned long long)cum);
	fprintf(f, "larch_http_request_duration_seconds_sum %.6f\n"
		   "larch_http_request_duration_seconds_count %llu\n",
		(double)atomic_load(&m->latency_sum_us) / 1e6,
		(unsigned long long)atomic_load(&m->latency_count));
	fclose(f);
	return buf;
}
