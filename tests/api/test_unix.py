# SPDX-License-Identifier: MIT
"""--unix PATH (docs/larchd.md): the socket is created with mode 0600 (whatever
the umask) and serves the same API; with --listen none it is the only way in."""
import os
import stat

from conftest import Client, endpoint_body, make_topology


def test_unix_socket_mode_and_api(larchd_factory):
    old = os.umask(0)  # a permissive umask must not leak into the socket's mode
    try:
        d = larchd_factory(unix=True)
    finally:
        os.umask(old)
    st = os.stat(d.unix)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(stat.S_IMODE(st.st_mode))
    assert st.st_uid == os.getuid()
    c = Client(unix=d.unix)
    make_topology(c)
    st_, ep = c.post("/v1/endpoints", endpoint_body("u1", host="h1"))
    assert st_ == 201 and len(ep["addresses"]) == 2
    assert c.get("/v1/endpoints/u1") == (200, ep)
    # both listeners serve the same state
    tcp = d.client()
    assert tcp.get("/v1/endpoints/u1") == (200, ep)
    assert tcp.get("/healthz") == c.get("/healthz")
    assert c.delete("/v1/endpoints/u1")[0] == 204
    assert tcp.get("/v1/endpoints/u1")[0] == 404
    c.close()
    tcp.close()


def test_unix_only(larchd_factory):
    d = larchd_factory(unix=True, tcp=False)
    assert stat.S_IMODE(os.stat(d.unix).st_mode) == 0o600
    c = d.client()
    assert c.unix == d.unix
    assert c.post("/v1/tenants", {"name": "viaunix"})[0] == 201
    assert c.get("/v1/tenants/viaunix")[0] == 200
    st, h = c.get("/healthz")
    assert st == 200 and h["revision"] == 1
    c.close()
    # a restart on the same database and socket path
    d.restart()
    assert stat.S_IMODE(os.stat(d.unix).st_mode) == 0o600
    assert c.get("/v1/tenants/viaunix")[0] == 200
    c.close()
