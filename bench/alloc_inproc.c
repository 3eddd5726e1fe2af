/* SPDX-License-Identifier: MIT */
/*
 * In-process allocator benchmark: allocations per second of the model alone
 * (no HTTP, no store), at 10k, 100k and 1M endpoints, and the same with the
 * store values serialised (what larchd does per allocation before the
 * commit). Prints one line per run; bench/run.sh collects them.
 *
 *   build/bench/alloc_inproc [N ...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "model.h"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

#define HOSTS 100

static struct model *setup(void)
{
	struct model_options o = { .block_cooldown = 300 };
	struct model *m = model_new(&o);
	struct error err = { 0 };
	struct space_spec sp = { .name = "v4", .block_len = 28 };
	char name[32], parent[32];

	prefix_parse("10.0.0.0/8", &sp.cidr, 0, "cidr", NULL);
	if (model_space_create(m, &sp, NULL, &err) < 0)
		goto fail;
	{
		struct group_spec z = { .name = "zone", .capacity = 1u << 23 };

		if (model_group_create(m, &z, NULL, &err) < 0)
			goto fail;
	}
	for (int r = 0; r < 10; r++) {
		struct group_spec g = { .name = name, .parent = "zone", .capacity = 1u << 19 };

		snprintf(name, sizeof(name), "rack%d", r);
		if (model_group_create(m, &g, NULL, &err) < 0)
			goto fail;
	}
	for (int h = 0; h < HOSTS; h++) {
		struct host_spec hs = { .name = name, .group = parent };

		snprintf(name, sizeof(name), "h%d", h);
		snprintf(parent, sizeof(parent), "rack%d", h % 10);
		prefix_parse("192.0.2.1", &hs.address, 0, "a", NULL);
		if (model_host_create(m, &hs, NULL, &err) < 0)
			goto fail;
	}
	{
		struct tenant_spec t = { .name = "t" };
		struct segment_spec s1 = { .tenant = "t", .name = "a" }, s2 = { .tenant = "t", .name = "b" };

		if (model_tenant_create(m, &t, NULL, &err) < 0 ||
		    model_segment_create(m, &s1, NULL, &err) < 0 ||
		    model_segment_create(m, &s2, NULL, &err) < 0)
			goto fail;
	}
	return m;
fail:
	fprintf(stderr, "setup: %s\n", err.msg);
	exit(1);
}

static void run(long n, int with_values)
{
	struct model *m;
	char (*handles)[24] = malloc((size_t)n * sizeof(*handles));
	char hosts[HOSTS][12];
	struct error err = { 0 };
	long rss0, rss1;
	double t0, t1, t2;

	for (long i = 0; i < n; i++)
		snprintf(handles[i], sizeof(handles[i]), "pod-%08lx:eth0", i);
	for (int h = 0; h < HOSTS; h++)
		snprintf(hosts[h], sizeof(hosts[h]), "h%d", h);
	m = setup();
	rss0 = rss_kb();
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		struct endpoint_spec sp = { .handle = handles[i], .tenant = "t",
					    .segment = (i & 1) ? "a" : "b", .host = hosts[i % HOSTS],
					    .kind = EP_POD };
		struct endpoint *e;
		struct mtxn tx;

		mtxn_init(&tx);
		if (model_endpoint_create(m, &sp, with_values ? &tx : NULL, &e, &err) < 0) {
			fprintf(stderr, "alloc %ld: %s\n", i, err.msg);
			exit(1);
		}
		mtxn_release(&tx);
	}
	t1 = now_s();
	rss1 = rss_kb();
	for (long i = 0; i < n; i++)
		if (model_endpoint_delete(m, handles[i], NULL, &err) < 0) {
			fprintf(stderr, "release %ld: %s\n", i, err.msg);
			exit(1);
		}
	t2 = now_s();
	printf("inproc endpoints=%ld values=%s alloc_per_s=%.0f release_per_s=%.0f "
	       "model_rss_mb=%.1f bytes_per_endpoint=%.0f\n",
	       n, with_values ? "yes" : "no", (double)n / (t1 - t0), (double)n / (t2 - t1),
	       (double)(rss1 - rss0) / 1024, (double)(rss1 - rss0) * 1024 / (double)n);
	fflush(stdout);
	model_free(m);
	free(handles);
}

int main(int argc, char **argv)
{
	long sizes[8] = { 10000, 100000, 1000000 };
	int ns = 3;

	if (argc > 1) {
		ns = 0;
		for (int i = 1; i < argc && ns < 8; i++)
			sizes[ns++] = atol(argv[i]);
	}
	for (int i = 0; i < ns; i++) {
		run(sizes[i], 0);
		run(sizes[i], 1);
	}
	return 0;
}
