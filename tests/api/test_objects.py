# SPDX-License-Identifier: MIT
"""The API's objects against a real larchd (docs/api.md): spaces, groups and
their prefix nesting, hosts, tenants, segments, endpoints (allocation,
aggregation, idempotency, dual stack, deferred allocation, bind/rebind/unbind,
release and cool-down, next-fit, PATCH, parents), list filters, blocks, tree,
health and metrics."""
import time

from conftest import (addr, assert_unchanged, check_blocks_agree, check_error, check_nesting,
                      endpoint_body, make_topology, metric, net, parse_metrics, snapshot)


def groups_by_name(api):
    return {g["name"]: g for g in api.get("/v1/groups")[1]["items"]}


def blocks_by_cidr(api, query=""):
    st, body = api.get("/v1/blocks" + query)
    assert st == 200, body
    return {(b["space"], b["cidr"]): b for b in body["items"]}


def revision(api):
    st, h = api.get("/healthz")
    assert st == 200 and h["status"] == "ok"
    return h["revision"]


# ---- spaces ----

def test_spaces_defaults_and_reads(api):
    st, v4 = api.post("/v1/spaces", {"name": "v4", "cidr": "10.64.0.0/12"})
    assert st == 201, v4
    assert (v4["name"], v4["cidr"], v4["block_size"], v4["reserved"], v4["family"]) == \
        ("v4", "10.64.0.0/12", 28, [], 4)
    st, v6 = api.post("/v1/spaces", {"name": "v6", "cidr": "fd10::/48"})
    assert st == 201, v6
    assert (v6["block_size"], v6["reserved"], v6["family"]) == (124, [], 6)
    st, x = api.post("/v1/spaces", {"name": "x", "cidr": "172.16.0.0/16", "block_size": 26,
                                    "reserved": ["172.16.0.1", "172.16.255.0/24"]})
    assert st == 201, x
    assert x["block_size"] == 26 and x["family"] == 4
    assert sorted(x["reserved"]) == ["172.16.0.1", "172.16.255.0/24"]
    # reads
    assert api.get("/v1/spaces/v6") == (200, v6)
    st, lst = api.get("/v1/spaces")
    assert st == 200 and isinstance(lst["revision"], int)
    assert {s["name"]: s for s in lst["items"]} == {"v4": v4, "v6": v6, "x": x}
    check_error(*api.get("/v1/spaces/nope"), 404, "not_found")
    # the same POST again is idempotent (200, same object); a different one is 'exists'
    rev = revision(api)
    assert api.post("/v1/spaces", {"name": "v4", "cidr": "10.64.0.0/12"}) == (200, v4)
    assert revision(api) == rev
    check_error(*api.post("/v1/spaces", {"name": "v4", "cidr": "10.64.0.0/12", "block_size": 27}),
                409, "exists", "name", "v4")
    # block_size limits: a block holds 2 to 65536 addresses
    assert api.post("/v1/spaces", {"name": "b16", "cidr": "10.128.0.0/16",
                                   "block_size": 16})[0] == 201
    assert api.post("/v1/spaces", {"name": "b31", "cidr": "10.129.0.0/16",
                                   "block_size": 31})[0] == 201
    assert api.post("/v1/spaces", {"name": "b112", "cidr": "fd20::/64",
                                   "block_size": 112})[0] == 201
    # spaces are immutable: no PATCH
    check_error(*api.patch("/v1/spaces/v4", {"block_size": 27}), 405, "method_not_allowed")


def test_space_repost_with_reserved_in_any_order_is_idempotent(api):
    """The same request body POSTed twice must not be '409 exists': the
    daemon sorts `reserved`, the second request has the caller's order."""
    body = {"name": "v4", "cidr": "10.64.0.0/16", "reserved": ["10.64.255.0/24", "10.64.0.1"]}
    st, first = api.post("/v1/spaces", body)
    assert st == 201, first
    st, again = api.post("/v1/spaces", body)
    assert (st, again) == (200, first)


def test_space_delete(api):
    assert api.post("/v1/spaces", {"name": "a", "cidr": "10.1.0.0/16"})[0] == 201
    assert api.post("/v1/spaces", {"name": "b", "cidr": "10.2.0.0/16"})[0] == 201
    assert api.post("/v1/groups", {"name": "g"})[0] == 201
    assert set(api.get("/v1/groups/g")[1]["prefixes"]) == {"a", "b"}
    assert api.delete("/v1/spaces/a") == (204, None)
    check_error(*api.get("/v1/spaces/a"), 404, "not_found")
    assert api.get("/v1/groups/g")[1]["prefixes"] == {"b": "10.2.0.0/20"}
    check_error(*api.delete("/v1/spaces/a"), 404, "not_found")
    # the range is free again
    assert api.post("/v1/spaces", {"name": "a2", "cidr": "10.1.0.0/17"})[0] == 201


def test_space_delete_then_allocate_keeps_using_blocks(larchd):
    """Deleting one space must not disturb the blocks of the others: a host
    keeps allocating from its (host, segment) block while it has room."""
    api = larchd.client()
    for n, c in (("a", "10.1.0.0/16"), ("b", "10.2.0.0/16"), ("c", "10.3.0.0/16")):
        assert api.post("/v1/spaces", {"name": n, "cidr": c})[0] == 201
    assert api.post("/v1/groups", {"name": "g"})[0] == 201
    assert api.post("/v1/hosts", {"name": "h", "address": "192.0.2.1", "group": "g"})[0] == 201
    assert api.post("/v1/tenants", {"name": "t"})[0] == 201
    assert api.post("/v1/tenants/t/segments", {"name": "s", "spaces": ["b", "c"]})[0] == 201
    st, e1 = api.post("/v1/endpoints", endpoint_body("e1", "t", "s", "h"))
    assert st == 201, e1
    assert api.delete("/v1/spaces/a") == (204, None)
    st, e2 = api.post("/v1/endpoints", endpoint_body("e2", "t", "s", "h"))
    assert st == 201, e2
    b1 = {a["space"]: a["block"] for a in e1["addresses"]}
    b2 = {a["space"]: a["block"] for a in e2["addresses"]}
    nblocks = len(api.get("/v1/blocks")[1]["items"])
    # releasing everything empties the host (cool-down 0: blocks go back at
    # once); done before the asserts so that a sanitizer build sees it too
    assert api.delete("/v1/endpoints/e1")[0] == 204
    assert api.delete("/v1/endpoints/e2")[0] == 204
    assert api.get("/v1/blocks")[1]["items"] == []
    st, h = api.get("/v1/hosts/h")
    assert st == 200 and h["blocks"] == []
    st, e3 = api.post("/v1/endpoints", endpoint_body("e3", "t", "s", "h"))
    assert st == 201 and api.delete("/v1/endpoints/e3")[0] == 204
    assert api.delete("/v1/hosts/h")[0] == 204
    api.close()
    assert b2 == b1, "a second block was claimed although the first has room: %s vs %s" % (b1, b2)
    assert nblocks == 2


