#!/bin/bash
# The iptables backend's differences (agent/firewall.c, ipt_diff): a chain
# of changed worlds (tests/policy/variants.py), each applied by
# `larch-agent --firewall iptables --apply NEW --from OLD` in one namespace,
# must leave the chains, rules and set contents that loading NEW whole
# leaves in a fresh namespace (generation numbers aside), and the changes
# must go as differences. A refused difference (a rule iptables refuses)
# fails, and leaves the rules and sets as they were. IPv6 refused at its
# commit after IPv4's (a test hook): IPv4 is put back, then the whole
# ruleset written.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../netns/tap.sh"
bin=${LARCH_BIN:-$here/../../build/bin}
agent=$bin/larch-agent
A=${NSP:-lxt}-ipa-$$ B=${NSP:-lxt}-ipb-$$
tmp=$(mktemp -d)
trap 'ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; rm -rf "$tmp"' EXIT
ip netns add "$B" || exit 1

# What namespace $1 holds of the agent's: iptables and ip6tables chains
# (sorted by name, rules in order), the jumps into them, and the sets with
# their elements; set generations (larch-G-N) read as larch-N.
state() {
	{
		ip netns exec "$1" iptables-save -t filter | sed 's/^/4 /'
		ip netns exec "$1" ip6tables-save -t filter | sed 's/^/6 /'
		ip netns exec "$1" ipset save
	} > "$tmp/raw" || return 1
	/usr/bin/python3 -c '
import re, sys
chains, rules, sets = set(), {}, {}
for line in open(sys.argv[1]):
    line = re.sub(r"larch-\d+-(\d+)", r"larch-\1", line.rstrip("\n"))
    m = re.match(r"([46]) :(\S+) ", line)
    if m and m.group(2).startswith("larch"):
        chains.add(m.group(1) + " " + m.group(2))
        continue
    m = re.match(r"([46]) -A (\S+) (.*)", line)
    if m and ("larch" in m.group(2) or "larch" in m.group(3)):
        rules.setdefault(m.group(1) + " " + m.group(2), []).append(m.group(3))
        continue
    m = re.match(r"create (larch-\S+) (.*)", line)
    if m:
        sets.setdefault(m.group(1), [re.sub(r" initval 0x[0-9a-f]+", "", m.group(2))])
        continue
    m = re.match(r"add (larch-\S+) (.*)", line)
    if m:
        sets[m.group(1)].append(m.group(2))
if not chains or not sets:
    sys.exit("no chains or sets of the agent")
for c in sorted(chains):
    print("chain", c)
    for r in rules.get(c, []):
        print("  ", r)
for s in sorted(sets):
    print("set", s, sets[s][0], sorted(sets[s][1:]))
' "$tmp/raw"
}

/usr/bin/python3 "$here/variants.py" "$here/golden/mixed.json" "$tmp" || not_ok "variants"
names=("the start" "an endpoint added" "a port changed" "an endpoint gone" "a policy added"
	"a label changed" "back to the start")
for i in 0 1 2 3 4 5 6; do
	"$agent" --host h1 --firewall iptables --render "$tmp/v$i.json" > "$tmp/v$i.ipt" ||
		not_ok "render v$i"
done
ip netns exec "$B" "$agent" --host x --firewall iptables --apply "$tmp/v0.ipt" > /dev/null ||
	not_ok "apply v0"
for i in 1 2 3 4 5 6; do
	if ! out=$(ip netns exec "$B" "$agent" --host x --firewall iptables --apply "$tmp/v$i.ipt" \
		--from "$tmp/v$((i - 1)).ipt" 2>&1); then
		not_ok "${names[$i]}: larch-agent --apply --from failed: $out"
		continue
	fi
	echo "# $out"
	[[ $out == "applied the difference"* ]] && ok "${names[$i]}: sent as a difference" ||
		not_ok "${names[$i]}: not a difference: $out"
	ip netns add "$A" || exit 1
	ip netns exec "$A" "$agent" --host x --firewall iptables --apply "$tmp/v$i.ipt" > /dev/null ||
		not_ok "${names[$i]}: the whole ruleset failed to load"
	if state "$A" > "$tmp/a" && state "$B" > "$tmp/b" && diff -u "$tmp/a" "$tmp/b" > "$tmp/d"; then
		ok "${names[$i]}: the difference leaves what loading the whole ruleset does"
	else
		sed 's/^/# /' "$tmp/d"
		not_ok "${names[$i]}: the difference leaves something else (diff above: whole, difference)"
	fi
	ip netns del "$A"
