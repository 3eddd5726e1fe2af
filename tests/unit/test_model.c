/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the IPAM model (lib/model*.c), and the randomized invariant
 * test: seeded random sequences of allocate / release / bind / rebind /
 * unbind / sweep over tight spaces, with model_check() after every step, and
 * a byte-for-byte comparison of the model's dump around every failed step
 * (a failure must leave no trace). LARCH_SEED=N reruns one seed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "model.h"
#include "model_internal.h"

static int64_t fake_now = 1000000;
static int64_t clock_fn(void)
{
	return fake_now;
}

static struct prefix P(const char *s)
{
	struct prefix p;

	assert_int_equal(prefix_parse(s, &p, 0, "t", NULL), 0);
	return p;
}

static void space(struct model *m, const char *name, const char *cidr, int bl,
		  const char **res, size_t nres)
{
	struct space_spec sp = { .name = name, .cidr = P(cidr), .block_len = bl };
	struct prefix r[8];
	struct error err = { 0 };

	for (size_t i = 0; i < nres; i++)
		r[i] = P(res[i]);
	sp.reserved = r;
	sp.nreserved = nres;
	assert_int_equal(model_space_create(m, &sp, NULL, &err), 0);
}

static void group(struct model *m, const char *name, const char *parent, unsigned cap)
{
	struct group_spec sp = { .name = name, .parent = parent, .capacity = cap };
	struct error err = { 0 };
	int r = model_group_create(m, &sp, NULL, &err);

	if (r)
		fail_msg("group %s: %s", name, err.msg);
}

static void host(struct model *m, const char *name, const char *grp)
{
	struct host_spec sp = { .name = name, .address = P("192.0.2.1"), .group = grp };

	assert_int_equal(model_host_create(m, &sp, NULL, NULL), 0);
}

static void tenant_seg(struct model *m, const char *t, const char *s)
{
	struct tenant_spec ts = { .name = t };
	struct segment_spec ss = { .tenant = t, .name = s };

	assert_true(model_tenant_create(m, &ts, NULL, NULL) >= 0);
	assert_int_equal(model_segment_create(m, &ss, NULL, NULL), 0);
}

static int alloc(struct model *m, const char *handle, const char *t, const char *s,
		 const char *h, struct endpoint **e, struct error *err)
{
	struct endpoint_spec sp = { .handle = handle, .tenant = t, .segment = s, .host = h };

	return model_endpoint_create(m, &sp, NULL, e, err);
}

static void check(struct model *m)
{
	struct error err = { 0 };

	if (model_check(m, &err) < 0)
		fail_msg("invariant: %s", err.msg);
}

static struct model *topo(void)
{
	struct model_options o = { .block_cooldown = 60, .now = clock_fn };
	struct model *m = model_new(&o);

	space(m, "v4", "10.64.0.0/16", 28, NULL, 0);
	space(m, "v6", "fd10::/48", 124, NULL, 0);
	group(m, "zone", NULL, 0);
	group(m, "rack1", "zone", 1024);
	group(m, "rack2", "zone", 1024);
	host(m, "h1", "rack1");
	host(m, "h2", "rack1");
	host(m, "h3", "rack2");
	tenant_seg(m, "blue", "web");
	tenant_seg(m, "blue", "db");
	tenant_seg(m, "green", "app");
	check(m);
	return m;
}

static void test_prefixes_nest(void **state)
{
	struct model *m = topo();
	struct group *z = model_group(m, "zone"), *r1 = model_group(m, "rack1"),
		     *r2 = model_group(m, "rack2");
	char b[PREFIX_STRLEN];
	(void)state;

	/* default sizing: a root group gets 1/16 of the space; capacity 1024 -> /22 */
	assert_string_equal(prefix_fmt(&z->regions[0].prefix, b), "10.64.0.0/20");
	assert_string_equal(prefix_fmt(&r1->regions[0].prefix, b), "10.64.0.0/22");
	assert_string_equal(prefix_fmt(&r2->regions[0].prefix, b), "10.64.4.0/22");
	assert_string_equal(prefix_fmt(&r1->regions[1].prefix, b), "fd10::/118");
	model_free(m);
}

