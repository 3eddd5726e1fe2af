# SPDX-License-Identifier: MIT
"""The API's objects against a real larchd: allocation, aggregation, idempotency,
deferred allocation, release and cool-down, lists, tree, health, metrics."""
import ipaddress
import re

from conftest import make_topology


def net(s):
    return ipaddress.ip_network(s)


def test_spaces_groups_nesting(api):
    make_topology(api)
    st, v4 = api.get("/v1/spaces/v4")
    assert st == 200 and v4["block_size"] == 28 and v4["family"] == 4
    st, v6 = api.get("/v1/spaces/v6")
    assert v6["block_size"] == 124 and v6["family"] == 6
    groups = {g["name"]: g for g in api.get("/v1/groups")[1]["items"]}
    for space, cidr in (("v4", "10.64.0.0/16"), ("v6", "fd10::/48")):
        zone = net(groups["zone"]["prefixes"][space])
        assert zone.subnet_of(net(cidr))
        assert zone.num_addresses >= 16384
        r1, r2 = net(groups["rack1"]["prefixes"][space]), net(groups["rack2"]["prefixes"][space])
        assert r1.subnet_of(zone) and r2.subnet_of(zone) and not r1.overlaps(r2)
        # default size: 1/16 of the parent
        assert r1.prefixlen == zone.prefixlen + 4
    assert sorted(groups["zone"]["children"]) == ["rack1", "rack2"]


def test_allocation_aggregates(api):
    make_topology(api)
    groups = {g["name"]: g for g in api.get("/v1/groups")[1]["items"]}
    hosts = {h["name"]: h for h in api.get("/v1/hosts")[1]["items"]}
    seen = set()
    for i in range(60):
        host = "h%d" % (i % 4 + 1)
        tenant, seg = (("blue", "web"), ("blue", "db"), ("red", "app"))[i % 3]
        st, ep = api.post("/v1/endpoints", {"handle": "p%d" % i, "tenant": tenant,
                                            "segment": seg, "host": host, "kind": "pod"})
        assert st == 201, ep
        assert {a["space"] for a in ep["addresses"]} == {"v4", "v6"}  # dual stack
        for a in ep["addresses"]:
            addr, block = ipaddress.ip_address(a["address"]), net(a["block"])
            assert addr in block
            assert (a["space"], addr) not in seen
            seen.add((a["space"], addr))
            group = hosts[host]["group"]
            assert block.subnet_of(net(groups[group]["prefixes"][a["space"]]))
    blocks = api.get("/v1/blocks")[1]["items"]
    # a block belongs to exactly one (host, tenant, segment)
    for b in blocks:
        eps = [e for e in api.get("/v1/endpoints?host=%s" % b["host"])[1]["items"]
               if any(a["block"] == b["cidr"] for a in e["addresses"])]
        assert eps and all((e["tenant"], e["segment"]) == (b["tenant"], b["segment"]) for e in eps)
        assert b["used"] == len(eps)


def test_idempotent_handle(api):
    make_topology(api)
    body = {"handle": "pod-a:eth0", "tenant": "blue", "segment": "web", "host": "h1"}
    st1, a = api.post("/v1/endpoints", body)
    st2, b = api.post("/v1/endpoints", body)
    assert (st1, st2) == (201, 200)
    assert a["addresses"] == b["addresses"]
    st, err = api.post("/v1/endpoints", dict(body, host="h2"))
    assert st == 409 and err["error"]["code"] == "conflict" and err["error"]["field"] == "host"
    assert len(api.get("/v1/endpoints")[1]["items"]) == 1
    # release by handle
    assert api.delete("/v1/endpoints/pod-a:eth0")[0] == 204
    assert api.get("/v1/endpoints/pod-a:eth0")[0] == 404
    assert api.delete("/v1/endpoints/pod-a:eth0")[0] == 404


def test_deferred_allocation_and_rebind(api):
    make_topology(api)
    st, ep = api.post("/v1/endpoints", {"handle": "port-1", "tenant": "red", "segment": "app"})
    assert st == 201 and ep["host"] is None and ep["addresses"] == []
    st, ep = api.post("/v1/endpoints/port-1/bind", {"host": "h1"})
    assert st == 200 and ep["host"] == "h1" and len(ep["addresses"]) == 2
    h1_blocks = set(api.get("/v1/hosts/h1")[1]["blocks"])
    assert {a["block"] for a in ep["addresses"]} <= h1_blocks
    # same host: no-op
    st, same = api.post("/v1/endpoints/port-1/bind", {"host": "h1"})
    assert st == 200 and same["addresses"] == ep["addresses"]
    # move to a host of the other rack
    st, moved = api.post("/v1/endpoints/port-1/bind", {"host": "h3"})
    assert st == 200 and moved["host"] == "h3"
    rack2 = api.get("/v1/groups/rack2")[1]["prefixes"]
    for a in moved["addresses"]:
        assert net(a["block"]).subnet_of(net(rack2[a["space"]]))
    # unbind keeps the endpoint, releases the addresses
    st, un = api.post("/v1/endpoints/port-1/bind", {"host": None})
    assert st == 200 and un["host"] is None and un["addresses"] == []
    assert api.get("/v1/endpoints/port-1")[0] == 200


