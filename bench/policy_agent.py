#!/usr/bin/python3
"""End to end: larchd holds the world of bench/policy_world.py, a running
larch-agent (host h1) keeps its ruleset, and each change goes through
larchd's API; the time counted is from the request until the agent reports
the new ruleset in force (its larch_agent_firewall_applies_total grows).

usage: policy_agent.py LARCHD_SOCKET setup LOCAL POLICIES
       policy_agent.py LARCHD_SOCKET measure AGENT_SOCKET ROUNDS LOCAL POLICIES

`setup` creates the space, group, 10 hosts, 100 tenants and namespaces,
2 x LOCAL endpoints (LOCAL on h1) and POLICIES NetworkPolicies, 8
connections in parallel. `measure` runs ROUNDS rounds of: one endpoint added
on h1, one added on h2 (a peer of policies compiled on h1: its address joins
selector sets), one policy's port changed, one policy added (the agent
compiles the whole ruleset again and applies the difference), then all four
undone (each undo waited for too, not counted); it prints one line per case
per round and the medians.
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "netns"))
from policy_load import run  # noqa: E402
from policy_world import HOSTS, NS, endpoint, policy  # noqa: E402
from unixhttp import UnixHTTP  # noqa: E402

LIMIT_S = 60


def setup(sock, nlocal, npol):
    run(sock, [("POST", "/v1/spaces", {"name": "v4", "cidr": "10.64.0.0/12"})], 1)
    run(sock, [("POST", "/v1/groups", {"name": "g", "capacity": 1048576})], 1)
    reqs = [("POST", "/v1/hosts", {"name": "h%d" % (i + 1), "address": "192.168.0.%d" % (i + 1),
                                   "group": "g"}) for i in range(HOSTS)]
    reqs += [("POST", "/v1/tenants", {"name": "t%d" % i, "isolation": "segment"}) for i in range(NS)]
    reqs += [("POST", "/v1/namespaces", {"name": "ns%d" % i, "labels": {"team": "team%d" % (i % 10)}})
             for i in range(NS)]
    run(sock, reqs)
    run(sock, [("POST", "/v1/tenants/t%d/segments" % i, {"name": "s"}) for i in range(NS)])
    eps = [endpoint(i, "h1" if i < nlocal else "h%d" % (2 + i % (HOSTS - 1))) for i in range(2 * nlocal)]
    run(sock, [("POST", "/v1/endpoints", {"endpoints": eps[i:i + 1000]}) for i in range(0, len(eps), 1000)])
    run(sock, [("POST", "/v1/policies", policy(k)) for k in range(npol)])


class Agent:
    def __init__(self, sock):
        self.c = UnixHTTP(sock, timeout=10)

    def metric(self, name):
        self.c.request("GET", "/metrics")
        for line in self.c.getresponse().read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        sys.exit("policy_agent: the agent reports no " + name)

    def applies(self):
        return int(self.metric("larch_agent_firewall_applies_total"))


def timed(larchd, agent, method, path, body):
    """ms from sending the request until the agent has applied a ruleset,
    and until larchd answered (the change durable).
    Each change starts from an agent at rest: the pass of the change before
    (its routes, after the firewall) has ended."""
    time.sleep(0.05)
    before = agent.applies()
    t0 = time.monotonic()
    larchd.request(method, path, json.dumps(body) if body is not None else None,
                   {"Content-Type": "application/json"})
    r = larchd.getresponse()
    data = r.read()
    t1 = time.monotonic()
    if r.status >= 300:
        sys.exit("policy_agent: %s %s: %d %s" % (method, path, r.status, data[:200]))
    while agent.applies() == before:
        if time.monotonic() - t0 > LIMIT_S:
            sys.exit("policy_agent: %s %s: no ruleset applied within %d s" % (method, path, LIMIT_S))
        time.sleep(0.0005)
    return (time.monotonic() - t0) * 1000, (t1 - t0) * 1000


def measure(sock, agent_sock, rounds, nlocal, npol):
    larchd, agent = UnixHTTP(sock, timeout=60), Agent(agent_sock)
    res, acks, parts = {}, {}, {}
    for r in range(rounds):
        i = 2 * nlocal + 2 * r  # new endpoints, as endpoint(i) of the world
        local, remote = endpoint(i, "h1"), endpoint(i + 1, "h2")
        local["handle"], remote["handle"] = "new-%d:eth0" % i, "new-%d:eth0" % (i + 1)
        remote["labels"] = {"app": "app0"}  # a peer of policies in every team's namespaces
        pol = policy(r)
        cases = [
            ("endpoint added on h1", "POST", "/v1/endpoints", local),
            ("endpoint added on h2", "POST", "/v1/endpoints", remote),
            ("policy port changed", "POST", "/v1/policies", policy(r, 7)),
            ("policy added", "POST", "/v1/policies", policy(npol + r)),
        ]
        for name, method, path, body in cases:
            ms, ack = timed(larchd, agent, method, path, body)
            res.setdefault(name, []).append(ms)
            acks.setdefault(name, []).append(ack)
            c = 1000 * agent.metric("larch_agent_firewall_compile_seconds")
            a = 1000 * agent.metric("larch_agent_firewall_apply_seconds")
            parts.setdefault(name, []).append((c, a))
            part = "; the agent's compile %.1f ms, apply %.1f ms" % (c, a)
            print("round %d %s: %.1f ms (larchd answered after %.1f ms%s)" % (r + 1, name, ms, ack, part),
                  flush=True)
        timed(larchd, agent, "DELETE", "/v1/endpoints/" + local["handle"], None)
        timed(larchd, agent, "DELETE", "/v1/endpoints/" + remote["handle"], None)
        timed(larchd, agent, "POST", "/v1/policies", pol)
        added = policy(npol + r)["metadata"]
        timed(larchd, agent, "DELETE", "/v1/policies/NetworkPolicy/%s/%s" % (added["namespace"], added["name"]),
              None)
    for name, v in res.items():
        part = ""
        if parts.get(name):
            part = "; compile %.1f ms, apply %.1f ms (medians)" % (
                statistics.median(c for c, _ in parts[name]), statistics.median(a for _, a in parts[name]))
        print("%-22s median %8.1f ms  [%s]; larchd answered after %.1f ms (median)%s" %
              (name, statistics.median(v), " ".join("%.0f" % x for x in v),
               statistics.median(acks[name]), part))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[2] == "setup":
        setup(sys.argv[1], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 7 and sys.argv[2] == "measure":
        measure(sys.argv[1], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit(__doc__)
