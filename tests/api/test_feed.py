# SPDX-License-Identifier: MIT
"""The change feed (docs/api.md, Change feed and Lists): order, revisions,
paging that never splits a revision, long-poll, list-then-follow consistency
under concurrent writers, and compaction (410)."""
import threading
import time

from conftest import check_error, endpoint_body, make_topology


def feed(api, since, **q):
    qs = "".join("&%s=%s" % kv for kv in q.items())
    st, body = api.get("/v1/changes?since=%d%s" % (since, qs))
    assert st == 200, body
    assert set(body) == {"revision", "changes"}, body
    return body


def check_shape(body, since):
    revs = [c["revision"] for c in body["changes"]]
    assert all(r > since for r in revs), (since, revs)
    assert revs == sorted(revs), revs
    for c in body["changes"]:
        assert c["type"] in ("put", "delete"), c
        assert c["kind"] in ("space", "group", "host", "tenant", "segment", "block",
                             "endpoint"), c
        assert c["key"].startswith("/larch/"), c
        assert ("object" in c) == (c["type"] == "put"), c
    if revs:
        assert body["revision"] >= revs[-1]
    else:
        assert body["revision"] >= since
    return revs


def read_all(api, since, limit=None):
    """Follow the feed from `since` to the current revision, page by page."""
    out = []
    while True:
        body = feed(api, since, **({"limit": limit} if limit else {}))
        check_shape(body, since)
        if not body["changes"]:
            assert body["revision"] == since
            return out, since
        out += body["changes"]
        assert body["revision"] == body["changes"][-1]["revision"] or limit is None
        since = body["revision"]


def test_feed_order_and_list_revision(api):
    make_topology(api)
    st, lst = api.get("/v1/endpoints")
    rev = lst["revision"]
    assert rev == api.get("/healthz")[1]["revision"]
    for i in range(10):
        assert api.post("/v1/endpoints", endpoint_body("f%d" % i, host="h1"))[0] == 201
    body = feed(api, rev)
    revs = check_shape(body, rev)
    # one allocation is one revision, consecutive
    assert sorted(set(revs)) == list(range(rev + 1, rev + 11))
    assert body["revision"] == rev + 10
    handles = [c["object"]["handle"] for c in body["changes"] if c["kind"] == "endpoint"]
    assert handles == ["f%d" % i for i in range(10)]
    for c in body["changes"]:
        if c["kind"] == "endpoint":
            ep = api.get("/v1/endpoints/" + c["object"]["handle"])[1]
            assert c["key"] == "/larch/endpoints/" + ep["handle"]
            assert [(a["space"], a["address"]) for a in c["object"]["addresses"]] == \
                [(a["space"], a["address"]) for a in ep["addresses"]]
    # the first allocation also claimed its blocks: in the same revision
    first = [c for c in body["changes"] if c["revision"] == rev + 1]
    assert sorted(c["kind"] for c in first) == ["block", "block", "endpoint"]
    # deletes are in the feed too: the endpoint, and (cool-down 0) its blocks
    assert api.delete("/v1/endpoints/f0")[0] == 204
    body2 = feed(api, body["revision"])
    check_shape(body2, body["revision"])
    assert {c["revision"] for c in body2["changes"]} == {body["revision"] + 1}
    assert {(c["type"], c["key"]) for c in body2["changes"] if c["kind"] == "endpoint"} == \
        {("delete", "/larch/endpoints/f0")}
    # nothing newer: empty, and the revision is the one asked about
    assert feed(api, body2["revision"]) == {"revision": body2["revision"], "changes": []}
    # since=0 is the whole history, starting at revision 1
    whole = feed(api, 0)
    assert whole["changes"][0]["revision"] == 1
    assert whole["changes"][0]["key"] == "/larch/spaces/v4"


