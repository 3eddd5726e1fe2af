# shellcheck shell=bash
# A Larch cluster in network namespaces: sourced by tests/netns/*.sh and by
# scripts/demo.sh. Everything lives in namespaces named "$NSP-..." and in
# $DIR; cluster_down (run it from a trap) removes all of it. Nothing is added
# to the machine's own network namespace: larchd listens on a unix socket
# only, which the agents and larch-cni reach through the file system.
#
#                         $NSP-rt  (router: only the rack aggregates)
#                   r1 192.168.1.1   |   r2 192.168.2.1
#                   fd00:1::1        |   fd00:2::1
#              +---------------------+---------------------+
#         $NSP-sw1 (bridge br0)                      $NSP-sw2 (bridge br0)
#          |                 |                        |                 |
#   $NSP-h11 eth0      $NSP-h12 eth0           $NSP-h21 eth0      $NSP-h22 eth0
#   192.168.1.11       192.168.1.12            192.168.2.21       192.168.2.22
#   larch-agent        larch-agent             larch-agent        larch-agent
#    pods: $NSP-p-h11-<name> ...  (veth lx... <-> eth0, wired by larch-cni)
#
# Groups in larchd: dc1 -> rack1 (h11, h12), rack2 (h21, h22); tenants t1
# (segments web, db) and t2 (segment web); spaces v4 10.64.0.0/16 (/28
# blocks) and v6 fd10::/48 (/124 blocks).

: "${NSP:=lxt}"
: "${ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
BIN=${LARCH_BIN:-$ROOT/build/bin}
HOSTS="h11 h12 h21 h22"
RESYNC=${RESYNC:-2}

rack_of() { echo "${1:1:1}"; }
host_ip() { echo "192.168.$(rack_of "$1").${1:1:2}"; }
host_ip6() { echo "fd00:$(rack_of "$1")::${1:1:2}"; }
ns() { local n=$1; shift; ip netns exec "$NSP-$n" "$@"; }
larchctl() { "$BIN/larchctl" --server "unix:$DIR/larchd.sock" "$@"; }

