# SPDX-License-Identifier: MIT
"""Concurrent clients: the same handle from many clients at once, parallel
allocations on one host, racing binds of one endpoint, racing group creation.
Checked by outcome (statuses, addresses, revisions), never by timing."""
import threading

from conftest import check_blocks_agree, check_nesting, endpoint_body, make_topology, net


def run_threads(n, fn):
    out = [None] * n
    errors = []

    def wrap(i):
        try:
            out[i] = fn(i)
        except Exception as e:  # reported below, not lost in the thread
            errors.append(repr(e))

    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts), "a client thread hangs"
    assert not errors, errors
    return out


def test_same_handle_from_many_clients(larchd, api):
    make_topology(api)
    rev = api.get("/healthz")[1]["revision"]

    def go(i):
        c = larchd.client()
        try:
            return c.post("/v1/endpoints", endpoint_body("same:eth0", host="h3"))
        finally:
            c.close()

    res = run_threads(8, go)
    assert sorted(st for st, _ in res) == [200] * 7 + [201], res
    assert len({str(body["addresses"]) for _, body in res}) == 1
    assert len(api.get("/v1/endpoints")[1]["items"]) == 1
    assert api.get("/healthz")[1]["revision"] == rev + 1


def test_parallel_allocations_one_host(larchd, api):
    make_topology(api)
    rev = api.get("/healthz")[1]["revision"]

    def go(i):
        c = larchd.client()
        got = []
        try:
            for k in range(30):
                st, ep = c.post("/v1/endpoints", endpoint_body("par-%d-%d" % (i, k), host="h1"))
                assert st == 201, ep
                got.append(ep)
        finally:
            c.close()
        return got

    eps = [e for got in run_threads(8, go) for e in got]
    held = [(a["space"], a["address"]) for e in eps for a in e["addresses"]]
    assert len(held) == len(set(held)) == 480
    listed = api.get("/v1/endpoints")[1]["items"]
    assert sorted(map(str, listed)) == sorted(map(str, eps))
    check_blocks_agree(api, listed, api.get("/v1/blocks")[1]["items"])
    assert api.get("/healthz")[1]["revision"] == rev + 240


def test_racing_binds(larchd, api):
    make_topology(api)
    for h in ("m0", "m1"):
        assert api.post("/v1/endpoints", endpoint_body(h, "red", "app", None))[0] == 201
    hosts = ["h1", "h2", "h3", "h4", None]

    def go(i):
        c = larchd.client()
        try:
            for k in range(25):
                st, ep = c.post("/v1/endpoints/m%d/bind" % (k % 2),
                                {"host": hosts[(i + k) % len(hosts)]})
                assert st == 200, ep
                assert ep["host"] == hosts[(i + k) % len(hosts)] or ep["host"] in hosts
        finally:
            c.close()

    run_threads(6, go)
    listed = api.get("/v1/endpoints")[1]["items"]
    for e in listed:
        assert len(e["addresses"]) == (2 if e["host"] else 0), e
    check_blocks_agree(api, listed, api.get("/v1/blocks")[1]["items"])
    # with cool-down 0, only the blocks of the final placement are left
    blocks = api.get("/v1/blocks")[1]["items"]
    assert {b["host"] for b in blocks} == {e["host"] for e in listed if e["host"]}


def test_racing_group_creation(larchd, api):
    make_topology(api)

    def go(i):
        c = larchd.client()
        try:
            return c.post("/v1/groups", {"name": "race%d" % i, "parent": "zone",
                                         "capacity": 256 if i % 2 else 16})
        finally:
            c.close()

    res = run_threads(10, go)
    assert all(st == 201 for st, _ in res), res
    groups = {g["name"]: g for g in api.get("/v1/groups")[1]["items"]}
    check_nesting(groups, {"v4": "10.64.0.0/16", "v6": "fd10::/48"})
    for st, g in res:
        assert net(g["prefixes"]["v4"]).num_addresses == (256 if g["capacity"] == 256 else 16)
