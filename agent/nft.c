/* SPDX-License-Identifier: MIT */
/*
 * DOC: nftables over netlink: the rendered ruleset read back, and the batch
 *
 * The rendered text (lib/policy_compile.c) is one table of sets, maps and
 * chains. nft_rs_parse() reads it into objects; nft_rs_apply() turns them
 * into nf_tables messages (libnftnl) in one batch, sent with one sendmsg():
 * the kernel applies the batch as one transaction or refuses all of it.
 *
 * A rule is a sequence of matches, then an optional counter, a verdict and
 * an optional comment. The expressions are those nft itself generates for
 * the same text (compare `nft --debug=netlink`), so `nft list` prints the
 * same ruleset either way (tests/policy/test_netlink.sh checks that).
 *
 * The difference between two rulesets, in one batch, in this order: element
 * deletions and the flush of every chain that changes or goes; the deletion
 * of chains, then sets, that go; then new sets, elements, new chains, the
 * rules of new and changed chains, and last the verdict map elements (they
 * name chains). Sets of intervals that change are flushed and refilled; a set
 * whose type, flags or comment changes, or a chain whose hook or comment
 * changes, cannot change in place: the whole table is replaced then.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "hmap.h"
#include "nft.h"

/* ---- the text, read back ---- */

enum obj_kind { O_SET, O_MAP, O_CHAIN };

struct obj {
	enum obj_kind kind;
	char *name;
	char *type;      /* set, map: its type; chain: a base chain's line, or NULL */
	char *comment;
	bool interval;
	char **item;     /* elements, or rules */
	size_t n, cap;
};

struct nft_rs {
	char *table;
	struct obj *o;
	size_t n, cap;
	struct hmap names; /* (kind class, name) -> obj */
};

static bool is_chain(const struct obj *o)
{
	return o->kind == O_CHAIN;
}

static uint64_t name_hash(bool chain, const char *name)
{
	return hash_mix(hash_str(name), chain);
}

struct name_key {
	bool chain;
	const char *name;
};

static bool eq_name(const void *val, const void *key)
{
	const struct obj *o = val;
	const struct name_key *k = key;

	return is_chain(o) == k->chain && !strcmp(o->name, k->name);
}

static const struct obj *find(const struct nft_rs *rs, bool chain, const char *name)
{
	struct name_key k = { chain, name };

	return hmap_find(&rs->names, name_hash(chain, name), eq_name, &k);
}

void nft_rs_free(struct nft_rs *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++) {
		struct obj *o = &rs->o[i];

		for (size_t k = 0; k < o->n; k++)
			free(o->item[k]);
		free(o->item);
		free(o->name);
		free(o->type);
		free(o->comment);
	}
	free(rs->o);
	free(rs->table);
	hmap_release(&rs->names);
	free(rs);
}

static int push(struct obj *o, const char *s, size_t len)
{
	char *c;

	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 8;
		char **v = realloc(o->item, cap * sizeof(*v));

		if (!v)
			return -1;
		o->item = v;
		o->cap = cap;
	}
	if (!(c = strndup(s, len)))
		return -1;
	o->item[o->n++] = c;
	return 0;
}

static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* One line of "elements = { a, b,\n c }": its elements; *more while the
 * closing brace is still to come. */
static int elem_line(struct obj *o, char *s, bool *more)
{
	size_t n;

	s = trim(s);
	n = strlen(s);
	*more = !(n && s[n - 1] == '}');
	if (!*more)
		s[n - 1] = '\0';
	while (s) {
		char *c = strchr(s, ','), *e;

		if (c)
			*c++ = '\0';
		e = trim(s);
		if (*e && push(o, e, strlen(e)) < 0)
			return -1;
		s = c;
	}
	return 0;
}

static struct obj *new_obj(struct nft_rs *rs, enum obj_kind kind, const char *name)
{
	struct obj *o;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 64;
		struct obj *v = realloc(rs->o, cap * sizeof(*v));

		if (!v)
			return NULL;
		rs->o = v;
		rs->cap = cap;
	}
	o = &rs->o[rs->n];
	*o = (struct obj){ .kind = kind, .name = strdup(name) };
	if (!o->name)
		return NULL;
	rs->n++;
	return o;
}

struct nft_rs *nft_rs_parse(const char *text, char *err, size_t errlen)
{
	struct nft_rs *rs = calloc(1, sizeof(*rs));
	char *copy = strdup(text), *line, *next;
	struct obj *cur = NULL;
	bool in_table = false, in_elems = false, done = false;
	const char *why = "cannot read";
	char *deleted = NULL; /* the table a "delete table" line names */
	int ln = 0;

	if (!rs || !copy) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (line = copy; line && *line; line = next) {
		char kw[8], name[256], *t;
		int pos = 0;

		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		ln++;
		if (in_elems) {
			if (elem_line(cur, line, &in_elems) < 0)
				goto oom;
			continue;
		}
		if (!*line || *line == '#')
			continue;
		if (!in_table) {
			if (sscanf(line, "table inet %255s {%n", name, &pos) == 1 && pos &&
			    !line[pos]) {
				if (next && next[0] == '}' && (next[1] == '\n' || !next[1])) {
					/* "table inet T {" "}": creates it, if missing */
					next = strchr(next, '\n');
					next = next ? next + 1 : NULL;
					ln++;
					continue;
				}
				if (done) {
					why = "a second table";
					goto bad;
				}
				if (!(rs->table = strdup(name)))
					goto oom;
				in_table = true;
				continue;
			}
			if (sscanf(line, "delete table inet %255s%n", name, &pos) == 1 && !line[pos] &&
			    !deleted) {
				if (!(deleted = strdup(name)))
					goto oom;
				continue;
			}
			why = "not a table";
			goto bad;
		}
		if (!cur && !strcmp(line, "}")) {
			in_table = false;
			done = true;
			continue;
		}
		if (!cur) {
			enum obj_kind kind;

			if (sscanf(line, "\t%7s %255s {%n", kw, name, &pos) != 2 || !pos || line[pos]) {
				why = "not a set, map or chain";
				goto bad;
			}
			if (!strcmp(kw, "set"))
				kind = O_SET;
			else if (!strcmp(kw, "map"))
				kind = O_MAP;
			else if (!strcmp(kw, "chain"))
				kind = O_CHAIN;
			else {
				why = "not a set, map or chain";
				goto bad;
			}
			if (!(cur = new_obj(rs, kind, name)))
				goto oom;
			continue;
		}
		if (!strcmp(line, "\t}")) {
			cur = NULL;
			continue;
		}
		t = trim(line);
		if (!strncmp(t, "type ", 5) && !cur->type && !cur->n) {
			if (!(cur->type = strdup(t + 5)))
				goto oom;
		} else if (!strcmp(t, "flags interval") && cur->kind == O_SET && !cur->n) {
			cur->interval = true;
		} else if (!strncmp(t, "comment \"", 9) && strlen(t) > 9 && t[strlen(t) - 1] == '"' &&
			   !strchr(t + 9, '"')[1] && !cur->comment && !cur->n) {
			if (!(cur->comment = strndup(t + 9, strlen(t) - 10)))
				goto oom;
		} else if (!strncmp(t, "elements = { ", 13) && !is_chain(cur) && !cur->n) {
			if (elem_line(cur, t + 13, &in_elems) < 0)
				goto oom;
		} else if (is_chain(cur)) {
			if (push(cur, t, strlen(t)) < 0)
				goto oom;
		} else {
			why = "not part of a set or map";
			goto bad;
		}
	}
	if (in_table || cur || in_elems || !rs->table) {
		why = "the table does not end";
		goto bad;
	}
	if (deleted && strcmp(deleted, rs->table)) {
		snprintf(err, errlen, "it deletes table %s but writes table %s", deleted, rs->table);
		goto fail;
	}
	for (size_t i = 0; i < rs->n; i++) {
		struct obj *o = &rs->o[i];

		if (find(rs, is_chain(o), o->name)) {
			snprintf(err, errlen, "%s %s declared twice", is_chain(o) ? "chain" : "set",
				 o->name);
			goto fail;
		}
		if (hmap_insert(&rs->names, name_hash(is_chain(o), o->name), o) < 0)
			goto oom;
	}
	free(copy);
	free(deleted);
	return rs;
bad:
	snprintf(err, errlen, "line %d: %s", ln, why);
	goto fail;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	free(copy);
	free(deleted);
	nft_rs_free(rs);
	return NULL;
}

