#!/bin/bash
# The agent's nftables backend over netlink (agent/nft.c) against nft itself:
#  - each golden ruleset and tests/policy/netlink_syntax.nft, put in force by
#    `larch-agent --apply` in one namespace and by `nft -f` in another, must
#    list the same (`nft list table`);
#  - a chain of changed worlds (an endpoint added, a port changed, an
#    endpoint gone, a policy added, a label changed, and back), each applied
#    as the difference from the one before (--apply NEW --from OLD), must
#    list the same as NEW loaded whole by nft, and each must go as a
#    difference, not a new table;
#  - a batch the kernel refuses fails with a message that names the rule and
#    leaves the ruleset as it was; text the backend cannot read goes to
#    nft -f, as in the agent (in force if nft reads it, refused with nothing
#    changed if not); a difference from a ruleset that is not the one in
#    force is refused by the kernel and the table is written whole.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../netns/tap.sh"
bin=${LARCH_BIN:-$here/../../build/bin}
agent=$bin/larch-agent
A=${NSP:-lxt}-nla-$$ B=${NSP:-lxt}-nlb-$$
tmp=$(mktemp -d)
C=
trap 'ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; [ -n "$C" ] && ip netns del $C 2>/dev/null; rm -rf "$tmp"' EXIT
ip netns add "$A" && ip netns add "$B" || exit 1

# The listing, its sets, maps and chains in name order (a chain the
# difference creates comes last in the kernel's own order)
list() {
	ip netns exec "$1" nft list table inet larch > "$tmp/listing" 2>&1 || { cat "$tmp/listing"; return 1; }
	/usr/bin/python3 -c '
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^\t(?:set|map|chain) \S+ \{\n.*?^\t\}\n", text, re.S | re.M)
rest = re.sub(r"^\t(?:set|map|chain) \S+ \{\n.*?^\t\}\n", "", text, flags=re.S | re.M)
if not blocks:
    sys.exit("no sets, maps or chains in the listing")
sys.stdout.write(re.sub(r"\n+", "\n", rest) + "".join(sorted(blocks, key=lambda b: b.split()[1])))
' "$tmp/listing"
}
# same FILE NAME: nft -f FILE in A (from nothing) lists what B holds
same() {
	ip netns exec "$A" nft delete table inet larch 2>/dev/null
	if ! ip netns exec "$A" nft -f "$1"; then
		not_ok "$2: nft refuses $1"
		return
	fi
	if ! list "$A" > "$tmp/a" || ! list "$B" > "$tmp/b"; then
		not_ok "$2: cannot list the table"
	elif diff -u "$tmp/a" "$tmp/b" > "$tmp/diff"; then
		ok "$2"
	else
		cat "$tmp/diff"
		not_ok "$2 (diff above: nft -f, then the agent)"
	fi
}