cluster_down() {
	local n pid
	set +e # runs from a trap: clean up everything even if one step fails
	# one file at a time: iperf3's pid files end without a newline
	for pid in "$DIR"/*.pid; do [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null; done
	sleep 0.2
	for pid in "$DIR"/*.pid; do [ -f "$pid" ] && kill -9 "$(cat "$pid")" 2>/dev/null; done
	for n in $(ip netns list | awk '{print $1}' | grep "^$NSP-"); do
		ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$n" 2>/dev/null
	done
	[ -n "${DIR:-}" ] && [ -z "${KEEP:-}" ] && rm -rf "$DIR"
	true
}

larchd_start() {
	"$BIN/larchd" --listen none --unix "$DIR/larchd.sock" --db "$DIR/larch.db" \
		--block-cooldown 5 ${LARCHD_FLAGS:-} 2>>"$DIR/larchd.log" &
	echo $! >"$DIR/larchd.pid"
	local i=0
	until [ -S "$DIR/larchd.sock" ] && larchctl health >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "larchd did not start" >&2; return 1; }
		sleep 0.05
	done
}

larchd_stop() { kill "$(cat "$DIR/larchd.pid")"; wait "$(cat "$DIR/larchd.pid")" 2>/dev/null; rm -f "$DIR/larchd.pid"; }

topology() {
	cat >"$DIR/topology.yaml" <<-EOF
	kind: Space
	name: v4
	cidr: 10.64.0.0/16
	---
	kind: Space
	name: v6
	cidr: fd10::/48
	---
	kind: Group
	name: dc1
	---
	kind: Group
	name: rack1
	parent: dc1
	---
	kind: Group
	name: rack2
	parent: dc1
	---
	kind: Tenant
	name: t1
	---
	kind: Segment
	tenant: t1
	name: web
	---
	kind: Segment
	tenant: t1
	name: db
	---
	kind: Tenant
	name: t2
	---
	kind: Segment
	tenant: t2
	name: web
	EOF
	larchctl apply -f "$DIR/topology.yaml" >/dev/null
}

# link A:IF B:IF — a veth pair between two namespaces
link() {
	ip link add "${1#*:}" netns "$NSP-${1%%:*}" type veth peer name "${2#*:}" netns "$NSP-${2%%:*}"
	ns "${1%%:*}" ip link set "${1#*:}" up
	ns "${2%%:*}" ip link set "${2#*:}" up
}

fabric_up() {
	local r h n
	for n in rt sw1 sw2 $HOSTS; do ip netns add "$NSP-$n"; ns "$n" ip link set lo up; done
	ns rt sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	for r in 1 2; do
		ns "sw$r" ip link add br0 type bridge
		ns "sw$r" ip link set br0 up
		link "rt:r$r" "sw$r:rt"
		ns "sw$r" ip link set rt master br0
		ns rt ip addr add "192.168.$r.1/24" dev "r$r"
		ns rt ip addr add "fd00:$r::1/64" dev "r$r" nodad
		ns rt sysctl -qw "net.ipv4.conf.r$r.send_redirects=0"
	done
	for h in $HOSTS; do
		r=$(rack_of "$h")
		link "$h:eth0" "sw$r:$h"
		ns "sw$r" ip link set "$h" master br0
		ns "$h" ip addr add "$(host_ip "$h")/24" dev eth0
		ns "$h" ip addr add "$(host_ip6 "$h")/64" dev eth0 nodad
		ns "$h" sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
		# the underlay: other racks' host subnets through the router
		ns "$h" ip route add 192.168.0.0/16 via "192.168.$r.1"
		ns "$h" ip -6 route add fd00::/16 via "fd00:$r::1"
	done
}

agent_start() {
	local h=$1 r
	r=$(rack_of "$h")
	# a simple command, not the ns function: $! must be the agent itself
	# LARCH_AGENT_CHECK_INC: every incremental firewall pass is checked
	# against a whole rendering (the agent exits on a difference); benches
	# set it to 0
	LARCH_AGENT_CHECK_INC=${LARCH_AGENT_CHECK_INC-1} \
	ip netns exec "$NSP-$h" "$BIN/larch-agent" --server "unix:$DIR/larchd.sock" --host "$h" \
		--address "$(host_ip "$h")" --group "rack$r" --uplink eth0 \
		--next-hop "192.168.$r.1" --next-hop "fd00:$r::1" --socket "$DIR/agent-$h.sock" \
		--resync "$RESYNC" ${AGENT_FLAGS:-} 2>>"$DIR/agent-$h.log" &
	echo $! >"$DIR/agent-$h.pid"
	local i=0
	until [ -S "$DIR/agent-$h.sock" ] && curl -sf --unix-socket "$DIR/agent-$h.sock" http://a/healthz >/dev/null; do
		i=$((i + 1)); [ $i -lt 200 ] || { echo "agent $h did not become healthy" >&2; return 1; }
		sleep 0.05
	done
}

agent_stop() { kill "${2:--TERM}" "$(cat "$DIR/agent-$1.pid")" 2>/dev/null; wait "$(cat "$DIR/agent-$1.pid")" 2>/dev/null; rm -f "$DIR/agent-$1.pid"; }

conflist() {
	local h=$1
	cat >"$DIR/net-$h.conflist" <<-EOF
	{"cniVersion": "1.0.0", "name": "larch", "plugins": [
	  {"type": "larch-cni", "server": "unix:$DIR/larchd.sock", "host": "$h",
	   "agent_socket": "unix:$DIR/agent-$h.sock", "tenant": "t1", "segment": "web", "mtu": 1500}]}
	EOF
}

# pod_add HOST NAME TENANT SEGMENT — a pod namespace wired through libcni
pod_add() {
	local h=$1 p=$2
	ip netns add "$NSP-p-$h-$p"
	ns "p-$h-$p" ip link set lo up
	ns "$h" env CNI_PATH="$BIN" CNI_CACHE_DIR="$DIR/cni-cache" "$CNI_DRIVER" add \
		"$DIR/net-$h.conflist" "/run/netns/$NSP-p-$h-$p" "$h-$p" eth0 \
		"K8S_POD_NAMESPACE=$3;K8S_POD_NAME=$p;LARCH_TENANT=$3;LARCH_SEGMENT=$4" \
		>"$DIR/pod-$h-$p.json"
	# a TCP listener on 8080 (v4 and v6) for the reachability probes
	ip netns exec "$NSP-p-$h-$p" nc -lk 8080 >/dev/null 2>&1 &
	echo $! >"$DIR/nc-$h-$p.pid"
	ip netns exec "$NSP-p-$h-$p" nc -6 -lk 8080 >/dev/null 2>&1 &
	echo $! >"$DIR/nc6-$h-$p.pid"
}

pod_del() {
	local h=$1 p=$2
	ns "$h" env CNI_PATH="$BIN" CNI_CACHE_DIR="$DIR/cni-cache" "$CNI_DRIVER" del \
		"$DIR/net-$h.conflist" "/run/netns/$NSP-p-$h-$p" "$h-$p" eth0
}

# pod_ip HOST NAME 4|6
pod_ip() {
	python3 -c 'import json,sys
r=json.load(open(sys.argv[1]))
print(next(i["address"].split("/")[0] for i in r["ips"] if (":" in i["address"]) == (sys.argv[2] == "6")))' \
		"$DIR/pod-$1-$2.json" "$3"
}

# router_routes: the router learns one route per rack and family (static
# here; the BGP issue makes the router learn them)
router_routes() {
	local r p
	for r in 1 2; do
		for p in $(larchctl -o json group get "rack$r" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["prefixes"].values()))'); do
			ns rt ip route replace "$p" dev "r$r"
		done
	done
}

# cluster_dir: the run's directory (mktemp unless DIR is set) and the libcni
# runtime to drive larch-cni with
cluster_dir() {
	DIR=${DIR:-$(mktemp -d)}
	CNI_DRIVER=${CNI_DRIVER:-$ROOT/build/tests/cni-driver}
	mkdir -p "$DIR/cni-cache"
}

# the machine line every benchmark prints first
# Benchmarks: iperf3 TCP, one stream, $T seconds, from namespace $NSP-$1 to
# $2 (an iperf3 server must listen there): Gbit/s received.
gbps() {
	ip netns exec "$NSP-$1" iperf3 -c "$2" -t "$T" -J 2>/dev/null |
		python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}

# Benchmarks: ping RTT from $NSP-$1 to $2, $COUNT probes 5 ms apart after as
# many to warm up: "p50 p99" in ms.
rtt() {
	ip netns exec "$NSP-$1" ping -c "$COUNT" -i 0.005 -q -n "$2" >/dev/null 2>&1 || true
	ip netns exec "$NSP-$1" ping -c "$COUNT" -i 0.005 -n "$2" 2>/dev/null |
		python3 -c 'import re,sys,statistics
t=sorted(float(m.group(1)) for m in re.finditer(r"time=([0-9.]+)", sys.stdin.read()))
print("%.3f %.3f" % (statistics.median(t), t[min(len(t)-1, int(0.99*len(t)))]))'
}

machine() {
	echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
}

# No fabric address still tentative: a new link's IPv6 link-local address
# goes through duplicate address detection (1 s here), and until it is done
# a host can neither solicit its neighbours on that link nor answer from it
# (the first IPv6 packets between hosts were lost when a test probed within
# that second; the fabric stands for links that are long up).
fabric_settled() {
	local n
	for n in rt $HOSTS; do
		[ -z "$(ns "$n" ip -6 addr show tentative)" ] || return 1
	done
}

cluster_up() {
	cluster_dir
	larchd_start
	topology
	fabric_up
	for h in $HOSTS; do agent_start "$h" || return 1; conflist "$h"; done
	router_routes
	local end=$((SECONDS + 10))
	until fabric_settled; do
		[ $SECONDS -lt $end ] || { echo "# the fabric's IPv6 addresses are still tentative" >&2; return 1; }
		sleep 0.1
	done
}

# probe SRC_HOST SRC_POD DST_IP: 0 when ICMP and TCP both get through
probe() {
	ns "p-$1-$2" ping -c1 -W1 -q "$3" >/dev/null 2>&1 &&
		ns "p-$1-$2" nc -z -w1 "$3" 8080 >/dev/null 2>&1
}