# ---- groups ----

def test_groups_capacity_default_and_nesting(api):
    make_topology(api)
    groups = groups_by_name(api)
    zone = groups["zone"]
    assert zone["parent"] is None and zone["capacity"] == 16384
    # capacity: the smallest block-aligned prefix holding that many addresses
    assert net(zone["prefixes"]["v4"]).prefixlen == 32 - 14
    assert net(zone["prefixes"]["v6"]).prefixlen == 128 - 14
    for space, cidr in (("v4", "10.64.0.0/16"), ("v6", "fd10::/48")):
        z = net(zone["prefixes"][space])
        assert z.subnet_of(net(cidr))
        r1, r2 = (net(groups[r]["prefixes"][space]) for r in ("rack1", "rack2"))
        assert r1.subnet_of(z) and r2.subnet_of(z) and not r1.overlaps(r2)
        # no capacity: 1/16 of the parent
        assert r1.prefixlen == r2.prefixlen == z.prefixlen + 4
    assert sorted(zone["children"]) == ["rack1", "rack2"] and zone["hosts"] == []
    assert groups["rack1"]["parent"] == "zone" and sorted(groups["rack1"]["hosts"]) == ["h1", "h2"]
    # a capacity that is not a power of two rounds up; a block is the minimum
    st, g = api.post("/v1/groups", {"name": "odd", "parent": "zone", "capacity": 100,
                                    "labels": {"dc": "fra"}})
    assert st == 201, g
    assert net(g["prefixes"]["v4"]).prefixlen == 25 and net(g["prefixes"]["v6"]).prefixlen == 121
    assert g["labels"] == {"dc": "fra"} and g["capacity"] == 100
    st, one = api.post("/v1/groups", {"name": "one", "parent": "zone", "capacity": 1})
    assert st == 201 and net(one["prefixes"]["v4"]).prefixlen == 28
    assert net(one["prefixes"]["v6"]).prefixlen == 124
    # default sizing under a small parent: at least one block
    st, small = api.post("/v1/groups", {"name": "small", "parent": "odd"})
    assert st == 201 and net(small["prefixes"]["v4"]).prefixlen == 28
    assert net(small["prefixes"]["v6"]).prefixlen == 124
    groups = groups_by_name(api)
    check_nesting(groups, {"v4": "10.64.0.0/16", "v6": "fd10::/48"})
    assert api.get("/v1/groups/odd")[1]["children"] == ["small"]
    # identical again: 200; different: exists
    assert api.post("/v1/groups", {"name": "odd", "parent": "zone", "capacity": 100,
                                   "labels": {"dc": "fra"}}) == (200, groups["odd"])
    check_error(*api.post("/v1/groups", {"name": "odd", "parent": "zone", "capacity": 200}),
                409, "exists", "name", "odd")


def test_new_space_gives_existing_groups_prefixes(api):
    assert api.post("/v1/spaces", {"name": "v4", "cidr": "10.64.0.0/16"})[0] == 201
    assert api.post("/v1/groups", {"name": "zone", "capacity": 4096})[0] == 201
    assert api.post("/v1/groups", {"name": "rack1", "parent": "zone"})[0] == 201
    assert api.post("/v1/groups", {"name": "rack2", "parent": "zone", "capacity": 64})[0] == 201
    assert api.post("/v1/groups", {"name": "other"})[0] == 201
    st, v6 = api.post("/v1/spaces", {"name": "v6", "cidr": "fd10::/48"})
    assert st == 201, v6
    groups = groups_by_name(api)
    check_nesting(groups, {"v4": "10.64.0.0/16", "v6": "fd10::/48"})
    assert net(groups["zone"]["prefixes"]["v6"]).prefixlen == 116
    assert net(groups["rack1"]["prefixes"]["v6"]).prefixlen == 120
    assert net(groups["rack2"]["prefixes"]["v6"]).prefixlen == 122
    assert net(groups["other"]["prefixes"]["v6"]).prefixlen == 52


def test_group_delete(api):
    make_topology(api)
    check_error(*api.delete("/v1/groups/zone"), 409, "conflict")  # has children
    check_error(*api.delete("/v1/groups/rack1"), 409, "conflict")  # has hosts
    st, empty = api.post("/v1/groups", {"name": "empty", "parent": "rack1"})
    assert st == 201, empty
    assert api.delete("/v1/groups/empty") == (204, None)
    check_error(*api.get("/v1/groups/empty"), 404, "not_found")
    assert "empty" not in api.get("/v1/groups/rack1")[1]["children"]
    # its prefix is free again: a new child of rack1 gets the same one
    st, g = api.post("/v1/groups", {"name": "again", "parent": "rack1"})
    assert st == 201 and g["prefixes"] == empty["prefixes"]
    check_error(*api.delete("/v1/groups/nope"), 404, "not_found")


# ---- hosts, tenants, segments ----

