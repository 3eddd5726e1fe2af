/* SPDX-License-Identifier: MIT */
/*
 * DOC: larch-cni, the CNI plugin (spec 1.0.0 and 1.1.0)
 *
 * The runtime runs this binary once per operation: the network config on
 * stdin, the operation and the pod in CNI_* variables, the result (or the
 * spec's error object) on stdout. ADD asks larchd for the pod's addresses
 * (handle CNI_CONTAINERID:CNI_IFNAME, so a retried ADD gets the same ones),
 * wires the pod (pod.c), and asks the host's agent to reconcile at once.
 * DEL releases and unwires and succeeds when there is nothing left to do.
 * GC releases every endpoint of this network on this host that the runtime
 * no longer lists; STATUS says whether larchd answers. docs/cni.md has the
 * config fields.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "error.h"
#include "httpc.h"
#include "nl.h"
#include "pod.h"
#include "prefix.h"
#include "wire.h"

/* The spec's well-known error codes (and one of our own, >= 100). */
enum cni_code {
	CNI_E_VERSION = 1,
	CNI_E_FIELD = 2,
	CNI_E_CONTAINER = 3,
	CNI_E_ENV = 4,
	CNI_E_IO = 5,
	CNI_E_DECODE = 6,
	CNI_E_CONFIG = 7,
	CNI_E_AGAIN = 11,
	CNI_E_UNAVAILABLE = 50,
	CNI_E_LARCH = 100,
};

static const char *const versions[] = {"1.0.0", "1.1.0", NULL};

struct conf {
	json_t *root;
	const char *version, *name, *server, *tenant, *segment, *host, *token_file;
	const char *agent_socket;
	unsigned mtu, proto;
	long timeout_ms;
	json_t *prev;
};

struct env {
	const char *command, *containerid, *netns, *ifname, *args;
	char handle[512];
	char pod_namespace[256], pod_name[256], tenant[128], segment[128];
};

/* The version errors and results are written in: the config's (copied, as
 * the config is freed before the last error is printed). */
static char cni_version[16] = "1.1.0";

/* Prints the spec's error object and returns 1 (the exit status). */
static int fail(int code, const char *msg, const char *details)
{
	json_t *e = json_pack("{s:s, s:i, s:s}", "cniVersion", cni_version, "code", code, "msg",
			      msg);

	if (details && *details)
		json_object_set_new(e, "details", json_string(details));
	json_dumpf(e, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(e);
	fprintf(stderr, "larch-cni: %s%s%s\n", msg, details && *details ? ": " : "",
		details ? details : "");
	return 1;
}

static bool version_ok(const char *v)
{
	for (size_t i = 0; versions[i]; i++)
		if (!strcmp(v, versions[i]))
			return true;
	return false;
}

/* An optional integer field within [min, max]. */
static int conf_int(json_t *root, const char *field, long min, long max, long *out, char *msg,
		    size_t msglen)
{
	json_t *v = json_object_get(root, field);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(msg, msglen, "network config: %s must be an integer %ld-%ld", field, min,
			 max);
		return -1;
	}
	*out = (long)json_integer_value(v);
	return 0;
}

