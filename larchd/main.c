/* SPDX-License-Identifier: MIT */
/*
 * DOC: larchd start-up
 *
 * Flags and the YAML config file, then: open the store (migrating its
 * schema), load the whole model from it, check the model's invariants, start
 * the group-commit thread and the HTTP listeners, and run housekeeping (the
 * block cool-down sweep, change-log compaction) until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "larchd.h"
#include "log.h"
#include "yamljson.h"

static const char usage_text[] =
	"usage: larchd [options]\n"
	"\n"
	"The Larch control plane: hierarchical IPAM over a REST/JSON API.\n"
	"\n"
	"  -c, --config FILE          YAML config file (keys as the long flags, with _ for -)\n"
	"  -l, --listen ADDR:PORT     TCP listener, default 127.0.0.1:7420; 'none' for no TCP\n"
	"  -u, --unix PATH            also listen on a unix socket (mode 0600)\n"
	"  -d, --db PATH              SQLite database, default /var/lib/larch/larch.db\n"
	"      --store NAME           store backend, default sqlite\n"
	"  -t, --token-file FILE      require 'Authorization: Bearer <token>' on changes\n"
	"      --block-cooldown SECS  how long an emptied block rests before reuse (300)\n"
	"      --feed-retention N     revisions of change history kept (100000)\n"
	"      --check                load the store, check every invariant, and exit\n"
	"  -v, --debug                debug logging\n"
	"  -h, --help                 this text\n"
	"\n"
	"Flags on the command line override the config file. See docs/larchd.md.\n";

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int64_t parse_int(const char *flag, const char *v, int64_t min, int64_t max)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (!*v || *end || errno || x < min || x > max)
		fatalx("%s %s: must be an integer %lld-%lld", flag, v, (long long)min, (long long)max);
	return x;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
}

static void load_config(struct larchd_config *cfg, const char *path)
{
	static const char *const keys[] = { "listen", "unix", "db", "store", "token_file",
					    "block_cooldown", "feed_retention", "debug", NULL };
	struct error err = { 0 };
	json_t *docs = yamljson_load_file(path, &err), *doc, *v;
	const char *k;

	if (!docs)
		fatalx("config %s: %s", path, err.msg);
	if (json_array_size(docs) != 1 || !json_is_object(json_array_get(docs, 0)))
		fatalx("config %s: must be one YAML mapping", path);
	doc = json_array_get(docs, 0);
	json_object_foreach(doc, k, v) {
		bool known = false;

		for (size_t i = 0; keys[i]; i++)
			known |= !strcmp(k, keys[i]);
		if (!known)
			fatalx("config %s: %s: unknown key", path, k);
		if (!strcmp(k, "debug")) {
			if (!json_is_boolean(v))
				fatalx("config %s: debug: must be true or false", path);
			cfg->debug = json_is_true(v);
		} else if (!strcmp(k, "block_cooldown") || !strcmp(k, "feed_retention")) {
			if (!json_is_integer(v) || json_integer_value(v) < (k[0] == 'f' ? 1 : 0))
				fatalx("config %s: %s: must be a non-negative integer", path, k);
			if (k[0] == 'b')
				cfg->block_cooldown = json_integer_value(v);
			else
				cfg->feed_retention = json_integer_value(v);
		} else {
			if (!json_is_string(v))
				fatalx("config %s: %s: must be a string", path, k);
			set_str(!strcmp(k, "listen") ? &cfg->listen :
				!strcmp(k, "unix") ? &cfg->unix_path :
				!strcmp(k, "db") ? &cfg->db :
				!strcmp(k, "store") ? &cfg->store : &cfg->token_file,
				json_string_value(v));
		}
	}
	json_decref(docs);
}

static char *read_token(const char *path)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		fatal("token file %s", path);
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	if (n < 16)
		fatalx("token file %s: the token must be at least 16 characters", path);
	return strdup(buf);
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Housekeeping: return cooled blocks, end long-polls that timed out,
 * compact the change log. */
