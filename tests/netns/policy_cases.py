#!/usr/bin/python3
"""Policy cases against the namespace cluster (tests/netns/test_policy.sh).

For each case: change policy through larchd's API, make every agent run a pass
(POST /v1/sync on its socket: the pass applies the firewall before it
answers), then probe every pod from every pod with TCP, UDP and ICMP over IPv4
and IPv6 and compare with the matrix the case expects. Probes are bounded:
1 s each, run in parallel. Prints TAP lines (the plan is printed by the caller).

usage: policy_cases.py DIR NSP FIRST_TAP_NUMBER
"""
import concurrent.futures as cf
import ctypes
import ipaddress
import itertools
import json
import os
import select
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unixhttp import UnixHTTP  # noqa: E402

DIR, NSP, TAPN = sys.argv[1], sys.argv[2], int(sys.argv[3])
HOSTS = ["h11", "h12", "h21", "h22"]
PORT = 9090
libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000
FAILS = 0


def setns(name):
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
    finally:
        os.close(fd)


def call(method, path, body=None, sock=None):
    c = UnixHTTP(sock or DIR + "/larchd.sock")
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data.strip() else None)


def must(method, path, body=None):
    st, out = call(method, path, body)
    if st >= 300:
        raise RuntimeError("%s %s: %s %s" % (method, path, st, out))
    return out


def sync_all():
    for h in HOSTS:
        st, out = call("POST", "/v1/sync", sock="%s/agent-%s.sock" % (DIR, h))
        if st != 200:
            raise RuntimeError("agent %s sync: %s %s" % (h, st, out))


def tap(good, what, diag=""):
    global TAPN, FAILS
    print(("ok %d - %s" if good else "not ok %d - %s") % (TAPN, what))
    if not good:
        FAILS += 1
        for line in diag.splitlines():
            print("# " + line)
    TAPN += 1
    sys.stdout.flush()


# ---- the pods and their servers ----

class Pod:
    def __init__(self, ep):
        self.handle = ep["handle"]
        self.host, self.name = self.handle.split(":")[0].split("-", 1)
        self.ns = "%s-p-%s-%s" % (NSP, self.host, self.name)
        self.tenant, self.segment = ep["tenant"], ep["segment"]
        self.addr = {}
        for a in ep["addresses"]:
            ip = ipaddress.ip_address(a["address"])
            self.addr[ip.version] = str(ip)

    def __repr__(self):
        return "%s-%s" % (self.host, self.name)


def serve(pod, ready):
    """TCP accept-and-close and UDP echo on [::]:PORT (dual stack) in the pod."""
    setns(pod.ns)
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("::", PORT))
    t.listen(64)
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(("::", PORT))
    ready.release()
    while True:
        r, _, _ = select.select([t, u], [], [])
        if t in r:
            c, _ = t.accept()
            c.close()
        if u in r:
            data, peer = u.recvfrom(100)
            u.sendto(data, peer)


# UDP probes' source ports, below the ephemeral range; next() on an
# itertools.count is atomic under the GIL
UDP_PORTS = itertools.count(10000)


