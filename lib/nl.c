/* SPDX-License-Identifier: MIT */
/*
 * rtnetlink requests over libmnl: one request, then read until its ACK (or
 * the end of a dump). The kernel's errno comes back as -errno.
 */
#include "nl.h"

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct nl {
	struct mnl_socket *sock;
	unsigned portid;
	unsigned seq;
	char buf[32768];
};

static int open_groups(struct nl **out, unsigned groups)
{
	struct nl *nl = calloc(1, sizeof(*nl));

	if (!nl)
		return -ENOMEM;
	nl->sock = mnl_socket_open(NETLINK_ROUTE);
	if (!nl->sock || mnl_socket_bind(nl->sock, groups, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;

		nl_close(nl);
		return -e;
	}
	/* Ask for the kernel's extended ACK text; harmless where unsupported. */
	int one = 1;
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned)time(NULL);
	*out = nl;
	return 0;
}

int nl_open(struct nl **out)
{
	return open_groups(out, 0);
}

int nl_open_link_events(struct nl **out)
{
	return open_groups(out, RTMGRP_LINK);
}

void nl_close(struct nl *nl)
{
	if (!nl)
		return;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl);
}

void nl_addr_bytes(uint8_t family, u128 addr, uint8_t *out)
{
	unsigned n = family == 4 ? 4 : 16;

	for (unsigned i = 0; i < n; i++)
		out[n - 1 - i] = (uint8_t)(addr >> (8 * i));
}

u128 nl_addr_value(uint8_t family, const uint8_t *in)
{
	unsigned n = family == 4 ? 4 : 16;
	u128 v = 0;

	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | in[i];
	return v;
}

static int af(uint8_t family)
{
	return family == 4 ? AF_INET : AF_INET6;
}

static unsigned alen(uint8_t family)
{
	return family == 4 ? 4 : 16;
}

/* Reads the rest of request seq's answers (n bytes of them in nl->buf)
 * up to its NLMSG_DONE or error, so that the next request does not read
 * them: after a dump the kernel interrupted (NLM_F_DUMP_INTR, which libmnl
 * reports as EINTR, as links or routes come and go during the dump). */
static void nl_drain(struct nl *nl, unsigned seq, ssize_t n)
{
	while (n > 0) {
		int left = (int)n;

		for (const struct nlmsghdr *h = (const struct nlmsghdr *)nl->buf;
		     mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left))
			if (h->nlmsg_seq == seq &&
			    (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR))
				return;
		n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));
	}
}

/* Sends the message in nl->buf and runs cb over the answers until the ACK
 * or NLMSG_DONE; returns 0 or -errno (-EINTR: a dump was interrupted, try
 * again). */
static int nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg)
{
	unsigned seq = nlh->nlmsg_seq;
	int ret;

	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));

		if (n < 0)
			return -errno;
		ret = mnl_cb_run(nl->buf, (size_t)n, seq, nl->portid, cb, arg);
		if (ret < 0 && errno == EINTR) {
			nl_drain(nl, seq, n);
			return -EINTR;
		}
		if (ret < 0)
			return errno ? -errno : -EIO;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

static struct nlmsghdr *nl_msg(struct nl *nl, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	return nlh;
}

/* --- routes --- */

struct dump_ctx {
	uint8_t family;
	nl_route_cb cb;
	void *arg;
	int ret;
};

static int route_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, RTA_MAX) >= 0)
		tb[type] = a;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *ctx = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = {0};
	struct nl_route r = {0};

	if (rtm->rtm_family != af(ctx->family))
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr, tb);
	r.dst.family = ctx->family;
	r.dst.len = rtm->rtm_dst_len;
	if (tb[RTA_DST] && mnl_attr_get_payload_len(tb[RTA_DST]) >= alen(ctx->family))
		r.dst.addr = nl_addr_value(ctx->family, mnl_attr_get_payload(tb[RTA_DST]));
	r.type = rtm->rtm_type;
	r.protocol = rtm->rtm_protocol;
	r.table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (tb[RTA_OIF])
		r.oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) >= alen(ctx->family)) {
		r.has_gw = true;
		r.gw = nl_addr_value(ctx->family, mnl_attr_get_payload(tb[RTA_GATEWAY]));
	}
	r.onlink = rtm->rtm_flags & RTNH_F_ONLINK;
	/* Keep reading to the end of the dump even after cb said stop, so
	 * the next request does not read this dump's leftovers. */
	if (!ctx->ret)
		ctx->ret = ctx->cb(&r, ctx->arg);
	return MNL_CB_OK;
}

