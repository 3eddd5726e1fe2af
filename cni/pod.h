/* SPDX-License-Identifier: MIT */
#ifndef LARCH_CNI_POD_H
#define LARCH_CNI_POD_H
#include <net/if.h>
#include <stdint.h>

#include "prefix.h"

struct error;
struct nl;

struct pod_spec {
	const char *handle;   /* CNI_CONTAINERID:CNI_IFNAME */
	const char *netns;    /* CNI_NETNS */
	const char *ifname;   /* CNI_IFNAME */
	unsigned mtu;         /* 0: the kernel's default */
	uint8_t proto;        /* route protocol of Larch's routes */
	struct prefix addrs[4];
	size_t naddrs;
};

struct pod_result {
	char host_ifname[IFNAMSIZ];
	uint8_t host_mac[6];
	uint8_t pod_mac[6];
};

/* Wires the pod (see pod.c); on failure nothing is left behind. */
int pod_add(const struct pod_spec *ps, struct pod_result *res, struct error *err);
/* Removes the pod's veth pair (and so its routes); 0 when already gone. */
int pod_del(const char *handle);
/* Verifies the host end, the host routes and the pod's addresses. */
int pod_check(const struct pod_spec *ps, struct error *err);
/* The host route to one pod address through ifindex (replace). */
int pod_host_route(struct nl *nl, int ifindex, const struct prefix *addr, uint8_t proto);

#endif
