#!/bin/bash
# TAP: the routed datapath of issue 3 in a 2 racks x 2 hosts cluster of
# network namespaces (topology drawn in lib.sh). Real larchd, agents,
# larch-cni through libcni, kernel routes and traffic; no encapsulation.
# Run as root: tests/netns/test_cluster.sh (make netns runs it).
set -u
cd "$(dirname "$0")/../.."
. tests/netns/lib.sh
trap cluster_down EXIT INT TERM

. tests/netns/tap.sh

cluster_up || { echo "Bail out! cluster did not come up"; exit 1; }
ok "cluster up: larchd, 4 agents, router, 2 rack bridges"

# Pods: name tenant segment per host
PODS="h11:a:t1:web h11:b:t1:db h12:a:t1:web h12:c:t2:web h21:a:t1:web h21:b:t1:db h22:a:t1:web h22:c:t2:web"
for p in $PODS; do
	IFS=: read -r h name t s <<<"$p"
	pod_add "$h" "$name" "$t" "$s" || not_ok "pod $h-$name add"
done
ok "8 pods added through libcni"

# The addresses tell their host: each pod's address lies in its host's blocks
# and its rack's prefix.
aggr_ok=true
for p in $PODS; do
	IFS=: read -r h name t s <<<"$p"
	a=$(pod_ip "$h" "$name" 4)
	python3 - "$DIR/larchd.sock" "$h" "$a" <<'EOF' || aggr_ok=false
import ipaddress, json, socket, sys, http.client
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sys.argv[1])
def get(p):
    c = C("l"); c.request("GET", p); return json.loads(c.getresponse().read())
h, a = sys.argv[2], ipaddress.ip_address(sys.argv[3])
host = get("/v1/hosts/" + h)
grp = get("/v1/groups/" + host["group"])
assert a in ipaddress.ip_network(grp["prefixes"]["v4"]), (a, grp)
assert any(a in ipaddress.ip_network(b) for b in host["blocks"]), (a, host["blocks"])
EOF
done
check "every pod address lies in its host's blocks and its rack's prefix" $aggr_ok

# Reachability: every pod to every pod of its tenant and segment, on the same
# host, the same rack and the other rack; ICMP and TCP, IPv4 and IPv6.
matrix() {
	local bad=0 total=0 src dst sh sn st ss dh dn dt ds fam ip
	for src in $PODS; do
		IFS=: read -r sh sn st ss <<<"$src"
		for dst in $PODS; do
			IFS=: read -r dh dn dt ds <<<"$dst"
			[ "$src" != "$dst" ] && [ "$st/$ss" = "$dt/$ds" ] || continue
			for fam in 4 6; do
				ip=$(pod_ip "$dh" "$dn" $fam)
				total=$((total + 1))
				if ! probe "$sh" "$sn" "$ip"; then
					bad=$((bad + 1))
					echo "# unreachable: $sh-$sn -> $dh-$dn ($ip)"
				fi
			done
		done
	done
	echo "# matrix: $((total - bad))/$total reachable"
	[ $bad -eq 0 ] && [ $total -gt 0 ]
}
check "every pod reaches every pod of its tenant and segment (same host, rack, other rack; ICMP+TCP; v4+v6)" matrix

enc=$(for h in $HOSTS rt; do ns "$h" ip -d -o link show; done | grep -Ec 'vxlan|ipip|gre|geneve|sit |ip6tnl|fou|wireguard' || true)
check "no encapsulation interface on any host or the router" [ "$enc" -eq 0 ]

routes_ok=true
for h in $HOSTS; do
	tests/netns/routes.py "$DIR/larchd.sock" "$h" "$NSP" >"$DIR/routes-$h" || routes_ok=false
	diag <"$DIR/routes-$h"
done
check "each host holds its endpoints, its blocks, its rack peers' blocks and one route per other rack" $routes_ok
rt4=$(ns rt ip -4 route show | grep -vc 'proto kernel')
rt6=$(ns rt ip -6 route show | grep -v 'proto kernel' | grep -vc '^fe80')
echo "# router: $rt4 IPv4 and $rt6 IPv6 routes besides its connected ones"
check "the router holds one route per rack and family" [ "$rt4" -eq 2 -a "$rt6" -eq 2 ]