/* ---- the batch ---- */

/* What a message was about, for the error that names it. */
struct what {
	const struct obj *o;
	const char *item;  /* the rule or first element, or NULL */
	const char *op;
};

struct batch {
	struct nftnl_batch *b;
	const char *table;
	uint32_t seq0, seq, set_id;
	struct nlmsghdr *last;
	struct what *w;
	size_t nw, capw;
	struct nft_stats st;
	char *err;
	size_t errlen;
	int fail;            /* an errno: out of memory, or text it cannot read */
};

static void fail(struct batch *b, int e, const struct obj *o, const char *item, const char *why)
{
	if (b->fail)
		return;
	b->fail = e;
	snprintf(b->err, b->errlen, "%s%s%s%s%s: %s", o ? (is_chain(o) ? "chain " : "set ") : "",
		 o ? o->name : "", item ? " \"" : "", item ? item : "", item ? "\"" : "", why);
}

static struct nlmsghdr *msg(struct batch *b, uint16_t type, uint16_t flags, const struct obj *o,
			    const char *item, const char *op)
{
	if (b->nw == b->capw) {
		size_t cap = b->capw ? 2 * b->capw : 1024;
		struct what *v = realloc(b->w, cap * sizeof(*v));

		if (!v) {
			fail(b, ENOMEM, NULL, NULL, "out of memory");
			return NULL;
		}
		b->w = v;
		b->capw = cap;
	}
	b->w[b->nw++] = (struct what){ o, item, op };
	b->last = nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->b), type, NFPROTO_INET, flags, b->seq++);
	return b->last;
}

static void sent(struct batch *b)
{
	uint32_t len = b->last->nlmsg_len;

	/* A message that overflows the page is copied to the start of a new
	 * one (and the first copy is not sent): either way it now ends where
	 * the buffer goes on. */
	if (nftnl_batch_update(b->b) < 0)
		fail(b, ENOMEM, NULL, NULL, "out of memory");
	b->last = (struct nlmsghdr *)((char *)nftnl_batch_buffer(b->b) - len);
	b->st.msgs++;
}

static void table_msg(struct batch *b, uint16_t type)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return fail(b, ENOMEM, NULL, NULL, "out of memory");
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, b->table);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	if ((nlh = msg(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0, NULL, NULL,
		       type == NFT_MSG_NEWTABLE ? "creating the table" : "deleting the table"))) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		sent(b);
	}
	nftnl_table_free(t);
}

/* ---- sets and their elements ---- */

struct stype {
	const char *name;
	uint32_t key_type, key_len;
	bool map, concat;
	uint32_t byteorder; /* nft's, in the set's user data: 1 host, 2 big endian */
	int af;             /* the address part: AF_INET, AF_INET6, 0: none */
};

/* nft's datatype numbers; a concatenation's is (a << 6) | b */
enum { T_VERDICT = 1, T_IPADDR = 7, T_IP6ADDR = 8, T_INET_SERVICE = 13, T_IFNAME = 41 };

static const struct stype stypes[] = {
	{ "ipv4_addr", T_IPADDR, 4, false, false, 2, AF_INET },
	{ "ipv6_addr", T_IP6ADDR, 16, false, false, 2, AF_INET6 },
	{ "ifname . ipv4_addr", T_IFNAME << 6 | T_IPADDR, 20, false, true, 0, AF_INET },
	{ "ifname . ipv6_addr", T_IFNAME << 6 | T_IP6ADDR, 32, false, true, 0, AF_INET6 },
	{ "ifname : verdict", T_IFNAME, 16, true, false, 1, 0 },
};

static const struct stype *stype_of(const struct obj *o)
{
	for (size_t i = 0; o->type && i < sizeof(stypes) / sizeof(stypes[0]); i++)
		if (!strcmp(o->type, stypes[i].name) && stypes[i].map == (o->kind == O_MAP) &&
		    !(o->interval && (stypes[i].map || stypes[i].concat)))
			return &stypes[i];
	return NULL;
}

/* One element as the kernel takes it. */
struct elem {
	uint8_t key[32];
	uint32_t flags;     /* NFT_SET_ELEM_INTERVAL_END */
	bool open;          /* an interval to the end of the address space */
	bool is_verdict;    /* a map's element: verdict (and chain) */
	uint32_t verdict;
	const char *chain;  /* jump, goto: into the item's text */
};

/* "name" (quoted): the interface name padded to IFNAMSIZ; false if not one */
static bool ifname_key(const char *s, uint8_t key[16], const char **end)
{
	const char *q;

	if (*s != '"' || !(q = strchr(s + 1, '"')) || q - s - 1 > 15 || q == s + 1)
		return false;
	memset(key, 0, 16);
	memcpy(key, s + 1, (size_t)(q - s - 1));
	*end = q + 1;
	return true;
}

/* "addr" or "addr/len" of family af into a (len: -1 when none given) */
static bool addr_parse(const char *s, int af, uint8_t a[16], int *len)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	size_t n = strlen(s);
	long l = -1;

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n + 1);
	if ((slash = strchr(buf, '/'))) {
		*slash = '\0';
		l = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || l < 0 || l > (af == AF_INET ? 32 : 128))
			return false;
	}
	memset(a, 0, 16);
	if (inet_pton(af, buf, a) != 1)
		return false;
	*len = (int)l;
	return true;
}

static int verdict_parse(const char *s, uint32_t *v, const char **chain)
{
	*chain = NULL;
	if (!strcmp(s, "accept"))
		*v = NF_ACCEPT;
	else if (!strcmp(s, "drop"))
		*v = NF_DROP;
	else if (!strncmp(s, "goto ", 5) && s[5])
		*v = (uint32_t)NFT_GOTO, *chain = s + 5;
	else if (!strncmp(s, "jump ", 5) && s[5])
		*v = (uint32_t)NFT_JUMP, *chain = s + 5;
	else
		return -1;
	return 0;
}

