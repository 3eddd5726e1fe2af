#!/bin/bash
# TAP: isolation and network policy of issue 4 in the 2 racks x 2 hosts
# namespace cluster, with the agents' firewall backend FIREWALL (nft, the
# default, or iptables: test_policy_iptables.sh): a reachability matrix
# (every pod to every pod, TCP, UDP, ICMP, IPv4 and IPv6) per case against the
# expected matrix (tests/netns/policy_cases.py), then anti-spoofing and an
# unknown workload interface. Run as root (make netns runs it).
set -u
cd "$(dirname "$0")/../.."
FIREWALL=${FIREWALL:-nft}
AGENT_FLAGS="${AGENT_FLAGS:-} --firewall $FIREWALL"
. tests/netns/lib.sh
trap cluster_down EXIT INT TERM
. tests/netns/tap.sh
q() { "$@" >/dev/null 2>&1; }

cluster_up || { echo "Bail out! cluster did not come up"; exit 1; }
ok "cluster up: larchd, 4 agents with --firewall $FIREWALL"

# The backend's view: is the ruleset in force on host $1; the packets its
# rules commented $2 dropped on host $3 (summed over both families).
if [ "$FIREWALL" = iptables ]; then
	in_force() { ns "$1" iptables -C FORWARD -j larch-forward && ns "$1" ip6tables -C FORWARD -j larch-forward; }
	dropped() {
		{ ns "$2" iptables-save -c -t filter; ns "$2" ip6tables-save -c -t filter; } |
			awk -v c="$1" 'index($0, "--comment " c) || index($0, "--comment \"" c "\"") {
				gsub(/[^0-9:]/, "", $1); split($1, a, ":"); s += a[1]} END {print s + 0}'
	}
else
	in_force() { ns "$1" nft list table inet larch; }
	dropped() {
		ns "$2" nft list table inet larch | awk -v c="comment \"$1\"" 'index($0, c) && /packets/ {
			for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1)} END {print s + 0}'
	}
fi

# name tenant segment per host; namespaces: t1 pods in shop, t2 pods in ops
PODS="h11:a:t1:web:shop h11:b:t1:db:shop h12:c:t1:web:shop h12:d:t2:web:ops h21:e:t1:web:shop h21:f:t2:web:ops h22:g:t1:db:shop"
added=true
for p in $PODS; do
	IFS=: read -r h name t s k <<<"$p"
	pod_add "$h" "$name" "$t" "$s" || added=false
done
check "7 pods added through libcni" $added

# the pods' Kubernetes namespace comes from CNI_ARGS (pod_add passes the tenant):
# put them in shop / ops
for p in $PODS; do
	IFS=: read -r h name t s k <<<"$p"
	curl -sf --unix-socket "$DIR/larchd.sock" -X PATCH -H 'Content-Type: application/json' \
		-d "{\"namespace\": \"$k\"}" "http://l/v1/endpoints/$h-$name:eth0" >/dev/null ||
		not_ok "namespace of $h-$name"
done

for h in $HOSTS; do
	check "$h: the $FIREWALL ruleset is in force" q in_force "$h"
done

# Somebody else's rules on h11, which the agent must never touch.
if [ "$FIREWALL" = iptables ]; then
	ns h11 ipset create other-set hash:net
	ns h11 ipset add other-set 198.51.100.0/24
	ns h11 iptables -N other-chain
	ns h11 iptables -A other-chain -m set --match-set other-set src -j RETURN
	ns h11 iptables -A FORWARD -s 198.51.100.0/24 -j other-chain
	ns h11 ip6tables -A INPUT -s 2001:db8::/32 -j ACCEPT
	others() { ns h11 iptables-save -t filter; ns h11 ip6tables-save -t filter; ns h11 ipset list other-set; }
else
	ns h11 nft add table inet other
	ns h11 nft add chain inet other other_fwd '{ type filter hook forward priority 10; }'
	ns h11 nft add rule inet other other_fwd ip saddr 198.51.100.0/24 counter accept
	others() { ns h11 nft list table inet other; }
fi
others_before=$(others | grep -v '^#' | grep -iv larch | sed 's/\[[0-9:]*\] //; s/packets [0-9]* bytes [0-9]*//')

out=$(/usr/bin/python3 tests/netns/policy_cases.py "$DIR" "$NSP" $((tapn + 1)))
rc=$?
echo "$out" | grep -v '^# next '
next=$(echo "$out" | sed -n 's/^# next //p')
if [ -n "$next" ]; then tapn=$((next - 1)); else not_ok "policy cases ended early"; fi
fails=$((fails + $(echo "$out" | grep -c '^not ok')))
[ $rc -eq 0 ] || [ "$(echo "$out" | grep -c '^not ok')" -gt 0 ] || not_ok "policy cases exited $rc"

