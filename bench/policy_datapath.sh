#!/bin/bash
# Datapath with policies (issue 4): pod-to-pod across racks (h11 -> h21, the
# path of bench/datapath.sh) with no policy at all and with POLICIES
# NetworkPolicies installed, side by side in one run: the rounds alternate,
# loading and clearing the policies through larchd's API in between
# (bench/policy_load.py). Every policy selects endpoints on both hosts (99
# filler endpoints per host carry the labels), so every one is compiled into
# both hosts' rulesets; 100 of them select the server pod itself, and one
# (allow-bench) lets the client pod in. Throughput: iperf3 TCP, one stream,
# TIME seconds; latency: ping RTT, COUNT probes 5 ms apart.
# FIREWALL=iptables measures the iptables backend instead of nftables.
# Usage: bench/policy_datapath.sh [ROUNDS=3] [TIME=5] [COUNT=200] [POLICIES=10000]
set -eu
cd "$(dirname "$0")/.."
NSP=lxbd
FIREWALL=${FIREWALL:-nft}
AGENT_FLAGS="--firewall $FIREWALL"
. tests/netns/lib.sh
ROUNDS=${1:-3} T=${2:-5} COUNT=${3:-200} N=${4:-10000}
trap cluster_down EXIT INT TERM
HOSTS="h11 h21"
RESYNC=60

cluster_up
pod_add h11 a t1 web
pod_add h21 a t1 web
S=$(pod_ip h21 a 4)
sock=$DIR/larchd.sock
patch() { curl -sf --unix-socket "$sock" -X PATCH -H 'Content-Type: application/json' -d "$2" "http://l/v1/endpoints/$1" >/dev/null; }
/usr/bin/python3 bench/policy_load.py "$sock" setup h11 h21
patch h11-a:eth0 '{"namespace": "shop", "labels": {"role": "client"}}'
patch h21-a:eth0 '{"namespace": "shop", "labels": {"app": "app0"}}'
larch_tables() { ns "$1" nft list tables inet | awk '$3 ~ /^larch(_[0-9]+)?$/ {print $3}'; }
sync() { for h in $HOSTS; do curl -sf --unix-socket "$DIR/agent-$h.sock" -X POST http://a/v1/sync >/dev/null; done; }
chains() { # policies in force on host $1: iptables, their chains; nftables,
	# their chains and the policies written in place (docs/policy.md)
	if [ "$FIREWALL" = iptables ]; then
		ns "$1" iptables-save -t filter | grep -c '^:larch-p[0-9]*[io] '
	else
		# every table of the agent's (docs/policy.md, "Several tables")
		for t in $(larch_tables "$1"); do ns "$1" nft list table inet "$t"; done |
			awk '/^\tchain p[0-9a-f]*[io] / {n++} match($0, /accept comment "[^"]*"$/) {
				if (!seen[substr($0, RSTART)]++) n++ } END {print n + 0}'
	fi || true
}
ns p-h21-a iperf3 -s -D -B "$S" --pidfile "$DIR/ip.pid"
sleep 0.5
machine
echo "# $FIREWALL backend; iperf3 TCP 1 stream ${T}s; ping $COUNT x 5 ms; $ROUNDS rounds, alternating"
for r in $(seq 1 "$ROUNDS"); do
	/usr/bin/python3 bench/policy_load.py "$sock" clear
	sync
	echo "none $(chains h21) $(gbps p-h11-a "$S") $(rtt p-h11-a "$S")" | tee -a "$DIR/res"
	t0=$(date +%s%N)
	/usr/bin/python3 bench/policy_load.py "$sock" load "$N"
	t1=$(date +%s%N)
	sync
	t2=$(date +%s%N)
	echo "# loaded $N policies through the API in $(((t1 - t0) / 1000000)) ms; agents' sync (compile + apply) $(((t2 - t1) / 1000000)) ms;" \
		"nftables tables on h21: $(larch_tables h21 | wc -l)"
	echo "policies $(chains h21) $(gbps p-h11-a "$S") $(rtt p-h11-a "$S")" | tee -a "$DIR/res"
done
echo "# columns: case policies_on_h21 Gbit/s rtt_p50_ms rtt_p99_ms; medians over the rounds:"
python3 - "$DIR/res" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    c, n, g, l50, l99 = line.split()
    rows.setdefault(c, []).append((int(n), float(g), float(l50), float(l99)))
med = {c: [statistics.median(x[i] for x in v) for i in range(4)] for c, v in rows.items()}
for c, (n, g, l50, l99) in med.items():
    print(f"{c:9} {int(n):6} policies  {g:6.2f} Gbit/s  rtt p50 {l50:.3f} ms  p99 {l99:.3f} ms  "
          f"throughput {100 * g / med['none'][1]:5.1f}% of none")
PY