/* A plain element (not an interval set's): false if it cannot be read. */
static bool elem_parse(const struct stype *ty, const char *s, struct elem *e)
{
	const char *p = s;
	int len;

	memset(e, 0, sizeof(*e));
	if (ty->map) {
		while (*p == ' ')
			p++;
		if (!ifname_key(p, e->key, &p) || strncmp(p, " : ", 3))
			return false;
		e->is_verdict = true;
		return verdict_parse(p + 3, &e->verdict, &e->chain) == 0;
	}
	if (ty->concat) {
		if (!ifname_key(p, e->key, &p) || strncmp(p, " . ", 3))
			return false;
		return addr_parse(p + 3, ty->af, e->key + 16, &len) && len < 0;
	}
	return addr_parse(p, ty->af, e->key, &len) && len < 0;
}

struct range {
	uint8_t lo[16], hi[16];
};

static int cmp_range(const void *a, const void *b)
{
	return memcmp(((const struct range *)a)->lo, ((const struct range *)b)->lo, 16);
}

/* hi + 1 into out; false when hi is the last address */
static bool next_addr(const uint8_t *hi, size_t n, uint8_t *out)
{
	memcpy(out, hi, n);
	for (size_t i = n; i-- > 0;)
		if (++out[i])
			return true;
	return false;
}

/*
 * Ranges (of keys alen long) as nft sends an interval set's elements: in
 * order, each a start and (unless it runs to the last key) an end one past
 * it, and a first end element at 0 when the first range does not start
 * there. merge: ranges that touch or overlap become one (nft does that for
 * anonymous sets). The elements into e (room for 2n + 1); their count.
 */
static size_t range_elems(struct range *r, size_t n, size_t alen, bool merge, struct elem *e)
{
	static const uint8_t zero[16];
	size_t k = 0, m = 0;

	qsort(r, n, sizeof(*r), cmp_range);
	for (size_t i = 0; i < n; i++) {
		uint8_t after[16];

		if (merge && m && (!next_addr(r[m - 1].hi, alen, after) ||
				   memcmp(r[i].lo, after, alen) <= 0)) {
			if (memcmp(r[i].hi, r[m - 1].hi, alen) > 0)
				memcpy(r[m - 1].hi, r[i].hi, alen);
			continue;
		}
		r[m++] = r[i];
	}
	for (size_t i = 0; i < m; i++) {
		if (i == 0 && memcmp(r[0].lo, zero, alen))
			e[k++].flags = NFT_SET_ELEM_INTERVAL_END; /* key 0 */
		memcpy(e[k++].key, r[i].lo, alen);
		if (next_addr(r[i].hi, alen, e[k].key))
			e[k++].flags = NFT_SET_ELEM_INTERVAL_END;
		else
			e[k - 1].open = true;
	}
	return k;
}

/* An interval set's elements (see range_elems); NULL (with *bad the
 * element) when one cannot be read. */
static struct elem *intervals(const struct obj *o, const struct stype *ty, bool merge, size_t *n,
			      const char **bad)
{
	size_t alen = ty->key_len, k = 0;
	struct range *r = calloc(o->n + 1, sizeof(*r));
	struct elem *e = calloc(2 * o->n + 2, sizeof(*e));

	*bad = NULL;
	if (!r || !e)
		goto fail;
	for (size_t i = 0; i < o->n; i++) {
		uint8_t a[16];
		int len;

		if (!addr_parse(o->item[i], ty->af, a, &len)) {
			*bad = o->item[i];
			goto fail;
		}
		if (len < 0)
			len = (int)alen * 8;
		for (size_t b = 0; b < alen; b++) {
			int keep = len - (int)b * 8;
			uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));

			r[i].lo[b] = a[b] & mask;
			r[i].hi[b] = (uint8_t)(a[b] | ~mask);
		}
	}
	k = range_elems(r, o->n, alen, merge, e);
	free(r);
	*n = k;
	return e;
fail:
	free(r);
	free(e);
	return NULL;
}

/* elements of set (name, id) in messages of at most CHUNK: add or delete */
#define CHUNK 256

static void elems_msgs(struct batch *b, const struct obj *o, const char *name, uint32_t id,
		       uint32_t key_len, const struct elem *e, size_t n, bool add)
{
	for (size_t i = 0; i < n && !b->fail; i += CHUNK) {
		struct nftnl_set *s = nftnl_set_alloc();
		struct nlmsghdr *nlh;

		if (!s)
			return fail(b, ENOMEM, NULL, NULL, "out of memory");
		nftnl_set_set_str(s, NFTNL_SET_TABLE, b->table);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
		if (id)
			nftnl_set_set_u32(s, NFTNL_SET_ID, id);
		for (size_t k = i; k < n && k < i + CHUNK; k++) {
			struct nftnl_set_elem *el = nftnl_set_elem_alloc();

			if (!el) {
				nftnl_set_free(s);
				return fail(b, ENOMEM, NULL, NULL, "out of memory");
			}
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, e[k].key, key_len);
			if (e[k].flags)
				nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, e[k].flags);
			if (add && e[k].chain)
				nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN, e[k].chain);
			if (add && e[k].is_verdict)
				nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, e[k].verdict);
			if (add && e[k].open) {
				struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(16);

				if (u && nftnl_udata_put_u32(u, NFTNL_UDATA_SET_ELEM_FLAGS,
							     NFTNL_SET_ELEM_F_INTERVAL_OPEN))
					nftnl_set_elem_set(el, NFTNL_SET_ELEM_USERDATA,
							   nftnl_udata_buf_data(u),
							   nftnl_udata_buf_len(u));
				nftnl_udata_buf_free(u);
			}
			nftnl_set_elem_add(s, el);
		}
		if ((nlh = msg(b, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
			       add ? NLM_F_CREATE | NLM_F_EXCL : 0, o, NULL,
			       add ? "adding elements" : "deleting elements"))) {
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			sent(b);
		}
		nftnl_set_free(s);
	}
	if (add)
		b->st.elems += n;
	else
		b->st.deleted += n;
}

/* The elements of o that are in items (all of them when items is NULL),
 * encoded; count in *n. */
static struct elem *encode(struct batch *b, const struct obj *o, const struct stype *ty,
			   char **items, size_t nitems, size_t *n)
{
	struct elem *e;
	const char *bad = NULL;

	if (o->interval) {
		struct obj sub = *o;

		sub.item = items;
		sub.n = nitems;
		e = intervals(&sub, ty, false, n, &bad);
	} else {
		e = calloc(nitems + 1, sizeof(*e));
		for (size_t i = 0; e && i < nitems; i++)
			if (!elem_parse(ty, items[i], &e[i])) {
				bad = items[i];
				free(e);
				e = NULL;
			}
		*n = nitems;
	}
	if (!e)
		fail(b, bad ? EINVAL : ENOMEM, o, bad, bad ? "cannot read this element" : "out of memory");
	return e;
}

