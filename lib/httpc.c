/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "error.h"
#include "httpc.h"

struct httpc {
	CURL *h;
	char *base;     /* http://host:port, no trailing slash */
	char *unix_path;
	char *auth;     /* "Authorization: Bearer ..." */
	long timeout_ms;
	char *buf;
	size_t len, cap;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct httpc *c = arg;
	size_t k = size * n;

	if (c->len + k + 1 > c->cap) {
		size_t ncap = (c->len + k + 1) * 2;
		char *b = realloc(c->buf, ncap);

		if (!b)
			return 0;
		c->buf = b;
		c->cap = ncap;
	}
	memcpy(c->buf + c->len, p, k);
	c->len += k;
	c->buf[c->len] = '\0';
	return k;
}

struct httpc *httpc_new(const char *server, const char *token, long timeout_ms,
			struct error *err)
{
	struct httpc *c = calloc(1, sizeof(*c));
	size_t n;

	if (!c)
		return NULL;
	if (!strncmp(server, "unix:", 5)) {
		c->unix_path = strdup(server + 5);
		c->base = strdup("http://localhost");
		if (!c->unix_path[0]) {
			error_invalid(err, "server", server, "server %s: expected unix:/path/to.sock",
				      server);
			goto fail;
		}
	} else if (!strncmp(server, "http://", 7) || !strncmp(server, "https://", 8)) {
		c->base = strdup(server);
	} else {
		error_invalid(err, "server", server,
			      "server %s: expected http://HOST:PORT or unix:/path/to.sock", server);
		goto fail;
	}
	n = strlen(c->base);
	while (n && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if (token && asprintf(&c->auth, "Authorization: Bearer %s", token) < 0)
		goto fail;
	c->timeout_ms = timeout_ms;
	c->h = curl_easy_init();
	if (!c->h)
		goto fail;
	return c;
fail:
	httpc_free(c);
	return NULL;
}

void httpc_free(struct httpc *c)
{
	if (!c)
		return;
	if (c->h)
		curl_easy_cleanup(c->h);
	free(c->base);
	free(c->unix_path);
	free(c->auth);
	free(c->buf);
	free(c);
}

const char *httpc_body(struct httpc *c)
{
	return c->buf ? c->buf : "";
}

int httpc_request(struct httpc *c, const char *method, const char *path, const json_t *body,
		  long *status, json_t **resp, struct error *err)
{
	struct curl_slist *hdr = NULL;
	char *url = NULL, *data = NULL;
	char cerr[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	int r = 0;

	*resp = NULL;
	*status = 0;
	c->len = 0;
	if (c->buf)
		c->buf[0] = '\0';
	if (asprintf(&url, "%s%s", c->base, path) < 0)
		return -ENOMEM;
	curl_easy_reset(c->h);
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	if (c->timeout_ms)
		curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	if (c->unix_path)
		curl_easy_setopt(c->h, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
	hdr = curl_slist_append(hdr, "Accept: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	if (c->auth)
		hdr = curl_slist_append(hdr, c->auth);
	if (body) {
		data = json_dumps(body, JSON_COMPACT);
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, data ? data : "");
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(c->h, CURLOPT_NOBODY, 1L);
	}
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdr);
	rc = curl_easy_perform(c->h);
	if (rc != CURLE_OK) {
		r = error_set(err, EHOSTUNREACH, 503, "unreachable", "server", c->base,
			      "%s %s: %s", method, c->unix_path ? c->unix_path : url,
			      cerr[0] ? cerr : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, status);
	if (c->len)
		*resp = json_loadb(c->buf, c->len, 0, NULL);
out:
	curl_slist_free_all(hdr);
	free(data);
	free(url);
	return r;
}
