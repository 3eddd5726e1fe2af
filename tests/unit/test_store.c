/* SPDX-License-Identifier: MIT */
/* The SQLite store: real files in a temporary directory. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "error.h"
#include "store.h"

static const struct store_ops *ops = &store_sqlite_ops;

struct fixture {
	char dir[64];
	char path[96];
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct error err = { 0 };

	strcpy(f->dir, "/tmp/larch-test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/larch.db", f->dir);
	assert_int_equal(ops->open(f->path, &f->st, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	ops->close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	struct error err = { 0 };

	ops->close(f->st);
	f->st = NULL;
	assert_int_equal(ops->open(f->path, &f->st, &err), 0);
}

/* commit one transaction of puts (value == key when v is NULL) */
static uint64_t put(struct store *st, const char *key, const char *v)
{
	struct store_op op = { STORE_PUT, key, v ? v : key, strlen(v ? v : key) };
	struct store_txn t = { .ops = &op, .nops = 1 };
	struct error err = { 0 };

	assert_int_equal(ops->commit(st, &t, 1, &err), 0);
	assert_int_equal(t.result, 0);
	return t.rev;
}

struct got {
	char keys[64][64];
	char vals[64][64];
	uint64_t create[64], mod[64], rev[64];
	int type[64];
	size_t n;
};

static int collect_kv(const struct store_kv *kv, void *arg)
{
	struct got *g = arg;

	assert_true(g->n < 64);
	snprintf(g->keys[g->n], 64, "%s", kv->key);
	snprintf(g->vals[g->n], 64, "%.*s", (int)kv->value_len, kv->value);
	g->create[g->n] = kv->create_rev;
	g->mod[g->n] = kv->mod_rev;
	g->n++;
	return 0;
}

static int collect_ch(const struct store_change *ch, void *arg)
{
	struct got *g = arg;

	assert_true(g->n < 64);
	snprintf(g->keys[g->n], 64, "%s", ch->key);
	snprintf(g->vals[g->n], 64, "%.*s", (int)ch->value_len, ch->value ? ch->value : "");
	g->rev[g->n] = ch->rev;
	g->type[g->n] = ch->type;
	g->n++;
	return 0;
}

static void test_put_get_range(void **state)
{
	struct fixture *f = *state;
	struct got g = { 0 };
	uint64_t rev, comp;

	assert_int_equal(put(f->st, "/larch/hosts/a", "1"), 1);
	assert_int_equal(put(f->st, "/larch/hosts/b", "2"), 2);
	assert_int_equal(put(f->st, "/larch/hostsz", "x"), 3);
	assert_int_equal(put(f->st, "/larch/groups/r1", "g"), 4);
	assert_int_equal(put(f->st, "/larch/hosts/a", "1b"), 5);

	assert_int_equal(ops->range(f->st, "/larch/hosts/", collect_kv, &g, &rev), 0);
	assert_int_equal(rev, 5);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.keys[0], "/larch/hosts/a");
	assert_string_equal(g.vals[0], "1b");
	assert_int_equal(g.create[0], 1);
	assert_int_equal(g.mod[0], 5);
	assert_string_equal(g.keys[1], "/larch/hosts/b");

	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->get(f->st, "/larch/groups/r1", collect_kv, &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.vals[0], "g");
	assert_int_equal(ops->get(f->st, "/larch/groups/nope", collect_kv, &g), -ENOENT);

	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->range(f->st, "", collect_kv, &g, NULL), 0);
	assert_int_equal(g.n, 4);

	/* everything survives a reopen, the revision too */
	reopen(f);
	assert_int_equal(ops->revision(f->st, &rev, &comp), 0);
	assert_int_equal(rev, 5);
	assert_int_equal(comp, 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->range(f->st, "/larch/", collect_kv, &g, &rev), 0);
	assert_int_equal(g.n, 4);
	assert_int_equal(put(f->st, "/larch/x", NULL), 6);
}

