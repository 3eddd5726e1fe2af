/* SPDX-License-Identifier: MIT */
#ifndef LARCH_HTTPC_H
#define LARCH_HTTPC_H

/*
 * DOC: the HTTP client (larchctl now; the agent and the CNI plugin later)
 *
 * libcurl underneath, one handle reused across requests (keep-alive). The
 * server is "http://HOST:PORT" or "unix:/path/to.sock". JSON in, JSON out.
 */
#include <jansson.h>

struct error;
struct httpc;

/* token may be NULL; timeout_ms 0 means none. Returns NULL on bad arguments
 * (err says why). */
struct httpc *httpc_new(const char *server, const char *token, long timeout_ms,
			struct error *err);
void httpc_free(struct httpc *c);

/*
 * method + path (with query) and an optional JSON body. On an answer of any
 * status, returns 0 with *status set and *resp the parsed JSON body (NULL if
 * empty or not JSON; caller owns it). Returns -EHOSTUNREACH (err: what curl
 * said, naming the server) when there is no answer at all.
 */
int httpc_request(struct httpc *c, const char *method, const char *path, const json_t *body,
		  long *status, json_t **resp, struct error *err);

/* The raw body of the last answer (valid until the next request). */
const char *httpc_body(struct httpc *c);

#endif
