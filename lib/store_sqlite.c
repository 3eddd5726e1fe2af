/* SPDX-License-Identifier: MIT */
/*
 * DOC: the embedded SQLite store
 *
 * The store interface (store.h) on one SQLite file in WAL mode with
 * synchronous=FULL: a commit returns only after its WAL frames are fsync'd.
 *
 *   kv(key, value, create_rev, mod_rev)    the current state
 *   changes(rev, seq, type, key, value)    the change log ("watch"), compacted
 *   meta(name, value)                      revision, compacted
 *
 * A batch of transactions is one SQLite transaction (BEGIN IMMEDIATE ...
 * COMMIT), so one fsync makes all of them durable: group commit. Each store
 * transaction is still all-or-nothing: its compares are checked before any of
 * its writes, and a failed compare skips it without using a revision. An SQL
 * error anywhere rolls the whole batch back and nothing is acknowledged.
 *
 * Two connections: the writer (commit, compact) and a reader (range, get,
 * changes). WAL lets the reader see a consistent snapshot while a batch is
 * being written; each has its own mutex because an SQLite connection is not
 * to be shared between threads mid-statement.
 *
 * Checkpoints (copying the WAL back into the database file) run on a
 * thread of the store's own with a third connection, not inside a commit:
 * SQLite's automatic checkpoint would otherwise stall whichever commit
 * crosses the threshold by tens of milliseconds. The writer's wal_hook
 * tells that thread how long the WAL is.
 *
 * The schema version lives in PRAGMA user_version and the file is marked with
 * PRAGMA application_id, so larchd refuses a database that is not Larch's or
 * that a newer larchd wrote. A lock file next to the database (flock) keeps a
 * second larchd off the same file: two daemons each holding the model in
 * memory would hand out the same address twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <sqlite3.h>

#include "error.h"
#include "store.h"

#define LARCH_APP_ID 0x4c524348 /* "LRCH" */

/* Compaction deletes at most this many revisions per writer-lock hold, so a
 * big compaction never stalls commits for long. */
#define COMPACT_CHUNK 5000

/* Checkpoint after this many WAL frames since the last checkpoint (4 MiB
 * with 4 KiB pages); RESTART once the WAL holds RESTART_PAGES. */
#define CHECKPOINT_PAGES 1024
#define RESTART_PAGES 4096 /* 16 MiB of 4 KiB pages */

struct store {
	sqlite3 *w, *r, *ck;
	pthread_t ck_thread;
	bool ck_running, ck_stop;
	int wal_pages; /* frames in the WAL after the last commit */
	int ck_log;    /* frames in the WAL when the last checkpoint ran */
	pthread_mutex_t ckmu;
	pthread_cond_t ckcond;
	pthread_mutex_t wmu, rmu;
	sqlite3_stmt *s_begin, *s_commit, *s_rollback, *s_cmp, *s_put, *s_del, *s_chg,
		*s_meta_set;
	sqlite3_stmt *s_get, *s_changes, *s_rbegin, *s_rend, *s_rmeta;
	_Atomic uint64_t rev, compacted;
	int lockfd;
};

