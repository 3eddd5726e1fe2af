/* SPDX-License-Identifier: MIT */
/*
 * DOC: larch-agent, one per host
 *
 * Registers the host with larchd (or checks its registration), then keeps
 * the host's kernel routes equal to what larchd's state says they should be
 * (desired.c computes them, route.c reconciles). A pass runs at start, when
 * the change feed shows a change that concerns this host (a block, group,
 * host or space anywhere; an endpoint of this host), every --resync seconds
 * (which also repairs routes removed by hand), and when larch-cni asks over
 * the agent's unix socket (POST /v1/sync) after a pod add or delete.
 * When larchd cannot be reached the kernel is left as it is and the agent
 * retries with exponential backoff (0.5 s to 30 s). Restarting the agent
 * changes nothing in the kernel: the first pass finds every route in place.
 *
 * The socket also serves GET /healthz, GET /v1/status and GET /metrics.
 *
 * With --firewall nft (the default) each pass also compiles larchd's policy
 * for this host's endpoints (firewall.c) and, when the ruleset changed or a
 * resync is due, replaces the agent's nftables table in one transaction.
 */
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "error.h"
#include "httpc.h"
#include "kept.h"
#include "nft.h"
#include "policy.h"
#include "log.h"

struct opts {
	const char *server, *token_file, *host, *address, *group, *uplink, *socket_path;
	const char *nh4, *nh6;
	const char *table, *render, *apply, *from;
	enum fw_kind fw;
	unsigned resync, proto;
	bool once, debug;
};

static struct opts o = {.server = "unix:/run/larch/larchd.sock",
			.socket_path = "/run/larch/agent.sock",
			.fw = FW_NFT,
			.table = "larch",
			.resync = 30,
			.proto = NL_PROTO_LARCH};
static struct kept *kept; /* the firewall's inputs, kept between passes */
static struct policy_cache *pcache; /* and their documents, parsed */
/* The ruleset in force (what the last successful apply sent). */
static char *fw_last;
static char token[512];
static struct agent_cfg base_cfg;
static volatile sig_atomic_t stopping;

/* One pass at a time: the feed loop and the socket thread both run passes. */
static pthread_mutex_t pass_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reconciler *rc;

static struct {
	_Atomic unsigned long passes, pass_errors, added, replaced, removed, feed_errors;
	_Atomic unsigned long routes, revision, missing_ifaces;
	_Atomic double last_pass_seconds;
	_Atomic long last_ok;   /* unix time of the last successful pass */
	_Atomic unsigned long fw_applies, fw_errors, fw_endpoints, fw_bytes, fw_incremental;
	_Atomic double fw_compile_seconds, fw_apply_seconds, fw_kernel_seconds;
} m;

/* The handles of this host's endpoints at the last pass (feed filter). */
static char **local_handles;
static size_t nlocal;

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: larch-agent --host NAME [options]\n\n"
		"Keeps this host's kernel routes equal to the state larchd holds.\n\n"
		"  -s, --server URL        larchd: http://HOST:PORT or unix:/path (default %s)\n"
		"  -t, --token-file FILE   bearer token for larchd (for registering the host)\n"
		"  -H, --host NAME         this host's name in larchd (required)\n"
		"  -a, --address ADDR      register the host with this address if it is not\n"
		"  -g, --group NAME          registered yet (both needed to register)\n"
		"  -u, --uplink IF         interface towards the fabric: proxy ARP/NDP for local\n"
		"                          endpoints, on-link route to the group's peers\n"
		"  -n, --next-hop ADDR     next hop towards other groups (once per family)\n"
		"  -S, --socket PATH       the agent's unix socket for larch-cni (default %s)\n"
		"  -r, --resync SECS       full reconcile period (default 30)\n"
		"  -p, --route-protocol N  rtm_protocol of the agent's routes (default %d)\n"
		"  -f, --firewall KIND     nft (default): enforce larchd's policy with nftables;\n"
		"                          iptables: with iptables-restore and ipset (for hosts\n"
		"                          whose other tools use iptables); none: routes only\n"
		"      --table NAME        the agent's nftables table (inet family), or with\n"
		"                          iptables the prefix of its chains and sets (at most\n"
		"                          12 characters); default larch\n"
		"      --nft-tables N      spread the nftables ruleset over N tables (1, 2, 4,\n"
		"                          8 or 16), or auto (the default): a table per 4,096\n"
		"                          rules. A changed chain costs the kernel's check of\n"
		"                          its own table; each packet a base chain per table\n"
		"                          (docs/policy.md)\n"
		"      --render FILE       print the ruleset for --host from FILE (a JSON object of\n"
		"                          larchd's tenants, blocks, hosts, endpoints, policies,\n"
		"                          namespaces lists) and exit\n"
		"      --apply FILE        put a ruleset that --render printed in force in this\n"
		"                          network namespace as the agent does, and exit;\n"
		"      --from OLD            with --from, only the difference from OLD, which\n"
		"                          must be the ruleset in force\n"
		"      --once              reconcile once and exit (0 on success)\n"
		"  -v, --debug             debug logging\n"
		"  -h, --help              this text\n",
		o.server, o.socket_path, NL_PROTO_LARCH);
}

