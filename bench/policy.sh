#!/bin/bash
# Policy compile and apply at scale (issue 4): LOCAL endpoints on this host,
# POLICIES NetworkPolicies (bench/policy_world.py), rendered by
# `larch-agent --render` and applied in a namespace of its own: nftables:
# over netlink as the agent does (`larch-agent --apply`), and with `nft -f`
# side by side for comparison; FIREWALL=iptables: by `ipset restore` and
# `iptables-restore --noflush` / `ip6tables-restore --noflush` (what the
# agent runs, without its checks). Prints medians of ROUNDS runs of: compile,
# apply of the full ruleset to an empty namespace, and the incremental case
# (one more local endpoint: compile, then the difference as the agent sends
# it, and for comparison the whole ruleset again), and the ruleset's size.
# usage: [FIREWALL=nft|iptables] [WORLD_PORTS=distinct] [AGENT=build/bin/larch-agent] bench/policy.sh [LOCAL=3500] [POLICIES=12000] [ROUNDS=5]
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
/usr/bin/python3 bench/policy_world.py "$LOCAL" "$POLICIES" policy > "$tmp/worldp.json"
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
	# the agent's apply: what it prints (its own times) into $tmp/out
	nl_apply() { ip netns exec "$nsn" "$AGENT" --host h1 --apply "$@" > "$tmp/out"; }
	# from that output: the text read back + batch + kernel (ms)
	nl_ms() { sed -n 's/.*; \([0-9.]*\) ms (batch.*reading the text \([0-9.]*\) ms$/\1 \2/p' "$tmp/out" |
		awk '{printf "%d\n", $1 + $2 + 0.5}'; }
	nl_part() { sed -n "s/.*$1 \([0-9.]*\) ms.*/\1/p" "$tmp/out" | awk '{printf "%.1f\n", $1}'; }
	empty() { ip netns exec "$nsn" nft delete table inet larch 2>/dev/null || true; }
	count() { echo "$(grep -c '^	set' "$1") sets, $(grep -c '^	chain' "$1") chains"; }
fi
compile=() apply=() incr=() nlapply=() nlincr=() nlkernel=() nlikernel=() nlibatch=()
pincr=() pkernel=()
for i in $(seq "$ROUNDS"); do
	empty
	compile+=("$(ms render "$tmp/world.json")")
	render "$tmp/world.json" > "$tmp/world.rules"
	apply+=("$(ms load "$tmp/world.rules")")
	incr+=("$(ms sh -c "$AGENT --host h1 --firewall $FIREWALL --render $tmp/world1.json > $tmp/world1.rules")")
	c1=${incr[-1]}
	incr[-1]=$((incr[-1] + $(ms load "$tmp/world1.rules")))
	if [ "$FIREWALL" = iptables ]; then
		# the agent: the whole ruleset (a generation of its own), then
		# the difference to world1
		empty
		ip netns exec "$nsn" "$AGENT" --host h1 --firewall iptables --apply "$tmp/world.rules" > "$tmp/out"
		ip netns exec "$nsn" "$AGENT" --host h1 --firewall iptables --apply "$tmp/world1.rules" \
			--from "$tmp/world.rules" > "$tmp/out"
		grep -q "^applied the difference" "$tmp/out" || { cat "$tmp/out"; echo "not a difference" >&2; exit 1; }
		d=$(sed -n 's/.*: \([0-9.]*\) ms$/\1/p' "$tmp/out" | awk '{printf "%d\n", $1 + 0.5}')
		nlincr+=("$((c1 + d))") nlibatch+=("$d")
		continue
	fi
	# the same over netlink, in the same round
	empty
	nl_apply "$tmp/world.rules"
	nlapply+=("$(nl_ms)") nlkernel+=("$(nl_part kernel)")
	nl_apply "$tmp/world1.rules" --from "$tmp/world.rules"
	grep -q "^applied the difference" "$tmp/out" || { cat "$tmp/out"; echo "not a difference" >&2; exit 1; }
	nlincr+=("$((c1 + $(nl_ms)))") nlikernel+=("$(nl_part kernel)") nlibatch+=("$(nl_part batch)")
	nldiff=$(cat "$tmp/out")
	# one policy changed (its port), from world
	nl_apply "$tmp/world.rules" --from "$tmp/world1.rules"
	c2=$(ms sh -c "$AGENT --host h1 --firewall nft --render $tmp/worldp.json > $tmp/worldp.rules")
	nl_apply "$tmp/worldp.rules" --from "$tmp/world.rules"
	grep -q "^applied the difference" "$tmp/out" || { cat "$tmp/out"; echo "not a difference" >&2; exit 1; }
	pincr+=("$((c2 + $(nl_ms)))") pkernel+=("$(nl_part kernel)")
	pdiff=$(cat "$tmp/out")
done
machine
echo "policy ($FIREWALL): $LOCAL local endpoints, $POLICIES NetworkPolicies, ruleset $(wc -c < "$tmp/world.rules") bytes," \
	"$(count "$tmp/world.rules"); median of $ROUNDS"
echo "compile (larch-agent --render, JSON in -> ruleset out): $(printf '%s\n' "${compile[@]}" | median) ms  [${compile[*]}]"
echo "apply (empty -> full):                                 $(printf '%s\n' "${apply[@]}" | median) ms  [${apply[*]}]"
med() { printf '%s\n' "$@" | median; }
if [ "$FIREWALL" = iptables ]; then
	echo "incremental, the whole ruleset again (compile + apply): $(med "${incr[@]}") ms  [${incr[*]}]"
	echo "incremental, the agent's difference (compile + apply):  $(med "${nlincr[@]}") ms  [${nlincr[*]}]"
	echo "  the difference alone (ipset, iptables-restore):       $(med "${nlibatch[@]}") ms  [${nlibatch[*]}]"
	exit 0
fi
echo "  (apply above: nft -f; incremental with nft -f: $(med "${incr[@]}") ms  [${incr[*]}])"
echo "apply over netlink (empty -> full; reading the text, batch, kernel):"
echo "                                                       $(med "${nlapply[@]}") ms  [${nlapply[*]}], of it kernel $(med "${nlkernel[@]}") ms"
echo "incremental over netlink (compile + the difference):   $(med "${nlincr[@]}") ms  [${nlincr[*]}]"
echo "  the difference alone: kernel $(med "${nlikernel[@]}") ms [${nlikernel[*]}], batch $(med "${nlibatch[@]}") ms [${nlibatch[*]}]"
echo "  last: $nldiff"
echo "one policy changed over netlink (compile + the difference): $(med "${pincr[@]}") ms  [${pincr[*]}]"
echo "  the difference alone: kernel $(med "${pkernel[@]}") ms [${pkernel[*]}]"
echo "  last: $pdiff"