/*
 * Migrations: migrations[i] brings the schema from version i to i + 1. Never
 * edit a released one; append.
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL,"
	"  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE changes (rev INTEGER NOT NULL, seq INTEGER NOT NULL,"
	"  type INTEGER NOT NULL, key TEXT NOT NULL, value BLOB,"
	"  PRIMARY KEY (rev, seq)) WITHOUT ROWID;"
	"CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
	"INSERT INTO meta VALUES ('revision', 0), ('compacted', 0);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int sql_error(struct error *err, sqlite3 *db, const char *what)
{
	return error_set(err, EIO, 500, "internal", "", "", "%s: %s", what,
			 db ? sqlite3_errmsg(db) : "out of memory");
}

static int exec(sqlite3 *db, const char *sql, const char *what, struct error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		error_set(err, EIO, 500, "internal", "", "", "%s: %s", what,
			  msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **s, struct error *err)
{
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL) != SQLITE_OK)
		return sql_error(err, db, "preparing a statement");
	return 0;
}

static int open_conn(const char *path, sqlite3 **db, struct error *err)
{
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		int r = sql_error(err, *db, "opening the database");

		sqlite3_close(*db);
		*db = NULL;
		return r;
	}
	sqlite3_busy_timeout(*db, 10000);
	sqlite3_extended_result_codes(*db, 1);
	return 0;
}

/* Bring the schema up to SCHEMA_VERSION; each step is its own transaction. */
static int migrate(sqlite3 *db, struct error *err)
{
	int64_t version, app, tables;
	char sql[96];

	if (pragma_int(db, "PRAGMA user_version", &version) < 0 ||
	    pragma_int(db, "PRAGMA application_id", &app) < 0 ||
	    pragma_int(db, "SELECT count(*) FROM sqlite_schema", &tables) < 0)
		return sql_error(err, db, "reading the schema version");
	if (app != LARCH_APP_ID && (app != 0 || tables != 0))
		return error_set(err, EINVAL, 500, "internal", "", "",
				 "not a Larch database (application_id %lld, %lld tables)",
				 (long long)app, (long long)tables);
	if (version > SCHEMA_VERSION)
		return error_set(err, EINVAL, 500, "internal", "", "",
				 "schema version %lld is newer than this larchd knows (%d): "
				 "run a newer larchd", (long long)version, SCHEMA_VERSION);
	for (int64_t v = version; v < SCHEMA_VERSION; v++) {
		if (exec(db, "BEGIN IMMEDIATE", "migrating", err) < 0)
			return -EIO;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld; PRAGMA application_id = %d",
			 (long long)v + 1, LARCH_APP_ID);
		if (exec(db, migrations[v], "migrating the schema", err) < 0 ||
		    exec(db, sql, "migrating the schema", err) < 0 ||
		    exec(db, "COMMIT", "migrating the schema", err) < 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -EIO;
		}
	}
	return 0;
}

static int lock_file(const char *path, int *fd, struct error *err)
{
	char *lp;
	int r = 0;

	if (asprintf(&lp, "%s.lock", path) < 0)
		return -ENOMEM;
	*fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		r = error_set(err, errno, 500, "internal", "", "", "%s: %s", lp, strerror(errno));
	else if (flock(*fd, LOCK_EX | LOCK_NB) < 0)
		r = error_set(err, errno, 500, "internal", "", "",
			      "%s is in use by another process (lock %s: %s)", path, lp,
			      strerror(errno));
	free(lp);
	return r;
}

/* A checkpoint is due once CHECKPOINT_PAGES frames were written since the
 * last one. (Not "once the WAL holds that many": a WAL that a reader keeps
 * from restarting stays long, and that test would checkpoint, and fsync the
 * database file, after every commit.) A WAL shorter than at the last
 * checkpoint has restarted from its start. */
static bool checkpoint_due(const struct store *st)
{
	int since = st->wal_pages >= st->ck_log ? st->wal_pages - st->ck_log : st->wal_pages;

	return since >= CHECKPOINT_PAGES;
}

static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *st = arg;
	(void)db;
	(void)name;

	pthread_mutex_lock(&st->ckmu);
	st->wal_pages = pages;
	if (checkpoint_due(st))
		pthread_cond_signal(&st->ckcond);
	pthread_mutex_unlock(&st->ckmu);
	return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
	struct store *st = arg;
	int log = 0;

	pthread_mutex_lock(&st->ckmu);
	while (!st->ck_stop) {
		if (!checkpoint_due(st)) {
			pthread_cond_wait(&st->ckcond, &st->ckmu);
			continue;
		}
		st->ck_log = st->wal_pages;
		pthread_mutex_unlock(&st->ckmu);
		/* PASSIVE: never blocks the writer; what it cannot copy now
		 * it copies next time, and the writer restarts the WAL from its
		 * start once a checkpoint got everything. The WAL file keeps
		 * its length (up to journal_size_limit), so the commits after a
		 * restart overwrite blocks the file already has: their fsync
		 * need not write the inode. */
		sqlite3_wal_checkpoint_v2(st->ck, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, NULL);
		/* Under a steady stream of commits a passive checkpoint never
		 * catches up with the last frame, the WAL never restarts, and
		 * every commit appends to an ever longer file (measured: 300 MB
		 * in 5 s of allocations; and an append's fsync must also write
		 * the inode). So once the WAL is long, RESTART: it copies the
		 * few frames the passive run left, and the next commit writes
		 * from the WAL's start again. It takes the writer's mutex
		 * first: SQLite's busy handler polls, and a writer that commits
		 * back to back would starve it (measured: 160 MB of WAL). */
		if (log >= RESTART_PAGES) {
			pthread_mutex_lock(&st->wmu);
			sqlite3_wal_checkpoint_v2(st->ck, NULL, SQLITE_CHECKPOINT_RESTART, NULL,
						  NULL);
			pthread_mutex_unlock(&st->wmu);
		}
		pthread_mutex_lock(&st->ckmu);
	}
	pthread_mutex_unlock(&st->ckmu);
	return NULL;
}