static void test_compare_and_swap(void **state)
{
	struct fixture *f = *state;
	struct store_op op_a = { STORE_PUT, "/k/a", "v2", 2 };
	struct store_op op_b = { STORE_PUT, "/k/b", "vb", 2 };
	struct store_op op_c = { STORE_PUT, "/k/c", "vc", 2 };
	struct store_cmp stale = { "/k/a", 99 }, fresh = { "/k/a", 1 }, absent = { "/k/c", 0 };
	struct store_txn t[3] = {
		{ .cmps = &stale, .ncmps = 1, .ops = &op_b, .nops = 1 },
		{ .cmps = &fresh, .ncmps = 1, .ops = &op_a, .nops = 1 },
		{ .cmps = &absent, .ncmps = 1, .ops = &op_c, .nops = 1 },
	};
	struct error err = { 0 };
	struct got g = { 0 };
	uint64_t rev, comp;

	assert_int_equal(put(f->st, "/k/a", "v1"), 1);
	/* one batch: the first txn's compare fails and only it is skipped */
	assert_int_equal(ops->commit(f->st, t, 3, &err), 0);
	assert_int_equal(t[0].result, -ECANCELED);
	assert_int_equal(t[0].rev, 0);
	assert_int_equal(t[1].result, 0);
	assert_int_equal(t[1].rev, 2);
	assert_int_equal(t[2].result, 0);
	assert_int_equal(t[2].rev, 3);
	assert_int_equal(ops->get(f->st, "/k/b", collect_kv, &g), -ENOENT);
	assert_int_equal(ops->revision(f->st, &rev, &comp), 0);
	assert_int_equal(rev, 3);

	/* "must not exist" fails once it exists */
	assert_int_equal(ops->commit(f->st, &t[2], 1, &err), 0);
	assert_int_equal(t[2].result, -ECANCELED);
	assert_int_equal(ops->revision(f->st, &rev, &comp), 0);
	assert_int_equal(rev, 3);
}

static void test_changes_and_compaction(void **state)
{
	struct fixture *f = *state;
	struct store_op two[2] = { { STORE_PUT, "/e/1", "a", 1 }, { STORE_PUT, "/b/1", "b", 1 } };
	struct store_op del[2] = { { STORE_DELETE, "/e/1", NULL, 0 },
				   { STORE_DELETE, "/e/none", NULL, 0 } };
	struct store_txn t = { .ops = two, .nops = 2 };
	struct error err = { 0 };
	struct got g = { 0 };
	uint64_t rev, comp;

	assert_int_equal(ops->commit(f->st, &t, 1, &err), 0); /* rev 1: two changes */
	assert_int_equal(put(f->st, "/e/2", NULL), 2);
	t = (struct store_txn){ .ops = del, .nops = 2 };
	assert_int_equal(ops->commit(f->st, &t, 1, &err), 0); /* rev 3: one delete */
	assert_int_equal(t.rev, 3);

	assert_int_equal(ops->changes(f->st, 0, 1000, collect_ch, &g), 0);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.rev[0], 1);
	assert_string_equal(g.keys[0], "/e/1");
	assert_int_equal(g.rev[1], 1);
	assert_string_equal(g.keys[1], "/b/1");
	assert_int_equal(g.rev[2], 2);
	assert_int_equal(g.rev[3], 3);
	assert_int_equal(g.type[3], STORE_DELETE);
	assert_string_equal(g.keys[3], "/e/1"); /* deleting a missing key is no change */

	/* limit 1 still returns all of revision 1: a revision is never split */
	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->changes(f->st, 0, 1, collect_ch, &g), 0);
	assert_int_equal(g.n, 2);
	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->changes(f->st, 1, 1, collect_ch, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.rev[0], 2);

	assert_int_equal(ops->compact(f->st, 2), 0);
	assert_int_equal(ops->revision(f->st, &rev, &comp), 0);
	assert_int_equal(rev, 3);
	assert_int_equal(comp, 2);
	assert_int_equal(ops->changes(f->st, 1, 10, collect_ch, &g), -ESTALE);
	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->changes(f->st, 2, 10, collect_ch, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.rev[0], 3);
	/* compaction survives a reopen; keys are kept */
	reopen(f);
	assert_int_equal(ops->revision(f->st, &rev, &comp), 0);
	assert_int_equal(comp, 2);
	assert_int_equal(ops->changes(f->st, 0, 10, collect_ch, &g), -ESTALE);
	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->range(f->st, "/", collect_kv, &g, NULL), 0);
	assert_int_equal(g.n, 2); /* /b/1 and /e/2 */
}

static void test_second_open_refused(void **state)
{
	struct fixture *f = *state;
	struct store *other = NULL;
	struct error err = { 0 };

	assert_true(ops->open(f->path, &other, &err) < 0);
	assert_null(other);
	assert_non_null(strstr(err.msg, "in use"));
}