static int conf_load(struct conf *c, int *code, char *msg, size_t msglen)
{
	static const char *const known[] = {
		"cniVersion", "cniVersions", "name", "type", "args", "ipMasq", "ipam", "dns",
		"runtimeConfig", "capabilities", "prevResult", "disableCheck", "disableGC",
		"server", "tenant", "segment", "host", "mtu", "token_file", "agent_socket",
		"route_protocol", "timeout_ms", NULL};
	json_error_t je;
	const char *key;
	json_t *v;

	c->root = json_loadf(stdin, JSON_REJECT_DUPLICATES, &je);
	if (!c->root || !json_is_object(c->root)) {
		*code = CNI_E_DECODE;
		snprintf(msg, msglen, "network config on stdin: %s (line %d)",
			 c->root ? "not a JSON object" : je.text, je.line);
		return -1;
	}
	json_object_foreach(c->root, key, v) {
		bool ok = !strncmp(key, "cni.dev/", 8);

		for (size_t i = 0; known[i] && !ok; i++)
			ok = !strcmp(key, known[i]);
		if (!ok) {
			char *val = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

			*code = CNI_E_FIELD;
			snprintf(msg, msglen, "unsupported field in network config: %s=%s", key,
				 val ? val : "?");
			free(val);
			return -1;
		}
	}
#define STR(field, member, required)                                                      \
	do {                                                                              \
		v = json_object_get(c->root, field);                                      \
		if (v && !json_is_string(v)) {                                            \
			*code = CNI_E_CONFIG;                                             \
			snprintf(msg, msglen, "network config: %s must be a string", field); \
			return -1;                                                        \
		}                                                                         \
		c->member = v ? json_string_value(v) : NULL;                              \
		if ((required) && (!c->member || !*c->member)) {                          \
			*code = CNI_E_CONFIG;                                             \
			snprintf(msg, msglen, "network config: %s is required", field);   \
			return -1;                                                        \
		}                                                                         \
	} while (0)
	STR("cniVersion", version, true);
	if (!version_ok(c->version)) {
		*code = CNI_E_VERSION;
		snprintf(msg, msglen, "cniVersion %s: larch-cni speaks 1.0.0 and 1.1.0", c->version);
		return -1;
	}
	snprintf(cni_version, sizeof(cni_version), "%s", c->version);
	STR("name", name, true);
	STR("server", server, false);
	STR("tenant", tenant, false);
	STR("segment", segment, false);
	STR("host", host, false);
	STR("token_file", token_file, false);
	STR("agent_socket", agent_socket, false);
#undef STR
	long mtu = 0, proto = NL_PROTO_LARCH, timeout = 10000;
	if (conf_int(c->root, "mtu", 68, 65535, &mtu, msg, msglen) < 0 ||
	    conf_int(c->root, "route_protocol", 1, 255, &proto, msg, msglen) < 0 ||
	    conf_int(c->root, "timeout_ms", 1, 600000, &timeout, msg, msglen) < 0) {
		*code = CNI_E_CONFIG;
		return -1;
	}
	c->mtu = (unsigned)mtu;
	c->proto = (unsigned)proto;
	c->timeout_ms = timeout;
	c->prev = json_object_get(c->root, "prevResult");
	if (!c->server)
		c->server = "unix:/run/larch/larchd.sock";
	return 0;
}

static void copy_arg(char *dst, size_t len, const char *val, size_t n)
{
	if (n >= len)
		n = len - 1;
	memcpy(dst, val, n);
	dst[n] = '\0';
}

/* CNI_ARGS is "K=V;K=V": K8S_POD_NAMESPACE, K8S_POD_NAME and Larch's own
 * LARCH_TENANT / LARCH_SEGMENT (per-pod overrides of the config). Other keys
 * are the runtime's (IgnoreUnknown, K8S_POD_UID, ...) and are ignored. */
static void parse_args(struct env *e)
{
	const char *p = e->args;

	while (p && *p) {
		const char *end = strchr(p, ';'), *eq;
		size_t n = end ? (size_t)(end - p) : strlen(p);

		eq = memchr(p, '=', n);
		if (eq) {
			size_t kl = (size_t)(eq - p), vl = n - kl - 1;
#define ARG(k, member)                                                         \
	if (kl == strlen(k) && !strncmp(p, k, kl))                             \
		copy_arg(e->member, sizeof(e->member), eq + 1, vl);
			ARG("K8S_POD_NAMESPACE", pod_namespace)
			ARG("K8S_POD_NAME", pod_name)
			ARG("LARCH_TENANT", tenant)
			ARG("LARCH_SEGMENT", segment)
#undef ARG
		}
		p = end ? end + 1 : NULL;
	}
}

