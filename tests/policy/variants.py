#!/usr/bin/python3
"""Variants of a golden world, for the tests of the agent's differences.

usage: variants.py GOLDEN.json OUTDIR
Writes OUTDIR/v0.json ... v6.json: the world, then each one changed from the
one before: 1 one more local endpoint (like the first), 2 a policy's port
changed, 3 an endpoint gone, 4 a policy more, 5 a label changed (the
endpoint changes chains), 6 back to the world.
"""
import copy
import json
import sys

NAMES = ["the start", "an endpoint added", "a port changed", "an endpoint gone",
         "a policy added", "a label changed", "back to the start"]


def main():
    base = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    eps = lambda d: d["endpoints"]["items"]
    pols = lambda d: d["policies"]["items"]
    v = [base]
    d = copy.deepcopy(v[-1])
    e = copy.deepcopy(eps(d)[0])
    e["handle"] = "web-9"
    e["addresses"] = [{"address": "10.64.0.9"}, {"address": "fd10::9"}]
    eps(d).append(e)
    v.append(d)
    d = copy.deepcopy(v[-1])
    pols(d)[0]["spec"]["ingress"][0]["ports"][0]["port"] = 5433
    v.append(d)
    d = copy.deepcopy(v[-1])
    d["endpoints"]["items"] = [x for x in eps(d) if x["handle"] != "web-1"]
    v.append(d)
    d = copy.deepcopy(v[-1])
    p = copy.deepcopy(pols(d)[0])
    p["metadata"]["name"] = "zz-extra"
    p["spec"]["ingress"][0]["ports"][0]["port"] = 6000
    pols(d).append(p)
    v.append(d)
    d = copy.deepcopy(v[-1])
    eps(d)[0]["labels"]["app"] = "db"
    v.append(d)
    v.append(base)
    for i, d in enumerate(v):
        json.dump(d, open("%s/v%d.json" % (out, i), "w"))


if __name__ == "__main__":
    main()