static void set_add(struct batch *b, const struct obj *o, const struct stype *ty)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
	struct nlmsghdr *nlh;
	bool ok;

	if (!s || !u) {
		nftnl_set_free(s);
		nftnl_udata_buf_free(u);
		return fail(b, ENOMEM, NULL, NULL, "out of memory");
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, b->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, o->name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, ty->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, ty->key_len);
	nftnl_set_set_u32(s, NFTNL_SET_ID, ++b->set_id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS,
			  (o->interval ? NFT_SET_INTERVAL : 0) | (ty->map ? NFT_SET_MAP : 0));
	if (ty->map)
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	/* the user data nft writes: key (and data) byte order, a
	 * concatenation's "typeof", the comment */
	ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, ty->byteorder);
	if (ty->map)
		ok = ok && nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER, 0) &&
		     nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0);
	if (ty->concat)
		ok = ok && nftnl_udata_put(u, NFTNL_UDATA_SET_KEY_TYPEOF, 8,
					   "\x00\x04\x0d\x00\x00\x00\x01\x00");
	if (o->comment)
		ok = ok && nftnl_udata_put_strz(u, NFTNL_UDATA_SET_COMMENT, o->comment);
	if (!ok) {
		fail(b, EINVAL, o, NULL, "the comment is too long");
	} else {
		nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
				   nftnl_udata_buf_len(u));
		if ((nlh = msg(b, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, o, NULL,
			       "creating the set"))) {
			nftnl_set_nlmsg_build_payload(nlh, s);
			sent(b);
			b->st.sets++;
		}
	}
	nftnl_set_free(s);
	nftnl_udata_buf_free(u);
}

static void del_obj(struct batch *b, const struct obj *o, uint16_t type, const char *op)
{
	struct nlmsghdr *nlh = msg(b, type, 0, o, NULL, op);

	if (!nlh)
		return;
	if (type == NFT_MSG_DELSET || type == NFT_MSG_DELSETELEM) {
		struct nftnl_set *s = nftnl_set_alloc();

		if (!s)
			return fail(b, ENOMEM, NULL, NULL, "out of memory");
		nftnl_set_set_str(s, NFTNL_SET_TABLE, b->table);
		nftnl_set_set_str(s, NFTNL_SET_NAME, o->name);
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
		if (type == NFT_MSG_DELSET)
			nftnl_set_nlmsg_build_payload(nlh, s);
		else
			nftnl_set_elems_nlmsg_build_payload(nlh, s); /* no elements: all */
		nftnl_set_free(s);
	} else if (type == NFT_MSG_DELCHAIN) {
		struct nftnl_chain *c = nftnl_chain_alloc();

		if (!c)
			return fail(b, ENOMEM, NULL, NULL, "out of memory");
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, b->table);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, o->name);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nftnl_chain_free(c);
	} else { /* NFT_MSG_DELRULE: flush the chain */
		struct nftnl_rule *r = nftnl_rule_alloc();

		if (!r)
			return fail(b, ENOMEM, NULL, NULL, "out of memory");
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, b->table);
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, o->name);
		nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
	}
	sent(b);
}

/* ---- rules ---- */

struct rb {
	struct batch *b;
	const struct obj *o;
	const char *line;
	struct nftnl_rule *r;
	int nfproto;    /* the family already matched: NFPROTO_IPV4, _IPV6, 0 */
	int l4;         /* the transport protocol already matched, -1: none */
	bool bad;
};

static void add_expr(struct rb *rb, struct nftnl_expr *e)
{
	if (!e) {
		rb->bad = true;
		fail(rb->b, ENOMEM, NULL, NULL, "out of memory");
		return;
	}
	nftnl_rule_add_expr(rb->r, e);
}

static void x_meta(struct rb *rb, uint32_t key, uint32_t reg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, reg);
	}
	add_expr(rb, e);
}

static void x_cmp(struct rb *rb, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	add_expr(rb, e);
}

static void x_payload(struct rb *rb, uint32_t base, uint32_t off, uint32_t len, uint32_t reg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, reg);
	}
	add_expr(rb, e);
}

static void x_bitwise(struct rb *rb, const void *mask, uint32_t len)
{
	static const uint8_t zero[16];
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
	add_expr(rb, e);
}

/* dreg < 0: a match (inverted with inv); else the verdict register */
static void x_lookup(struct rb *rb, const char *set, uint32_t id, int dreg, bool inv)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		if (id)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, id);
		if (dreg >= 0)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, (uint32_t)dreg);
		if (inv)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	}
	add_expr(rb, e);
}

static void x_verdict(struct rb *rb, uint32_t v, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, v);
		if (chain)
			nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	}
	add_expr(rb, e);
}

static void need_family(struct rb *rb, int nfproto)
{
	uint8_t v = (uint8_t)nfproto;

	if (rb->nfproto == nfproto)
		return;
	if (rb->nfproto) {
		rb->bad = true;
		return;
	}
	x_meta(rb, NFT_META_NFPROTO, NFT_REG_1);
	x_cmp(rb, NFT_CMP_EQ, &v, 1);
	rb->nfproto = nfproto;
}

static void need_l4(struct rb *rb, int proto)
{
	uint8_t v = (uint8_t)proto;

	if (rb->l4 == proto)
		return;
	if (rb->l4 >= 0) {
		rb->bad = true;
		return;
	}
	x_meta(rb, NFT_META_L4PROTO, NFT_REG_1);
	x_cmp(rb, NFT_CMP_EQ, &v, 1);
	rb->l4 = proto;
}

static int l4_number(const char *s)
{
	static const struct {
		const char *name;
		int proto;
	} t[] = { { "icmp", 1 }, { "tcp", 6 }, { "udp", 17 }, { "ipv6-icmp", 58 }, { "sctp", 132 } };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(s, t[i].name))
			return t[i].proto;
	return -1;
}

/* The words of a rule: spaces split them, except inside quotes. */
static size_t words(char *s, char **w, size_t max)
{
	size_t n = 0;

	while (*s && n < max) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		w[n++] = s;
		if (*s == '"') {
			char *q = strchr(s + 1, '"');

			s = q ? q + 1 : s + strlen(s);
		}
		while (*s && *s != ' ')
			s++;
		if (*s)
			*s++ = '\0';
	}
	return *s ? max + 1 : n;
}

static bool port_range(const char *s, unsigned *lo, unsigned *hi);

/*
 * An anonymous set of the items w[*i] ... up to "}" (addresses of af, or
 * ports when af is 0), created before the rule that looks it up; its id.
 */
