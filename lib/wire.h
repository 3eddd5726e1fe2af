/* SPDX-License-Identifier: MIT */
#ifndef LARCH_WIRE_H
#define LARCH_WIRE_H
/*
 * DOC: how a workload is wired to its host (shared by larch-cni and the agent)
 *
 * A pod's interface is one end of a veth pair; the host end is named
 * "lx" + 12 hex digits of a hash of the endpoint's handle, so the agent finds
 * the interface of an endpoint from the handle alone, with no local state.
 * The pod holds its address as a /32 (/128) and a default route through a
 * link-local gateway: 169.254.1.1 for IPv4, fe80::ecee:eeff:feee:eeee (the
 * EUI-64 link-local of the host end's MAC ee:ee:ee:ee:ee:ee) for IPv6. The
 * pod gets a permanent neighbour entry for each gateway, so it never has to
 * resolve them; the host end also answers ARP by proxy (proxy_arp, no delay),
 * as Calico does. The host reaches the pod by a /32 (/128) route through the
 * host end. The same gateway on every veth costs nothing: no address is ever
 * configured for it on the host.
 */
#include <net/if.h>
#include <stdint.h>

#include "prefix.h"

#define WIRE_IF_PREFIX "lx"
#define WIRE_GW4 ((u128)0xa9fe0101U) /* 169.254.1.1 */
extern const uint8_t wire_host_mac[6];
extern const u128 wire_gw6;

/* The host end's name for an endpoint handle; out holds IFNAMSIZ bytes. */
void wire_host_ifname(const char *handle, char out[IFNAMSIZ]);

#endif
