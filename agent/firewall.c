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

/* Run `nft -f -` with text on stdin; its stderr into errbuf. 0 on success. */
int fw_apply_nft(const char *nft, const char *text, char *errbuf, size_t errlen)
{
	int in[2], er[2], status;
	size_t len = strlen(text), off = 0, got = 0;
	pid_t pid;

	errbuf[0] = '\0';
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(er, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		close(er[0]);
		close(er[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(er[1], 2);
		dup2(er[1], 1);
		execlp(nft, nft, "-f", "-", (char *)NULL);
		fprintf(stderr, "cannot run %s: %s\n", nft, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(er[1]);
	while (off < len) {
		ssize_t n = write(in[1], text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(in[1]);
	for (;;) {
		ssize_t n = read(er[0], errbuf + got, got + 1 < errlen ? errlen - got - 1 : 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	errbuf[got] = '\0';
	close(er[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return -EIO;
}

/* Does table inet NAME exist? (`nft list table`, output discarded) */
bool fw_table_exists(const char *nft, const char *table)
{
	int status, fd;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (pid == 0) {
		fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp(nft, nft, "list", "table", "inet", table, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
