/* SPDX-License-Identifier: MIT */
/*
 * DOC: larchctl, the operator's CLI
 *
 *   larchctl [global options] KIND VERB [ARGS] [options]
 *   larchctl [global options] apply -f FILE | tree | changes | health | metrics
 *
 * A table of subcommands (wireguard-tools' shape); every object command maps
 * to one API call (docs/api.md), with the body built from the options. Output
 * goes through a backend: human tables, or the server's JSON (-o json).
 * Server and token: flags, then LARCH_SERVER / LARCH_TOKEN(_FILE), then the
 * config file ($LARCH_CONFIG or ~/.config/larch/larchctl.yaml), then
 * http://127.0.0.1:7420.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>

#include "larchctl.h"
#include "yamljson.h"

static const struct column space_cols[] = {
	{ "NAME", "name" }, { "CIDR", "cidr" }, { "BLOCK", "block_size" },
	{ "BLOCKS", "blocks" }, { "RESERVED", "reserved" }, { NULL, NULL } };
static const struct column group_cols[] = {
	{ "NAME", "name" }, { "PARENT", "parent" }, { "PREFIXES", "prefixes" },
	{ "CHILDREN", "children" }, { "HOSTS", "hosts" }, { NULL, NULL } };
static const struct column host_cols[] = {
	{ "NAME", "name" }, { "ADDRESS", "address" }, { "GROUP", "group" },
	{ "ENDPOINTS", "endpoints" }, { "BLOCKS", "blocks" }, { NULL, NULL } };
static const struct column tenant_cols[] = {
	{ "NAME", "name" }, { "SEGMENTS", "segments" }, { "LABELS", "labels" }, { NULL, NULL } };
static const struct column segment_cols[] = {
	{ "TENANT", "tenant" }, { "NAME", "name" }, { "SPACES", "spaces" },
	{ "ENDPOINTS", "endpoints" }, { "LABELS", "labels" }, { NULL, NULL } };
static const struct column endpoint_cols[] = {
	{ "HANDLE", "handle" }, { "TENANT", "tenant" }, { "SEGMENT", "segment" },
	{ "HOST", "host" }, { "KIND", "kind" }, { "ADDRESSES", "addresses" }, { NULL, NULL } };
static const struct column block_cols[] = {
	{ "SPACE", "space" }, { "CIDR", "cidr" }, { "GROUP", "group" }, { "HOST", "host" },
	{ "TENANT", "tenant" }, { "SEGMENT", "segment" }, { "STATE", "state" },
	{ "USED", "used" }, { "CAPACITY", "capacity" }, { NULL, NULL } };

const struct kind kind_space = { "space", "spaces", "/v1/spaces", space_cols };
const struct kind kind_group = { "group", "groups", "/v1/groups", group_cols };
const struct kind kind_host = { "host", "hosts", "/v1/hosts", host_cols };
const struct kind kind_tenant = { "tenant", "tenants", "/v1/tenants", tenant_cols };
const struct kind kind_segment = { "segment", "segments", "/v1/tenants/%s/segments", segment_cols };
const struct kind kind_endpoint = { "endpoint", "endpoints", "/v1/endpoints", endpoint_cols };
const struct kind kind_block = { "block", "blocks", "/v1/blocks", block_cols };

void ctl_errorx(const char *fmt, ...)
{
	va_list ap;

	fputs("larchctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_call(struct ctl *c, const char *method, const char *path, json_t *body, long *status,
	     json_t **resp)
{
	struct error err = { 0 };
	json_t *r = NULL;
	long st = 0;

	if (resp)
		*resp = NULL;
	if (httpc_request(c->http, method, path, body, &st, &r, &err) < 0) {
		ctl_errorx("%s", err.msg);
		return EXIT_UNREACHABLE;
	}
	if (status)
		*status = st;
	if (st >= 400) {
		json_t *e = json_object_get(r, "error");
		const char *msg = json_string_value(json_object_get(e, "message"));

		if (c->json && r)
			output_json.raw(r);
		if (msg)
			ctl_errorx("%s", msg);
		else
			ctl_errorx("%s %s: HTTP %ld: %.200s", method, path, st, httpc_body(c->http));
		json_decref(r);
		return EXIT_SERVER;
	}
	if (resp)
		*resp = r;
	else
		json_decref(r);
	return EXIT_OK;
}

/* ---- options that become fields of the request body ---- */

enum ftype { F_STR, F_INT, F_STRV, F_LABELS };

