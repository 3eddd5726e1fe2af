#!/usr/bin/python3
"""Generate a policy world for bench/policy.sh: larchd's lists as the agent
reads them, for `larch-agent --render`.

usage: policy_world.py LOCAL_ENDPOINTS POLICIES [CHANGE]
  100 namespaces (one tenant/segment each), endpoints spread over them with
  one of 10 app labels; half on the local host h1, half on 9 other hosts.
  Each NetworkPolicy selects one app of its namespace and allows TCP on one
  port from another app of the same namespace, and from a namespace selector.
  CHANGE=1 adds one more local endpoint, CHANGE=policy changes the port of
  one policy (the incremental cases).
  Policy k's port is 1000 + k % 5000: the 12 policies of an app (with 12,000)
  repeat a (peer, port) pair, 24,000 rules of which 10,000 differ (the
  compiler writes a repeated rule once). With WORLD_PORTS=distinct in the
  environment the port is 1000 + k: no two rules alike.
bench/policy_agent.py loads the same world into larchd (world() below).
"""
import json
import os
import sys

NS, APPS, HOSTS = 100, 10, 10
DISTINCT = os.environ.get("WORLD_PORTS", "") == "distinct"


def endpoint(i, host):
    """Endpoint i of the world (without its address)."""
    ns = i % NS
    return {"handle": "pod-%d:eth0" % i, "tenant": "t%d" % ns, "segment": "s",
            "host": host, "namespace": "ns%d" % ns,
            "labels": {"app": "app%d" % ((i // NS) % APPS)}}


def policy(k, port_shift=0):
    """NetworkPolicy k of the world; port_shift changes its port."""
    ns = k % NS
    app = (k // NS) % APPS
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "p%d" % k, "namespace": "ns%d" % ns},
            "spec": {"podSelector": {"matchLabels": {"app": "app%d" % app}},
                     "ingress": [{"from": [
                         {"podSelector": {"matchLabels": {"app": "app%d" % ((app + 1) % APPS)}}},
                         {"namespaceSelector": {"matchLabels": {"team": "team%d" % (k % 10)}},
                          "podSelector": {"matchLabels": {"app": "app0"}}}],
                                  "ports": [{"protocol": "TCP",
                                             "port": 1000 + (k if DISTINCT else k % 5000) + port_shift}]}]}}


def world(nlocal, npol, extra=False, change_policy=False):
    tenants = [{"name": "t%d" % i, "isolation": "segment"} for i in range(NS)]
    hosts = [{"name": "h%d" % (i + 1), "address": "192.168.0.%d" % (i + 1)} for i in range(HOSTS)]
    blocks, eps = [], []
    total = 2 * nlocal + (1 if extra else 0)
    for i in range(total):
        local = i < nlocal or i == total - 1 and extra
        e = endpoint(i, "h1" if local else "h%d" % (2 + i % (HOSTS - 1)))
        a = 0x0A400000 + i + 1  # 10.64.0.0/12 and up
        e["addresses"] = [{"address": "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)}]
        eps.append(e)
    for i in range(0, total, 16):
        a = 0x0A400000 + i
        blocks.append({"cidr": "%d.%d.%d.%d/28" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255),
                       "tenant": "t%d" % ((i // 16) % NS), "segment": "s", "host": "h1"})
    namespaces = [{"kind": "Namespace", "metadata": {"name": "ns%d" % i,
                                                     "labels": {"team": "team%d" % (i % 10)}}}
                  for i in range(NS)]
    pols = [policy(k, 7 if change_policy and k == 0 else 0) for k in range(npol)]
    return {"host": "h1", "tenants": {"items": tenants}, "hosts": {"items": hosts},
            "blocks": {"items": blocks}, "endpoints": {"items": eps},
            "policies": {"items": pols}, "namespaces": {"items": namespaces}}


if __name__ == "__main__":
    change = sys.argv[3] if len(sys.argv) > 3 else ""
    json.dump(world(int(sys.argv[1]), int(sys.argv[2]), change == "1", change == "policy"), sys.stdout)
