/* SPDX-License-Identifier: MIT */
/* Prefix and address math: table-driven vectors and a seeded round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "prefix.h"

static const struct {
	const char *in, *canon; /* canon NULL: must be rejected */
	unsigned flags;
	const char *msg;        /* a piece of the error message */
} parse_vec[] = {
	{ "10.64.0.0/12", "10.64.0.0/12", PREFIX_F_STRICT, NULL },
	{ "0.0.0.0/0", "0.0.0.0/0", PREFIX_F_STRICT, NULL },
	{ "192.0.2.7/32", "192.0.2.7/32", PREFIX_F_STRICT, NULL },
	{ "fd10::/48", "fd10::/48", PREFIX_F_STRICT, NULL },
	{ "FD10:0:0:0::/48", "fd10::/48", PREFIX_F_STRICT, NULL },
	{ "::/0", "::/0", PREFIX_F_STRICT, NULL },
	{ "2001:db8::1/128", "2001:db8::1/128", PREFIX_F_STRICT, NULL },
	{ "2001:db8:0:0:1:0:0:1/128", "2001:db8::1:0:0:1/128", PREFIX_F_STRICT, NULL },
	{ "10.64.0.1/12", "10.64.0.0/12", 0, NULL },
	{ "10.64.0.1/12", NULL, PREFIX_F_STRICT, "10.64.0.1/12" },
	{ "10.1.0.0/33", NULL, PREFIX_F_STRICT, "prefix length must be 0-32" },
	{ "fd10::/129", NULL, PREFIX_F_STRICT, "0-128" },
	{ "10.1.0.0/", NULL, PREFIX_F_STRICT, "10.1.0.0/" },
	{ "10.1.0.0/-1", NULL, PREFIX_F_STRICT, "10.1.0.0/-1" },
	{ "10.1.0/16", NULL, PREFIX_F_STRICT, "10.1.0/16" },
	{ "256.1.0.0/16", NULL, PREFIX_F_STRICT, "256.1.0.0/16" },
	{ "fe80::1%eth0/64", NULL, PREFIX_F_STRICT, "fe80::1%eth0/64" },
	{ "banana", NULL, PREFIX_F_STRICT, "banana" },
	{ "", NULL, PREFIX_F_STRICT, NULL },
	{ "10.1.0.0/16 ", NULL, PREFIX_F_STRICT, NULL },
};

static void test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_vec) / sizeof(parse_vec[0]); i++) {
		struct error err = { 0 };
		struct prefix p;
		char buf[PREFIX_STRLEN];
		int r = prefix_parse(parse_vec[i].in, &p, parse_vec[i].flags, "cidr", &err);

		if (parse_vec[i].canon) {
			if (r < 0)
				fail_msg("%s: rejected: %s", parse_vec[i].in, err.msg);
			assert_string_equal(prefix_fmt(&p, buf), parse_vec[i].canon);
		} else {
			if (r >= 0)
				fail_msg("%s: accepted", parse_vec[i].in);
			assert_string_equal(err.field, "cidr");
			assert_int_equal(err.status, 400);
			if (parse_vec[i].msg && !strstr(err.msg, parse_vec[i].msg))
				fail_msg("%s: message '%s' lacks '%s'", parse_vec[i].in, err.msg,
					 parse_vec[i].msg);
		}
	}
}

static struct prefix P(const char *s)
{
	struct prefix p;

	assert_int_equal(prefix_parse(s, &p, 0, "t", NULL), 0);
	return p;
}

