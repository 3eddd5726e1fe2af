/* SPDX-License-Identifier: MIT */
/*
 * DOC: the agent's firewall: compile larchd's policy for this host, apply it
 *
 * fw_render() reads what the compiler needs (lib/policy_compile.c) and renders
 * the ruleset for the backend; fw_apply() puts it in force whole, or leaves
 * the previous one:
 *
 * nftables: one netlink transaction (agent/nft.c) that carries the
 * difference from the ruleset in force, or replaces the agent's own table
 * (inet larch) whole.
 *
 * iptables: the sets go first, under a new generation of names
 * (PREFIX-GEN-N: the rules in force still use the old ones), by
 * `ipset restore`; then `iptables-restore --noflush` and its IPv6 twin, each
 * one transaction over the filter table, rewrite the agent's own chains
 * (PREFIX-*), delete its stale ones and insert the two jumps from FORWARD
 * and INPUT if they are missing; nobody else's chains or rules are touched.
 * The whole ruleset's inputs are tried with --test before either is
 * committed (a difference is not: see ipt_diff). Then the
 * previous generation's sets are destroyed. A failure before the commit
 * destroys the new sets and leaves everything as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "error.h"
#include "kept.h"
#include "hmap.h"
#include "log.h"
#include "nft.h"
#include "policy.h"
#include "wire.h"

/* What the last rendering kept for endpoint changes (lib/policy_inc.c):
 * nft_inc goes with nft_last (the two describe the ruleset in force);
 * inc_pending, from the last fw_render, until its text is in force. */
static struct policy_inc *nft_inc, *inc_pending;

void fw_inc_drop(void)
{
	policy_inc_free(nft_inc);
	policy_inc_free(inc_pending);
	nft_inc = inc_pending = NULL;
}

/* The text fw_render returned last is in force (nft_last is its ruleset). */
static void inc_in_force(void)
{
	policy_inc_free(nft_inc);
	nft_inc = inc_pending;
	inc_pending = NULL;
}

/*
 * Tests: while the file $LARCH_AGENT_TEST_REFUSE exists, nftables updates
 * are refused (nft_apply: by the kernel, with a jump to a missing chain;
 * element changes: at once, which then compiles whole and is refused).
 */
static bool test_refusing(void)
{
	const char *f = getenv("LARCH_AGENT_TEST_REFUSE");

	return f && *f && access(f, F_OK) == 0;
}

static void host_ifname(const char *handle, char out[16])
{
	wire_host_ifname(handle, out);
}

void fw_cache_endpoints(struct policy_cache *pc, const char *host)
{
	policy_cache_endpoints(pc, host, host_ifname);
}

char *fw_render(json_t *state, const char *host, const char *table, enum fw_kind kind,
		size_t *nlocal, struct policy_cache *pc, bool keep, struct error *err)
{
	struct policy_inc *inc = NULL;
	struct world *w;
	char *text;

	/* the kept state's selectors point into pc's documents, which this
	 * world may sweep away: it goes first */
	if (pc)
		fw_inc_drop();

#define ITEMS(k) json_object_get(json_object_get(state, k), "items")
	w = policy_world(ITEMS("tenants"), ITEMS("blocks"), ITEMS("hosts"), ITEMS("endpoints"),
			 ITEMS("policies"), ITEMS("namespaces"), host, host_ifname, pc, err);
#undef ITEMS
	if (!w)
		return NULL;
	if (nlocal)
		*nlocal = policy_world_local(w);
	if (kind == FW_NFT && keep) {
		if ((text = policy_render_nft_inc(w, table, &inc)))
			w = NULL; /* inc's */
		else /* could not keep the state: render as before */
			text = policy_render_nft(w, table);
		inc_pending = inc;
	} else {
		text = kind == FW_IPT ? policy_render_ipt(w, table) : policy_render_nft(w, table);
	}
	if (!text)
		error_set(err, ENOMEM, 500, "internal", "", "", "out of memory rendering the ruleset");
	policy_world_free(w);
	return text;
}

/*
 * Run argv (argv[0] from PATH) with text (may be NULL) on its stdin. Its
 * stdout and stderr go to *out (malloc'd, NUL-terminated) when out is not
 * NULL. 0 when it exits 0.
 */
