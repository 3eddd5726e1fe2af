# SPDX-License-Identifier: MIT
"""Durability: larchd is killed with SIGKILL in the middle of a burst of
allocations (8 client threads, single and bulk POSTs, some DELETEs), then
restarted on the same database. Every allocation whose 200/201 was received
must be there with exactly the same addresses, every acknowledged delete must
stay deleted, no address may be held twice, blocks must agree with their
endpoints, and the store revision must not go back from anything a client saw.
Three rounds on one database, then a round ended by SIGTERM (clean: exit 0,
nothing acknowledged lost), then a clean stop and start."""
import http.client
import ipaddress
import random
import threading
import time

from conftest import endpoint_body

NTHREADS = 8


def topology(api):
    for body in ({"name": "v4", "cidr": "10.0.0.0/12"}, {"name": "v6", "cidr": "fd00::/48"}):
        assert api.post("/v1/spaces", body)[0] == 201
    assert api.post("/v1/groups", {"name": "zone", "capacity": 1 << 18})[0] == 201
    for r in ("rack1", "rack2"):
        assert api.post("/v1/groups", {"name": r, "parent": "zone"})[0] == 201
    for i in range(4):
        assert api.post("/v1/hosts", {"name": "h%d" % (i + 1), "address": "192.0.2.%d" % (i + 1),
                                      "group": "rack%d" % (i % 2 + 1)})[0] == 201
    assert api.post("/v1/tenants", {"name": "blue"})[0] == 201
    for s, spaces in (("web", ["v4", "v6"]), ("db", ["v4"])):
        assert api.post("/v1/tenants/blue/segments", {"name": s, "spaces": spaces})[0] == 201


class Ledger:
    """What the clients know for certain."""

    def __init__(self):
        self.lock = threading.Lock()
        self.present = {}      # handle -> addresses, acknowledged and not deleted
        self.deleted = set()   # acknowledged deletes (or creates found not to have happened)
        self.unknown = set()   # create sent, no answer: may or may not have happened
        self.unknown_del = {}  # handle -> addresses: delete sent, no answer
        self.unexpected = []   # answers that should not happen
        self.max_rev = 0       # highest revision any client saw
        self.acks = 0


def addrs_of(ep):
    return sorted((a["space"], a["address"]) for a in ep["addresses"])


def worker(d, prefix, n, ledger, stop, seed):
    rng = random.Random(seed)
    c = d.client(timeout=30)
    mine = []
    i = 0
    try:
        while not stop.is_set():
            r = rng.random()
            if r < 0.15 and mine:
                h = mine.pop(rng.randrange(len(mine)))
                with ledger.lock:
                    ledger.unknown_del[h] = ledger.present.pop(h)
                st, body = c.delete("/v1/endpoints/" + h)
                with ledger.lock:
                    if st == 204:
                        del ledger.unknown_del[h]
                        ledger.deleted.add(h)
                        ledger.acks += 1
                    else:
                        ledger.unexpected.append(("DELETE", h, st, body))
                continue
            bulk = r < 0.35
            specs = []
            for _ in range(rng.randrange(2, 8) if bulk else 1):
                h = "%s-%d-%d" % (prefix, n, i)
                i += 1
                specs.append(endpoint_body(h, segment=rng.choice(["web", "db"]),
                                           host="h%d" % rng.randrange(1, 5)))
            with ledger.lock:
                ledger.unknown.update(s["handle"] for s in specs)
            if bulk:
                st, body = c.post("/v1/endpoints", {"endpoints": specs})
                results = body["results"] if st == 200 else None
            else:
                st, body = c.post("/v1/endpoints", specs[0])
                results = [{"status": st, "endpoint": body}] if st in (200, 201) else None
            with ledger.lock:
                if results is None:
                    ledger.unexpected.append(("POST", specs[0]["handle"], st, body))
                    continue
                for s, res in zip(specs, results):
                    if res["status"] not in (200, 201):
                        ledger.unexpected.append(("POST item", s["handle"], res))
                        continue
                    ledger.unknown.discard(s["handle"])
                    ledger.present[s["handle"]] = addrs_of(res["endpoint"])
                    ledger.acks += 1
                    mine.append(s["handle"])
    except (OSError, http.client.HTTPException):
        pass  # the daemon is gone
    finally:
        c.close()