# 1. whole tables
for f in "$here"/golden/*.json "$here/netlink_syntax.nft"; do
	name=$(basename "$f")
	if [ "${f%.json}" != "$f" ]; then
		host=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["host"])' "$f")
		"$agent" --host "$host" --render "$f" > "$tmp/r.nft" || { not_ok "$name: render"; continue; }
	else
		cp "$f" "$tmp/r.nft"
	fi
	ip netns exec "$B" nft delete table inet larch 2>/dev/null
	if out=$(ip netns exec "$B" "$agent" --host x --apply "$tmp/r.nft"); then
		echo "# $out"
		same "$tmp/r.nft" "$name: the netlink backend puts in force what nft -f does"
	else
		not_ok "$name: larch-agent --apply failed"
	fi
done

# 2. differences: variants of the golden world "mixed"
/usr/bin/python3 "$here/variants.py" "$here/golden/mixed.json" "$tmp" || not_ok "variants"
names=("the start" "an endpoint added" "a port changed" "an endpoint gone" "a policy added"
	"a label changed" "back to the start")
for i in 0 1 2 3 4 5 6; do
	"$agent" --host h1 --render "$tmp/v$i.json" > "$tmp/v$i.nft" || not_ok "render v$i"
done
ip netns exec "$B" nft delete table inet larch 2>/dev/null
ip netns exec "$B" "$agent" --host x --apply "$tmp/v0.nft" > /dev/null || not_ok "apply v0"
for i in 1 2 3 4 5 6; do
	if out=$(ip netns exec "$B" "$agent" --host x --apply "$tmp/v$i.nft" --from "$tmp/v$((i - 1)).nft"); then
		echo "# $out"
		same "$tmp/v$i.nft" "${names[$i]}: the difference leaves what nft -f of the whole puts in force"
		case $i in
		1|2|3|4|5|6)
			if [[ $out == "applied the difference"* ]]; then
				ok "${names[$i]}: sent as a difference"
			else
				not_ok "${names[$i]}: the whole table was replaced"
			fi ;;
		esac
	else
		not_ok "${names[$i]}: larch-agent --apply --from failed"
	fi
done
ip netns exec "$B" "$agent" --host x --apply "$tmp/v1.nft" --from "$tmp/v0.nft" > "$tmp/small"
if grep -q "6 messages\|[0-9] messages" "$tmp/small" && ! grep -q "[0-9][0-9] messages" "$tmp/small"; then
	ok "one endpoint added: under 10 messages ($(cat "$tmp/small"))"
else
	not_ok "one endpoint added: $(cat "$tmp/small")"
fi

# 2a. a verdict map that goes with the chain it names, in one difference
cat > "$tmp/m1.nft" <<'NFT'
table inet larch {
	chain c {
		accept
	}
	map m {
		type ifname : verdict
		elements = { "lxa" : goto c }
	}
	chain egress {
		type filter hook forward priority filter; policy accept;
		iifname vmap @m
	}
}
NFT
cat > "$tmp/m2.nft" <<'NFT'
table inet larch {
	chain egress {
		type filter hook forward priority filter; policy accept;
		accept
	}
}
NFT
ip netns exec "$B" nft delete table inet larch 2>/dev/null
ip netns exec "$B" "$agent" --host x --apply "$tmp/m1.nft" > /dev/null || not_ok "apply m1"
if out=$(ip netns exec "$B" "$agent" --host x --apply "$tmp/m2.nft" --from "$tmp/m1.nft" 2>&1) &&
	[[ $out == "applied the difference"* ]]; then
	same "$tmp/m2.nft" "a map and the chain it names go in one difference"
else
	not_ok "a map and the chain it names go in one difference: $out"
fi
# back to v1 (whole), which the refusals below start from
ip netns exec "$B" "$agent" --host x --apply "$tmp/v1.nft" > /dev/null || not_ok "apply v1"

# 2b. a batch over libnftnl's 1 MiB page, whose last message (the one the
# kernel acknowledges) lands on a page boundary for one of these sizes: each
# must be answered at once, not after the 60 s receive timeout
C=${NSP:-lxt}-nlc-$$
ip netns add "$C" || exit 1
for n in $(seq 1620 1645); do
	/usr/bin/python3 -c '
import sys
n = int(sys.argv[1])
print("table inet larch {\n}\ndelete table inet larch\ntable inet larch {\n\tset s {\n\t\ttype ipv4_addr")
print("\t\telements = { " + ", ".join("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(20000)) + " }\n\t}")
print("\tchain c {")
for i in range(n):
    print("\t\tip saddr 10.1.%d.%d tcp dport %d accept" % (i >> 8 & 255, i & 255, 1000 + i))
print("\t}\n}")' "$n" > "$tmp/big.nft"
	if ! out=$(timeout 20 ip netns exec "$C" "$agent" --host x --apply "$tmp/big.nft" 2>&1); then
		not_ok "a batch of 20,000 elements and $n rules: $out"
		break
	fi
done
[ "$n" = 1645 ] && [[ $out == applied* ]] && ok "batches around the 1 MiB page boundary are answered (${out%%;*})"
ip netns del "$C"

# 3. refusals leave the ruleset in force as it was
list "$B" > "$tmp/before" || not_ok "cannot list the table"
# unchanged: B lists what it did before the refusals
unchanged() { list "$B" > "$tmp/after" && diff -u "$tmp/before" "$tmp/after" > /dev/null; }
sed '0,/^\t\tcounter drop comment "ingress not allowed"$/s//\t\tjump nosuch/' "$tmp/v1.nft" > "$tmp/bad.nft"
grep -q "jump nosuch" "$tmp/bad.nft" || not_ok "the test could not make a bad ruleset"
if err=$(ip netns exec "$B" "$agent" --host x --apply "$tmp/bad.nft" --from "$tmp/v1.nft" 2>&1); then
	not_ok "a jump to a chain that does not exist was accepted"
else
	echo "# ${err//$'\n'/ }"
	[[ $err == *"jump nosuch"*"No such file or directory"* ]] &&
		ok "a refused batch: the error names the rule and the kernel's reason" ||
		not_ok "a refused batch: the error does not name the rule: $err"
fi
unchanged && ok "a refused batch changes nothing" ||
	not_ok "a refused batch changed the ruleset"
# 4. text the backend cannot read goes to nft -f, as the agent does: what
# nft accepts is put in force (with a warning), what nft refuses is refused
# and changes nothing
cannot_read=('ct state established,related log accept' 'tcp dport { 5,7, 9x } accept'
	'tcp dport 100-200zz accept' 'ip saddr != 0.0.0.0/0 drop' 'accept comment "q"r"')
for rule in "${cannot_read[@]}"; do
	awk -v r="$rule" '!done && /^\t\tct state established,related accept$/ {print "\t\t" r; done = 1; next} {print}' \
		"$tmp/v1.nft" > "$tmp/unknown.nft"
	ip netns exec "$A" nft delete table inet larch 2>/dev/null
	if ip netns exec "$A" nft -c -f "$tmp/unknown.nft" 2>/dev/null; then
		if out=$(ip netns exec "$B" "$agent" --host x --apply "$tmp/unknown.nft" --from "$tmp/v1.nft" 2>&1) &&
			[[ $out == *"cannot read this rule"*"using nft -f"*"applied with nft -f"* ]]; then
			same "$tmp/unknown.nft" "\"$rule\" (nft reads it, the backend does not): put in force by nft -f"
		else
			not_ok "\"$rule\": not put in force by nft -f: $out"
		fi
		ip netns exec "$B" "$agent" --host x --apply "$tmp/v1.nft" > /dev/null || not_ok "apply v1"
		list "$B" > "$tmp/before"
	elif out=$(ip netns exec "$B" "$agent" --host x --apply "$tmp/unknown.nft" --from "$tmp/v1.nft" 2>&1); then
		not_ok "\"$rule\" (nft refuses it) was put in force"
	else
		[[ $out == *"cannot read this rule"* ]] && unchanged &&
			ok "\"$rule\" (nft refuses it too): refused, nothing changed" ||
			not_ok "\"$rule\": $out"
	fi
done

# 5. a difference from a ruleset that is not the one in force: refused by
# the kernel (v1 is in force: adding v1's endpoint again finds its elements
# there), then the table is written whole
if out=$(ip netns exec "$B" "$agent" --host x --apply "$tmp/v1.nft" --from "$tmp/v0.nft" 2>&1) &&
	[[ $out == *"difference was refused"*"adding elements of set"*"File exists"*"applied the table"* ]]; then
	echo "# ${out//$'\n'/ }"
	same "$tmp/v1.nft" "a difference from a ruleset not in force: refused, then the whole table"
else
	not_ok "a difference from a ruleset not in force: $out"
fi

# 6. interface groups: --apply sets each interface of the map ep_class to
# its class, and an lx interface that is in no class to 0, whether the
# backend sent the table or nft -f took it (the agent then reads the map
# from the text)
C=${NSP:-lxt}-netlink-$$-c
ip netns add "$C" || exit 1
classes=$(sed -n '/map ep_class/,/}/p' "$tmp/v1.nft" | grep -o '"lx[^"]*" : [0-9]*' | tr -d '"' | sed 's/ : / /')
first=$(echo "$classes" | head -1 | cut -d' ' -f2)
while read -r ifc class; do
	ip netns exec "$C" ip link add "$ifc" type veth peer name "${ifc:0:13}pe"
done <<<"$classes"
ip netns exec "$C" ip link add lxnobody0 type veth peer name lxnobody0pe
groups_right() {
	local ifc class bad=0
	while read -r ifc class; do
		[ "$(ip netns exec "$C" ip -d -o link show dev "$ifc" | sed -n 's/.* group \([^ ]*\) .*/\1/p')" = "$class" ] ||
			bad=1
	done <<<"$classes