# Anti-spoofing: h11-a sends from an address that is not its own (h11-b's).
spoofed() { dropped spoofed h11; }
before=$(spoofed)
a_b=$(pod_ip h11 b 4)
c_ip=$(pod_ip h12 c 4)
ns p-h11-a ip addr add "$a_b/32" dev eth0
if ns p-h11-a ping -c3 -i0.2 -W1 -q -I "$a_b" "$c_ip" >/dev/null 2>&1; then
	not_ok "a spoofed source reaches h12-c"
else
	ok "h11-a pinging h12-c from h11-b's address gets nothing back"
fi
after=$(spoofed)
check "the spoofed packets are dropped and counted on h11 ($before -> $after)" [ "$after" -ge $((before + 3)) ]
ns p-h11-a ip addr del "$a_b/32" dev eth0
check "h11-a still reaches h12-c from its own address" q ns p-h11-a ping -c1 -W1 -q "$c_ip"

# Fail closed: an lx* interface the agent does not know gets nothing through.
unknown() { dropped "unknown workload interface" h11; }
ip netns add "$NSP-rogue"
ns h11 ip link add lxrogue0 type veth peer name eth0 netns "$NSP-rogue"
ns h11 ip link set lxrogue0 up
ns h11 sysctl -qw net.ipv4.conf.lxrogue0.proxy_arp=1
ns h11 ip route add 10.64.254.1 dev lxrogue0
ns rogue ip link set eth0 up
ns rogue ip addr add 10.64.254.1/32 dev eth0
ns rogue ip route add 169.254.1.1 dev eth0
# as larch-cni does for pods: the gateway's neighbour entry is the host end's MAC
ns rogue ip neigh add 169.254.1.1 lladdr "$(ns h11 cat /sys/class/net/lxrogue0/address)" dev eth0 nud permanent
ns rogue ip route add default via 169.254.1.1 dev eth0
before=$(unknown)
if ns rogue ping -c3 -i0.2 -W1 -q "$(pod_ip h11 a 4)" >/dev/null 2>&1; then
	not_ok "an unknown lx interface reaches h11-a"
else
	ok "an unknown lx interface on h11 reaches no pod"
fi
after=$(unknown)
check "its packets are dropped and counted as an unknown interface ($before -> $after)" [ "${after:-0}" -ge $((${before:-0} + 3)) ]
if [ "$FIREWALL" != iptables ]; then
	# nftables dispatches by the interface's group, which the agent sets to
	# the endpoint's class (the map ep_class) and keeps so
	group_of() { ns "$1" ip -d -o link show dev "$2" | sed -n 's/.* group \([^ ]*\) .*/\1/p'; }
	wrong=0 n=0
	for ifc in $(ns h11 nft list map inet larch ep_class | grep -o '"lx[^"]*"' | tr -d '"'); do
		want=$(ns h11 nft list map inet larch ep_class | grep -o "\"$ifc\" : [0-9]*" | sed 's/.* : //')
		have=$(group_of h11 "$ifc")
		n=$((n + 1))
		[ "$have" = "$want" ] || { wrong=$((wrong + 1)); echo "# $ifc: group $have, class $want"; }
	done
	check "h11: each of its $n endpoints' interfaces has its class as its group" [ "$n" -gt 0 -a "$wrong" = 0 ]
	pod_if=$(ns h11 nft list map inet larch ep_class | grep -o '"lx[^"]*"' | head -1 | tr -d '"')
	class=$(group_of h11 "$pod_if")
	ns h11 ip link set lxrogue0 group "$class"
	ns h11 ip link set "$pod_if" group 7
	put_back() { [ "$(group_of h11 lxrogue0)" = default ] && [ "$(group_of h11 "$pod_if")" = "$class" ]; }
	wait_for 2 put_back
	check "a group set by hand is put back at once: the unknown lxrogue0 to 0 ($(group_of h11 lxrogue0)), $pod_if to its class $class ($(group_of h11 "$pod_if"))" put_back
	if ns rogue ping -c2 -i0.2 -W1 -q "$(pod_ip h11 a 4)" >/dev/null 2>&1; then
		not_ok "the unknown lx interface reaches h11-a after taking a class's group"
	else
		ok "the unknown lx interface reaches no pod after taking a class's group"
	fi
fi
ip netns del "$NSP-rogue"

others_after=$(others | grep -v '^#' | grep -iv larch | sed 's/\[[0-9:]*\] //; s/packets [0-9]* bytes [0-9]*//')
if [ -n "$others_before" ] && [ "$others_before" = "$others_after" ]; then
	ok "h11: rules, chains and sets of other tools are as they were after every case"
else
	not_ok "h11: other tools' rules changed"
	diff <(echo "$others_before") <(echo "$others_after") | sed 's/^/# /'