def watcher(d, ledger, stop):
    """Track the highest revision the daemon reported to anyone."""
    c = d.client(timeout=10)
    try:
        while not stop.is_set():
            st, h = c.get("/healthz")
            if st == 200:
                with ledger.lock:
                    ledger.max_rev = max(ledger.max_rev, h["revision"])
            time.sleep(0.01)
    except (OSError, http.client.HTTPException):
        pass
    finally:
        c.close()


def burst(d, prefix, ledger, seed):
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(d, prefix, n, ledger, stop, seed * 100 + n))
               for n in range(NTHREADS)]
    threads.append(threading.Thread(target=watcher, args=(d, ledger, stop)))
    for t in threads:
        t.start()
    return stop, threads


def wait_acks(ledger, n, timeout=20):
    """Bounded wait until the clients have n more acknowledgements."""
    with ledger.lock:
        goal = ledger.acks + n
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ledger.lock:
            if ledger.acks >= goal:
                return
        time.sleep(0.01)
    raise AssertionError("the burst made no progress (%d acks)" % ledger.acks)


def check(api, ledger, where):
    st, lst = api.get("/v1/endpoints")
    assert st == 200
    items = {e["handle"]: e for e in lst["items"]}
    assert len(items) == len(lst["items"])
    for h, addrs in ledger.present.items():
        assert h in items, "%s: acknowledged endpoint %s lost" % (where, h)
        assert addrs_of(items[h]) == addrs, "%s: %s has other addresses now" % (where, h)
    for h in ledger.deleted:
        assert h not in items, "%s: acknowledged delete of %s undone" % (where, h)
    for h, addrs in ledger.unknown_del.items():
        if h in items:
            assert addrs_of(items[h]) == addrs, "%s: %s has other addresses now" % (where, h)
    for h in items:
        assert h in ledger.present or h in ledger.unknown or h in ledger.unknown_del, \
            "%s: %s exists but was never acknowledged nor in flight" % (where, h)
    held = [(a["space"], a["address"]) for e in items.values() for a in e["addresses"]]
    assert len(held) == len(set(held)), "%s: an address is held twice" % where
    # blocks agree with the endpoints and lie in their group
    groups = {g["name"]: g for g in api.get("/v1/groups")[1]["items"]}
    used = {}
    for e in items.values():
        for a in e["addresses"]:
            assert ipaddress.ip_address(a["address"]) in ipaddress.ip_network(a["block"])
            used[(a["space"], a["block"])] = used.get((a["space"], a["block"]), 0) + 1
    for b in api.get("/v1/blocks")[1]["items"]:
        assert b["used"] == used.pop((b["space"], b["cidr"]), 0), (where, b)
        assert ipaddress.ip_network(b["cidr"]).subnet_of(
            ipaddress.ip_network(groups[b["group"]]["prefixes"][b["space"]])), (where, b)
    assert not used, "%s: addresses in blocks that are not listed: %s" % (where, used)
    rev = api.get("/healthz")[1]["revision"]
    assert rev >= ledger.max_rev, "%s: revision went back from %d to %d" % (
        where, ledger.max_rev, rev)
    assert lst["revision"] <= rev
    # settle what was in flight: from now on it must stay as found
    for h in ledger.unknown:
        if h in items:
            ledger.present[h] = addrs_of(items[h])
        else:
            ledger.deleted.add(h)
    for h, addrs in ledger.unknown_del.items():
        if h in items:
            ledger.present[h] = addrs
        else:
            ledger.deleted.add(h)
    in_flight = len(ledger.unknown) + len(ledger.unknown_del)
    ledger.unknown, ledger.unknown_del = set(), {}
    return in_flight