static int parse_opts(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", 1, 0, 's'}, {"token-file", 1, 0, 't'}, {"host", 1, 0, 'H'},
		{"address", 1, 0, 'a'}, {"group", 1, 0, 'g'}, {"uplink", 1, 0, 'u'},
		{"next-hop", 1, 0, 'n'}, {"socket", 1, 0, 'S'}, {"resync", 1, 0, 'r'},
		{"route-protocol", 1, 0, 'p'}, {"once", 0, 0, 'O'}, {"debug", 0, 0, 'v'},
		{"help", 0, 0, 'h'}, {"firewall", 1, 0, 'f'}, {"table", 1, 0, 'T'},
		{"nft-tables", 1, 0, 'N'},
		{"render", 1, 0, 'R'}, {"apply", 1, 0, 'A'}, {"from", 1, 0, 'F'}, {0, 0, 0, 0}};
	int c;
	char *end;
	struct prefix p;
	struct error err = {0};
	unsigned long v;

	while ((c = getopt_long(argc, argv, "s:t:H:a:g:u:n:S:r:p:f:vh", lo, NULL)) != -1) {
		switch (c) {
		case 's': o.server = optarg; break;
		case 't': o.token_file = optarg; break;
		case 'H': o.host = optarg; break;
		case 'a': o.address = optarg; break;
		case 'g': o.group = optarg; break;
		case 'u': o.uplink = optarg; break;
		case 'S': o.socket_path = optarg; break;
		case 'O': o.once = true; break;
		case 'T': o.table = optarg; break;
		case 'R': o.render = optarg; break;
		case 'A': o.apply = optarg; break;
		case 'F': o.from = optarg; break;
		case 'f':
			if (!strcmp(optarg, "nft")) {
				o.fw = FW_NFT;
			} else if (!strcmp(optarg, "iptables")) {
				o.fw = FW_IPT;
			} else if (!strcmp(optarg, "none")) {
				o.fw = FW_NONE;
			} else {
				fprintf(stderr, "larch-agent: --firewall %s: must be nft, iptables or none\n",
					optarg);
				return -1;
			}
			break;
		case 'v': o.debug = true; break;
		case 'h': usage(stdout); exit(0);
		case 'n':
			if (addr_parse(optarg, &p, "next-hop", &err) < 0) {
				fprintf(stderr, "larch-agent: --next-hop %s\n", err.msg);
				return -1;
			}
			if (p.family == 4)
				o.nh4 = optarg;
			else
				o.nh6 = optarg;
			break;
		case 'N':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (!strcmp(optarg, "auto")) {
				v = 0;
			} else if (errno || *end || !*optarg || !v || v > NFT_TABLES_MAX ||
				   (v & (v - 1))) {
				fprintf(stderr, "larch-agent: --nft-tables %s: must be 1, 2, 4, 8, 16 "
						"or auto\n", optarg);
				return -1;
			}
			nft_set_tables((unsigned)v);
			break;
		case 'r':
		case 'p':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || (c == 'r' && (v < 1 || v > 86400)) ||
			    (c == 'p' && (v < 1 || v > 255))) {
				fprintf(stderr, "larch-agent: --%s %s: must be %s\n",
					c == 'r' ? "resync" : "route-protocol", optarg,
					c == 'r' ? "1-86400 seconds" : "1-255");
				return -1;
			}
			if (c == 'r')
				o.resync = (unsigned)v;
			else
				o.proto = (unsigned)v;
			break;
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "larch-agent: unexpected argument %s\n", argv[optind]);
		return -1;
	}
	if (!o.host || !*o.host) {
		fprintf(stderr, "larch-agent: --host is required\n");
		return -1;
	}
	for (const char *t = o.table; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '_') ||
		    t - o.table > 30) {
			fprintf(stderr, "larch-agent: --table %s: lowercase letters, digits and '_', "
					"at most 31\n", o.table);
			return -1;
		}
	if (o.fw != FW_NFT && nft_tables() > 1) {
		fprintf(stderr, "larch-agent: --nft-tables: only with --firewall nft\n");
		return -1;
	}
	if (o.fw == FW_IPT && strlen(o.table) > 12) {
		fprintf(stderr, "larch-agent: --table %s: at most 12 characters with --firewall "
				"iptables (chain names are limited to 28)\n", o.table);
		return -1;
	}
	if (!o.address != !o.group) {
		fprintf(stderr, "larch-agent: --address and --group go together\n");
		return -1;
	}
	return 0;
}

static struct httpc *client(long timeout_ms)
{
	struct error err = {0};
	struct httpc *h = httpc_new(o.server, token[0] ? token : NULL, timeout_ms, &err);

	if (!h)
		fatalx("--server %s", err.msg);
	return h;
}

