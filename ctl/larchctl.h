/* SPDX-License-Identifier: MIT */
#ifndef LARCHCTL_H
#define LARCHCTL_H

#include <stdbool.h>
#include <jansson.h>

#include "error.h"
#include "httpc.h"

/* Exit codes (docs/cli.md). */
enum {
	EXIT_OK = 0,
	EXIT_SERVER = 1,      /* the server answered with an error */
	EXIT_USAGE = 2,       /* bad command line or manifest */
	EXIT_UNREACHABLE = 3, /* no answer from the server */
};

/* A kind of object as the CLI shows it: its API path and its table. */
struct column {
	const char *header;
	const char *field; /* top-level field of the object */
};

struct kind {
	const char *name;   /* "space" */
	const char *plural; /* "spaces" */
	const char *path;   /* "/v1/spaces" ("%s" for a tenant's segments) */
	const struct column *cols;
};

extern const struct kind kind_space, kind_group, kind_host, kind_tenant, kind_segment,
	kind_endpoint, kind_block;

/* Output backends (bgpctl's struct output): table for people, json for tools. */
struct output {
	void (*object)(const struct kind *k, json_t *obj);
	void (*list)(const struct kind *k, json_t *body); /* {revision, items} */
	void (*raw)(json_t *v); /* anything else (tree, changes, health) */
};
extern const struct output output_table, output_json;

struct ctl {
	struct httpc *http;
	const struct output *out;
	bool json;
};

/* Call the server; on an error answer print it and return its exit code.
 * *resp (may be NULL) receives the body on success. */
int ctl_call(struct ctl *c, const char *method, const char *path, json_t *body, long *status,
	     json_t **resp);
void ctl_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Format one JSON value for a table cell into a new string. */
char *cell_text(json_t *v);

int cmd_apply(struct ctl *c, int argc, char **argv);
int cmd_tree(struct ctl *c, int argc, char **argv);

#endif
