/* SPDX-License-Identifier: MIT */
/*
 * HTTP allocation benchmark: C clients (threads), each with one keep-alive
 * connection, POST /v1/endpoints as fast as larchd acknowledges; every
 * acknowledgement is durable (larchd answers after the group commit's fsync).
 * Prints throughput and the latency percentiles of the acknowledged requests.
 *
 *   build/bench/http_alloc URL CLIENTS COUNT [PREFIX]
 *
 * The topology (tenant "bench", segments "a"/"b", hosts "bh0".."bh99") must
 * exist: bench/run.sh creates it. Only ever point this at 127.0.0.1.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct worker {
	const char *url;
	const char *prefix;
	int id, nclients;
	long first, count;
	double *lat;
	long ok, fail;
	pthread_t t;
};

static size_t sink(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	CURL *c = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	char url[512], body[512];

	hdr = curl_slist_append(hdr, "Expect:");
	snprintf(url, sizeof(url), "%s/v1/endpoints", w->url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	for (long i = 0; i < w->count; i++) {
		long n = w->first + i, code = 0;
		double t0;

		snprintf(body, sizeof(body),
			 "{\"handle\":\"%s-%ld:eth0\",\"tenant\":\"bench\",\"segment\":\"%s\","
			 "\"host\":\"bh%ld\",\"kind\":\"pod\",\"name\":\"pod-%ld\",\"namespace\":\"bench\"}",
			 w->prefix, n, (n & 1) ? "a" : "b", n % 100, n);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		t0 = now_s();
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		w->lat[i] = now_s() - t0;
		if (code == 201)
			w->ok++;
		else
			w->fail++;
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct worker *w;
	double *all, t0, t1;
	long count, per, ok = 0, fail = 0, k = 0;
	int nc;

	if (argc < 4) {
		fprintf(stderr, "usage: http_alloc URL CLIENTS COUNT [PREFIX]\n");
		return 2;
	}
	nc = atoi(argv[2]);
	count = atol(argv[3]);
	if (nc < 1 || count < nc)
		return 2;
	per = count / nc;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	w = calloc((size_t)nc, sizeof(*w));
	all = calloc((size_t)count, sizeof(*all));
	for (int i = 0; i < nc; i++) {
		w[i] = (struct worker){ .url = argv[1], .prefix = argc > 4 ? argv[4] : "b", .id = i,
					.first = i * per, .count = per };
		w[i].lat = calloc((size_t)per, sizeof(double));
	}
	t0 = now_s();
	for (int i = 0; i < nc; i++)
		pthread_create(&w[i].t, NULL, run, &w[i]);
	for (int i = 0; i < nc; i++)
		pthread_join(w[i].t, NULL);
	t1 = now_s();
	for (int i = 0; i < nc; i++) {
		ok += w[i].ok;
		fail += w[i].fail;
		memcpy(all + k, w[i].lat, (size_t)w[i].count * sizeof(double));
		k += w[i].count;
		free(w[i].lat);
	}
	qsort(all, (size_t)k, sizeof(double), cmp_d);
	printf("http clients=%d requests=%ld ok=%ld failed=%ld seconds=%.2f alloc_per_s=%.0f "
	       "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
	       nc, k, ok, fail, t1 - t0, (double)ok / (t1 - t0), all[k / 2] * 1e3,
	       all[(long)((double)k * 0.99)] * 1e3, all[k - 1] * 1e3);
	free(all);
	free(w);
	curl_global_cleanup();
	return fail ? 1 : 0;
}
