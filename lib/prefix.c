/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "prefix.h"

u128 prefix_hostmask(const struct prefix *p)
{
	unsigned host = prefix_bits(p->family) - p->len;

	if (host >= 128)
		return ~(u128)0;
	return ((u128)1 << host) - 1;
}

u128 prefix_size(const struct prefix *p)
{
	unsigned host = prefix_bits(p->family) - p->len;

	if (host >= 128)
		return ~(u128)0;
	return (u128)1 << host;
}

static int parse_addr_only(const char *s, struct prefix *p)
{
	unsigned char buf[16];
	u128 v = 0;

	if (inet_pton(AF_INET, s, buf) == 1) {
		for (int i = 0; i < 4; i++)
			v = (v << 8) | buf[i];
		p->family = 4;
	} else if (inet_pton(AF_INET6, s, buf) == 1) {
		for (int i = 0; i < 16; i++)
			v = (v << 8) | buf[i];
		p->family = 6;
	} else {
		return -EINVAL;
	}
	p->addr = v;
	p->len = (uint8_t)prefix_bits(p->family);
	return 0;
}

int addr_parse(const char *s, struct prefix *p, const char *field, struct error *err)
{
	if (!s || !*s)
		return error_invalid(err, field, "", "%s: must be an IP address", field);
	if (strlen(s) >= PREFIX_STRLEN || strchr(s, '/') || parse_addr_only(s, p) < 0)
		return error_invalid(err, field, s, "%s: %s: not an IPv4 or IPv6 address", field, s);
	return 0;
}

int prefix_parse(const char *s, struct prefix *p, unsigned flags,
		 const char *field, struct error *err)
{
	char buf[PREFIX_STRLEN];
	const char *slash;
	char *end;
	unsigned long len;
	size_t alen;

	if (!s || !*s)
		return error_invalid(err, field, "", "%s: must be a CIDR such as 10.0.0.0/16", field);
	if (strlen(s) >= sizeof(buf))
		return error_invalid(err, field, s, "%s: %.60s...: too long for a CIDR", field, s);
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (parse_addr_only(buf, p) < 0)
		return error_invalid(err, field, s, "%s: %s: %s is not an IPv4 or IPv6 address",
				     field, s, buf);
	if (slash) {
		const char *d = slash + 1;

		if (*d < '0' || *d > '9')
			return error_invalid(err, field, s, "%s: %s: prefix length must be a number",
					     field, s);
		errno = 0;
		len = strtoul(d, &end, 10);
		if (*end || errno || len > prefix_bits(p->family) || (d[0] == '0' && d[1]))
			return error_invalid(err, field, s, "%s: %s: prefix length must be 0-%u",
					     field, s, prefix_bits(p->family));
		p->len = (uint8_t)len;
	}
	if (p->addr & prefix_hostmask(p)) {
		if (flags & PREFIX_F_STRICT) {
			struct prefix net = *p;
			char nb[PREFIX_STRLEN];

			net.addr &= ~prefix_hostmask(p);
			return error_invalid(err, field, s,
					     "%s: %s: host bits set (the network is %s)", field,
					     s, prefix_fmt(&net, nb));
		}
		p->addr &= ~prefix_hostmask(p);
	}
	return 0;
}

char *addr_fmt(uint8_t family, u128 addr, char *buf)
{
	unsigned char b[16];

	if (family == 4) {
		for (int i = 3; i >= 0; i--, addr >>= 8)
			b[i] = (unsigned char)(addr & 0xff);
		inet_ntop(AF_INET, b, buf, PREFIX_STRLEN);
	} else {
		for (int i = 15; i >= 0; i--, addr >>= 8)
			b[i] = (unsigned char)(addr & 0xff);
		inet_ntop(AF_INET6, b, buf, PREFIX_STRLEN);
	}
	return buf;
}

char *prefix_fmt(const struct prefix *p, char *buf)
{
	size_t n;

	addr_fmt(p->family, p->addr, buf);
	n = strlen(buf);
	snprintf(buf + n, PREFIX_STRLEN - n, "/%u", p->len);
	return buf;
}

bool prefix_contains_addr(const struct prefix *p, uint8_t family, u128 addr)
{
	return p->family == family && (addr & ~prefix_hostmask(p)) == p->addr;
}

bool prefix_contains(const struct prefix *outer, const struct prefix *inner)
{
	return outer->family == inner->family && inner->len >= outer->len &&
	       (inner->addr & ~prefix_hostmask(outer)) == outer->addr;
}

bool prefix_overlaps(const struct prefix *a, const struct prefix *b)
{
	return prefix_contains(a, b) || prefix_contains(b, a);
}

int prefix_cmp(const struct prefix *a, const struct prefix *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return 0;
}

int prefix_len_for_count(uint8_t family, u128 count, unsigned max_len)
{
	unsigned bits = prefix_bits(family);
	unsigned host = 0;
	unsigned len;

	/* smallest host part with 2^host >= count */
	while (host < 128 && ((u128)1 << host) < count)
		host++;
	if (host > bits)
		return -1;
	len = bits - host;
	return (int)(len > max_len ? max_len : len);
}
