/* SPDX-License-Identifier: MIT */
/* YAML → JSON: table-driven vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "error.h"
#include "yamljson.h"

/* Each input and the compact JSON of its documents array. */
static const struct {
	const char *yaml, *json;
} good[] = {
	{ "a: 1", "[{\"a\": 1}]" },
	{ "a: -7\nb: 0x1f\nc: 0o17\nd: 1.5\ne: 1e3", "[{\"a\": -7, \"b\": 31, \"c\": 15, \"d\": 1.5, \"e\": 1000.0}]" },
	{ "a: true\nb: False\nc: ~\nd: null\ne:", "[{\"a\": true, \"b\": false, \"c\": null, \"d\": null, \"e\": null}]" },
	{ "a: '1'\nb: \"true\"\nc: yes\nd: 10.64.0.0/16\ne: fd10::/48", "[{\"a\": \"1\", \"b\": \"true\", \"c\": \"yes\", \"d\": \"10.64.0.0/16\", \"e\": \"fd10::/48\"}]" },
	{ "- 1\n- [a, b]\n- {x: y}", "[[1, [\"a\", \"b\"], {\"x\": \"y\"}]]" },
	{ "a: 1\n---\nb: 2\n", "[{\"a\": 1}, {\"b\": 2}]" },
	{ "base: &b {x: 1}\nuse: *b", "[{\"base\": {\"x\": 1}, \"use\": {\"x\": 1}}]" },
	{ "{\"json\": [1, 2.5, \"s\", null, true]}", "[{\"json\": [1, 2.5, \"s\", null, true]}]" },
	{ "", "[]" },
	{ "a: 99999999999999999999", "[{\"a\": \"99999999999999999999\"}]" },
	{ "a: .inf", "[{\"a\": \".inf\"}]" },
	{ "a: +12", "[{\"a\": 12}]" },
	{ "a: 1-2", "[{\"a\": \"1-2\"}]" },
};

static void test_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct error err = { 0 };
		json_t *docs = yamljson_load_string(good[i].yaml, strlen(good[i].yaml), "t", &err);
		json_t *want = json_loads(good[i].json, 0, NULL);

		if (!docs)
			fail_msg("%s: %s", good[i].yaml, err.msg);
		assert_non_null(want);
		if (!json_equal(docs, want)) {
			char *got = json_dumps(docs, JSON_COMPACT);

			fail_msg("%s: got %s, want %s", good[i].yaml, got, good[i].json);
		}
		json_decref(docs);
		json_decref(want);
	}
}

/* Each bad input and a piece its error message must contain. */
static const struct {
	const char *yaml, *msg;
} bad[] = {
	{ "a: 1\na: 2", "t:2:1: a: duplicate key" },
	{ "? [x]\n: 1", "mapping keys must be scalars" },
	{ "a: [1, 2", "t:" },
	{ "a: *nope", "undefined alias" },
	{ "a: b: c", "t:1:" },
};

static void test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct error err = { 0 };
		json_t *docs = yamljson_load_string(bad[i].yaml, strlen(bad[i].yaml), "t", &err);

		if (docs)
			fail_msg("%s: accepted", bad[i].yaml);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("%s: message '%s' lacks '%s'", bad[i].yaml, err.msg, bad[i].msg);
	}
}

/* Nine levels of ten aliases each: 10^9 nodes if expanded. */
static void test_alias_bomb(void **state)
{
	char buf[4096];
	size_t off = (size_t)snprintf(buf, sizeof(buf), "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	struct error err = { 0 };
	json_t *docs;

	(void)state;
	for (int i = 1; i < 10; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					"a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
					i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
					i - 1, i - 1);
	docs = yamljson_load_string(buf, off, "bomb", &err);
	assert_null(docs);
	assert_non_null(strstr(err.msg, "refusing"));
}

static void test_file(void **state)
{
	char path[] = "/tmp/larch-yj-XXXXXX";
	int fd = mkstemp(path);
	struct error err = { 0 };
	json_t *docs;
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("listen: 127.0.0.1:7420\ndebug: true\n", f);
	fclose(f);
	docs = yamljson_load_file(path, &err);
	assert_non_null(docs);
	assert_string_equal(json_string_value(json_object_get(json_array_get(docs, 0), "listen")),
			    "127.0.0.1:7420");
	json_decref(docs);
	unlink(path);
	assert_null(yamljson_load_file(path, &err));
	assert_non_null(strstr(err.msg, "No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_alias_bomb),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
