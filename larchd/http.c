/* SPDX-License-Identifier: MIT */
/*
 * DOC: the HTTP layer
 *
 * libmicrohttpd with a small pool of epoll threads (one per CPU, 2 to 8).
 * Handlers never block on I/O: a handler computes its answer under the model
 * lock and notes the commit ticket the answer depends on; when that ticket is
 * not durable yet, the connection is suspended, the answer kept, and the
 * group-commit thread resumes it once the batch is on disk (commit_defer).
 * A change-feed long-poll parks the same way until the revision moves or its
 * wait is over. So a few threads serve many clients, and a batch of
 * acknowledgements costs one wake-up per pool thread rather than one thread
 * switch per request — on a small (virtual) machine, thread switches are
 * what limits throughput, not the fsync.
 *
 * This file only reads the body (at most 1 MiB), checks the bearer token on
 * mutating methods, routes by a table of (method, path pattern) and writes the
 * JSON (or text) answer; the handlers live in api*.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "larchd.h"
#include "log.h"

#define BODY_MAX (1024 * 1024)

struct route {
	const char *method;
	const char *pattern; /* '*' matches one path segment */
	handler_fn fn;
};

static const struct route routes[] = {
	{ "GET", "/healthz", api_healthz },
	{ "GET", "/metrics", api_metrics },
	{ "GET", "/v1/spaces", api_space_list },
	{ "POST", "/v1/spaces", api_space_create },
	{ "GET", "/v1/spaces/*", api_space_get },
	{ "DELETE", "/v1/spaces/*", api_space_delete },
	{ "GET", "/v1/groups", api_group_list },
	{ "POST", "/v1/groups", api_group_create },
	{ "GET", "/v1/groups/*", api_group_get },
	{ "DELETE", "/v1/groups/*", api_group_delete },
	{ "GET", "/v1/hosts", api_host_list },
	{ "POST", "/v1/hosts", api_host_create },
	{ "GET", "/v1/hosts/*", api_host_get },
	{ "DELETE", "/v1/hosts/*", api_host_delete },
	{ "GET", "/v1/tenants", api_tenant_list },
	{ "POST", "/v1/tenants", api_tenant_create },
	{ "GET", "/v1/tenants/*", api_tenant_get },
	{ "DELETE", "/v1/tenants/*", api_tenant_delete },
	{ "PATCH", "/v1/tenants/*", api_tenant_patch },
	{ "GET", "/v1/tenants/*/segments", api_segment_list },
	{ "POST", "/v1/tenants/*/segments", api_segment_create },
	{ "GET", "/v1/tenants/*/segments/*", api_segment_get },
	{ "DELETE", "/v1/tenants/*/segments/*", api_segment_delete },
	{ "GET", "/v1/endpoints", api_endpoint_list },
	{ "POST", "/v1/endpoints", api_endpoint_create },
	{ "GET", "/v1/endpoints/*", api_endpoint_get },
	{ "PATCH", "/v1/endpoints/*", api_endpoint_patch },
	{ "DELETE", "/v1/endpoints/*", api_endpoint_delete },
	{ "POST", "/v1/endpoints/*/bind", api_endpoint_bind },
	{ "GET", "/v1/blocks", api_block_list },
	{ "GET", "/v1/tree", api_tree },
	{ "GET", "/v1/changes", api_changes },
	{ "GET", "/v1/policies", api_policy_list },
	{ "POST", "/v1/policies", api_policy_put },
	{ "GET", "/v1/policies/*/*", api_policy_get },
	{ "DELETE", "/v1/policies/*/*", api_policy_delete },
	{ "GET", "/v1/policies/*/*/*", api_policy_get },
	{ "DELETE", "/v1/policies/*/*/*", api_policy_delete },
	{ "GET", "/v1/namespaces", api_namespace_list },
	{ "POST", "/v1/namespaces", api_namespace_put },
	{ "GET", "/v1/namespaces/*", api_namespace_get },
	{ "DELETE", "/v1/namespaces/*", api_namespace_delete },
};

enum conn_phase {
	P_REQUEST,   /* reading the body, then dispatch */
	P_COMMIT,    /* suspended: the answer waits for a durable ticket */
	P_FEED,      /* suspended: a long-poll waits for a revision */
};

