#!/bin/bash
# Policy compile and apply at scale (issue 4): LOCAL endpoints on this host,
# POLICIES NetworkPolicies (bench/policy_world.py), rendered by
# `larch-agent --render` and applied in a namespace of its own: with
# `nft -f`, or with FIREWALL=iptables by `ipset restore` and
# `iptables-restore --noflush` / `ip6tables-restore --noflush` (what the
# agent runs, without its checks). Prints medians of ROUNDS runs of: compile,
# apply of the full ruleset to an empty namespace, and the incremental case
# (one more local endpoint: compile + apply over the full ruleset), and the
# ruleset's size.
# usage: [FIREWALL=nft|iptables] [AGENT=build/bin/larch-agent] bench/policy.sh [LOCAL=3500] [POLICIES=12000] [ROUNDS=5]
set -eu
cd "$(dirname "$0")/.."
. tests/netns/lib.sh
LOCAL=${1:-3500} POLICIES=${2:-12000} ROUNDS=${3:-5}
NSP=lxbp
cluster_dir
tmp=$DIR
nsn=$NSP-$$
trap 'ip netns del $nsn 2>/dev/null; rm -rf "$tmp"' EXIT
ip netns add "$nsn"
/usr/bin/python3 bench/policy_world.py "$LOCAL" "$POLICIES" > "$tmp/world.json"
/usr/bin/python3 bench/policy_world.py "$LOCAL" "$POLICIES" 1 > "$tmp/world1.json"
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
FIREWALL=${FIREWALL:-nft}
AGENT=${AGENT:-build/bin/larch-agent}
render() { "$AGENT" --host h1 --firewall "$FIREWALL" --render "$1"; }
# load RULESET: what the backend's apply runs
if [ "$FIREWALL" = iptables ]; then
	load() {
		awk -v d="$tmp" '/^#@ ipset$/ {o = d "/ipset"; next} /^#@ iptables$/ {o = d "/v4"; next}
			/^#@ ip6tables$/ {o = d "/v6"; next} o {print > o}' "$1"
		ip netns exec "$nsn" ipset -exist restore < "$tmp/ipset" &&
			ip netns exec "$nsn" iptables-restore -w --noflush < "$tmp/v4" &&
			ip netns exec "$nsn" ip6tables-restore -w --noflush < "$tmp/v6"
	}
	empty() { ip netns del "$nsn"; ip netns add "$nsn"; }
	count() { echo "$(grep -c '^create ' "$1") sets, $(grep -c '^:' "$1") chains (both families)"; }
else
	load() { ip netns exec "$nsn" nft -f "$1"; }
	empty() { ip netns exec "$nsn" nft delete table inet larch 2>/dev/null || true; }
	count() { echo "$(grep -c '^	set' "$1") sets, $(grep -c '^	chain' "$1") chains"; }
fi
compile=() apply=() incr=()
for i in $(seq "$ROUNDS"); do
	empty
	compile+=("$(ms render "$tmp/world.json")")
	render "$tmp/world.json" > "$tmp/world.rules"
	apply+=("$(ms load "$tmp/world.rules")")
	incr+=("$(ms sh -c "$AGENT --host h1 --firewall $FIREWALL --render $tmp/world1.json > $tmp/world1.rules")")
	incr[-1]=$((incr[-1] + $(ms load "$tmp/world1.rules")))
done
machine
echo "policy ($FIREWALL): $LOCAL local endpoints, $POLICIES NetworkPolicies, ruleset $(wc -c < "$tmp/world.rules") bytes," \
	"$(count "$tmp/world.rules"); median of $ROUNDS"
echo "compile (larch-agent --render, JSON in -> ruleset out): $(printf '%s\n' "${compile[@]}" | median) ms  [${compile[*]}]"
echo "apply (empty -> full):                                 $(printf '%s\n' "${apply[@]}" | median) ms  [${apply[*]}]"
echo "incremental (one endpoint more: compile + apply):      $(printf '%s\n' "${incr[@]}" | median) ms  [${incr[*]}]"
