/* SPDX-License-Identifier: MIT */
/* larchctl tree: space -> groups -> hosts -> blocks, from GET /v1/tree. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "larchctl.h"

/* prefix: the branch lines drawn so far for the ancestors */
static void line(const char *prefix, bool last, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void line(const char *prefix, bool last, const char *fmt, ...)
{
	va_list ap;

	printf("%s%s", prefix, last ? "`-- " : "|-- ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static char *child_prefix(const char *prefix, bool last)
{
	char *p;

	if (asprintf(&p, "%s%s", prefix, last ? "    " : "|   ") < 0)
		return NULL;
	return p;
}

static void usage_sums(json_t *blocks, long long *used, long long *cap)
{
	size_t i;
	json_t *b;

	json_array_foreach(blocks, i, b) {
		*used += json_integer_value(json_object_get(b, "used"));
		*cap += json_integer_value(json_object_get(b, "capacity"));
	}
}

static void draw_host(json_t *h, const char *prefix, bool last)
{
	json_t *blocks = json_object_get(h, "blocks"), *b;
	long long used = 0, cap = 0;
	char *cp = child_prefix(prefix, last);
	size_t i, n = json_array_size(blocks);

	usage_sums(blocks, &used, &cap);
	line(prefix, last, "host %s (%s)  %zu block%s, %lld/%lld used", json_string_value(json_object_get(h, "name")),
	     json_string_value(json_object_get(h, "address")), n, n == 1 ? "" : "s", used, cap);
	json_array_foreach(blocks, i, b) {
		long long u = json_integer_value(json_object_get(b, "used"));
		long long c = json_integer_value(json_object_get(b, "capacity"));
		const char *state = json_string_value(json_object_get(b, "state"));

		line(cp, i + 1 == n, "%-22s %s/%s  %lld/%lld (%lld%%)%s%s",
		     json_string_value(json_object_get(b, "cidr")),
		     json_string_value(json_object_get(b, "tenant")),
		     json_string_value(json_object_get(b, "segment")), u, c, c ? u * 100 / c : 0,
		     state && strcmp(state, "active") ? "  " : "", state && strcmp(state, "active") ? state : "");
	}
	free(cp);
}

static void draw_group(json_t *g, const char *prefix, bool last)
{
	json_t *groups = json_object_get(g, "groups"), *hosts = json_object_get(g, "hosts"), *x;
	size_t ng = json_array_size(groups), nh = json_array_size(hosts), i;
	char *cp = child_prefix(prefix, last);

	line(prefix, last, "group %s  %s", json_string_value(json_object_get(g, "name")),
	     json_string_value(json_object_get(g, "prefix")));
	json_array_foreach(groups, i, x)
		draw_group(x, cp, i + 1 == ng && nh == 0);
	json_array_foreach(hosts, i, x)
		draw_host(x, cp, i + 1 == nh);
	free(cp);
}

int cmd_tree(struct ctl *c, int argc, char **argv)
{
	json_t *resp, *s, *g;
	size_t i, j;
	int r;

	if (argc != 1) {
		fprintf(stderr, "usage: larchctl tree\n");
		return !strcmp(argv[1], "--help") ? EXIT_OK : EXIT_USAGE;
	}
	if ((r = ctl_call(c, "GET", "/v1/tree", NULL, NULL, &resp)) != EXIT_OK)
		return r;
	if (c->json) {
		c->out->raw(resp);
		json_decref(resp);
		return EXIT_OK;
	}
	json_array_foreach(json_object_get(resp, "spaces"), i, s) {
		json_t *groups = json_object_get(s, "groups");

		printf("%sspace %s  %s\n", i ? "\n" : "", json_string_value(json_object_get(s, "name")),
		       json_string_value(json_object_get(s, "cidr")));
		json_array_foreach(groups, j, g)
			draw_group(g, "", j + 1 == json_array_size(groups));
	}
	json_decref(resp);
	return EXIT_OK;
}