def test_paging_never_splits_a_revision(api):
    make_topology(api)
    for i in range(12):
        assert api.post("/v1/endpoints", endpoint_body("p%d" % i, host="h%d" % (i % 4 + 1)))[0] == 201
        if i % 3 == 0:
            assert api.delete("/v1/endpoints/p%d" % i)[0] == 204
    full, last = read_all(api, 0)
    sizes = {}
    for c in full:
        sizes[c["revision"]] = sizes.get(c["revision"], 0) + 1
    assert max(sizes.values()) >= 3  # some revisions carry several changes
    assert sorted(sizes) == list(range(1, last + 1))  # every revision, no gaps
    for limit in (1, 2, 3, 7):
        since = 0
        paged = []
        while True:
            body = feed(api, since, limit=limit)
            revs = check_shape(body, since)
            if not revs:
                break
            # whole revisions only, and no more than needed to reach the limit
            for r in set(revs):
                assert revs.count(r) == sizes[r], (limit, r)
            assert len(set(revs)) == 1 or len(revs) <= limit + max(sizes.values()), revs
            assert body["revision"] == revs[-1]
            paged += body["changes"]
            since = body["revision"]
        assert paged == full, limit


def test_limit_default_and_max(api):
    make_topology(api)
    st, h = api.post("/v1/groups", {"name": "big", "parent": "zone", "capacity": 4096})
    assert st == 201
    assert api.post("/v1/hosts", {"name": "hb", "address": "192.0.2.50", "group": "big"})[0] == 201
    for k in range(2):
        st, body = api.post("/v1/endpoints", {"endpoints": [
            endpoint_body("lim-%d-%d" % (k, i), host="hb") for i in range(600)]})
        assert st == 200 and all(r["status"] == 201 for r in body["results"])
    full, last = read_all(api, 0, limit=10000)
    assert len(full) > 1200
    first = feed(api, 0)  # default limit 1000, whole revisions only
    n = len(first["changes"])
    assert 1000 <= n <= 1002, n
    assert first["revision"] == first["changes"][-1]["revision"] < last
    assert first["changes"] == full[:n]
    rest, end = read_all(api, first["revision"])
    assert first["changes"] + rest == full and end == last
    one = feed(api, 0, limit=10000)
    assert one["changes"] == full and one["revision"] == last


def test_long_poll_times_out_empty(api):
    make_topology(api)
    rev = api.get("/healthz")[1]["revision"]
    t0 = time.monotonic()
    body = feed(api, rev, wait=2)
    waited = time.monotonic() - t0
    assert body == {"revision": rev, "changes": []}
    assert 1.8 <= waited < 15, waited
    # wait=0: no waiting at all (and nothing to return)
    assert feed(api, rev, wait=0) == {"revision": rev, "changes": []}
    # something newer already there: answered at once, whatever the wait
    t0 = time.monotonic()
    body = feed(api, rev - 1, wait=300)
    assert time.monotonic() - t0 < 15
    assert {c["revision"] for c in body["changes"]} == {rev}


def test_long_poll_wakes_on_change(larchd, api):
    make_topology(api)
    rev = api.get("/healthz")[1]["revision"]
    results = {}

    def poll(i):
        c = larchd.client()
        t0 = time.monotonic()
        results[i] = (feed(c, rev, wait=60), time.monotonic() - t0)
        c.close()

    pollers = [threading.Thread(target=poll, args=(i,)) for i in range(3)]
    for t in pollers:
        t.start()
    time.sleep(0.5)
    assert not results  # all still waiting
    other = larchd.client()
    st, ep = other.post("/v1/endpoints", endpoint_body("late", host="h2"))
    assert st == 201
    for t in pollers:
        t.join(30)
        assert not t.is_alive(), "a long-poll did not return after a change"
    for body, waited in results.values():
        assert waited < 30, waited  # woke on the change, not at its 60 s timeout
        assert {c["revision"] for c in body["changes"]} == {rev + 1}
        assert [c["key"] for c in body["changes"] if c["kind"] == "endpoint"] == \
            ["/larch/endpoints/late"]
        assert body["revision"] == rev + 1
    # the same with wait=2, a change 0.3 s in: it returns the change
    box = {}

    def later():
        time.sleep(0.3)
        box["st"] = other.post("/v1/tenants", {"name": "late"})[0]

    th = threading.Thread(target=later)
    th.start()
    body = feed(api, rev + 1, wait=2)
    th.join(30)
    assert box["st"] == 201
    assert [c["key"] for c in body["changes"]] == ["/larch/tenants/late"]
    other.close()