int get_json(struct httpc *h, const char *path, json_t **out)
{
	struct error err = {0};
	long status;

	*out = NULL;
	if (httpc_request(h, "GET", path, NULL, &status, out, &err) < 0) {
		log_warnx("larchd: %s", err.msg);
		return -1;
	}
	if (status != 200 || !*out) {
		log_warnx("larchd: GET %s: %ld %s", path, status, httpc_body(h));
		json_decref(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static void host_sysctls(void)
{
	char path[128];

	sysctl_write("net/ipv4/ip_forward", "1");
	sysctl_write("net/ipv6/conf/all/forwarding", "1");
	if (o.uplink) {
		snprintf(path, sizeof(path), "net/ipv4/conf/%s/proxy_arp", o.uplink);
		sysctl_write(path, "1");
		snprintf(path, sizeof(path), "net/ipv4/neigh/%s/proxy_delay", o.uplink);
		sysctl_write(path, "0");
		snprintf(path, sizeof(path), "net/ipv6/conf/%s/proxy_ndp", o.uplink);
		sysctl_write(path, "1");
		/* The kernel delays proxy answers to multicast solicitations by
		 * up to proxy_delay (0.8 s): the first packets to a pod would
		 * wait or be dropped. */
		snprintf(path, sizeof(path), "net/ipv6/neigh/%s/proxy_delay", o.uplink);
		sysctl_write(path, "0");
	}
}

static void forget_handles(void)
{
	for (size_t k = 0; k < nlocal; k++)
		free(local_handles[k]);
	free(local_handles);
	local_handles = NULL;
	nlocal = 0;
}

static void remember_handles(json_t *endpoints)
{
	json_t *ep;
	size_t i;

	forget_handles();
	local_handles = calloc(json_array_size(json_object_get(endpoints, "items")) + 1,
			       sizeof(char *));
	json_array_foreach(json_object_get(endpoints, "items"), i, ep) {
		const char *hd = json_string_value(json_object_get(ep, "handle"));

		if (hd && local_handles)
			local_handles[nlocal++] = strdup(hd);
	}
}

/* Set when the last pass left the firewall other than compiled (larchd
 * could not be read, or the update failed or was refused): the main loop
 * passes again after its next long poll. Atomic: passes run on the socket's
 * thread too. */
static int fw_failed;

/* Set after an incremental pass: the ruleset in force is what a whole
 * rendering of the kept lists gives, but no text of it was made. */
static bool fw_text_stale;

/* The kept lists rendered whole, with documents parsed anew (pass_lock
 * held; NULL on failure, err says why). After incremental passes that did
 * not fail, it is what is in force: GET /v1/ruleset answers with it. */
static char *render_kept(struct error *err)
{
	json_t *state = kept_state(kept);
	char *text = state ? fw_render(state, o.host, o.table, o.fw, NULL, NULL, false, err) : NULL;

	json_decref(state);
	return text;
}

/*
 * Tests (LARCH_AGENT_CHECK_INC set, not 0): after every incremental pass,
 * render whole and check that the ruleset in force is exactly that; exit
 * if not, so that no test passes over a difference.
 */
static void check_incremental(void)
{
	const char *env = getenv("LARCH_AGENT_CHECK_INC");
	struct error err = {0};
	char why[1024], *text;

	if (!env || !*env || !strcmp(env, "0"))
		return;
	if (!(text = render_kept(&err)))
		fatalx("LARCH_AGENT_CHECK_INC: cannot render whole: %s", err.msg);
	if (!fw_same_as(text, why, sizeof(why)))
		fatalx("LARCH_AGENT_CHECK_INC: the incremental ruleset differs from the whole "
		       "rendering: %s", why);
	free(text);
}

/*
 * Endpoints and policies alone changed since the last pass (kept.c): turn
 * the changes into element changes and rewritten chains of the ruleset in
 * force (lib/policy_inc.c) instead of compiling whole. 0 done; 1 not
 * possible, compile whole.
 */
static int firewall_changes(bool force)
{
	struct kept_change *ch;
	struct fw_fast ff;
	char errbuf[1024];
	size_t n;
	bool other;
	double t0 = now_s();
	int r;

	kept_take(kept, &ch, &n, &other);
	if (force || other || !n || o.fw != FW_NFT ||
	    __atomic_load_n(&fw_failed, __ATOMIC_RELAXED)) {
		kept_changes_free(ch, n);
		return 1;
	}
	r = fw_apply_changes(ch, n, &ff, errbuf, sizeof(errbuf));
	kept_changes_free(ch, n);
	if (r < 0)
		log_warnx("firewall: the changes' elements or rules were refused (%s); "
			  "compiling whole", errbuf);
	if (r)
		return 1;
	free(fw_last); /* what is in force is no text rendered */
	fw_last = NULL;
	fw_text_stale = true;
	m.fw_compile_seconds = 0;
	m.fw_apply_seconds = now_s() - t0;
	m.fw_kernel_seconds = ff.kernel_ms / 1e3;
	m.fw_applies++;
	m.fw_incremental++;
	log_debug("firewall: %zu endpoint and %zu policy changes: %zu sets and chains changed, "
		  "%lu messages, %.2f ms (following them %.2f, elements and rules %.2f, batch and "
		  "kernel %.2f (kernel %.2f), groups %.2f)", n - ff.policies, ff.policies, ff.sets,
		  ff.msgs, m.fw_apply_seconds * 1e3, ff.ms[0], ff.ms[1], ff.ms[2], ff.kernel_ms,
		  ff.ms[3]);
	check_incremental();
	return 0;
}

/* Compile larchd's policy for this host from the kept lists (kept.c, brought
 * up to date by the caller) and apply it when it changed (or, force: a
 * resync, when the table is gone); endpoint changes alone are applied as
 * element changes instead (firewall_changes). 0, or -1 with the previous
 * ruleset left in force. */
static int firewall_pass(bool force)
{
	json_t *state = NULL;
	struct error err = {0};
	char errbuf[2048];
	char *text = NULL;
	size_t nlocal_eps = 0;
	double t0 = now_s(), t1;
	int r = -1;

	if (firewall_changes(force) == 0)
		return 0;
	if (!(state = kept_state(kept))) {
		log_warnx("firewall: out of memory; the previous ruleset stays");
		goto out;
	}
	if (!(text = fw_render(state, o.host, o.table, o.fw, &nlocal_eps, pcache, true, &err))) {
		log_warnx("firewall: cannot compile the policy: %s; the previous ruleset stays",
			  err.msg);
		goto out;
	}
	t1 = now_s();
	m.fw_compile_seconds = t1 - t0;
	/* Unchanged: leave the table alone (replacing it would zero its
	 * counters); a resync only checks that it is still there. If it is
	 * not (someone flushed the ruleset), write it whole again: the
	 * difference from what the agent believes in force would be nothing. */
	if (force && !fw_present(o.fw, o.table))
		fw_forget();
	else if (fw_last && !strcmp(fw_last, text)) {
		fw_unchanged();
		r = 0;
		goto out;
	}
	if (fw_apply(o.fw, o.table, text, errbuf, sizeof(errbuf)) < 0) {
		log_warnx("firewall: the ruleset was refused, the previous one stays: %s", errbuf);
		/* what is in force may not be fw_last exactly (iptables: one
		 * family committed): the next pass applies whatever it compiles */
		free(fw_last);
		fw_last = NULL;
		fw_text_stale = false;
		goto out;
	}
	m.fw_apply_seconds = now_s() - t1;
	m.fw_kernel_seconds = o.fw == FW_NFT ? fw_kernel_ms() / 1e3 : 0;
	m.fw_applies++;
	m.fw_endpoints = nlocal_eps;
	m.fw_bytes = strlen(text);
	log_debug("firewall: applied %zu bytes for %zu endpoints (compile %.1f ms, apply %.1f ms)",
		  strlen(text), nlocal_eps, m.fw_compile_seconds * 1e3, m.fw_apply_seconds * 1e3);
	free(fw_last);
	fw_last = text;
	fw_text_stale = false;
	text = NULL;
	r = 0;
out:
	if (r < 0)
		m.fw_errors++;
	free(text);
	json_decref(state);
	return r;
}

/* The routes: read larchd's state (with a firewall, this host's endpoints
 * come from the kept lists), compute, reconcile. Returns the revision it is
 * consistent with, or 0 on failure (kernel untouched when larchd could not
 * be read). Called with pass_lock held, after kept_sync. */
static unsigned long route_pass(struct httpc *h, struct nl *nl)
{
	json_t *tree = NULL, *eps = NULL;
	struct desired d = {0};
	struct route_stats st;
	struct agent_cfg cfg = base_cfg;
	char path[300];
	unsigned long rev = 0;

	snprintf(path, sizeof(path), "/v1/endpoints?host=%s", o.host);
	if (get_json(h, "/v1/tree", &tree) < 0)
		goto out;
	/* with a firewall the agent keeps every endpoint anyway */
	if (o.fw != FW_NONE ? !(eps = kept_endpoints_on(kept, o.host)) : get_json(h, path, &eps) < 0)
		goto out;
	cfg.uplink_index = o.uplink ? (int)if_nametoindex(o.uplink) : 0;
	if (o.uplink && !cfg.uplink_index)
		log_warnx("uplink %s: no such interface", o.uplink);
	host_sysctls();
	if (reconcile_connected(nl, &cfg) < 0 || desired_build(&cfg, tree, eps, &d) < 0) {
		log_warnx("cannot compute the routes from larchd's state");
		goto out;
	}
	if (reconcile_routes(rc, nl, &cfg, &d, &st) < 0) {
		log_warnx("route reconcile failed");
		goto out;
	}
	remember_handles(eps);
	unsigned long r1 = (unsigned long)json_integer_value(json_object_get(tree, "revision"));
	unsigned long r2 = (unsigned long)json_integer_value(json_object_get(eps, "revision"));
	rev = r1 < r2 ? r1 : r2;
	m.added += st.added;
	m.replaced += st.replaced;
	m.removed += st.removed;
	m.routes = d.n;
	m.missing_ifaces = d.missing_ifaces;
	m.revision = rev;
	if (st.errors)
		m.pass_errors++;
	log_debug("pass at revision %lu: %zu routes wanted, %u added, %u replaced, %u removed, "
		  "%u kept one more pass, %u errors",
		  rev, d.n, st.added, st.replaced, st.removed, st.kept_pending, st.errors);
	if (!rev)
		rev = 1;
out:
	desired_clear(&d);
	json_decref(tree);
	json_decref(eps);
	return rev;
}

/* One pass: the routes (unless routes is false: the changes since the last
 * pass cannot move a route), then the firewall: compiled when its kept
 * inputs changed, on a resync, or when the last attempt failed. Returns the
 * revision the routes are consistent with (without routes: the last one, at
 * least 1), or 0 on failure. */
static unsigned long pass(struct httpc *h, struct nl *nl, bool force, bool routes)
{
	unsigned long rev = 0;
	double t0 = now_s(), t1, t2, t3;
	int synced = 0;
	bool ok, fw_ok = true;

	pthread_mutex_lock(&pass_lock);
	/* the policy's inputs (and the routes' endpoints): a resync reads
	 * larchd's lists whole, other passes only the change feed */
	if (o.fw != FW_NONE && (synced = kept_sync(kept, h, force)) < 0)
		fw_ok = false;
	t1 = now_s();
	/* the firewall first: a new endpoint's policy is in force before its
	 * routes are reconciled (larch-cni has put its host route already) */
	if (fw_ok && o.fw != FW_NONE &&
	    (synced || force || __atomic_load_n(&fw_failed, __ATOMIC_RELAXED)))
		fw_ok = firewall_pass(force) == 0;
	t2 = now_s();
	if (synced >= 0)
		rev = routes ? route_pass(h, nl) : (m.revision ?: 1);
	t3 = now_s();
	/* the interfaces' groups: after every pass (an apply may change the
	 * classes; a missing interface is looked for again only at a resync,
	 * or when its link event comes). A group not set is a failed pass:
	 * tried again after the next long poll. */
	if (o.fw == FW_NFT && fw_groups(force)) {
		m.fw_errors++;
		fw_ok = false;
	}
	ok = fw_ok && rev != 0;
	/* the firewall's failure alone brings the next pass early (routes
	 * are retried with the main loop's backoff) */
	if (o.fw != FW_NONE)
		__atomic_store_n(&fw_failed, !fw_ok, __ATOMIC_RELAXED);
	if (ok)
		m.last_ok = (long)time(NULL);
	else
		m.pass_errors++;
	m.passes++;
	m.last_pass_seconds = now_s() - t0;
	log_debug("pass: %.1f ms: the feed %.1f, firewall %.1f, routes %.1f, groups %.1f",
		  m.last_pass_seconds * 1e3, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3,
		  (now_s() - t3) * 1e3);
	pthread_mutex_unlock(&pass_lock);
	return rev;
}

/* What a feed batch touches: this host's routes (CH_ROUTES), the firewall's
 * inputs (CH_FIREWALL). */
enum { CH_ROUTES = 1, CH_FIREWALL = 2 };

static int relevant(json_t *changes)
{
	static const char *const fw_kinds[] = { "tenant", "block", "host", "endpoint", "policy",
						"namespace" };
	json_t *c;
	size_t i;
	int r = 0;

	json_array_foreach(changes, i, c) {
		const char *kind = json_string_value(json_object_get(c, "kind")) ?: "";
		const char *key = json_string_value(json_object_get(c, "key")) ?: "";
		const char *host = json_string_value(
			json_object_get(json_object_get(c, "object"), "host"));
		const char *slash = strrchr(key, '/');

		for (size_t k = 0; o.fw != FW_NONE && k < sizeof(fw_kinds) / sizeof(fw_kinds[0]); k++)
			if (!strcmp(kind, fw_kinds[k]))
				r |= CH_FIREWALL;
		if (!strcmp(kind, "block") || !strcmp(kind, "group") || !strcmp(kind, "host") ||
		    !strcmp(kind, "space"))
			r |= CH_ROUTES; /* may move any route */
		if (strcmp(kind, "endpoint"))
			continue;
		/* an endpoint of this host, or one that was (moved or deleted) */
		if (host && !strcmp(host, o.host))
			r |= CH_ROUTES;
		pthread_mutex_lock(&pass_lock); /* a pass on the socket renews the handles */
		for (size_t k = 0; slash && k < nlocal; k++)
			if (!strcmp(local_handles[k], slash + 1))
				r |= CH_ROUTES;
		pthread_mutex_unlock(&pass_lock);
	}
	return r;
}

static int register_host(struct httpc *h)
{
	char path[300];
	json_t *resp = NULL, *body;
	struct error err = {0};
	long status;
	int ret = -1;

	snprintf(path, sizeof(path), "/v1/hosts/%s", o.host);
	if (httpc_request(h, "GET", path, NULL, &status, &resp, &err) < 0) {
		log_warnx("larchd: %s", err.msg);
		return -1;
	}
	if (status == 200) {
		const char *g = json_string_value(json_object_get(resp, "group"));
		const char *a = json_string_value(json_object_get(resp, "address"));

		if (o.group && g && strcmp(g, o.group))
			log_warnx("host %s is registered in group %s, not %s: keeping larchd's",
				  o.host, g, o.group);
		if (o.address && a && strcmp(a, o.address))
			log_warnx("host %s is registered with address %s, not %s: keeping larchd's",
				  o.host, a, o.address);
		ret = 0;
	} else if (status == 404 && o.group) {
		json_decref(resp);
		resp = NULL;
		body = json_pack("{s:s, s:s, s:s}", "name", o.host, "address", o.address, "group",
				 o.group);
		if (httpc_request(h, "POST", "/v1/hosts", body, &status, &resp, &err) < 0)
			log_warnx("larchd: %s", err.msg);
		else if (status == 201 || status == 200)
			log_info("registered host %s (%s) in group %s", o.host, o.address, o.group),
				ret = 0;
		else
			log_warnx("registering host %s: %ld %s", o.host, status, httpc_body(h));
		json_decref(body);
	} else if (status == 404) {
		log_warnx("host %s is not registered in larchd (give --address and --group to "
			  "register it)", o.host);
	} else {
		log_warnx("larchd: GET %s: %ld %s", path, status, httpc_body(h));
	}
	json_decref(resp);
	return ret;
}

/* --- the local socket --- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type,
			     char *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static char *metrics_text(void)
{
	char *s = NULL;

	if (asprintf(&s,
		     "# TYPE larch_agent_passes_total counter\nlarch_agent_passes_total %lu\n"
		     "# TYPE larch_agent_pass_errors_total counter\nlarch_agent_pass_errors_total %lu\n"
		     "# TYPE larch_agent_routes_added_total counter\nlarch_agent_routes_added_total %lu\n"
		     "# TYPE larch_agent_routes_replaced_total counter\n"
		     "larch_agent_routes_replaced_total %lu\n"
		     "# TYPE larch_agent_routes_removed_total counter\n"
		     "larch_agent_routes_removed_total %lu\n"
		     "# TYPE larch_agent_feed_errors_total counter\nlarch_agent_feed_errors_total %lu\n"
		     "# TYPE larch_agent_routes gauge\nlarch_agent_routes %lu\n"
		     "# TYPE larch_agent_endpoints_without_interface gauge\n"
		     "larch_agent_endpoints_without_interface %lu\n"
		     "# TYPE larch_agent_revision gauge\nlarch_agent_revision %lu\n"
		     "# TYPE larch_agent_last_pass_seconds gauge\nlarch_agent_last_pass_seconds %.6f\n"
		     "# TYPE larch_agent_last_success_timestamp_seconds gauge\n"
		     "larch_agent_last_success_timestamp_seconds %ld\n"
		     "# TYPE larch_agent_firewall_applies_total counter\n"
		     "larch_agent_firewall_applies_total %lu\n"
		     "# TYPE larch_agent_firewall_errors_total counter\n"
		     "larch_agent_firewall_errors_total %lu\n"
		     "# TYPE larch_agent_firewall_changes gauge\nlarch_agent_firewall_changes %lu\n"
		     "# TYPE larch_agent_firewall_ruleset_bytes gauge\n"
		     "larch_agent_firewall_ruleset_bytes %lu\n"
		     "# TYPE larch_agent_firewall_compile_seconds gauge\n"
		     "larch_agent_firewall_compile_seconds %.6f\n"
		     "# TYPE larch_agent_firewall_apply_seconds gauge\n"
		     "larch_agent_firewall_apply_seconds %.6f\n"
		     "# TYPE larch_agent_firewall_kernel_seconds gauge\n"
		     "larch_agent_firewall_kernel_seconds %.6f\n"
		     "# TYPE larch_agent_firewall_list_reads_total counter\n"
		     "larch_agent_firewall_list_reads_total %lu\n"
		     "# TYPE larch_agent_firewall_incremental_total counter\n"
		     "larch_agent_firewall_incremental_total %lu\n",
		     (unsigned long)m.passes, (unsigned long)m.pass_errors, (unsigned long)m.added,
		     (unsigned long)m.replaced, (unsigned long)m.removed,
		     (unsigned long)m.feed_errors, (unsigned long)m.routes,
		     (unsigned long)m.missing_ifaces, (unsigned long)m.revision,
		     (double)m.last_pass_seconds, (long)m.last_ok, (unsigned long)m.fw_applies,
		     (unsigned long)m.fw_errors, (unsigned long)m.fw_endpoints,
		     (unsigned long)m.fw_bytes, (double)m.fw_compile_seconds,
		     (double)m.fw_apply_seconds, (double)m.fw_kernel_seconds, kept_loads(kept),
		     (unsigned long)m.fw_incremental) < 0)
		return NULL;
	return s;
}

struct sock_ctx {
	struct httpc *h;
	struct nl *nl;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **state)
{
	struct sock_ctx *sc = cls;
	char *body = NULL;
	(void)version;
	(void)data;

	if (!*state) { /* first call: headers only */
		*state = c;
		return MHD_YES;
	}
	if (*size) { /* bodies are not used: drop them */
		*size = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/v1/sync") && !strcmp(method, "POST")) {
		unsigned long rev = pass(sc->h, sc->nl, false, true);

		if (!rev) {
			asprintf(&body, "{\"error\":{\"code\":\"unavailable\",\"message\":"
					"\"larchd could not be read, or the routes could not be "
					"reconciled; the routes are as they were\"}}\n");
			return reply(c, 503, "application/json", body);
		}
		if (__atomic_load_n(&fw_failed, __ATOMIC_RELAXED)) {
			asprintf(&body, "{\"error\":{\"code\":\"firewall\",\"message\":"
					"\"the routes are in place, but the firewall update failed; the "
					"previous ruleset stays (see the agent's log)\"}}\n");
			return reply(c, 503, "application/json", body);
		}
		asprintf(&body, "{\"revision\":%lu,\"routes\":%lu}\n", rev, (unsigned long)m.routes);
		return reply(c, 200, "application/json", body);
	}
	if (!strcmp(method, "GET") && !strcmp(url, "/v1/ruleset")) {
		struct error err = {0};

		pthread_mutex_lock(&pass_lock);
		body = fw_last ? strdup(fw_last)
			       : fw_text_stale && !__atomic_load_n(&fw_failed, __ATOMIC_RELAXED)
				 ? render_kept(&err) : NULL;
		pthread_mutex_unlock(&pass_lock);
		if (body)
			return reply(c, 200, "text/plain", body);
		asprintf(&body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no ruleset "
				"known to be in force: none applied yet, the last update failed, "
				"or --firewall none\"}}\n");
		return reply(c, 404, "application/json", body);
	}
	if (!strcmp(method, "GET") && !strcmp(url, "/metrics")) {
		body = metrics_text();
		return body ? reply(c, 200, "text/plain; version=0.0.4", body) : MHD_NO;
	}
	if (!strcmp(method, "GET") && (!strcmp(url, "/healthz") || !strcmp(url, "/v1/status"))) {
		long age = m.last_ok ? (long)time(NULL) - m.last_ok : -1;
		bool ok = age >= 0 && age <= 3 * (long)o.resync;

		asprintf(&body,
			 "{\"status\":\"%s\",\"host\":\"%s\",\"revision\":%lu,\"routes\":%lu,"
			 "\"last_success_age_seconds\":%ld}\n",
			 ok ? "ok" : "degraded", o.host, (unsigned long)m.revision,
			 (unsigned long)m.routes, age);
		return reply(c, ok || !strcmp(url, "/v1/status") ? 200 : 503, "application/json",
			     body);
	}
	asprintf(&body, "{\"error\":{\"code\":\"not_found\",\"message\":\"%s %s: no such "
			"operation\"}}\n", method, url);
	return reply(c, 404, "application/json", body);
}

static struct MHD_Daemon *serve(struct sock_ctx *sc)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(o.socket_path) >= sizeof(sun.sun_path))
		fatalx("--socket %s: path too long", o.socket_path);
	memcpy(sun.sun_path, o.socket_path, strlen(o.socket_path) + 1);
	unlink(o.socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		fatal("--socket %s", o.socket_path);
	chmod(o.socket_path, 0600);
	if (listen(fd, 64) < 0)
		fatal("listen %s", o.socket_path);
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, sc,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_END);
	if (!d)
		fatalx("cannot serve on %s", o.socket_path);
	return d;
}