static uint32_t anon_set(struct rb *rb, char **w, size_t nw, size_t *i, int af)
{
	struct batch *b = rb->b;
	char **items = w + *i + 1; /* the words up to "}" */
	size_t n = 0, ne = 0;
	struct obj o = { .kind = O_SET, .name = "__set%d", .item = items };
	const struct stype ports = { "inet_service", T_INET_SERVICE, 2, false, false, 2, 0 };
	const struct stype *ty = af == AF_INET ? &stypes[0] : af == AF_INET6 ? &stypes[1] : &ports;
	struct elem *e = NULL;
	struct nftnl_set *s;
	struct nftnl_udata_buf *u;
	struct nlmsghdr *nlh;
	uint32_t id;

	for ((*i)++; *i < nw && strcmp(w[*i], "}"); (*i)++) {
		size_t len = strlen(w[*i]);

		if (len && w[*i][len - 1] == ',')
			w[*i][len - 1] = '\0';
		if (!*w[*i]) {
			rb->bad = true;
			return 0;
		}
		n++;
	}
	if (*i == nw || !n) {
		rb->bad = true;
		return 0;
	}
	o.n = n;
	o.interval = true; /* nft makes these interval sets, ranges or not */
	if (!af) {
		/* ports: "N" or "N-M" */
		if (!(e = calloc(2 * n + 2, sizeof(*e))))
			return fail(b, ENOMEM, NULL, NULL, "out of memory"), 0;
		struct range *r = calloc(n, sizeof(*r));

		if (!r) {
			free(e);
			return fail(b, ENOMEM, NULL, NULL, "out of memory"), 0;
		}
		for (size_t k = 0; k < n; k++) {
			unsigned lo, hi;

			if (!port_range(items[k], &lo, &hi)) {
				free(r);
				free(e);
				rb->bad = true;
				return 0;
			}
			r[k].lo[0] = (uint8_t)(lo >> 8), r[k].lo[1] = (uint8_t)lo;
			r[k].hi[0] = (uint8_t)(hi >> 8), r[k].hi[1] = (uint8_t)hi;
		}
		ne = range_elems(r, n, 2, true, e);
		free(r);
	} else {
		const char *bad;

		if (!(e = intervals(&o, ty, true, &ne, &bad))) {
			if (bad)
				rb->bad = true;
			else
				fail(b, ENOMEM, NULL, NULL, "out of memory");
			return 0;
		}
	}
	id = ++b->set_id;
	s = nftnl_set_alloc();
	u = nftnl_udata_buf_alloc(64);
	if (!s || !u) {
		nftnl_set_free(s);
		nftnl_udata_buf_free(u);
		free(e);
		return fail(b, ENOMEM, NULL, NULL, "out of memory"), 0;
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, b->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, "__set%d");
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, ty->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, ty->key_len);
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, (uint32_t)ne);
	if (nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 2) &&
	    nftnl_udata_put_u32(u, NFTNL_UDATA_SET_MERGE_ELEMENTS, 1))
		nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
				   nftnl_udata_buf_len(u));
	if ((nlh = msg(b, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, rb->o, rb->line,
		       "creating an anonymous set"))) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		sent(b);
	}
	nftnl_set_free(s);
	nftnl_udata_buf_free(u);
	elems_msgs(b, rb->o, "__set%d", id, ty->key_len, e, ne, true);
	b->st.elems -= ne; /* counted with the rule */
	free(e);
	return id;
}

/* ip/ip6 saddr/daddr [!=] (addr[/len] | @set | { ... }) at w[*i] */
static void addr_match(struct rb *rb, char **w, size_t nw, size_t *i)
{
	bool v6 = !strcmp(w[*i], "ip6"), src, inv = false;
	int af = v6 ? AF_INET6 : AF_INET;
	uint32_t alen = v6 ? 16 : 4, off;
	uint8_t a[16];
	int len;

	if (++*i >= nw || (strcmp(w[*i], "saddr") && strcmp(w[*i], "daddr")))
		goto bad;
	src = !strcmp(w[*i], "saddr");
	off = v6 ? (src ? 8 : 24) : (src ? 12 : 16);
	if (++*i >= nw)
		goto bad;
	if (!strcmp(w[*i], "!=")) {
		inv = true;
		if (++*i >= nw)
			goto bad;
	}
	need_family(rb, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	if (w[*i][0] == '@') {
		x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, alen, NFT_REG_1);
		x_lookup(rb, w[*i] + 1, 0, -1, inv);
		return;
	}
	if (!strcmp(w[*i], "{")) {
		uint32_t id = anon_set(rb, w, nw, i, af);

		if (!id)
			return;
		x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, alen, NFT_REG_1);
		x_lookup(rb, "__set%d", id, -1, inv);
		return;
	}
	if (!addr_parse(w[*i], af, a, &len))
		goto bad;
	if (len < 0)
		len = (int)alen * 8;
	if (len == 0) {
		if (inv)
			goto bad; /* "not any address": refuse rather than guess */
		return; /* any address of the family */
	}
	if (len % 8 == 0) {
		/* whole bytes: compare just those, as nft does */
		x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, (uint32_t)len / 8, NFT_REG_1);
		x_cmp(rb, inv ? NFT_CMP_NEQ : NFT_CMP_EQ, a, (uint32_t)len / 8);
	} else {
		uint8_t mask[16] = { 0 };

		for (int bit = 0; bit < len; bit++)
			mask[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
		for (uint32_t k = 0; k < alen; k++)
			a[k] &= mask[k];
		x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, alen, NFT_REG_1);
		x_bitwise(rb, mask, alen);
		x_cmp(rb, inv ? NFT_CMP_NEQ : NFT_CMP_EQ, a, alen);
	}
	return;
bad:
	rb->bad = true;
}

/* "N" or "N-M", nothing else */
static bool port_range(const char *s, unsigned *lo, unsigned *hi)
{
	char *end;
	unsigned long a, b;

	if (*s < '0' || *s > '9')
		return false;
	a = strtoul(s, &end, 10);
	b = a;
	if (*end == '-') {
		if (end[1] < '0' || end[1] > '9')
			return false;
		b = strtoul(end + 1, &end, 10);
	}
	if (*end || a > 65535 || b > 65535 || b < a)
		return false;
	*lo = (unsigned)a;
	*hi = (unsigned)b;
	return true;
}

/* tcp/udp/sctp dport (N | N-M | { ... }) at w[*i] */
static void port_match(struct rb *rb, char **w, size_t nw, size_t *i)
{
	int proto = l4_number(w[*i]);
	unsigned lo, hi;

	if (++*i >= nw || strcmp(w[*i], "dport") || ++*i >= nw)
		goto bad;
	need_l4(rb, proto);
	if (!strcmp(w[*i], "{")) {
		uint32_t id = anon_set(rb, w, nw, i, 0);

		if (!id)
			return;
		x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
		x_lookup(rb, "__set%d", id, -1, false);
		return;
	}
	if (!port_range(w[*i], &lo, &hi))
		goto bad;
	x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
	{
		uint16_t l = htons((uint16_t)lo), h = htons((uint16_t)hi);

		if (lo == hi) {
			x_cmp(rb, NFT_CMP_EQ, &l, 2);
		} else {
			x_cmp(rb, NFT_CMP_GTE, &l, 2);
			x_cmp(rb, NFT_CMP_LTE, &h, 2);
		}
	}
	return;
bad:
	rb->bad = true;
}

/* ct state a,b,... */
static void ct_state(struct rb *rb, char *list)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} t[] = { { "invalid", 1 }, { "established", 2 }, { "related", 4 }, { "new", 8 },
		  { "untracked", 64 } };
	uint32_t mask = 0, zero = 0;
	struct nftnl_expr *e;

	for (char *s = list, *c; s; s = c) {
		size_t k;

		if ((c = strchr(s, ',')))
			*c++ = '\0';
		for (k = 0; k < sizeof(t) / sizeof(t[0]) && strcmp(s, t[k].name); k++)
			;
		if (k == sizeof(t) / sizeof(t[0])) {
			rb->bad = true;
			return;
		}
		mask |= t[k].bit;
	}
	if ((e = nftnl_expr_alloc("ct"))) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	add_expr(rb, e);
	x_bitwise(rb, &mask, 4);
	x_cmp(rb, NFT_CMP_NEQ, &zero, 4);
}