int nl_route_dump(struct nl *nl, uint8_t family, nl_route_cb cb, void *arg)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	struct dump_ctx ctx = {family, cb, arg, 0};
	int ret;

	rtm->rtm_family = (uint8_t)af(family);
	ret = nl_talk(nl, nlh, route_cb, &ctx);
	return ret ? ret : ctx.ret;
}

static int route_msg(struct nl *nl, const struct nl_route *r, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = nl_msg(nl, type, NLM_F_ACK | flags);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	uint8_t b[16];
	uint32_t table = r->table ? r->table : RT_TABLE_MAIN;

	rtm->rtm_family = (uint8_t)af(r->dst.family);
	rtm->rtm_dst_len = r->dst.len;
	rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = r->protocol;
	rtm->rtm_type = r->type ? r->type : RTN_UNICAST;
	rtm->rtm_scope = (rtm->rtm_type == RTN_UNICAST && !r->has_gw) ? RT_SCOPE_LINK
								       : RT_SCOPE_UNIVERSE;
	if (type == RTM_DELROUTE)
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	if (r->onlink)
		rtm->rtm_flags |= RTNH_F_ONLINK;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	nl_addr_bytes(r->dst.family, r->dst.addr, b);
	mnl_attr_put(nlh, RTA_DST, alen(r->dst.family), b);
	if (r->oif)
		mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)r->oif);
	if (r->has_gw) {
		nl_addr_bytes(r->dst.family, r->gw, b);
		mnl_attr_put(nlh, RTA_GATEWAY, alen(r->dst.family), b);
	}
	return nl_talk(nl, nlh, NULL, NULL);
}

int nl_route_add(struct nl *nl, const struct nl_route *r, bool replace)
{
	return route_msg(nl, r, RTM_NEWROUTE,
			 NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL));
}

int nl_route_del(struct nl *nl, const struct nl_route *r)
{
	struct nl_route d = *r;

	/* Match on destination, table, protocol and type only: the kernel
	 * would otherwise also require the same next hop. */
	d.oif = 0;
	d.has_gw = false;
	d.onlink = false;
	return route_msg(nl, &d, RTM_DELROUTE, 0);
}

/* --- links --- */

int nl_veth_add(struct nl *nl, const char *name, const char *peer, int netns_fd, unsigned mtu,
		const uint8_t *mac)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	struct nlattr *linfo, *data, *peer_nest;
	struct ifinfomsg *pifm;

	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	linfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer_nest = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	pifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifm));
	pifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (netns_fd >= 0)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	mnl_attr_nest_end(nlh, peer_nest);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linfo);
	return nl_talk(nl, nlh, NULL, NULL);
}

/* A request about one link by index: delete it, or change its flags. */
static int link_msg(struct nl *nl, uint16_t type, int ifindex, unsigned flags, unsigned change)
{
	struct nlmsghdr *nlh = nl_msg(nl, type, NLM_F_ACK);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));

	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	ifm->ifi_flags = flags;
	ifm->ifi_change = change;
	return nl_talk(nl, nlh, NULL, NULL);
}

int nl_link_del(struct nl *nl, int ifindex)
{
	return link_msg(nl, RTM_DELLINK, ifindex, 0, 0);
}

int nl_link_up(struct nl *nl, int ifindex)
{
	return link_msg(nl, RTM_NEWLINK, ifindex, IFF_UP, IFF_UP);
}

struct link_ctx {
	uint8_t *mac;
	unsigned *mtu;
};

static int link_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, IFLA_MAX) >= 0)
		tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_ctx *ctx = data;
	const struct nlattr *tb[IFLA_MAX + 1] = {0};

	mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr, tb);
	if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6)
		memcpy(ctx->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
	if (tb[IFLA_MTU])
		*ctx->mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
	return MNL_CB_OK;
}

