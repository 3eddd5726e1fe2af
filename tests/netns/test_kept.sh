#!/bin/bash
# TAP: the agent keeps the policy's inputs between passes and follows
# larchd's change feed (agent/kept.c) instead of reading every list again.
# After each kind of change through the API, the ruleset the agent has in
# force (GET /v1/ruleset on its socket) must be exactly what
# `larch-agent --render` makes of larchd's lists read whole at that moment.
# After an incremental pass (endpoints only: lib/policy_inc.c) GET
# /v1/ruleset is itself a rendering of the kept lists; what is in force is
# checked by the agent (LARCH_AGENT_CHECK_INC: it exits on a difference, and
# the next sync here fails).
# Both backends (FIREWALL=nft, then iptables). One agent in a namespace of
# its own; larchd on a unix socket. Run as root (make netns runs it).
# NFT_TABLES=N: nftables only, the agent spreads its ruleset over N tables
# (--nft-tables), and after each change the kernel's tables must also be
# what the fresh rendering applied whole (in a scratch namespace) gives.
set -u
cd "$(dirname "$0")/../.."
# a short feed, so that the test can outrun it; no block comes back from its
# cool-down during the test (nothing changes but what the test changes)
LARCHD_FLAGS="--feed-retention 20 --block-cooldown 3600"
. tests/netns/lib.sh
trap cluster_down EXIT INT TERM
. tests/netns/tap.sh

cluster_dir
larchd_start || { echo "Bail out! larchd did not start"; exit 1; }
topology
api() { curl -sf --unix-socket "$DIR/larchd.sock" -X "$1" -H 'Content-Type: application/json' \
	${3:+-d "$3"} "http://l$2" >/dev/null; }