/* One rule of chain o, appended. */
static void rule_add(struct batch *b, const struct obj *o, const char *line)
{
	char *copy = strdup(line), **w = NULL, *comment = NULL;
	size_t nw, i, maxw = 2;
	bool verdict = false;
	struct rb rb = { b, o, line, nftnl_rule_alloc(), 0, -1, false };
	struct nlmsghdr *nlh;

	if (strlen(line) > 16384) {
		free(copy);
		nftnl_rule_free(rb.r);
		return fail(b, EINVAL, o, NULL, "a rule over 16,384 characters");
	}
	for (const char *p = line; *p; p++)
		maxw += *p == ' ';
	if (!copy || !rb.r || !(w = calloc(maxw, sizeof(*w)))) {
		free(copy);
		free(w);
		nftnl_rule_free(rb.r);
		return fail(b, ENOMEM, NULL, NULL, "out of memory");
	}
	nftnl_rule_set_str(rb.r, NFTNL_RULE_TABLE, b->table);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_CHAIN, o->name);
	nftnl_rule_set_u32(rb.r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nw = words(copy, w, maxw);
	if (nw > maxw) {
		rb.bad = true;
		nw = 0;
	}
	for (i = 0; i < nw && !rb.bad && !b->fail; i++) {
		const char *t = w[i];

		if (verdict) {
			/* after the verdict: only its comment */
			if (strcmp(t, "comment") || i + 2 != nw || w[i + 1][0] != '"' ||
			    strlen(w[i + 1]) < 2 || strchr(w[i + 1] + 1, '"') != w[i + 1] + strlen(w[i + 1]) - 1) {
				rb.bad = true;
				break;
			}
			comment = w[i + 1] + 1;
			comment[strlen(comment) - 1] = '\0';
			break;
		}
		if (!strcmp(t, "accept") || !strcmp(t, "drop")) {
			x_verdict(&rb, t[0] == 'a' ? NF_ACCEPT : NF_DROP, NULL);
			verdict = true;
		} else if ((!strcmp(t, "jump") || !strcmp(t, "goto")) && i + 1 < nw) {
			x_verdict(&rb, t[0] == 'j' ? (uint32_t)NFT_JUMP : (uint32_t)NFT_GOTO, w[++i]);
			verdict = true;
		} else if (!strcmp(t, "counter")) {
			add_expr(&rb, nftnl_expr_alloc("counter"));
		} else if (!strcmp(t, "ct") && i + 2 < nw && !strcmp(w[i + 1], "state")) {
			ct_state(&rb, w[i + 2]);
			i += 2;
		} else if (!strcmp(t, "meta") && i + 2 < nw && !strcmp(w[i + 1], "nfproto")) {
			int f = !strcmp(w[i + 2], "ipv4") ? NFPROTO_IPV4 :
				!strcmp(w[i + 2], "ipv6") ? NFPROTO_IPV6 : 0;
			uint8_t v = (uint8_t)f;

			if (!f || rb.nfproto) {
				rb.bad = true;
				break;
			}
			x_meta(&rb, NFT_META_NFPROTO, NFT_REG_1);
			x_cmp(&rb, NFT_CMP_EQ, &v, 1);
			rb.nfproto = f;
			i += 2;
		} else if (!strcmp(t, "meta") && i + 2 < nw && !strcmp(w[i + 1], "l4proto")) {
			int p = l4_number(w[i + 2]);
			uint8_t v = (uint8_t)p;

			if (p < 0 || rb.l4 >= 0) {
				rb.bad = true;
				break;
			}
			x_meta(&rb, NFT_META_L4PROTO, NFT_REG_1);
			x_cmp(&rb, NFT_CMP_EQ, &v, 1);
			rb.l4 = p;
			i += 2;
		} else if (!strcmp(t, "iifname") || !strcmp(t, "oifname")) {
			uint32_t key = t[0] == 'i' ? NFT_META_IIFNAME : NFT_META_OIFNAME;
			uint8_t name[16];
			const char *end;

			if (i + 2 < nw && !strcmp(w[i + 1], "vmap") && w[i + 2][0] == '@') {
				x_meta(&rb, key, NFT_REG_1);
				x_lookup(&rb, w[i + 2] + 1, 0, NFT_REG_VERDICT, false);
				verdict = true;
				i += 2;
			} else if (i + 5 < nw && !strcmp(w[i + 1], ".") &&
				   (!strcmp(w[i + 2], "ip") || !strcmp(w[i + 2], "ip6")) &&
				   (!strcmp(w[i + 3], "saddr") || !strcmp(w[i + 3], "daddr"))) {
				/* ifname . address: two registers, one lookup */
				bool v6 = w[i + 2][2] == '6', src = w[i + 3][0] == 's';
				bool inv = !strcmp(w[i + 4], "!=");
				const char *set = w[i + 4 + inv];

				if (set[0] != '@') {
					rb.bad = true;
					break;
				}
				need_family(&rb, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
				x_meta(&rb, key, NFT_REG_1);
				x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER,
					  v6 ? (src ? 8 : 24) : (src ? 12 : 16), v6 ? 16 : 4, NFT_REG_2);
				x_lookup(&rb, set + 1, 0, -1, inv);
				i += 4 + inv;
			} else {
				bool inv = i + 1 < nw && !strcmp(w[i + 1], "!=");
				const char *s = i + 1 + inv < nw ? w[i + 1 + inv] : "";
				size_t len = strlen(s);

				if (len > 3 && s[len - 2] == '*' && s[len - 1] == '"' && s[0] == '"' &&
				    len - 3 < 16) {
					/* "prefix*": compare the prefix only */
					x_meta(&rb, key, NFT_REG_1);
					x_cmp(&rb, inv ? NFT_CMP_NEQ : NFT_CMP_EQ, s + 1, (uint32_t)(len - 3));
				} else if (ifname_key(s, name, &end) && !*end) {
					x_meta(&rb, key, NFT_REG_1);
					x_cmp(&rb, inv ? NFT_CMP_NEQ : NFT_CMP_EQ, name, 16);
				} else {
					rb.bad = true;
					break;
				}
				i += 1 + inv;
			}
		} else if (!strcmp(t, "ip") || !strcmp(t, "ip6")) {
			addr_match(&rb, w, nw, &i);
		} else if (l4_number(t) >= 0 && strcmp(t, "icmp") && strcmp(t, "ipv6-icmp")) {
			port_match(&rb, w, nw, &i);
		} else {
			rb.bad = true;
		}
	}
	if (!rb.bad && !b->fail && comment) {
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);

		if (u && nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, comment))
			nftnl_rule_set_data(rb.r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u),
					    nftnl_udata_buf_len(u));
		else
			rb.bad = true;
		nftnl_udata_buf_free(u);
	}
	if (rb.bad)
		fail(b, EINVAL, o, line, "cannot read this rule");
	if (!b->fail && (nlh = msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, o, line,
				   "adding a rule"))) {
		nftnl_rule_nlmsg_build_payload(nlh, rb.r);
		sent(b);
		b->st.rules++;
	}
	nftnl_rule_free(rb.r);
	free(copy);
	free(w);
}

