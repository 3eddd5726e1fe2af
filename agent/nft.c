/* SPDX-License-Identifier: MIT */
/*
 * DOC: nftables over netlink: the rendered ruleset read back, and the batch
 *
 * The rendered text (lib/policy_compile.c) is one table of sets, maps and
 * chains. nft_rs_parse() reads it into objects; nft_rs_apply() turns them
 * into nf_tables messages (libnftnl) in one batch, sent with one sendmsg():
 * the kernel applies the batch as one transaction or refuses all of it.
 * A large ruleset goes to the kernel as several tables (agent/nft_shard.c),
 * still in one batch: each table's part is built as below.
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
#include <pthread.h>

#include "nft_int.h"
#include "policy.h"

/* ---- the batch ---- */


void batch_fail(struct batch *b, int e, const struct obj *o, const char *item, const char *why)
{
	if (b->fail)
		return;
	b->fail = e;
	snprintf(b->err, b->errlen, "%s%s%s%s%s: %s", o ? (is_chain(o) ? "chain " : "set ") : "",
		 o ? o->name : "", item ? " \"" : "", item ? item : "", item ? "\"" : "", why);
}

struct nlmsghdr *batch_msg(struct batch *b, uint16_t type, uint16_t flags, const struct obj *o,
			    const char *item, const char *op)
{
	if (b->nw == b->capw) {
		size_t cap = b->capw ? 2 * b->capw : 1024;
		struct what *v = realloc(b->w, cap * sizeof(*v));

		if (!v) {
			batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
			return NULL;
		}
		b->w = v;
		b->capw = cap;
	}
	b->w[b->nw++] = (struct what){ o, item, op };
	b->last = nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->b), type, NFPROTO_INET, flags, b->seq++);
	return b->last;
}

void batch_sent(struct batch *b)
{
	uint32_t len = b->last->nlmsg_len;

	/* A message that overflows the page is copied to the start of a new
	 * one (and the first copy is not sent): either way it now ends where
	 * the buffer goes on. */
	if (nftnl_batch_update(b->b) < 0)
		batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
	b->last = (struct nlmsghdr *)((char *)nftnl_batch_buffer(b->b) - len);
	b->st.msgs++;
}

static void table_msg(struct batch *b, uint16_t type)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, b->table);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	if ((nlh = batch_msg(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0, NULL, NULL,
		       type == NFT_MSG_NEWTABLE ? "creating the table" : "deleting the table"))) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		batch_sent(b);
	}
	nftnl_table_free(t);
}
/* ---- sets and their elements ---- */


const struct stype stypes[] = {
	{ "ipv4_addr", T_IPADDR, 4, false, false, 2, AF_INET, 0 },
	{ "ipv6_addr", T_IP6ADDR, 16, false, false, 2, AF_INET6, 0 },
	{ "ifname . ipv4_addr", T_IFNAME << 6 | T_IPADDR, 20, false, true, 0, AF_INET, 0 },
	{ "ifname . ipv6_addr", T_IFNAME << 6 | T_IP6ADDR, 32, false, true, 0, AF_INET6, 0 },
	{ "ifname : verdict", T_IFNAME, 16, true, false, 1, 0, T_VERDICT },
	{ "devgroup", T_DEVGROUP, 4, false, false, 1, 0, 0 },
	{ "devgroup : verdict", T_DEVGROUP, 4, true, false, 1, 0, T_VERDICT },
	{ "ifname : devgroup", T_IFNAME, 16, true, false, 1, 0, T_DEVGROUP },
};

static const struct stype *stype_of(const struct obj *o)
{
	for (size_t i = 0; o->type && i < sizeof(stypes) / sizeof(stypes[0]); i++)
		if (!strcmp(o->type, stypes[i].name) && stypes[i].map == (o->kind == O_MAP) &&
		    !(o->interval && (stypes[i].map || stypes[i].concat)))
			return &stypes[i];
	return NULL;
}


/* "name" (quoted): the interface name padded to IFNAMSIZ; false if not one */
bool ifname_key(const char *s, uint8_t key[16], const char **end)
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
bool nft_addr_parse(const char *s, int af, uint8_t a[16], int *len)
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