def test_hosts_tenants_segments(api):
    make_topology(api)
    st, h = api.post("/v1/hosts", {"name": "h6", "address": "2001:db8::6", "group": "rack2",
                                   "labels": {"rack": "2"}})
    assert st == 201, h
    assert (h["address"], h["group"], h["labels"], h["blocks"]) == \
        ("2001:db8::6", "rack2", {"rack": "2"}, [])
    assert api.get("/v1/hosts/h6") == (200, h)
    assert api.post("/v1/hosts", {"name": "h6", "address": "2001:db8::6", "group": "rack2",
                                  "labels": {"rack": "2"}}) == (200, h)
    check_error(*api.post("/v1/hosts", {"name": "h6", "address": "2001:db8::7",
                                        "group": "rack2"}), 409, "exists", "name", "h6")
    assert sorted(x["name"] for x in api.get("/v1/hosts")[1]["items"]) == \
        ["h1", "h2", "h3", "h4", "h6"]
    # tenants
    st, t = api.post("/v1/tenants", {"name": "green", "labels": {"team": "payments"}})
    assert st == 201 and t["labels"] == {"team": "payments"}
    assert api.get("/v1/tenants/green")[1]["labels"] == {"team": "payments"}
    check_error(*api.post("/v1/tenants", {"name": "green", "labels": {"team": "x"}}),
                409, "exists", "name", "green")
    # segments: default spaces = every space that exists now; the tenant is added
    st, s = api.post("/v1/tenants/green/segments", {"name": "both"})
    assert st == 201 and s["tenant"] == "green" and sorted(s["spaces"]) == ["v4", "v6"]
    st, s4 = api.post("/v1/tenants/green/segments", {"name": "only4", "spaces": ["v4"],
                                                     "labels": {"a": "b"}})
    assert st == 201 and s4["spaces"] == ["v4"] and s4["labels"] == {"a": "b"}
    assert api.get("/v1/tenants/green/segments/only4") == (200, s4)
    st, lst = api.get("/v1/tenants/green/segments")
    assert st == 200 and sorted(x["name"] for x in lst["items"]) == ["both", "only4"]
    assert all(x["tenant"] == "green" for x in lst["items"])
    check_error(*api.get("/v1/tenants/green/segments/nope"), 404, "not_found")
    check_error(*api.get("/v1/tenants/nope/segments"), 404, "not_found", "tenant", "nope")
    # a space created later is not added to existing segments
    assert api.post("/v1/spaces", {"name": "late", "cidr": "10.200.0.0/16"})[0] == 201
    assert sorted(api.get("/v1/tenants/green/segments/both")[1]["spaces"]) == ["v4", "v6"]
    st, s3 = api.post("/v1/tenants/green/segments", {"name": "three"})
    assert sorted(s3["spaces"]) == ["late", "v4", "v6"]
    # single stack: one address from the only space
    st, ep = api.post("/v1/endpoints", endpoint_body("p4", "green", "only4", "h1"))
    assert st == 201 and [a["space"] for a in ep["addresses"]] == ["v4"]
    st, ep = api.post("/v1/endpoints", endpoint_body("p3", "green", "three", "h1"))
    assert st == 201 and sorted(a["space"] for a in ep["addresses"]) == ["late", "v4", "v6"]
    # deletes
    check_error(*api.delete("/v1/tenants/green"), 409, "conflict")
    check_error(*api.delete("/v1/tenants/green/segments/only4"), 409, "conflict")
    assert api.delete("/v1/endpoints/p4")[0] == 204
    assert api.delete("/v1/tenants/green/segments/only4") == (204, None)
    check_error(*api.get("/v1/tenants/green/segments/only4"), 404, "not_found")
    assert api.delete("/v1/endpoints/p3")[0] == 204
    for s in ("both", "three"):
        assert api.delete("/v1/tenants/green/segments/" + s)[0] == 204
    assert api.delete("/v1/tenants/green") == (204, None)
    check_error(*api.get("/v1/tenants/green"), 404, "not_found")


def test_host_delete_returns_blocks_at_once(larchd_factory):
    d = larchd_factory(["--block-cooldown", "300"])
    api = d.client()
    make_topology(api, v6=None, hosts=("h1", "h2"))
    st, ep = api.post("/v1/endpoints", endpoint_body("x", host="h2"))
    block = ep["addresses"][0]["block"]
    check_error(*api.delete("/v1/hosts/h2"), 409, "conflict")
    assert api.delete("/v1/endpoints/x")[0] == 204
    assert blocks_by_cidr(api)[("v4", block)]["state"] == "cooling"
    assert api.delete("/v1/hosts/h2") == (204, None)
    assert blocks_by_cidr(api) == {}
    check_error(*api.get("/v1/hosts/h2"), 404, "not_found")
    # the block went back to the group: the next host there claims it again
    assert api.post("/v1/hosts", {"name": "h9", "address": "192.0.2.9",
                                  "group": "rack2"})[0] == 201
    st, ep = api.post("/v1/endpoints", endpoint_body("y", host="h9"))
    assert st == 201 and ep["addresses"][0]["block"] == block
    api.close()


# ---- endpoints ----

def test_allocation_aggregates(api):
    make_topology(api)
    groups = groups_by_name(api)
    hosts = {h["name"]: h for h in api.get("/v1/hosts")[1]["items"]}
    seen = set()
    rev = revision(api)
    for i in range(60):
        host = "h%d" % (i % 4 + 1)
        tenant, seg = (("blue", "web"), ("blue", "db"), ("red", "app"))[i % 3]
        st, ep = api.post("/v1/endpoints", endpoint_body("p%d" % i, tenant, seg, host,
                                                         kind="pod"))
        assert st == 201, ep
        assert (ep["handle"], ep["tenant"], ep["segment"], ep["host"], ep["kind"]) == \
            ("p%d" % i, tenant, seg, host, "pod")
        assert sorted(a["space"] for a in ep["addresses"]) == ["v4", "v6"]  # dual stack
        for a in ep["addresses"]:
            ad, block = addr(a["address"]), net(a["block"])
            assert ad in block and block.prefixlen == (28 if a["space"] == "v4" else 124)
            assert (a["space"], ad) not in seen
            seen.add((a["space"], ad))
            group = hosts[host]["group"]
            assert block.subnet_of(net(groups[group]["prefixes"][a["space"]]))
        # one allocation is one revision
        assert revision(api) == rev + i + 1
    blocks = api.get("/v1/blocks")[1]["items"]
    eps = api.get("/v1/endpoints")[1]["items"]
    assert len(eps) == 60
    check_blocks_agree(api, eps, blocks)
    # hosts list their blocks
    for h in api.get("/v1/hosts")[1]["items"]:
        assert sorted(h["blocks"]) == sorted(b["cidr"] for b in blocks if b["host"] == h["name"])


