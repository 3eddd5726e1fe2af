# SPDX-License-Identifier: MIT
"""Bearer tokens, the change feed (long-poll, order, compaction), the unix socket."""
import os
import stat
import threading
import time

from conftest import Client, make_topology, snapshot

TOKEN = "s3cret-token-0123456789"


def test_token_required_for_changes(larchd_factory):
    d = larchd_factory(token=TOKEN)
    good, anon = d.client(), d.client(token=False)
    make_topology(good)
    before = snapshot(anon)  # reads need no token
    for method, path, body in (("POST", "/v1/tenants", {"name": "x"}),
                               ("DELETE", "/v1/tenants/red", None),
                               ("PATCH", "/v1/endpoints/e", {"name": "n"}),
                               ("POST", "/v1/endpoints", {"handle": "e", "tenant": "blue",
                                                          "segment": "web", "host": "h1"})):
        for hdr in ({}, {"Authorization": "Bearer wrong-token-000000000"},
                    {"Authorization": TOKEN}):
            st, err = anon.call(method, path, body, headers=hdr)
            assert st == 401 and err["error"]["code"] == "unauthorized", (method, path, hdr)
    assert snapshot(anon) == before
    assert good.post("/v1/tenants", {"name": "x"})[0] == 201


def test_feed_order_and_list_revision(api):
    make_topology(api)
    st, lst = api.get("/v1/endpoints")
    rev = lst["revision"]
    for i in range(10):
        api.post("/v1/endpoints", {"handle": "f%d" % i, "tenant": "blue", "segment": "web",
                                   "host": "h1"})
    st, feed = api.get("/v1/changes?since=%d" % rev)
    revs = [c["revision"] for c in feed["changes"]]
    assert revs == sorted(revs) and revs[0] == rev + 1
    handles = [c["object"]["handle"] for c in feed["changes"] if c["kind"] == "endpoint"]
    assert handles == ["f%d" % i for i in range(10)]
    # the first allocation also claimed blocks: same revision as the endpoint
    first = [c for c in feed["changes"] if c["revision"] == revs[0]]
    assert {c["kind"] for c in first} == {"endpoint", "block"}
    assert feed["revision"] == revs[-1]
    # paging never splits a revision
    st, page = api.get("/v1/changes?since=%d&limit=1" % rev)
    assert {c["revision"] for c in page["changes"]} == {rev + 1}
    assert len(page["changes"]) == len(first)
    assert page["revision"] == rev + 1
    # deletes are in the feed too
    api.delete("/v1/endpoints/f0")
    st, feed2 = api.get("/v1/changes?since=%d" % feed["revision"])
    assert any(c["type"] == "delete" and c["key"] == "/larch/endpoints/f0"
               for c in feed2["changes"])


def test_long_poll(api, larchd):
    make_topology(api)
    rev = api.get("/healthz")[1]["revision"]
    t0 = time.monotonic()
    st, empty = api.get("/v1/changes?since=%d&wait=1" % rev)
    waited = time.monotonic() - t0
    assert st == 200 and empty["changes"] == [] and waited >= 0.9
    other = larchd.client()

    def later():
        time.sleep(0.3)
        other.post("/v1/tenants", {"name": "late"})

    th = threading.Thread(target=later)
    th.start()
    t0 = time.monotonic()
    st, got = api.get("/v1/changes?since=%d&wait=20" % rev)
    th.join()
    assert st == 200 and [c["key"] for c in got["changes"]] == ["/larch/tenants/late"]
    assert time.monotonic() - t0 < 15  # woke on the change, not at the timeout


def test_compaction_410(larchd_factory):
    d = larchd_factory(["--feed-retention", "5"])
    api = d.client()
    make_topology(api)
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:  # housekeeping compacts every 10 s
        st, err = api.get("/v1/changes?since=1")
        if st == 410:
            break
        time.sleep(0.5)
    assert st == 410 and err["error"]["code"] == "compacted" and err["error"]["field"] == "since"
    rev = api.get("/healthz")[1]["revision"]
    st, ok = api.get("/v1/changes?since=%d" % (rev - 5))
    assert st == 200 and len({c["revision"] for c in ok["changes"]}) == 5


def test_unix_socket(larchd_factory):
    d = larchd_factory(unix=True)
    mode = stat.S_IMODE(os.stat(d.unix).st_mode)
    assert stat.S_ISSOCK(os.stat(d.unix).st_mode) and mode == 0o600
    c = Client(unix=d.unix)
    assert c.post("/v1/tenants", {"name": "viaunix"})[0] == 201
    assert c.get("/v1/tenants/viaunix")[0] == 200
    assert d.client().get("/v1/tenants/viaunix")[0] == 200
    d.stop()
    assert not os.path.exists(d.unix)