int nl_link_info(struct nl *nl, int ifindex, uint8_t mac[6], unsigned *mtu)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_GETLINK, NLM_F_ACK);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	struct link_ctx ctx = {mac, mtu};

	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	memset(mac, 0, 6);
	*mtu = 0;
	return nl_talk(nl, nlh, link_cb, &ctx);
}

int nl_link_set_group(struct nl *nl, int ifindex, uint32_t group)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, NLM_F_ACK);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));

	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	mnl_attr_put_u32(nlh, IFLA_GROUP, group);
	return nl_talk(nl, nlh, NULL, NULL);
}

struct group_ctx {
	nl_link_cb cb;
	void *arg;
	int ret;
};

static int group_cb(const struct nlmsghdr *nlh, void *data)
{
	struct group_ctx *ctx = data;
	const struct nlattr *tb[IFLA_MAX + 1] = {0};
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	/* links proper only: a bridge port's notices (AF_BRIDGE) carry no group */
	if (ifm->ifi_family != AF_UNSPEC)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifm), link_attr, tb);
	if (!ctx->ret && tb[IFLA_IFNAME] && tb[IFLA_GROUP])
		ctx->ret = ctx->cb(ifm->ifi_index, mnl_attr_get_str(tb[IFLA_IFNAME]),
				   mnl_attr_get_u32(tb[IFLA_GROUP]), ctx->arg);
	return MNL_CB_OK;
}

int nl_link_dump(struct nl *nl, nl_link_cb cb, void *arg)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_GETLINK, NLM_F_DUMP);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	struct group_ctx ctx = {cb, arg, 0};
	int ret;

	ifm->ifi_family = AF_UNSPEC;
	/* no statistics: they are most of a link's answer */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	ret = nl_talk(nl, nlh, group_cb, &ctx);
	return ret ? ret : ctx.ret;
}

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
	return nlh->nlmsg_type == RTM_NEWLINK ? group_cb(nlh, data) : MNL_CB_OK;
}

int nl_link_events(struct nl *nl, nl_link_cb cb, void *arg)
{
	struct group_ctx ctx = {cb, arg, 0};
	ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));

	if (n < 0)
		return -errno;
	if (mnl_cb_run(nl->buf, (size_t)n, 0, 0, event_cb, &ctx) < 0)
		return errno ? -errno : -EIO;
	return ctx.ret;
}

/* --- addresses and neighbours --- */

int nl_addr_add(struct nl *nl, int ifindex, uint8_t family, u128 addr, unsigned len, bool nodad)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	uint8_t b[16];

	ifa->ifa_family = (uint8_t)af(family);
	ifa->ifa_prefixlen = (uint8_t)len;
	ifa->ifa_index = (uint32_t)ifindex;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	if (family == 6 && nodad)
		ifa->ifa_flags = IFA_F_NODAD;
	nl_addr_bytes(family, addr, b);
	mnl_attr_put(nlh, IFA_LOCAL, alen(family), b);
	mnl_attr_put(nlh, IFA_ADDRESS, alen(family), b);
	return nl_talk(nl, nlh, NULL, NULL);
}

int nl_neigh_set(struct nl *nl, int ifindex, uint8_t family, u128 addr, const uint8_t *mac,
		 bool add)
{
	struct nlmsghdr *nlh = nl_msg(nl, add ? RTM_NEWNEIGH : RTM_DELNEIGH,
				      NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0));
	struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	uint8_t b[16];

	nd->ndm_family = (uint8_t)af(family);
	nd->ndm_ifindex = ifindex;
	nd->ndm_flags = mac ? 0 : NTF_PROXY;
	nd->ndm_state = NUD_PERMANENT;
	nl_addr_bytes(family, addr, b);
	mnl_attr_put(nlh, NDA_DST, alen(family), b);
	if (mac)
		mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	return nl_talk(nl, nlh, NULL, NULL);
}

int sysctl_write(const char *path, const char *value)
{
	char full[256];
	int fd, ret = 0;
	size_t n = strlen(value);

	if (snprintf(full, sizeof(full), "/proc/sys/%s", path) >= (int)sizeof(full))
		return -ENAMETOOLONG;
	fd = open(full, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, n) != (ssize_t)n)
		ret = -errno;
	close(fd);
	return ret;
}