def test_idempotent_handle(api):
    make_topology(api)
    body = endpoint_body("pod-a:eth0", host="h1")
    st1, a = api.post("/v1/endpoints", body)
    rev = revision(api)
    st2, b = api.post("/v1/endpoints", body)
    assert (st1, st2) == (201, 200)
    assert a == b
    assert revision(api) == rev  # nothing written
    for other, field in ((dict(body, host="h2"), "host"), (dict(body, segment="db"), "segment"),
                         (dict(body, tenant="red", segment="app"), None)):
        before = snapshot(api)
        st, err = api.post("/v1/endpoints", other)
        check_error(st, err, 409, "conflict", field)
        assert_unchanged(api, before, str(other))
    assert len(api.get("/v1/endpoints")[1]["items"]) == 1
    # deferred twice is idempotent too; then a host is another parameter
    st1, d1 = api.post("/v1/endpoints", endpoint_body("port-x", host=None))
    st2, d2 = api.post("/v1/endpoints", endpoint_body("port-x", host=None))
    assert (st1, st2) == (201, 200) and d1 == d2 and d1["addresses"] == []
    check_error(*api.post("/v1/endpoints", endpoint_body("port-x", host="h1")), 409, "conflict",
                "host")
    # release by handle
    assert api.delete("/v1/endpoints/pod-a:eth0") == (204, None)
    check_error(*api.get("/v1/endpoints/pod-a:eth0"), 404, "not_found")
    check_error(*api.delete("/v1/endpoints/pod-a:eth0"), 404, "not_found")
    # the handle can be used again, for anything
    st, c = api.post("/v1/endpoints", endpoint_body("pod-a:eth0", "red", "app", "h3"))
    assert st == 201 and c["tenant"] == "red"


def test_handles(api):
    make_topology(api)
    # every handle the docs allow can be created, read, patched and deleted by path
    for h in ("a", "A.b_c:d@e-f", "x" * 253, "pod-7f3a:eth0", "vm@host:1", ".", "..", "...",
              ":", "@", "-", "_"):
        st, ep = api.post("/v1/endpoints", endpoint_body(h))
        assert st == 201 and ep["handle"] == h, (h, ep)
        assert api.get("/v1/endpoints/" + h) == (200, ep), h
        assert api.patch("/v1/endpoints/" + h, {"name": "n"})[0] == 200, h
        assert api.post("/v1/endpoints/%s/bind" % h, {"host": "h2"})[0] == 200, h
    for h in (".", "..", "-"):
        assert api.delete("/v1/endpoints/" + h) == (204, None), h
        check_error(*api.get("/v1/endpoints/" + h), 404, "not_found")


def test_deferred_allocation_and_rebind(api):
    make_topology(api)
    st, ep = api.post("/v1/endpoints", endpoint_body("port-1", "red", "app", None, kind="vm"))
    assert st == 201 and ep["host"] is None and ep["addresses"] == [] and ep["kind"] == "vm"
    assert api.get("/v1/blocks")[1]["items"] == []
    st, ep = api.post("/v1/endpoints/port-1/bind", {"host": "h1"})
    assert st == 200 and ep["host"] == "h1" and len(ep["addresses"]) == 2
    assert ep["kind"] == "vm"
    h1_blocks = set(api.get("/v1/hosts/h1")[1]["blocks"])
    assert {a["block"] for a in ep["addresses"]} <= h1_blocks
    assert api.get("/v1/endpoints/port-1") == (200, ep)
    # same host: a no-op, nothing written
    rev = revision(api)
    st, same = api.post("/v1/endpoints/port-1/bind", {"host": "h1"})
    assert (st, same) == (200, ep)
    assert revision(api) == rev
    # move to a host of the other rack: new addresses from h3's blocks
    st, moved = api.post("/v1/endpoints/port-1/bind", {"host": "h3"})
    assert st == 200 and moved["host"] == "h3" and len(moved["addresses"]) == 2
    rack2 = api.get("/v1/groups/rack2")[1]["prefixes"]
    h3_blocks = set(api.get("/v1/hosts/h3")[1]["blocks"])
    for a in moved["addresses"]:
        assert net(a["block"]).subnet_of(net(rack2[a["space"]]))
        assert a["block"] in h3_blocks
    # the old addresses were released: h1's blocks hold nothing any more
    assert all(b["used"] == 0 for b in api.get("/v1/blocks?host=h1")[1]["items"])
    assert api.get("/v1/endpoints?host=h1")[1]["items"] == []
    assert [e["handle"] for e in api.get("/v1/endpoints?host=h3")[1]["items"]] == ["port-1"]
    # unbind keeps the endpoint, releases the addresses
    st, un = api.post("/v1/endpoints/port-1/bind", {"host": None})
    assert st == 200 and un["host"] is None and un["addresses"] == []
    assert api.get("/v1/endpoints/port-1") == (200, un)
    assert all(b["used"] == 0 for b in api.get("/v1/blocks")[1]["items"])
    # unbinding again is a no-op
    rev = revision(api)
    assert api.post("/v1/endpoints/port-1/bind", {"host": None}) == (200, un)
    assert revision(api) == rev
    # and it can be bound again
    st, again = api.post("/v1/endpoints/port-1/bind", {"host": "h2"})
    assert st == 200 and again["host"] == "h2" and len(again["addresses"]) == 2
    # bind to a missing host: 404, nothing changed
    before = snapshot(api)
    check_error(*api.post("/v1/endpoints/port-1/bind", {"host": "nope"}), 404, "not_found",
                "host", "nope")
    assert_unchanged(api, before)


def test_release_cools_block(larchd_factory):
    d = larchd_factory(["--block-cooldown", "300"])
    api = d.client()
    make_topology(api, v6=None)
    st, ep = api.post("/v1/endpoints", endpoint_body("x"))
    assert st == 201
    block = ep["addresses"][0]["block"]
    t0 = time.time()
    assert api.delete("/v1/endpoints/x") == (204, None)
    b = blocks_by_cidr(api)[("v4", block)]
    assert b["state"] == "cooling" and b["used"] == 0 and b["host"] == "h1"
    assert t0 + 290 <= b["cool_until"] <= time.time() + 310
    assert block in api.get("/v1/hosts/h1")[1]["blocks"]  # still the host's
    samples = parse_metrics(api.get("/metrics")[1])
    assert metric(samples, "larch_blocks", space="v4", state="cooling") == 1
    # a new allocation does not use the cooling block
    st, ep2 = api.post("/v1/endpoints", endpoint_body("y"))
    assert st == 201
    assert ep2["addresses"][0]["block"] != block
    assert ep2["addresses"][0]["address"] != ep["addresses"][0]["address"]
    assert blocks_by_cidr(api)[("v4", block)]["state"] == "cooling"
    # the cool-down survives a restart
    api.close()
    d.restart()
    b2 = blocks_by_cidr(api)[("v4", block)]
    assert b2["state"] == "cooling" and b2["cool_until"] == b["cool_until"]
    api.close()