struct conn_state {
	char *body;
	size_t len, cap;
	bool too_large;
	struct timespec start;
	enum conn_phase phase;
	struct commit_waiter w;
	/* the answer held while P_COMMIT */
	int status;
	json_t *json;
	char *text;
};

static struct MHD_Daemon *tcp_daemon, *unix_daemon;
/* Set at shutdown: nothing is suspended any more (MHD must not stop with a
 * suspended connection), long-polls answer at once, connections close. */
static atomic_bool stopping;
/* Connections suspended and not yet back in on_request: MHD aborts if it
 * stops while one is still suspended, so http_stop waits for this to be 0. */
static atomic_int parked;
/* Calls of on_request under way (one may have seen `stopping` false and be
 * about to park). */
static atomic_int inflight;
static int unix_fd = -1;
static char *unix_path;

/*
 * Match url against pattern; fill args with pointers into buf (a copy of
 * url whose '/' are cut). Returns true on a match.
 */
static bool route_match(const char *pattern, char *buf, const char *args[3])
{
	const char *p = pattern;
	char *u = buf;
	int nargs = 0;

	while (*p && *u) {
		if (*p == '*') {
			char *slash = strchr(u, '/');

			if (u[0] == '\0' || u == slash || nargs == 3)
				return false;
			args[nargs++] = u;
			if (slash) {
				*slash = '\0';
				u = slash + 1;
			} else {
				u += strlen(u);
			}
			p++;
			if (*p == '/')
				p++;
			else if (*p)
				return false;
			continue;
		}
		if (*p != *u)
			return false;
		p++;
		u++;
	}
	/* allow one trailing slash */
	if (*u == '/' && u[1] == '\0')
		u++;
	return *p == '\0' && *u == '\0';
}

const char *req_query(struct req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

void req_json(struct req *rq, int status, json_t *body)
{
	json_decref(rq->json);
	rq->status = status;
	rq->json = body;
}

void req_error(struct req *rq, const struct error *err)
{
	json_t *e = json_pack("{s:{s:s,s:s,s:s,s:s}}", "error", "code",
			      err->code[0] ? err->code : "internal", "field", err->field, "value",
			      err->value, "message", err->msg[0] ? err->msg : "internal error");

	req_json(rq, err->status ? err->status : 500, e);
}

static void simple_error(struct req *rq, int status, const char *code, const char *fmt, const char *arg)
{
	struct error err = { 0 };

	error_set(&err, EINVAL, status, code, "", "", fmt, arg);
	req_error(rq, &err);
}

static bool token_ok(struct larchd *d, struct MHD_Connection *conn)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	size_t n, tl = strlen(d->token);
	unsigned char diff = 0;

	if (!h || strncmp(h, "Bearer ", 7))
		return false;
	h += 7;
	n = strlen(h);
	/* compare in time independent of where they differ */
	for (size_t i = 0; i < tl; i++)
		diff |= (unsigned char)(d->token[i] ^ (i < n ? h[i] : 0));
	return diff == 0 && n == tl;
}