struct field {
	const char *opt;   /* --opt */
	const char *json;  /* body field */
	enum ftype type;
	const char *help;
};

static const struct field fields[] = {
	{ "cidr", "cidr", F_STR, "CIDR of a space" },
	{ "block-size", "block_size", F_INT, "prefix length of a space's blocks" },
	{ "reserved", "reserved", F_STRV, "address or CIDR never handed out (repeat)" },
	{ "parent", "parent", F_STR, "parent group / parent endpoint handle" },
	{ "capacity", "capacity", F_INT, "addresses a group must hold per space" },
	{ "address", "address", F_STR, "a host's own address" },
	{ "group", "group", F_STR, "a host's group" },
	{ "label", "labels", F_LABELS, "KEY=VALUE (repeat)" },
	{ "space", "spaces", F_STRV, "a segment's space (repeat); filter for blocks" },
	{ "host", "host", F_STR, "host (endpoint create, filters)" },
	{ "tenant", "tenant", F_STR, "tenant" },
	{ "segment", "segment", F_STR, "segment" },
	{ "kind", "kind", F_STR, "endpoint kind: pod, vm, container, other" },
	{ "name", "name", F_STR, "endpoint name" },
	{ "namespace", "namespace", F_STR, "endpoint namespace" },
	{ "interface", "interface", F_STR, "endpoint interface" },
	{ "mac", "mac", F_STR, "endpoint MAC address" },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* Parse the options after a verb into a JSON object of fields (strings kept
 * as given; the server checks them). Leaves optind at the first positional. */
static int parse_fields(int argc, char **argv, const char *allowed, json_t **out)
{
	struct option opts[NFIELDS + 1];
	json_t *o = json_object();
	int ch, idx;

	for (size_t i = 0; i < NFIELDS; i++)
		opts[i] = (struct option){ fields[i].opt, required_argument, NULL, (int)i + 256 };
	opts[NFIELDS] = (struct option){ 0 };
	optind = 0; /* 0: glibc re-reads the optstring (permuting or not) */
	opterr = 0;
	/* GNU getopt permutes: options may come before or after NAME */
	while ((ch = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		const struct field *f;
		char *end;

		if (ch < 256) {
			ctl_errorx("%s: unknown option %s", argv[0], argv[optind - 1]);
			json_decref(o);
			return EXIT_USAGE;
		}
		f = &fields[ch - 256];
		if (!strstr(allowed, f->opt) ||
		    (strstr(allowed, f->opt)[strlen(f->opt)] != ' ' &&
		     strstr(allowed, f->opt)[strlen(f->opt)] != '\0')) {
			ctl_errorx("%s: --%s does not apply here (options: %s)", argv[0], f->opt,
				   allowed[0] ? allowed : "none");
			json_decref(o);
			return EXIT_USAGE;
		}
		switch (f->type) {
		case F_STR:
			json_object_set_new(o, f->json, json_string(optarg));
			break;
		case F_INT: {
			long long v = strtoll(optarg, &end, 10);

			if (!*optarg || *end) {
				ctl_errorx("--%s %s: expected a number", f->opt, optarg);
				json_decref(o);
				return EXIT_USAGE;
			}
			json_object_set_new(o, f->json, json_integer(v));
			break;
		}
		case F_STRV:
			if (!json_object_get(o, f->json))
				json_object_set_new(o, f->json, json_array());
			json_array_append_new(json_object_get(o, f->json), json_string(optarg));
			break;
		case F_LABELS: {
			char *eq = strchr(optarg, '=');

			if (!eq || eq == optarg) {
				ctl_errorx("--label %s: expected KEY=VALUE", optarg);
				json_decref(o);
				return EXIT_USAGE;
			}
			if (!json_object_get(o, f->json))
				json_object_set_new(o, f->json, json_object());
			*eq = '\0';
			json_object_set_new(json_object_get(o, f->json), optarg, json_string(eq + 1));
			*eq = '=';
			break;
		}
		}
	}
	*out = o;
	return EXIT_OK;
}

static char *escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *out = e ? strdup(e) : NULL;

	curl_free(e);
	return out;
}

/* Path of a kind (its collection), for a segment with the tenant filled. */
static char *kind_path(const struct kind *k, const char *tenant, const char *name)
{
	char *t = tenant ? escape(tenant) : NULL, *n = name ? escape(name) : NULL, *out = NULL,
	     *base = NULL;

	if (k == &kind_segment) {
		if (asprintf(&base, k->path, t) < 0)
			base = NULL;
	} else {
		base = strdup(k->path);
	}
	if (base && n) {
		if (asprintf(&out, "%s/%s", base, n) < 0)
			out = NULL;
		free(base);
	} else {
		out = base;
	}
	free(t);
	free(n);
	return out;
}

/* ---- the object subcommands ---- */

struct verb_ctx {
	struct ctl *c;
	const struct kind *k;
	const char *create_opts; /* the options create takes */
	const char *list_opts;   /* the filters list takes */
	bool can_create, can_delete;
};

static int usage_kind(const struct verb_ctx *v)
{
	bool seg = v->k == &kind_segment;

	fprintf(stderr, "usage: larchctl %s list%s%s%s\n", v->k->name, seg ? " TENANT" : "",
		v->list_opts[0] ? " [--" : "", v->list_opts[0] ? "filters]" : "");
	if (v->k != &kind_block)
		fprintf(stderr, "       larchctl %s get %s\n", v->k->name,
			seg ? "TENANT NAME" : v->k == &kind_endpoint ? "HANDLE" : "NAME");
	if (v->can_create) {
		char opts[256] = "";

		for (const char *p = v->create_opts; *p; p++) {
			if (p == v->create_opts || p[-1] == ' ')
				strcat(opts, p == v->create_opts ? "--" : " --");
			if (*p != ' ')
				strncat(opts, p, 1);
		}
		fprintf(stderr, "       larchctl %s create %s [%s]\n", v->k->name,
			seg ? "TENANT NAME" : v->k == &kind_endpoint ? "HANDLE" : "NAME", opts);
	}
	if (v->can_delete)
		fprintf(stderr, "       larchctl %s delete %s\n", v->k->name,
			seg ? "TENANT NAME" : v->k == &kind_endpoint ? "HANDLE" : "NAME");
	if (v->k == &kind_endpoint)
		fprintf(stderr, "       larchctl endpoint patch HANDLE [--kind --name --namespace "
				"--interface --mac --label]\n"
				"       larchctl endpoint bind HANDLE HOST\n"
				"       larchctl endpoint unbind HANDLE\n");
	fprintf(stderr, "options name fields of the object (docs/api.md); run "
			"`larchctl --help` for the global options\n");
	return EXIT_USAGE;
}

static int do_list(struct verb_ctx *v, int argc, char **argv)
{
	json_t *filters, *resp, *val;
	const char *key, *tenant = NULL;
	char *path, *query = strdup(""), *tmp;
	int r;

	if ((r = parse_fields(argc, argv, v->list_opts, &filters)) != EXIT_OK)
		return r;
	if (v->k == &kind_segment) {
		if (argc - optind != 1) {
			json_decref(filters);
			return usage_kind(v);
		}
		tenant = argv[optind];
	} else if (argc != optind) {
		json_decref(filters);
		return usage_kind(v);
	}
	json_object_foreach(filters, key, val) {
		const char *s = json_is_array(val) ? json_string_value(json_array_get(val, 0))
						   : json_string_value(val);
		char *e = escape(s ? s : "");

		if (asprintf(&tmp, "%s%c%s=%s", query, query[0] ? '&' : '?',
			     !strcmp(key, "spaces") ? "space" : key, e) < 0)
			tmp = NULL;
		free(e);
		free(query);
		query = tmp;
	}
	json_decref(filters);
	path = kind_path(v->k, tenant, NULL);
	if (asprintf(&tmp, "%s%s", path, query ? query : "") < 0)
		tmp = NULL;
	r = ctl_call(v->c, "GET", tmp, NULL, NULL, &resp);
	if (r == EXIT_OK)
		v->c->out->list(v->k, resp);
	json_decref(resp);
	free(tmp);
	free(path);
	free(query);
	return r;
}

/* get/delete/create: positional NAME (or TENANT NAME) */
static int one(struct verb_ctx *v, const char *verb, int argc, char **argv)
{
	bool seg = v->k == &kind_segment;
	const char *opts = !strcmp(verb, "create") ? v->create_opts
			   : !strcmp(verb, "patch") ? "kind name namespace interface mac label"
						    : "";
	int need = seg ? 2 : 1, r;
	json_t *body, *resp = NULL;
	long status = 0;
	char *path;

	if ((r = parse_fields(argc, argv, opts, &body)) != EXIT_OK)
		return r;
	if (argc - optind != need) {
		json_decref(body);
		return usage_kind(v);
	}
	if (!strcmp(verb, "create")) {
		json_object_set_new(body, v->k == &kind_endpoint ? "handle" : "name",
				    json_string(argv[optind + need - 1]));
		path = kind_path(v->k, seg ? argv[optind] : NULL, NULL);
		r = ctl_call(v->c, "POST", path, body, &status, &resp);
	} else {
		path = kind_path(v->k, seg ? argv[optind] : NULL, argv[optind + need - 1]);
		r = ctl_call(v->c, !strcmp(verb, "get") ? "GET" : !strcmp(verb, "patch") ? "PATCH"
												: "DELETE",
			     path, !strcmp(verb, "patch") ? body : NULL, &status, &resp);
	}
	if (r == EXIT_OK) {
		if (!strcmp(verb, "delete")) {
			if (!v->c->json)
				printf("%s %s deleted\n", v->k->name, argv[optind + need - 1]);
		} else {
			if (!strcmp(verb, "create") && !v->c->json)
				printf("%s %s %s\n", v->k->name, argv[optind + need - 1],
				       status == 201 ? "created" : "unchanged (it already existed)");
			if (resp)
				v->c->out->object(v->k, resp);
		}
	}
	json_decref(resp);
	json_decref(body);
	free(path);
	return r;
}

static int do_bind(struct verb_ctx *v, int argc, char **argv, bool bind)
{
	json_t *body, *resp = NULL;
	char *path, *tmp;
	int r;

	if ((r = parse_fields(argc, argv, "", &body)) != EXIT_OK)
		return r;
	json_decref(body);
	if (argc - optind != (bind ? 2 : 1))
		return usage_kind(v);
	path = kind_path(v->k, NULL, argv[optind]);
	if (asprintf(&tmp, "%s/bind", path) < 0)
		tmp = NULL;
	body = json_pack("{s:o}", "host", bind ? json_string(argv[optind + 1]) : json_null());
	r = ctl_call(v->c, "POST", tmp, body, NULL, &resp);
	if (r == EXIT_OK)
		v->c->out->object(v->k, resp);
	json_decref(resp);
	json_decref(body);
	free(tmp);
	free(path);
	return r;
}

static int object_cmd(struct verb_ctx *v, int argc, char **argv)
{
	const char *verb;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage_kind(v);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	verb = argv[1];
	argc--;
	argv++;
	if (!strcmp(verb, "list") || !strcmp(verb, "ls"))
		return do_list(v, argc, argv);
	if (!strcmp(verb, "get") && v->k != &kind_block)
		return one(v, verb, argc, argv);
	if (!strcmp(verb, "create") && v->can_create)
		return one(v, verb, argc, argv);
	if ((!strcmp(verb, "delete") || !strcmp(verb, "rm")) && v->can_delete)
		return one(v, "delete", argc, argv);
	if (v->k == &kind_endpoint && !strcmp(verb, "patch"))
		return one(v, verb, argc, argv);
	if (v->k == &kind_endpoint && (!strcmp(verb, "bind") || !strcmp(verb, "unbind")))
		return do_bind(v, argc, argv, !strcmp(verb, "bind"));
	ctl_errorx("%s: unknown verb %s", v->k->name, verb);
	return usage_kind(v);
}

static int cmd_space(struct ctl *c, int argc, char **argv)
{
	struct verb_ctx v = { c, &kind_space, "cidr block-size reserved", "", true, true };
	return object_cmd(&v, argc, argv);
}
static int cmd_group(struct ctl *c, int argc, char **argv)
{
	struct verb_ctx v = { c, &kind_group, "parent capacity label", "", true, true };
	return object_cmd(&v, argc, argv);
}
static int cmd_host(struct ctl *c, int argc, char **argv)
{
	struct verb_ctx v = { c, &kind_host, "address group label", "", true, true };
	return object_cmd(&v, argc, argv);
}
static int cmd_tenant(struct ctl *c, int argc, char **argv)
{
	struct verb_ctx v = { c, &kind_tenant, "label", "", true, true };
	return object_cmd(&v, argc, argv);
}
static int cmd_segment(struct ctl *c, int argc, char **argv)
{
	struct verb_ctx v = { c, &kind_segment, "space label", "", true, true };
	return object_cmd(&v, argc, argv);
}
static int cmd_endpoint(struct ctl *c, int argc, char **argv)
{
	struct verb_ctx v = { c, &kind_endpoint,
			      "tenant segment host kind name namespace interface mac parent label",
			      "host tenant segment", true, true };
	return object_cmd(&v, argc, argv);
}
static int cmd_block(struct ctl *c, int argc, char **argv)
{
	struct verb_ctx v = { c, &kind_block, "", "host space", false, false };
	return object_cmd(&v, argc, argv);
}

/* ---- feed, health, metrics ---- */

static int cmd_changes(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = { { "since", required_argument, NULL, 's' },
					      { "wait", required_argument, NULL, 'w' },
					      { "follow", no_argument, NULL, 'f' },
					      { "help", no_argument, NULL, 'h' },
					      { 0 } };
	long long since = 0, wait = 0;
	bool follow = false;
	int ch, r;

	optind = 0; /* 0: glibc re-reads the optstring (permuting or not) */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 's': since = atoll(optarg); break;
		case 'w': wait = atoll(optarg); break;
		case 'f': follow = true; break;
		default:
			fprintf(stderr, "usage: larchctl changes [--since N] [--wait S] [--follow]\n");
			return ch == 'h' ? EXIT_OK : EXIT_USAGE;
		}
	}
	if (optind != argc || since < 0 || wait < 0 || wait > 300) {
		fprintf(stderr, "usage: larchctl changes [--since N] [--wait 0-300] [--follow]\n");
		return EXIT_USAGE;
	}
	do {
		char path[96];
		json_t *resp, *chg;
		size_t i;

		snprintf(path, sizeof(path), "/v1/changes?since=%lld&wait=%lld", since,
			 follow ? 60 : wait);
		if ((r = ctl_call(c, "GET", path, NULL, NULL, &resp)) != EXIT_OK)
			return r;
		if (c->json) {
			c->out->raw(resp);
		} else {
			json_array_foreach(json_object_get(resp, "changes"), i, chg)
				printf("%-8lld %-6s %-8s %s\n",
				       (long long)json_integer_value(json_object_get(chg, "revision")),
				       json_string_value(json_object_get(chg, "type")),
				       json_string_value(json_object_get(chg, "kind")),
				       json_string_value(json_object_get(chg, "key")));
			fflush(stdout);
		}
		since = json_integer_value(json_object_get(resp, "revision"));
		json_decref(resp);
	} while (follow);
	return EXIT_OK;
}