static void exec_sql(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_schema_checks(void **state)
{
	struct fixture *f = *state;
	struct store *st = NULL;
	struct error err = { 0 };
	char other[128];

	ops->close(f->st);
	f->st = NULL;
	/* a newer schema is refused, naming both versions */
	exec_sql(f->path, "PRAGMA user_version = 99");
	assert_true(ops->open(f->path, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "schema version 99"));
	exec_sql(f->path, "PRAGMA user_version = 1");
	assert_int_equal(ops->open(f->path, &f->st, &err), 0);

	/* somebody else's database is refused and left alone */
	snprintf(other, sizeof(other), "%s/other.db", f->dir);
	exec_sql(other, "CREATE TABLE t (x); INSERT INTO t VALUES (1)");
	assert_true(ops->open(other, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "not a Larch database"));
}

static void test_bad_op_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_op ops2[2] = { { STORE_PUT, "/ok", "1", 1 }, { (enum store_op_type)7, "/x", "", 0 } };
	struct store_txn t[2] = { { .ops = ops2, .nops = 1 }, { .ops = ops2, .nops = 2 } };
	struct error err = { 0 };
	struct got g = { 0 };
	uint64_t rev, comp;

	assert_true(ops->commit(f->st, t, 2, &err) < 0);
	assert_non_null(strstr(err.msg, "unknown operation"));
	assert_int_equal(ops->get(f->st, "/ok", collect_kv, &g), -ENOENT);
	assert_int_equal(ops->revision(f->st, &rev, &comp), 0);
	assert_int_equal(rev, 0);
	assert_int_equal(put(f->st, "/ok", NULL), 1);
}

/* Readers run while the writer commits: each range sees a whole batch or
 * none of it (every batch writes the same counter into two keys). */
struct race {
	struct store *st;
	int stop;
	int torn;
	int reads;
};

static int pair_cb(const struct store_kv *kv, void *arg)
{
	char (*vals)[32] = arg;

	snprintf(vals[kv->key[3] == 'a' ? 0 : 1], 32, "%.*s", (int)kv->value_len, kv->value);
	return 0;
}

static void *reader(void *arg)
{
	struct race *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		char vals[2][32] = { "", "" };
		uint64_t rev;

		assert_int_equal(ops->range(r->st, "/p/", pair_cb, vals, &rev), 0);
		if (strcmp(vals[0], vals[1]))
			r->torn++;
		r->reads++;
	}
	return NULL;
}

static void test_concurrent_reads(void **state)
{
	struct fixture *f = *state;
	struct race r = { .st = f->st };
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, reader, &r), 0);
	for (int i = 0; i < 300; i++) {
		char v[32];
		struct store_op two[2] = { { STORE_PUT, "/p/a", v, 0 }, { STORE_PUT, "/p/b", v, 0 } };
		struct store_txn t = { .ops = two, .nops = 2 };
		struct error err = { 0 };

		two[0].value_len = two[1].value_len = (size_t)snprintf(v, sizeof(v), "%d", i);
		assert_int_equal(ops->commit(f->st, &t, 1, &err), 0);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_int_equal(r.torn, 0);
	assert_true(r.reads > 0);
}

/* Under a steady stream of commits the WAL stays bounded: the checkpointer
 * restarts it (a passive checkpoint alone never catches up with the writer,
 * and the WAL would grow with every commit). 3,000 commits of 12 KiB write
 * about 150 MB of frames; the WAL file must stay under journal_size_limit
 * (64 MiB). */
static void test_wal_bounded(void **state)
{
	struct fixture *f = *state;
	char wal[128], v[3][4096];
	struct stat sb;
	off_t max = 0;

	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	for (int i = 0; i < 3; i++)
		memset(v[i], 'a' + i, sizeof(v[i]));
	for (int i = 0; i < 3000; i++) {
		char keys[3][32];
		struct store_op op[3];
		struct store_txn t = { .ops = op, .nops = 3 };
		struct error err = { 0 };

		for (int j = 0; j < 3; j++) {
			snprintf(keys[j], sizeof(keys[j]), "/w/%d/%d", i % 500, j);
			op[j] = (struct store_op){ STORE_PUT, keys[j], v[j], sizeof(v[j]) };
		}
		assert_int_equal(ops->commit(f->st, &t, 1, &err), 0);
		if (i % 100 == 99 && stat(wal, &sb) == 0 && sb.st_size > max)
			max = sb.st_size;
	}
	print_message("largest WAL seen: %lld bytes\n", (long long)max);
	assert_true(max > 0);
	assert_true(max <= 64 << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compare_and_swap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_and_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_open_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_op_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_bounded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