def test_cooldown_expires(larchd_factory):
    d = larchd_factory(["--block-cooldown", "1"])
    api = d.client()
    make_topology(api, v6=None)
    st, ep = api.post("/v1/endpoints", endpoint_body("x"))
    block = ep["addresses"][0]["block"]
    assert api.delete("/v1/endpoints/x")[0] == 204
    assert blocks_by_cidr(api)[("v4", block)]["state"] == "cooling"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and ("v4", block) in blocks_by_cidr(api):
        time.sleep(0.2)
    assert ("v4", block) not in blocks_by_cidr(api), "the block never came back from cooling"
    assert api.get("/v1/hosts/h1")[1]["blocks"] == []
    # back in the group: claimed again (lowest free)
    st, ep = api.post("/v1/endpoints", endpoint_body("z"))
    assert ep["addresses"][0]["block"] == block
    api.close()


def test_next_fit_within_block(api):
    make_topology(api, v6=None)
    got = []
    for i in range(3):
        st, ep = api.post("/v1/endpoints", endpoint_body("n%d" % i))
        got.append(ep["addresses"][0])
    assert len({a["block"] for a in got}) == 1
    assert api.delete("/v1/endpoints/n0")[0] == 204
    st, ep = api.post("/v1/endpoints", endpoint_body("n3"))
    a3 = ep["addresses"][0]
    assert a3["block"] == got[0]["block"]
    # after the last one handed out, not the one just released
    assert addr(a3["address"]) > addr(got[2]["address"])
    assert a3["address"] != got[0]["address"]


def test_reserved_network_broadcast_never_handed_out(api):
    # a /26 of four blocks: network, broadcast and reserved spots in them
    st, sp = api.post("/v1/spaces", {"name": "v4", "cidr": "10.9.0.0/26", "block_size": 28,
                                     "reserved": ["10.9.0.1", "10.9.0.16/29", "10.9.0.32/28"]})
    assert st == 201, sp
    st, sp6 = api.post("/v1/spaces", {"name": "v6", "cidr": "fd99::/122", "block_size": 124,
                                      "reserved": ["fd99::5"]})
    assert st == 201, sp6
    # the group holds the whole of both spaces
    st, g = api.post("/v1/groups", {"name": "g", "capacity": 64})
    assert st == 201 and g["prefixes"] == {"v4": "10.9.0.0/26", "v6": "fd99::/122"}, g
    assert api.post("/v1/hosts", {"name": "h", "address": "192.0.2.1", "group": "g"})[0] == 201
    assert api.post("/v1/tenants", {"name": "t"})[0] == 201
    assert api.post("/v1/tenants/t/segments", {"name": "s4", "spaces": ["v4"]})[0] == 201
    assert api.post("/v1/tenants/t/segments", {"name": "s6", "spaces": ["v6"]})[0] == 201
    got4, got6 = [], []
    for seg, got in (("s4", got4), ("s6", got6)):
        for i in range(300):
            st, ep = api.post("/v1/endpoints", endpoint_body("%s-%d" % (seg, i), "t", seg, "h"))
            if st != 201:
                check_error(st, ep, 409, "exhausted")
                break
            got.append(addr(ep["addresses"][0]["address"]))
        else:
            raise AssertionError("never exhausted")
    never4 = {addr("10.9.0.0"), addr("10.9.0.63"), addr("10.9.0.1")}
    never4 |= set(net("10.9.0.16/29")) | set(net("10.9.0.32/28"))
    assert not set(got4) & never4
    assert len(got4) == len(set(got4)) == 64 - len(never4)
    # the /28 that is wholly reserved was never claimed as a block
    assert ("v4", "10.9.0.32/28") not in blocks_by_cidr(api)
    assert addr("fd99::") not in got6 and addr("fd99::5") not in got6
    assert len(got6) == len(set(got6)) == 64 - 2
    for b in api.get("/v1/blocks")[1]["items"]:
        assert b["used"] == b["capacity"], b  # all full


def test_exhausted_dual_stack_changes_nothing(api):
    # v6 with room for one block of 15, v4 with plenty: dual stack fails all or nothing
    assert api.post("/v1/spaces", {"name": "v4", "cidr": "10.9.0.0/16"})[0] == 201
    assert api.post("/v1/spaces", {"name": "v6", "cidr": "fd99::/124"})[0] == 201
    assert api.post("/v1/groups", {"name": "g"})[0] == 201
    for h in ("h1", "h2"):
        assert api.post("/v1/hosts", {"name": h, "address": "192.0.2.1", "group": "g"})[0] == 201
    assert api.post("/v1/tenants", {"name": "t"})[0] == 201
    assert api.post("/v1/tenants/t/segments", {"name": "s"})[0] == 201
    for i in range(15):
        st, ep = api.post("/v1/endpoints", endpoint_body("e%d" % i, "t", "s", "h1"))
        assert st == 201, ep
    before = snapshot(api)
    # h1 would claim a second v4 block, but v6 has no room left
    e = check_error(*api.post("/v1/endpoints", endpoint_body("more", "t", "s", "h1")),
                    409, "exhausted")
    assert "v6" in e["message"] or "fd99::" in e["message"], e
    assert_unchanged(api, before, "after exhausted on h1")
    # h2 would claim a v4 block first; that claim must be undone too
    check_error(*api.post("/v1/endpoints", endpoint_body("more", "t", "s", "h2")),
                409, "exhausted")
    assert_unchanged(api, before, "after exhausted on h2")
    # binding an unbound endpoint: same
    assert api.post("/v1/endpoints", endpoint_body("later", "t", "s", None))[0] == 201
    before = snapshot(api)
    check_error(*api.post("/v1/endpoints/later/bind", {"host": "h2"}), 409, "exhausted")
    assert_unchanged(api, before, "after a failed bind")
    # moving e0 to h2 fails as well, and e0 keeps its addresses
    check_error(*api.post("/v1/endpoints/e0/bind", {"host": "h2"}), 409, "exhausted")
    assert_unchanged(api, before, "after a failed move")
    assert api.get("/v1/endpoints/e0")[1]["host"] == "h1"


