# SPDX-License-Identifier: MIT
"""Bearer tokens (docs/api.md, Authentication): with --token-file every
mutating request needs `Authorization: Bearer <token>`; a missing or wrong one
gets 401 and changes nothing; reads need no token."""
from conftest import Client, check_error, endpoint_body, make_topology, snapshot, assert_unchanged

TOKEN = "s3cret-token-0123456789"

MUTATIONS = [
    ("POST", "/v1/spaces", {"name": "x", "cidr": "10.200.0.0/16"}),
    ("DELETE", "/v1/spaces/x", None),
    ("POST", "/v1/groups", {"name": "g"}),
    ("DELETE", "/v1/groups/g", None),
    ("POST", "/v1/hosts", {"name": "hx", "address": "192.0.2.99", "group": "rack1"}),
    ("DELETE", "/v1/hosts/h4", None),
    ("POST", "/v1/tenants", {"name": "x"}),
    ("DELETE", "/v1/tenants/x", None),
    ("POST", "/v1/tenants/blue/segments", {"name": "s"}),
    ("DELETE", "/v1/tenants/blue/segments/s", None),
    ("POST", "/v1/endpoints", endpoint_body("new", host="h1")),
    ("POST", "/v1/endpoints", {"endpoints": [endpoint_body("bulk", host="h1")]}),
    ("PATCH", "/v1/endpoints/e", {"name": "n"}),
    ("POST", "/v1/endpoints/e/bind", {"host": "h2"}),
    ("POST", "/v1/endpoints/e/bind", {"host": None}),
    ("DELETE", "/v1/endpoints/e", None),
    # the token is checked before anything else: bad bodies and paths are 401 too
    ("POST", "/v1/tenants", "{not json"),
    ("POST", "/v1/nothing", {}),
    ("PUT", "/v1/spaces", {"name": "x"}),
]

BAD_HEADERS = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong-token-000000000"},
    {"Authorization": "Bearer " + TOKEN[:-1]},
    {"Authorization": "Bearer " + TOKEN + "x"},
    {"Authorization": "Bearer " + TOKEN.upper()},
    {"Authorization": TOKEN},
    {"Authorization": "Basic " + TOKEN},
    {"Authorization": "Token " + TOKEN},
    {"X-Token": TOKEN},
]


def test_mutations_need_the_token(larchd_factory):
    d = larchd_factory(["--block-cooldown", "0"], token=TOKEN)
    good, anon = d.client(), d.client(token=False)
    make_topology(good)
    assert good.post("/v1/endpoints", endpoint_body("e", host="h1"))[0] == 201
    before = snapshot(anon)  # reads need no token
    for method, path, body in MUTATIONS:
        for hdr in BAD_HEADERS:
            st, err = anon.call(method, path, body, headers=hdr)
            check_error(st, err, 401, "unauthorized")
    assert_unchanged(anon, before, "after 401s")
    # the right token works for each of them
    expect = {"POST": (200, 201), "DELETE": (204,), "PATCH": (200,)}
    for method, path, body in MUTATIONS[:16]:
        st, body2 = good.call(method, path, body)
        assert st in expect[method], (method, path, st, body2)
    # and a bad body with the right token is the usual 400, not a 401
    check_error(*good.call("POST", "/v1/tenants", "{not json"), 400, "malformed")
    good.close()
    anon.close()


def test_reads_need_no_token(larchd_factory):
    d = larchd_factory(token=TOKEN)
    good, anon = d.client(), d.client(token=False)
    make_topology(good)
    assert good.post("/v1/endpoints", endpoint_body("e", host="h1"))[0] == 201
    for path in ("/healthz", "/metrics", "/v1/spaces", "/v1/spaces/v4", "/v1/groups",
                 "/v1/groups/zone", "/v1/hosts", "/v1/hosts/h1", "/v1/tenants",
                 "/v1/tenants/blue", "/v1/tenants/blue/segments",
                 "/v1/tenants/blue/segments/web", "/v1/endpoints", "/v1/endpoints/e",
                 "/v1/endpoints?host=h1", "/v1/blocks", "/v1/tree", "/v1/changes?since=0"):
        for hdr in ({}, {"Authorization": "Bearer wrong-token-000000000"}):
            st, body = anon.get(path, headers=hdr)
            assert st == 200, (path, hdr, body)
    good.close()
    anon.close()


def test_token_on_the_unix_socket(larchd_factory):
    d = larchd_factory(token=TOKEN, unix=True)
    anon = Client(unix=d.unix)
    good = Client(unix=d.unix, token=TOKEN)
    before = snapshot(anon)
    check_error(*anon.post("/v1/tenants", {"name": "viaunix"}), 401, "unauthorized")
    assert_unchanged(anon, before)
    assert good.post("/v1/tenants", {"name": "viaunix"})[0] == 201
    assert anon.get("/v1/tenants/viaunix")[0] == 200
    good.close()
    anon.close()