done

# text from users cannot add lines: a selector value (and the pods' label)
# with a newline, a section marker and an ipset command
/usr/bin/python3 - "$here/golden/mixed.json" > "$tmp/inj.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["policies"]["items"][0]
v = 'web\n#@ iptables\nflush'
p["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app"] = v
for e in d["endpoints"]["items"]:
    if (e.get("labels") or {}).get("app") == "web":
        e["labels"]["app"] = v  # so that the set is not empty, and written
json.dump(d, sys.stdout)
PY
"$agent" --host h1 --firewall iptables --render "$tmp/inj.json" > "$tmp/inj.ipt" || not_ok "render inj"
if [ "$(grep -c '^#@ ' "$tmp/inj.ipt")" = 3 ] && ! grep -q '^flush' "$tmp/inj.ipt" &&
	grep -q '^# endpoints in namespace shop with app=web__@ iptables_flush$' "$tmp/inj.ipt"; then
	ok "a selector value with a newline and a marker stays inside its comment"
else
	grep -n 'iptables\|flush' "$tmp/inj.ipt" | sed 's/^/# /' | head
	not_ok "a selector value with a newline and a marker left its comment"
fi
"$agent" --host h1 --render "$tmp/inj.json" > "$tmp/inj.nft" || not_ok "render inj (nft)"
if ! grep -q '^flush\|^#@' "$tmp/inj.nft" && ip netns exec "$B" nft -c -f "$tmp/inj.nft"; then
	ok "the same in the nftables ruleset: nft reads it"
else
	not_ok "the nftables ruleset with that value is not what nft reads"
fi

# a difference iptables refuses: nothing changes (the set changes undone)
state "$B" > "$tmp/before" || not_ok "cannot read the state"
sed 's/^-A larch-eok -j ACCEPT$/-A larch-eok -j NO-SUCH-TARGET/' "$tmp/v1.ipt" > "$tmp/bad.ipt"
grep -q NO-SUCH-TARGET "$tmp/bad.ipt" || not_ok "the test could not make a bad ruleset"
if err=$(ip netns exec "$B" "$agent" --host x --firewall iptables --apply "$tmp/bad.ipt" \
	--from "$tmp/v6.ipt" 2>&1); then
	not_ok "a rule iptables refuses was accepted"
else
	echo "# ${err//$'\n'/ }"
	ok "a refused update fails"
fi
state "$B" > "$tmp/after" && diff -u "$tmp/before" "$tmp/after" > /dev/null &&
	ok "a refused update changes no rule and no set" || not_ok "a refused update changed something"

# IPv4 commits, then IPv6 is refused at its
# commit (the agent's test hook, on the difference only): IPv4 is put back,
# the set changes undone, and the whole ruleset written instead
touch "$tmp/refuse6"
if err=$(ip netns exec "$B" env LARCH_AGENT_TEST_REFUSE="$tmp/refuse6" "$agent" --host x \
	--firewall iptables --apply "$tmp/v1.ipt" --from "$tmp/v6.ipt" 2>&1); then
	echo "# ${err//$'\n'/ }"
	grep -q "IPv6 refused after IPv4; IPv4 put back as it was" <<<"$err" &&
		grep -q "writing the whole ruleset" <<<"$err" &&
		ok "IPv6 refused after the IPv4 commit: IPv4 put back, then the whole ruleset" ||
		not_ok "IPv6 refused after the IPv4 commit: IPv4 put back, then the whole ruleset"
else
	not_ok "IPv6 refused after the IPv4 commit: the whole ruleset failed too: $err"
fi
ip netns del "$A" 2>/dev/null
ip netns add "$A" || exit 1
ip netns exec "$A" "$agent" --host x --firewall iptables --apply "$tmp/v1.ipt" > /dev/null ||
	not_ok "the whole ruleset failed to load"
state "$A" > "$tmp/a" && state "$B" > "$tmp/b" && diff -u "$tmp/a" "$tmp/b" > /dev/null &&
	ok "... which leaves what loading it whole does" || not_ok "... which leaves what loading it whole does"
tap_end