def test_exhausted_group_prefix_changes_nothing(api):
    """A group's prefix runs out while its space still has room."""
    assert api.post("/v1/spaces", {"name": "v4", "cidr": "10.9.0.0/16"})[0] == 201
    assert api.post("/v1/groups", {"name": "tiny", "capacity": 16})[0] == 201
    for h in ("t1", "t2"):
        assert api.post("/v1/hosts", {"name": h, "address": "192.0.2.9", "group": "tiny"})[0] == 201
    assert api.post("/v1/tenants", {"name": "t"})[0] == 201
    assert api.post("/v1/tenants/t/segments", {"name": "only4", "spaces": ["v4"]})[0] == 201
    st, ep = api.post("/v1/endpoints", endpoint_body("x1", "t", "only4", "t1"))
    assert st == 201, ep
    before = snapshot(api)
    e = check_error(*api.post("/v1/endpoints", endpoint_body("x2", "t", "only4", "t2")),
                    409, "exhausted")
    assert "tiny" in e["message"], e
    assert_unchanged(api, before, "after a group ran out")


def test_patch_parent_filters(api):
    make_topology(api)
    st, vm = api.post("/v1/endpoints", endpoint_body("vm-1", "red", "app", "h2", kind="vm"))
    assert st == 201
    full = endpoint_body("c-1", "red", "app", "h2", kind="container", parent="vm-1",
                         name="web-1", namespace="shop", interface="eth0",
                         mac="02:00:00:00:00:01", labels={"app": "x", "tier": "1"})
    st, c = api.post("/v1/endpoints", full)
    assert st == 201, c
    for k in ("kind", "parent", "name", "namespace", "interface", "mac", "labels"):
        assert c[k] == full[k], k
    st, p = api.patch("/v1/endpoints/c-1", {"name": "nested", "labels": {"app": "y"},
                                            "kind": "pod", "mac": "02:00:00:00:00:02"})
    assert st == 200, p
    assert (p["name"], p["labels"], p["kind"], p["mac"]) == \
        ("nested", {"app": "y"}, "pod", "02:00:00:00:00:02")
    # untouched: the rest, the addresses and the placement
    for k in ("namespace", "interface", "parent", "tenant", "segment", "host", "addresses"):
        assert p[k] == c[k], k
    assert api.get("/v1/endpoints/c-1") == (200, p)
    # PATCH may not touch tenant/segment/host/parent
    before = snapshot(api)
    for bad in ({"host": "h1"}, {"tenant": "blue"}, {"segment": "db"}, {"parent": None},
                {"addresses": []}, {"handle": "other"}):
        st, err = api.patch("/v1/endpoints/c-1", bad)
        check_error(st, err, 400, "unknown_field", list(bad)[0])
    assert_unchanged(api, before)
    # a parent with children cannot go
    check_error(*api.delete("/v1/endpoints/vm-1"), 409, "conflict")
    assert api.get("/v1/endpoints/vm-1")[0] == 200
    # filters
    assert api.post("/v1/endpoints", endpoint_body("w-1", "blue", "web", "h2"))[0] == 201
    assert api.post("/v1/endpoints", endpoint_body("d-1", "blue", "db", "h1"))[0] == 201
    assert api.post("/v1/endpoints", endpoint_body("u-1", "blue", "db", None))[0] == 201

    def handles(q):
        st, body = api.get("/v1/endpoints" + q)
        assert st == 200 and isinstance(body["revision"], int), body
        return sorted(e["handle"] for e in body["items"])

    assert handles("") == ["c-1", "d-1", "u-1", "vm-1", "w-1"]
    assert handles("?host=h2") == ["c-1", "vm-1", "w-1"]
    assert handles("?host=h2&tenant=red") == ["c-1", "vm-1"]
    assert handles("?tenant=blue") == ["d-1", "u-1", "w-1"]
    assert handles("?tenant=blue&segment=db") == ["d-1", "u-1"]
    assert handles("?segment=app") == ["c-1", "vm-1"]
    assert handles("?host=h1&segment=db") == ["d-1"]
    assert handles("?host=h4") == []
    # blocks filters
    allb = api.get("/v1/blocks")[1]["items"]
    assert {b["host"] for b in allb} == {"h1", "h2"}
    for q, pred in (("?host=h2", lambda b: b["host"] == "h2"),
                    ("?space=v6", lambda b: b["space"] == "v6"),
                    ("?host=h1&space=v4", lambda b: b["host"] == "h1" and b["space"] == "v4")):
        got = api.get("/v1/blocks" + q)[1]["items"]
        assert sorted(map(str, got)) == sorted(str(b) for b in allb if pred(b)), q
        assert got
    # a missing parent
    check_error(*api.post("/v1/endpoints", endpoint_body("c-2", "red", "app", "h2",
                                                         parent="nope")),
                404, "not_found", "parent", "nope")
    # child first, then the parent
    assert api.delete("/v1/endpoints/c-1")[0] == 204
    assert api.delete("/v1/endpoints/vm-1")[0] == 204


def test_tree(api):
    make_topology(api)
    for i in range(5):
        assert api.post("/v1/endpoints", endpoint_body("t%d" % i))[0] == 201
    assert api.post("/v1/endpoints", endpoint_body("r0", "red", "app", "h3"))[0] == 201
    st, tree = api.get("/v1/tree")
    assert st == 200 and tree["revision"] == revision(api)
    assert sorted(s["name"] for s in tree["spaces"]) == ["v4", "v6"]
    groups = groups_by_name(api)
    hosts = {h["name"]: h for h in api.get("/v1/hosts")[1]["items"]}
    blocks = blocks_by_cidr(api)
    seen_blocks = set()
    for s in tree["spaces"]:
        assert s["cidr"] == api.get("/v1/spaces/" + s["name"])[1]["cidr"]
        [zone] = s["groups"]
        assert zone["name"] == "zone" and zone["prefix"] == groups["zone"]["prefixes"][s["name"]]
        assert sorted(g["name"] for g in zone["groups"]) == ["rack1", "rack2"]
        for rack in zone["groups"]:
            assert rack["prefix"] == groups[rack["name"]]["prefixes"][s["name"]]
            assert rack["groups"] == []
            assert sorted(h["name"] for h in rack["hosts"]) == sorted(groups[rack["name"]]["hosts"])
            for h in rack["hosts"]:
                assert h["address"] == hosts[h["name"]]["address"]
                for b in h["blocks"]:
                    ref = blocks[(s["name"], b["cidr"])]
                    assert ref["host"] == h["name"]
                    for k in ("tenant", "segment", "state", "used", "capacity"):
                        assert b[k] == ref[k], k
                    seen_blocks.add((s["name"], b["cidr"]))
    assert seen_blocks == set(blocks)
    v4 = [s for s in tree["spaces"] if s["name"] == "v4"][0]
    h1 = [h for g in v4["groups"][0]["groups"] for h in g["hosts"] if h["name"] == "h1"][0]
    assert sum(b["used"] for b in h1["blocks"]) == 5