/* "filter hook forward priority filter - 1; policy accept;" */
static bool base_chain(const char *s, char type[16], uint32_t *hook, int32_t *prio, uint32_t *policy)
{
	static const char *const hooks[] = { "prerouting", "input", "forward", "output",
					     "postrouting" };
	char h[16], p[16];
	int pos = 0, n;
	long v = 0;

	if (sscanf(s, "%15s hook %15s priority %n", type, h, &pos) != 2 || !pos)
		return false;
	for (*hook = 0; *hook < 5 && strcmp(h, hooks[*hook]); (*hook)++)
		;
	if (*hook == 5)
		return false;
	s += pos;
	if (!strncmp(s, "filter", 6)) {
		s += 6;
	} else {
		char *end;

		v = strtol(s, &end, 10);
		if (end == s)
			return false;
		s = end;
	}
	if ((s[0] == ' ' && (s[1] == '-' || s[1] == '+') && s[2] == ' ')) {
		char *end;
		long d = strtol(s + 3, &end, 10);

		if (end == s + 3)
			return false;
		v += s[1] == '-' ? -d : d;
		s = end;
	}
	if (sscanf(s, "; policy %15[a-z];%n", p, &n) != 1 || s[n])
		return false;
	if (!strcmp(p, "accept"))
		*policy = NF_ACCEPT;
	else if (!strcmp(p, "drop"))
		*policy = NF_DROP;
	else
		return false;
	*prio = (int32_t)v;
	return true;
}

static void chain_add(struct batch *b, const struct obj *o)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return fail(b, ENOMEM, NULL, NULL, "out of memory");
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, b->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, o->name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (o->type) {
		char type[16];
		uint32_t hook, policy;
		int32_t prio;

		if (!base_chain(o->type, type, &hook, &prio, &policy)) {
			nftnl_chain_free(c);
			return fail(b, EINVAL, o, o->type, "cannot read this base chain");
		}
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, policy);
	}
	if (o->comment) {
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);

		if (!u || !nftnl_udata_put_strz(u, NFTNL_UDATA_CHAIN_COMMENT, o->comment)) {
			nftnl_udata_buf_free(u);
			nftnl_chain_free(c);
			return fail(b, EINVAL, o, NULL, "the comment is too long");
		}
		nftnl_chain_set_data(c, NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(u),
				     nftnl_udata_buf_len(u));
		nftnl_udata_buf_free(u);
	}
	if ((nlh = msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, o, NULL,
		       "creating the chain"))) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		sent(b);
		b->st.chains++;
	}
	nftnl_chain_free(c);
}

/* ---- the difference ---- */

static bool streq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool same_items(const struct obj *a, const struct obj *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->item[i], b->item[i]))
			return false;
	return true;
}

static bool eq_str(const void *val, const void *key)
{
	return !strcmp(val, key);
}

/* The items of a that b does not have (pointers into a), count in *n; NULL
 * on out of memory. */
static char **minus(const struct obj *a, const struct obj *b, size_t *n)
{
	struct hmap h = { 0 };
	char **v = calloc(a->n + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; v && i < b->n; i++)
		if (hmap_insert(&h, hash_str(b->item[i]), b->item[i]) < 0) {
			free(v);
			v = NULL;
		}
	for (size_t i = 0; v && i < a->n; i++)
		if (!hmap_find(&h, hash_str(a->item[i]), eq_str, a->item[i]))
			v[(*n)++] = a->item[i];
	hmap_release(&h);
	return v;
}

/* Elements items of set o (all when items is NULL): add or delete. */
static void elems_of(struct batch *b, const struct obj *o, char **items, size_t n, bool add)
{
	const struct stype *ty = stype_of(o);
	struct elem *e;
	size_t ne = 0;

	if (!ty)
		return fail(b, EINVAL, o, o->type, "not a type this backend knows");
	if (!items) {
		items = o->item;
		n = o->n;
	}
	if (!n)
		return;
	if ((e = encode(b, o, ty, items, n, &ne)))
		elems_msgs(b, o, o->name, 0, ty->key_len, e, ne, add);
	free(e);
}

/* The elements of n that o lacks (add), or of o that n lacks (delete). */
static void elems_diff(struct batch *b, const struct obj *n, const struct obj *o, bool add)
{
	size_t k;
	char **v = add ? minus(n, o, &k) : minus(o, n, &k);

	if (!v)
		return fail(b, ENOMEM, NULL, NULL, "out of memory");
	elems_of(b, add ? n : o, v, k, add);
	free(v);
}

/* The batch from old to rs; 1 when it must replace the table instead. */
static int build(struct batch *b, const struct nft_rs *old, const struct nft_rs *rs)
{
	if (!old) {
		table_msg(b, NFT_MSG_NEWTABLE); /* so that the deletion finds it */
		table_msg(b, NFT_MSG_DELTABLE);
		table_msg(b, NFT_MSG_NEWTABLE);
	} else if (strcmp(old->table, rs->table)) {
		return 1;
	}
	/* what goes or changes: elements deleted, chains flushed */
	for (size_t i = 0; old && i < old->n && !b->fail; i++) {
		const struct obj *o = &old->o[i], *n = find(rs, is_chain(o), o->name);

		if (is_chain(o)) {
			if (n && (!streq(n->type, o->type) || !streq(n->comment, o->comment)))
				return 1;
			if (!n || !same_items(o, n)) {
				del_obj(b, o, NFT_MSG_DELRULE, "flushing the chain");
				b->st.deleted += o->n;
			}
			continue;
		}
		if (!n) {
			/* a map that goes: its elements name chains that may go too */
			if (o->kind == O_MAP && o->n)
				del_obj(b, o, NFT_MSG_DELSETELEM, "flushing the map");
			continue;
		}
		if (n->kind != o->kind || !streq(n->type, o->type) || n->interval != o->interval ||
		    !streq(n->comment, o->comment))
			return 1;
		if (same_items(o, n))
			continue;
		if (o->interval) {
			del_obj(b, o, NFT_MSG_DELSETELEM, "flushing the set");
			b->st.deleted += o->n;
		} else {
			elems_diff(b, n, o, false);
		}
	}
	/* chains that go, then sets */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; old && i < old->n && !b->fail; i++) {
			const struct obj *o = &old->o[i];

			if (is_chain(o) == (pass == 0) && !find(rs, is_chain(o), o->name)) {
				del_obj(b, o, pass ? NFT_MSG_DELSET : NFT_MSG_DELCHAIN,
					pass ? "deleting the set" : "deleting the chain");
				b->st.deleted++;
			}
		}
	/* new sets and maps; the elements of sets (maps' name chains: later) */
	for (size_t i = 0; i < rs->n && !b->fail; i++) {
		const struct obj *n = &rs->o[i], *o = old ? find(old, false, n->name) : NULL;
		const struct stype *ty;

		if (is_chain(n))
			continue;
		if (!(ty = stype_of(n)))
			return fail(b, EINVAL, n, n->type, "not a type this backend knows"), 0;
		if (!o)
			set_add(b, n, ty);
		if (n->kind == O_MAP)
			continue;
		if (!o || (n->interval && !same_items(o, n)))
			elems_of(b, n, NULL, 0, true); /* all: new, or flushed above */
		else if (!same_items(o, n))
			elems_diff(b, n, o, true);
	}
	/* new chains, then the rules of new and changed ones */
	for (size_t i = 0; i < rs->n && !b->fail; i++)
		if (is_chain(&rs->o[i]) && !(old && find(old, true, rs->o[i].name)))
			chain_add(b, &rs->o[i]);
	for (size_t i = 0; i < rs->n && !b->fail; i++) {
		const struct obj *n = &rs->o[i], *o = old ? find(old, true, n->name) : NULL;

		if (!is_chain(n) || (o && same_items(o, n)))
			continue;
		for (size_t k = 0; k < n->n && !b->fail; k++)
			rule_add(b, n, n->item[k]);
	}
	/* verdict maps: their elements name chains, all there by now */
	for (size_t i = 0; i < rs->n && !b->fail; i++) {
		const struct obj *n = &rs->o[i], *o = old ? find(old, false, n->name) : NULL;

		if (n->kind != O_MAP)
			continue;
		if (!o)
			elems_of(b, n, NULL, 0, true);
		else if (!same_items(o, n))
			elems_diff(b, n, o, true);
	}
	return 0;
}

