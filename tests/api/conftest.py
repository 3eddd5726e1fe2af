# SPDX-License-Identifier: MIT
"""Fixtures: a real larchd on 127.0.0.1 (a free port) with its SQLite file in a
temporary directory, killed afterwards whatever happens."""
import http.client
import json
import os
import signal
import socket
import subprocess
import time

import pytest

BIN = os.environ.get("LARCH_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Client:
    """A tiny JSON client: every call returns (status, parsed body or None)."""

    def __init__(self, port=None, unix=None, token=None):
        self.port, self.unix, self.token = port, unix, token
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = (UnixHTTPConnection(self.unix) if self.unix
                         else http.client.HTTPConnection("127.0.0.1", self.port, timeout=60))
        return self.conn

    def raw(self, method, path, body=None, headers=None, token=True):
        hdrs = dict(headers or {})
        if token and self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            try:
                c = self._conn()
                c.request(method, path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                return r.status, data, r
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise

    def call(self, method, path, body=None, **kw):
        status, data, _ = self.raw(method, path, body, **kw)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data.decode()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None


class Larchd:
    def __init__(self, tmp_path, args=(), token=None, unix=False):
        self.dir = tmp_path
        self.db = str(tmp_path / "larch.db")
        self.port = free_port()
        self.args = list(args)
        self.token = token
        self.unix = str(tmp_path / "larchd.sock") if unix else None
        if token:
            (tmp_path / "token").write_text(token + "\n")
            self.args += ["--token-file", str(tmp_path / "token")]
        if self.unix:
            self.args += ["--unix", self.unix]
        self.proc = None
        self.log = open(tmp_path / "larchd.log", "ab")

    def start(self):
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "larchd"), "--listen", "127.0.0.1:%d" % self.port,
             "--db", self.db] + self.args, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        c = Client(self.port)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("larchd exited with %d; log:\n%s" % (
                    self.proc.returncode, (self.dir / "larchd.log").read_text()))
            try:
                if c.get("/healthz")[0] == 200:
                    c.close()
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("larchd did not become healthy")

    def client(self, token=True):
        return Client(self.port, token=self.token if token else None)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def restart(self):
        self.stop()
        return self.start()


@pytest.fixture
def larchd_factory(tmp_path):
    started = []

    def make(args=(), token=None, unix=False, subdir=None):
        d = tmp_path / (subdir or "d%d" % len(started))
        d.mkdir(exist_ok=True)
        l = Larchd(d, args, token, unix)
        started.append(l)
        return l.start()

    yield make
    for l in started:
        if l.proc and l.proc.poll() is None:
            l.proc.kill()
            l.proc.wait(5)
        l.log.close()


@pytest.fixture
def larchd(larchd_factory):
    return larchd_factory(["--block-cooldown", "0"])


@pytest.fixture
def api(larchd):
    c = larchd.client()
    yield c
    c.close()


def make_topology(api, v4="10.64.0.0/16", v6="fd10::/48", hosts=("h1", "h2", "h3", "h4")):
    """Two racks in a zone, four hosts, tenants blue (web, db) and red (app)."""
    assert api.post("/v1/spaces", {"name": "v4", "cidr": v4})[0] == 201
    if v6:
        assert api.post("/v1/spaces", {"name": "v6", "cidr": v6})[0] == 201
    assert api.post("/v1/groups", {"name": "zone", "capacity": 16384})[0] == 201
    assert api.post("/v1/groups", {"name": "rack1", "parent": "zone"})[0] == 201
    assert api.post("/v1/groups", {"name": "rack2", "parent": "zone"})[0] == 201
    for i, h in enumerate(hosts):
        st, body = api.post("/v1/hosts", {"name": h, "address": "192.0.2.%d" % (i + 1),
                                          "group": "rack1" if i < len(hosts) / 2 else "rack2"})
        assert st == 201, body
    assert api.post("/v1/tenants", {"name": "blue"})[0] == 201
    assert api.post("/v1/tenants", {"name": "red"})[0] == 201
    assert api.post("/v1/tenants/blue/segments", {"name": "web"})[0] == 201
    assert api.post("/v1/tenants/blue/segments", {"name": "db"})[0] == 201
    assert api.post("/v1/tenants/red/segments", {"name": "app"})[0] == 201


def snapshot(api):
    """Everything the API can list, for 'nothing changed' checks."""
    snap = {}
    for path in ("/v1/spaces", "/v1/groups", "/v1/hosts", "/v1/tenants", "/v1/endpoints",
                 "/v1/blocks", "/v1/tree"):
        st, body = api.get(path)
        assert st == 200, (path, body)
        snap[path] = body
    for t in snap["/v1/tenants"]["items"]:
        snap["seg:" + t["name"]] = api.get("/v1/tenants/%s/segments" % t["name"])[1]
    snap["health"] = api.get("/healthz")[1]
    return snap
