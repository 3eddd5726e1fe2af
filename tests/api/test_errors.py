# SPDX-License-Identifier: MIT
"""Bad input (docs/api.md, Errors): a 4xx whose body is exactly
{"error": {"code", "field", "value", "message"}} naming the field and the
value, and no change to anything the API shows (every list, the segments of
every tenant, the tree and the store revision)."""
import json

import pytest

from conftest import Larchd, check_error, endpoint_body, make_topology, snapshot, assert_unchanged

EP = endpoint_body  # shorthand: EP(handle, tenant="blue", segment="web", host="h1", **kw)
N = None  # "do not check"

BAD = [
    # (method, path, body, status, code, field, value)
    # -- bodies that are not a JSON object
    ("POST", "/v1/spaces", '{"name": "x",', 400, "malformed", "", ""),
    ("POST", "/v1/spaces", '[1, 2]', 400, "malformed", "", ""),
    ("POST", "/v1/spaces", '"v4"', 400, "malformed", "", ""),
    ("POST", "/v1/spaces", 'null', 400, "malformed", "", ""),
    ("POST", "/v1/spaces", '', 400, "malformed", "", ""),
    ("POST", "/v1/groups", '{"name": "g"} x', 400, "malformed", "", ""),
    ("POST", "/v1/endpoints", '{"handle": "e", ', 400, "malformed", "", ""),
    ("POST", "/v1/endpoints", '42', 400, "malformed", "", ""),
    ("PATCH", "/v1/endpoints/keep", '{', 400, "malformed", "", ""),
    ("POST", "/v1/endpoints/keep/bind", '[]', 400, "malformed", "", ""),
    ("POST", "/v1/tenants/blue/segments", 'true', 400, "malformed", "", ""),
    # -- spaces
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "color": "red"}, 400,
     "unknown_field", "color", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "family": 4}, 400,
     "unknown_field", "family", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/33"}, 400, "invalid", "cidr",
     "10.1.0.0/33"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "fd77::/129"}, 400, "invalid", "cidr",
     "fd77::/129"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.1/16"}, 400, "invalid", "cidr",
     "10.1.0.1/16"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "fd77::1/64"}, 400, "invalid", "cidr",
     "fd77::1/64"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "banana"}, 400, "invalid", "cidr", "banana"),
    # a bare address is a /32: too small for the default block size
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0"}, 400, "invalid", N, N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/"}, 400, "invalid", "cidr",
     "10.1.0.0/"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "256.1.0.0/16"}, 400, "invalid", "cidr",
     "256.1.0.0/16"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": 167837696}, 400, "invalid", "cidr", N),
    ("POST", "/v1/spaces", {"name": "x"}, 400, "invalid", "cidr", N),
    ("POST", "/v1/spaces", {"cidr": "10.1.0.0/16"}, 400, "invalid", "name", N),
    # overlap with v4 = 10.64.0.0/16 and v6 = fd10::/48: inside, around, equal
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.64.128.0/20"}, 409, "conflict", "cidr",
     "10.64.128.0/20"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.0.0.0/8"}, 409, "conflict", "cidr",
     "10.0.0.0/8"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.64.0.0/16"}, 409, "conflict", "cidr",
     "10.64.0.0/16"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "fd10::/32"}, 409, "conflict", "cidr",
     "fd10::/32"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "fd10:0:0:1::/64"}, 409, "conflict", "cidr",
     "fd10:0:0:1::/64"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "block_size": 12}, 400,
     "invalid", "block_size", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "block_size": 32}, 400,
     "invalid", "block_size", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.0.0.0/8", "block_size": 15}, 400,
     "invalid", "block_size", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "block_size": 33}, 400,
     "invalid", "block_size", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "fd77::/64", "block_size": 128}, 400,
     "invalid", "block_size", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "fd77::/64", "block_size": 111}, 400,
     "invalid", "block_size", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "block_size": "28"}, 400,
     "invalid", "block_size", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "block_size": -1}, 400,
     "invalid", "block_size", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "reserved": ["10.2.0.1"]},
     400, "invalid", "reserved", "10.2.0.1"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "reserved": ["fd77::1"]},
     400, "invalid", "reserved", "fd77::1"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "reserved": ["10.1.0.1/24"]},
     400, "invalid", "reserved", "10.1.0.1/24"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "reserved": ["nope"]},
     400, "invalid", "reserved", "nope"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "reserved": "10.1.0.1"},
     400, "invalid", "reserved", N),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "reserved": [1]},
     400, "invalid", "reserved", N),
    ("POST", "/v1/spaces", {"name": "Bad_Name", "cidr": "10.1.0.0/16"}, 400, "invalid", "name",
     "Bad_Name"),
    ("POST", "/v1/spaces", {"name": "v4", "cidr": "10.99.0.0/16"}, 409, "exists", "name", "v4"),
    # -- names, on every kind
    ("POST", "/v1/tenants", {"name": "-lead"}, 400, "invalid", "name", "-lead"),
    ("POST", "/v1/tenants", {"name": "trail."}, 400, "invalid", "name", "trail."),
    ("POST", "/v1/tenants", {"name": "a" * 64}, 400, "invalid", "name", "a" * 64),
    ("POST", "/v1/tenants", {"name": ""}, 400, "invalid", "name", ""),
    ("POST", "/v1/tenants", {"name": "has space"}, 400, "invalid", "name", "has space"),
    ("POST", "/v1/tenants", {"name": "UPPER"}, 400, "invalid", "name", "UPPER"),
    ("POST", "/v1/tenants", {"name": "a_b"}, 400, "invalid", "name", "a_b"),
    ("POST", "/v1/tenants", {"name": 7}, 400, "invalid", "name", N),
    ("POST", "/v1/tenants", {}, 400, "invalid", "name", N),
    ("POST", "/v1/tenants", {"name": "t", "owner": "x"}, 400, "unknown_field", "owner", N),
    ("POST", "/v1/tenants", {"name": "t", "labels": ["a"]}, 400, "invalid", "labels", N),
    ("POST", "/v1/tenants", {"name": "t", "labels": {"a": 1}}, 400, "invalid", "labels", N),
    ("POST", "/v1/tenants", {"name": "blue", "labels": {"x": "y"}}, 409, "exists", "name",
     "blue"),
    ("POST", "/v1/groups", {"name": "Rack_1"}, 400, "invalid", "name", "Rack_1"),
    ("POST", "/v1/hosts", {"name": "h.", "address": "192.0.2.9", "group": "rack1"}, 400,
     "invalid", "name", "h."),
    ("POST", "/v1/tenants/blue/segments", {"name": "Web"}, 400, "invalid", "name", "Web"),
    # -- groups
    ("POST", "/v1/groups", {"name": "g", "parent": "nope"}, 404, "not_found", "parent", "nope"),
    ("POST", "/v1/groups", {"name": "g", "capacity": -1}, 400, "invalid", "capacity", N),
    ("POST", "/v1/groups", {"name": "g", "capacity": 0}, 400, "invalid", "capacity", N),
    ("POST", "/v1/groups", {"name": "g", "capacity": "16"}, 400, "invalid", "capacity", N),
    ("POST", "/v1/groups", {"name": "g", "capacity": 1.5}, 400, "invalid", "capacity", N),
    ("POST", "/v1/groups", {"name": "g", "capacity": 10 ** 9}, 409, "exhausted", "capacity",
     N),
    # a child that does not fit its parent (rack1 is a /22)
    ("POST", "/v1/groups", {"name": "g", "parent": "rack1", "capacity": 4096}, 409,
     "exhausted", "capacity", N),
    ("POST", "/v1/groups", {"name": "g", "prefixes": {"v4": "10.64.0.0/24"}}, 400,
     "unknown_field", "prefixes", N),
    ("POST", "/v1/groups", {"name": "rack1", "parent": "rack2"}, 409, "exists", "name", "rack1"),
    # -- hosts
    ("POST", "/v1/hosts", {"name": "hx", "address": "192.0.2.99", "group": "nope"}, 404,
     "not_found", "group", "nope"),
    ("POST", "/v1/hosts", {"name": "hx", "address": "192.0.2.99"}, 400, "invalid", "group", N),
    ("POST", "/v1/hosts", {"name": "hx", "address": "300.1.1.1", "group": "rack1"}, 400,
     "invalid", "address", "300.1.1.1"),
    ("POST", "/v1/hosts", {"name": "hx", "address": "192.0.2.0/24", "group": "rack1"}, 400,
     "invalid", "address", "192.0.2.0/24"),
    ("POST", "/v1/hosts", {"name": "hx", "group": "rack1"}, 400, "invalid", "address", N),
    ("POST", "/v1/hosts", {"name": "hx", "address": "192.0.2.9", "group": "rack1",
                           "blocks": []}, 400, "unknown_field", "blocks", N),
    ("POST", "/v1/hosts", {"name": "h1", "address": "192.0.2.99", "group": "rack1"}, 409,
     "exists", "name", "h1"),
    # -- segments
    ("POST", "/v1/tenants/nope/segments", {"name": "s"}, 404, "not_found", "tenant", "nope"),
    ("POST", "/v1/tenants/blue/segments", {"name": "s", "spaces": ["nope"]}, 404, "not_found",
     "spaces", "nope"),
    ("POST", "/v1/tenants/blue/segments", {"name": "s", "spaces": ["v4", "nope"]}, 404,
     "not_found", "spaces", "nope"),
    ("POST", "/v1/tenants/blue/segments", {"name": "s", "spaces": "v4"}, 400, "invalid",
     "spaces", N),
    # the tenant comes from the path; a body naming another one is refused
    ("POST", "/v1/tenants/blue/segments", {"name": "s", "tenant": "red"}, 400, N,
     "tenant", N),
    ("POST", "/v1/tenants/blue/segments", {"name": "s", "vlan": 5}, 400, "unknown_field",
     "vlan", N),
    ("POST", "/v1/tenants/blue/segments", {"name": "web", "spaces": ["v4"]}, 409, "exists",
     "name", "web"),
    # -- endpoints
    ("POST", "/v1/endpoints", EP("e", tenant="nope"), 404, "not_found", "tenant", "nope"),
    ("POST", "/v1/endpoints", EP("e", segment="nope"), 404, "not_found", "segment", "nope"),
    # app is red's segment, not blue's
    ("POST", "/v1/endpoints", EP("e", segment="app"), 404, "not_found", "segment", "app"),
    ("POST", "/v1/endpoints", EP("e", host="nope"), 404, "not_found", "host", "nope"),
    ("POST", "/v1/endpoints", EP("e", parent="nope"), 404, "not_found", "parent", "nope"),
    ("POST", "/v1/endpoints", EP("e", host=None, parent="nope"), 404, "not_found", "parent",
     "nope"),
    ("POST", "/v1/endpoints", EP("e", kind="cow"), 400, "invalid", "kind", "cow"),
    ("POST", "/v1/endpoints", EP("bad handle"), 400, "invalid", "handle", "bad handle"),
    ("POST", "/v1/endpoints", EP("a/b"), 400, "invalid", "handle", "a/b"),
    ("POST", "/v1/endpoints", EP("x" * 254), 400, "invalid", "handle", N),
    ("POST", "/v1/endpoints", EP(""), 400, "invalid", "handle", ""),
    ("POST", "/v1/endpoints", EP(5), 400, "invalid", "handle", N),
    ("POST", "/v1/endpoints", {"tenant": "blue", "segment": "web"}, 400, "invalid", "handle", N),
    ("POST", "/v1/endpoints", {"handle": "e", "segment": "web"}, 400, "invalid", "tenant", N),
    ("POST", "/v1/endpoints", {"handle": "e", "tenant": "blue"}, 400, "invalid", "segment", N),
    ("POST", "/v1/endpoints", EP("e", labels={"a": 1}), 400, "invalid", "labels", N),
    # Kubernetes label syntax: the error names the key or the value
    ("POST", "/v1/endpoints", EP("e", labels={"-app": "web"}), 400, "invalid", "labels", "-app"),
    ("POST", "/v1/endpoints", EP("e", labels={"a b": "web"}), 400, "invalid", "labels", "a b"),
    ("POST", "/v1/endpoints", EP("e", labels={"Example.com/app": "web"}), 400, "invalid", "labels",
     "Example.com/app"),
    ("POST", "/v1/endpoints", EP("e", labels={"a/b/c": "x"}), 400, "invalid", "labels", "a/b/c"),
    ("POST", "/v1/endpoints", EP("e", labels={"x" * 64: "y"}), 400, "invalid", "labels", "x" * 64),
    ("POST", "/v1/endpoints", EP("e", labels={"app": "web\n#@ iptables"}), 400, "invalid",
     "labels", "web\n#@ iptables"),
    ("POST", "/v1/endpoints", EP("e", labels={"app": "v" * 64}), 400, "invalid", "labels", "v" * 64),
    ("POST", "/v1/endpoints", EP("e", labels={"app": "web-"}), 400, "invalid", "labels", "web-"),
    ("POST", "/v1/endpoints", EP("e", mac="02:00:00:00:00"), 400, "invalid", "mac",
     "02:00:00:00:00"),
    ("POST", "/v1/endpoints", EP("e", mac="zz:00:00:00:00:01"), 400, "invalid", "mac",
     "zz:00:00:00:00:01"),
    ("POST", "/v1/endpoints", EP("e", interface="a-very-long-interface-name"), 400, "invalid",
     "interface", "a-very-long-interface-name"),
    ("POST", "/v1/endpoints", EP("e", addresses=[]), 400, "unknown_field", "addresses", N),
    ("POST", "/v1/endpoints", EP("e", ip="10.64.0.5"), 400, "unknown_field", "ip", N),
    ("POST", "/v1/endpoints", EP("e", host="Bad_Host"), 400, "invalid", "host", "Bad_Host"),
    ("POST", "/v1/endpoints", EP("keep", host="h2"), 409, "conflict", "host", N),
    ("POST", "/v1/endpoints", EP("keep", segment="db"), 409, "conflict", "segment", N),
    ("PATCH", "/v1/endpoints/nope", {"name": "x"}, 404, "not_found", "handle", "nope"),
    ("PATCH", "/v1/endpoints/keep", {"kind": "cow"}, 400, "invalid", "kind", "cow"),
    ("PATCH", "/v1/endpoints/keep", {"host": "h2"}, 400, "unknown_field", "host", N),
    ("PATCH", "/v1/endpoints/keep", {"tenant": "red"}, 400, "unknown_field", "tenant", N),
    ("PATCH", "/v1/endpoints/keep", {"mac": "nope"}, 400, "invalid", "mac", "nope"),
    ("PATCH", "/v1/endpoints/keep", {"labels": "x"}, 400, "invalid", "labels", N),
    ("POST", "/v1/endpoints/nope/bind", {"host": "h1"}, 404, "not_found", "handle", "nope"),
    ("POST", "/v1/endpoints/keep/bind", {"host": "nope"}, 404, "not_found", "host", "nope"),
    ("POST", "/v1/endpoints/keep/bind", {}, 400, "invalid", "host", N),
    ("POST", "/v1/endpoints/keep/bind", {"host": 3}, 400, "invalid", "host", N),
    ("POST", "/v1/endpoints/keep/bind", {"host": "h2", "force": True}, 400, "unknown_field",
     "force", N),
    # -- paths and methods
    ("GET", "/v1/nothing", None, 404, "not_found", N, N),
    ("GET", "/v1/spaces/nope", None, 404, "not_found", N, N),
    ("GET", "/v1/endpoints/nope", None, 404, "not_found", "handle", "nope"),
    ("GET", "/v1/tenants/nope/segments/web", None, 404, "not_found", "tenant", "nope"),
    ("PUT", "/v1/spaces", {"name": "x"}, 405, "method_not_allowed", N, N),
    ("DELETE", "/v1/spaces", None, 405, "method_not_allowed", N, N),
    ("PATCH", "/v1/hosts/h1", {"group": "rack2"}, 405, "method_not_allowed", N, N),
    ("POST", "/v1/blocks", {}, 405, "method_not_allowed", N, N),
    ("POST", "/v1/tree", {}, 405, "method_not_allowed", N, N),
    ("DELETE", "/healthz", None, 405, "method_not_allowed", N, N),
    # -- the change feed's parameters
    ("GET", "/v1/changes?since=abc", None, 400, "invalid", "since", "abc"),
    ("GET", "/v1/changes?since=-1", None, 400, "invalid", "since", "-1"),
    ("GET", "/v1/changes?wait=301", None, 400, "invalid", "wait", "301"),
    ("GET", "/v1/changes?limit=0", None, 400, "invalid", "limit", "0"),
    ("GET", "/v1/changes?limit=10001", None, 400, "invalid", "limit", "10001"),
]