def test_release_cools_block(larchd_factory):
    d = larchd_factory(["--block-cooldown", "300"])
    api = d.client()
    make_topology(api, v6=None)
    st, ep = api.post("/v1/endpoints", {"handle": "x", "tenant": "blue", "segment": "web",
                                        "host": "h1"})
    block = ep["addresses"][0]["block"]
    assert api.delete("/v1/endpoints/x")[0] == 204
    b = [b for b in api.get("/v1/blocks")[1]["items"] if b["cidr"] == block]
    assert b and b[0]["state"] == "cooling" and b[0]["cool_until"] > 0
    # a new allocation does not reuse the cooling block
    st, ep2 = api.post("/v1/endpoints", {"handle": "y", "tenant": "blue", "segment": "web",
                                         "host": "h1"})
    assert ep2["addresses"][0]["block"] != block
    assert ep2["addresses"][0]["address"] != ep["addresses"][0]["address"]


def test_patch_parent_filters(api):
    make_topology(api)
    assert api.post("/v1/endpoints", {"handle": "vm-1", "tenant": "red", "segment": "app",
                                      "host": "h2", "kind": "vm"})[0] == 201
    st, c = api.post("/v1/endpoints", {"handle": "c-1", "tenant": "red", "segment": "app",
                                       "host": "h2", "kind": "container", "parent": "vm-1",
                                       "labels": {"app": "x"}})
    assert st == 201 and c["parent"] == "vm-1"
    st, p = api.patch("/v1/endpoints/c-1", {"name": "nested", "labels": {"app": "y"}})
    assert st == 200 and p["name"] == "nested" and p["labels"] == {"app": "y"}
    assert p["addresses"] == c["addresses"]
    items = api.get("/v1/endpoints?host=h2&tenant=red")[1]["items"]
    assert sorted(e["handle"] for e in items) == ["c-1", "vm-1"]
    assert api.get("/v1/endpoints?host=h1")[1]["items"] == []
    st, err = api.post("/v1/endpoints", {"handle": "c-2", "tenant": "red", "segment": "app",
                                         "host": "h2", "parent": "nope"})
    assert st == 404 and err["error"]["field"] == "parent"


def test_tree_health_metrics(api):
    make_topology(api)
    for i in range(5):
        api.post("/v1/endpoints", {"handle": "t%d" % i, "tenant": "blue", "segment": "web",
                                   "host": "h1"})
    st, tree = api.get("/v1/tree")
    assert st == 200
    v4 = [s for s in tree["spaces"] if s["name"] == "v4"][0]
    zone = v4["groups"][0]
    rack1 = [g for g in zone["groups"] if g["name"] == "rack1"][0]
    h1 = [h for h in rack1["hosts"] if h["name"] == "h1"][0]
    assert sum(b["used"] for b in h1["blocks"]) == 5
    st, h = api.get("/healthz")
    assert st == 200 and h["status"] == "ok" and h["revision"] > 0
    st, text = api.get("/metrics")
    assert st == 200
    for name in ("larch_allocations_total", "larch_releases_total", "larch_endpoints",
                 "larch_blocks", "larch_store_commits_total",
                 "larch_http_request_duration_seconds_bucket", "larch_http_requests_total"):
        assert name in text, name
    allocs = int(re.search(r"^larch_allocations_total (\d+)$", text, re.M).group(1))
    api.post("/v1/endpoints", {"handle": "t9", "tenant": "blue", "segment": "web", "host": "h2"})
    text2 = api.get("/metrics")[1]
    assert int(re.search(r"^larch_allocations_total (\d+)$", text2, re.M).group(1)) == allocs + 2


def test_bulk_allocation(api):
    make_topology(api)
    items = [{"handle": "b%d" % i, "tenant": "blue", "segment": "web", "host": "h1"}
             for i in range(20)]
    items.append({"handle": "bad", "tenant": "nope", "segment": "web", "host": "h1"})
    st, body = api.post("/v1/endpoints", {"endpoints": items})
    assert st == 200
    res = body["results"]
    assert [r["status"] for r in res] == [201] * 20 + [404]
    assert res[20]["error"]["field"] == "tenant"
    assert api.get("/v1/endpoints/bad")[0] == 404
    addrs = [a["address"] for r in res[:20] for a in r["endpoint"]["addresses"]]
    assert len(addrs) == len(set(addrs)) == 40
    # the same bulk again: idempotent
    st, again = api.post("/v1/endpoints", {"endpoints": items[:20]})
    assert [r["status"] for r in again["results"]] == [200] * 20
    assert api.post("/v1/endpoints", {"endpoints": []})[0] == 400
    assert api.post("/v1/endpoints", {"endpoints": items[:1], "x": 1})[0] == 400


def test_delete_refusals(api):
    make_topology(api)
    api.post("/v1/endpoints", {"handle": "z", "tenant": "blue", "segment": "web", "host": "h1"})
    for path, field in (("/v1/groups/rack1", None), ("/v1/tenants/blue", None),
                        ("/v1/spaces/v4", None), ("/v1/hosts/h1", None),
                        ("/v1/tenants/blue/segments/web", None)):
        st, err = api.delete(path)
        assert st == 409 and err["error"]["code"] == "conflict", (path, err)
    assert api.delete("/v1/endpoints/z")[0] == 204
    assert api.delete("/v1/tenants/blue/segments/db")[0] == 204
    assert api.delete("/v1/hosts/h4")[0] == 204


def test_restart_keeps_everything(larchd):
    api = larchd.client()
    make_topology(api)
    eps = {}
    for i in range(30):
        st, ep = api.post("/v1/endpoints", {"handle": "r%d" % i, "tenant": "blue",
                                            "segment": "web", "host": "h%d" % (i % 4 + 1)})
        eps[ep["handle"]] = ep["addresses"]
    before = api.get("/v1/tree")[1]
    api.close()
    larchd.restart()
    api = larchd.client()
    assert api.get("/v1/tree")[1] == before
    for h, addrs in eps.items():
        assert api.get("/v1/endpoints/" + h)[1]["addresses"] == addrs