static void housekeeping(struct larchd *d, time_t *last_compact)
{
	struct mtxn tx;
	time_t now = time(NULL);

	pthread_rwlock_rdlock(&d->lock);
	{
		bool due = d->model->cool_head && d->model->cool_head->cool_until <= model_now(d->model);

		pthread_rwlock_unlock(&d->lock);
		if (due) {
			/* nobody waits for this one: submit and go on */
			write_begin(d, &tx);
			commit_submit(d->commit, &tx);
			pthread_rwlock_unlock(&d->lock);
			mtxn_release(&tx);
		}
	}
	commit_expire(d->commit, now_ms(), false);
	if (now - *last_compact >= 10) {
		uint64_t rev = commit_revision(d->commit);

		*last_compact = now;
		if (rev > (uint64_t)d->cfg.feed_retention)
			d->sops->compact(d->store, rev - (uint64_t)d->cfg.feed_retention);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "unix", required_argument, NULL, 'u' },
		{ "db", required_argument, NULL, 'd' },
		{ "store", required_argument, NULL, 's' },
		{ "token-file", required_argument, NULL, 't' },
		{ "block-cooldown", required_argument, NULL, 'B' },
		{ "feed-retention", required_argument, NULL, 'R' },
		{ "check", no_argument, NULL, 'C' },
		{ "debug", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct larchd *d = calloc(1, sizeof(*d));
	struct larchd_config flags = { .block_cooldown = -1, .feed_retention = -1 };
	struct error err = { 0 };
	struct model_options mo = { 0 };
	const char *config = NULL;
	bool check_only = false;
	uint64_t rev, compacted;
	time_t last_compact = 0;
	struct timespec t0, t1;
	int c;

	if (!d)
		return 1;
	log_init("larchd", 0);
	while ((c = getopt_long(argc, argv, "c:l:u:d:t:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'l': set_str(&flags.listen, optarg); break;
		case 'u': set_str(&flags.unix_path, optarg); break;
		case 'd': set_str(&flags.db, optarg); break;
		case 's': set_str(&flags.store, optarg); break;
		case 't': set_str(&flags.token_file, optarg); break;
		case 'B': flags.block_cooldown = parse_int("--block-cooldown", optarg, 0, 86400 * 365); break;
		case 'R': flags.feed_retention = parse_int("--feed-retention", optarg, 1, INT64_MAX); break;
		case 'C': check_only = true; break;
		case 'v': flags.debug = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "larchd: unexpected argument: %s\n%s", argv[optind], usage_text);
		return 2;
	}

	/* defaults, then the config file, then flags */
	d->cfg.listen = strdup("127.0.0.1:7420");
	d->cfg.db = strdup("/var/lib/larch/larch.db");
	d->cfg.store = strdup("sqlite");
	d->cfg.block_cooldown = 300;
	d->cfg.feed_retention = 100000;
	if (config)
		load_config(&d->cfg, config);
	if (flags.listen) set_str(&d->cfg.listen, flags.listen);
	if (flags.unix_path) set_str(&d->cfg.unix_path, flags.unix_path);
	if (flags.db) set_str(&d->cfg.db, flags.db);
	if (flags.store) set_str(&d->cfg.store, flags.store);
	if (flags.token_file) set_str(&d->cfg.token_file, flags.token_file);
	if (flags.block_cooldown >= 0) d->cfg.block_cooldown = flags.block_cooldown;
	if (flags.feed_retention >= 0) d->cfg.feed_retention = flags.feed_retention;
	d->cfg.debug |= flags.debug;
	log_init("larchd", d->cfg.debug);

	if (d->cfg.token_file)
		d->token = read_token(d->cfg.token_file);
	d->sops = store_backend(d->cfg.store);
	if (!d->sops)
		fatalx("--store %s: unknown store backend (known: sqlite)", d->cfg.store);
	if (d->sops->open(d->cfg.db, &d->store, &err) < 0)
		fatalx("store %s: %s", d->cfg.db, err.msg);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	mo.block_cooldown = d->cfg.block_cooldown;
	d->model = model_new(&mo);
	if (!d->model)
		fatalx("out of memory");
	if (model_load(d->model, d->store, d->sops, &err) < 0)
		fatalx("loading %s: %s", d->cfg.db, err.msg);
	if (model_check(d->model, &err) < 0)
		fatalx("loading %s: the stored state breaks an invariant: %s", d->cfg.db, err.msg);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (d->sops->revision(d->store, &rev, &compacted) < 0)
		fatalx("store %s: cannot read the revision", d->cfg.db);
	log_info("loaded %zu endpoints, %zu blocks, %zu hosts at revision %llu in %.3f s",
		 d->model->nendpoints, d->model->nblocks, d->model->hosts.len,
		 (unsigned long long)rev,
		 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (check_only) {
		printf("larchd: %s: ok (%zu endpoints, %zu blocks, revision %llu)\n", d->cfg.db,
		       d->model->nendpoints, d->model->nblocks, (unsigned long long)rev);
		return 0;
	}

	pthread_rwlock_init(&d->lock, NULL);
	d->commit = commit_start(d->sops, d->store, &d->metrics, rev);
	if (!d->commit)
		fatalx("cannot start the commit thread");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	http_start(d);
	log_info("ready");

	while (!stopping) {
		housekeeping(d, &last_compact);
		usleep(100 * 1000);
	}
	log_info("stopping");
	http_stop(d);
	commit_stop(d->commit);
	d->sops->close(d->store);
	model_free(d->model);
	free(d->token);
	free(d->cfg.listen);
	free(d->cfg.unix_path);
	free(d->cfg.db);
	free(d->cfg.store);
	free(d->cfg.token_file);
	free(flags.listen);
	free(flags.unix_path);
	free(flags.db);
	free(flags.store);
	free(flags.token_file);
	free(d);
	return 0;
}
