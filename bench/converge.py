#!/usr/bin/env python3
"""Convergence: from a pod's ADD on one host until pods on other hosts reach it.

    converge.py run NSP DIR BIN CNI_DRIVER ROUNDS
    converge.py probe

`run` (from bench/converge.sh, in the namespace cluster of tests/netns/lib.sh)
adds ROUNDS pods on h11, one at a time, through one long-running libcni
runtime (`cni-driver serve`), which reports CLOCK_MONOTONIC just before and
after the plugin call. Rounds alternate two configurations: "nudge" (the
conflist names the agent's socket, so ADD returns once h11's agent has put the
pod's firewall chain in force) and "feed" (no agent socket: h11's agent learns
of the pod from larchd's change feed like every other agent). Tenant and
segment cycle over t1/web, t1/db, t2/web, so each one's first pods claim new
blocks (/28: a new block every 14 pods of a segment or so). As soon as ADD returns, a prober pod of the same tenant and segment on
h12 (same rack: needs h12's agent to route a new block) and on h21 (other
rack: reaches h11's blocks through the rack aggregate) sends ICMP echo
requests to the new pod every millisecond, at most for 5 s, and reports when
the first reply came. Convergence is that moment minus the start of ADD.

`probe` runs inside a prober pod's namespace: it reads "ADDRESS T0" lines and
answers each with the milliseconds from T0 (CLOCK_MONOTONIC seconds) to the
first echo reply from ADDRESS, or "timeout".
"""
import ipaddress
import json
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import time

LIMIT_S = 5.0
INTERVAL_S = 0.001
SEGMENTS = [("t1", "web"), ("t1", "db"), ("t2", "web")]
PROBERS = ["h12", "h21"]


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident, seq):
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, checksum(head), ident, seq)


def first_reply(sock, ident, addr, t0):
    """Echo requests to addr every INTERVAL_S until one is answered (bounded
    by LIMIT_S): milliseconds from t0 to that answer, or None."""
    deadline = time.monotonic() + LIMIT_S
    seq = 0
    while time.monotonic() < deadline:
        seq = (seq + 1) & 0xFFFF
        try:
            sock.sendto(echo_request(ident, seq), (addr, 0))
        except OSError:
            pass  # no route yet: try again next interval
        until = min(time.monotonic() + INTERVAL_S, deadline)
        while True:
            left = until - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            data, (src, _) = sock.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            if src == addr and len(data) >= ihl + 8 and data[ihl] == 0 and \
                    struct.unpack("!H", data[ihl + 4:ihl + 6])[0] == ident:
                return (time.monotonic() - t0) * 1000
    return None


def probe():
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    for line in sys.stdin:
        addr, t0 = line.split()
        ms = first_reply(sock, ident, addr, float(t0))
        print("timeout" if ms is None else f"{ms:.3f}", flush=True)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


def run(nsp, dir_, bindir, driver, rounds):
    probers = {}
    for h in PROBERS:
        for t, s in SEGMENTS:
            probers[h, t, s] = subprocess.Popen(
                ["ip", "netns", "exec", f"{nsp}-p-{h}-{t}{s}", sys.executable, __file__, "probe"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    cni = subprocess.Popen(
        ["ip", "netns", "exec", f"{nsp}-h11", "env", f"CNI_PATH={bindir}",
         f"CNI_CACHE_DIR={dir_}/cni-cache", driver, "serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    conf = {"nudge": f"{dir_}/net-h11.conflist", "feed": f"{dir_}/net-h11-feed.conflist"}
    seen, rows = set(), []
    print("# config tenant/segment new_block add_ms reach_h12_ms reach_h21_ms")
    for i in range(rounds):
        cfg = ("nudge", "feed")[i % 2]
        t, s = SEGMENTS[i % len(SEGMENTS)]  # so new blocks come in both configurations
        pod = f"{nsp}-p-h11-c{i}"
        subprocess.run(["ip", "netns", "add", pod], check=True)
        subprocess.run(["ip", "netns", "exec", pod, "ip", "link", "set", "lo", "up"], check=True)
        cni.stdin.write(f"add {conf[cfg]} /run/netns/{pod} h11-c{i} eth0 "
                        f"K8S_POD_NAMESPACE={t};K8S_POD_NAME=c{i};LARCH_TENANT={t};LARCH_SEGMENT={s}\n")
        cni.stdin.flush()
        answer = cni.stdout.readline().split(" ", 3)
        if answer[0] != "ok":
            sys.exit(f"converge: ADD of pod c{i} failed: {' '.join(answer)}")
        t0, t1 = float(answer[1]), float(answer[2])
        addr = next(ip["address"].split("/")[0] for ip in json.loads(answer[3])["ips"]
                    if ":" not in ip["address"])
        block = ipaddress.ip_network(f"{addr}/28", strict=False)  # lib.sh's v4 blocks
        new = block not in seen
        seen.add(block)
        for h in PROBERS:
            probers[h, t, s].stdin.write(f"{addr} {t0:.6f}\n")
            probers[h, t, s].stdin.flush()
        reach = [probers[h, t, s].stdout.readline().strip() for h in PROBERS]
        row = (cfg, f"{t}/{s}", "yes" if new else "no", f"{(t1 - t0) * 1000:.3f}", *reach)
        print(" ".join(row), flush=True)
        rows.append(row)
    for p in list(probers.values()) + [cni]:
        p.stdin.close()
        p.wait()

    timeouts = sum(r.count("timeout") for r in rows)
    print(f"# {len(rows)} pods, {timeouts} probes without an answer within {LIMIT_S:.0f} s")
    print("# medians (p90) in ms; reach = ADD start to the first echo reply from the other host")
    for cfg in ("nudge", "feed"):
        for label, sel in (("all pods", lambda r: True), ("new block", lambda r: r[2] == "yes"),
                           ("existing block", lambda r: r[2] == "no")):
            rs = [r for r in rows if r[0] == cfg and sel(r)]
            if not rs:
                continue
            cols = []
            for k, name in ((3, "ADD"), (4, "reach h12 (same rack)"), (5, "reach h21 (other rack)")):
                v = [float(r[k]) for r in rs if r[k] != "timeout"]
                cols.append(f"{name} {statistics.median(v):7.2f} ({pct(v, 0.9):7.2f})" if v else f"{name} -")
            print(f"{cfg:5} {label:14} n={len(rs):3}  " + "  ".join(cols))


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        probe()
    elif sys.argv[1:2] == ["run"] and len(sys.argv) == 7:
        run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        sys.exit(__doc__)