static void test_relations(void **state)
{
	struct prefix a = P("10.64.0.0/12"), b = P("10.64.16.0/20"), c = P("10.80.0.0/12"),
		      v6 = P("fd10::/48"), all4 = P("0.0.0.0/0");
	(void)state;
	assert_true(prefix_contains(&a, &b));
	assert_false(prefix_contains(&b, &a));
	assert_true(prefix_contains(&a, &a));
	assert_true(prefix_overlaps(&a, &b) && prefix_overlaps(&b, &a));
	assert_false(prefix_overlaps(&a, &c));
	assert_false(prefix_overlaps(&a, &v6)); /* families never overlap */
	assert_false(prefix_contains(&v6, &a));
	assert_true(prefix_contains(&all4, &c));
	assert_true(prefix_cmp(&a, &c) < 0 && prefix_cmp(&c, &a) > 0 && prefix_cmp(&a, &a) == 0);
	assert_true(prefix_contains_addr(&b, 4, b.addr + 5));
	assert_false(prefix_contains_addr(&b, 6, b.addr + 5));
}

static void test_sizes(void **state)
{
	struct prefix p24 = P("10.0.0.0/24"), p0 = P("::/0"), p32 = P("10.0.0.1/32"),
		      p64 = P("fd00::/64");
	(void)state;
	assert_true(prefix_size(&p24) == 256);
	assert_true(prefix_size(&p32) == 1);
	assert_true(prefix_size(&p64) == (u128)1 << 64);
	assert_true(prefix_size(&p0) == ~(u128)0); /* 2^128 saturates */
	assert_true(prefix_last(&p24) == p24.addr + 255);
	assert_true(prefix_hostmask(&p0) == ~(u128)0);
	assert_int_equal(prefix_len_for_count(4, 16384, 32), 18);
	assert_int_equal(prefix_len_for_count(4, 16385, 32), 17);
	assert_int_equal(prefix_len_for_count(4, 1, 32), 32);
	assert_int_equal(prefix_len_for_count(4, 1, 28), 28); /* at least a block */
	assert_int_equal(prefix_len_for_count(4, (u128)1 << 33, 32), -1);
	assert_int_equal(prefix_len_for_count(6, 16384, 124), 114);
}

static void test_addr(void **state)
{
	struct error err = { 0 };
	struct prefix a;
	char buf[PREFIX_STRLEN];
	(void)state;
	assert_int_equal(addr_parse("192.0.2.11", &a, "address", &err), 0);
	assert_int_equal(a.len, 32);
	assert_string_equal(addr_fmt(4, a.addr, buf), "192.0.2.11");
	assert_int_equal(addr_parse("fd10::1", &a, "address", &err), 0);
	assert_int_equal(a.family, 6);
	assert_string_equal(addr_fmt(6, a.addr, buf), "fd10::1");
	assert_true(addr_parse("192.0.2.0/24", &a, "address", &err) < 0);
	assert_string_equal(err.field, "address");
	assert_true(addr_parse("1.2.3", &a, "address", &err) < 0);
}

/* Random prefixes: format, parse back, same prefix; RFC 5952 never prints
 * uppercase or leading zeros. */
static void test_round_trip(void **state)
{
	const char *env = getenv("LARCH_SEED");
	unsigned seed = env ? (unsigned)atoi(env) : 12345;
	(void)state;
	srandom(seed);
	for (int i = 0; i < 100000; i++) {
		struct prefix p = { .family = (random() & 1) ? 4 : 6 }, q;
		char buf[PREFIX_STRLEN];
		u128 v = 0;

		for (int k = 0; k < 4; k++)
			v = (v << 32) | (u128)(uint32_t)random();
		/* runs of zero groups, to exercise :: compression */
		if (random() & 1)
			v &= ~((u128)0xffffffff << (32 * (random() % 4)));
		p.len = (uint8_t)(random() % (prefix_bits(p.family) + 1));
		if (p.family == 4)
			v &= 0xffffffff;
		p.addr = v & ~prefix_hostmask(&p);
		prefix_fmt(&p, buf);
		if (prefix_parse(buf, &q, PREFIX_F_STRICT, "t", NULL) < 0 || prefix_cmp(&p, &q) ||
		    p.len != q.len)
			fail_msg("seed %u: %s did not round-trip", seed, buf);
		for (const char *c = buf; *c; c++)
			assert_false(*c >= 'A' && *c <= 'F');
		assert_null(strstr(buf, ":0000"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_relations),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