static int cmd_health(struct ctl *c, int argc, char **argv)
{
	json_t *resp;
	int r;
	(void)argv;

	if (argc != 1)
		return EXIT_USAGE;
	if ((r = ctl_call(c, "GET", "/healthz", NULL, NULL, &resp)) != EXIT_OK)
		return r;
	if (c->json)
		c->out->raw(resp);
	else
		printf("%s (revision %lld)\n", json_string_value(json_object_get(resp, "status")),
		       (long long)json_integer_value(json_object_get(resp, "revision")));
	json_decref(resp);
	return EXIT_OK;
}

static int cmd_metrics(struct ctl *c, int argc, char **argv)
{
	int r;
	(void)argv;

	if (argc != 1)
		return EXIT_USAGE;
	if ((r = ctl_call(c, "GET", "/metrics", NULL, NULL, NULL)) == EXIT_OK)
		fputs(httpc_body(c->http), stdout);
	return r;
}

static const struct {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *help;
} subcommands[] = {
	{ "space", cmd_space, "address spaces: list, get, create, delete" },
	{ "group", cmd_group, "topology groups (zone, spine, rack...): list, get, create, delete" },
	{ "host", cmd_host, "hosts: list, get, create, delete" },
	{ "tenant", cmd_tenant, "tenants: list, get, create, delete" },
	{ "segment", cmd_segment, "a tenant's segments: list, get, create, delete" },
	{ "endpoint", cmd_endpoint, "endpoints: list, get, create (allocate), patch, delete (release), bind, unbind" },
	{ "block", cmd_block, "blocks: list" },
	{ "apply", cmd_apply, "apply -f FILE: create what a YAML/JSON manifest declares" },
	{ "tree", cmd_tree, "draw space -> groups -> hosts -> blocks" },
	{ "changes", cmd_changes, "the change feed: [--since N] [--wait S] [--follow]" },
	{ "health", cmd_health, "is larchd up, and at which revision" },
	{ "metrics", cmd_metrics, "larchd's Prometheus metrics" },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: larchctl [-s SERVER] [--token T | --token-file F] [-o table|json] COMMAND ...\n\n"
		"  -s, --server URL     http://HOST:PORT or unix:/path/to.sock\n"
		"                       (env LARCH_SERVER; default http://127.0.0.1:7420)\n"
		"      --token T        bearer token for changes (env LARCH_TOKEN)\n"
		"      --token-file F   read the token from F (env LARCH_TOKEN_FILE)\n"
		"  -o, --output FORMAT  table (default) or json\n"
		"      --timeout S      give up on a request after S seconds (default 30)\n"
		"  config file: $LARCH_CONFIG or ~/.config/larch/larchctl.yaml "
		"(keys: server, token_file)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(f, "\nexit codes: 0 ok, 1 the server refused, 2 usage, 3 server unreachable\n"
		   "`larchctl COMMAND --help` for a command's usage; docs/cli.md for more\n");
}