agent() { curl -sf --unix-socket "$DIR/agent-h11.sock" "$@"; }
metric() { agent http://a/metrics | awk -v m="$1" '$1 == m {print $2}'; }
api POST /v1/hosts '{"name": "h12", "address": "192.168.1.12", "group": "rack1"}'
# two tenants that allow all: their endpoints without a policy share one
# ingress chain
for t in n1 n2; do
	api POST /v1/tenants "{\"name\": \"$t\", \"isolation\": \"none\"}"
	api POST "/v1/tenants/$t/segments" '{"name": "s"}'
done

# larchd's lists read whole now, as --render reads them
fresh() {
	local k
	for k in tenants blocks hosts endpoints policies namespaces; do
		curl -sf --unix-socket "$DIR/larchd.sock" "http://l/v1/$k" >"$DIR/list-$k.json" || return 1
	done
	python3 -c 'import json, sys
d = sys.argv[1]
print(json.dumps({k: json.load(open("%s/list-%s.json" % (d, k))) for k in
                  ("tenants", "blocks", "hosts", "endpoints", "policies", "namespaces")}))' "$DIR" \
		>"$DIR/state.json"
}

# same WHAT: a pass (it catches up with the feed), then the ruleset in force
# against a render of the fresh lists
same() {
	agent -X POST http://a/v1/sync >/dev/null || { not_ok "$FW: $1: sync"; return; }
	agent http://a/v1/ruleset >"$DIR/kept.rules" || { not_ok "$FW: $1: no ruleset"; return; }
	fresh || { not_ok "$FW: $1: lists"; return; }
	"$BIN/larch-agent" --host h11 --firewall "$FW" --render "$DIR/state.json" >"$DIR/fresh.rules" ||
		{ not_ok "$FW: $1: render"; return; }
	if cmp -s "$DIR/kept.rules" "$DIR/fresh.rules"; then
		ok "$FW: $1: the ruleset in force is what the lists read whole give"
	else
		not_ok "$FW: $1: the ruleset in force is what the lists read whole give"
		diff "$DIR/fresh.rules" "$DIR/kept.rules" | head -20 | diag
	fi
	[ -n "${NFT_TABLES:-}" ] && tables_same "$1"
}

# the agent's tables in the kernel, without counters: objects sorted, set
# elements sorted, each chain with its rules in their order
tables_of() {
	local t
	for t in $(ip netns exec "$1" nft list tables inet | awk '{print $3}' | sort); do
		echo "## $t"
		ip netns exec "$1" nft -j -s list table inet "$t" | python3 -c 'import json, sys
objs, rules = [], {}
for o in json.load(sys.stdin)["nftables"]:
    for k, v in o.items():
        if not isinstance(v, dict):
            continue
        v.pop("handle", None)
        if "elem" in v:
            v["elem"] = sorted(v["elem"], key=json.dumps)
        if k == "rule":
            rules.setdefault(v["chain"], []).append(v)
        else:
            objs.append(json.dumps(o, sort_keys=True))
for line in sorted(objs):
    print(line)
for c in sorted(rules):
    print(c, json.dumps(rules[c], sort_keys=True))'
	done
}

# after the agent's passes (patches or differences), the kernel holds what
# the same rendering applied whole gives
tables_same() {
	local n=$NSP-fresh
	ip netns add "$n"
	if ip netns exec "$n" "$BIN/larch-agent" --host h11 --nft-tables "$NFT_TABLES" \
		--apply "$DIR/fresh.rules" >/dev/null &&
		tables_of "$NSP-h11" >"$DIR/kernel.tables" && tables_of "$n" >"$DIR/fresh.tables" &&
		[ "$(grep -c '^## ' "$DIR/kernel.tables")" = "$NFT_TABLES" ] &&
		cmp -s "$DIR/kernel.tables" "$DIR/fresh.tables"; then
		ok "$FW: $1: the kernel's $NFT_TABLES tables are what the ruleset applied whole gives"
	else
		not_ok "$FW: $1: the kernel's $NFT_TABLES tables are what the ruleset applied whole gives"
		diff "$DIR/fresh.tables" "$DIR/kernel.tables" | head -20 | diag
	fi
	ip netns del "$n"
}

fws="nft iptables"
[ -n "${NFT_TABLES:-}" ] && fws=nft
for FW in $fws; do
	ip netns add "$NSP-h11"
	ns h11 ip link set lo up
	# LARCH_AGENT_CHECK_INC: the agent checks every incremental pass
	# against a whole rendering, and exits on a difference
	ip netns exec "$NSP-h11" env LARCH_AGENT_TEST_REFUSE="$DIR/refuse" LARCH_AGENT_CHECK_INC=1 \
		"$BIN/larch-agent" --server "unix:$DIR/larchd.sock" --host h11 \
		--address 192.168.1.11 --group rack1 --socket "$DIR/agent-h11.sock" --resync 3600 \
		--firewall "$FW" ${NFT_TABLES:+--nft-tables $NFT_TABLES} ${AGENT_FLAGS:-} \
		2>>"$DIR/agent-h11.log" &
	echo $! >"$DIR/agent-h11.pid"
	check "$FW: agent up" wait_for 10 agent http://a/healthz -o /dev/null
	same "start"
	reads=$(metric larch_agent_firewall_list_reads_total)

	u=$FW # endpoints and documents of this round have names of their own
	api POST /v1/endpoints "{\"endpoints\": [
	  {\"handle\": \"$u-a\", \"tenant\": \"t1\", \"segment\": \"web\", \"host\": \"h11\", \"namespace\": \"shop\", \"labels\": {\"app\": \"web\"}},
	  {\"handle\": \"$u-b\", \"tenant\": \"t1\", \"segment\": \"db\", \"host\": \"h11\", \"namespace\": \"shop\", \"labels\": {\"app\": \"db\"}},
	  {\"handle\": \"$u-c\", \"tenant\": \"t2\", \"segment\": \"web\", \"host\": \"h11\", \"namespace\": \"ops\"},
	  {\"handle\": \"$u-d\", \"tenant\": \"t1\", \"segment\": \"db\", \"host\": \"h12\", \"namespace\": \"shop\", \"labels\": {\"app\": \"db\"}},
	  {\"handle\": \"$u-e\", \"tenant\": \"t2\", \"segment\": \"web\", \"host\": \"h12\", \"namespace\": \"ops\", \"labels\": {\"app\": \"db\"}}]}"
	same "endpoints and their blocks added"
	api POST /v1/namespaces '{"name": "ops", "labels": {"team": "a"}}'
	same "a namespace's labels"
	api POST /v1/policies '{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
	  "metadata": {"name": "web", "namespace": "shop"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}},
	  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "db"}}},
	    {"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {"matchLabels": {"app": "db"}}}],
	    "ports": [{"protocol": "TCP", "port": 80}]}]}}'
	same "a NetworkPolicy added"
	api POST /v1/policies '{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
	  "metadata": {"name": "web", "namespace": "shop"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}},
	  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}]}}'
	same "the NetworkPolicy replaced"
	# Endpoints alone, in blocks and classes that exist: element changes
	# without compiling whole (nftables; lib/policy_inc.c)
	inc=$(metric larch_agent_firewall_incremental_total)
	api PATCH "/v1/endpoints/$u-d" '{"labels": {"app": "cache"}}'
	same "a peer's labels changed"
	api POST /v1/endpoints "{\"handle\": \"$u-a2\", \"tenant\": \"t1\", \"segment\": \"web\", \"host\": \"h11\", \"namespace\": \"shop\", \"labels\": {\"app\": \"web\"}}"
	same "a local endpoint added to a class that has others"
	api POST /v1/endpoints "{\"handle\": \"$u-b2\", \"tenant\": \"t1\", \"segment\": \"db\", \"host\": \"h12\", \"namespace\": \"shop\", \"labels\": {\"app\": \"db\"}}"
	same "a peer added on another host"
	api PATCH "/v1/endpoints/$u-a2" '{"labels": {"app": "web", "x": "y"}}'
	same "a local endpoint's labels changed (same policies)"
	api DELETE "/v1/endpoints/$u-b2"
	api DELETE "/v1/endpoints/$u-a2"
	same "a peer and a local endpoint deleted"
	# the shared chain of tenants that allow all must not change with the
	# endpoint that comes first in it (its comment named that one's tenant)
	api POST /v1/endpoints "{\"handle\": \"$u-n1b\", \"tenant\": \"n1\", \"segment\": \"s\", \"host\": \"h11\"}"
	api POST /v1/endpoints "{\"handle\": \"$u-n2c\", \"tenant\": \"n2\", \"segment\": \"s\", \"host\": \"h11\"}"
	same "endpoints of two tenants that allow all"
	api POST /v1/endpoints "{\"handle\": \"$u-n0a\", \"tenant\": \"n2\", \"segment\": \"s\", \"host\": \"h11\"}"
	same "one more, first in their shared chain"
	api DELETE "/v1/endpoints/$u-n0a"
	same "... and gone again"
	if [ "$FW" = nft ]; then
		n=$(metric larch_agent_firewall_incremental_total)
		check "$FW: those passes changed elements without compiling whole ($inc -> $n)" \
			test "$n" -ge $((inc + 5))
	fi
	api POST /v1/policies '{"kind": "Policy", "name": "db-in", "applies_to": {"tenant": "t1", "segment": "db"},
	  "ingress": [{"from": [{"tenant": "t2"}, {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}, {"host": true}],
	  "ports": [{"protocol": "udp", "port": 53}]}]}'
	api POST /v1/policies '{"kind": "SecurityGroup", "name": "sg", "rules": [
	  {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_group": "sg"},
	  {"direction": "egress", "ethertype": "IPv4"}]}'
	api PATCH "/v1/endpoints/$u-c" '{"security_groups": ["sg"]}'
	same "a Policy and a SecurityGroup added"
	# A policy that selects the same endpoints as before, its rules
	# changed: its chain rewritten without compiling whole (nftables)
	inc=$(metric larch_agent_firewall_incremental_total)
	api POST /v1/policies '{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
	  "metadata": {"name": "web", "namespace": "shop"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}},
	  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"protocol": "TCP", "port": 8081}]}]}}'
	same "a NetworkPolicy's port changed"
	# a second policy that repeats the first one's rule: written once (the
	# first policy's); when the first one's port changes (without compiling
	# whole), the repeat is written, under the second one's name
	api POST /v1/policies '{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
	  "metadata": {"name": "web-too", "namespace": "shop"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}},
	  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"protocol": "TCP", "port": 8081}]}]}}'
	same "a NetworkPolicy that repeats another's rule"
	# the kernel's port-8081 rules under policy $1's name
	on_8081() { ns h11 nft list ruleset | grep -c "th dport 8081 accept comment \"NetworkPolicy/shop/$1\""; }
	if [ "$FW" = nft ]; then
		check "$FW: the repeated rule is in the kernel once" \
			test "$(on_8081 web)" -ge 1 -a "$(on_8081 web-too)" = 0
	fi
	api POST /v1/policies '{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
	  "metadata": {"name": "web", "namespace": "shop"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}},
	  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"protocol": "TCP", "port": 8082}]}]}}'
	same "... the first one's port changed: the repeat is written"
	if [ "$FW" = nft ]; then
		check "$FW: ... under the second one's name" \
			test "$(on_8081 web-too)" -ge 1 -a "$(on_8081 web)" = 0
	fi
	api DELETE /v1/policies/NetworkPolicy/shop/web-too
	same "... and the second one deleted"
	api POST /v1/policies '{"kind": "Policy", "name": "db-in", "applies_to": {"tenant": "t1", "segment": "db"},
	  "ingress": [{"from": [{"tenant": "t2"}, {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}, {"host": true}],
	  "ports": [{"protocol": "udp", "port": 54}, {"protocol": "tcp", "port": 5432}]}]}'
	same "a Policy's ports changed (its peers: a tenant's blocks, addresses, the hosts)"
	api POST /v1/policies '{"kind": "Policy", "name": "db-in", "applies_to": {"tenant": "t1", "segment": "db"},
	  "ingress": [{"from": [{"tenant": "t2"}, {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}, {"host": true}],
	  "ports": [{"protocol": "udp", "port": 55}, {"protocol": "tcp", "port": 5432}]}]}'
	same "... and again (a policy changed twice without compiling)"
	api POST /v1/policies '{"kind": "SecurityGroup", "name": "sg", "rules": [
	  {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 2222, "port_range_max": 2223, "remote_group": "sg"},
	  {"direction": "egress", "ethertype": "IPv4", "protocol": "udp"}]}'
	same "a SecurityGroup's rules changed, both directions"
	api POST /v1/policies '{"kind": "Policy", "name": "t1-all", "applies_to": {"tenant": "t1"},
	  "ingress": [{"from": [{"tenant": "t1"}], "ports": [{"protocol": "tcp", "port": 9100}]}]}'
	same "a Policy that two endpoint chains use added"
	api POST /v1/policies '{"kind": "Policy", "name": "t1-all", "applies_to": {"tenant": "t1"},
	  "ingress": [{"from": [{"tenant": "t1"}], "ports": [{"protocol": "tcp", "port": 9101}]}]}'
	same "... its port changed (its own chain)"
	api POST /v1/policies '{"kind": "Policy", "name": "t1-all", "applies_to": {"tenant": "t1", "segment": "web"},
	  "ingress": [{"from": [{"tenant": "t1"}], "ports": [{"protocol": "tcp", "port": 9101}]}]}'
	same "... the endpoints it selects changed (compiled whole)"
	if [ "$FW" = nft ]; then
		n=$(metric larch_agent_firewall_incremental_total)
		check "$FW: the policies' rule changes went without compiling whole ($inc -> $n)" \
			test "$n" -ge $((inc + 5))
	fi
	api DELETE /v1/policies/Policy/t1-all
	api POST /v1/hosts "{\"name\": \"$u-h13\", \"address\": \"192.168.1.$([ "$FW" = nft ] && echo 13 || echo 14)\", \"group\": \"rack1\"}"
	same "a host added (host peers)"
	api PATCH /v1/tenants/t2 '{"isolation": "tenant"}'
	same "a tenant's isolation"
	api DELETE "/v1/endpoints/$u-e"
	api DELETE "/v1/endpoints/$u-d"
	same "endpoints deleted"
	api DELETE /v1/namespaces/ops
	api DELETE /v1/policies/NetworkPolicy/shop/web
	api DELETE /v1/policies/Policy/db-in
	same "documents deleted"
	check "$FW: every pass after the first read the change feed, not the lists" \
		test "$(metric larch_agent_firewall_list_reads_total)" = "$reads"

	# The kernel refuses an update (nftables: the test hook); once it
	# accepts again, the agent puts the ruleset in force by itself, with
	# no further change and long before a resync.
	if [ "$FW" = nft ]; then
		touch "$DIR/refuse"
		api POST /v1/policies '{"kind": "Policy", "name": "refused", "applies_to": {"tenant": "t1"},
		  "ingress": [{"from": [{"tenant": "t2"}], "ports": [{"protocol": "tcp", "port": 7}]}]}'
		code=$(agent -o /dev/null -w '%{http_code}' -X POST http://a/v1/sync)
		check "$FW: a refused update: the sync answers 503 ($code)" test "$code" = 503
		rm -f "$DIR/refuse"
		check "$FW: ... and the agent applies it by itself once the kernel accepts" \
			wait_for 15 agent http://a/v1/ruleset -o /dev/null
		same "after the refused update"
		api DELETE /v1/policies/Policy/refused
	fi

	# nftables dispatches by the interface's group: the agent sets each
	# local endpoint's interface group to its class (the map ep_class) as
	# the interface appears, puts back a group changed by hand, gives an
	# unknown lx interface group 0, and clears the group of an endpoint that
	# goes. The resync is an hour away: link events and passes do it.
	if [ "$FW" = nft ]; then
		group_of() { ns h11 ip -d -o link show dev "$1" | sed -n 's/.* group \([^ ]*\) .*/\1/p'; }
		classes() { agent http://a/v1/ruleset | sed -n '/map ep_class/,/}/p' | grep -o '"lx[^"]*" : [0-9]*' | sort; }
		before=$(classes)
		api POST /v1/endpoints "{\"handle\": \"$u-g\", \"tenant\": \"t1\", \"segment\": \"web\", \"host\": \"h11\", \"namespace\": \"shop\"}"
		agent -X POST http://a/v1/sync >/dev/null
		pair=$(comm -13 <(echo "$before") <(classes))
		ifc=$(echo "$pair" | sed 's/"\(lx[^"]*\)".*/\1/') class=${pair##* }
		is() { [ "$(group_of "$1")" = "$2" ]; }
		ns h11 ip link add "$ifc" type veth peer name lxtmp0peer
		check "$FW: an endpoint's interface created after the pass gets its class ($class) as its group" \
			wait_for 5 is "$ifc" "$class"
		# (the kernel announces a group change only on an interface that is up)
		ns h11 ip link set "$ifc" up
		ns h11 ip link set "$ifc" group 7
		check "$FW: a group changed by hand is put back" wait_for 5 is "$ifc" "$class"
		ns h11 ip link add lxrogue0 type veth peer name lxrogue0peer
		ns h11 ip link set lxrogue0 up
		ns h11 ip link set lxrogue0 group "$class"
		check "$FW: an unknown lx interface that takes a class is put back to group 0" \
			wait_for 5 is lxrogue0 default
		api DELETE "/v1/endpoints/$u-g"
		agent -X POST http://a/v1/sync >/dev/null
		check "$FW: the interface of an endpoint deleted goes back to group 0" is "$ifc" default
		ns h11 ip link del "$ifc"
		ns h11 ip link del lxrogue0

		# A new agent that has not applied a ruleset yet (larchd out of
		# reach) leaves the groups the last one set, even as links change:
		# the table in force still dispatches by them
		pair=$(classes | head -1)
		ifc=$(echo "$pair" | sed 's/"\(lx[^"]*\)".*/\1/') class=${pair##* }
		ns h11 ip link add "$ifc" type veth peer name lxtmp0peer
		ns h11 ip link set "$ifc" up
		check "$FW: (an endpoint's interface has its class $class)" wait_for 5 is "$ifc" "$class"
		agent_stop h11
		ip netns exec "$NSP-h11" "$BIN/larch-agent" --server "unix:$DIR/nowhere.sock" --host h11 \
			--socket "$DIR/agent-h11-b.sock" --resync 1 --firewall nft 2>>"$DIR/agent-h11-b.log" &
		b=$!
		sleep 1.5
		ns h11 ip link set "$ifc" down
		ns h11 ip link set "$ifc" mtu 1400 up
		sleep 1.5
		check "$FW: an agent that has applied nothing yet leaves the groups as they are ($(group_of "$ifc"))" \
			is "$ifc" "$class"
		kill "$b" && wait "$b" 2>/dev/null
		ns h11 ip link del "$ifc"
		ip netns exec "$NSP-h11" env LARCH_AGENT_TEST_REFUSE="$DIR/refuse" LARCH_AGENT_CHECK_INC=1 "$BIN/larch-agent" \
			--server "unix:$DIR/larchd.sock" --host h11 --address 192.168.1.11 --group rack1 \
			--socket "$DIR/agent-h11.sock" --resync 3600 --firewall "$FW" \
			${NFT_TABLES:+--nft-tables $NFT_TABLES} ${AGENT_FLAGS:-} 2>>"$DIR/agent-h11.log" &
		echo $! >"$DIR/agent-h11.pid"
		check "$FW: agent up again" wait_for 10 agent http://a/healthz -o /dev/null
	fi

	# Changes the agent cannot see happen (stopped), more than larchd's
	# feed keeps: it must read the lists whole again, and end up equal.
	kill -STOP "$(cat "$DIR/agent-h11.pid")"
	since=$(curl -sf --unix-socket "$DIR/larchd.sock" http://l/healthz | python3 -c 'import json, sys; print(json.load(sys.stdin)["revision"])')
	for i in $(seq 1 25); do api PATCH "/v1/endpoints/$u-a" "{\"labels\": {\"app\": \"web\", \"n\": \"$i\"}}"; done
	api POST /v1/endpoints "{\"handle\": \"$u-f\", \"tenant\": \"t1\", \"segment\": \"web\", \"host\": \"h11\", \"namespace\": \"shop\"}"
	gone() { [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$DIR/larchd.sock" "http://l/v1/changes?since=$since")" = 410 ]; }
	check "$FW: larchd compacted its feed past the stopped agent" wait_for 15 gone
	kill -CONT "$(cat "$DIR/agent-h11.pid")"
	same "after the feed was compacted past the agent"
	check "$FW: ... which it read whole again" test "$(metric larch_agent_firewall_list_reads_total)" -gt "$reads"

	# clean up this round: the endpoints, the agent and its namespace
	for e in a b c f; do api DELETE "/v1/endpoints/$u-$e"; done
	api DELETE /v1/policies/SecurityGroup/sg
	api PATCH /v1/tenants/t2 '{"isolation": "segment"}'
	agent_stop h11
	ip netns del "$NSP-h11"
done
# make netns-san runs this with ASan+UBSan builds
check "no sanitizer report in the agent's or larchd's log" \
	bash -c "! grep -l 'Sanitizer\|runtime error' $DIR/*.log"
tap_end