def _id(b):
    body = b[2] if isinstance(b[2], str) else repr(b[2])
    return "%s %s %s" % (b[0], b[1], body[:60])


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One daemon with the topology for all the bad-input cases (they change
    nothing, which is what each checks); a case that fails gets the next one
    a fresh daemon, so a wrong change cannot spill into other cases."""
    state = {"d": None, "api": None, "dirty": True, "problems": []}

    def fresh():
        if state["d"] is not None:
            state["api"].close()
            state["problems"] += state["d"].finish()
        d = Larchd(tmp_path_factory.mktemp("bad"), ["--block-cooldown", "0"]).start()
        api = d.client()
        make_topology(api)
        assert api.post("/v1/endpoints", EP("keep", host="h1"))[0] == 201
        state.update(d=d, api=api, dirty=False)

    def get():
        if state["dirty"] or not state["d"].alive():
            fresh()
        return state

    yield get
    if state["d"] is not None:
        state["api"].close()
        state["problems"] += state["d"].finish()
    if state["problems"]:
        pytest.fail("\n".join(state["problems"]), pytrace=False)


@pytest.mark.parametrize("method,path,body,status,code,field,value", BAD,
                         ids=[_id(b) for b in BAD])
def test_bad_input_changes_nothing(shared, method, path, body, status, code, field, value):
    state = shared()
    api = state["api"]
    state["dirty"] = True
    before = snapshot(api)
    st, err = api.call(method, path, body)
    check_error(st, err, status, code, field, value)
    assert_unchanged(api, before)
    state["dirty"] = False


def test_exhausted_space_names_what_ran_out(api):
    st, sp = api.post("/v1/spaces", {"name": "tiny", "cidr": "10.9.0.0/27", "block_size": 28})
    assert st == 201, sp
    assert api.post("/v1/groups", {"name": "g", "capacity": 32})[0] == 201
    assert api.post("/v1/hosts", {"name": "h", "address": "192.0.2.1", "group": "g"})[0] == 201
    assert api.post("/v1/tenants", {"name": "t"})[0] == 201
    assert api.post("/v1/tenants/t/segments", {"name": "s"})[0] == 201
    got = []
    for i in range(64):
        st, ep = api.post("/v1/endpoints", EP("e%d" % i, "t", "s", "h"))
        if st != 201:
            break
        got.append(ep["addresses"][0]["address"])
    e = check_error(st, ep, 409, "exhausted")
    assert "tiny" in e["message"] or "10.9.0.0/" in e["message"] or "g" in e["message"], e
    # network and broadcast never handed out; no duplicates; everything else was
    assert "10.9.0.0" not in got and "10.9.0.31" not in got
    assert len(got) == len(set(got)) == 30
    before = snapshot(api)
    check_error(*api.post("/v1/endpoints", EP("more", "t", "s", "h")), 409, "exhausted")
    assert_unchanged(api, before)
    # releasing one makes room again (cool-down 0)
    assert api.delete("/v1/endpoints/e3")[0] == 204
    assert api.post("/v1/endpoints", EP("more", "t", "s", "h"))[0] == 201


def test_malformed_on_every_mutating_route(api):
    make_topology(api)
    assert api.post("/v1/endpoints", EP("keep"))[0] == 201
    before = snapshot(api)
    routes = [("POST", "/v1/spaces"), ("POST", "/v1/groups"), ("POST", "/v1/hosts"),
              ("POST", "/v1/tenants"), ("POST", "/v1/tenants/blue/segments"),
              ("POST", "/v1/endpoints"), ("PATCH", "/v1/endpoints/keep"),
              ("POST", "/v1/endpoints/keep/bind")]
    for method, path in routes:
        for body in ('{"name": ', '[]', '"x"', '1', '', '{"a": 1}}', b'\xff\xfe',
                     b'{"name": "\xff"}', '{"name": "a", "name": "b"}'):
            st, err = api.call(method, path, body)
            check_error(st, err, 400, "malformed", "", "")
    assert_unchanged(api, before)


def test_body_too_large(api):
    make_topology(api)
    before = snapshot(api)
    for path in ("/v1/spaces", "/v1/endpoints", "/v1/tenants/blue/segments"):
        body = '{"name": "' + "x" * (1 << 20) + '"}'
        st, err = api.call("POST", path, body)
        check_error(st, err, 413, "too_large")
        api.close()
    assert_unchanged(api, before)
    # exactly 1 MiB is not too large (but not a valid name either)
    body = '{"name": "' + "x" * ((1 << 20) - 12) + '"}'
    assert len(body) == 1 << 20
    st, err = api.call("POST", "/v1/tenants", body)
    check_error(st, err, 400, "invalid", "name")
    # a big valid body is accepted: a bulk with long labels
    eps = [EP("big-%d" % i, host="h%d" % (i % 4 + 1),
              labels={"k%d" % j: "v" * 63 for j in range(3)}) for i in range(600)]
    assert len(json.dumps({"endpoints": eps})) < (1 << 20)
    st, body = api.post("/v1/endpoints", {"endpoints": eps})
    assert st == 200 and all(r["status"] == 201 for r in body["results"])