static char *read_token_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[512];

	if (!f) {
		ctl_errorx("token file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

/* The config file, when there is one: fills *server / *token_file if unset. */
static int load_config(char **server, char **token_file)
{
	const char *path = getenv("LARCH_CONFIG"), *home = getenv("HOME");
	char buf[4096];
	struct error err = { 0 };
	json_t *docs, *doc, *v;
	const char *k;

	if (!path) {
		if (!home)
			return 0;
		snprintf(buf, sizeof(buf), "%s/.config/larch/larchctl.yaml", home);
		if (access(buf, F_OK) != 0)
			return 0;
		path = buf;
	}
	docs = yamljson_load_file(path, &err);
	if (!docs) {
		ctl_errorx("config %s", err.msg);
		return -1;
	}
	doc = json_array_get(docs, 0);
	json_object_foreach(doc, k, v) {
		if (strcmp(k, "server") && strcmp(k, "token_file")) {
			ctl_errorx("config %s: %s: unknown key (known: server, token_file)", path, k);
			json_decref(docs);
			return -1;
		}
		if (!json_is_string(v)) {
			ctl_errorx("config %s: %s: must be a string", path, k);
			json_decref(docs);
			return -1;
		}
		if (!strcmp(k, "server") && !*server)
			*server = strdup(json_string_value(v));
		if (!strcmp(k, "token_file") && !*token_file)
			*token_file = strdup(json_string_value(v));
	}
	json_decref(docs);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "output", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *server = NULL, *token = NULL, *token_file = NULL;
	struct ctl c = { .out = &output_table };
	struct error err = { 0 };
	long timeout = 30;
	int ch, r = EXIT_USAGE;
	size_t i;

	while ((ch = getopt_long(argc, argv, "+s:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's': server = strdup(optarg); break;
		case 't': token = strdup(optarg); break;
		case 'T': token_file = strdup(optarg); break;
		case 'W': timeout = atol(optarg); break;
		case 'o':
			if (!strcmp(optarg, "json")) {
				c.out = &output_json;
				c.json = true;
			} else if (strcmp(optarg, "table")) {
				ctl_errorx("-o %s: expected table or json", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!server && getenv("LARCH_SERVER"))
		server = strdup(getenv("LARCH_SERVER"));
	if (!token && !token_file && getenv("LARCH_TOKEN"))
		token = strdup(getenv("LARCH_TOKEN"));
	if (!token && !token_file && getenv("LARCH_TOKEN_FILE"))
		token_file = strdup(getenv("LARCH_TOKEN_FILE"));
	{
		char *cfg_token_file = NULL;

		if (load_config(&server, &cfg_token_file) < 0)
			goto out;
		if (!token && !token_file)
			token_file = cfg_token_file;
		else
			free(cfg_token_file);
	}
	if (!server)
		server = strdup("http://127.0.0.1:7420");
	if (!token && token_file && !(token = read_token_file(token_file)))
		goto out;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c.http = httpc_new(server, token, timeout * 1000, &err);
	if (!c.http) {
		ctl_errorx("%s", err.msg[0] ? err.msg : "out of memory");
		goto out;
	}
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		size_t n = strlen(subcommands[i].name);

		/* "spaces" works as well as "space" */
		if (!strncmp(argv[optind], subcommands[i].name, n) &&
		    (argv[optind][n] == '\0' || (argv[optind][n] == 's' && argv[optind][n + 1] == '\0'))) {
			r = subcommands[i].fn(&c, argc - optind, argv + optind);
			break;
		}
	}
	if (i == sizeof(subcommands) / sizeof(subcommands[0])) {
		ctl_errorx("%s: unknown command", argv[optind]);
		usage(stderr);
	}
out:
	httpc_free(c.http);
	free(server);
	free(token);
	free(token_file);
	return r;
}