static void dispatch(struct req *rq)
{
	bool path_known = false;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		char buf[2048];

		if (strlen(rq->url) >= sizeof(buf)) {
			simple_error(rq, 414, "too_large", "the URL is longer than %s bytes", "2047");
			return;
		}
		strcpy(buf, rq->url);
		memset(rq->args, 0, sizeof(rq->args));
		if (!route_match(routes[i].pattern, buf, rq->args))
			continue;
		path_known = true;
		if (strcmp(routes[i].method, rq->method))
			continue;
		routes[i].fn(rq); /* args point into buf, alive until we return */
		return;
	}
	if (path_known)
		simple_error(rq, 405, "method_not_allowed", "%s is not allowed on this path", rq->method);
	else
		simple_error(rq, 404, "not_found", "%s: no such API path", rq->url);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct req *rq)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *body;
	const char *ctype = "application/json";

	if (rq->text) {
		body = rq->text;
		rq->text = NULL;
		ctype = "text/plain; version=0.0.4";
	} else if (rq->json) {
		char *s = json_dumps(rq->json, JSON_COMPACT);
		size_t n = s ? strlen(s) : 0;

		body = s ? realloc(s, n + 2) : NULL;
		if (body) {
			body[n] = '\n';
			body[n + 1] = '\0';
		}
	} else {
		body = strdup("");
	}
	if (!body)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (rq->status != 204)
		MHD_add_response_header(resp, "Content-Type", ctype);
	if (rq->status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
	if (atomic_load(&stopping))
		MHD_add_response_header(resp, "Connection", "close");
	ret = MHD_queue_response(conn, (unsigned)rq->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void resume(void *conn)
{
	MHD_resume_connection(conn);
}

/* Send rq's answer and account for the request. */
static enum MHD_Result answer(struct larchd *d, struct conn_state *cs, struct req *rq)
{
	enum MHD_Result ret = send_response(rq->conn, rq);
	struct timespec end;
	uint64_t us;

	clock_gettime(CLOCK_MONOTONIC, &end);
	us = (uint64_t)((end.tv_sec - cs->start.tv_sec) * 1000000 +
			(end.tv_nsec - cs->start.tv_nsec) / 1000);
	metrics_request(&d->metrics, rq->method, rq->status, us);
	json_decref(rq->json);
	free(rq->text);
	return ret;
}

/* Suspend the connection until cs->w fires (the caller registers it). */
static void park(struct MHD_Connection *conn, struct conn_state *cs, enum conn_phase phase)
{
	cs->phase = phase;
	cs->w.fn = resume;
	cs->w.arg = conn;
	atomic_fetch_add(&parked, 1);
	/* suspend before registering: the commit thread may fire at once */
	MHD_suspend_connection(conn);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version,
			      const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct larchd *d = cls;
	struct conn_state *cs = *con_cls;
	struct req rq = { 0 };
	(void)version;

	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		if (!cs)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &cs->start);
		*con_cls = cs;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		if (cs->len + n > BODY_MAX) {
			cs->too_large = true;
		} else if (!cs->too_large) {
			if (cs->len + n + 1 > cs->cap) {
				size_t ncap = (cs->len + n + 1) * 2;
				char *b = realloc(cs->body, ncap > BODY_MAX + 1 ? BODY_MAX + 1 : ncap);

				if (!b)
					return MHD_NO;
				cs->body = b;
				cs->cap = ncap > BODY_MAX + 1 ? BODY_MAX + 1 : ncap;
			}
			memcpy(cs->body + cs->len, upload_data, n);
			cs->len += n;
			cs->body[cs->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	rq.d = d;
	rq.method = method;
	rq.url = url;
	rq.conn = conn;
	rq.body = cs->body;
	rq.body_len = cs->len;
	if (cs->phase != P_REQUEST)
		atomic_fetch_sub(&parked, 1); /* back from park() */
	if (cs->phase == P_COMMIT) {
		/* resumed: the ticket is durable (at shutdown, a waiter that could
		 * not be registered is resumed at once: wait here), send the answer */
		if (!commit_durable(d->commit, cs->w.ticket))
			commit_wait(d->commit, cs->w.ticket);
		rq.status = cs->status;
		rq.json = cs->json;
		rq.text = cs->text;
		cs->json = NULL;
		cs->text = NULL;
		return answer(d, cs, &rq);
	}
	rq.resumed = cs->phase == P_FEED || atomic_load(&stopping);
	if (cs->too_large)
		simple_error(&rq, 413, "too_large", "the request body is over %s", "1 MiB");
	else if (d->token && strcmp(method, "GET") && strcmp(method, "HEAD") && !token_ok(d, conn))
		simple_error(&rq, 401, "unauthorized",
			     "%s needs a valid 'Authorization: Bearer <token>' header", method);
	else
		dispatch(&rq);

	if (rq.wait_ms > 0 && !rq.resumed) {
		park(conn, cs, P_FEED);
		if (!commit_defer_revision(d->commit, rq.wait_since, mono_ms() + rq.wait_ms, &cs->w))
			MHD_resume_connection(conn);
		return MHD_YES;
	}
	if (rq.ticket && !commit_durable(d->commit, rq.ticket) && atomic_load(&stopping))
		commit_wait(d->commit, rq.ticket); /* shutting down: do not suspend */
	if (rq.ticket && !commit_durable(d->commit, rq.ticket)) {
		cs->w.ticket = rq.ticket;
		cs->status = rq.status;
		cs->json = rq.json;
		cs->text = rq.text;
		park(conn, cs, P_COMMIT);
		if (!commit_defer(d->commit, rq.ticket, &cs->w))
			MHD_resume_connection(conn);
		return MHD_YES;
	}
	return answer(d, cs, &rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	enum MHD_Result r;

	atomic_fetch_add(&inflight, 1);
	r = handle(cls, conn, url, method, version, upload_data, upload_data_size, con_cls);
	atomic_fetch_sub(&inflight, 1);
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn_state *cs = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;

	if (cs) {
		free(cs->body);
		json_decref(cs->json);
		free(cs->text);
		free(cs);
		*con_cls = NULL;
	}
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon;
	long port;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	}
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || colon[1] == '\0')
		return -EINVAL;
	{
		struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons((uint16_t)port);
			*len = sizeof(*in4);
		} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			*len = sizeof(*in6);
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

static struct MHD_Daemon *start_mhd(struct larchd *d, unsigned flags, int fd,
				    const struct sockaddr *sa)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned pool = ncpu < 2 ? 2 : ncpu > 8 ? 8 : (unsigned)ncpu;

	return MHD_start_daemon(
		flags | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, d,
		MHD_OPTION_THREAD_POOL_SIZE, pool,
		fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_SOCK_ADDR,
		fd >= 0 ? (intptr_t)fd : (intptr_t)sa,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, d,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600,
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
		MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
		MHD_OPTION_END);
}

int http_start(struct larchd *d)
{
	if (d->cfg.listen && strcmp(d->cfg.listen, "none")) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (parse_listen(d->cfg.listen, &ss, &len) < 0)
			fatalx("--listen %s: expected ADDR:PORT such as 127.0.0.1:7420 or [::1]:7420",
			       d->cfg.listen);
		tcp_daemon = start_mhd(d, ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0, -1,
				       (struct sockaddr *)&ss);
		if (!tcp_daemon)
			fatalx("cannot listen on %s (in use, or not an address of this host?)",
			       d->cfg.listen);
		log_info("listening on http://%s", d->cfg.listen);
	}
	if (d->cfg.unix_path) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		mode_t old;

		if (strlen(d->cfg.unix_path) >= sizeof(sun.sun_path))
			fatalx("--unix %s: path too long", d->cfg.unix_path);
		strcpy(sun.sun_path, d->cfg.unix_path);
		unlink(d->cfg.unix_path);
		unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (unix_fd < 0)
			fatal("socket");
		old = umask(0177); /* the socket file is created 0600 */
		if (bind(unix_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			fatal("bind %s", d->cfg.unix_path);
		umask(old);
		chmod(d->cfg.unix_path, 0600);
		if (listen(unix_fd, 128) < 0)
			fatal("listen %s", d->cfg.unix_path);
		unix_daemon = start_mhd(d, 0, unix_fd, NULL);
		if (!unix_daemon)
			fatalx("cannot serve on unix socket %s", d->cfg.unix_path);
		unix_path = d->cfg.unix_path;
		log_info("listening on unix:%s", d->cfg.unix_path);
	}
	if (!tcp_daemon && !unix_daemon)
		fatalx("no listener: give --listen or --unix");
	return 0;
}

void http_stop(struct larchd *d)
{
	/* let every held answer go out and end the long-polls, so nothing is
	 * left suspended when MHD stops (it aborts if one is). No quiesce:
	 * MHD 0.9.75's MHD_quiesce_daemon races its own epoll workers and can
	 * abort; a request that arrives now is answered without parking. */
	atomic_store(&stopping, true);
	commit_drain(d->commit);
	commit_expire(d->commit, 0, true);
	for (int i = 0; i < 10000 && (atomic_load(&parked) > 0 || atomic_load(&inflight) > 0); i++)
		usleep(1000);
	if (atomic_load(&parked) > 0)
		log_warnx("stopping with %d connections still suspended", atomic_load(&parked));
	if (tcp_daemon)
		MHD_stop_daemon(tcp_daemon);
	if (unix_daemon)
		MHD_stop_daemon(unix_daemon);
	if (unix_path)
		unlink(unix_path);
	tcp_daemon = unix_daemon = NULL;
}