static void test_alloc_dual_stack(void **state)
{
	struct model *m = topo();
	struct endpoint *e, *e2;
	struct error err = { 0 };
	char b[PREFIX_STRLEN];
	(void)state;

	assert_int_equal(alloc(m, "p1", "blue", "web", "h1", &e, &err), 0);
	assert_int_equal(e->naddrs, 2);
	/* 10.64.0.0 is the space's network address: never handed out */
	assert_string_equal(addr_fmt(4, block_addr(e->addrs[0].block, e->addrs[0].off), b), "10.64.0.1");
	assert_string_equal(prefix_fmt(&e->addrs[0].block->cidr, b), "10.64.0.0/28");
	assert_string_equal(addr_fmt(6, block_addr(e->addrs[1].block, e->addrs[1].off), b), "fd10::1");
	/* same handle, same request: same endpoint, nothing new */
	assert_int_equal(alloc(m, "p1", "blue", "web", "h1", &e2, &err), 1);
	assert_ptr_equal(e, e2);
	/* same handle, other segment: conflict naming the field */
	assert_int_equal(alloc(m, "p1", "blue", "db", "h1", &e2, &err), -EBUSY);
	assert_string_equal(err.field, "segment");
	/* other segment on the same host: its own block */
	assert_int_equal(alloc(m, "p2", "blue", "db", "h1", &e2, &err), 0);
	assert_string_equal(prefix_fmt(&e2->addrs[0].block->cidr, b), "10.64.0.16/28");
	/* other host in the same rack: its own block, inside rack1 */
	assert_int_equal(alloc(m, "p3", "blue", "web", "h2", &e2, &err), 0);
	assert_string_equal(prefix_fmt(&e2->addrs[0].block->cidr, b), "10.64.0.32/28");
	/* other rack */
	assert_int_equal(alloc(m, "p4", "blue", "web", "h3", &e2, &err), 0);
	assert_string_equal(prefix_fmt(&e2->addrs[0].block->cidr, b), "10.64.4.0/28");
	check(m);
	model_free(m);
}

static void test_missing_refs(void **state)
{
	struct model *m = topo();
	struct endpoint *e;
	struct error err = { 0 };
	struct endpoint_spec sp = { .handle = "x", .tenant = "blue", .segment = "web",
				    .host = "h1", .parent = "nope" };
	(void)state;

	assert_int_equal(alloc(m, "x", "red", "web", "h1", &e, &err), -ENOENT);
	assert_string_equal(err.field, "tenant");
	assert_int_equal(alloc(m, "x", "blue", "nope", "h1", &e, &err), -ENOENT);
	assert_string_equal(err.field, "segment");
	assert_int_equal(alloc(m, "x", "blue", "web", "h9", &e, &err), -ENOENT);
	assert_string_equal(err.field, "host");
	assert_string_equal(err.value, "h9");
	assert_int_equal(model_endpoint_create(m, &sp, NULL, &e, &err), -ENOENT);
	assert_string_equal(err.field, "parent");
	assert_int_equal(m->nendpoints, 0);
	check(m);
	model_free(m);
}

static void test_deferred_bind_rebind(void **state)
{
	struct model *m = topo();
	struct endpoint *e;
	struct error err = { 0 };
	char b[PREFIX_STRLEN];
	(void)state;

	assert_int_equal(alloc(m, "port1", "green", "app", NULL, &e, &err), 0);
	assert_int_equal(e->naddrs, 0);
	assert_int_equal(model_endpoint_bind(m, "port1", "h1", NULL, &e, &err), 0);
	assert_int_equal(e->naddrs, 2);
	assert_true(prefix_contains(&model_group(m, "rack1")->regions[0].prefix, &e->addrs[0].block->cidr));
	assert_int_equal(model_endpoint_bind(m, "port1", "h1", NULL, &e, &err), 1);
	assert_int_equal(model_endpoint_bind(m, "port1", "h3", NULL, &e, &err), 0);
	assert_string_equal(prefix_fmt(&e->addrs[0].block->cidr, b), "10.64.4.0/28");
	assert_int_equal(model_host(m, "h1")->nendpoints, 0);
	assert_int_equal(model_host(m, "h3")->nendpoints, 1);
	check(m);
	assert_int_equal(model_endpoint_bind(m, "port1", NULL, NULL, &e, &err), 0);
	assert_int_equal(e->naddrs, 0);
	check(m);
	model_free(m);
}

