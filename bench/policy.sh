#!/bin/bash
# Policy compile and apply at scale (issue 4): LOCAL endpoints on this host,
# POLICIES NetworkPolicies (bench/policy_world.py), rendered by
# `larch-agent --render` and applied with `nft -f` in a namespace of its own.
# Prints medians of ROUNDS runs of: compile, apply of the full ruleset to an
# empty table, and the incremental case (one more local endpoint: compile +
# apply over the full table), and the ruleset's size.
# usage: bench/policy.sh [LOCAL=3500] [POLICIES=12000] [ROUNDS=5]
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
compile=() apply=() incr=()
for i in $(seq "$ROUNDS"); do
	ip netns exec "$nsn" nft delete table inet larch 2>/dev/null || true
	compile+=("$(ms build/bin/larch-agent --host h1 --render "$tmp/world.json")")
	build/bin/larch-agent --host h1 --render "$tmp/world.json" > "$tmp/world.nft"
	apply+=("$(ms ip netns exec "$nsn" nft -f "$tmp/world.nft")")
	incr+=("$(ms sh -c "build/bin/larch-agent --host h1 --render $tmp/world1.json | ip netns exec $nsn nft -f -")")
done
machine
echo "policy: $LOCAL local endpoints, $POLICIES NetworkPolicies, ruleset $(wc -c < "$tmp/world.nft") bytes," \
	"$(grep -c '^	set' "$tmp/world.nft") sets, $(grep -c '^	chain' "$tmp/world.nft") chains; median of $ROUNDS"
echo "compile (larch-agent --render, JSON in -> ruleset out): $(printf '%s\n' "${compile[@]}" | median) ms  [${compile[*]}]"
echo "apply (nft -f, empty -> full):                         $(printf '%s\n' "${apply[@]}" | median) ms  [${apply[*]}]"
echo "incremental (one endpoint more: compile + nft -f):     $(printf '%s\n' "${incr[@]}" | median) ms  [${incr[*]}]"
