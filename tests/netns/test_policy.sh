#!/bin/bash
# TAP: isolation and network policy of issue 4 in the 2 racks x 2 hosts
# namespace cluster, with the agents' nftables backend: a reachability matrix
# (every pod to every pod, TCP, UDP, ICMP, IPv4 and IPv6) per case against the
# expected matrix (tests/netns/policy_cases.py), then anti-spoofing and an
# unknown workload interface. Run as root (make netns runs it).
set -u
cd "$(dirname "$0")/../.."
. tests/netns/lib.sh
trap cluster_down EXIT INT TERM
. tests/netns/tap.sh
q() { "$@" >/dev/null 2>&1; }

cluster_up || { echo "Bail out! cluster did not come up"; exit 1; }
ok "cluster up: larchd, 4 agents with --firewall nft"

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
	check "$h: table inet larch is in force" q ns "$h" nft list table inet larch
done

out=$(/usr/bin/python3 tests/netns/policy_cases.py "$DIR" "$NSP" $((tapn + 1)))
rc=$?
echo "$out" | grep -v '^# next '
next=$(echo "$out" | sed -n 's/^# next //p')
if [ -n "$next" ]; then tapn=$((next - 1)); else not_ok "policy cases ended early"; fi
fails=$((fails + $(echo "$out" | grep -c '^not ok')))
[ $rc -eq 0 ] || [ "$(echo "$out" | grep -c '^not ok')" -gt 0 ] || not_ok "policy cases exited $rc"

# Anti-spoofing: h11-a sends from an address that is not its own (h11-b's).
spoofed() { ns h11 nft list table inet larch | awk '/comment "spoofed"/ && /packets/ {for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1)} END {print s + 0}'; }
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
unknown() { ns h11 nft list chain inet larch egress | awk '/unknown workload interface/ {for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1)}'; }
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
ip netns del "$NSP-rogue"

# The agents keep the table across a restart, and a failed apply keeps it.
agent_stop h12
check "h12: agent stopped, the table stays" q ns h12 nft list table inet larch
check "h12: traffic still flows between h12-c and h11-a" q ns p-h12-c ping -c1 -W1 -q "$(pod_ip h11 a 4)"
agent_start h12 || not_ok "h12 agent restart"
check "h12: agent back, healthy" q curl -sf --unix-socket "$DIR/agent-h12.sock" http://a/healthz

for h in $HOSTS; do
	check "$h: no firewall errors in the agent's metrics" \
		sh -c "curl -sf --unix-socket '$DIR/agent-$h.sock' http://a/metrics | grep -qx 'larch_agent_firewall_errors_total 0'"
done
for h in $HOSTS; do agent_stop "$h"; done
for h in $HOSTS; do
	check "$h: agent log has no sanitizer report" sh -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:' '$DIR/agent-$h.log'"
done
tap_end