def test_health_and_metrics(api):
    st, h = api.get("/healthz")
    assert st == 200 and h == {"status": "ok", "revision": 0}
    make_topology(api)
    st, text = api.get("/metrics")
    assert st == 200 and isinstance(text, str)
    s0 = parse_metrics(text)
    names = {n for n, _ in s0}
    for name in ("larch_allocations_total", "larch_releases_total", "larch_endpoints",
                 "larch_blocks", "larch_store_commits_total",
                 "larch_store_commit_batch_size_bucket", "larch_store_commit_batch_size_sum",
                 "larch_store_commit_batch_size_count", "larch_http_requests_total",
                 "larch_http_request_duration_seconds_bucket",
                 "larch_http_request_duration_seconds_sum",
                 "larch_http_request_duration_seconds_count"):
        assert name in names, name
    for hist in ("larch_store_commit_batch_size", "larch_http_request_duration_seconds"):
        assert "# TYPE %s histogram" % hist in text
        assert metric(s0, hist + "_bucket", le="+Inf") == metric(s0, hist + "_count")
    for counter in ("larch_allocations_total", "larch_releases_total",
                    "larch_store_commits_total", "larch_http_requests_total"):
        assert "# TYPE %s counter" % counter in text
    assert {dict(l).get("method") for n, l in s0 if n == "larch_http_requests_total"} >= \
        {"POST", "GET"}
    assert all(set(dict(l)) == {"method", "code"} for n, l in s0
               if n == "larch_http_requests_total")
    assert metric(s0, "larch_endpoints") == 0
    assert metric(s0, "larch_blocks", space="v4", state="active") == 0

    def total(samples, name, **lab):
        return sum(v for (n, l), v in samples.items()
                   if n == name and all(dict(l).get(k) == x for k, x in lab.items()))

    for i in range(3):
        assert api.post("/v1/endpoints", endpoint_body("m%d" % i))[0] == 201
    s1 = parse_metrics(api.get("/metrics")[1])
    assert metric(s1, "larch_allocations_total") > metric(s0, "larch_allocations_total")
    assert metric(s1, "larch_endpoints") == 3
    assert metric(s1, "larch_blocks", space="v4", state="active") == 1
    assert metric(s1, "larch_blocks", space="v6", state="active") == 1
    assert metric(s1, "larch_store_commits_total") >= metric(s0, "larch_store_commits_total") + 3
    assert metric(s1, "larch_store_commit_batch_size_count") >= 3
    assert total(s1, "larch_http_requests_total", method="POST") >= \
        total(s0, "larch_http_requests_total", method="POST") + 3
    assert metric(s1, "larch_http_request_duration_seconds_count") > \
        metric(s0, "larch_http_request_duration_seconds_count")
    assert api.delete("/v1/endpoints/m0")[0] == 204
    s2 = parse_metrics(api.get("/metrics")[1])
    assert metric(s2, "larch_releases_total") > metric(s1, "larch_releases_total")
    assert metric(s2, "larch_endpoints") == 2
    assert metric(s2, "larch_allocations_total") == metric(s1, "larch_allocations_total")
    # an error is counted by its class
    api.get("/v1/spaces/nope")
    s3 = parse_metrics(api.get("/metrics")[1])
    assert total(s3, "larch_http_requests_total", method="GET", code="4xx") >= 1


def test_bulk_allocation(api):
    make_topology(api)
    items = [endpoint_body("b%d" % i) for i in range(20)]
    items.append(endpoint_body("bad", tenant="nope"))
    items.append(endpoint_body("bad2", host="h1", kind="cow"))
    rev = revision(api)
    st, body = api.post("/v1/endpoints", {"endpoints": items})
    assert st == 200, body
    res = body["results"]
    assert [r["status"] for r in res] == [201] * 20 + [404, 400]
    check_error(res[20]["status"], {"error": res[20]["error"]}, 404, "not_found", "tenant", "nope")
    check_error(res[21]["status"], {"error": res[21]["error"]}, 400, "invalid", "kind", "cow")
    # each item its own revision
    assert revision(api) == rev + 20
    for h in ("bad", "bad2"):
        check_error(*api.get("/v1/endpoints/" + h), 404, "not_found")
    for r in res[:20]:
        assert api.get("/v1/endpoints/" + r["endpoint"]["handle"]) == (200, r["endpoint"])
    addrs = [a["address"] for r in res[:20] for a in r["endpoint"]["addresses"]]
    assert len(addrs) == len(set(addrs)) == 40
    # the same bulk again: idempotent
    st, again = api.post("/v1/endpoints", {"endpoints": items[:20]})
    assert [r["status"] for r in again["results"]] == [200] * 20
    assert [r["endpoint"] for r in again["results"]] == [r["endpoint"] for r in res[:20]]
    assert revision(api) == rev + 20
    # in order, as if POSTed one by one: a repeat is idempotent, a clash is 409,
    # a later item may name an earlier one as its parent
    st, body = api.post("/v1/endpoints", {"endpoints": [
        endpoint_body("q1"), endpoint_body("q1"), endpoint_body("q1", host="h2"),
        endpoint_body("q2", parent="q1"), endpoint_body("q3", parent="q4"),
        endpoint_body("q4")]})
    assert st == 200
    res = body["results"]
    assert [r["status"] for r in res] == [201, 200, 409, 201, 404, 201], res
    assert res[1]["endpoint"] == res[0]["endpoint"]
    assert res[3]["endpoint"]["parent"] == "q1"
    rev = revision(api)
    # shape errors: 400 and nothing allocated
    before = snapshot(api)
    new = [endpoint_body("n%d" % i) for i in range(3)]
    for bad, code in (({"endpoints": []}, "invalid"),
                      ({"endpoints": new, "x": 1}, "unknown_field"),
                      ({"endpoints": "nope"}, "invalid"),
                      ({"endpoints": [endpoint_body("n%d" % i) for i in range(1001)]}, "invalid")):
        st, err = api.post("/v1/endpoints", bad)
        check_error(st, err, 400, code)
    assert_unchanged(api, before)
    # the largest bulk, on a host whose group has room for it
    assert api.post("/v1/groups", {"name": "big", "parent": "zone", "capacity": 4096})[0] == 201
    assert api.post("/v1/hosts", {"name": "hb", "address": "192.0.2.50", "group": "big"})[0] == 201
    st, body = api.post("/v1/endpoints", {"endpoints": [endpoint_body("k%d" % i, host="hb")
                                                        for i in range(1000)]})
    assert st == 200 and len(body["results"]) == 1000
    assert all(r["status"] == 201 for r in body["results"])