static void sqlite_close(struct store *st)
{
	sqlite3_stmt **all[] = { &st->s_begin, &st->s_commit, &st->s_rollback, &st->s_cmp,
				 &st->s_put, &st->s_del, &st->s_chg, &st->s_meta_set,
				 &st->s_get, &st->s_changes, &st->s_rbegin, &st->s_rend,
				 &st->s_rmeta };

	if (!st)
		return;
	if (st->ck_running) {
		pthread_mutex_lock(&st->ckmu);
		st->ck_stop = true;
		pthread_cond_signal(&st->ckcond);
		pthread_mutex_unlock(&st->ckmu);
		pthread_join(st->ck_thread, NULL);
	}
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		sqlite3_finalize(*all[i]);
	sqlite3_close(st->ck);
	sqlite3_close(st->r);
	sqlite3_close(st->w);
	if (st->lockfd >= 0)
		close(st->lockfd);
	pthread_mutex_destroy(&st->wmu);
	pthread_mutex_destroy(&st->rmu);
	pthread_mutex_destroy(&st->ckmu);
	pthread_cond_destroy(&st->ckcond);
	free(st);
}

static int meta_get(sqlite3 *db, const char *name, uint64_t *out)
{
	char sql[80];
	int64_t v;

	snprintf(sql, sizeof(sql), "SELECT value FROM meta WHERE name = '%s'", name);
	if (pragma_int(db, sql, &v) < 0)
		return -EIO;
	*out = (uint64_t)v;
	return 0;
}

