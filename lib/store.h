/* SPDX-License-Identifier: MIT */
#ifndef LARCH_STORE_H
#define LARCH_STORE_H

/*
 * DOC: the store interface
 *
 * larchd keeps its state as keys and JSON values in a store with an etcd-like
 * model, so that the embedded SQLite backend and the etcd backend (a later
 * issue) are interchangeable:
 *
 *  - every committed transaction gets the next revision (a 64-bit counter
 *    that never goes back); every key remembers the revision that created it
 *    and the one that last changed it (create_rev, mod_rev);
 *  - a transaction is a list of compares (compare-and-swap: "key K is at
 *    mod_rev R", R == 0 meaning "K does not exist") and a list of puts and
 *    deletes; it applies whole or not at all;
 *  - the change log ("watch"): every put and delete, with its revision, can be
 *    read back from any revision after the compaction point.
 *
 * store_commit() takes a batch of transactions and makes them durable together
 * (one fsync for the batch: group commit), each still atomic on its own and with
 * its own revision. It returns only after the batch is on disk. A failed compare
 * fails only its own transaction.
 *
 * Threads: one thread commits; range, get, changes and revision may run from
 * other threads at the same time.
 */

#include <stddef.h>
#include <stdint.h>

struct error;
struct store;

enum store_op_type { STORE_PUT = 1, STORE_DELETE = 2 };

struct store_op {
	enum store_op_type type;
	const char *key;   /* NUL-terminated; "/larch/..." */
	const char *value; /* PUT only; need not be NUL-terminated */
	size_t value_len;
};

struct store_cmp {
	const char *key;
	uint64_t mod_rev; /* 0: the key must not exist */
};

struct store_txn {
	const struct store_cmp *cmps;
	size_t ncmps;
	const struct store_op *ops;
	size_t nops;
	/* Filled by store_commit(): */
	uint64_t rev;     /* revision given to this txn (0 if it failed) */
	int result;       /* 0, or -ECANCELED when a compare failed */
};

struct store_kv {
	const char *key;
	const char *value;
	size_t value_len;
	uint64_t create_rev;
	uint64_t mod_rev;
};

struct store_change {
	uint64_t rev;
	enum store_op_type type;
	const char *key;
	const char *value; /* NULL for STORE_DELETE */
	size_t value_len;
};

/* Callbacks return 0 to go on, anything else to stop (and that is returned). */
typedef int (*store_kv_cb)(const struct store_kv *kv, void *arg);
typedef int (*store_change_cb)(const struct store_change *ch, void *arg);

struct store_ops {
	const char *name; /* "sqlite", "etcd" */

	/* Open (create, migrate) the store at `path` (a file for sqlite, a URL
	 * list for etcd). */
	int (*open)(const char *path, struct store **out, struct error *err);
	void (*close)(struct store *st); /* NULL is fine */

	/* Current revision and the oldest revision changes() can start after. */
	int (*revision)(struct store *st, uint64_t *rev, uint64_t *compacted);

	/* Every key starting with prefix, in key order, at one consistent revision
	 * (*rev receives it). */
	int (*range)(struct store *st, const char *prefix, store_kv_cb cb, void *arg,
		     uint64_t *rev);

	/* One key: 0 and *out filled (value valid during cb only -> use range for
	 * bulk), -ENOENT when absent. */
	int (*get)(struct store *st, const char *key, store_kv_cb cb, void *arg);

	/* Commit txns[0..n) durably, in order; see DOC above. Returns 0 when the
	 * batch was written (look at each txns[i].result), -errno when nothing
	 * was. */
	int (*commit)(struct store *st, struct store_txn *txns, size_t n, struct error *err);

	/* Changes with revision > since, oldest first, at most limit of them.
	 * -ESTALE when since is before the compaction point. */
	int (*changes)(struct store *st, uint64_t since, size_t limit, store_change_cb cb,
		       void *arg);

	/* Forget changes at or before rev (keys are kept). */
	int (*compact)(struct store *st, uint64_t rev);
};

extern const struct store_ops store_sqlite_ops;

/* Find a backend by name ("sqlite"); NULL when unknown. */
const struct store_ops *store_backend(const char *name);

#endif