def test_delete_refusals_change_nothing(api):
    make_topology(api)
    assert api.post("/v1/endpoints", endpoint_body("z"))[0] == 201
    before = snapshot(api)
    for path in ("/v1/groups/rack1", "/v1/groups/zone", "/v1/tenants/blue", "/v1/spaces/v4",
                 "/v1/spaces/v6", "/v1/hosts/h1", "/v1/tenants/blue/segments/web"):
        check_error(*api.delete(path), 409, "conflict")
        assert_unchanged(api, before, "DELETE " + path)
    for path in ("/v1/groups/nope", "/v1/tenants/nope", "/v1/spaces/nope", "/v1/hosts/nope",
                 "/v1/tenants/blue/segments/nope", "/v1/tenants/nope/segments/web",
                 "/v1/endpoints/nope"):
        check_error(*api.delete(path), 404, "not_found")
        assert_unchanged(api, before, "DELETE " + path)
    assert api.delete("/v1/endpoints/z")[0] == 204
    assert api.delete("/v1/tenants/blue/segments/db")[0] == 204
    assert api.delete("/v1/hosts/h4")[0] == 204


def test_restart_keeps_everything(larchd):
    api = larchd.client()
    make_topology(api)
    eps = {}
    for i in range(30):
        st, ep = api.post("/v1/endpoints", endpoint_body("r%d" % i, host="h%d" % (i % 4 + 1)))
        eps[ep["handle"]] = ep
    assert api.post("/v1/endpoints", endpoint_body("child", host="h1", parent="r0",
                                                   labels={"a": "b"}))[0] == 201
    assert api.post("/v1/endpoints", endpoint_body("unbound", host=None))[0] == 201
    before = snapshot(api)
    api.close()
    larchd.restart()
    assert snapshot(api) == before
    for h, ep in eps.items():
        assert api.get("/v1/endpoints/" + h) == (200, ep)
    # and it goes on from there: no address handed out twice
    st, ep = api.post("/v1/endpoints", endpoint_body("after", host="h1"))
    assert st == 201
    held = {a["address"] for e in api.get("/v1/endpoints")[1]["items"] for a in e["addresses"]
            if e["handle"] != "after"}
    assert not {a["address"] for a in ep["addresses"]} & held
    assert revision(api) == before["/healthz"]["revision"] + 1
    api.close()


def test_edges_of_the_address_space(api):
    """Spaces at the very top of the v4 and v6 ranges: no wrap-around, the
    broadcast address and network address stay out, and exhaustion is clean."""
    assert api.post("/v1/spaces", {"name": "top4", "cidr": "255.255.255.0/24"})[0] == 201
    assert api.post("/v1/spaces", {"name": "top6",
                                   "cidr": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"})[0] == 201
    st, g = api.post("/v1/groups", {"name": "g", "capacity": 256})
    assert st == 201 and g["prefixes"] == {
        "top4": "255.255.255.0/24", "top6": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"}
    assert api.post("/v1/hosts", {"name": "h", "address": "::1", "group": "g"})[0] == 201
    assert api.post("/v1/tenants", {"name": "t"})[0] == 201
    assert api.post("/v1/tenants/t/segments", {"name": "s"})[0] == 201
    st, body = api.post("/v1/endpoints", {"endpoints": [endpoint_body("e%d" % i, "t", "s", "h")
                                                        for i in range(255)]})
    assert st == 200
    res = body["results"]
    assert [r["status"] for r in res] == [201] * 254 + [409]
    assert res[-1]["error"]["code"] == "exhausted"
    a4 = {addr(a["address"]) for r in res[:-1] for a in r["endpoint"]["addresses"]
          if a["space"] == "top4"}
    a6 = {addr(a["address"]) for r in res[:-1] for a in r["endpoint"]["addresses"]
          if a["space"] == "top6"}
    assert a4 == set(net("255.255.255.0/24")) - {addr("255.255.255.0"), addr("255.255.255.255")}
    top6 = net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120")
    assert len(a6) == 254 and all(a in top6 for a in a6) and top6.network_address not in a6
    assert api.get("/v1/tree")[0] == 200


def test_blocks_claimed_lowest_first(api):
    make_topology(api, v6=None)
    rack1 = net(api.get("/v1/groups/rack1")[1]["prefixes"]["v4"])
    order = []
    for i, (host, seg) in enumerate((("h1", "web"), ("h2", "web"), ("h1", "db"), ("h2", "db"))):
        st, ep = api.post("/v1/endpoints", endpoint_body("l%d" % i, "blue", seg, host))
        assert st == 201
        order.append(net(ep["addresses"][0]["block"]))
    # consecutive blocks from the bottom of the group's prefix
    assert order == list(rack1.subnets(new_prefix=28))[:4]
    # a returned block (cool-down 0) is the lowest free one again
    assert api.delete("/v1/endpoints/l1")[0] == 204
    st, ep = api.post("/v1/endpoints", endpoint_body("l9", "red", "app", "h1"))
    assert net(ep["addresses"][0]["block"]) == order[1]


def test_list_shape(api):
    make_topology(api)
    assert api.post("/v1/endpoints", endpoint_body("s1"))[0] == 201
    rev = revision(api)
    for path in ("/v1/spaces", "/v1/groups", "/v1/hosts", "/v1/tenants",
                 "/v1/tenants/blue/segments", "/v1/endpoints", "/v1/endpoints?host=h4",
                 "/v1/blocks", "/v1/blocks?space=v6"):
        st, body = api.get(path)
        assert st == 200 and set(body) == {"revision", "items"}, (path, body)
        assert body["revision"] == rev and isinstance(body["items"], list), path