static int env_load(struct env *e, bool need_netns, char *msg, size_t msglen)
{
	e->containerid = getenv("CNI_CONTAINERID");
	e->netns = getenv("CNI_NETNS");
	e->ifname = getenv("CNI_IFNAME");
	e->args = getenv("CNI_ARGS");
	if (!e->containerid || !*e->containerid) {
		snprintf(msg, msglen, "CNI_CONTAINERID is required");
		return -1;
	}
	if (!e->ifname || !*e->ifname || strlen(e->ifname) >= IFNAMSIZ ||
	    strchr(e->ifname, '/') || strchr(e->ifname, ':')) {
		snprintf(msg, msglen, "CNI_IFNAME %s: must be an interface name of 1-15 bytes",
			 e->ifname ? e->ifname : "(unset)");
		return -1;
	}
	if (need_netns && (!e->netns || !*e->netns)) {
		snprintf(msg, msglen, "CNI_NETNS is required");
		return -1;
	}
	if ((size_t)snprintf(e->handle, sizeof(e->handle), "%s:%s", e->containerid, e->ifname) >=
	    sizeof(e->handle)) {
		snprintf(msg, msglen, "CNI_CONTAINERID is too long");
		return -1;
	}
	parse_args(e);
	return 0;
}

static struct httpc *larchd(const struct conf *c, char *msg, size_t msglen)
{
	struct error err = {0};
	char token[512] = "";
	struct httpc *h;

	if (c->token_file) {
		FILE *f = fopen(c->token_file, "r");
		size_t n;

		if (!f) {
			snprintf(msg, msglen, "token_file %s: %s", c->token_file, strerror(errno));
			return NULL;
		}
		n = fread(token, 1, sizeof(token) - 1, f);
		fclose(f);
		token[n] = '\0';
		while (n && (token[n - 1] == '\n' || token[n - 1] == ' ' || token[n - 1] == '\r'))
			token[--n] = '\0';
	}
	h = httpc_new(c->server, token[0] ? token : NULL, c->timeout_ms, &err);
	if (!h)
		snprintf(msg, msglen, "%s", err.msg);
	return h;
}

/* Maps an answer from larchd to a CNI error; 0 when it is a success. */
static int larchd_error(long status, json_t *resp, const char *what)
{
	json_t *e = json_object_get(resp, "error");
	const char *m = json_string_value(json_object_get(e, "message"));
	char msg[768];

	snprintf(msg, sizeof(msg), "larchd refused %s (%ld)", what, status);
	if (status >= 500)
		return fail(CNI_E_AGAIN, msg, m);
	if (status == 400 || status == 401 || status == 403 || status == 404)
		return fail(CNI_E_CONFIG, msg, m);
	return fail(CNI_E_LARCH, msg, m);
}

/* The agent reconciles at once (best effort: the pod already has its host
 * route, and the agent's own resync catches up if this fails). */
static void agent_nudge(const struct conf *c)
{
	struct error err = {0};
	struct httpc *h;
	long status;
	json_t *resp = NULL;

	if (!c->agent_socket)
		return;
	h = httpc_new(c->agent_socket, NULL, 2000, &err);
	if (!h)
		return;
	if (httpc_request(h, "POST", "/v1/sync", NULL, &status, &resp, &err) < 0)
		fprintf(stderr, "larch-cni: agent %s: %s\n", c->agent_socket, err.msg);
	json_decref(resp);
	httpc_free(h);
}

static char *host_name(const struct conf *c, char *buf, size_t len)
{
	const char *env = getenv("LARCH_HOST");

	if (c->host)
		snprintf(buf, len, "%s", c->host);
	else if (env && *env)
		snprintf(buf, len, "%s", env);
	else if (gethostname(buf, len) < 0)
		snprintf(buf, len, "localhost");
	return buf;
}

static int addrs_of(json_t *ep, struct pod_spec *ps)
{
	json_t *a;
	size_t i;

	json_array_foreach(json_object_get(ep, "addresses"), i, a) {
		const char *s = json_string_value(json_object_get(a, "address"));

		if (!s || ps->naddrs >= 4 || addr_parse(s, &ps->addrs[ps->naddrs], "address",
							NULL) < 0)
			return -1;
		ps->naddrs++;
	}
	return 0;
}