static int run(const char *const argv[], const char *text, char **out)
{
	int in[2], pout[2], status;
	size_t len = text ? strlen(text) : 0, off = 0, got = 0, cap = 0;
	char *buf = NULL, sink[4096];
	pid_t pid;

	if (out)
		*out = NULL;
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(pout, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(in[0]);
		close(in[1]);
		close(pout[0]);
		close(pout[1]);
		return -e;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(pout[1], 1);
		dup2(pout[1], 2);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(pout[1]);
	while (off < len) { /* SIGPIPE is ignored: a tool that stops reading fails here */
		ssize_t n = write(in[1], text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(in[1]);
	for (;;) { /* read to the end (a listing can be long) */
		char *dst = sink;
		size_t room = sizeof(sink);
		ssize_t n;

		if (out && got + sizeof(sink) + 1 > cap) {
			char *b = realloc(buf, cap ? 2 * cap : 65536);

			if (b) {
				buf = b;
				cap = cap ? 2 * cap : 65536;
			}
		}
		if (out && got + sizeof(sink) + 1 <= cap) {
			dst = buf + got;
			room = cap - got - 1;
		}
		n = read(pout[0], dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (dst != sink)
			got += (size_t)n;
	}
	close(pout[0]);
	if (out && buf)
		buf[got] = '\0';
	if (out)
		*out = buf;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* run(), the output's first line(s) into errbuf. */
static int run_msg(const char *const argv[], const char *text, char *errbuf, size_t errlen)
{
	char *out = NULL;
	int r = run(argv, text, &out);

	if (errbuf && errlen) {
		size_t n;

		snprintf(errbuf, errlen, "%s: %s", argv[0], out && *out ? out : "failed");
		n = strlen(errbuf);
		while (n && errbuf[n - 1] == '\n')
			errbuf[--n] = '\0';
	}
	free(out);
	return r;
}

/* ---- nftables ---- */

/* The ruleset this process last put in force over netlink: the next apply
 * sends only the difference from it. */
static struct nft_rs *nft_last;
/* What the last nft_apply did (for --apply): its batch, how long reading
 * the text took, and whether it went to nft -f instead. */
static struct nft_stats nft_last_stats;
static double nft_parse_ms;
static bool nft_used_cli;

/* nft -f of the one table the compiler writes: the agent's other tables
 * (--nft-tables, or left from an earlier run) go in the same transaction. */
static int nft_cli(const char *text, char *errbuf, size_t errlen)
{
	static const char *const argv[] = { "nft", "-f", "-", NULL };
	char *all = NULL, table[64] = "", *pre = NULL;
	size_t len = 0;
	FILE *f;
	int r = -1;

	/* the table is the first one the text names */
	if (sscanf(text, "%*[^\n]\ntable inet %63s", table) != 1 || !(f = open_memstream(&pre, &len)))
		return run_msg(argv, text, errbuf, errlen);
	for (unsigned k = 1; k < NFT_TABLES_MAX; k++) {
		char *t = nft_table_name(table, k);

		if (t && nft_table_present(t))
			fprintf(f, "delete table inet %s\n", t);
		free(t);
	}
	if (fclose(f) == 0 && asprintf(&all, "%s%s", pre, text) >= 0) {
		r = run_msg(argv, all, errbuf, errlen);
		free(all);
	} else {
		snprintf(errbuf, errlen, "out of memory");
	}
	free(pre);
	return r;
}

/*
 * Over netlink (agent/nft.c): the difference from the ruleset in force, or
 * the whole table when that is not known or the difference is refused (the
 * table was changed behind the agent's back). A text the netlink backend
 * cannot read goes to `nft -f` instead, with a warning: the compiler wrote
 * something new that agent/nft.c does not know yet.
 */
static int nft_apply(const char *text, char *errbuf, size_t errlen)
{
	char why[512], *bad = NULL;
	struct nft_rs *rs;
	struct nft_stats st;
	int r;

	/*
	 * Tests: while the file $LARCH_AGENT_TEST_REFUSE exists, the batch gets
	 * one more chain, with a jump to a chain that does not exist: the
	 * kernel refuses the whole transaction, as it would any bad update.
	 */
	if (test_refusing()) {
		size_t n = strlen(text);

		if (n > 2 && !strcmp(text + n - 2, "}\n") &&
		    asprintf(&bad, "%.*s\tchain test_refuse {\n\t\tjump no_such_chain\n\t}\n}\n",
			     (int)(n - 2), text) > 0)
			text = bad;
	}
	{
		struct timespec p0, p1;

		clock_gettime(CLOCK_MONOTONIC, &p0);
		rs = nft_rs_parse(text, why, sizeof(why));
		clock_gettime(CLOCK_MONOTONIC, &p1);
		nft_parse_ms = (double)(p1.tv_sec - p0.tv_sec) * 1e3 +
			       (double)(p1.tv_nsec - p0.tv_nsec) / 1e6;
	}
	memset(&st, 0, sizeof(st));
	nft_used_cli = false;
	if (rs && nft_last)
		fw_groups_before(nft_last, rs);
	r = rs && nft_last ? nft_rs_apply(nft_last, rs, &st, errbuf, errlen) : rs ? 1 : -2;
	if (r == 0) {
		log_debug("firewall: difference applied: %lu messages, %lu bytes", st.msgs, st.bytes);
	} else if (r != -2) {
		if (r == -1)
			log_warnx("firewall: the difference was refused (%s); replacing the table",
				  errbuf);
		nft_rs_free(nft_last);
		nft_last = NULL;
		r = nft_rs_apply(NULL, rs, &st, errbuf, errlen);
		if (r == -1) {
			nft_rs_free(rs);
			free(bad);
			fw_inc_drop();
			return -1;
		}
	}
	if (r == -2) {
		fw_inc_drop(); /* nothing to patch: nft_last is not known */
		log_warnx("firewall: the netlink backend cannot read the ruleset (%s); using nft -f",
			  rs ? errbuf : why);
		nft_rs_free(rs);
		nft_rs_free(nft_last);
		nft_last = NULL;
		nft_used_cli = true;
		r = nft_cli(text, errbuf, errlen);
		if (r == 0)
			fw_groups_wanted(NULL, text);
		free(bad);
		return r;
	}
	nft_rs_free(nft_last);
	nft_last = rs;
	nft_last_stats = st;
	fw_groups_wanted(rs, NULL);
	/* the test hook's text is not the one rendered */
	if (bad)
		fw_inc_drop();
	else
		inc_in_force();
	free(bad);
	return 0;
}

double fw_kernel_ms(void)
{
	return nft_last_stats.kernel_ms;
}

/* All the tables the ruleset is spread over (--nft-tables) are there. */
static bool nft_present(const char *table)
{
	if (!nft_table_present(table))
		return false;
	for (unsigned k = 1; k < nft_rs_tables(nft_last); k++) {
		char *t = nft_table_name(table, k);
		bool there = t && nft_table_present(t);

		free(t);
		if (!there)
			return false;
	}
	return true;
}

static char *ipt_last;

void fw_forget(void)
{
	/* what goes with the ruleset in force; a rendering about to be
	 * applied (inc_pending) stays */
	policy_inc_free(nft_inc);
	nft_inc = NULL;
	nft_rs_free(nft_last);
	nft_last = NULL;
	free(ipt_last);
	ipt_last = NULL;
}

static int ipt_apply_file(const char *prefix, const char *path, const char *from);
static char *slurp(const char *path);
static int ipt_update(const char *prefix, const char *tmpl, bool *diff, char *errbuf,
		      size_t errlen);

/* --apply FILE [--from OLD]: see agent.h. nftables: through nft_apply,
 * with OLD taken for the ruleset in force. */
int fw_apply_file(enum fw_kind kind, const char *table, const char *path, const char *from)
{
	char *text = NULL, *old = NULL, err[1024];
	const struct nft_stats *st = &nft_last_stats;
	struct timespec t0, t1;
	double ms;
	int r = 1;

	if (kind == FW_IPT)
		return ipt_apply_file(table, path, from);
	if (!(text = slurp(path)) || (from && !(old = slurp(from))))
		goto out;
	if (old && (!(nft_last = nft_rs_parse(old, err, sizeof(err))) ||
		    nft_rs_split_new(nft_last) < 0)) {
		fprintf(stderr, "larch-agent: %s: %s\n", from, nft_last ? "out of memory" : err);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (nft_apply(text, err, sizeof(err)) < 0) {
		fprintf(stderr, "larch-agent: %s: %s\n", path, err);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	fw_groups(true); /* as the agent does (no interface in most tests' namespaces) */
	if (nft_used_cli)
		printf("applied with nft -f: %.3f ms\n", ms);
	else
		printf("applied %s: %lu messages, %lu bytes: %lu sets, %lu chains, %lu rules, "
		       "%lu elements added, %lu deleted; %.3f ms (batch %.3f ms, kernel %.3f ms); "
		       "reading the text %.3f ms\n",
		       st->replaced ? "the table" : "the difference", st->msgs, st->bytes, st->sets,
		       st->chains, st->rules, st->elems, st->deleted, ms - nft_parse_ms, st->build_ms,
		       st->kernel_ms, nft_parse_ms);
	r = 0;
out:
	free(text);
	free(old);
	fw_forget();
	return r;
}

void fw_unchanged(void)
{
	if (nft_last)
		inc_in_force();
	else
		fw_inc_drop();
}

int fw_apply_changes(const struct kept_change *ch, size_t n, struct fw_fast *out, char *errbuf,
		       size_t errlen)
{
	struct policy_patch *p = NULL;
	struct nft_stats st;
	struct timespec t[5];
	size_t np = 0;
	bool classes = false;
	int r;

	memset(out, 0, sizeof(*out));
	if (!nft_inc || !nft_last)
		return 1;
	if (test_refusing()) {
		snprintf(errbuf, errlen, "refused by LARCH_AGENT_TEST_REFUSE");
		fw_inc_drop();
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t[0]);
	for (size_t i = 0; i < n; i++) {
		r = ch[i].policy ? policy_inc_policy(nft_inc, ch[i].old, ch[i].neu)
				 : policy_inc_endpoint(nft_inc, ch[i].old, ch[i].neu);
		if (r != 0) {
			const char *what = ch[i].policy ? "a policy" : "an endpoint";

			if (r < 0)
				log_warnx("firewall: out of memory following %s; compiling whole", what);
			else
				log_debug("firewall: %s's change is more than elements and its "
					  "chains; compiling whole", what);
			fw_inc_drop();
			return 1;
		}
		out->policies += ch[i].policy;
	}
	clock_gettime(CLOCK_MONOTONIC, &t[1]);
	if (policy_inc_patches(nft_inc, &p, &np) < 0) {
		fw_inc_drop();
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t[2]);
	out->sets = np;
	if (!np)
		return 0;
	memset(&st, 0, sizeof(st));
	for (size_t i = 0; i < np; i++)
		classes |= !strcmp(p[i].name, "ep_class");
	r = nft_rs_patch(nft_last, p, np, &st, errbuf, errlen);
	policy_patches_free(p, np);
	if (r < 0) {
		fw_inc_drop();
		return r == -1 ? -1 : 1;
	}
	nft_last_stats = st;
	out->msgs = st.msgs;
	out->kernel_ms = st.kernel_ms;
	clock_gettime(CLOCK_MONOTONIC, &t[3]);
	if (classes) /* the interfaces' groups follow ep_class */
		fw_groups_wanted(nft_last, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t[4]);
	for (int i = 0; i < 4; i++)
		out->ms[i] = (double)(t[i + 1].tv_sec - t[i].tv_sec) * 1e3 +
			     (double)(t[i + 1].tv_nsec - t[i].tv_nsec) / 1e6;
	return 0;
}

bool fw_same_as(const char *text, char *why, size_t len)
{
	struct nft_rs *rs = nft_rs_parse(text, why, len);
	bool same = rs && nft_last && nft_rs_same(rs, nft_last, why, len) &&
		    nft_rs_same_tables(rs, nft_last, why, len);

	if (!nft_last)
		snprintf(why, len, "no ruleset in force");
	nft_rs_free(rs);
	return same;
}

/* ---- iptables ---- */

/* Per family (IPv4, IPv6): the restore, its test, the section of the input. */
static const char *const restore[2][5] = {
	{ "iptables-restore", "-w", "--noflush", NULL },
	{ "ip6tables-restore", "-w", "--noflush", NULL },
};
static const char *const test[2][6] = {
	{ "iptables-restore", "-w", "--noflush", "--test", NULL },
	{ "ip6tables-restore", "-w", "--noflush", "--test", NULL },
};
static const char *const marks[2] = { "#@ iptables\n", "#@ ip6tables\n" };

/* The generation of set names in force; 0: not known yet (read the kernel's). */
static unsigned long ipt_gen;
#define IPT_GEN_MAX 999999UL

/* Our sets (PREFIX-GEN-N) from `ipset list -n`: names (malloc'd, one string
 * of lines) and the highest generation. */
static char *ipt_sets(const char *prefix, unsigned long *maxgen)
{
	static const char *const argv[] = { "ipset", "list", "-n", NULL };
	size_t pl = strlen(prefix);
	char *out = NULL, *mine = NULL, *line, *save = NULL;
	size_t mlen = 0;
	FILE *f;

	*maxgen = 0;
	if (run(argv, NULL, &out) < 0 || !out || !(f = open_memstream(&mine, &mlen))) {
		free(out);
		return NULL;
	}
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *end;
		unsigned long g;

		if (strncmp(line, prefix, pl) || line[pl] != '-')
			continue;
		g = strtoul(line + pl + 1, &end, 10);
		if (end == line + pl + 1 || *end != '-')
			continue;
		if (g > *maxgen)
			*maxgen = g;
		fprintf(f, "%s\n", line);
	}
	free(out);
	if (fclose(f) != 0) {
		free(mine);
		return NULL;
	}
	return mine;
}

/* Destroy, of names (a listing from ipt_sets), the sets of generation gen
 * (keep: all but those). */
static void ipt_destroy_sets(const char *names, const char *prefix, unsigned long gen, bool keep)
{
	static const char *const argv[] = { "ipset", "restore", NULL };
	size_t slen = 0, pl = strlen(prefix);
	char *copy = strdup(names), *script = NULL, *line, *save = NULL;
	char msg[512];
	FILE *f;

	if (!copy || !(f = open_memstream(&script, &slen))) {
		free(copy);
		return;
	}
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool same = strtoul(line + pl + 1, NULL, 10) == gen;

		if (same != keep)
			fprintf(f, "destroy %s\n", line);
	}
	if (fclose(f) == 0 && script && *script && run_msg(argv, script, msg, sizeof(msg)) < 0)
		log_warnx("firewall: cannot destroy unused sets: %s", msg);
	free(script);
	free(copy);
}

/* Replace every "PREFIX-0-" (a set's name in the rendered text) by
 * "PREFIX-GEN-"; malloc'd. */
static char *with_gen(const char *text, const char *prefix, unsigned long gen)
{
	char from[64], to[64];
	size_t fl, tl, n = 0;
	const char *p, *q;
	char *out, *o;

	snprintf(from, sizeof(from), "%s-0-", prefix);
	snprintf(to, sizeof(to), "%s-%lu-", prefix, gen);
	fl = strlen(from);
	tl = strlen(to);
	for (p = text; (q = strstr(p, from)); p = q + fl)
		n++;
	if (!(out = malloc(strlen(text) + n * (tl - fl + 1) + 1)))
		return NULL;
	for (o = out, p = text; (q = strstr(p, from)); p = q + fl) {
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, tl);
		o += tl;
	}
	strcpy(o, p);
	return out;
}

/* The part of text after the line `marker` up to the next "#@ " line (malloc'd). */
static char *section(const char *text, const char *marker)
{
	const char *p = text, *end;

	/* the marker starts a line */
	while ((p = strstr(p, marker)) && p != text && p[-1] != '\n')
		p++;
	if (!p)
		return NULL;
	p += strlen(marker);
	end = strncmp(p, "#@ ", 3) ? strstr(p, "\n#@ ") : p - 1; /* p - 1: empty */
	return strndup(p, end ? (size_t)(end - p + 1) : strlen(p));
}

/*
 * The iptables-restore input for one family: rules (the rendered section,
 * "*filter ... COMMIT"), plus, before COMMIT, the flush and deletion of our
 * chains that exist but are not in rules, and the jumps from FORWARD and
 * INPUT when they are missing. saved: `iptables-save -t filter`.
 */
static char *ipt_input(const char *rules, const char *saved, const char *prefix)
{
	char *out = NULL, *tail = NULL, *copy = strdup(saved ? saved : ""), *line, *save = NULL;
	size_t olen = 0, tlen = 0, pl = strlen(prefix);
	const char *commit = strstr(rules, "COMMIT\n");
	char jf[80], ji[80];
	bool has_f = false, has_i = false;
	FILE *f, *t;

	if (!copy || !commit)
		goto fail;
	snprintf(jf, sizeof(jf), "-A FORWARD -j %s-forward", prefix);
	snprintf(ji, sizeof(ji), "-A INPUT -j %s-input", prefix);
	if (!(f = open_memstream(&out, &olen)))
		goto fail;
	if (!(t = open_memstream(&tail, &tlen))) {
		fclose(f);
		goto fail;
	}
	fwrite(rules, 1, (size_t)(commit - rules), f);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		has_f |= !strcmp(line, jf);
		has_i |= !strcmp(line, ji);
		if (line[0] == ':' && !strncmp(line + 1, prefix, pl) && line[pl + 1] == '-') {
			char name[64], decl[80];

			sscanf(line + 1, "%63s", name);
			snprintf(decl, sizeof(decl), "\n:%s - ", name);
			if (!strstr(rules, decl)) {
				fprintf(f, ":%s - [0:0]\n", name); /* flushed ... */
				fprintf(t, "-X %s\n", name);      /* ... then deleted */
			}
		}
	}
	if (!has_f)
		fprintf(f, "-I FORWARD 1 -j %s-forward\n", prefix);
	if (!has_i)
		fprintf(f, "-I INPUT 1 -j %s-input\n", prefix);
	if (fclose(t) != 0) {
		fclose(f);
		goto fail;
	}
	fputs(tail ? tail : "", f);
	fputs("COMMIT\n", f);
	if (fclose(f) != 0)
		goto fail;
	free(tail);
	free(copy);
	return out;
fail:
	free(out);
	free(tail);
	free(copy);
	return NULL;
}

static int ipt_apply(const char *prefix, const char *tmpl, char *errbuf, size_t errlen)
{
	static const char *const ipset_restore[] = { "ipset", "restore", NULL };
	static const char *const save[2][4] = {
		{ "iptables-save", "-t", "filter", NULL },
		{ "ip6tables-save", "-t", "filter", NULL },
	};
	char *text = NULL, *sets = NULL, *in[2] = { NULL, NULL }, *names;
	unsigned long maxgen, gen;
	int r = -1, committed = 0;

	if (!(names = ipt_sets(prefix, &maxgen))) {
		snprintf(errbuf, errlen, "ipset list failed (is ipset installed, and the kernel's ip_set?)");
		return -1;
	}
	if (maxgen < ipt_gen)
		maxgen = ipt_gen;
	gen = maxgen >= IPT_GEN_MAX ? 1 : maxgen + 1;
	ipt_destroy_sets(names, prefix, gen, false); /* after a wrap: the old sets of that number */
	if (!(text = with_gen(tmpl, prefix, gen)) || !(sets = section(text, "#@ ipset\n"))) {
		snprintf(errbuf, errlen, "out of memory, or not an iptables ruleset");
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		char *saved = NULL, *rules = section(text, marks[k]);

		if (rules && run(save[k], NULL, &saved) < 0) {
			snprintf(errbuf, errlen, "%s failed: %s", save[k][0], saved ? saved : "");
			free(saved);
			free(rules);
			goto out;
		}
		in[k] = rules ? ipt_input(rules, saved, prefix) : NULL;
		free(saved);
		free(rules);
		if (!in[k]) {
			snprintf(errbuf, errlen, "out of memory, or no %s section", marks[k] + 3);
			goto out;
		}
	}
	if (run_msg(ipset_restore, sets, errbuf, errlen) < 0)
		goto out;
	for (int k = 0; k < 2; k++)
		if (run_msg(test[k], in[k], errbuf, errlen) < 0)
			goto out;
	for (; committed < 2; committed++)
		if (run_msg(restore[committed], in[committed], errbuf, errlen) < 0)
			goto out;
	ipt_gen = gen;
	ipt_destroy_sets(names, prefix, gen, true); /* the previous generation */
	r = 0;
out:
	if (r < 0 && committed == 0) {
		/* the new sets, whatever of them ipset restore created */
		free(names);
		if ((names = ipt_sets(prefix, &maxgen)))
			ipt_destroy_sets(names, prefix, gen, false);
	} else if (r < 0) {
		log_warnx("firewall: IPv4 rules applied but not IPv6: both generations of sets kept");
	}
	free(names);
	free(text);
	free(sets);
	free(in[0]);
	free(in[1]);
	return r;
}

/* ---- iptables: the difference ---- */

/*
 * ipt_last (above): the template (rendered text, generation 0) last put in
 * force, with its sets as generation ipt_gen: the next change goes as the
 * difference from it when it can (ipt_diff).
 */

/* Lines of text between the line `marker` and the next "#@ " line. */
struct lines {
	char *buf;
	char **v;
	size_t n;
};

static void lines_free(struct lines *l)
{
	free(l->buf);
	free(l->v);
}

static int lines_of(const char *text, const char *marker, struct lines *l)
{
	size_t cap = 0;

	memset(l, 0, sizeof(*l));
	if (!(l->buf = section(text, marker)))
		return -1;
	for (char *p = l->buf, *nl; *p; p = nl) {
		if ((nl = strchr(p, '\n')))
			*nl++ = '\0';
		else
			nl = p + strlen(p);
		if (l->n == cap) {
			char **v = realloc(l->v, (cap = cap ? 2 * cap : 256) * sizeof(*v));

			if (!v)
				return -1;
			l->v = v;
		}
		l->v[l->n++] = p;
	}
	return 0;
}

static bool eq_line(const void *val, const void *key)
{
	return !strcmp(val, key);
}

/* The lines of a (from index lo, to hi) that b (blo..bhi) does not have. */
static int lines_minus(char **a, size_t alo, size_t ahi, char **b, size_t blo, size_t bhi,
		       FILE *out, const char *fmt)
{
	struct hmap h = { 0 };

	for (size_t i = blo; i < bhi; i++)
		if (hmap_insert(&h, hash_str(b[i]), b[i]) < 0) {
			hmap_release(&h);
			return -1;
		}
	for (size_t i = alo; i < ahi; i++)
		if (!hmap_find(&h, hash_str(a[i]), eq_line, a[i]))
			fprintf(out, fmt, a[i] + 4); /* past "add " */
	hmap_release(&h);
	return 0;
}

/* The set number of a "create PREFIX-0-N ..." line, 0 if it is not one. */
static unsigned long set_number(const char *line)
{
	const char *p = strncmp(line, "create ", 7) ? NULL : strstr(line, "-0-");

	return p ? strtoul(p + 3, NULL, 10) : 0;
}

/*
 * The ipset part. The sets both scripts declare must be the same (same
 * comments and create lines, in order); new ones may follow them, and old
 * ones after them may go. script: the new sets and the adds and dels that
 * turn old's elements into new's; undo: back; after: the old sets that go
 * (destroyed once the rules no longer use them). 1: the sets differ in kind,
 * only a new generation will do.
 */
static int ipset_diff(const char *old, const char *new, char **script, char **undo, char **after)
{
	struct lines o = { 0 }, n = { 0 };
	size_t ol = 0, nl = 0, len1 = 0, len2 = 0, len3 = 0;
	FILE *f = NULL, *u = NULL, *a = NULL;
	int r = -1;

	*script = *undo = *after = NULL;
	if (lines_of(old, "#@ ipset\n", &o) < 0 || lines_of(new, "#@ ipset\n", &n) < 0 ||
	    !(f = open_memstream(script, &len1)) || !(u = open_memstream(undo, &len2)) ||
	    !(a = open_memstream(after, &len3)))
		goto out;
	/* set by set: a run of lines up to the next comment or create */
	while (ol < o.n || nl < n.n) {
		size_t oe = ol, ne = nl;

		if (ol == o.n) { /* new sets: all of them, as they are */
			for (; nl < n.n; nl++) {
				fprintf(f, "%s\n", n.v[nl]);
				if (!set_number(n.v[nl]))
					continue;
				/* a leftover of that name (one that could not be
				 * destroyed) must not lend it its elements */
				fprintf(f, "flush %.*s\n", (int)strcspn(n.v[nl] + 7, " "), n.v[nl] + 7);
				fprintf(u, "destroy %.*s\n", (int)strcspn(n.v[nl] + 7, " "), n.v[nl] + 7);
			}
			break;
		}
		if (nl == n.n) { /* sets that go */
			for (; ol < o.n; ol++)
				if (set_number(o.v[ol]))
					fprintf(a, "destroy %.*s\n", (int)strcspn(o.v[ol] + 7, " "),
						o.v[ol] + 7);
			break;
		}
		if (strcmp(o.v[ol], n.v[nl])) {
			r = 1; /* a set's comment or create line differs */
			goto out;
		}
		oe++, ne++;
		if (o.v[ol][0] == '#') { /* the comment, then the create line */
			if (oe == o.n || ne == n.n || strcmp(o.v[oe], n.v[ne])) {
				r = 1;
				goto out;
			}
			oe++, ne++;
		}
		ol = oe, nl = ne;
		while (oe < o.n && !strncmp(o.v[oe], "add ", 4))
			oe++;
		while (ne < n.n && !strncmp(n.v[ne], "add ", 4))
			ne++;
		if (lines_minus(n.v, nl, ne, o.v, ol, oe, f, "add %s\n") < 0 ||
		    lines_minus(o.v, ol, oe, n.v, nl, ne, f, "del %s\n") < 0 ||
		    lines_minus(o.v, ol, oe, n.v, nl, ne, u, "add %s\n") < 0 ||
		    lines_minus(n.v, nl, ne, o.v, ol, oe, u, "del %s\n") < 0)
			goto out;
		ol = oe, nl = ne;
	}
	r = 0;
out:
	if (f && fclose(f) != 0)
		r = -1;
	if (u && fclose(u) != 0)
		r = -1;
	if (a && fclose(a) != 0)
		r = -1;
	if (r != 0) {
		free(*script);
		free(*undo);
		free(*after);
		*script = *undo = *after = NULL;
	}
	lines_free(&o);
	lines_free(&n);
	return r;
}

/* A chain of an iptables-restore input: its name and its rules. */
struct ichain {
	char *name;
	char **rule;
	size_t n, cap;
};

struct ichains {
	struct lines l;
	struct ichain *c;
	size_t n;
	struct hmap by_name;
};

static bool eq_ichain(const void *val, const void *key)
{
	return !strcmp(((const struct ichain *)val)->name, key);
}

static void ichains_free(struct ichains *ic)
{
	for (size_t i = 0; i < ic->n; i++) {
		free(ic->c[i].name);
		free(ic->c[i].rule);
	}
	free(ic->c);
	hmap_release(&ic->by_name);
	lines_free(&ic->l);
}

static struct ichain *ichain_find(const struct ichains *ic, const char *name)
{
	return hmap_find(&ic->by_name, hash_str(name), eq_ichain, name);
}

/* Read "*filter", ":NAME - [0:0]" declarations, "-A NAME ..." rules,
 * "# ..." comments and "COMMIT"; -1 on anything else. */
static int ichains_of(const char *text, const char *marker, struct ichains *ic)
{
	memset(ic, 0, sizeof(*ic));
	if (lines_of(text, marker, &ic->l) < 0 || !(ic->c = calloc(ic->l.n + 1, sizeof(*ic->c))))
		return -1;
	for (size_t i = 0; i < ic->l.n; i++) {
		char *s = ic->l.v[i], name[64];
		struct ichain *c;

		if (!*s || s[0] == '#' || !strcmp(s, "*filter") || !strcmp(s, "COMMIT"))
			continue;
		if (s[0] == ':') {
			if (sscanf(s, ":%63s", name) != 1 || ichain_find(ic, name))
				return -1;
			c = &ic->c[ic->n++];
			if (!(c->name = strdup(name)) ||
			    hmap_insert(&ic->by_name, hash_str(c->name), c) < 0)
				return -1;
			continue;
		}
		if (strncmp(s, "-A ", 3) || sscanf(s + 3, "%63s", name) != 1 ||
		    !(c = ichain_find(ic, name)))
			return -1;
		if (c->n == c->cap) {
			char **v = realloc(c->rule, (c->cap = c->cap ? 2 * c->cap : 8) * sizeof(*v));

			if (!v)
				return -1;
			c->rule = v;
		}
		c->rule[c->n++] = s;
	}
	return 0;
}

static bool ichain_same(const struct ichain *a, const struct ichain *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->rule[i], b->rule[i]))
			return false;
	return true;
}

/* The iptables-restore --noflush input that turns old's chains into new's:
 * changed and new chains declared (which flushes them) and refilled,
 * chains that go flushed and then deleted. NULL when nothing changes
 * (*empty) or on failure. */
static char *ichains_diff(const struct ichains *o, const struct ichains *n, bool *empty)
{
	char *out = NULL;
	size_t len = 0, changed = 0;
	FILE *f = open_memstream(&out, &len);

	*empty = false;
	if (!f)
		return NULL;
	fputs("*filter\n", f);
	for (size_t i = 0; i < n->n; i++) {
		const struct ichain *c = &n->c[i], *oc = ichain_find(o, c->name);

		if (!oc || !ichain_same(oc, c)) {
			fprintf(f, ":%s - [0:0]\n", c->name);
			changed++;
		}
	}
	for (size_t i = 0; i < o->n; i++)
		if (!ichain_find(n, o->c[i].name)) {
			fprintf(f, ":%s - [0:0]\n", o->c[i].name);
			changed++;
		}
	for (size_t i = 0; i < n->n; i++) {
		const struct ichain *c = &n->c[i], *oc = ichain_find(o, c->name);

		if (!oc || !ichain_same(oc, c))
			for (size_t k = 0; k < c->n; k++)
				fprintf(f, "%s\n", c->rule[k]);
	}
	for (size_t i = 0; i < o->n; i++)
		if (!ichain_find(n, o->c[i].name))
			fprintf(f, "-X %s\n", o->c[i].name);
	fputs("COMMIT\n", f);
	if (fclose(f) != 0 || !changed) {
		*empty = !changed;
		free(out);
		return NULL;
	}
	return out;
}

/* The IPv6 commit failed after the IPv4 one: put the IPv4 chains back as
 * they were (new -> old), so that both families agree again. */
static void ipt_rollback_v4(const char *prefix, const struct ichains *n, const struct ichains *o)
{
	bool empty;
	char *back = ichains_diff(n, o, &empty), *g = back ? with_gen(back, prefix, ipt_gen) : NULL;
	char msg[256];

	if (!g || run_msg(restore[0], g, msg, sizeof(msg)) < 0)
		log_warnx("firewall: IPv4 chains changed but not IPv6, and could not be put back");
	else
		log_warnx("firewall: IPv6 refused after IPv4; IPv4 put back as it was");
	free(back);
	free(g);
}

/* Tests: while the file $LARCH_AGENT_TEST_REFUSE exists, the IPv6 commit of
 * a difference gets a jump to a target that does not exist,
 * so that IPv6 fails after IPv4 has committed, as a race with another tool
 * could make it. NULL, or the input with that rule (malloc'd). */
static char *test_refuse_v6(const char *in)
{
	const char *refuse = getenv("LARCH_AGENT_TEST_REFUSE");
	size_t n = in ? strlen(in) : 0;
	char *bad = NULL;

	if (!refuse || !*refuse || access(refuse, F_OK) != 0 || n < 7 ||
	    strcmp(in + n - 7, "COMMIT\n"))
		return NULL;
	if (asprintf(&bad, "%.*s-A FORWARD -j LARCH-TEST-NO-SUCH-TARGET\nCOMMIT\n", (int)(n - 7),
		     in) < 0)
		return NULL;
	return bad;
}

/*
 * The difference from ipt_last to tmpl, in the generation in force: set
 * elements added and deleted (`ipset restore`), then per family the chains
 * that change (`iptables-restore --noflush`, IPv4 then IPv6, each one
 * transaction; no --test first). If IPv6 is refused after IPv4 committed,
 * IPv4 is put back; if the chains are refused, the set changes are undone. 0 done; 1 it
 * cannot be a difference (sets change kind, or no generation known);
 * -1 failed (errbuf), everything as it was as far as the undo could.
 */
static int ipt_diff(const char *prefix, const char *tmpl, char *errbuf, size_t errlen)
{
	static const char *const ipset_restore[] = { "ipset", "-exist", "restore", NULL };
	char *sets = NULL, *undo = NULL, *in[2] = { NULL, NULL }, *s = NULL, *u = NULL;
	char *a = NULL, *gone = NULL, *bad6;
	struct ichains o[2], n[2];
	int r = -1, k;
	bool applied_sets = false;

	memset(o, 0, sizeof(o));
	memset(n, 0, sizeof(n));
	if (!ipt_last || !ipt_gen)
		return 1;
	if ((r = ipset_diff(ipt_last, tmpl, &s, &u, &a)) != 0) {
		if (r < 0)
			snprintf(errbuf, errlen, "out of memory, or not an iptables ruleset");
		goto out;
	}
	r = -1;
	for (k = 0; k < 2; k++) {
		bool empty;

		if (ichains_of(ipt_last, marks[k], &o[k]) < 0 || ichains_of(tmpl, marks[k], &n[k]) < 0) {
			r = 1; /* not the shape this reads: the whole ruleset then */
			goto out;
		}
		in[k] = ichains_diff(&o[k], &n[k], &empty);
		if (!in[k] && !empty) {
			snprintf(errbuf, errlen, "out of memory");
			goto out;
		}
		if (in[k]) {
			char *g = with_gen(in[k], prefix, ipt_gen);

			free(in[k]);
			if (!(in[k] = g)) {
				snprintf(errbuf, errlen, "out of memory");
				goto out;
			}
		}
	}
	if (!(sets = with_gen(s, prefix, ipt_gen)) || !(undo = with_gen(u, prefix, ipt_gen)) ||
	    !(gone = with_gen(a, prefix, ipt_gen))) {
		snprintf(errbuf, errlen, "out of memory");
		goto out;
	}
	/* the sets first: the rules may name new ones (the test too) */
	if (*sets) {
		if (run_msg(ipset_restore, sets, errbuf, errlen) < 0)
			goto undo;
		applied_sets = true;
	}
	/* No --test runs first (each iptables-restore costs 10-20 ms): a
	 * family's commit is one transaction, and IPv4 is put back if IPv6 is
	 * refused after it. */
	if ((bad6 = test_refuse_v6(in[1]))) {
		free(in[1]);
		in[1] = bad6;
	}
	for (k = 0; k < 2; k++)
		if (in[k] && run_msg(restore[k], in[k], errbuf, errlen) < 0) {
			if (k == 1 && in[0])
				ipt_rollback_v4(prefix, &n[0], &o[0]);
			goto undo;
		}
	if (*gone) {
		char msg[256];

		if (run_msg(ipset_restore, gone, msg, sizeof(msg)) < 0)
			log_warnx("firewall: cannot destroy unused sets: %s", msg);
	}
	r = 0;
	goto out;
undo:
	if (applied_sets || *sets) {
		char msg[256];

		if (run_msg(ipset_restore, undo, msg, sizeof(msg)) < 0)
			log_warnx("firewall: cannot undo the set changes: %s", msg);
	}
out:
	for (k = 0; k < 2; k++) {
		ichains_free(&o[k]);
		ichains_free(&n[k]);
		free(in[k]);
	}
	free(s);
	free(u);
	free(a);
	free(sets);
	free(undo);
	free(gone);
	return r;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;

	if (!f || getdelim(&text, &len, '\0', f) < 0) {
		fprintf(stderr, "larch-agent: %s: %s\n", path, strerror(errno));
		free(text);
		text = NULL;
	}
	if (f)
		fclose(f);
	return text;
}

/* --firewall iptables --apply FILE [--from OLD]: OLD is taken for the
 * ruleset in force, in the newest generation of sets there is. */
static int ipt_apply_file(const char *prefix, const char *path, const char *from)
{
	char *text = slurp(path), *names, err[1024];
	unsigned long maxgen = 0;
	struct timespec t0, t1;
	bool diff;
	int r = 1;

	if (!text)
		return 1;
	if (from && !(ipt_last = slurp(from)))
		goto out;
	if ((names = ipt_sets(prefix, &maxgen)))
		free(names);
	ipt_gen = maxgen;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ipt_update(prefix, text, &diff, err, sizeof(err)) < 0) {
		fprintf(stderr, "larch-agent: %s: %s\n", path, err);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("applied %s: %.3f ms\n", diff ? "the difference" : "the whole ruleset",
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	r = 0;
out:
	free(text);
	free(ipt_last);
	ipt_last = NULL;
	return r;
}

static bool ipt_present(const char *prefix)
{
	static const char *const tools[2] = { "iptables", "ip6tables" };

	for (int k = 0; k < 2; k++)
		for (int h = 0; h < 2; h++) {
			char chain[64];
			const char *argv[] = { tools[k], "-w", "-C", h ? "INPUT" : "FORWARD", "-j",
					       chain, NULL };

			snprintf(chain, sizeof(chain), "%s-%s", prefix, h ? "input" : "forward");
			if (run(argv, NULL, NULL) < 0)
				return false;
		}
	return true;
}

/* iptables: the difference when it can be one, else a new generation of
 * everything; *diff says which was applied. */
static int ipt_update(const char *prefix, const char *tmpl, bool *diff, char *errbuf, size_t errlen)
{
	/* the jumps into the agent's chains are gone: only the whole ruleset
	 * puts them back */
	int r = ipt_last && !ipt_present(prefix) ? 1 : ipt_diff(prefix, tmpl, errbuf, errlen);
	char *copy;

	*diff = r == 0;
	if (r < 0)
		log_warnx("firewall: the difference was refused (%s); writing the whole ruleset", errbuf);
	if (r != 0 && ipt_apply(prefix, tmpl, errbuf, errlen) < 0) {
		free(ipt_last);
		ipt_last = NULL; /* what is in force is not known exactly */
		return -1;
	}
	if ((copy = strdup(tmpl))) {
		free(ipt_last);
		ipt_last = copy;
	} else {
		free(ipt_last);
		ipt_last = NULL;
	}
	return 0;
}

int fw_apply(enum fw_kind kind, const char *table, const char *text, char *errbuf, size_t errlen)
{
	bool diff;

	return kind == FW_IPT ? ipt_update(table, text, &diff, errbuf, errlen)
			      : nft_apply(text, errbuf, errlen);
}

bool fw_present(enum fw_kind kind, const char *table)
{
	return kind == FW_IPT ? ipt_present(table) : nft_present(table);
}
