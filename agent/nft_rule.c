/* SPDX-License-Identifier: MIT */
/*
 * DOC: a rule of the rendered text as nf_tables expressions (rule_add), and
 * chains (chain_add): the expressions nft itself generates for the same text
 * (compare `nft --debug=netlink`), so `nft list` prints the same ruleset.
 */
#include "nft_int.h"

/* ---- rules ---- */

/*
 * A rule's expressions are written as netlink attributes straight into a
 * scratch message (the NFTA_LIST_ELEM items of NFTA_RULE_EXPRESSIONS, as
 * libnftnl would lay them out), then copied into the batch once the whole
 * line is read: anonymous sets it needs go into the batch before it. Most
 * of the batch's building time went to libnftnl's expression objects
 * (allocated, set attribute by attribute, serialised, freed) for 12,000
 * rules of nine expressions.
 */
enum { XCAP = 1 << 16 };

static _Thread_local union {
	struct nlmsghdr h;
	char b[XCAP];
} scratch;

struct rb {
	struct batch *b;
	const struct obj *o;
	const char *line;
	struct nlmsghdr *x; /* the expressions so far (scratch) */
	size_t nexpr;
	int nfproto;    /* the family already matched: NFPROTO_IPV4, _IPV6, 0 */
	int l4;         /* the transport protocol already matched, -1: none */
	bool bad;
};

/* an expression's item and its data nest (NULL: no room, rb->bad) */
static struct nlattr *x_open(struct rb *rb, const char *name, struct nlattr **item)
{
	struct nlattr *data = NULL;

	if (rb->bad || !(*item = mnl_attr_nest_start_check(rb->x, XCAP, NFTA_LIST_ELEM)) ||
	    !mnl_attr_put_strz_check(rb->x, XCAP, NFTA_EXPR_NAME, name) ||
	    !(data = mnl_attr_nest_start_check(rb->x, XCAP, NFTA_EXPR_DATA)))
		rb->bad = true;
	return rb->bad ? NULL : data;
}

static void x_close(struct rb *rb, struct nlattr *item, struct nlattr *data)
{
	if (rb->bad)
		return;
	mnl_attr_nest_end(rb->x, data);
	mnl_attr_nest_end(rb->x, item);
	rb->nexpr++;
}

static void x_u32(struct rb *rb, uint16_t type, uint32_t v)
{
	if (!rb->bad && !mnl_attr_put_u32_check(rb->x, XCAP, type, htonl(v)))
		rb->bad = true;
}

static void x_str(struct rb *rb, uint16_t type, const char *v)
{
	if (!rb->bad && !mnl_attr_put_strz_check(rb->x, XCAP, type, v))
		rb->bad = true;
}

/* nest type { NFTA_DATA_VALUE: data } */
static void x_value(struct rb *rb, uint16_t type, const void *data, uint32_t len)
{
	struct nlattr *n;

	if (rb->bad || !(n = mnl_attr_nest_start_check(rb->x, XCAP, type)) ||
	    !mnl_attr_put_check(rb->x, XCAP, NFTA_DATA_VALUE, len, data)) {
		rb->bad = true;
		return;
	}
	mnl_attr_nest_end(rb->x, n);
}

static void x_meta(struct rb *rb, uint32_t key, uint32_t reg)
{
	struct nlattr *item, *d = x_open(rb, "meta", &item);

	if (!d)
		return;
	x_u32(rb, NFTA_META_KEY, key);
	x_u32(rb, NFTA_META_DREG, reg);
	x_close(rb, item, d);
}

static void x_cmp(struct rb *rb, uint32_t op, const void *data, uint32_t len)
{
	struct nlattr *item, *d = x_open(rb, "cmp", &item);

	if (!d)
		return;
	x_u32(rb, NFTA_CMP_SREG, NFT_REG_1);
	x_u32(rb, NFTA_CMP_OP, op);
	x_value(rb, NFTA_CMP_DATA, data, len);
	x_close(rb, item, d);
}

static void x_payload(struct rb *rb, uint32_t base, uint32_t off, uint32_t len, uint32_t reg)
{
	struct nlattr *item, *d = x_open(rb, "payload", &item);

	if (!d)
		return;
	x_u32(rb, NFTA_PAYLOAD_DREG, reg);
	x_u32(rb, NFTA_PAYLOAD_BASE, base);
	x_u32(rb, NFTA_PAYLOAD_OFFSET, off);
	x_u32(rb, NFTA_PAYLOAD_LEN, len);
	x_close(rb, item, d);
}

