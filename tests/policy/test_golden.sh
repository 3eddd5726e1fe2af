#!/bin/bash
# Golden tests of the policy compiler: for each tests/policy/golden/NAME.json
# (larchd's lists plus "host"), `larch-agent --render` must print exactly
# NAME.nft (nftables backend) and NAME.ipt (iptables backend), and nft, or
# ipset and iptables-restore, must accept that ruleset (checked, then loaded
# twice, in a namespace of its own). UPDATE=1 rewrites the golden files.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../netns/tap.sh"
bin=${LARCH_BIN:-$here/../../build/bin}
# a namespace per golden file and backend: sets and chains start from nothing
ns=
trap '[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null' EXIT

# Split an iptables ruleset into its ipset, iptables and ip6tables parts.
split_ipt() {
	awk -v d="$2" '/^#@ ipset$/ {o = d "/ipset"; next} /^#@ iptables$/ {o = d "/v4"; next}
		/^#@ ip6tables$/ {o = d "/v6"; next} o {print > o}' "$1"
}

load_nft() {
	ip netns exec "$ns" nft -c -f "$1" && ip netns exec "$ns" nft -f "$1" &&
		ip netns exec "$ns" nft -f "$1"
}

# ipset restore, both restores tested then loaded, then all of it again (-exist:
# the same sets); the agent's own apply (new set generation, stale chains,
# jumps) is tested with real traffic in tests/netns/test_policy.sh
load_ipt() {
	local d
	d=$(mktemp -d)
	split_ipt "$1" "$d"
	ip netns exec "$ns" ipset restore < "$d/ipset" &&
		ip netns exec "$ns" iptables-restore --noflush --test < "$d/v4" &&
		ip netns exec "$ns" ip6tables-restore --noflush --test < "$d/v6" &&
		ip netns exec "$ns" iptables-restore --noflush < "$d/v4" &&
		ip netns exec "$ns" ip6tables-restore --noflush < "$d/v6" &&
		ip netns exec "$ns" ipset -exist restore < "$d/ipset" &&
		ip netns exec "$ns" iptables-restore --noflush < "$d/v4" &&
		ip netns exec "$ns" ip6tables-restore --noflush < "$d/v6"
	local r=$?
	rm -rf "$d"
	return $r
}

for json in "$here"/golden/*.json; do
	name=$(basename "$json" .json)
	host=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["host"])' "$json")
	for backend in nft:nft iptables:ipt; do
		fw=${backend%%:*} ext=${backend##*:}
		want="$here/golden/$name.$ext"
		got=$(mktemp)
		if ! "$bin/larch-agent" --host "$host" --firewall "$fw" --render "$json" > "$got"; then
			not_ok "$name.$ext: larch-agent --render failed"
			rm -f "$got"
			continue
		fi
		if [ "${UPDATE:-0}" = 1 ]; then
			cp "$got" "$want"
			echo "# updated $want"
		fi
		if diff -u "$want" "$got"; then
			ok "$name.$ext: ruleset equals the golden file"
		else
			not_ok "$name.$ext: ruleset differs from $want (diff above)"
		fi
		ns=${NSP:-lxt}-golden-$$-$ext
		ip netns add "$ns" || exit 1
		if load_$ext "$got"; then
			ok "$name.$ext: $fw accepts it (check, load, reload)"
		else
			not_ok "$name.$ext: $fw refuses it"
		fi
		ip netns del "$ns"
		ns=
		rm -f "$got"
	done
	# Names stand for what they mean: a policy that selects no local
	# endpoint, added before all the others, renames no chain, set or class
	# (nftables dispatches by class number: a name that came to mean other
	# policies would send traffic to the wrong chains until the groups
	# are set again)
	more=$(mktemp)
	/usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
d["policies"]["items"].insert(0, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "aaa-unrelated", "namespace": "aaa-elsewhere"},
    "spec": {"podSelector": {}, "ingress": [{}]}})
json.dump(d, sys.stdout)' "$json" > "$more"
	if diff <("$bin/larch-agent" --host "$host" --render "$json" | grep -v '^#') \
		<("$bin/larch-agent" --host "$host" --render "$more" | grep -v '^#') >/dev/null; then
		ok "$name.nft: a policy that selects nothing here, added first, changes no name"
	else
		not_ok "$name.nft: a policy that selects nothing here, added first, changed names"
	fi
	rm -f "$more"
done
tap_end