def test_kill9_during_burst(larchd_factory):
    d = larchd_factory(["--block-cooldown", "0"])
    api = d.client()
    topology(api)
    ledger = Ledger()
    rng = random.Random(1234)
    in_flight = 0
    for rnd in range(3):
        stop, threads = burst(d, "k%d" % rnd, ledger, rnd)
        try:
            wait_acks(ledger, 100)
            time.sleep(rng.random() * 0.3)
            d.kill9()
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        assert not any(t.is_alive() for t in threads), "a client thread hangs"
        assert not ledger.unexpected, ledger.unexpected[:5]
        api.close()
        d.start()
        in_flight += check(api, ledger, "after kill -9 #%d" % (rnd + 1))
        # it goes on allocating, without clashing with what was there
        st, ep = api.post("/v1/endpoints", endpoint_body("after-%d" % rnd, host="h1"))
        assert st == 201, ep
        ledger.present[ep["handle"]] = addrs_of(ep)
        check(api, ledger, "after kill -9 #%d and one more allocation" % (rnd + 1))
    print("after the kills: %d present, %d deleted; %d requests were in flight" % (
        len(ledger.present), len(ledger.deleted), in_flight))
    assert len(ledger.present) > 100 and ledger.deleted
    # a clean stop and start at rest: everything exactly as it was
    before = (api.get("/v1/endpoints")[1], api.get("/v1/blocks")[1], api.get("/healthz")[1])
    api.close()
    assert d.stop() == 0
    d.start()
    after = (api.get("/v1/endpoints")[1], api.get("/v1/blocks")[1], api.get("/healthz")[1])
    key = lambda x: sorted(x["items"], key=lambda o: str(sorted(o.items())))
    assert key(after[0]) == key(before[0]) and key(after[1]) == key(before[1])
    assert after[2] == before[2]
    check(api, ledger, "after a clean restart")
    api.close()


def test_sigterm_during_burst(larchd_factory):
    """docs/larchd.md: SIGTERM stops larchd cleanly (exit 0), and every
    acknowledged change is on disk."""
    d = larchd_factory(["--block-cooldown", "0"])
    api = d.client()
    topology(api)
    ledger = Ledger()
    stop, threads = burst(d, "t", ledger, 99)
    try:
        wait_acks(ledger, 100)
        rc = d.stop()
        log_tail = d.log_text().strip().splitlines()[-2:]
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not ledger.unexpected, ledger.unexpected[:5]
    api.close()
    d.start()
    check(api, ledger, "after SIGTERM")
    api.close()
    assert rc == 0, "larchd exited with %s on SIGTERM during a burst; log: %s" % (rc, log_tail)


def test_sigterm_while_agents_follow_the_feed(larchd_factory):
    """Agents follow the feed with back-to-back long-polls on one connection;
    SIGTERM must still stop larchd cleanly (exit 0)."""
    d = larchd_factory()
    stop = threading.Event()
    polls = []

    def agent():
        c = d.client(timeout=30)
        since = 0
        try:
            while not stop.is_set():
                st, body = c.get("/v1/changes?since=%d&wait=60" % since)
                if st != 200:
                    break
                polls.append(body)
                since = body["revision"]
        except (OSError, http.client.HTTPException):
            pass
        finally:
            c.close()

    agents = [threading.Thread(target=agent) for _ in range(2)]
    for t in agents:
        t.start()
    api = d.client()
    assert api.post("/v1/tenants", {"name": "t"})[0] == 201
    deadline = time.monotonic() + 10
    while len(polls) < 2 and time.monotonic() < deadline:  # both saw the change
        time.sleep(0.02)
    assert len(polls) >= 2
    api.close()
    time.sleep(0.2)  # both are parked in their next long-poll
    try:
        rc = d.stop()
        log_tail = d.log_text().strip().splitlines()[-2:]
    finally:
        stop.set()
        for t in agents:
            t.join(30)
    assert rc == 0, "larchd exited with %s on SIGTERM; log: %s" % (rc, log_tail)
    d.start()
    c = d.client()
    assert c.get("/v1/tenants/t")[0] == 200
    c.close()
