"""Policy documents, namespaces, tenant isolation and security groups (issue 4):
create, replace, get, list, delete, strict errors naming the field with no
change to stored state, and persistence across a restart."""
from conftest import assert_unchanged, check_error, snapshot, make_topology, endpoint_body


def netpol(name="db", ns="shop", **spec):
    spec.setdefault("podSelector", {"matchLabels": {"app": "db"}})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def test_documents_lifecycle(api):
    np = netpol(ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}},
                                   {"namespaceSelector": {"matchExpressions": [
                                       {"key": "team", "operator": "NotIn", "values": ["x"]}]}},
                                   {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                          "ports": [{"protocol": "TCP", "port": 80, "endPort": 90}]}])
    st, body = api.post("/v1/policies", np)
    assert st == 201, body
    assert body["kind"] == "NetworkPolicy" and body["metadata"]["name"] == "db"
    assert api.post("/v1/policies", np)[0] == 200  # identical
    np["spec"]["ingress"][0]["ports"][0]["port"] = 81
    st, body = api.post("/v1/policies", np)
    assert st == 200 and body["spec"]["ingress"][0]["ports"][0]["port"] == 81  # replaced
    st, body = api.get("/v1/policies/NetworkPolicy/shop/db")
    assert st == 200 and body["spec"]["ingress"][0]["ports"][0]["port"] == 81
    lp = {"name": "p1", "applies_to": {"tenant": "blue", "segment": "web"},
          "ingress": [{"from": [{"tenant": "red"}, {"host": True}],
                       "ports": [{"protocol": "icmp"}]}]}
    st, body = api.post("/v1/policies", lp)
    assert st == 201 and body["kind"] == "Policy", body
    sg = {"kind": "SecurityGroup", "name": "ssh", "rules": [
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "192.0.2.0/24"},
        {"direction": "ingress", "ethertype": "IPv6", "remote_group": "ssh"}]}
    assert api.post("/v1/policies", sg)[0] == 201
    ns = {"kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "a"}}}
    assert api.post("/v1/namespaces", ns)[0] == 201
    items = api.get("/v1/policies")[1]["items"]
    assert [i["kind"] for i in items] == ["NetworkPolicy", "Policy", "SecurityGroup"], items
    assert [i["kind"] for i in api.get("/v1/policies?kind=Policy")[1]["items"]] == ["Policy"]
    assert len(api.get("/v1/namespaces")[1]["items"]) == 1
    assert api.delete("/v1/policies/Policy/p1")[0] == 204
    check_error(*api.get("/v1/policies/Policy/p1"), 404, "not_found")
    check_error(*api.delete("/v1/policies/Policy/p1"), 404, "not_found")
    assert api.delete("/v1/namespaces/shop")[0] == 204


BAD = [
    ({"name": "x", "applies_to": {"tenant": "blue"}, "bogus": 1}, "bogus"),
    ({"name": "x"}, "applies_to"),
    ({"name": "X!", "applies_to": {"tenant": "blue"}}, "name"),
    ({"name": "x", "applies_to": {"segment": "web"}}, "applies_to.segment"),
    ({"name": "x", "applies_to": {"tenant": "blue"},
      "ingress": [{"from": [{"cidr": "10.0.0.0/33"}]}]}, "ingress[0].from[0].cidr"),
    ({"name": "x", "applies_to": {"tenant": "blue"},
      "ingress": [{"from": [{"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}]}]},
     "ingress[0].from[0].except[0]"),
    ({"name": "x", "applies_to": {"tenant": "blue"},
      "egress": [{"ports": [{"protocol": "tcp", "port": 70000}]}]}, "egress[0].ports[0].port"),
    ({"name": "x", "applies_to": {"tenant": "blue"},
      "egress": [{"ports": [{"protocol": "icmp", "port": 1}]}]}, "egress[0].ports[0].port"),
    ({"name": "x", "applies_to": {"tenant": "blue"},
      "egress": [{"ports": [{"protocol": "gre"}]}]}, "egress[0].ports[0].protocol"),
    (netpol(ingress=[{"ports": [{"port": "http"}]}]), "spec.ingress[0].ports[0].port"),
    (netpol(ingress=[{"ports": [{"port": 90, "endPort": 80}]}]), "spec.ingress[0].ports[0].endPort"),
    (netpol(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"},
                                "podSelector": {}}]}]), "spec.ingress[0].from[0]"),
    (netpol(podSelector={"matchExpressions": [{"key": "a", "operator": "In"}]}),
     "spec.podSelector.matchExpressions[0].values"),
    (netpol(podSelector={"matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]}),
     "spec.podSelector.matchExpressions[0].operator"),
    (netpol(policyTypes=["Sideways"]), "spec.policyTypes[0]"),
    (dict(netpol(), apiVersion="v1"), "apiVersion"),
    ({"kind": "SecurityGroup", "name": "s", "rules": [{"direction": "up"}]}, "rules[0].direction"),
    ({"kind": "SecurityGroup", "name": "s", "rules": [
        {"direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "fd00::/8"}]},
     "rules[0].remote_ip_prefix"),
    ({"kind": "Gizmo", "name": "s"}, "kind"),
    # Kubernetes label syntax in selectors
    (netpol(podSelector={"matchLabels": {"app": "web\n#@ iptables"}}),
     "spec.podSelector.matchLabels.app"),
    (netpol(podSelector={"matchLabels": {"-app": "web"}}), "spec.podSelector.matchLabels.-app"),
    (netpol(podSelector={"matchExpressions": [{"key": "a b", "operator": "Exists"}]}),
     "spec.podSelector.matchExpressions[0].key"),
    (netpol(podSelector={"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "-no"]}]}),
     "spec.podSelector.matchExpressions[0].values[1]"),
]


def test_bad_documents_change_nothing(api):
    assert api.post("/v1/policies", netpol("keep"))[0] == 201
    before = snapshot(api)
    for doc, field in BAD:
        check_error(*api.post("/v1/policies", doc), 400, None, field)
        assert_unchanged(api, before, "after %r" % (doc,))
    check_error(*api.post("/v1/namespaces", {"name": "n", "labels": {"a": 1}}), 400, None,
                "labels.a")
    check_error(*api.post("/v1/namespaces", {"name": "n", "labels": {"team": "a b"}}), 400, None,
                "labels.team")
    check_error(*api.post("/v1/namespaces", {"name": "n", "labels": {"Team/x": "a"}}), 400, None,
                "labels.Team/x")
    check_error(*api.post("/v1/policies", {"kind": "Namespace", "name": "n"}), 400, None, "kind")
    assert_unchanged(api, before, "after bad namespaces")


def test_tenant_isolation_and_security_groups(api):
    make_topology(api)
    st, t = api.get("/v1/tenants/blue")
    assert st == 200 and t["isolation"] == "segment", t
    st, t = api.patch("/v1/tenants/blue", {"isolation": "tenant"})
    assert st == 200 and t["isolation"] == "tenant", t
    before = snapshot(api)
    check_error(*api.patch("/v1/tenants/blue", {"isolation": "open"}), 400, "invalid", "isolation")
    check_error(*api.patch("/v1/tenants/nope", {"isolation": "none"}), 404, "not_found")
    check_error(*api.post("/v1/tenants", {"name": "green", "isolation": "x"}), 400, "invalid",
                "isolation")
    assert_unchanged(api, before)
    assert api.post("/v1/tenants", {"name": "green", "isolation": "none"})[0] == 201
    st, ep = api.post("/v1/endpoints", endpoint_body("vm1", security_groups=["ssh", "web"]))
    assert st == 201 and ep["security_groups"] == ["ssh", "web"], ep
    before = snapshot(api)
    check_error(*api.patch("/v1/endpoints/vm1", {"security_groups": ["Bad Name"]}), 400,
                "invalid", "security_groups")
    assert_unchanged(api, before)
    st, ep = api.patch("/v1/endpoints/vm1", {"security_groups": []})
    assert st == 200 and ep["security_groups"] == [], ep


def test_documents_survive_restart(larchd_factory):
    d = larchd_factory()
    api = d.client()
    assert api.post("/v1/policies", netpol())[0] == 201
    assert api.post("/v1/namespaces", {"name": "shop", "labels": {"a": "b"}})[0] == 201
    assert api.post("/v1/tenants", {"name": "t", "isolation": "none"})[0] == 201
    before = snapshot(api)
    api.close()
    d.kill9()
    d.start()
    api = d.client()
    assert_unchanged(api, before, "after kill -9 and restart")
    api.close()


def test_larchctl_apply_kubernetes_manifests(larchd, tmp_path):
    import subprocess, os
    api = larchd.client()
    make_topology(api)
    st, ep = api.post("/v1/endpoints", endpoint_body("pod1", name="db-0", namespace="shop"))
    assert st == 201, ep
    man = tmp_path / "np.yaml"
    man.write_text("""apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: a}
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  namespace: shop
  labels: {app: db}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db
  namespace: shop
spec:
  podSelector:
    matchLabels: {app: db}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {team: a}
      podSelector:
        matchLabels: {app: web}
    ports:
    - {protocol: TCP, port: 5432}
""")
    ctl = [os.path.join(os.environ["LARCH_BIN"], "larchctl"), "--server",
           "http://127.0.0.1:%d" % larchd.port, "apply", "-f", str(man)]
    r = subprocess.run(ctl, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "NetworkPolicy db created" in r.stdout, r.stdout
    assert api.get("/v1/endpoints/pod1")[1]["labels"] == {"app": "db"}
    assert api.get("/v1/namespaces/shop")[1]["metadata"]["labels"] == {"team": "a"}
    assert api.get("/v1/policies/NetworkPolicy/shop/db")[0] == 200
    r = subprocess.run(ctl, capture_output=True, text=True)
    assert r.returncode == 0 and "NetworkPolicy db applied" in r.stdout, (r.stdout, r.stderr)
    api.close()


def test_labels_stored_before_the_syntax_still_load(larchd):
    """Labels that older versions stored (any text up to 253 bytes) load
    after a restart; only new input must follow Kubernetes' syntax."""
    import sqlite3
    api = larchd.client()
    make_topology(api)
    assert api.post("/v1/endpoints", endpoint_body("old", labels={"app": "lbl"}))[0] == 201
    assert api.post("/v1/namespaces", {"name": "shop", "labels": {"team": "lbl"}})[0] == 201
    assert api.post("/v1/policies", netpol(podSelector={"matchLabels": {"app": "lbl"}}))[0] == 201
    api.close()
    assert larchd.stop() == 0
    db = sqlite3.connect(larchd.db)
    n = db.execute("UPDATE kv SET value = replace(value, '\"lbl\"', '\"l b l\"') WHERE key IN "
                   "('/larch/endpoints/old', '/larch/docs/Namespace/shop', "
                   "'/larch/docs/NetworkPolicy/shop/db')").rowcount
    db.commit()
    db.close()
    assert n == 3
    larchd.start()
    api = larchd.client()
    assert api.get("/v1/endpoints/old")[1]["labels"] == {"app": "l b l"}
    assert api.get("/v1/namespaces/shop")[1]["labels"]["team"] == "l b l"
    st, doc = api.get("/v1/policies/NetworkPolicy/shop/db")
    assert st == 200 and doc["spec"]["podSelector"]["matchLabels"] == {"app": "l b l"}, doc
    # new input is checked
    check_error(*api.patch("/v1/endpoints/old", {"labels": {"app": "l b l"}}), 400, "invalid",
                "labels", "l b l")
    api.close()
