# SPDX-License-Identifier: MIT
"""kill -9 during a burst of allocations: after a restart every acknowledged
allocation is there with the same addresses, nothing is held twice, and the
revision did not go back. Three rounds on one database, then a clean stop."""
import random
import threading
import time

from conftest import make_topology


def burst(d, prefix, acked, stop, nthreads=8):
    def worker(n):
        c = d.client()
        i = 0
        while not stop.is_set():
            h = "%s-%d-%d" % (prefix, n, i)
            i += 1
            try:
                st, ep = c.post("/v1/endpoints", {"handle": h, "tenant": "blue",
                                                  "segment": "web" if i % 2 else "db",
                                                  "host": "h%d" % (i % 4 + 1)})
            except OSError:
                return  # the daemon is gone
            if st in (200, 201):
                acked[h] = ep["addresses"]
        c.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(nthreads)]
    for t in threads:
        t.start()
    return threads


def check(api, acked):
    items = api.get("/v1/endpoints")[1]["items"]
    by_handle = {e["handle"]: e["addresses"] for e in items}
    for h, addrs in acked.items():
        assert h in by_handle, "acknowledged %s lost" % h
        assert by_handle[h] == addrs, h
    held = [(a["space"], a["address"]) for e in items for a in e["addresses"]]
    assert len(held) == len(set(held)), "an address is held twice"
    # blocks agree with the endpoints
    used = {}
    for e in items:
        for a in e["addresses"]:
            used[a["block"]] = used.get(a["block"], 0) + 1
    for b in api.get("/v1/blocks")[1]["items"]:
        assert b["used"] == used.get(b["cidr"], 0), b


def test_kill9_during_burst(larchd_factory):
    d = larchd_factory(["--block-cooldown", "0"])
    api = d.client()
    make_topology(api, v4="10.64.0.0/14")
    acked = {}
    rng = random.Random(7)
    for rnd in range(3):
        rev_before = api.get("/healthz")[1]["revision"]
        stop = threading.Event()
        threads = burst(d, "r%d" % rnd, acked, stop)
        time.sleep(0.4 + rng.random() * 0.6)
        d.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        api.close()
        d.start()
        rev_after = api.get("/healthz")[1]["revision"]
        assert rev_after >= rev_before
        check(api, acked)
    assert len(acked) > 100  # the bursts did allocate
    api.close()
    assert d.stop() == 0
    d.start()
    check(api, acked)