static char *mac_str(const uint8_t m[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

static json_t *result(const struct env *e, const struct pod_spec *ps, const struct pod_result *r)
{
	json_t *ips = json_array(), *routes = json_array();
	char m1[18], m2[18], a[PREFIX_STRLEN];
	bool v4 = false, v6 = false;

	for (size_t i = 0; i < ps->naddrs; i++) {
		struct prefix p = ps->addrs[i];
		char gw[PREFIX_STRLEN];

		p.len = (uint8_t)prefix_bits(p.family);
		addr_fmt(p.family, p.family == 4 ? WIRE_GW4 : wire_gw6, gw);
		json_array_append_new(ips, json_pack("{s:s, s:s, s:i}", "address",
						     prefix_fmt(&p, a), "gateway", gw,
						     "interface", 1));
		v4 |= p.family == 4;
		v6 |= p.family == 6;
	}
	if (v4)
		json_array_append_new(routes, json_pack("{s:s, s:s}", "dst", "0.0.0.0/0", "gw",
							"169.254.1.1"));
	if (v6)
		json_array_append_new(routes, json_pack("{s:s, s:s}", "dst", "::/0", "gw",
							"fe80::ecee:eeff:feee:eeee"));
	return json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s, s:s}], s:o, s:o, s:{}}", "cniVersion",
			 cni_version, "interfaces", "name", r->host_ifname, "mac",
			 mac_str(r->host_mac, m1), "name", e->ifname, "mac",
			 mac_str(r->pod_mac, m2), "sandbox", e->netns, "ips", ips, "routes",
			 routes, "dns");
}

/*
 * One request to larchd. Returns 0 with the answer in *status and *resp
 * (the caller frees *resp); when larchd does not answer, prints the CNI
 * error with `code` (11: try again later; 50 for STATUS) and returns the
 * exit status.
 */
static int call(struct httpc *h, const char *method, const char *path, const json_t *body,
		long *status, json_t **resp, int code)
{
	struct error err = {0};

	*resp = NULL;
	if (httpc_request(h, method, path, body, status, resp, &err) < 0)
		return fail(code, "larchd is not reachable", err.msg);
	return 0;
}

static char *endpoint_path(char *buf, size_t len, const char *handle)
{
	snprintf(buf, len, "/v1/endpoints/%s", handle);
	return buf;
}

static int cmd_add(struct conf *c, struct env *e, struct httpc *h)
{
	char host[256], path[600];
	struct pod_spec ps = {.handle = e->handle, .netns = e->netns, .ifname = e->ifname,
			      .mtu = c->mtu, .proto = (uint8_t)c->proto};
	const char *tenant = e->tenant[0] ? e->tenant : c->tenant;
	const char *segment = e->segment[0] ? e->segment : c->segment;
	struct pod_result r = {0};
	struct error err = {0};
	json_t *body, *resp = NULL, *res;
	long status;
	int ret;

	if (!tenant || !segment)
		return fail(CNI_E_CONFIG, "network config: tenant and segment are required",
			    "set them in the config or per pod in CNI_ARGS (LARCH_TENANT, "
			    "LARCH_SEGMENT)");
	body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "handle", e->handle, "tenant",
			 tenant, "segment", segment, "host", host_name(c, host, sizeof(host)),
			 "kind", "pod", "interface", e->ifname, "labels",
			 "cni.larch.io/network", c->name);
	if (e->pod_name[0])
		json_object_set_new(body, "name", json_string(e->pod_name));
	if (e->pod_namespace[0])
		json_object_set_new(body, "namespace", json_string(e->pod_namespace));
	ret = call(h, "POST", "/v1/endpoints", body, &status, &resp, CNI_E_AGAIN);
	json_decref(body);
	if (ret)
		return ret;
	if (status != 200 && status != 201) {
		ret = larchd_error(status, resp, "the allocation");
		goto out;
	}
	if (addrs_of(resp, &ps) < 0 || !ps.naddrs) {
		ret = fail(CNI_E_LARCH, "larchd gave no address", httpc_body(h));
		goto out;
	}
	if (pod_add(&ps, &r, &err) < 0) {
		json_t *dresp = NULL;

		/* Give the addresses back: the runtime may never call DEL. */
		httpc_request(h, "DELETE", endpoint_path(path, sizeof(path), e->handle), NULL,
			      &status, &dresp, NULL);
		json_decref(dresp);
		ret = fail(err.status == 404 ? CNI_E_CONTAINER : CNI_E_IO, "wiring the pod failed",
			   err.msg);
		goto out;
	}
	agent_nudge(c);
	res = result(e, &ps, &r);
	json_dumpf(res, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(res);
out:
	json_decref(resp);
	return ret;
}