def test_list_then_follow_misses_nothing(larchd):
    """Writers run while a reader lists endpoints and follows the feed from
    the list's revision; list + changes must always equal the final state."""
    api = larchd.client()
    make_topology(api)
    stop = threading.Event()
    errors = []

    def writer(n):
        c = larchd.client()
        i = 0
        try:
            while not stop.is_set():
                h = "w%d-%d" % (n, i)
                st, body = c.post("/v1/endpoints", endpoint_body(h, host="h%d" % (i % 4 + 1)))
                if st != 201:
                    errors.append((h, st, body))
                if i % 3 == 1:
                    st, body = c.delete("/v1/endpoints/w%d-%d" % (n, i - 1))
                    if st != 204:
                        errors.append(("delete", st, body))
                if i % 5 == 2:
                    st, body = c.post("/v1/endpoints/%s/bind" % h, {"host": "h3"})
                    if st != 200:
                        errors.append(("bind", st, body))
                i += 1
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    views = []
    try:
        for k in range(4):
            time.sleep(0.15)
            st, lst = api.get("/v1/endpoints")
            assert st == 200
            views.append(({e["handle"]: sorted((a["space"], a["address"]) for a in e["addresses"])
                           for e in lst["items"]}, lst["revision"]))
    finally:
        time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:5]
    st, final = api.get("/v1/endpoints")
    final_map = {e["handle"]: sorted((a["space"], a["address"]) for a in e["addresses"])
                 for e in final["items"]}
    assert len(final_map) > 10
    for state, rev in views:
        changes, last = read_all(api, rev)
        assert last == final["revision"]
        for c in changes:
            if c["kind"] != "endpoint":
                continue
            h = c["key"][len("/larch/endpoints/"):]
            if c["type"] == "put":
                assert c["object"]["handle"] == h
                state[h] = sorted((a["space"], a["address"]) for a in c["object"]["addresses"])
            else:
                assert h in state, "delete of %s which the list did not have" % h
                del state[h]
        assert state == final_map, "list at revision %d + feed != final list" % rev
    api.close()


def test_compaction_410(larchd_factory):
    d = larchd_factory(["--feed-retention", "5", "--block-cooldown", "0"])
    api = d.client()
    make_topology(api)
    for i in range(5):
        assert api.post("/v1/endpoints", endpoint_body("c%d" % i, host="h1"))[0] == 201
    rev = api.get("/healthz")[1]["revision"]
    assert rev > 10
    # housekeeping compacts every 10 s (larchd/main.c); wait at most 25 s
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        st, err = api.get("/v1/changes?since=1")
        if st == 410:
            break
        assert st == 200, err
        time.sleep(0.25)
    check_error(st, err, 410, "compacted", "since", "1")
    check_error(*api.get("/v1/changes?since=0"), 410, "compacted", "since", "0")
    check_error(*api.get("/v1/changes?since=%d&wait=5" % (rev - 6)), 410, "compacted", "since",
                str(rev - 6))
    # the last 5 revisions are kept
    body = feed(api, rev - 5)
    assert sorted({c["revision"] for c in body["changes"]}) == list(range(rev - 4, rev + 1))
    # a client that got 410 lists again and follows from the list's revision
    st, lst = api.get("/v1/endpoints")
    assert api.post("/v1/endpoints", endpoint_body("after", host="h2"))[0] == 201
    body = feed(api, lst["revision"])
    assert [c["key"] for c in body["changes"] if c["kind"] == "endpoint"] == \
        ["/larch/endpoints/after"]
    # compaction survives a restart
    api.close()
    d.restart()
    check_error(*api.get("/v1/changes?since=1"), 410, "compacted", "since", "1")
    assert feed(api, lst["revision"])["changes"]
    api.close()