static int sqlite_open(const char *path, struct store **out, struct error *err)
{
	struct store *st = calloc(1, sizeof(*st));
	uint64_t rev, compacted;
	int r;

	if (!st)
		return -ENOMEM;
	st->lockfd = -1;
	pthread_mutex_init(&st->wmu, NULL);
	pthread_mutex_init(&st->rmu, NULL);
	pthread_mutex_init(&st->ckmu, NULL);
	pthread_cond_init(&st->ckcond, NULL);
	if ((r = lock_file(path, &st->lockfd, err)) < 0 ||
	    (r = open_conn(path, &st->w, err)) < 0)
		goto fail;
	/* WAL first: it is a property of the file and must be set before the
	 * reader opens. synchronous=FULL: every COMMIT fsyncs the WAL. */
	r = -EIO;
	if (exec(st->w, "PRAGMA journal_mode = WAL", "setting WAL mode", err) < 0 ||
	    exec(st->w, "PRAGMA synchronous = FULL", "setting synchronous=FULL", err) < 0 ||
	    exec(st->w, "PRAGMA foreign_keys = OFF", "setting pragmas", err) < 0 ||
	    exec(st->w, "PRAGMA wal_autocheckpoint = 0", "setting pragmas", err) < 0 ||
	    (r = migrate(st->w, err)) < 0 || (r = open_conn(path, &st->r, err)) < 0 ||
	    (r = open_conn(path, &st->ck, err)) < 0)
		goto fail;
	/* a connection that never read the file does not know it is in WAL
	 * mode, and its checkpoints would do nothing */
	if (exec(st->ck, "SELECT count(*) FROM meta", "opening the checkpointer", err) < 0 ||
	    exec(st->w, "PRAGMA journal_size_limit = 67108864", "setting pragmas", err) < 0 ||
	    /* the writer's page cache holds the B-tree's inner pages of a large
	     * store (64 MiB; SQLite's default is 2 MiB) */
	    exec(st->w, "PRAGMA cache_size = -65536", "setting pragmas", err) < 0) {
		r = -EIO;
		goto fail;
	}
	sqlite3_wal_hook(st->w, on_wal, st);
	if (pthread_create(&st->ck_thread, NULL, checkpointer, st) != 0) {
		r = error_set(err, EAGAIN, 500, "internal", "", "", "cannot start the checkpoint thread");
		goto fail;
	}
	st->ck_running = true;
	if ((r = prep(st->w, "BEGIN IMMEDIATE", &st->s_begin, err)) < 0 ||
	    (r = prep(st->w, "COMMIT", &st->s_commit, err)) < 0 ||
	    (r = prep(st->w, "ROLLBACK", &st->s_rollback, err)) < 0 ||
	    (r = prep(st->w, "SELECT mod_rev FROM kv WHERE key = ?1", &st->s_cmp, err)) < 0 ||
	    (r = prep(st->w,
		      "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3) "
		      "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
		      "mod_rev = excluded.mod_rev",
		      &st->s_put, err)) < 0 ||
	    (r = prep(st->w, "DELETE FROM kv WHERE key = ?1", &st->s_del, err)) < 0 ||
	    (r = prep(st->w, "INSERT INTO changes VALUES (?1, ?2, ?3, ?4, ?5)", &st->s_chg,
		      err)) < 0 ||
	    (r = prep(st->w, "UPDATE meta SET value = ?2 WHERE name = ?1", &st->s_meta_set,
		      err)) < 0 ||
	    (r = prep(st->r, "SELECT value, create_rev, mod_rev FROM kv WHERE key = ?1",
		      &st->s_get, err)) < 0 ||
	    (r = prep(st->r,
		      "SELECT rev, type, key, value FROM changes WHERE rev > ?1 "
		      "ORDER BY rev, seq",
		      &st->s_changes, err)) < 0 ||
	    (r = prep(st->r, "BEGIN", &st->s_rbegin, err)) < 0 ||
	    (r = prep(st->r, "COMMIT", &st->s_rend, err)) < 0 ||
	    (r = prep(st->r, "SELECT value FROM meta WHERE name = 'revision'", &st->s_rmeta,
		      err)) < 0)
		goto fail;
	if (meta_get(st->w, "revision", &rev) < 0 || meta_get(st->w, "compacted", &compacted) < 0) {
		r = sql_error(err, st->w, "reading the revision");
		goto fail;
	}
	atomic_store(&st->rev, rev);
	atomic_store(&st->compacted, compacted);
	*out = st;
	return 0;
fail:
	sqlite_close(st);
	return r;
}

static int sqlite_revision(struct store *st, uint64_t *rev, uint64_t *compacted)
{
	*rev = atomic_load(&st->rev);
	*compacted = atomic_load(&st->compacted);
	return 0;
}

static int step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

/* The compares of one transaction: 0 when all hold, 1 when one fails. */
static int check_cmps(struct store *st, const struct store_txn *t)
{
	for (size_t i = 0; i < t->ncmps; i++) {
		uint64_t have = 0;
		int rc;

		sqlite3_bind_text(st->s_cmp, 1, t->cmps[i].key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st->s_cmp);
		if (rc == SQLITE_ROW)
			have = (uint64_t)sqlite3_column_int64(st->s_cmp, 0);
		sqlite3_reset(st->s_cmp);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return -EIO;
		if (have != t->cmps[i].mod_rev)
			return 1;
	}
	return 0;
}

static int apply_op(struct store *st, const struct store_op *op, uint64_t rev, int seq)
{
	sqlite3_stmt *s = op->type == STORE_PUT ? st->s_put : st->s_del;

	sqlite3_bind_text(s, 1, op->key, -1, SQLITE_STATIC);
	if (op->type == STORE_PUT) {
		sqlite3_bind_blob(s, 2, op->value, (int)op->value_len, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (int64_t)rev);
	}
	if (step_done(s) < 0)
		return -EIO;
	/* Like etcd: deleting a key that is not there is no change. */
	if (op->type == STORE_DELETE && sqlite3_changes(st->w) == 0)
		return 0;
	sqlite3_bind_int64(st->s_chg, 1, (int64_t)rev);
	sqlite3_bind_int(st->s_chg, 2, seq);
	sqlite3_bind_int(st->s_chg, 3, op->type);
	sqlite3_bind_text(st->s_chg, 4, op->key, -1, SQLITE_STATIC);
	if (op->type == STORE_PUT)
		sqlite3_bind_blob(st->s_chg, 5, op->value, (int)op->value_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st->s_chg, 5);
	return step_done(st->s_chg) < 0 ? -EIO : 1;
}