static void test_next_fit_and_cooldown(void **state)
{
	struct model *m = topo();
	struct endpoint *e;
	struct error err = { 0 };
	char b[PREFIX_STRLEN];
	struct block *blk;
	(void)state;

	assert_int_equal(alloc(m, "a", "blue", "web", "h1", &e, &err), 0);
	assert_int_equal(alloc(m, "b", "blue", "web", "h1", &e, &err), 0);
	assert_int_equal(model_endpoint_delete(m, "a", NULL, &err), 0);
	/* next-fit: the released .1 is not handed out again at once */
	assert_int_equal(alloc(m, "c", "blue", "web", "h1", &e, &err), 0);
	assert_string_equal(addr_fmt(4, block_addr(e->addrs[0].block, e->addrs[0].off), b), "10.64.0.3");
	blk = e->addrs[0].block;
	assert_int_equal(model_endpoint_delete(m, "b", NULL, &err), 0);
	assert_int_equal(model_endpoint_delete(m, "c", NULL, &err), 0);
	assert_int_equal(blk->state, BLOCK_COOLING);
	check(m);
	/* while it cools, a new allocation claims another block */
	assert_int_equal(alloc(m, "d", "blue", "web", "h1", &e, &err), 0);
	assert_string_equal(prefix_fmt(&e->addrs[0].block->cidr, b), "10.64.0.16/28");
	assert_int_equal(model_sweep(m, NULL), 0);
	fake_now += 61;
	assert_int_equal(model_sweep(m, NULL), 2); /* v4 and v6 blocks */
	/* the cooled block is back in the group: the next claim takes it again */
	assert_int_equal(alloc(m, "e", "blue", "db", "h2", &e, &err), 0);
	assert_string_equal(prefix_fmt(&e->addrs[0].block->cidr, b), "10.64.0.0/28");
	check(m);
	model_free(m);
}

static void test_reserved_and_exhaustion(void **state)
{
	struct model_options o = { .block_cooldown = 0 };
	struct model *m = model_new(&o);
	const char *res[] = { "10.9.0.5", "10.9.0.8/30" };
	struct endpoint *e;
	struct error err = { 0 };
	char h[16];
	int n = 0, r;
	(void)state;

	space(m, "tiny", "10.9.0.0/28", 30, res, 2);
	group(m, "g", NULL, 16);
	host(m, "h", "g");
	tenant_seg(m, "t", "s");
	for (;;) {
		snprintf(h, sizeof(h), "e%d", n);
		r = alloc(m, h, "t", "s", "h", &e, &err);
		if (r < 0)
			break;
		{
			u128 a = block_addr(e->addrs[0].block, e->addrs[0].off);
			char b[PREFIX_STRLEN];

			addr_fmt(4, a, b);
			assert_string_not_equal(b, "10.9.0.0");
			assert_string_not_equal(b, "10.9.0.15");
			assert_string_not_equal(b, "10.9.0.5");
			assert_false(a >= P("10.9.0.8").addr && a <= P("10.9.0.11").addr);
		}
		n++;
		check(m);
	}
	/* 16 - network - broadcast - .5 - 10.9.0.8/30 = 9 addresses */
	assert_int_equal(n, 9);
	assert_int_equal(r, -ENOSPC);
	assert_string_equal(err.code, "exhausted");
	assert_non_null(strstr(err.msg, "space tiny"));
	assert_non_null(strstr(err.msg, "group g"));
	assert_non_null(strstr(err.msg, "host h"));
	model_free(m);
}

static void test_group_exhaustion_and_overlap(void **state)
{
	struct model *m = topo();
	struct group_spec big = { .name = "huge", .parent = "zone", .capacity = 1u << 20 };
	struct space_spec over = { .name = "v4b", .cidr = P("10.64.128.0/17"), .block_len = -1 };
	struct error err = { 0 };
	(void)state;

	assert_int_equal(model_group_create(m, &big, NULL, &err), -ENOSPC);
	assert_string_equal(err.field, "capacity");
	assert_int_equal(model_space_create(m, &over, NULL, &err), -EBUSY);
	assert_string_equal(err.field, "cidr");
	assert_null(model_group(m, "huge"));
	check(m);
	model_free(m);
}

