/* SPDX-License-Identifier: MIT */
#ifndef LARCH_NL_H
#define LARCH_NL_H
/*
 * DOC: rtnetlink, the little the agent and the CNI plugin need (libmnl)
 *
 * Routes (dump, add/replace, delete), veth pairs, addresses, link state and
 * proxy neighbour entries, each one request and its acknowledgement on one
 * NETLINK_ROUTE socket bound to the namespace the process was in when the
 * socket was opened. Every function returns 0 or -errno (the kernel's own
 * errno from the NLMSG_ERROR answer) and never logs: the caller knows what
 * it was trying to do and says so.
 *
 * Routes carry their rtm_protocol: Larch tags every route it installs with
 * its own protocol number (NL_PROTO_LARCH by default) and only ever removes
 * routes carrying that number (the way BIRD uses RTPROT_BIRD).
 */
#include <stdbool.h>
#include <stdint.h>

#include "prefix.h"

#define NL_PROTO_LARCH 201 /* "larch" in rt_protos; configurable in the agent */

struct nl;

enum nl_route_type { NL_RT_UNICAST = 1, NL_RT_BLACKHOLE = 6, NL_RT_UNREACHABLE = 7 };

struct nl_route {
	struct prefix dst;     /* family 4 or 6 */
	uint8_t type;          /* enum nl_route_type (the kernel's RTN_*) */
	uint8_t protocol;
	uint32_t table;        /* 0 means main (254) */
	int oif;               /* 0: none */
	bool has_gw;
	u128 gw;               /* same family as dst */
	bool onlink;           /* RTNH_F_ONLINK: gateway is on oif without a subnet */
};

/* Opens a NETLINK_ROUTE socket in the current network namespace. */
int nl_open(struct nl **out);
void nl_close(struct nl *nl);

/* Calls cb for every route of the family (4 or 6) in every table; a cb that
 * returns non-zero stops the dump and its value is returned. */
typedef int (*nl_route_cb)(const struct nl_route *r, void *arg);
int nl_route_dump(struct nl *nl, uint8_t family, nl_route_cb cb, void *arg);

/* NLM_F_REPLACE when replace, else NLM_F_EXCL (-EEXIST if present). */
int nl_route_add(struct nl *nl, const struct nl_route *r, bool replace);
/* Deletes the route matching dst, table, protocol and type. */
int nl_route_del(struct nl *nl, const struct nl_route *r);

/*
 * Creates a veth pair: `name` in this namespace and `peer` in the namespace
 * of netns_fd (or here when netns_fd < 0). mtu 0 keeps the default; mac
 * (6 bytes, may be NULL) is the address of `name`.
 */
int nl_veth_add(struct nl *nl, const char *name, const char *peer, int netns_fd, unsigned mtu,
		const uint8_t *mac);
int nl_link_del(struct nl *nl, int ifindex);
int nl_link_up(struct nl *nl, int ifindex);

/* Adds addr/len to ifindex; for IPv6 with nodad the address is usable at
 * once (IFA_F_NODAD). -EEXIST when it is there already. */
int nl_addr_add(struct nl *nl, int ifindex, uint8_t family, u128 addr, unsigned len, bool nodad);

/* Adds (replacing) or removes a permanent neighbour entry: with mac, a static
 * entry (`ip neigh replace ADDR lladdr MAC dev IF`); with mac NULL, a proxy
 * entry (`ip neigh add proxy ADDR dev IF`). */
int nl_neigh_set(struct nl *nl, int ifindex, uint8_t family, u128 addr, const uint8_t *mac,
		 bool add);

/* Sets the link's group (IFLA_GROUP, `ip link set dev IF group N`). */
int nl_link_set_group(struct nl *nl, int ifindex, uint32_t group);
/* Calls cb for every link: index, name, group; a cb that returns non-zero
 * stops the dump and its value is returned. */
typedef int (*nl_link_cb)(int ifindex, const char *name, uint32_t group, void *arg);
int nl_link_dump(struct nl *nl, nl_link_cb cb, void *arg);
/* A socket subscribed to link events; nl_link_events() waits for the next
 * ones and calls cb for each link added or changed. -ENOBUFS: events were
 * lost (the socket overflowed), dump the links to catch up. */
int nl_open_link_events(struct nl **out);
int nl_link_events(struct nl *nl, nl_link_cb cb, void *arg);

/* The link's hardware address (6 bytes) and MTU, by index. */
int nl_link_info(struct nl *nl, int ifindex, uint8_t mac[6], unsigned *mtu);

/* Address bytes in network order (4 or 16 bytes into out) and back. */
void nl_addr_bytes(uint8_t family, u128 addr, uint8_t *out);
u128 nl_addr_value(uint8_t family, const uint8_t *in);

/* Writes value to /proc/sys/<path> of the current namespace. */
int sysctl_write(const char *path, const char *value);

#endif