static int cmd_del(struct conf *c, struct env *e, struct httpc *h)
{
	char path[600];
	json_t *resp;
	long status;
	int ret = pod_del(e->handle);

	if (ret < 0)
		return fail(CNI_E_IO, "removing the pod's veth failed", strerror(-ret));
	ret = call(h, "DELETE", endpoint_path(path, sizeof(path), e->handle), NULL, &status, &resp,
		   CNI_E_AGAIN);
	if (ret)
		return ret;
	if (status != 204 && status != 200 && status != 404)
		ret = larchd_error(status, resp, "the release");
	else
		agent_nudge(c);
	json_decref(resp);
	return ret;
}

/* prevResult must name exactly the addresses larchd holds. */
static int check_prev(json_t *prev, const struct pod_spec *ps)
{
	json_t *ips = json_object_get(prev, "ips"), *ip;
	size_t i;

	json_array_foreach(ips, i, ip) {
		const char *s = json_string_value(json_object_get(ip, "address"));
		struct prefix p;
		bool found = false;

		if (!s || prefix_parse(s, &p, 0, "address", NULL) < 0)
			return fail(CNI_E_DECODE, "prevResult: ips[].address is not a prefix", s);
		for (size_t k = 0; k < ps->naddrs; k++)
			found |= ps->addrs[k].family == p.family && ps->addrs[k].addr == p.addr;
		if (!found)
			return fail(CNI_E_LARCH, "prevResult names an address larchd does not hold", s);
	}
	if (json_array_size(ips) != ps->naddrs)
		return fail(CNI_E_LARCH, "prevResult and larchd disagree on the number of addresses",
			    NULL);
	return 0;
}

static int cmd_check(struct conf *c, struct env *e, struct httpc *h)
{
	char path[600];
	struct pod_spec ps = {.handle = e->handle, .netns = e->netns, .ifname = e->ifname};
	struct error err = {0};
	json_t *resp;
	long status;
	int ret;

	if (!json_is_object(c->prev))
		return fail(CNI_E_CONFIG, "CHECK needs prevResult in the network config", NULL);
	ret = call(h, "GET", endpoint_path(path, sizeof(path), e->handle), NULL, &status, &resp,
		   CNI_E_AGAIN);
	if (ret)
		return ret;
	if (status != 200)
		ret = larchd_error(status, resp, "the endpoint lookup");
	else if (addrs_of(resp, &ps) < 0)
		ret = fail(CNI_E_LARCH, "larchd gave an unreadable endpoint", httpc_body(h));
	else if (!(ret = check_prev(c->prev, &ps)) && pod_check(&ps, &err) < 0)
		ret = fail(CNI_E_LARCH, "the pod's wiring is broken", err.msg);
	json_decref(resp);
	return ret;
}

static bool attachment_listed(json_t *valid, const char *handle)
{
	json_t *att;
	size_t k;

	json_array_foreach(valid, k, att) {
		const char *id = json_string_value(json_object_get(att, "containerID"));
		const char *ifn = json_string_value(json_object_get(att, "ifname"));
		size_t n = id ? strlen(id) : 0;

		if (id && ifn && !strncmp(handle, id, n) && handle[n] == ':' &&
		    !strcmp(handle + n + 1, ifn))
			return true;
	}
	return false;
}

/* GC (1.1): every endpoint this network created on this host whose
 * attachment the runtime no longer lists is released and unwired. */