static void test_delete_in_use(void **state)
{
	struct model *m = topo();
	struct endpoint *e;
	struct error err = { 0 };
	(void)state;

	assert_int_equal(alloc(m, "p", "blue", "web", "h1", &e, &err), 0);
	assert_int_equal(model_host_delete(m, "h1", NULL, &err), -EBUSY);
	assert_int_equal(model_group_delete(m, "zone", NULL, &err), -EBUSY);
	assert_int_equal(model_segment_delete(m, "blue", "web", NULL, &err), -EBUSY);
	assert_int_equal(model_tenant_delete(m, "blue", NULL, &err), -EBUSY);
	assert_int_equal(model_space_delete(m, "v4", NULL, &err), -EBUSY);
	assert_int_equal(model_endpoint_delete(m, "p", NULL, &err), 0);
	/* h1's cooling blocks go back at once when h1 goes */
	assert_int_equal(model_host_delete(m, "h1", NULL, &err), 0);
	assert_int_equal(m->nblocks, 0);
	check(m);
	model_free(m);
}

/* ---- randomized invariants ---- */

static char *dump(struct model *m)
{
	json_t *t = model_tree_json(m), *eps = json_object();
	struct endpoint *e;
	size_t it = 0;
	char *s;

	while ((e = hmap_next(&m->endpoints, &it)))
		json_object_set_new(eps, e->handle, endpoint_json(m, e));
	json_object_set_new(t, "endpoints", eps);
	json_object_set_new(t, "nblocks", json_integer((json_int_t)m->nblocks));
	s = json_dumps(t, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(t);
	return s;
}

static unsigned rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (unsigned)(*s >> 11);
}

/* Is there really no room for (host, segment) in some space of the segment? */
static bool really_full(struct model *m, const char *hn, const char *t, const char *sn)
{
	struct host *h = model_host(m, hn);
	struct segment *sg = model_segment(m, t, sn);

	for (size_t i = 0; i < m->nspaces; i++) {
		struct space *s = m->spaces[i];
		struct bucket *bk;
		size_t it = 0;
		bool room = false;
		u128 start;

		if (!(sg->spaces & (1U << i)))
			continue;
		while ((bk = hmap_next(&m->buckets, &it)))
			if (bk->host == h && bk->segment == sg && bk->space == s)
				for (struct block *b = bk->blocks; b; b = b->bnext)
					room |= b->state == BLOCK_ACTIVE && b->used + b->nreserved < b->size;
		if (room)
			continue;
		/* no block with room: is any free block left in the group, reserved or not? */
		for (u128 a = h->group->regions[i].prefix.addr;
		     a <= prefix_last(&h->group->regions[i].prefix); a += prefix_size(&(struct prefix){ .family = s->cidr.family, .len = s->block_len })) {
			if (region_overlap(&h->group->regions[i], a, a + 3))
				continue;
			(void)start;
			/* a free candidate: it must be fully reserved for the failure to be right */
			struct block *dummy = model_block_at(s, a);

			assert_null(dummy);
			{
				bool all = true;

				for (u128 x = a; x < a + prefix_size(&(struct prefix){ .family = s->cidr.family, .len = s->block_len }); x++) {
					bool r = x == s->cidr.addr || x == prefix_last(&s->cidr);

					for (size_t k = 0; k < s->nreserved; k++)
						r |= prefix_contains_addr(&s->reserved[k], s->cidr.family, x);
					all &= r;
				}
				if (!all)
					return false;
			}
		}
		return true;
	}
	return false;
}

