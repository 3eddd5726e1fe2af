#!/usr/bin/python3
"""Expected vs actual Larch routes of a host in the namespace cluster.

usage: routes.py LARCHD_SOCKET HOST NSP
Prints one line per family: "v4 expected=N actual=M" and exits 1 when they
differ. The expectation follows docs/agent.md: local endpoint addresses, own
blocks, peers' blocks (IPv4: one via route per block; IPv6: the rack prefix
on-link once, because hosts register an IPv4 address), one route per other rack.
"""
import json, os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unixhttp import UnixHTTP  # noqa: E402

def get(sock, path):
    c = UnixHTTP(sock)
    c.request("GET", path)
    return json.loads(c.getresponse().read())

sock, host, nsp = sys.argv[1:4]
hosts = {h["name"]: h for h in get(sock, "/v1/hosts")["items"]}
me = hosts[host]
blocks = get(sock, "/v1/blocks")["items"]
eps = get(sock, "/v1/endpoints?host=" + host)["items"]
groups = {g["name"]: g for g in get(sock, "/v1/groups")["items"]}
rc = 0
for fam, space in ((4, "v4"), (6, "v6")):
    local = sum(1 for e in eps for a in e.get("addresses", []) if a["space"] == space)
    own = sum(1 for b in blocks if b["space"] == space and b.get("host") == host)
    peers = [b for b in blocks if b["space"] == space and b.get("host") not in (None, host)
             and hosts[b["host"]]["group"] == me["group"]]
    peer_routes = len(peers) if fam == 4 else (1 if peers else 0)
    siblings = [g for g in groups.values() if g.get("parent") == groups[me["group"]].get("parent")
                and g["name"] != me["group"] and space in g.get("prefixes", {})]
    expected = local + own + peer_routes + len(siblings)
    out = subprocess.run(["ip", "netns", "exec", f"{nsp}-{host}", "ip", "-%d" % fam, "-j",
                          "route", "show", "proto", "201"], capture_output=True, text=True,
                         check=True).stdout
    actual = len(json.loads(out or "[]"))
    print(f"{host} {space} expected={expected} (endpoints {local}, own blocks {own}, "
          f"peers {peer_routes}, other racks {len(siblings)}) actual={actual}")
    if expected != actual:
        rc = 1
sys.exit(rc)