static int cmd_gc(struct conf *c, struct env *e, struct httpc *h)
{
	char host[256], path[600];
	json_t *valid = json_object_get(c->root, "cni.dev/valid-attachments");
	json_t *resp, *ep;
	long status;
	size_t i;
	int ret;

	(void)e;
	if (valid && !json_is_array(valid))
		return fail(CNI_E_CONFIG, "cni.dev/valid-attachments must be an array", NULL);
	snprintf(path, sizeof(path), "/v1/endpoints?host=%s", host_name(c, host, sizeof(host)));
	if ((ret = call(h, "GET", path, NULL, &status, &resp, CNI_E_AGAIN)))
		return ret;
	if (status != 200) {
		ret = larchd_error(status, resp, "the endpoint list");
		goto out;
	}
	json_array_foreach(json_object_get(resp, "items"), i, ep) {
		const char *handle = json_string_value(json_object_get(ep, "handle"));
		const char *net = json_string_value(
			json_object_get(json_object_get(ep, "labels"), "cni.larch.io/network"));
		json_t *dresp;

		if (!handle || !net || strcmp(net, c->name) || attachment_listed(valid, handle))
			continue;
		pod_del(handle);
		ret = call(h, "DELETE", endpoint_path(path, sizeof(path), handle), NULL, &status,
			   &dresp, CNI_E_AGAIN);
		json_decref(dresp);
		if (ret)
			goto out;
		fprintf(stderr, "larch-cni: gc: released %s\n", handle);
	}
	agent_nudge(c);
out:
	json_decref(resp);
	return ret;
}

static int cmd_status(struct conf *c, struct env *e, struct httpc *h)
{
	json_t *resp;
	long status;
	int ret;

	(void)c;
	(void)e;
	if ((ret = call(h, "GET", "/healthz", NULL, &status, &resp, CNI_E_UNAVAILABLE)))
		return ret;
	if (status != 200)
		ret = fail(CNI_E_UNAVAILABLE, "larchd is not healthy", httpc_body(h));
	json_decref(resp);
	return ret;
}

static const struct {
	const char *name;
	int (*fn)(struct conf *, struct env *, struct httpc *);
	bool need_container, need_netns;
} commands[] = {
	{"ADD", cmd_add, true, true},
	{"DEL", cmd_del, true, false},
	{"CHECK", cmd_check, true, true},
	{"GC", cmd_gc, false, false},
	{"STATUS", cmd_status, false, false},
};

static int cmd_version(void)
{
	json_t *in = json_loadf(stdin, 0, NULL);
	const char *v = json_string_value(json_object_get(in, "cniVersion"));
	json_t *out = json_pack("{s:s, s:[s, s]}", "cniVersion", v && version_ok(v) ? v : "1.1.0",
				"supportedVersions", versions[0], versions[1]);

	json_dumpf(out, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(out);
	json_decref(in);
	return 0;
}

int main(void)
{
	const char *command = getenv("CNI_COMMAND");
	struct conf c = {0};
	struct env e = {0};
	struct httpc *h;
	char msg[600];
	int code, ret;

	if (!command || !*command)
		return fail(CNI_E_ENV, "CNI_COMMAND is required", "one of ADD DEL CHECK GC STATUS VERSION");
	if (!strcmp(command, "VERSION"))
		return cmd_version();
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(command, commands[i].name))
			continue;
		if (conf_load(&c, &code, msg, sizeof(msg)) < 0) {
			ret = fail(code, msg, NULL);
			json_decref(c.root);
			return ret;
		}
		if (commands[i].need_container &&
		    env_load(&e, commands[i].need_netns, msg, sizeof(msg)) < 0) {
			ret = fail(CNI_E_ENV, msg, NULL);
		} else if (!(h = larchd(&c, msg, sizeof(msg)))) {
			ret = fail(CNI_E_CONFIG, "server", msg);
		} else {
			ret = commands[i].fn(&c, &e, h);
			httpc_free(h);
		}
		json_decref(c.root);
		return ret;
	}
	snprintf(msg, sizeof(msg), "CNI_COMMAND %s: not one of ADD DEL CHECK GC STATUS VERSION",
		 command);
	return fail(CNI_E_ENV, msg, NULL);
}