static void run_seed(uint64_t seed, int steps)
{
	struct model_options o = { .block_cooldown = 5, .now = clock_fn };
	struct model *m = model_new(&o);
	const char *res[] = { "10.5.0.7", "10.5.0.32/29" };
	const char *hosts[] = { "a1", "a2", "b1" };
	const char *segs[][2] = { { "t1", "s1" }, { "t1", "s2" }, { "t2", "s1" } };
	uint64_t s = seed * 2654435761u + 1;
	struct error err;
	int failures = 0, oks = 0;

	/* tight: 64 v4 addresses in /30 blocks, a v6 space for dual stack on one segment */
	space(m, "v4", "10.5.0.0/26", 30, res, 2);
	space(m, "v6", "fd00:5::/120", 126, NULL, 0);
	group(m, "ga", NULL, 32);
	group(m, "gb", NULL, 16);
	host(m, "a1", "ga");
	host(m, "a2", "ga");
	host(m, "b1", "gb");
	tenant_seg(m, "t1", "s1");
	{
		struct segment_spec ss = { .tenant = "t1", .name = "s2", .spaces = (const char *[]){ "v4" },
					   .nspaces = 1, .spaces_given = true };
		struct tenant_spec ts = { .name = "t2" };

		assert_int_equal(model_segment_create(m, &ss, NULL, NULL), 0);
		assert_int_equal(model_tenant_create(m, &ts, NULL, NULL), 0);
		ss.tenant = "t2";
		ss.name = "s1";
		assert_int_equal(model_segment_create(m, &ss, NULL, NULL), 0);
	}
	for (int step = 0; step < steps; step++) {
		char handle[16], *before = NULL, *after;
		unsigned op = rnd(&s) % 10;
		const char *h = hosts[rnd(&s) % 3];
		unsigned si = rnd(&s) % 3;
		struct endpoint *e;
		struct mtxn tx;
		int r;

		snprintf(handle, sizeof(handle), "e%u", rnd(&s) % 40);
		error_clear(&err);
		mtxn_init(&tx);
		before = dump(m);
		if (op < 5) {
			struct endpoint_spec sp = { .handle = handle, .tenant = segs[si][0],
						    .segment = segs[si][1], .host = rnd(&s) % 8 ? h : NULL };

			r = model_endpoint_create(m, &sp, &tx, &e, &err);
			if (r == -ENOSPC && !really_full(m, h, segs[si][0], segs[si][1]))
				fail_msg("seed %llu step %d: exhausted but there is room: %s",
					 (unsigned long long)seed, step, err.msg);
		} else if (op < 8) {
			r = model_endpoint_delete(m, handle, &tx, &err);
		} else if (op < 9) {
			r = model_endpoint_bind(m, handle, rnd(&s) % 5 ? h : NULL, &tx, &e, &err);
		} else {
			fake_now += rnd(&s) % 4;
			model_sweep(m, &tx);
			r = 0;
		}
		if (tx.failed)
			fail_msg("seed %llu step %d: mtxn out of memory", (unsigned long long)seed, step);
		if (model_check(m, &err) < 0)
			fail_msg("seed %llu step %d op %u: %s", (unsigned long long)seed, step, op, err.msg);
		after = dump(m);
		if (r < 0) {
			failures++;
			if (strcmp(before, after))
				fail_msg("seed %llu step %d: failed op %u (%s) changed the model",
					 (unsigned long long)seed, step, op, err.msg);
			if (tx.n)
				fail_msg("seed %llu step %d: failed op left %zu store ops", (unsigned long long)seed, step, tx.n);
		} else {
			oks++;
		}
		if (r == 1 && strcmp(before, after))
			fail_msg("seed %llu step %d: an idempotent repeat changed the model",
				 (unsigned long long)seed, step);
		free(before);
		free(after);
		mtxn_release(&tx);
	}
	assert_true(oks > 0);
	assert_true(failures > 0);
	model_free(m);
}

static void test_random_invariants(void **state)
{
	const char *one = getenv("LARCH_SEED");
	(void)state;

	if (one) {
		run_seed(strtoull(one, NULL, 10), 3000);
		return;
	}
	for (uint64_t seed = 1; seed <= 40; seed++)
		run_seed(seed, 600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefixes_nest),
		cmocka_unit_test(test_alloc_dual_stack),
		cmocka_unit_test(test_missing_refs),
		cmocka_unit_test(test_deferred_bind_rebind),
		cmocka_unit_test(test_next_fit_and_cooldown),
		cmocka_unit_test(test_reserved_and_exhaustion),
		cmocka_unit_test(test_group_exhaustion_and_overlap),
		cmocka_unit_test(test_delete_in_use),
		cmocka_unit_test(test_random_invariants),
	};

	return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
