#!/usr/bin/python3
"""Load or clear the policies of bench/policy_datapath.sh in larchd (its unix
socket), 8 keep-alive connections in parallel.

usage: policy_load.py SOCKET setup HOSTS...  (99 filler endpoints per host,
                                              labels app1..app99, namespace shop)
       policy_load.py SOCKET load N          (N NetworkPolicies + allow-bench)
       policy_load.py SOCKET clear           (delete every policy)
Policy k selects app{k % 100} in namespace shop (every one of them selects
endpoints on the measured hosts, so every one is compiled there) and allows
TCP port 20000 + k % 40000 from app{(k + 1) % 100} and from namespaces with
team=t{k % 10}. allow-bench lets the client pod (role=client) reach the
server pod (app0) on every protocol: the measured traffic.
"""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "netns"))
from unixhttp import UnixHTTP  # noqa: E402


def run(sock, reqs, nthreads=8):
    errors = []

    def worker(part):
        c = UnixHTTP(sock, timeout=60)
        for method, path, body in part:
            c.request(method, path, json.dumps(body) if body is not None else None,
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status >= 300 and not (method == "DELETE" and r.status == 404):
                errors.append("%s %s: %d %s" % (method, path, r.status, data[:200]))
        c.close()

    ts = [threading.Thread(target=worker, args=(reqs[i::nthreads],)) for i in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        sys.exit("policy_load: %d errors, first: %s" % (len(errors), errors[0]))


def netpol(name, spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def main():
    sock, cmd = sys.argv[1], sys.argv[2]
    if cmd == "setup":
        reqs = [("POST", "/v1/namespaces", {"name": "shop", "labels": {"team": "t0"}})]
        for h in sys.argv[3:]:
            for a in range(1, 100):
                reqs.append(("POST", "/v1/endpoints", {
                    "handle": "filler-%s-%d" % (h, a), "tenant": "t1", "segment": "web",
                    "host": h, "kind": "pod", "namespace": "shop", "name": "filler-%d" % a,
                    "labels": {"app": "app%d" % a}}))
        run(sock, reqs)
    elif cmd == "load":
        n = int(sys.argv[3])
        reqs = [("POST", "/v1/policies", netpol("allow-bench", {
            "podSelector": {"matchLabels": {"app": "app0"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}))]
        for k in range(n):
            reqs.append(("POST", "/v1/policies", netpol("p%d" % k, {
                "podSelector": {"matchLabels": {"app": "app%d" % (k % 100)}},
                "ingress": [{"from": [
                    {"podSelector": {"matchLabels": {"app": "app%d" % ((k + 1) % 100)}}},
                    {"namespaceSelector": {"matchLabels": {"team": "t%d" % (k % 10)}}}],
                    "ports": [{"protocol": "TCP", "port": 20000 + k % 40000}]}]})))
        run(sock, reqs)
    elif cmd == "clear":
        c = UnixHTTP(sock, timeout=60)
        c.request("GET", "/v1/policies")
        items = json.loads(c.getresponse().read())["items"]
        c.close()
        run(sock, [("DELETE", "/v1/policies/NetworkPolicy/%s/%s" % (
            p["metadata"]["namespace"], p["metadata"]["name"]), None) for p in items])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
