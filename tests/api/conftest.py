# SPDX-License-Identifier: MIT
"""Fixtures: a real larchd on 127.0.0.1 (a free port) with its SQLite file in a
temporary directory, stopped afterwards whatever happens.

Every daemon a test starts is checked when the test ends: it must still be
running (unless the test killed it on purpose), it must stop cleanly on
SIGTERM (exit 0), and its log must hold no sanitizer report. So a daemon that
crashes, or an ASan build (LARCH_BIN=/path/to/san/bin) that finds a memory
error, fails the test that provoked it.

Only the standard library and pytest: http.client, with a small subclass for
the unix socket."""
import http.client
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

BIN = os.environ.get("LARCH_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer", "Segmentation fault")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix stream socket."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Client:
    """A tiny JSON client on one keep-alive connection: every call returns
    (status, parsed JSON body, or the text for non-JSON answers, or None)."""

    def __init__(self, port=None, unix=None, token=None, timeout=60):
        self.port, self.unix, self.token, self.timeout = port, unix, token, timeout
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = (UnixHTTPConnection(self.unix, self.timeout) if self.unix else
                         http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout))
        return self.conn

    def raw(self, method, path, body=None, headers=None, token=True):
        hdrs = dict(headers or {})
        if token and self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            reused = self.conn is not None
            try:
                c = self._conn()
                c.request(method, path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                if (r.getheader("Connection") or "").lower() == "close":
                    self.close()
                return r.status, data, r
            except ConnectionError:
                # Retry once only when a kept-alive connection turned out to
                # be closed by the server before it read the request.
                self.close()
                if attempt or not reused:
                    raise
        raise AssertionError("unreachable")

    def call(self, method, path, body=None, **kw):
        status, data, r = self.raw(method, path, body, **kw)
        if not data:
            return status, None
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data.decode(errors="replace")

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
    """One larchd process on a database in `dir`; start() may be called again
    (after kill9() or stop()) to restart it on the same database."""

    def __init__(self, tmp_path, args=(), token=None, unix=False, tcp=True):
        self.dir = tmp_path
        self.db = str(tmp_path / "larch.db")
        self.port = free_port() if tcp else None
        self.args = list(args)
        self.token = token
        self.unix = str(tmp_path / "larchd.sock") if unix else None
        if token:
            (tmp_path / "token").write_text(token + "\n")
            self.args += ["--token-file", str(tmp_path / "token")]
        if self.unix:
            self.args += ["--unix", self.unix]
        self.proc = None
        self.logpath = tmp_path / "larchd.log"
        self.log = open(self.logpath, "ab")
        self.expect_exit = False  # set by kill9()/stop(): the process is meant to be gone
        self.problems = []

    def _listen_args(self):
        return ["--listen", "127.0.0.1:%d" % self.port if self.port else "none"]

    def start(self, timeout=20):
        env = dict(os.environ)
        # an ASan build: report memory errors, but leaks at exit are not what
        # these tests are about
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "larchd"), "--db", self.db] + self._listen_args() + self.args,
            stdout=self.log, stderr=self.log, env=env)
        self.expect_exit = False
        deadline = time.monotonic() + timeout
        c = self.client(token=False)
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("larchd exited with %d; log:\n%s" % (
                        self.proc.returncode, self.log_text()[-4000:]))
                try:
                    if c.get("/healthz")[0] == 200:
                        return self
                except (OSError, http.client.HTTPException):
                    c.close()
                time.sleep(0.05)
        finally:
            c.close()
        raise RuntimeError("larchd did not answer /healthz within %d s" % timeout)

    def client(self, token=True, timeout=60):
        tok = self.token if token else None
        if self.port:
            return Client(self.port, token=tok, timeout=timeout)
        return Client(unix=self.unix, token=tok, timeout=timeout)

    def log_text(self):
        self.log.flush()
        return self.logpath.read_text(errors="replace")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.expect_exit = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit status (-9 if it had to be killed)."""
        self.expect_exit = True
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.problems.append("larchd did not stop within %d s of SIGTERM" % timeout)
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def restart(self):
        rc = self.stop()
        if rc != 0:
            self.problems.append("larchd exited with %s on SIGTERM before a restart" % rc)
        return self.start()

    def finish(self):
        """Teardown: stop it cleanly and report what went wrong (a list)."""
        if self.proc is not None:
            if self.proc.poll() is not None and not self.expect_exit:
                self.problems.append("larchd died during the test (exit status %s)"
                                     % self.proc.returncode)
            elif self.proc.poll() is None:
                rc = self.stop()
                if rc != 0:
                    self.problems.append("larchd exited with %s on SIGTERM (expected 0)" % rc)
        self.log.close()
        text = self.logpath.read_text(errors="replace")
        for mark in SANITIZER_MARKS:
            if mark in text:
                i = text.index(mark)
                self.problems.append("larchd log has a %r report:\n%s" % (
                    mark, text[max(0, i - 200):i + 3000]))
                break
        if self.problems:
            # the tail says why (a library's fatal message, an abort)
            self.problems.append("log: %s, ending:\n%s" % (self.logpath, text[-3000:]))
        return self.problems


@pytest.fixture
def larchd_factory(tmp_path):
    """make(args, token=, unix=, tcp=) starts another larchd (each in its own
    directory) and returns its Larchd."""
    started = []

    def make(args=(), token=None, unix=False, tcp=True):
        d = tmp_path / ("d%d" % len(started))
        d.mkdir(exist_ok=True)
        lar = Larchd(d, args, token, unix, tcp)
        started.append(lar)
        return lar.start()

    yield make
    problems = []
    for lar in started:
        try:
            problems += lar.finish()
        except Exception as e:  # still stop the others
            problems.append("teardown: %r" % e)
        finally:
            if lar.proc and lar.proc.poll() is None:
                lar.proc.kill()
                lar.proc.wait(5)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def larchd(larchd_factory):
    return larchd_factory(["--block-cooldown", "0"])


@pytest.fixture
def api(larchd):
    c = larchd.client()
    yield c
    c.close()


# ---- helpers ----

def net(s):
    return ipaddress.ip_network(s)


def addr(s):
    return ipaddress.ip_address(s)


def check_error(st, body, status, code, field=None, value=None):
    """A documented error: status, and the body exactly
    {"error": {"code", "field", "value", "message"}} (strings)."""
    assert st == status, (st, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    e = body["error"]
    assert set(e) == {"code", "field", "value", "message"}, e
    assert all(isinstance(e[k], str) for k in e), e
    if code is not None:
        assert e["code"] == code, e
    assert e["message"], e
    if field is not None:
        assert e["field"] == field, e
    if value is not None:
        assert e["value"] == value, e
    return e


def make_topology(api, v4="10.64.0.0/16", v6="fd10::/48", hosts=("h1", "h2", "h3", "h4")):
    """Two racks in a zone, four hosts (h1, h2 in rack1; h3, h4 in rack2),
    tenants blue (segments web, db) and red (app)."""
    st, body = api.post("/v1/spaces", {"name": "v4", "cidr": v4})
    assert st == 201, body
    if v6:
        st, body = api.post("/v1/spaces", {"name": "v6", "cidr": v6})
        assert st == 201, body
    for g in ({"name": "zone", "capacity": 16384}, {"name": "rack1", "parent": "zone"},
              {"name": "rack2", "parent": "zone"}):
        st, body = api.post("/v1/groups", g)
        assert st == 201, body
    for i, h in enumerate(hosts):
        st, body = api.post("/v1/hosts", {"name": h, "address": "192.0.2.%d" % (i + 1),
                                          "group": "rack1" if i < len(hosts) / 2 else "rack2"})
        assert st == 201, body
    for path, obj in (("/v1/tenants", {"name": "blue"}), ("/v1/tenants", {"name": "red"}),
                      ("/v1/tenants/blue/segments", {"name": "web"}),
                      ("/v1/tenants/blue/segments", {"name": "db"}),
                      ("/v1/tenants/red/segments", {"name": "app"})):
        st, body = api.post(path, obj)
        assert st == 201, (path, body)


LISTS = ("/v1/policies", "/v1/namespaces", "/v1/spaces", "/v1/groups", "/v1/hosts", "/v1/tenants", "/v1/endpoints",
         "/v1/blocks", "/v1/tree")


def normalize(v):
    """The same data with list order removed where the API does not promise
    one (names of children, hosts, blocks; items of lists)."""
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        items = [normalize(x) for x in v]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    return v


def snapshot(api):
    """Everything the API can list (every list, the segments of every tenant,
    the tree and the store revision), for 'nothing changed' checks."""
    snap = {}
    for path in LISTS:
        st, body = api.get(path)
        assert st == 200, (path, body)
        snap[path] = normalize(body)
    for t in snap["/v1/tenants"]["items"]:
        st, body = api.get("/v1/tenants/%s/segments" % t["name"])
        assert st == 200, body
        snap["segments of " + t["name"]] = normalize(body)
    st, snap["/healthz"] = api.get("/healthz")
    assert st == 200
    return snap


def assert_unchanged(api, before, what=""):
    after = snapshot(api)
    for k in before:
        assert after.get(k) == before[k], "%s changed %s" % (k, what)
    assert set(after) == set(before), what


def endpoint_body(handle, tenant="blue", segment="web", host="h1", **kw):
    b = {"handle": handle, "tenant": tenant, "segment": segment}
    if host is not None:
        b["host"] = host
    b.update(kw)
    return b


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def parse_metrics(text):
    """Prometheus text -> {(name, ((label, value), ...)): float}; checks each
    sample line is well formed."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        assert m, "bad metrics line: %r" % line
        labels = ()
        if m.group(2):
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2))))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def check_nesting(groups, spaces):
    """Every group prefix inside its parent's (or the space), siblings disjoint."""
    for g in groups.values():
        assert set(g["prefixes"]) == set(spaces), g
        for sp, p in g["prefixes"].items():
            p = net(p)
            outer = net(groups[g["parent"]]["prefixes"][sp]) if g["parent"] else net(spaces[sp])
            assert p.subnet_of(outer), (g["name"], sp, p, outer)
            for o in groups.values():
                if o["name"] != g["name"] and o["parent"] == g["parent"]:
                    assert not p.overlaps(net(o["prefixes"][sp])), (g["name"], o["name"])


def check_blocks_agree(api, eps, blocks):
    """Each block is owned by exactly one (host, tenant, segment), its endpoints
    match that owner, `used` counts them, and blocks never overlap."""
    by_block = {}
    for e in eps:
        for a in e["addresses"]:
            by_block.setdefault((a["space"], a["block"]), []).append(e)
    index = {(b["space"], b["cidr"]): b for b in blocks}
    assert set(by_block) <= set(index)
    for key, b in index.items():
        es = by_block.get(key, [])
        assert b["used"] == len(es), b
        assert all((e["host"], e["tenant"], e["segment"]) == (b["host"], b["tenant"], b["segment"])
                   for e in es), b
        assert b["capacity"] <= net(b["cidr"]).num_addresses
    nets = sorted((net(b["cidr"]) for b in blocks), key=lambda n: (n.version, n))
    for x, y in zip(nets, nets[1:]):
        assert not x.overlaps(y), (x, y)
