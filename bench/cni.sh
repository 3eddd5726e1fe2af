#!/bin/bash
# Pod ADD/DEL latency through libcni (the runtime's library): larch-cni
# (with and without the agent's nudge) side by side with Debian's reference
# ptp + host-local plugins, rounds interleaved in one run. Everything happens
# in namespaces this script creates and removes; larchd listens on a unix
# socket only. Usage: bench/cni.sh [PODS_PER_ROUND] [ROUNDS]
set -eu
cd "$(dirname "$0")/.."
NSP=lxb
. tests/netns/lib.sh
N=${1:-100}
ROUNDS=${2:-3}
trap cluster_down EXIT INT TERM
cluster_dir
REF=/usr/lib/cni

larchd_start
topology
ip netns add "$NSP-h11"
ns h11 ip link set lo up
ip netns exec "$NSP-h11" "$BIN/larch-agent" --server "unix:$DIR/larchd.sock" --host h11 \
	--address 192.168.1.11 --group rack1 --socket "$DIR/agent-h11.sock" --resync 30 \
	2>>"$DIR/agent-h11.log" &
echo $! >"$DIR/agent-h11.pid"
for i in $(seq 1 100); do [ -S "$DIR/agent-h11.sock" ] && break; sleep 0.05; done
for i in $(seq 0 $((N - 1))); do ip netns add "$NSP-p$i"; done
mkdir -p "$DIR/cache" "$DIR/ipam"

cat >"$DIR/larch.conflist" <<EOF
{"cniVersion":"1.0.0","name":"larch","plugins":[{"type":"larch-cni","server":"unix:$DIR/larchd.sock",
 "host":"h11","tenant":"t1","segment":"web"}]}
EOF
cat >"$DIR/larch-agent.conflist" <<EOF
{"cniVersion":"1.0.0","name":"larch","plugins":[{"type":"larch-cni","server":"unix:$DIR/larchd.sock",
 "host":"h11","tenant":"t1","segment":"web","agent_socket":"unix:$DIR/agent-h11.sock"}]}
EOF
cat >"$DIR/ref.conflist" <<EOF
{"cniVersion":"1.0.0","name":"ref","plugins":[{"type":"ptp","ipMasq":false,
 "ipam":{"type":"host-local","subnet":"10.99.0.0/16","dataDir":"$DIR/ipam"}}]}
EOF

machine
echo "# $N pods per round, $ROUNDS rounds, ADD then DEL of every pod, through libcni"
run() { # run NAME CONFLIST PATH
	ns h11 env CNI_PATH="$3" CNI_CACHE_DIR="$DIR/cache" "$CNI_DRIVER" bench "$DIR/$2" "$NSP-p" "$N" |
		sed "s/^/$1 /"
}
for r in $(seq 1 "$ROUNDS"); do
	run larch-cni larch.conflist "$BIN" | tee -a "$DIR/results"
	run ptp+host-local ref.conflist "$REF" | tee -a "$DIR/results"
	run larch-cni+agent larch-agent.conflist "$BIN" | tee -a "$DIR/results"
done
echo "# medians over the rounds (ms)"
python3 - "$DIR/results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *kv = line.split()
    d = dict(x.split("=") for x in kv)
    rows.setdefault(name, []).append(d)
for name, rs in rows.items():
    med = {k: statistics.median(float(r[k]) for r in rs) for k in ("add_p50_ms", "add_p99_ms", "del_p50_ms", "del_p99_ms")}
    print(f"{name:18} ADD p50 {med['add_p50_ms']:7.3f} p99 {med['add_p99_ms']:7.3f}   DEL p50 {med['del_p50_ms']:7.3f} p99 {med['del_p99_ms']:7.3f}")
ref = statistics.median(float(r["add_p50_ms"]) for r in rows["ptp+host-local"])
for name in ("larch-cni", "larch-cni+agent"):
    l = statistics.median(float(r["add_p50_ms"]) for r in rows[name])
    print(f"ratio {name} / ptp+host-local ADD p50: {l / ref:.2f}")
EOF