lxnobody0 default"
	return $bad
}
awk '!done && /^\t\tct state established,related accept$/ {print "\t\tct state established,related log accept"; done = 1; next} {print}' \
	"$tmp/v1.nft" > "$tmp/unknown.nft"
for f in v1 unknown; do
	for ifc in $(echo "$classes" | cut -d' ' -f1); do ip netns exec "$C" ip link set "$ifc" group 0; done
	ip netns exec "$C" ip link set lxnobody0 group "$first"
	ip netns exec "$C" nft delete table inet larch 2>/dev/null
	if ip netns exec "$C" "$agent" --host x --apply "$tmp/$f.nft" >/dev/null 2>&1 && groups_right; then
		ok "$f.nft: each of $(echo "$classes" | wc -l) interfaces gets its class as its group, an unknown one 0"
	else
		not_ok "$f.nft: interface groups"
		ip netns exec "$C" ip -d -o link show | grep -o 'lx[^:@]*\|group [^ ]*' | paste - - | diag
	fi
done
ip netns del "$C"

# Several tables (agent/nft_shard.c): by default one per 4,096 rules, so the
# bench's world without repeated rules (3,500 endpoints, 12,000 policies
# each on a port of its own: 27,000 rules) goes to 8;
# a difference keeps them; --nft-tables sets the count, and a change of count
# replaces the ruleset whole and leaves no table of the old count behind.
C=${NSP:-lxt}-nlc-$$
ip netns add "$C"
tables() { ip netns exec "$C" nft list tables inet | awk '{print $3}' | sort | tr '\n' ' '; }
eight="larch larch_1 larch_2 larch_3 larch_4 larch_5 larch_6 larch_7 "
WORLD_PORTS=distinct /usr/bin/python3 "$here/../../bench/policy_world.py" 3500 12000 >"$tmp/bw.json"
WORLD_PORTS=distinct /usr/bin/python3 "$here/../../bench/policy_world.py" 3500 12000 policy >"$tmp/bwp.json"
"$agent" --host h1 --render "$tmp/bw.json" >"$tmp/bw.nft"
"$agent" --host h1 --render "$tmp/bwp.json" >"$tmp/bwp.nft"
out=$(ip netns exec "$C" "$agent" --host h1 --apply "$tmp/bw.nft" 2>&1)
[ "$(tables)" = "$eight" ] && ok "27,000 rules: 8 tables" || not_ok "27,000 rules: tables $(tables): $out"
out=$(ip netns exec "$C" "$agent" --host h1 --apply "$tmp/bwp.nft" --from "$tmp/bw.nft" 2>&1)
case $out in
"applied the difference"*) [ "$(tables)" = "$eight" ] ;;
*) false ;;
esac && ok "a policy changed: a difference, still 8 tables" ||
	not_ok "a policy changed: $out; tables $(tables)"
out=$(ip netns exec "$C" "$agent" --host h1 --nft-tables 2 --apply "$tmp/bwp.nft" 2>&1)
[ "$(tables)" = "larch larch_1 " ] && ok "--nft-tables 2: 2 tables, the other 6 deleted" ||
	not_ok "--nft-tables 2: tables $(tables): $out"
out=$(ip netns exec "$C" "$agent" --host x --apply "$here/golden/many.nft" 2>&1)
[ "$(tables)" = "larch " ] && ok "a small ruleset: 1 table, the other deleted" ||
	not_ok "a small ruleset: tables $(tables): $out"
ip netns del "$C"
tap_end