# Delete a pod: its address goes back and its route goes away.
a=$(pod_ip h12 a 4)
hif=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["interfaces"][0]["name"])' "$DIR/pod-h12-a.json")
pod_del h12 a
gone() { ! ns h12 ip route show "$a/32" | grep -q . && ! ns h12 ip link show "$hif" >/dev/null 2>&1; }
check "pod delete removes its host route and interface" gone
check "pod delete releases its endpoint in larchd" bash -c "! $BIN/larchctl --server unix:$DIR/larchd.sock endpoint get h12-a:eth0 >/dev/null 2>&1"
check "pod delete twice succeeds (DEL is idempotent)" pod_del h12 a
PODS=${PODS/h12:a:t1:web /}

# Kill an agent (-9) and restart it: traffic keeps flowing, and the new
# agent finds nothing to change.
agent_stop h21 -KILL
b=$(pod_ip h21 a 4)
check "with h21's agent killed, h11-a still reaches h21-a" probe h11 a "$b"
agent_start h21
sleep 0.5
added=$(curl -sf --unix-socket "$DIR/agent-h21.sock" http://a/metrics | awk '/^larch_agent_routes_added_total/ {print $2}')
removed=$(curl -sf --unix-socket "$DIR/agent-h21.sock" http://a/metrics | awk '/^larch_agent_routes_removed_total/ {print $2}')
check "the restarted agent adds and removes nothing (added=$added removed=$removed)" [ "$added" = 0 -a "$removed" = 0 ]
check "after the restart h11-a still reaches h21-a" probe h11 a "$b"

# A route removed by hand comes back within one resync.
blk=$(ns h11 ip -4 route show proto 201 | awk '/via 192.168.1.12/ {print $1; exit}')
ns h11 ip route del "$blk"
check "a peer block route ($blk) deleted by hand is back within one resync ($RESYNC s)" \
	wait_for $((RESYNC + 2)) bash -c "ip netns exec $NSP-h11 ip route show $blk | grep -q 'via 192.168.1.12'"

# --once: with h12's agent stopped, a deleted route comes back from one pass.
# The block must be an active one: the block h12-a emptied above is cooling,
# and when its cool-down ends its blackhole goes for good.
agent_stop h12
blk=$(curl -sf --unix-socket "$DIR/larchd.sock" "http://l/v1/blocks?host=h12" | python3 -c '
import json, sys
print(next(b["cidr"] for b in json.load(sys.stdin)["items"] if b["state"] == "active" and ":" not in b["cidr"]))')
ns h12 ip route del blackhole "$blk"
ns h12 "$BIN/larch-agent" --once --server "unix:$DIR/larchd.sock" --host h12 --uplink eth0 \
	--next-hop 192.168.1.1 --next-hop fd00:1::1 2>>"$DIR/agent-once.log"
once_rc=$?
check "larch-agent --once exits 0 ($once_rc)" [ "$once_rc" -eq 0 ]
check "larch-agent --once restored blackhole $blk" bash -c "ip netns exec $NSP-h12 ip route show proto 201 | grep -q 'blackhole $blk'"
agent_start h12

# larchd down: agents keep their routes; back up: they follow again.
before=$(ns h22 ip -4 route show proto 201 | wc -l)
larchd_stop
sleep $((RESYNC + 1))
after=$(ns h22 ip -4 route show proto 201 | wc -l)
check "with larchd down the agents keep their routes ($before -> $after)" [ "$before" -eq "$after" ]
check "with larchd down pods still reach each other" probe h11 a "$(pod_ip h22 a 4)"
larchd_start
pod_add h22 d t1 web
PODS="$PODS h22:d:t1:web"
check "after larchd returns a new pod on h22 is reachable from the other rack" \
	wait_for 10 probe h11 a "$(pod_ip h22 d 4)"

warns=$(grep -h 'warn: route\|warn: proxy\|warn: cannot' "$DIR"/agent-*.log)
[ -z "$warns" ] || printf '%s\n' "$warns" | sed 's/^/# /'
check "no agent failed to program a route or proxy entry" [ -z "$warns" ]

# Clean stop: every agent exits 0 on SIGTERM and leaves its routes; no log
# holds a sanitizer report (make netns-san runs this with ASan+UBSan builds).
stops=0
for h in $HOSTS; do
	pid=$(cat "$DIR/agent-$h.pid"); kill -TERM "$pid"; wait "$pid" || stops=$((stops + 1)); rm -f "$DIR/agent-$h.pid"
done
check "every agent exits 0 on SIGTERM" [ $stops -eq 0 ]
check "the routes stay after the agents stop" [ "$(ns h11 ip -4 route show proto 201 | wc -l)" -gt 0 ]
larchd_stop
check "no sanitizer report in any log" bash -c "! grep -l 'Sanitizer\|runtime error' $DIR/*.log"

tap_end
