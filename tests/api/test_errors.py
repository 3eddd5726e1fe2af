# SPDX-License-Identifier: MIT
"""Bad input: a 4xx whose JSON body names the field and value, and no change to
anything the API shows (every list, the tree and the store revision)."""
import pytest

from conftest import make_topology, snapshot

BAD = [
    # (method, path, body, status, code, field, value)
    ("POST", "/v1/spaces", '{"name": "x",', 400, "malformed", "", ""),
    ("POST", "/v1/spaces", '[1, 2]', 400, "malformed", "", ""),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "color": "red"}, 400,
     "unknown_field", "color", None),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/33"}, 400, "invalid", "cidr",
     "10.1.0.0/33"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.1/16"}, 400, "invalid", "cidr",
     "10.1.0.1/16"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "banana"}, 400, "invalid", "cidr", "banana"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.64.128.0/20"}, 409, "conflict", "cidr",
     "10.64.128.0/20"),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "block_size": 12}, 400,
     "invalid", "block_size", None),
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.1.0.0/16", "reserved": ["10.2.0.1"]},
     400, "invalid", "reserved", "10.2.0.1"),
    ("POST", "/v1/spaces", {"name": "Bad_Name", "cidr": "10.1.0.0/16"}, 400, "invalid", "name",
     "Bad_Name"),
    ("POST", "/v1/spaces", {"name": "v4", "cidr": "10.99.0.0/16"}, 409, "exists", "name", "v4"),
    ("POST", "/v1/groups", {"name": "g", "parent": "nope"}, 404, "not_found", "parent", "nope"),
    ("POST", "/v1/groups", {"name": "g", "capacity": -1}, 400, "invalid", "capacity", None),
    ("POST", "/v1/groups", {"name": "g", "capacity": 10 ** 9}, 409, "exhausted", "capacity",
     None),
    ("POST", "/v1/hosts", {"name": "hx", "address": "192.0.2.99", "group": "nope"}, 404,
     "not_found", "group", "nope"),
    ("POST", "/v1/hosts", {"name": "hx", "address": "300.1.1.1", "group": "rack1"}, 400,
     "invalid", "address", "300.1.1.1"),
    ("POST", "/v1/tenants/nope/segments", {"name": "s"}, 404, "not_found", "tenant", "nope"),
    ("POST", "/v1/tenants/blue/segments", {"name": "s", "spaces": ["nope"]}, 404, "not_found",
     "spaces", "nope"),
    ("POST", "/v1/endpoints", {"handle": "e", "tenant": "nope", "segment": "web", "host": "h1"},
     404, "not_found", "tenant", "nope"),
    ("POST", "/v1/endpoints", {"handle": "e", "tenant": "blue", "segment": "nope", "host": "h1"},
     404, "not_found", "segment", "nope"),
    ("POST", "/v1/endpoints", {"handle": "e", "tenant": "blue", "segment": "web", "host": "nope"},
     404, "not_found", "host", "nope"),
    ("POST", "/v1/endpoints", {"handle": "e", "tenant": "blue", "segment": "web", "kind": "cow"},
     400, "invalid", "kind", "cow"),
    ("POST", "/v1/endpoints", {"handle": "bad handle", "tenant": "blue", "segment": "web"}, 400,
     "invalid", "handle", "bad handle"),
    ("POST", "/v1/endpoints", {"tenant": "blue", "segment": "web"}, 400, "invalid", "handle",
     None),
    ("POST", "/v1/endpoints", {"handle": "e", "tenant": "blue", "segment": "web",
                               "labels": {"a": 1}}, 400, "invalid", "labels", None),
    ("PATCH", "/v1/endpoints/nope", {"name": "x"}, 404, "not_found", "handle", "nope"),
    ("POST", "/v1/endpoints/nope/bind", {"host": "h1"}, 404, "not_found", "handle", "nope"),
    ("GET", "/v1/nothing", None, 404, "not_found", None, None),
    ("PUT", "/v1/spaces", {"name": "x"}, 405, "method_not_allowed", None, None),
    ("GET", "/v1/changes?since=abc", None, 400, "invalid", "since", "abc"),
]


@pytest.mark.parametrize("method,path,body,status,code,field,value", BAD,
                         ids=["%s %s %d" % (b[0], b[1], i) for i, b in enumerate(BAD)])
def test_bad_input_changes_nothing(api, method, path, body, status, code, field, value):
    make_topology(api)
    api.post("/v1/endpoints", {"handle": "keep", "tenant": "blue", "segment": "web",
                               "host": "h1"})
    before = snapshot(api)
    st, err = api.call(method, path, body)
    assert st == status, err
    assert set(err) == {"error"}
    e = err["error"]
    assert e["code"] == code and e["message"]
    if field is not None:
        assert e["field"] == field, e
    if value is not None:
        assert e["value"] == value, e
    assert snapshot(api) == before


def test_exhausted_space_names_what_ran_out(api):
    assert api.post("/v1/spaces", {"name": "tiny", "cidr": "10.9.0.0/27",
                                   "block_size": 28})[0] == 201
    assert api.post("/v1/groups", {"name": "g"})[0] == 201
    assert api.post("/v1/hosts", {"name": "h", "address": "192.0.2.1", "group": "g"})[0] == 201
    assert api.post("/v1/tenants", {"name": "t"})[0] == 201
    assert api.post("/v1/tenants/t/segments", {"name": "s"})[0] == 201
    got = []
    for i in range(64):
        st, ep = api.post("/v1/endpoints", {"handle": "e%d" % i, "tenant": "t", "segment": "s",
                                            "host": "h"})
        if st != 201:
            break
        got.append(ep["addresses"][0]["address"])
    assert st == 409 and ep["error"]["code"] == "exhausted"
    assert "10.9.0.0/" in ep["error"]["message"] or "tiny" in ep["error"]["message"]
    # network address never handed out; no duplicates
    assert "10.9.0.0" not in got and len(got) == len(set(got)) > 0
    before = snapshot(api)
    assert api.post("/v1/endpoints", {"handle": "more", "tenant": "t", "segment": "s",
                                      "host": "h"})[0] == 409
    assert snapshot(api) == before


def test_body_too_large(api):
    before = snapshot(api)
    st, err = api.call("POST", "/v1/spaces", '{"name": "' + "x" * (1 << 20) + '"}')
    assert st == 413 and err["error"]["code"] == "too_large"
    api.close()
    assert snapshot(api) == before