/* ---- the kernel ---- */

static struct mnl_socket *nft_socket(void)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	int one = 1, rcv = 8 << 20;

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		return NULL;
	}
	setsockopt(mnl_socket_get_fd(nl), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	/* errors without a copy of the message: they stay small */
	setsockopt(mnl_socket_get_fd(nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	return nl;
}

/* Send the batch (one sendmsg: one transaction) and read the answers up to
 * the last message's acknowledgement. */
static int talk(struct batch *b)
{
	struct mnl_socket *nl = nft_socket();
	int n = nftnl_batch_iovec_len(b->b), fd, sz;
	struct iovec *iov = calloc((size_t)n + 1, sizeof(*iov));
	struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
	struct msghdr mh = { .msg_name = &snl, .msg_namelen = sizeof(snl) };
	struct timeval tv = { 60, 0 };
	uint32_t last = b->last->nlmsg_seq, bad_seq = 0;
	size_t total = 0;
	char *buf = malloc(1 << 16);
	int err = 0, r = -1;

	if (!nl || !iov || !buf) {
		snprintf(b->err, b->errlen, "netlink: %s", !nl ? strerror(errno) : "out of memory");
		goto out;
	}
	fd = mnl_socket_get_fd(nl);
	nftnl_batch_iovec(b->b, iov, (uint32_t)n);
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	b->st.bytes = total;
	sz = total + (1 << 16) > (size_t)1 << 30 ? 1 << 30 : (int)(total + (1 << 16));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	mh.msg_iov = iov;
	mh.msg_iovlen = (size_t)n;
	if (sendmsg(fd, &mh, 0) < 0) {
		snprintf(b->err, b->errlen, "netlink: sending %zu bytes: %s", total, strerror(errno));
		goto out;
	}
	for (bool done = false; !done;) {
		ssize_t got = recv(fd, buf, 1 << 16, 0);
		int len;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			/* ENOBUFS: more errors than the buffer held; still a failure */
			if (!err)
				snprintf(b->err, b->errlen, "netlink: no answer to the batch: %s",
					 strerror(errno));
			err = err ? err : errno;
			break;
		}
		len = (int)got;
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			struct nlmsgerr *e;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			if (e->error && !err) {
				err = -e->error;
				bad_seq = e->msg.nlmsg_seq;
			}
			/* the last message's answer, or one about the whole batch */
			if (e->msg.nlmsg_seq == last || (e->error && e->msg.nlmsg_seq == b->seq0))
				done = true;
		}
	}
	if (err && bad_seq) {
		size_t k = bad_seq - b->seq0 - 1;

		if (bad_seq > b->seq0 && k < b->nw) {
			const struct what *w = &b->w[k];

			snprintf(b->err, b->errlen, "%s%s%s%s%s%s%s: %s", w->op,
				 w->o ? (is_chain(w->o) ? " of chain " : " of set ") : "",
				 w->o ? w->o->name : "", w->item ? " (\"" : "", w->item ? w->item : "",
				 w->item ? "\")" : "", "", strerror(err));
		} else {
			snprintf(b->err, b->errlen, "the transaction: %s", strerror(err));
		}
	}
	r = err ? -1 : 0;
out:
	free(buf);
	free(iov);
	if (nl)
		mnl_socket_close(nl);
	return r;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int run_batch(const struct nft_rs *old, const struct nft_rs *rs, struct batch *b)
{
	struct timespec t0, t1, t2;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	b->st.replaced = !old;
	b->b = nftnl_batch_alloc(1 << 20, 1 << 18);
	if (!b->b) {
		snprintf(b->err, b->errlen, "out of memory");
		return -1;
	}
	b->seq0 = b->seq = 1; /* a socket of its own: any numbers will do */
	nftnl_batch_begin(nftnl_batch_buffer(b->b), b->seq++);
	nftnl_batch_update(b->b);
	r = build(b, old, rs);
	if (r == 1)
		return 1;
	if (b->fail)
		return b->fail == EINVAL ? -2 : -1; /* EINVAL: text it cannot read */
	if (!b->last)
		return 0; /* nothing to change */
	b->last->nlmsg_flags |= NLM_F_ACK;
	nftnl_batch_end(nftnl_batch_buffer(b->b), b->seq++);
	nftnl_batch_update(b->b);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r = talk(b);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	b->st.build_ms = ms_between(&t0, &t1);
	b->st.kernel_ms = ms_between(&t1, &t2);
	return r;
}

int nft_rs_apply(const struct nft_rs *old, const struct nft_rs *rs, struct nft_stats *st,
		 char *err, size_t errlen)
{
	struct batch b = { .table = rs->table, .err = err, .errlen = errlen };
	int r = run_batch(old, rs, &b);

	if (r == 1) {
		/* cannot change in place: replace the table */
		if (b.b)
			nftnl_batch_free(b.b);
		free(b.w);
		b = (struct batch){ .table = rs->table, .err = err, .errlen = errlen };
		r = run_batch(NULL, rs, &b);
	}
	if (st)
		*st = b.st;
	if (b.b)
		nftnl_batch_free(b.b);
	free(b.w);
	return r;
}

bool nft_table_present(const char *table)
{
	struct mnl_socket *nl = nft_socket();
	struct nftnl_table *t = nftnl_table_alloc();
	char buf[8192];
	struct nlmsghdr *nlh;
	bool found = false;
	ssize_t got;

	if (!nl || !t)
		goto out;
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, 1);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
	nftnl_table_nlmsg_build_payload(nlh, t);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	while ((got = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		int len = (int)got;
		bool end = false;

		for (nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type == NLMSG_ERROR)
				end = true;
			else if ((nlh->nlmsg_type & 0xff) == NFT_MSG_NEWTABLE)
				found = true;
		}
		if (end)
			break;
	}
out:
	nftnl_table_free(t);
	if (nl)
		mnl_socket_close(nl);
	return found;
}