static void x_bitwise(struct rb *rb, const void *mask, uint32_t len)
{
	static const uint8_t zero[16];
	struct nlattr *item, *d = x_open(rb, "bitwise", &item);

	if (!d)
		return;
	x_u32(rb, NFTA_BITWISE_SREG, NFT_REG_1);
	x_u32(rb, NFTA_BITWISE_DREG, NFT_REG_1);
	x_u32(rb, NFTA_BITWISE_LEN, len);
	x_value(rb, NFTA_BITWISE_MASK, mask, len);
	x_value(rb, NFTA_BITWISE_XOR, zero, len);
	x_close(rb, item, d);
}

/* dreg < 0: a match (inverted with inv); else the verdict register */
static void x_lookup(struct rb *rb, const char *set, uint32_t id, int dreg, bool inv)
{
	struct nlattr *item, *d = x_open(rb, "lookup", &item);

	if (!d)
		return;
	x_u32(rb, NFTA_LOOKUP_SREG, NFT_REG_1);
	if (dreg >= 0)
		x_u32(rb, NFTA_LOOKUP_DREG, (uint32_t)dreg);
	x_str(rb, NFTA_LOOKUP_SET, set);
	if (id)
		x_u32(rb, NFTA_LOOKUP_SET_ID, id);
	if (inv)
		x_u32(rb, NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	x_close(rb, item, d);
}

static void x_verdict(struct rb *rb, uint32_t v, const char *chain)
{
	struct nlattr *item, *d = x_open(rb, "immediate", &item), *data, *verdict;

	if (!d)
		return;
	x_u32(rb, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	if (rb->bad || !(data = mnl_attr_nest_start_check(rb->x, XCAP, NFTA_IMMEDIATE_DATA)) ||
	    !(verdict = mnl_attr_nest_start_check(rb->x, XCAP, NFTA_DATA_VERDICT))) {
		rb->bad = true;
		return;
	}
	x_u32(rb, NFTA_VERDICT_CODE, v);
	if (chain)
		x_str(rb, NFTA_VERDICT_CHAIN, chain);
	if (rb->bad)
		return;
	mnl_attr_nest_end(rb->x, verdict);
	mnl_attr_nest_end(rb->x, data);
	x_close(rb, item, d);
}

static void x_counter(struct rb *rb)
{
	struct nlattr *item, *d = x_open(rb, "counter", &item);

	if (d)
		x_close(rb, item, d);
}

static void x_ct(struct rb *rb, uint32_t key)
{
	struct nlattr *item, *d = x_open(rb, "ct", &item);

	if (!d)
		return;
	x_u32(rb, NFTA_CT_KEY, key);
	x_u32(rb, NFTA_CT_DREG, NFT_REG_1);
	x_close(rb, item, d);
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
	const struct stype ports = { "inet_service", T_INET_SERVICE, 2, false, false, 2, 0, 0 };
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
			return batch_fail(b, ENOMEM, NULL, NULL, "out of memory"), 0;
		struct range *r = calloc(n, sizeof(*r));

		if (!r) {
			free(e);
			return batch_fail(b, ENOMEM, NULL, NULL, "out of memory"), 0;
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
				batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
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
		return batch_fail(b, ENOMEM, NULL, NULL, "out of memory"), 0;
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
	if ((nlh = batch_msg(b, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, rb->o, rb->line,
		       "creating an anonymous set"))) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		batch_sent(b);
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
	if (!nft_addr_parse(w[*i], af, a, &len))
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

/* tcp/udp/sctp dport (N | N-M | { ... }) at w[*i]; th dport (N | N-M):
 * the transport header whatever its protocol (a chain that only that
 * protocol reaches), no protocol match */
static void port_match(struct rb *rb, char **w, size_t nw, size_t *i)
{
	int proto = strcmp(w[*i], "th") ? l4_number(w[*i]) : -1;
	unsigned lo, hi;

	if (++*i >= nw || strcmp(w[*i], "dport") || ++*i >= nw)
		goto bad;
	if (proto >= 0)
		need_l4(rb, proto);
	else if (!strcmp(w[*i], "{"))
		goto bad; /* not written so */
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
	x_ct(rb, NFT_CT_STATE);
	x_bitwise(rb, &mask, 4);
	x_cmp(rb, NFT_CMP_NEQ, &zero, 4);
}

/* One rule of chain o, appended. */
void rule_add(struct batch *b, const struct obj *o, const char *line)
{
	char *copy = strdup(line), **w = NULL, *comment = NULL;
	size_t nw, i, maxw = 2;
	bool verdict = false;
	struct rb rb = { b, o, line, mnl_nlmsg_put_header(scratch.b), 0, 0, -1, false };
	struct nlmsghdr *nlh;
	uint8_t udata[2 + 255];
	size_t ulen = 0;

	if (strlen(line) > 16384) {
		free(copy);
		return batch_fail(b, EINVAL, o, NULL, "a rule over 16,384 characters");
	}
	for (const char *p = line; *p; p++)
		maxw += *p == ' ';
	if (!copy || !(w = calloc(maxw, sizeof(*w)))) {
		free(copy);
		free(w);
		return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
	}
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
			x_counter(&rb);
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
		} else if ((!strcmp(t, "iifgroup") || !strcmp(t, "oifgroup")) && i + 2 < nw &&
			   !strcmp(w[i + 1], "vmap") && w[i + 2][0] == '@') {
			/* dispatch by the interface's group */
			x_meta(&rb, t[0] == 'i' ? NFT_META_IIFGROUP : NFT_META_OIFGROUP, NFT_REG_1);
			x_lookup(&rb, w[i + 2] + 1, 0, NFT_REG_VERDICT, false);
			verdict = true;
			i += 2;
		} else if ((!strcmp(t, "iifgroup") || !strcmp(t, "oifgroup")) && i + 4 < nw &&
			   !strcmp(w[i + 1], "&") && !strcmp(w[i + 3], "!=")) {
			/* another table's class (agent/nft_shard.c): the group's
			 * low bits, in host order as the kernel keeps it */
			uint32_t mask, v;
			const char *e1, *e2;

			if (!nft_u32_parse(w[i + 2], &mask, &e1) || *e1 ||
			    !nft_u32_parse(w[i + 4], &v, &e2) || *e2) {
				rb.bad = true;
				break;
			}
			x_meta(&rb, t[0] == 'i' ? NFT_META_IIFGROUP : NFT_META_OIFGROUP, NFT_REG_1);
			x_bitwise(&rb, &mask, 4);
			x_cmp(&rb, NFT_CMP_NEQ, &v, 4);
			i += 4;
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
		} else if ((l4_number(t) >= 0 && strcmp(t, "icmp") && strcmp(t, "ipv6-icmp")) ||
			   !strcmp(t, "th")) {
			port_match(&rb, w, nw, &i);
		} else {
			rb.bad = true;
		}
	}
	if (!rb.bad && !b->fail && comment) {
		/* libnftnl's user data: type, length, the string and its NUL,
		 * all of it within NFT_USERDATA_MAXLEN */
		size_t n = strlen(comment) + 1;

		if (n > 255 || 2 + n > NFT_USERDATA_MAXLEN) {
			rb.bad = true;
		} else {
			udata[0] = NFTNL_UDATA_RULE_COMMENT;
			udata[1] = (uint8_t)n;
			memcpy(udata + 2, comment, n);
			ulen = 2 + n;
		}
	}
	if (rb.bad)
		batch_fail(b, EINVAL, o, line, "cannot read this rule");
	if (!b->fail && (nlh = batch_msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, o, line,
				   "adding a rule"))) {
		size_t n = rb.x->nlmsg_len - MNL_NLMSG_HDRLEN;

		mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, b->table);
		mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, o->name);
		if (ulen)
			mnl_attr_put(nlh, NFTA_RULE_USERDATA, ulen, udata);
		if (rb.nexpr) {
			struct nlattr *nest = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);

			memcpy(mnl_nlmsg_get_payload_tail(nlh), mnl_nlmsg_get_payload(rb.x), n);
			nlh->nlmsg_len += (uint32_t)n;
			mnl_attr_nest_end(nlh, nest);
		}
		batch_sent(b);
		b->st.rules++;
	}
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

void chain_add(struct batch *b, const struct obj *o)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return batch_fail(b, ENOMEM, NULL, NULL, "out of memory");
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, b->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, o->name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (o->type) {
		char type[16];
		uint32_t hook, policy;
		int32_t prio;

		if (!base_chain(o->type, type, &hook, &prio, &policy)) {
			nftnl_chain_free(c);
			return batch_fail(b, EINVAL, o, o->type, "cannot read this base chain");
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
			return batch_fail(b, EINVAL, o, NULL, "the comment is too long");
		}
		nftnl_chain_set_data(c, NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(u),
				     nftnl_udata_buf_len(u));
		nftnl_udata_buf_free(u);
	}
	if ((nlh = batch_msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, o, NULL,
		       "creating the chain"))) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		batch_sent(b);
		b->st.chains++;
	}
	nftnl_chain_free(c);
}
