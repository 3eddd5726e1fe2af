# SPDX-License-Identifier: MIT
"""A seeded random sequence of API operations (LARCH_SEED=N to replay), mirrored
in a small reference model; after every step the invariants are checked through
the API, and failed requests must change nothing."""
import ipaddress
import os
import random

from conftest import make_topology, snapshot

STEPS = 400


def invariants(api, ref):
    items = api.get("/v1/endpoints")[1]["items"]
    assert {e["handle"]: e["host"] for e in items} == ref
    groups = {g["name"]: g for g in api.get("/v1/groups")[1]["items"]}
    hosts = {h["name"]: h for h in api.get("/v1/hosts")[1]["items"]}
    spaces = {s["name"]: s for s in api.get("/v1/spaces")[1]["items"]}
    held = set()
    for e in items:
        for a in e["addresses"]:
            addr, block = ipaddress.ip_address(a["address"]), ipaddress.ip_network(a["block"])
            space = ipaddress.ip_network(spaces[a["space"]]["cidr"])
            assert addr in block and block.subnet_of(space)
            assert addr != space.network_address
            if space.version == 4:
                assert addr != space.broadcast_address
            for r in spaces[a["space"]]["reserved"]:
                assert addr not in ipaddress.ip_network(r)
            gp = ipaddress.ip_network(groups[hosts[e["host"]]["group"]]["prefixes"][a["space"]])
            assert block.subnet_of(gp)
            assert (a["space"], addr) not in held
            held.add((a["space"], addr))
    # group prefixes nested and siblings disjoint
    for g in groups.values():
        for sp, p in g["prefixes"].items():
            p = ipaddress.ip_network(p)
            if g["parent"]:
                assert p.subnet_of(ipaddress.ip_network(groups[g["parent"]]["prefixes"][sp]))
            for o in groups.values():
                if o is not g and o["parent"] == g["parent"]:
                    assert not p.overlaps(ipaddress.ip_network(o["prefixes"][sp]))


def test_random_operations(api):
    seed = int(os.environ.get("LARCH_SEED", random.randrange(1 << 30)))
    print("LARCH_SEED=%d" % seed)
    rng = random.Random(seed)
    # a small v4 space so that exhaustion happens too
    assert api.post("/v1/spaces", {"name": "v4", "cidr": "10.64.0.0/22", "block_size": 28,
                                   "reserved": ["10.64.0.1", "10.64.1.0/28"]})[0] == 201
    assert api.post("/v1/groups", {"name": "zone", "capacity": 1024})[0] == 201
    for r in ("rack1", "rack2"):
        assert api.post("/v1/groups", {"name": r, "parent": "zone", "capacity": 64})[0] == 201
    hosts = []
    for i in range(4):
        hosts.append("h%d" % i)
        assert api.post("/v1/hosts", {"name": "h%d" % i, "address": "192.0.2.%d" % (i + 1),
                                      "group": "rack%d" % (i % 2 + 1)})[0] == 201
    for t, s in (("blue", "web"), ("blue", "db"), ("red", "app")):
        api.post("/v1/tenants", {"name": t})
        assert api.post("/v1/tenants/%s/segments" % t, {"name": s})[0] == 201
    segs = [("blue", "web"), ("blue", "db"), ("red", "app")]
    ref = {}
    exhausted = 0
    for step in range(STEPS):
        op = rng.random()
        h = "e%d" % rng.randrange(60)
        if op < 0.45:
            t, s = rng.choice(segs)
            host = rng.choice(hosts + [None])
            before = snapshot(api) if h in ref else None
            st, body = api.post("/v1/endpoints", {"handle": h, "tenant": t, "segment": s,
                                                  "host": host})
            if st == 201:
                assert h not in ref
                ref[h] = host
            elif st == 200:
                assert ref[h] == host
            else:
                assert st == 409, (step, st, body)
                exhausted += body["error"]["code"] == "exhausted"
                if before:
                    assert snapshot(api) == before
        elif op < 0.7:
            st, _ = api.delete("/v1/endpoints/" + h)
            assert st == (204 if h in ref else 404)
            ref.pop(h, None)
        elif op < 0.9:
            host = rng.choice(hosts + [None])
            before = snapshot(api)
            st, body = api.post("/v1/endpoints/%s/bind" % h, {"host": host})
            if h not in ref:
                assert st == 404
            elif st == 200:
                ref[h] = host
            else:
                assert st == 409 and body["error"]["code"] == "exhausted", body
                exhausted += 1
            if st != 200:
                assert snapshot(api) == before
        else:
            before = snapshot(api)
            bad = rng.choice([{"handle": h, "tenant": "nope", "segment": "web"},
                              {"handle": h, "tenant": "blue", "segment": "web", "host": "zz"},
                              {"handle": "", "tenant": "blue", "segment": "web"},
                              {"handle": h, "tenant": "blue", "segment": "web", "x": 1}])
            st, _ = api.post("/v1/endpoints", bad)
            assert 400 <= st < 500
            assert snapshot(api) == before
        if step % 10 == 0 or step == STEPS - 1:
            invariants(api, ref)
    print("endpoints at the end: %d, exhausted answers: %d" % (len(ref), exhausted))
    assert exhausted > 0  # the sequence did run the space out