static int sqlite_commit(struct store *st, struct store_txn *txns, size_t n, struct error *err)
{
	uint64_t rev = atomic_load(&st->rev);
	const char *what = "beginning a commit";
	int r = 0;

	pthread_mutex_lock(&st->wmu);
	if (step_done(st->s_begin) < 0)
		goto fail;
	what = "writing a transaction";
	for (size_t i = 0; i < n; i++) {
		struct store_txn *t = &txns[i];
		int seq = 0;

		t->rev = 0;
		t->result = 0;
		if ((r = check_cmps(st, t)) < 0)
			goto fail;
		if (r > 0) {
			t->result = -ECANCELED;
			continue;
		}
		if (!t->nops) {
			t->rev = rev;
			continue;
		}
		t->rev = ++rev;
		for (size_t j = 0; j < t->nops; j++) {
			if (t->ops[j].type != STORE_PUT && t->ops[j].type != STORE_DELETE) {
				sqlite3_step(st->s_rollback);
				sqlite3_reset(st->s_rollback);
				pthread_mutex_unlock(&st->wmu);
				return error_set(err, EINVAL, 500, "internal", "", "",
						 "store commit: unknown operation %d", t->ops[j].type);
			}
			if ((r = apply_op(st, &t->ops[j], rev, seq)) < 0)
				goto fail;
			seq += r;
		}
	}
	what = "committing";
	sqlite3_bind_text(st->s_meta_set, 1, "revision", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st->s_meta_set, 2, (int64_t)rev);
	if (step_done(st->s_meta_set) < 0 || step_done(st->s_commit) < 0)
		goto fail;
	atomic_store(&st->rev, rev);
	pthread_mutex_unlock(&st->wmu);
	return 0;
fail:
	r = sql_error(err, st->w, what);
	if (!sqlite3_get_autocommit(st->w))
		step_done(st->s_rollback);
	for (size_t i = 0; i < n; i++)
		txns[i].rev = 0, txns[i].result = 0;
	pthread_mutex_unlock(&st->wmu);
	return r;
}

static uint64_t read_revision(struct store *st)
{
	uint64_t rev = 0;

	if (sqlite3_step(st->s_rmeta) == SQLITE_ROW)
		rev = (uint64_t)sqlite3_column_int64(st->s_rmeta, 0);
	sqlite3_reset(st->s_rmeta);
	return rev;
}

static struct store_kv row_kv(sqlite3_stmt *s, int first, const char *key)
{
	return (struct store_kv){
		.key = key,
		.value = sqlite3_column_blob(s, first),
		.value_len = (size_t)sqlite3_column_bytes(s, first),
		.create_rev = (uint64_t)sqlite3_column_int64(s, first + 1),
		.mod_rev = (uint64_t)sqlite3_column_int64(s, first + 2),
	};
}