fi
if [ "$FIREWALL" = iptables ]; then
	gens=$(ns h11 ipset list -n | sed -n 's/^larch-\([0-9]*\)-.*/\1/p' | sort -u)
	check "h11: one generation of larch sets is left ($(echo $gens))" [ "$(echo "$gens" | grep -c .)" = 1 ]
fi

# A refused update leaves the previous ruleset in force. While $DIR/refuse
# exists, h12's update is refused: iptables: the agent runs with
# ip6tables-restore replaced by one that refuses; nftables: the agent adds
# to its batch a jump to a chain that does not exist (LARCH_AGENT_TEST_REFUSE)
# and the kernel refuses the transaction.
agent_stop h12
if [ "$FIREWALL" = iptables ]; then
	tool=ip6tables-restore
	mkdir -p "$DIR/refusing"
	cat >"$DIR/refusing/$tool" <<EOF
#!/bin/sh
if [ -e "$DIR/refuse" ]; then
	echo "$tool: refused by the test" >&2
	exit 1
fi
exec $(command -v $tool) "\$@"
EOF
	chmod +x "$DIR/refusing/$tool"
	PATH="$DIR/refusing:$PATH" agent_start h12 || not_ok "h12 agent start with a refusing $tool"
else
	LARCH_AGENT_TEST_REFUSE="$DIR/refuse" agent_start h12 || not_ok "h12 agent start"
fi
ruleset() {
	if [ "$FIREWALL" = iptables ]; then
		ns h12 iptables-save -t filter; ns h12 ip6tables-save -t filter; ns h12 ipset list -n | sort
	else
		ns h12 nft list table inet larch
	fi | grep -v '^#' | sed 's/\[[0-9:]*\] //; s/packets [0-9]* bytes [0-9]*//'
}
sync12() { curl -sf --unix-socket "$DIR/agent-h12.sock" -X POST http://a/v1/sync >/dev/null; }
errors12() { curl -sf --unix-socket "$DIR/agent-h12.sock" http://a/metrics | awk '/^larch_agent_firewall_errors_total/ {print $2}'; }
before=$(ruleset)
touch "$DIR/refuse"
cat >"$DIR/deny-shop.json" <<EOF
{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
 "metadata": {"name": "deny-shop", "namespace": "shop"},
 "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
EOF
larchctl apply -f "$DIR/deny-shop.json" >/dev/null || not_ok "apply deny-shop"
sync12
check "h12: the refused update is counted as a firewall error ($(errors12))" [ "$(errors12)" -ge 1 ]
check "h12: the previous ruleset is in force, unchanged" [ "$before" = "$(ruleset)" ]
check "h12: and h11-a still reaches h12-c under it" q ns p-h11-a ping -c1 -W1 -q "$(pod_ip h12 c 4)"
rm -f "$DIR/refuse"
sync12
check "h12: once the tool accepts, the update is in force" [ "$before" != "$(ruleset)" ]
check "h12: deny-shop now drops h11-a -> h12-c" sh -c "! ip netns exec $NSP-p-h11-a ping -c1 -W1 -q $(pod_ip h12 c 4) >/dev/null 2>&1"
curl -sf --unix-socket "$DIR/larchd.sock" -X DELETE http://l/v1/policies/NetworkPolicy/shop/deny-shop >/dev/null ||
	not_ok "delete deny-shop"
sync12

# The agents keep the ruleset across a restart.
agent_stop h12
check "h12: agent stopped, the ruleset stays" q in_force h12
check "h12: traffic still flows between h12-c and h11-a" q ns p-h12-c ping -c1 -W1 -q "$(pod_ip h11 a 4)"
agent_start h12 || not_ok "h12 agent restart"
check "h12: agent back, healthy" q curl -sf --unix-socket "$DIR/agent-h12.sock" http://a/healthz

# Someone removes the agent's ruleset by hand: the next resync (every
# $RESYNC s) finds it gone and writes it whole again.
if [ "$FIREWALL" = iptables ]; then
	ns h12 iptables -D FORWARD -j larch-forward
else
	ns h12 nft delete table inet larch
fi
if in_force h12 >/dev/null 2>&1; then
	not_ok "h12: the test could not remove the ruleset"
else
	check "h12: a ruleset removed by hand is back after the next resync" \
		wait_for $((3 * RESYNC + 5)) q in_force h12
fi
check "h12: traffic flows under it again" q ns p-h12-c ping -c1 -W1 -q "$(pod_ip h11 a 4)"

for h in $HOSTS; do
	check "$h: no firewall errors in the agent's metrics" \
		sh -c "curl -sf --unix-socket '$DIR/agent-$h.sock' http://a/metrics | grep -qx 'larch_agent_firewall_errors_total 0'"
done
for h in $HOSTS; do agent_stop "$h"; done
for h in $HOSTS; do
	check "$h: agent log has no sanitizer report" sh -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:' '$DIR/agent-$h.log'"
done
tap_end
