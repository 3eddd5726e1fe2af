#!/bin/bash
# TAP: larch-cni against the CNI spec (1.0.0 through libcni, 1.1.0's GC and
# STATUS by invoking the plugin exactly as the 1.1 spec describes: config
# on stdin, CNI_* in the environment). One host namespace, real larchd.
set -u
cd "$(dirname "$0")/../.."
NSP=${NSP:-lxc}
. tests/netns/lib.sh
trap cluster_down EXIT INT TERM
cluster_dir

. tests/netns/tap.sh

larchd_start
topology
larchctl host create h1 --address 192.0.2.1 --group rack1 >/dev/null
ip netns add "$NSP-h1"

conf() { # conf VERSION [extra JSON members]
	echo "{\"cniVersion\":\"$1\",\"name\":\"larch\",\"type\":\"larch-cni\",\"server\":\"unix:$DIR/larchd.sock\",\"host\":\"h1\",\"tenant\":\"t1\",\"segment\":\"web\"${2:+,$2}}"
}
# cni COMMAND CONTAINER [NETNS]: runs the plugin in the host namespace with
# the config on stdin; stdout to $DIR/out, exit status returned
cni() {
	ns h1 env CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="${3:-}" CNI_IFNAME=eth0 \
		CNI_PATH="$BIN" "$BIN/larch-cni" >"$DIR/out" 2>>"$DIR/cni.log"
}
code() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("code", 0))' "$DIR/out"; }
msg() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["msg"], d.get("details", ""))' "$DIR/out"; }
expect_code() { # expect_code N DESCRIPTION
	local c
	c=$(code 2>/dev/null || echo none)
	if [ "$c" = "$1" ]; then ok "$2 (code $c: $(msg))"; else not_ok "$2: got code $c: $(cat "$DIR/out")"; fi
}
endpoints() { larchctl -o json endpoint list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'; }

echo '{"cniVersion":"1.1.0"}' | CNI_COMMAND=VERSION "$BIN/larch-cni" >"$DIR/out"
check "VERSION lists 1.0.0 and 1.1.0" grep -q '"1.1.0"' "$DIR/out"

conf 0.3.1 | cni ADD c0 /run/netns/none; expect_code 1 "an unsupported cniVersion is refused"
conf 1.0.0 '"tenent":"t1"' | cni ADD c0 /run/netns/none; expect_code 2 "an unknown config field is refused"
grep -q tenent "$DIR/out" && ok "the error names the field" || not_ok "the error names the field"
echo '{"cniVersion":' | cni ADD c0 /run/netns/none; expect_code 6 "undecodable config"
echo '{"cniVersion":"1.0.0","name":"x","mtu":10}' | cni ADD c0 /run/netns/none; expect_code 7 "an mtu below 68 is an invalid network config"
conf 1.0.0 | ns h1 env CNI_COMMAND=ADD CNI_NETNS=/run/netns/x CNI_IFNAME=eth0 "$BIN/larch-cni" >"$DIR/out" 2>/dev/null
expect_code 4 "missing CNI_CONTAINERID"
conf 1.0.0 | sed 's/"segment":"web"/"segment":"nope"/' | cni ADD c0 /run/netns/none; expect_code 7 "an unknown segment is an invalid network config"
check "no endpoint was allocated by the refused ADDs" [ "$(endpoints)" = 0 ]
echo "{\"cniVersion\":\"1.0.0\",\"name\":\"larch\",\"server\":\"unix:$DIR/nowhere.sock\",\"tenant\":\"t1\",\"segment\":\"web\",\"host\":\"h1\"}" | cni ADD c0 /run/netns/none
expect_code 11 "larchd unreachable: try again later"
conf 1.0.0 | cni ADD c0 /run/netns/"$NSP"-missing; expect_code 3 "a missing pod namespace"
check "the failed ADD gave its address back" [ "$(endpoints)" = 0 ]

# ADD, idempotent retry, CHECK, DEL through libcni (the runtime's library)
ip netns add "$NSP-p1"
cat >"$DIR/net.conflist" <<EOF
{"cniVersion":"1.0.0","name":"larch","plugins":[$(conf 1.0.0 | sed 's/"cniVersion":"1.0.0","name":"larch",//')]}
EOF
drv() { ns h1 env CNI_PATH="$BIN" CNI_CACHE_DIR="$DIR/cni-cache" "$CNI_DRIVER" "$@"; }
drv add "$DIR/net.conflist" "/run/netns/$NSP-p1" p1 eth0 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1" >"$DIR/add1"
check "libcni ADD" [ $? -eq 0 ]
a1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ips"][0]["address"])' "$DIR/add1")
check "the pod has $a1 on eth0" bash -c "ip netns exec $NSP-p1 ip -o addr show dev eth0 | grep -q ' ${a1%/*}/'"
check "the endpoint carries the pod's name and namespace" bash -c "$BIN/larchctl --server unix:$DIR/larchd.sock -o json endpoint get p1:eth0 | grep -q '\"namespace\": *\"shop\"'"
check "libcni CHECK passes" drv check "$DIR/net.conflist" "/run/netns/$NSP-p1" p1 eth0
conf 1.0.0 | cni ADD p1 "/run/netns/$NSP-p1"
a2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ips"][0]["address"])' "$DIR/out")
check "a retried ADD gives the same address ($a2)" [ "$a1" = "$a2" ]
ns h1 ip route del "${a1%/*}/32"
check "CHECK fails when the host route is gone" bash -c "! ip netns exec $NSP-h1 env CNI_PATH=$BIN CNI_CACHE_DIR=$DIR/cni-cache $CNI_DRIVER check $DIR/net.conflist /run/netns/$NSP-p1 p1 eth0 >/dev/null 2>&1"
check "libcni DEL" drv del "$DIR/net.conflist" "/run/netns/$NSP-p1" p1 eth0
check "DEL released the endpoint" [ "$(endpoints)" = 0 ]
ip netns del "$NSP-p1"
check "DEL of a pod whose namespace is gone succeeds" drv del "$DIR/net.conflist" "/run/netns/$NSP-p1" p1 eth0

# GC (1.1): three pods, the runtime still knows one
for p in g1 g2 g3; do ip netns add "$NSP-$p"; conf 1.1.0 | cni ADD "$p" "/run/netns/$NSP-$p"; done
conf 1.1.0 '"cni.dev/valid-attachments":[{"containerID":"g2","ifname":"eth0"}]' | cni GC ""
check "GC exits 0" [ $? -eq 0 ]
check "GC released the two stale pods and kept g2" bash -c "[ \"\$($BIN/larchctl --server unix:$DIR/larchd.sock -o json endpoint list | python3 -c 'import json,sys; print(\" \".join(e[\"handle\"] for e in json.load(sys.stdin)[\"items\"]))')\" = g2:eth0 ]"
veths=$(ns h1 ip -o link show | grep -c ' lx')
check "GC removed the stale pods' interfaces ($veths left)" [ "$veths" -eq 1 ]

conf 1.1.0 | cni STATUS ""; check "STATUS succeeds while larchd answers" [ $? -eq 0 ]
larchd_stop
conf 1.1.0 | cni STATUS ""; expect_code 50 "STATUS with larchd down: plugin not available"
conf 1.1.0 | cni DEL g2 "/run/netns/$NSP-g2"; expect_code 11 "DEL with larchd down: try again later"

check "no sanitizer report in any log" bash -c "! grep -l 'Sanitizer\|runtime error' $DIR/*.log"

tap_end
