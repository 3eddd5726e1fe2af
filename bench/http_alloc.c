/* SPDX-License-Identifier: MIT */
/*
 * HTTP allocation benchmark: CLIENTS concurrent clients, each one keep-alive
 * connection with one request in flight at a time, POST /v1/endpoints as fast
 * as larchd acknowledges; every acknowledgement is durable (larchd answers
 * after the group commit's fsync). Prints throughput and the latency
 * percentiles of the acknowledged requests.
 *
 *   build/bench/http_alloc URL CLIENTS COUNT [PREFIX [BULK]]
 *
 * The clients are driven from one thread with libcurl's multi interface (as
 * wrk or h2load do), so that on a small machine the load generator leaves
 * the CPUs to the server instead of spending them on thread switches. With
 * BULK > 1 each request carries BULK endpoints ({"endpoints": [...]}).
 *
 * The topology (tenant "bench", segments "a"/"b", hosts "bh0".."bh99") must
 * exist: bench/run.sh creates it. Only ever point this at 127.0.0.1.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct client {
	CURL *h;
	char body[64 * 1024];
	long next;   /* the next endpoint number it sends */
	double t0;
};

static const char *prefix = "b";
static long bulk = 1;

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

static int endpoint(char *out, size_t len, long n)
{
	return snprintf(out, len,
			"{\"handle\":\"%s-%ld:eth0\",\"tenant\":\"bench\",\"segment\":\"%s\","
			"\"host\":\"bh%ld\",\"kind\":\"pod\",\"name\":\"pod-%ld\",\"namespace\":\"bench\"}",
			prefix, n, (n & 1) ? "a" : "b", n % 100, n);
}

static void fill(struct client *c)
{
	size_t off = 0;

	if (bulk == 1) {
		endpoint(c->body, sizeof(c->body), c->next);
	} else {
		off += (size_t)snprintf(c->body, sizeof(c->body), "{\"endpoints\":[");
		for (long i = 0; i < bulk; i++)
			off += (size_t)endpoint(c->body + off, sizeof(c->body) - off - 4, c->next + i) ;
		/* commas between the objects */
		for (size_t i = 1; i < off; i++)
			if (c->body[i] == '{' && c->body[i - 1] == '}')
				memmove(c->body + i + 1, c->body + i, off++ - i + 1), c->body[i] = ',';
		strcpy(c->body + off, "]}");
	}
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct curl_slist *hdr = NULL;
	struct client *cl;
	CURLM *m;
	double *lat, t0, t1;
	long count, sent = 0, done = 0, ok = 0, fail = 0, nreq = 0;
	int nc, running;
	char url[512];

	if (argc < 4) {
		fprintf(stderr, "usage: http_alloc URL CLIENTS COUNT [PREFIX [BULK]]\n");
		return 2;
	}
	nc = atoi(argv[2]);
	count = atol(argv[3]);
	if (argc > 4)
		prefix = argv[4];
	if (argc > 5)
		bulk = atol(argv[5]);
	if (nc < 1 || count < nc || bulk < 1 || bulk > 256)
		return 2;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)nc);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	snprintf(url, sizeof(url), "%s/v1/endpoints", argv[1]);
	cl = calloc((size_t)nc, sizeof(*cl));
	lat = calloc((size_t)count / (size_t)bulk + (size_t)nc, sizeof(*lat));
	t0 = now_s();
	for (int i = 0; i < nc && sent < count; i++) {
		cl[i].h = curl_easy_init();
		curl_easy_setopt(cl[i].h, CURLOPT_URL, url);
		curl_easy_setopt(cl[i].h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(cl[i].h, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(cl[i].h, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(cl[i].h, CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(cl[i].h, CURLOPT_PRIVATE, &cl[i]);
		cl[i].next = sent;
		sent += bulk;
		fill(&cl[i]);
		cl[i].t0 = now_s();
		curl_multi_add_handle(m, cl[i].h);
	}
	do {
		CURLMsg *msg;
		int left;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			struct client *c;
			long code = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			if (msg->data.result == CURLE_OK)
				curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
			lat[nreq++] = now_s() - c->t0;
			if ((bulk == 1 && code == 201) || (bulk > 1 && code == 200))
				ok += bulk;
			else
				fail += bulk;
			done += bulk;
			curl_multi_remove_handle(m, c->h);
			if (sent < count) {
				c->next = sent;
				sent += bulk;
				fill(c);
				c->t0 = now_s();
				curl_multi_add_handle(m, c->h);
				running = 1;
			}
		}
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	} while (running || done < sent);
	t1 = now_s();
	qsort(lat, (size_t)nreq, sizeof(double), cmp_d);
	printf("http clients=%d bulk=%ld allocations=%ld ok=%ld failed=%ld seconds=%.2f "
	       "alloc_per_s=%.0f request_p50_ms=%.3f request_p99_ms=%.3f max_ms=%.3f\n",
	       nc, bulk, done, ok, fail, t1 - t0, (double)ok / (t1 - t0), lat[nreq / 2] * 1e3,
	       lat[(long)((double)nreq * 0.99)] * 1e3, lat[nreq - 1] * 1e3);
	for (int i = 0; i < nc; i++)
		curl_easy_cleanup(cl[i].h);
	curl_multi_cleanup(m);
	curl_slist_free_all(hdr);
	free(cl);
	free(lat);
	curl_global_cleanup();
	return fail ? 1 : 0;
}