bool nft_u32_parse(const char *s, uint32_t *out, const char **end)
{
	char *e;
	unsigned long v;

	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &e, 10);
	if (errno || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	*end = e;
	return true;
}

/* A plain element (not an interval set's): false if it cannot be read. */
static bool elem_parse(const struct stype *ty, const char *s, struct elem *e)
{
	const char *p = s;
	uint32_t g;
	int len;

	memset(e, 0, sizeof(*e));
	while (ty->map && *p == ' ')
		p++;
	if (ty->key_type == T_DEVGROUP) {
		if (!nft_u32_parse(p, &g, &p))
			return false;
		memcpy(e->key, &g, 4);
		if (!ty->map)
			return !*p;
	} else if (ty->map && !ifname_key(p, e->key, &p)) {
		return false;
	}
	if (ty->map) {
		if (strncmp(p, " : ", 3))
			return false;
		if (ty->data_type == T_DEVGROUP) {
			e->has_data = true;
			return nft_u32_parse(p + 3, &e->data, &p) && !*p;
		}
		e->is_verdict = true;
		return verdict_parse(p + 3, &e->verdict, &e->chain) == 0;
	}
	if (ty->concat) {
		if (!ifname_key(p, e->key, &p) || strncmp(p, " . ", 3))
			return false;
		return nft_addr_parse(p + 3, ty->af, e->key + 16, &len) && len < 0;
	}
	return nft_addr_parse(p, ty->af, e->key, &len) && len < 0;
}


static int cmp_range(const void *a, const void *b)
{
	return memcmp(((const struct range *)a)->lo, ((const struct range *)b)->lo, 16);
}

/* hi + 1 into out; false when hi is the last address */
bool next_addr(const uint8_t *hi, size_t n, uint8_t *out)
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
size_t range_elems(struct range *r, size_t n, size_t alen, bool merge, struct elem *e)
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
struct elem *intervals(const struct obj *o, const struct stype *ty, bool merge, size_t *n,
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

		if (!nft_addr_parse(o->item[i], ty->af, a, &len)) {
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

void elems_msgs(struct batch *b, const struct obj *o, const char *name, uint32_t id,
		       uint32_t key_len, const struct elem *e, size_t n, bool add)
{
	for (size_t i = 0; i < n && !b->fail; i += CHUNK) {
		struct nftnl_set *s = nftnl_set_alloc();
		struct nlmsghdr *nlh;

		if (!s)
			return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
		nftnl_set_set_str(s, NFTNL_SET_TABLE, b->table);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
		if (id)
			nftnl_set_set_u32(s, NFTNL_SET_ID, id);
		for (size_t k = i; k < n && k < i + CHUNK; k++) {
			struct nftnl_set_elem *el = nftnl_set_elem_alloc();

			if (!el) {
				nftnl_set_free(s);
				return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
			}
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, e[k].key, key_len);
			if (e[k].flags)
				nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, e[k].flags);
			if (add && e[k].chain)
				nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN, e[k].chain);
			if (add && e[k].is_verdict)
				nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, e[k].verdict);
			if (add && e[k].has_data)
				nftnl_set_elem_set(el, NFTNL_SET_ELEM_DATA, &e[k].data, 4);
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
		if ((nlh = batch_msg(b, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
			       add ? NLM_F_CREATE | NLM_F_EXCL : 0, o, NULL,
			       add ? "adding elements" : "deleting elements"))) {
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			batch_sent(b);
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
		batch_fail(b, bad ? EINVAL : ENOMEM, o, bad, bad ? "cannot read this element" : "out of memory");
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
		return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, b->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, o->name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, ty->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, ty->key_len);
	nftnl_set_set_u32(s, NFTNL_SET_ID, ++b->set_id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS,
			  (o->interval ? NFT_SET_INTERVAL : 0) | (ty->map ? NFT_SET_MAP : 0));
	if (ty->map && ty->data_type == T_VERDICT) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	} else if (ty->map) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, ty->data_type);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 4);
	}
	/* the user data nft writes: key (and data) byte order (a verdict's
	 * none, a devgroup's the host's), a concatenation's "typeof", the
	 * comment */
	ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, ty->byteorder);
	if (ty->map)
		ok = ok && nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER,
					       ty->data_type == T_VERDICT ? 0 : 1) &&
		     nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0);
	if (ty->concat)
		ok = ok && nftnl_udata_put(u, NFTNL_UDATA_SET_KEY_TYPEOF, 8,
					   "\x00\x04\x0d\x00\x00\x00\x01\x00");
	if (o->comment)
		ok = ok && nftnl_udata_put_strz(u, NFTNL_UDATA_SET_COMMENT, o->comment);
	if (!ok) {
		batch_fail(b, EINVAL, o, NULL, "the comment is too long");
	} else {
		nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
				   nftnl_udata_buf_len(u));
		if ((nlh = batch_msg(b, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, o, NULL,
			       "creating the set"))) {
			nftnl_set_nlmsg_build_payload(nlh, s);
			batch_sent(b);
			b->st.sets++;
		}
	}
	nftnl_set_free(s);
	nftnl_udata_buf_free(u);
}

