# SPDX-License-Identifier: MIT
"""larchctl against a real larchd: apply (twice), tables, -o json, tree, exit codes,
tokens from flags, environment and the config file."""
import json
import os
import subprocess

from conftest import BIN

ROOT = os.path.join(os.path.dirname(__file__), "../..")


def ctl(d, *args, env=None, token=None):
    e = {"PATH": os.environ.get("PATH", ""), "HOME": str(d.dir)}
    e.update(env or {})
    cmd = [os.path.join(BIN, "larchctl"), "-s", "http://127.0.0.1:%d" % d.port]
    if token:
        cmd += ["--token", token]
    p = subprocess.run(cmd + list(args), capture_output=True, text=True, env=e, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_apply_tree_and_tables(larchd):
    topo = os.path.join(ROOT, "examples/topology.yaml")
    rc, out, err = ctl(larchd, "apply", "-f", topo)
    assert rc == 0, err
    assert "space v4 created" in out and "segment blue/web created" in out
    rc, out, _ = ctl(larchd, "apply", "-f", topo)
    assert rc == 0 and "created" not in out and out.count("unchanged") >= 10
    rc, out, err = ctl(larchd, "apply", "-f", os.path.join(ROOT, "examples/endpoints.yaml"))
    assert rc == 0, err
    rc, out, _ = ctl(larchd, "endpoint", "bind", "vm-42:eth0", "h5")
    assert rc == 0 and "10.64." in out
    rc, out, _ = ctl(larchd, "tree")
    assert rc == 0
    assert "space v4  10.64.0.0/16" in out and "group rack1" in out and "host h1" in out
    assert "blue/web" in out and "%" in out
    rc, out, _ = ctl(larchd, "-o", "json", "endpoint", "list")
    items = json.loads(out)["items"]
    assert {e["handle"] for e in items} >= {"web-1:eth0", "vm-42:eth0"}
    rc, out, _ = ctl(larchd, "host", "list")
    assert out.splitlines()[0].split()[:3] == ["NAME", "ADDRESS", "GROUP"]
    rc, out, _ = ctl(larchd, "endpoint", "create", "cli-1", "--tenant", "red", "--segment",
                     "app", "--host", "h2", "--label", "app=x")
    assert rc == 0 and "created" in out and "app=x" in out
    rc, out, _ = ctl(larchd, "endpoint", "delete", "cli-1")
    assert rc == 0


def test_exit_codes(larchd):
    rc, _, err = ctl(larchd, "space", "create", "bad", "--cidr", "10.1.0.0/33")
    assert rc == 1 and "prefix length" in err
    rc, _, err = ctl(larchd, "space", "frobnicate")
    assert rc == 2
    rc, _, err = ctl(larchd, "nosuchcommand")
    assert rc == 2
    rc, _, err = ctl(larchd, "space", "create", "x", "--capacity", "3")
    assert rc == 2 and "does not apply" in err
    p = subprocess.run([os.path.join(BIN, "larchctl"), "-s", "http://127.0.0.1:1", "health"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 3 and "127.0.0.1" in p.stderr
    bad = larchd.dir / "bad.yaml"
    bad.write_text("kind: Spaceship\nname: x\n")
    rc, _, err = ctl(larchd, "apply", "-f", str(bad))
    assert rc == 2 and "Spaceship" in err


def test_token_sources(larchd_factory):
    token = "cli-token-abcdefghijkl"
    d = larchd_factory(token=token)
    rc, _, err = ctl(d, "tenant", "create", "t1")
    assert rc == 1 and "Bearer" in err
    assert ctl(d, "tenant", "create", "t1", token=token)[0] == 0
    assert ctl(d, "tenant", "create", "t2", env={"LARCH_TOKEN": token})[0] == 0
    tf = d.dir / "tok"
    tf.write_text(token + "\n")
    cfg = d.dir / "larchctl.yaml"
    cfg.write_text("server: http://127.0.0.1:%d\ntoken_file: %s\n" % (d.port, tf))
    p = subprocess.run([os.path.join(BIN, "larchctl"), "tenant", "create", "t3"],
                       capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ.get("PATH", ""), "LARCH_CONFIG": str(cfg)})
    assert p.returncode == 0, p.stderr
    rc, out, _ = ctl(d, "tenant", "list")
    assert {"t1", "t2", "t3"} <= set(l.split()[0] for l in out.splitlines()[1:])
