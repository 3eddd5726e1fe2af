/* SPDX-License-Identifier: MIT */
/*
 * DOC: wiring a pod (larch-cni)
 *
 * ADD: a veth pair, the host end (lx...) here and the other end created
 * directly inside the pod's namespace under CNI_IFNAME; the host end gets the
 * gateway MAC, proxy ARP and no DAD, and a /32 (/128) route per address,
 * tagged with Larch's route protocol so the agent owns it from then on. Then,
 * inside the pod (setns), the addresses, the link-local gateway with a
 * permanent neighbour entry, and the default routes. The process returns to
 * its own namespace before it answers. See lib/wire.h for why this shape.
 */
#include "pod.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "nl.h"
#include "wire.h"

static int host_sysctls(const char *ifname)
{
	char path[128];
	int ret;

	snprintf(path, sizeof(path), "net/ipv4/conf/%s/proxy_arp", ifname);
	if ((ret = sysctl_write(path, "1")) < 0)
		return ret;
	snprintf(path, sizeof(path), "net/ipv4/neigh/%s/proxy_delay", ifname);
	if ((ret = sysctl_write(path, "0")) < 0)
		return ret;
	snprintf(path, sizeof(path), "net/ipv6/conf/%s/accept_dad", ifname);
	sysctl_write(path, "0"); /* absent when IPv6 is off: not an error */
	return 0;
}

int pod_host_route(struct nl *nl, int ifindex, const struct prefix *addr, uint8_t proto)
{
	struct nl_route r = {.dst = *addr, .type = NL_RT_UNICAST, .protocol = proto,
			     .oif = ifindex};

	r.dst.len = (uint8_t)prefix_bits(addr->family);
	return nl_route_add(nl, &r, true);
}

/* Inside the pod's namespace: addresses, gateway neighbours, routes. */
static int pod_inside(const struct pod_spec *ps, uint8_t mac[6], struct error *err)
{
	struct nl *nl = NULL;
	int ifindex, ret;
	char path[128];
	bool have4 = false, have6 = false;

	if ((ret = nl_open(&nl)) < 0) {
		error_set(err, -ret, 500, "io", "", "", "netlink in the pod: %s", strerror(-ret));
		return ret;
	}
	ifindex = (int)if_nametoindex(ps->ifname);
	if (!ifindex) {
		ret = -errno;
		error_set(err, ENODEV, 500, "io", "CNI_IFNAME", ps->ifname,
			  "%s: not in the pod after creating it", ps->ifname);
		goto out;
	}
	snprintf(path, sizeof(path), "net/ipv6/conf/%s/accept_dad", ps->ifname);
	sysctl_write(path, "0");
	for (size_t i = 0; i < ps->naddrs; i++) {
		const struct prefix *a = &ps->addrs[i];

		ret = nl_addr_add(nl, ifindex, a->family, a->addr, prefix_bits(a->family), true);
		if (ret < 0 && ret != -EEXIST) {
			error_set(err, -ret, 500, "io", "", "", "adding an address to %s: %s",
				  ps->ifname, strerror(-ret));
			goto out;
		}
		have4 |= a->family == 4;
		have6 |= a->family == 6;
	}
	if ((ret = nl_link_up(nl, ifindex)) < 0) {
		error_set(err, -ret, 500, "io", "", "", "setting %s up: %s", ps->ifname,
			  strerror(-ret));
		goto out;
	}
	for (uint8_t fam = 4; fam <= 6; fam += 2) {
		u128 gw = fam == 4 ? WIRE_GW4 : wire_gw6;
		struct nl_route link = {.dst = {.addr = gw, .family = fam,
						.len = (uint8_t)prefix_bits(fam)},
					.type = NL_RT_UNICAST, .protocol = 4 /* static */,
					.oif = ifindex};
		struct nl_route def = {.dst = {.family = fam}, .type = NL_RT_UNICAST,
				       .protocol = 4, .oif = ifindex, .has_gw = true, .gw = gw};

		if ((fam == 4 && !have4) || (fam == 6 && !have6))
			continue;
		ret = nl_neigh_set(nl, ifindex, fam, gw, wire_host_mac, true);
		if (!ret && fam == 4)
			ret = nl_route_add(nl, &link, true);
		if (!ret)
			ret = nl_route_add(nl, &def, true);
		if (ret < 0) {
			error_set(err, -ret, 500, "io", "", "", "IPv%u gateway route in the pod: %s",
				  fam, strerror(-ret));
			goto out;
		}
	}
	unsigned mtu;
	ret = nl_link_info(nl, ifindex, mac, &mtu);
	if (ret < 0)
		error_set(err, -ret, 500, "io", "", "", "reading %s: %s", ps->ifname,
			  strerror(-ret));
out:
	nl_close(nl);
	return ret;
}

/* Runs fn inside the namespace at netns_path and comes back. */
static int in_netns(const char *netns_path, int (*fn)(const struct pod_spec *, uint8_t *,
						      struct error *),
		    const struct pod_spec *ps, uint8_t *mac, struct error *err)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int target = open(netns_path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (self < 0 || target < 0) {
		ret = -errno;
		error_set(err, -ret, 404, "no_netns", "CNI_NETNS", netns_path, "%s: %s",
			  netns_path, strerror(-ret));
		goto out;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		ret = -errno;
		error_set(err, -ret, 500, "io", "CNI_NETNS", netns_path, "entering %s: %s",
			  netns_path, strerror(-ret));
		goto out;
	}
	ret = fn(ps, mac, err);
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Going on in the pod's namespace would wire the wrong host. */
		ret = -errno;
		error_set(err, -ret, 500, "io", "", "", "returning to the host namespace: %s",
			  strerror(-ret));
	}
out:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return ret;
}

int pod_add(const struct pod_spec *ps, struct pod_result *res, struct error *err)
{
	struct nl *nl = NULL;
	int netns = -1, ifindex, ret;
	char path[128];

	wire_host_ifname(ps->handle, res->host_ifname);
	memcpy(res->host_mac, wire_host_mac, 6);
	if ((ret = nl_open(&nl)) < 0)
		return error_set(err, -ret, 500, "io", "", "", "netlink: %s", strerror(-ret));
	netns = open(ps->netns, O_RDONLY | O_CLOEXEC);
	if (netns < 0) {
		ret = -errno;
		error_set(err, -ret, 404, "no_netns", "CNI_NETNS", ps->netns, "%s: %s", ps->netns,
			  strerror(-ret));
		goto out;
	}
	/* A retried ADD finds the host end of the first attempt: start over. */
	ifindex = (int)if_nametoindex(res->host_ifname);
	if (ifindex)
		nl_link_del(nl, ifindex);
	ret = nl_veth_add(nl, res->host_ifname, ps->ifname, netns, ps->mtu, wire_host_mac);
	if (ret < 0) {
		error_set(err, -ret, 500, "io", "CNI_IFNAME", ps->ifname,
			  "creating veth %s <-> %s in %s: %s", res->host_ifname, ps->ifname,
			  ps->netns, strerror(-ret));
		goto out;
	}
	ifindex = (int)if_nametoindex(res->host_ifname);
	if (!ifindex || (ret = host_sysctls(res->host_ifname)) < 0 ||
	    (ret = nl_link_up(nl, ifindex)) < 0) {
		ret = ret ? ret : -ENODEV;
		error_set(err, -ret, 500, "io", "", res->host_ifname, "setting up %s: %s",
			  res->host_ifname, strerror(-ret));
		goto undo;
	}
	snprintf(path, sizeof(path), "net/ipv6/conf/%s/forwarding", res->host_ifname);
	sysctl_write(path, "1");
	ret = in_netns(ps->netns, pod_inside, ps, res->pod_mac, err);
	if (ret < 0)
		goto undo;
	for (size_t i = 0; i < ps->naddrs; i++) {
		ret = pod_host_route(nl, ifindex, &ps->addrs[i], ps->proto);
		if (ret < 0) {
			error_set(err, -ret, 500, "io", "", res->host_ifname,
				  "host route to the pod via %s: %s", res->host_ifname,
				  strerror(-ret));
			goto undo;
		}
	}
	goto out;
undo:
	nl_link_del(nl, ifindex);
out:
	if (netns >= 0)
		close(netns);
	nl_close(nl);
	return ret;
}

int pod_del(const char *handle)
{
	char ifname[IFNAMSIZ];
	struct nl *nl;
	int ifindex, ret;

	wire_host_ifname(handle, ifname);
	ifindex = (int)if_nametoindex(ifname);
	if (!ifindex)
		return 0; /* already gone: DEL is idempotent */
	if ((ret = nl_open(&nl)) < 0)
		return ret;
	/* Deleting one end deletes the pair and every route through it. */
	ret = nl_link_del(nl, ifindex);
	nl_close(nl);
	return ret == -ENODEV ? 0 : ret;
}

struct route_find {
	const struct prefix *want;
	int oif;
	uint32_t table;
	bool found;
};

static int route_find_cb(const struct nl_route *r, void *arg)
{
	struct route_find *f = arg;

	if (r->dst.len == f->want->len && r->dst.addr == f->want->addr && r->oif == f->oif &&
	    r->table == f->table)
		f->found = true;
	return 0;
}

/*
 * Every pod address must have a host-length route through ifname in table
 * (the host route in main; in the pod, the kernel's local route of an
 * address configured on the interface). `what` words the error.
 */
static int routes_present(const struct pod_spec *ps, const char *ifname, uint32_t table,
			  const char *what, struct error *err)
{
	int oif = (int)if_nametoindex(ifname);
	struct nl *nl;
	int ret;

	if (!oif)
		return error_set(err, ENODEV, 404, "check", "interface", ifname,
				 "%s: no such interface (%s)", ifname, what);
	if ((ret = nl_open(&nl)) < 0)
		return error_set(err, -ret, 500, "io", "", "", "netlink: %s", strerror(-ret));
	for (size_t i = 0; i < ps->naddrs && !ret; i++) {
		struct prefix a = ps->addrs[i];
		struct route_find f = {&a, oif, table, false};
		char b[PREFIX_STRLEN];

		a.len = (uint8_t)prefix_bits(a.family);
		ret = nl_route_dump(nl, a.family, route_find_cb, &f);
		if (!ret && !f.found)
			ret = error_set(err, ENOENT, 404, "check", "ips", prefix_fmt(&a, b),
					"%s: missing on %s (%s)", b, ifname, what);
	}
	nl_close(nl);
	return ret;
}

static int check_inside(const struct pod_spec *ps, uint8_t *mac, struct error *err)
{
	(void)mac;
	return routes_present(ps, ps->ifname, 255 /* local */, "the pod's address", err);
}

int pod_check(const struct pod_spec *ps, struct error *err)
{
	char ifname[IFNAMSIZ];
	uint8_t mac[6];
	int ret;

	wire_host_ifname(ps->handle, ifname);
	ret = routes_present(ps, ifname, 254 /* main */, "the host route to the pod", err);
	return ret < 0 ? ret : in_netns(ps->netns, check_inside, ps, mac, err);
}