static void del_obj(struct batch *b, const struct obj *o, uint16_t type, const char *op)
{
	struct nlmsghdr *nlh = batch_msg(b, type, 0, o, NULL, op);

	if (!nlh)
		return;
	if (type == NFT_MSG_DELSET || type == NFT_MSG_DELSETELEM) {
		struct nftnl_set *s = nftnl_set_alloc();

		if (!s)
			return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
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
			return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, b->table);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, o->name);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nftnl_chain_free(c);
	} else { /* NFT_MSG_DELRULE: flush the chain */
		struct nftnl_rule *r = nftnl_rule_alloc();

		if (!r)
			return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, b->table);
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, o->name);
		nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
	}
	batch_sent(b);
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
		return batch_fail(b, EINVAL, o, o->type, "not a type this backend knows");
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
		return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
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
		const struct obj *o = &old->o[i], *n = rs_find(rs, is_chain(o), o->name);

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

			if (is_chain(o) == (pass == 0) && !rs_find(rs, is_chain(o), o->name)) {
				del_obj(b, o, pass ? NFT_MSG_DELSET : NFT_MSG_DELCHAIN,
					pass ? "deleting the set" : "deleting the chain");
				b->st.deleted++;
			}
		}
	/* new sets and maps; the elements of sets (maps' name chains: later) */
	for (size_t i = 0; i < rs->n && !b->fail; i++) {
		const struct obj *n = &rs->o[i], *o = old ? rs_find(old, false, n->name) : NULL;
		const struct stype *ty;

		if (is_chain(n))
			continue;
		if (!(ty = stype_of(n)))
			return batch_fail(b, EINVAL, n, n->type, "not a type this backend knows"), 0;
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
		if (is_chain(&rs->o[i]) && !(old && rs_find(old, true, rs->o[i].name)))
			chain_add(b, &rs->o[i]);
	for (size_t i = 0; i < rs->n && !b->fail; i++) {
		const struct obj *n = &rs->o[i], *o = old ? rs_find(old, true, n->name) : NULL;

		if (!is_chain(n) || (o && same_items(o, n)))
			continue;
		for (size_t k = 0; k < n->n && !b->fail; k++)
			rule_add(b, n, n->item[k]);
	}
	/* verdict maps: their elements name chains, all there by now */
	for (size_t i = 0; i < rs->n && !b->fail; i++) {
		const struct obj *n = &rs->o[i], *o = old ? rs_find(old, false, n->name) : NULL;

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
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	struct timeval tv = { 60, 0 }; /* the kernel always answers; never wait forever */
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
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return nl;
}

/*
 * One netfilter socket for the process, kept open. Closing one makes the
 * kernel first finish the clean-up of the last transaction (it waits for an
 * RCU grace period: 5-15 ms on the test machines), so a socket per batch
 * made every pass wait that long after its ruleset was already in force.
 * Each exchange numbers its messages from a window of its own (seq_window)
 * and ignores answers outside it; after a failure the socket is dropped
 * and the next exchange opens a new one.
 */
static pthread_mutex_t nl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mnl_socket *nl_kept;
static uint32_t nl_next = 1;

#define SEQ_WINDOW (1u << 22) /* numbers per exchange: more than any batch holds */

static uint32_t seq_window(void)
{
	return __atomic_fetch_add(&nl_next, SEQ_WINDOW, __ATOMIC_RELAXED);
}

/* under nl_lock */
static struct mnl_socket *nl_get(void)
{
	if (!nl_kept)
		nl_kept = nft_socket();
	return nl_kept;
}

/* under nl_lock: after a failed exchange, answers may still be queued */
static void nl_drop(void)
{
	if (nl_kept)
		mnl_socket_close(nl_kept);
	nl_kept = NULL;
}

/* Send the batch (one sendmsg: one transaction) and read the answers up to
 * the last message's acknowledgement. */
static int talk(struct batch *b)
{
	struct mnl_socket *nl;
	int n = nftnl_batch_iovec_len(b->b), fd, sz;
	struct iovec *iov = calloc((size_t)n + 1, sizeof(*iov));
	struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
	struct msghdr mh = { .msg_name = &snl, .msg_namelen = sizeof(snl) };
	uint32_t last = b->last->nlmsg_seq, bad_seq = 0;
	size_t total = 0;
	char *buf = malloc(1 << 16);
	int err = 0, r = -1;

	pthread_mutex_lock(&nl_lock);
	nl = nl_get();
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
			if (e->msg.nlmsg_seq - b->seq0 > last - b->seq0)
				continue; /* an earlier exchange's */
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

		if (bad_seq != b->seq0 && k < b->nw) {
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
	if (r)
		nl_drop();
	pthread_mutex_unlock(&nl_lock);
	free(buf);
	free(iov);
	return r;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Replacing the whole ruleset: the tables of a larger count, left from an
 * earlier run, go too (their classes are in the tables of this count). */
static void stale_tables(struct batch *b, const char *table, unsigned from)
{
	for (unsigned k = from; k < NFT_TABLES_MAX && !b->fail; k++) {
		char *t = nft_table_name(table, k);

		if (!t) {
			batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
			break;
		}
		if (nft_table_present(t)) {
			b->table = t;
			table_msg(b, NFT_MSG_DELTABLE);
		}
		b->table = table;
		free(t);
	}
}

/* The batch from old to rs, for each of the tables (agent/nft_shard.c). */
static int build_all(struct batch *b, const struct nft_rs *old, const struct nft_rs *rs)
{
	/* the split is kept with the ruleset: not a change of what it holds */
	struct nft_rs *o = (struct nft_rs *)old, *n = (struct nft_rs *)rs;
	unsigned k = rs_tables_for(rs, old);
	int r = 0;

	if (old && nft_rs_tables(old) != k)
		return 1; /* another count: replace the ruleset whole */
	if (!old)
		stale_tables(b, rs->table, k);
	if (rs_split(n, k) < 0) {
		batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
		return 0;
	}
	if (k == 1 || b->fail)
		return b->fail ? 0 : build(b, old, rs);
	for (unsigned i = 0; i < n->nphys && !r && !b->fail; i++) {
		b->table = n->phys[i]->table;
		r = build(b, o ? o->phys[i] : NULL, n->phys[i]);
	}
	b->table = rs->table;
	return r;
}

/*
 * A patch's batch (nft_rs_patch): ov and nv hold the patched objects before
 * and after; whole is the ruleset in force. With several tables, each table
 * that holds an object gets its difference; 1 when a patch cannot be
 * applied to the tables as they are (a dispatch map or base chain, or a
 * chain that would name a set or chain its table lacks).
 */
static int patch_build(struct batch *b, const struct nft_rs *ov, const struct nft_rs *nv,
		       struct nft_rs *whole)
{
	int r = 0;

	if (!whole->nphys)
		return build(b, ov, nv);
	for (unsigned k = 0; k < whole->nphys && !r && !b->fail; k++) {
		const struct nft_rs *p = whole->phys[k];
		struct nft_rs a = { .table = p->table }, c = { .table = p->table };

		a.o = calloc(ov->n + 1, sizeof(*a.o));
		c.o = calloc(nv->n + 1, sizeof(*c.o));
		if (!a.o || !c.o)
			batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
		for (size_t i = 0; i < nv->n && !b->fail && !r; i++) {
			const struct obj *x = rs_find(p, is_chain(&nv->o[i]), nv->o[i].name);

			if (!x)
				continue;
			if (rs_dispatch_map(x) || (is_chain(x) && x->type) ||
			    (is_chain(x) && !names_present(p, nv->o[i].item, nv->o[i].n))) {
				r = 1;
				break;
			}
			a.o[a.n++] = ov->o[i];
			c.o[c.n++] = nv->o[i];
		}
		if (!r && !b->fail && (rs_index(&a) < 0 || rs_index(&c) < 0))
			batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
		if (!r && !b->fail && a.n) {
			b->table = p->table;
			r = build(b, &a, &c);
		}
		hmap_release(&a.names);
		hmap_release(&c.names);
		free(a.o);
		free(c.o);
	}
	b->table = whole->table;
	return r;
}

static int run_batch(const struct nft_rs *old, const struct nft_rs *rs, struct batch *b,
		     struct nft_rs *whole)
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
	b->seq0 = b->seq = seq_window(); /* the kept socket: a window of its own */
	nftnl_batch_begin(nftnl_batch_buffer(b->b), b->seq++);
	nftnl_batch_update(b->b);
	r = whole ? patch_build(b, old, rs, whole) : build_all(b, old, rs);
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
	int r = run_batch(old, rs, &b, NULL);

	if (r == 1) {
		/* cannot change in place: replace the table */
		if (b.b)
			nftnl_batch_free(b.b);
		free(b.w);
		b = (struct batch){ .table = rs->table, .err = err, .errlen = errlen };
		r = run_batch(NULL, rs, &b, NULL);
	}
	if (st)
		*st = b.st;
	if (b.b)
		nftnl_batch_free(b.b);
	free(b.w);
	return r;
}

int nft_rs_patch(struct nft_rs *rs, struct policy_patch *p, size_t n, struct nft_stats *st,
		 char *err, size_t errlen)
{
	struct nft_rs ov = { .table = rs->table }, nv = { .table = rs->table };
	struct batch b = { .table = rs->table, .err = err, .errlen = errlen };
	struct obj **in = calloc(n + 1, sizeof(*in));
	struct nft_rs **chain = calloc(n + 1, sizeof(*chain));
	int r = -1;

	ov.o = calloc(n + 1, sizeof(*ov.o));
	nv.o = calloc(n + 1, sizeof(*nv.o));
	if (!in || !chain || !ov.o || !nv.o) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* views of the sets and chains patched, before and after: the
	 * difference of those alone, as build() makes it for whole rulesets */
	for (size_t i = 0; i < n; i++) {
		size_t pre = 0, suf = 0, no, nn = p[i].n;

		if (p[i].chain) {
			/* a chain's rules: read as a table of that chain alone */
			char *t = NULL;

			if (asprintf(&t, "table inet %s {\n%s}\n", rs->table, p[i].chain) < 0) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			chain[i] = nft_rs_parse(t, err, errlen);
			free(t);
			in[i] = (struct obj *)rs_find(rs, true, p[i].name);
			if (!chain[i] || chain[i]->n != 1 || !is_chain(&chain[i]->o[0]) ||
			    strcmp(chain[i]->o[0].name, p[i].name) || !in[i]) {
				if (chain[i] || !in[i])
					snprintf(err, errlen, "chain %s: %s", p[i].name,
						 in[i] ? "the patch is not that chain alone"
						       : "not in the ruleset");
				r = -2;
				goto out;
			}
			ov.o[i] = *in[i];
			nv.o[i] = chain[i]->o[0];
			continue;
		}

		if (!(in[i] = (struct obj *)rs_find(rs, false, p[i].name)) || in[i]->interval) {
			snprintf(err, errlen, "set %s: %s", p[i].name,
				 in[i] ? "an interval set, not patched" : "not in the ruleset");
			r = -2;
			goto out;
		}
		no = in[i]->n;

		/* the items keep their order: only what lies between the
		 * first and the last difference needs comparing */
		while (pre < no && pre < nn && !strcmp(in[i]->item[pre], p[i].items[pre]))
			pre++;
		while (suf < no - pre && suf < nn - pre &&
		       !strcmp(in[i]->item[no - 1 - suf], p[i].items[nn - 1 - suf]))
			suf++;
		ov.o[i] = *in[i];
		ov.o[i].item = in[i]->item + pre;
		ov.o[i].n = no - pre - suf;
		nv.o[i] = *in[i];
		nv.o[i].item = p[i].items + pre;
		nv.o[i].n = nn - pre - suf;
	}
	ov.n = nv.n = n;
	if (rs_index(&ov) < 0 || rs_index(&nv) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	r = run_batch(&ov, &nv, &b, rs);
	if (r == 1) {
		snprintf(err, errlen, rs->nphys ? "a patch changes more than elements and "
							 "rules, or what a table holds"
						       : "a patch changes more than elements and rules");
		r = -2;
	}
	if (r == 0)
		for (size_t i = 0; i < n; i++) {
			char **items = in[i]->item;
			size_t k = in[i]->n, cap = in[i]->cap;

			if (chain[i]) {
				/* the chain read takes the old rules with it */
				struct obj *c = &chain[i]->o[0];

				in[i]->item = c->item;
				in[i]->n = c->n;
				in[i]->cap = c->cap;
				c->item = items;
				c->n = k;
				c->cap = cap;
				continue;
			}
			in[i]->item = p[i].items;
			in[i]->n = in[i]->cap = p[i].n;
			p[i].items = items;
			p[i].n = k;
		}
	for (size_t i = 0; r == 0 && i < n; i++)
		rs_tables_sync(rs, in[i]);
out:
	if (st)
		*st = b.st;
	if (b.b)
		nftnl_batch_free(b.b);
	free(b.w);
	hmap_release(&ov.names);
	hmap_release(&nv.names);
	free(ov.o);
	free(nv.o);
	free(in);
	for (size_t i = 0; chain && i < n; i++)
		nft_rs_free(chain[i]);
	free(chain);
	return r;
}

bool nft_rs_same(const struct nft_rs *a, const struct nft_rs *b, char *why, size_t len)
{
	if (a->n != b->n) {
		snprintf(why, len, "%zu objects against %zu", a->n, b->n);
		return false;
	}
	for (size_t i = 0; i < a->n; i++) {
		const struct obj *x = &a->o[i], *y = rs_find(b, is_chain(x), x->name);

		if (!y) {
			snprintf(why, len, "%s only in the first", x->name);
			return false;
		}
		if (x->kind != y->kind || !streq(x->type, y->type) || !streq(x->comment, y->comment) ||
		    x->interval != y->interval) {
			snprintf(why, len, "%s: declared differently", x->name);
			return false;
		}
		if (!same_items(x, y)) {
			size_t k = 0;

			while (k < x->n && k < y->n && !strcmp(x->item[k], y->item[k]))
				k++;
			snprintf(why, len, "%s: item %zu: \"%s\" against \"%s\" (%zu and %zu items)",
				 x->name, k, k < x->n ? x->item[k] : "(none)",
				 k < y->n ? y->item[k] : "(none)", x->n, y->n);
			return false;
		}
	}
	return true;
}

bool nft_table_present(const char *table)
{
	struct mnl_socket *nl;
	struct nftnl_table *t = nftnl_table_alloc();
	char buf[8192];
	struct nlmsghdr *nlh;
	bool found = false, end = false;
	uint32_t seq = seq_window();
	ssize_t got;

	pthread_mutex_lock(&nl_lock);
	if (!(nl = nl_get()) || !t)
		goto out;
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, seq);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
	nftnl_table_nlmsg_build_payload(nlh, t);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	while (!end && (got = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		int len = (int)got;

		for (nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_seq != seq)
				continue; /* an earlier exchange's */
			if (nlh->nlmsg_type == NLMSG_ERROR)
				end = true;
			else if ((nlh->nlmsg_type & 0xff) == NFT_MSG_NEWTABLE)
				found = true;
		}
	}
out:
	if (!end)
		nl_drop();
	pthread_mutex_unlock(&nl_lock);
	nftnl_table_free(t);
	return found;
}