def probe(src, dst, proto, fam):
    ip = dst.addr.get(fam)
    if not ip or fam not in src.addr:
        return None
    if proto == "icmp":
        r = subprocess.run(["ip", "netns", "exec", src.ns, "ping", "-%d" % fam, "-c1", "-W1",
                            "-q", ip], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0
    setns(src.ns)
    af = socket.AF_INET if fam == 4 else socket.AF_INET6
    if proto == "tcp":
        s = socket.socket(af, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            return s.connect_ex((ip, PORT)) == 0
        except OSError:
            return False
        finally:
            s.close()
    s = socket.socket(af, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    try:
        # A source port of its own: a random one could repeat an earlier
        # case's flow, which conntrack still holds as established.
        s.bind(("0.0.0.0" if fam == 4 else "::", next(UDP_PORTS)))
        for _ in range(2):
            s.sendto(b"larch", (ip, PORT))
            try:
                if s.recv(100) == b"larch":
                    return True
            except socket.timeout:
                pass
        return False
    except OSError:
        return False
    finally:
        s.close()


POOL = cf.ThreadPoolExecutor(max_workers=48)
PROTOS = ("tcp", "udp", "icmp")


def matrix(pods):
    jobs = {}
    for s in pods:
        for d in pods:
            if s is d:
                continue
            for proto in PROTOS:
                for fam in (4, 6):
                    jobs[(s, d, proto, fam)] = POOL.submit(probe, s, d, proto, fam)
    return {k: f.result() for k, f in jobs.items()}


def check_case(name, pods, allowed):
    sync_all()
    got = matrix(pods)
    bad = []
    for (s, d, proto, fam), ok in sorted(got.items(), key=lambda kv: str(kv[0])):
        if ok is None:
            continue
        want = allowed(s, d, proto, fam)
        if ok != want:
            bad.append("%s -> %s %s/v%d: %s, expected %s" % (
                s, d, proto, fam, "passes" if ok else "dropped", "pass" if want else "drop"))
    n = sum(1 for v in got.values() if v is not None)
    npass = sum(1 for v in got.values() if v)
    tap(not bad, "%s: %d probes, %d pass, %s" % (
        name, n, npass, "%d not as expected" % len(bad) if bad else "all as expected"),
        "\n".join(bad[:40]) + ("\n... %d more" % (len(bad) - 40) if len(bad) > 40 else ""))


def netpol(name, ns, spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def main():
    eps = must("GET", "/v1/endpoints")["items"]
    pods = sorted((Pod(e) for e in eps), key=repr)
    by = {repr(p): p for p in pods}
    sems = [threading.Semaphore(0) for _ in pods]
    for p, sem in zip(pods, sems):
        threading.Thread(target=serve, args=(p, sem), daemon=True).start()
    for sem in sems:
        sem.acquire()
    labels = {"h11-a": {"app": "web"}, "h11-b": {"app": "db"},
              "h12-c": {"app": "web", "tier": "front"}, "h12-d": {"app": "monitor", "env": "prod"},
              "h21-e": {"app": "web"}, "h21-f": {"app": "batch", "env": "dev"},
              "h22-g": {"app": "db"}}
    for k, v in labels.items():
        must("PATCH", "/v1/endpoints/" + by[k].handle, {"labels": v})
    must("POST", "/v1/namespaces", {"kind": "Namespace",
                                    "metadata": {"name": "ops", "labels": {"team": "sre"}}})
    must("POST", "/v1/namespaces", {"name": "shop", "labels": {"team": "shop"}})

    def same_seg(s, d):
        return (s.tenant, s.segment) == (d.tenant, d.segment)

    check_case("default isolation by segment", pods, lambda s, d, p, f: same_seg(s, d))

    must("PATCH", "/v1/tenants/t1", {"isolation": "tenant"})
    check_case("tenant t1 isolated by tenant (web <-> db)", pods,
               lambda s, d, p, f: same_seg(s, d) or s.tenant == d.tenant == "t1")
    must("PATCH", "/v1/tenants/t2", {"isolation": "none"})
    check_case("tenant t2 allow-all (everyone reaches t2)", pods,
               lambda s, d, p, f: same_seg(s, d) or s.tenant == d.tenant == "t1" or
               d.tenant == "t2")
    must("PATCH", "/v1/tenants/t1", {"isolation": "segment"})
    must("PATCH", "/v1/tenants/t2", {"isolation": "segment"})

    db = ("h11-b", "h22-g")
    web = ("h11-a", "h12-c", "h21-e")

    def others(s, d):
        return same_seg(s, d) and repr(d) not in db

    must("POST", "/v1/policies", netpol("db-from-web", "shop", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                     "ports": [{"protocol": "TCP", "port": PORT}]}]}))
    check_case("NetworkPolicy podSelector + TCP port: db only from web on TCP", pods,
               lambda s, d, p, f: others(s, d) or
               (repr(d) in db and repr(s) in web and p == "tcp"))

    must("POST", "/v1/policies", netpol("db-from-web", "shop", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                     "ports": [{"protocol": "TCP", "port": PORT + 1}]}]}))
    check_case("policy update: the port moves, web -> db TCP now dropped", pods,
               lambda s, d, p, f: others(s, d))
    must("DELETE", "/v1/policies/NetworkPolicy/shop/db-from-web")

    must("POST", "/v1/policies", netpol("db-and", "shop", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "sre"}},
                               "podSelector": {"matchExpressions": [
                                   {"key": "env", "operator": "In", "values": ["prod"]}]}}]}]}))
    check_case("namespaceSelector AND podSelector in one peer: only ops/env=prod", pods,
               lambda s, d, p, f: others(s, d) or (repr(d) in db and repr(s) == "h12-d"))
    must("DELETE", "/v1/policies/NetworkPolicy/shop/db-and")

    must("POST", "/v1/policies", netpol("db-or", "shop", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "sre"}}},
                              {"podSelector": {"matchExpressions": [
                                  {"key": "tier", "operator": "Exists"}]}}]}]}))
    check_case("namespaceSelector OR podSelector (separate peers), matchExpressions Exists",
               pods, lambda s, d, p, f: others(s, d) or
               (repr(d) in db and repr(s) in ("h12-d", "h21-f", "h12-c")))
    must("DELETE", "/v1/policies/NetworkPolicy/shop/db-or")

    c = by["h12-c"]
    must("POST", "/v1/policies", netpol("db-ipblock", "shop", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.64.0.0/16",
                                           "except": [c.addr[4] + "/32"]}}]}]}))
    check_case("ipBlock with except: db from 10.64.0.0/16 but not h12-c, IPv4 only", pods,
               lambda s, d, p, f: others(s, d) or
               (repr(d) in db and f == 4 and repr(s) != "h12-c"))
    must("DELETE", "/v1/policies/NetworkPolicy/shop/db-ipblock")

    must("POST", "/v1/policies", netpol("db-range", "shop", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"ports": [{"protocol": "TCP", "port": PORT - 90, "endPort": PORT + 10}]},
                    {"ports": [{"protocol": "UDP", "port": PORT + 1, "endPort": PORT + 100}]}]}))
    check_case("ports with endPort: TCP range holds the port, UDP range does not", pods,
               lambda s, d, p, f: others(s, d) or (repr(d) in db and p == "tcp"))
    must("DELETE", "/v1/policies/NetworkPolicy/shop/db-range")

    must("POST", "/v1/policies", netpol("deny-in", "shop", {
        "podSelector": {}, "policyTypes": ["Ingress"]}))
    check_case("ingress default deny for namespace shop", pods,
               lambda s, d, p, f: same_seg(s, d) and d.tenant != "t1")
    must("POST", "/v1/policies", netpol("allow-web", "shop", {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"podSelector": {}}]}]}))
    check_case("stacked: deny-all plus allow-to-web from shop pods", pods,
               lambda s, d, p, f: (same_seg(s, d) and d.tenant != "t1") or
               (repr(d) in web and s.tenant == "t1"))
    must("PATCH", "/v1/endpoints/" + by["h11-a"].handle, {"labels": {"app": "other"}})
    check_case("label change: h11-a is no longer web", pods,
               lambda s, d, p, f: (same_seg(s, d) and d.tenant != "t1") or
               (repr(d) in ("h12-c", "h21-e") and s.tenant == "t1"))
    must("PATCH", "/v1/endpoints/" + by["h11-a"].handle, {"labels": {"app": "web"}})
    must("DELETE", "/v1/policies/NetworkPolicy/shop/deny-in")
    must("DELETE", "/v1/policies/NetworkPolicy/shop/allow-web")

    must("POST", "/v1/policies", netpol("front-no-egress", "shop", {
        "podSelector": {"matchLabels": {"tier": "front"}}, "policyTypes": ["Egress"]}))
    check_case("egress default deny for h12-c (replies to it still pass)", pods,
               lambda s, d, p, f: same_seg(s, d) and repr(s) != "h12-c")
    must("POST", "/v1/policies", netpol("front-egress-dns", "shop", {
        "podSelector": {"matchLabels": {"tier": "front"}},
        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                    "ports": [{"protocol": "UDP", "port": PORT}]}]}))
    # no policyTypes: Ingress is implied too, and no ingress rule: h12-c takes nothing in
    check_case("egress allowed by a second policy: h12-c UDP to web only; "
               "its implied Ingress type isolates h12-c", pods,
               lambda s, d, p, f: same_seg(s, d) and repr(d) != "h12-c" and
               (repr(s) != "h12-c" or (repr(d) in web and p == "udp")))
    must("DELETE", "/v1/policies/NetworkPolicy/shop/front-no-egress")
    must("DELETE", "/v1/policies/NetworkPolicy/shop/front-egress-dns")

    must("POST", "/v1/policies", {"kind": "Policy", "name": "t2-to-db",
                                  "applies_to": {"tenant": "t1", "segment": "db"},
                                  "ingress": [{"from": [{"tenant": "t2"}],
                                               "ports": [{"protocol": "icmp"}]}]})
    check_case("Larch policy: segment t1/db takes ICMP from tenant t2 only", pods,
               lambda s, d, p, f: others(s, d) or
               (repr(d) in db and s.tenant == "t2" and p == "icmp"))
    must("DELETE", "/v1/policies/Policy/t2-to-db")

    must("POST", "/v1/policies", {"kind": "SecurityGroup", "name": "grp", "rules": [
        {"direction": "ingress", "ethertype": "IPv4", "remote_group": "grp"},
        {"direction": "ingress", "ethertype": "IPv6", "protocol": "tcp",
         "port_range_min": PORT, "port_range_max": PORT},
        {"direction": "egress", "ethertype": "IPv4"},
        {"direction": "egress", "ethertype": "IPv6"}]})
    for k in ("h21-f", "h22-g"):
        must("PATCH", "/v1/endpoints/" + by[k].handle, {"security_groups": ["grp"]})
    members = ("h21-f", "h22-g")
    check_case("security group: remote group over IPv4, TCP port over IPv6 from anyone", pods,
               lambda s, d, p, f: (same_seg(s, d) and repr(d) not in members) or
               (repr(d) in members and ((f == 4 and repr(s) in members) or
                                        (f == 6 and p == "tcp"))))
    for k in ("h21-f", "h22-g"):
        must("PATCH", "/v1/endpoints/" + by[k].handle, {"security_groups": []})
    must("DELETE", "/v1/policies/SecurityGroup/grp")
    check_case("back to default isolation once every policy is gone", pods,
               lambda s, d, p, f: same_seg(s, d))
    return 0 if FAILS == 0 else 1


if __name__ == "__main__":
    try:
        rc = main()
    except Exception as e:  # a broken setup is a failure, never a skip
        tap(False, "policy cases raised %r" % (e,))
        rc = 1
    print("# next %d" % TAPN)
    sys.stdout.flush()
    os._exit(rc)
