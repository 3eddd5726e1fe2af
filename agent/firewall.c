/* SPDX-License-Identifier: MIT */
/*
 * DOC: the agent's firewall: compile larchd's policy for this host, apply it
 *
 * fw_build() reads what the compiler needs (lib/policy_compile.c) and renders
 * the nftables ruleset; fw_apply() feeds it to `nft -f -` as one transaction,
 * so a ruleset is in force whole or not at all, and a failed apply leaves the
 * previous one. The agent touches only its own table (inet larch).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "error.h"
#include "log.h"
#include "policy.h"
#include "wire.h"

static void host_ifname(const char *handle, char out[16])
{
	wire_host_ifname(handle, out);
}

char *fw_render(json_t *state, const char *host, const char *table, size_t *nlocal,
		struct error *err)
{
	struct world *w;
	char *text;

#define ITEMS(k) json_object_get(json_object_get(state, k), "items")
	w = policy_world(ITEMS("tenants"), ITEMS("blocks"), ITEMS("hosts"), ITEMS("endpoints"),
			 ITEMS("policies"), ITEMS("namespaces"), host, host_ifname, err);
#undef ITEMS
	if (!w)
		return NULL;
	if (nlocal)
		*nlocal = policy_world_local(w);
	text = policy_render_nft(w, table);
	if (!text)
		error_set(err, ENOMEM, 500, "internal", "", "", "out of memory rendering the ruleset");
	policy_world_free(w);
	return text;
}

/*
 * Run nft with args; text (may be NULL) on its stdin; its stdout and stderr
 * into errbuf (NULL: discarded). 0 when it exits 0.
 */
static int run_nft(const char *nft, const char *const args[], const char *text, char *errbuf,
		   size_t errlen)
{
	const char *argv[8] = { nft };
	int in[2], out[2], status;
	size_t len = text ? strlen(text) : 0, off = 0, got = 0;
	char sink[512];
	pid_t pid;

	for (size_t i = 0; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	if (errbuf)
		errbuf[0] = '\0';
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		return -e;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execvp(nft, (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", nft, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	while (off < len) {
		ssize_t n = write(in[1], text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(in[1]);
	for (;;) { /* read to the end (a listing can be long), keep what fits */
		char *b = errbuf && got + 1 < errlen ? errbuf + got : sink;
		size_t room = b == sink ? sizeof(sink) : errlen - got - 1;
		ssize_t n = read(out[0], b, room);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (b != sink)
			got += (size_t)n;
	}
	if (errbuf)
		errbuf[got] = '\0';
	close(out[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* Apply a ruleset: `nft -f -`, one transaction; nft's message in errbuf. */
int fw_apply_nft(const char *nft, const char *text, char *errbuf, size_t errlen)
{
	static const char *const args[] = { "-f", "-", NULL };

	return run_nft(nft, args, text, errbuf, errlen);
}

/* Does table inet NAME exist? (`nft list table`, output discarded) */
bool fw_table_exists(const char *nft, const char *table)
{
	const char *const args[] = { "list", "table", "inet", table, NULL };

	return run_nft(nft, args, NULL, NULL, 0) == 0;
}