/* --render FILE: the ruleset for --host, on stdout. */
static int render_file(const char *path)
{
	json_error_t je;
	json_t *state = json_load_file(path, 0, &je);
	struct error err = {0};
	char *text;

	if (!state) {
		fprintf(stderr, "larch-agent: %s:%d: %s\n", path, je.line, je.text);
		return 1;
	}
	text = fw_render(state, o.host, o.table, o.fw == FW_IPT ? FW_IPT : FW_NFT, NULL, NULL, false,
			 &err);
	json_decref(state);
	if (!text) {
		fprintf(stderr, "larch-agent: %s: %s\n", path, err.msg);
		return 1;
	}
	fputs(text, stdout);
	free(text);
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/*
 * LARCH_AGENT_THP=1: glibc's heap on transparent huge pages, grown 128 MB
 * at a time (the tunables glibc.malloc.hugetlb=1 and glibc.malloc.top_pad).
 * It was the default until measured on a VM whose host backs a huge page
 * the first time a process touches it: 2.6 ms per MB against 0.45 for
 * small pages (docs/benchmarks.md, session 15), so reading larchd's lists
 * and the first compile were slower with it. glibc reads tunables only
 * when a program starts, so the agent sets them and executes itself again,
 * once, before it does anything else; if that fails it goes on as it is.
 * An operator's own GLIBC_TUNABLES that already says glibc.malloc.hugetlb
 * is left alone.
 */
static void heap_on_huge_pages(char **argv)
{
	const char *t = getenv("GLIBC_TUNABLES"), *opt = getenv("LARCH_AGENT_THP");
	char *v = NULL;

	if (!opt || strcmp(opt, "1") || (t && strstr(t, "glibc.malloc.hugetlb")))
		return;
	if (asprintf(&v, "%s%sglibc.malloc.hugetlb=1:glibc.malloc.top_pad=134217728", t ? t : "",
		     t && *t ? ":" : "") < 0)
		return;
	if (setenv("GLIBC_TUNABLES", v, 1) == 0) {
		execv("/proc/self/exe", argv);
		/* not possible (no /proc?): as we are */
		if (t)
			setenv("GLIBC_TUNABLES", t, 1);
		else
			unsetenv("GLIBC_TUNABLES");
	}
	free(v);
}

int main(int argc, char **argv)
{
	struct httpc *h, *feed;
	struct nl *nl, *nl_sock;
	struct sock_ctx sc;
	struct MHD_Daemon *d = NULL;
	unsigned long rev = 0;
	double backoff = 0.5, next_resync = 0;
	bool need_pass = true, need_routes = true, registered = false;
	int ret;

	heap_on_huge_pages(argv);
	if (parse_opts(argc, argv) < 0)
		return 2;
	log_init("larch-agent", o.debug);
	if (o.apply)
		return fw_apply_file(o.fw, o.table, o.apply, o.from);
	if (o.render)
		return render_file(o.render);
	if (o.token_file) {
		FILE *f = fopen(o.token_file, "r");
		size_t n;

		if (!f)
			fatal("--token-file %s", o.token_file);
		n = fread(token, 1, sizeof(token) - 1, f);
		fclose(f);
		while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
			n--;
		token[n] = '\0';
	}
	base_cfg.host = o.host;
	base_cfg.proto = (uint8_t)o.proto;
	if (o.nh4) {
		struct prefix p;
		addr_parse(o.nh4, &p, "next-hop", NULL);
		base_cfg.has_nh4 = true;
		base_cfg.nh4 = p.addr;
	}
	if (o.nh6) {
		struct prefix p;
		addr_parse(o.nh6, &p, "next-hop", NULL);
		base_cfg.has_nh6 = true;
		base_cfg.nh6 = p.addr;
	}
	if ((ret = nl_open(&nl)) < 0 || (ret = nl_open(&nl_sock)) < 0)
		fatalx("netlink: %s", strerror(-ret));
	rc = reconciler_new();
	if (!(pcache = policy_cache_new()) || !(kept = kept_new(pcache)))
		fatalx("out of memory");
	fw_cache_endpoints(pcache, o.host);
	h = client(10000);
	if (o.once) {
		if (register_host(h) < 0)
			return 1;
		rev = pass(h, nl, true, true);
		log_info("one pass %s at revision %lu", rev ? "done" : "failed", rev);
		forget_handles();
		kept_free(kept);
		policy_cache_free(pcache);
		httpc_free(h);
		nl_close(nl);
		nl_close(nl_sock);
		reconciler_free(rc);
		return rev && !fw_failed ? 0 : 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (o.fw == FW_NFT) {
		int e = fw_groups_watch();

		if (e < 0)
			log_warnx("firewall: cannot follow link events (%s): a new interface gets "
				  "its group at the next resync", strerror(-e));
	}
	sc.h = client(10000);
	sc.nl = nl_sock;
	d = serve(&sc);
	feed = client(0);
	log_info("host %s: following %s, resync every %u s, socket %s", o.host, o.server,
		 o.resync, o.socket_path);
	while (!stopping) {
		if (!registered)
			registered = register_host(h) == 0;
		if (registered && (need_pass || now_s() >= next_resync ||
				   __atomic_load_n(&fw_failed, __ATOMIC_RELAXED))) {
			bool resync = now_s() >= next_resync, routes = need_routes || resync;
			unsigned long r = pass(h, nl, resync, routes);

			if (!r)
				goto retry;
			if (routes)
				rev = r;
			need_pass = need_routes = false;
			if (resync) /* every --resync seconds, however busy the feed */
				next_resync = now_s() + o.resync;
		}
		if (!registered)
			goto retry;
		/* Long-poll the feed until the next resync is due. */
		char path[128];
		json_t *resp = NULL;
		struct error err = {0};
		long status;
		int wait = (int)(next_resync - now_s());

		/* Short polls: a SIGTERM is seen within 5 s (curl does not return on EINTR). */
		wait = wait < 1 ? 1 : wait > 5 ? 5 : wait;
		snprintf(path, sizeof(path), "/v1/changes?since=%lu&wait=%d&limit=10000", rev, wait);
		if (httpc_request(feed, "GET", path, NULL, &status, &resp, &err) < 0) {
			log_warnx("feed: %s; keeping the current routes", err.msg);
			m.feed_errors++;
			goto retry;
		}
		if (status == 410) {
			log_info("feed: revision %lu compacted away, reading the whole state", rev);
			need_pass = need_routes = true;
		} else if (status != 200) {
			log_warnx("feed: %ld %s", status, httpc_body(feed));
			m.feed_errors++;
			json_decref(resp);
			goto retry;
		} else {
			int what = relevant(json_object_get(resp, "changes"));

			need_pass |= what != 0;
			need_routes |= (what & CH_ROUTES) != 0;
			rev = (unsigned long)json_integer_value(json_object_get(resp, "revision"));
		}
		json_decref(resp);
		backoff = 0.5;
		continue;
retry:
		if (stopping)
			break;
		usleep((useconds_t)(backoff * 1e6));
		backoff = backoff * 2 > 30 ? 30 : backoff * 2;
	}
	log_info("stopping; routes stay in place");
	MHD_stop_daemon(d);
	unlink(o.socket_path);
	httpc_free(feed);
	httpc_free(sc.h);
	httpc_free(h);
	nl_close(nl);
	nl_close(nl_sock);
	reconciler_free(rc);
	forget_handles();
	kept_free(kept);
	policy_cache_free(pcache);
	free(fw_last);
	if (o.fw == FW_IPT)
		log_info("stopped; the firewall chains %s-* and their sets stay in force", o.table);
	else if (o.fw == FW_NFT)
		log_info("stopped; the firewall table %s stays in force", o.table);
	else
		log_info("stopped");
	return 0;
}
