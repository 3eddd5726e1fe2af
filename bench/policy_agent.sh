#!/bin/bash
# End to end at scale (issue 4): larchd with LOCAL endpoints on host h1 (and
# as many on 9 other hosts) and POLICIES NetworkPolicies (the world of
# bench/policy_world.py, through the API), and a running larch-agent for h1
# in a namespace of its own (its table is there; nothing touches the
# machine's own namespace). Prints the agent's first full pass, then the
# time from an API request until the agent has the changed ruleset in force
# (bench/policy_agent.py), medians of ROUNDS. AGENTS="A B ..." measures
# several agent binaries one after the other against the same larchd.
# usage: [FIREWALL=nft|iptables] [WORLD_PORTS=distinct] [AGENTS=...] bench/policy_agent.sh [LOCAL=3500] [POLICIES=12000] [ROUNDS=5]
set -eu
cd "$(dirname "$0")/.."
NSP=lxpa
. tests/netns/lib.sh
LOCAL=${1:-3500} POLICIES=${2:-12000} ROUNDS=${3:-5}
FIREWALL=${FIREWALL:-nft}
trap cluster_down EXIT INT TERM
cluster_dir
larchd_start
t0=$(date +%s%N)
python3 bench/policy_agent.py "$DIR/larchd.sock" setup "$LOCAL" "$POLICIES"
echo "# larchd loaded in $((($(date +%s%N) - t0) / 1000000)) ms"
metric() { curl -sf --unix-socket "$DIR/agent.sock" http://a/metrics | awk -v m="$1" '$1 == m {print $2}'; }
machine
echo "policy end to end ($FIREWALL): $LOCAL endpoints on h1, $LOCAL elsewhere, $POLICIES NetworkPolicies"
for agent in ${AGENTS:-$BIN/larch-agent}; do
	echo "## agent $agent"
	ip netns add "$NSP-h1"
	ns h1 ip link set lo up
	t0=$(date +%s%N)
	ip netns exec "$NSP-h1" "$agent" --server "unix:$DIR/larchd.sock" --host h1 \
		--address 192.168.0.1 --group g --socket "$DIR/agent.sock" --resync 3600 \
		--firewall "$FIREWALL" ${AGENT_FLAGS:-} 2>>"$DIR/agent.log" &
	echo $! >"$DIR/agent.pid"
	i=0
	until [ "$(metric larch_agent_firewall_applies_total 2>/dev/null)" = 1 ]; do
		i=$((i + 1)); [ $i -lt 1200 ] || { tail "$DIR/agent.log"; echo "no first apply" >&2; exit 1; }
		sleep 0.1
	done
	echo "first pass: start to ruleset in force $((($(date +%s%N) - t0) / 1000000)) ms (0.1 s polls);" \
		"compile $(metric larch_agent_firewall_compile_seconds) s (larchd's lists read before)," \
		"apply $(metric larch_agent_firewall_apply_seconds) s (kernel $(metric larch_agent_firewall_kernel_seconds) s)," \
		"$(metric larch_agent_firewall_ruleset_bytes) bytes"
	python3 bench/policy_agent.py "$DIR/larchd.sock" measure "$DIR/agent.sock" "$ROUNDS" "$LOCAL" "$POLICIES"
	echo "last pass: $(metric larch_agent_last_pass_seconds) s; of it compile $(metric larch_agent_firewall_compile_seconds) s," \
		"apply $(metric larch_agent_firewall_apply_seconds) s"
	kill "$(cat "$DIR/agent.pid")"; wait "$(cat "$DIR/agent.pid")" 2>/dev/null
	ip netns del "$NSP-h1"
done