static int sqlite_range(struct store *st, const char *prefix, store_kv_cb cb, void *arg,
			uint64_t *rev)
{
	size_t plen = strlen(prefix);
	char *end = NULL;
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	/* [prefix, prefix with its last byte + 1): an index range, not LIKE. */
	if (plen) {
		end = strdup(prefix);
		if (!end)
			return -ENOMEM;
		while (plen && (unsigned char)end[plen - 1] == 0xff)
			end[--plen] = '\0';
		if (plen)
			end[plen - 1]++;
	}
	pthread_mutex_lock(&st->rmu);
	if (sqlite3_prepare_v2(st->r,
			       plen ? "SELECT key, value, create_rev, mod_rev FROM kv "
				      "WHERE key >= ?1 AND key < ?2 ORDER BY key"
				    : "SELECT key, value, create_rev, mod_rev FROM kv "
				      "WHERE key >= ?1 ORDER BY key",
			       -1, &s, NULL) != SQLITE_OK ||
	    step_done(st->s_rbegin) < 0) {
		r = -EIO;
		goto out;
	}
	if (rev)
		*rev = read_revision(st);
	sqlite3_bind_text(s, 1, prefix, -1, SQLITE_STATIC);
	if (plen)
		sqlite3_bind_text(s, 2, end, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_kv kv = row_kv(s, 1, (const char *)sqlite3_column_text(s, 0));

		if ((r = cb(&kv, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = -EIO;
	step_done(st->s_rend);
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->rmu);
	free(end);
	return r;
}

static int sqlite_get(struct store *st, const char *key, store_kv_cb cb, void *arg)
{
	int rc, r;

	pthread_mutex_lock(&st->rmu);
	sqlite3_bind_text(st->s_get, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st->s_get);
	if (rc == SQLITE_ROW) {
		struct store_kv kv = row_kv(st->s_get, 0, key);

		r = cb(&kv, arg);
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	sqlite3_reset(st->s_get);
	pthread_mutex_unlock(&st->rmu);
	return r;
}

static int sqlite_changes(struct store *st, uint64_t since, size_t limit, store_change_cb cb,
			  void *arg)
{
	uint64_t last = 0;
	size_t count = 0;
	int rc, r = 0;

	if (since < atomic_load(&st->compacted))
		return -ESTALE;
	pthread_mutex_lock(&st->rmu);
	if (step_done(st->s_rbegin) < 0) {
		pthread_mutex_unlock(&st->rmu);
		return -EIO;
	}
	/* Checked again inside the read transaction, after its snapshot is
	 * taken (SQLite takes it at the first read, not at BEGIN): compaction
	 * moves `compacted` before it deletes, so either this sees the new
	 * value or the snapshot still has the rows. */
	read_revision(st);
	if (since < atomic_load(&st->compacted)) {
		r = -ESTALE;
		goto out;
	}
	sqlite3_bind_int64(st->s_changes, 1, (int64_t)since);
	while ((rc = sqlite3_step(st->s_changes)) == SQLITE_ROW) {
		struct store_change ch = {
			.rev = (uint64_t)sqlite3_column_int64(st->s_changes, 0),
			.type = sqlite3_column_int(st->s_changes, 1),
			.key = (const char *)sqlite3_column_text(st->s_changes, 2),
		};

		/* Never split a revision: stop at the first row of a new
		 * revision once the limit is reached. */
		if (count >= limit && ch.rev != last)
			break;
		if (ch.type == STORE_PUT) {
			ch.value = sqlite3_column_blob(st->s_changes, 3);
			ch.value_len = (size_t)sqlite3_column_bytes(st->s_changes, 3);
			if (!ch.value)
				ch.value = "";
		}
		last = ch.rev;
		count++;
		if ((r = cb(&ch, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = -EIO;
	sqlite3_reset(st->s_changes);
out:
	step_done(st->s_rend);
	pthread_mutex_unlock(&st->rmu);
	return r;
}

static int sqlite_compact(struct store *st, uint64_t rev)
{
	uint64_t from = atomic_load(&st->compacted);

	if (rev > atomic_load(&st->rev))
		rev = atomic_load(&st->rev);
	while (from < rev) {
		uint64_t to = rev - from > COMPACT_CHUNK ? from + COMPACT_CHUNK : rev;
		char sql[160];
		int r;

		snprintf(sql, sizeof(sql),
			 "BEGIN IMMEDIATE; DELETE FROM changes WHERE rev <= %llu;"
			 "UPDATE meta SET value = %llu WHERE name = 'compacted'; COMMIT",
			 (unsigned long long)to, (unsigned long long)to);
		pthread_mutex_lock(&st->wmu);
		/* compacted moves first: a reader that starts now must not expect
		 * rows that are about to go. */
		atomic_store(&st->compacted, to);
		r = exec(st->w, sql, "compacting", NULL);
		if (r < 0 && !sqlite3_get_autocommit(st->w))
			sqlite3_exec(st->w, "ROLLBACK", NULL, NULL, NULL);
		pthread_mutex_unlock(&st->wmu);
		if (r < 0) {
			atomic_store(&st->compacted, from);
			return r;
		}
		from = to;
	}
	return 0;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.revision = sqlite_revision,
	.range = sqlite_range,
	.get = sqlite_get,
	.commit = sqlite_commit,
	.changes = sqlite_changes,
	.compact = sqlite_compact,
};
