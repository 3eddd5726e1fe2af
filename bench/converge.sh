#!/bin/bash
# Convergence: time from a pod's ADD on host h11 until a pod on another host
# (h12 in the same rack, h21 in the other) can reach it, in the namespace
# cluster of tests/netns/lib.sh; bench/converge.py says how it is measured.
# The agents resync only every 30 s here, so what is measured is the change
# feed. Usage: bench/converge.sh [PODS]
set -eu
cd "$(dirname "$0")/.."
NSP=lxv
. tests/netns/lib.sh
PODS=${1:-60}
trap cluster_down EXIT INT TERM
RESYNC=30

cluster_up
# the probers: one pod per tenant and segment on h12 and h21
for h in h12 h21; do
	pod_add "$h" t1web t1 web
	pod_add "$h" t1db t1 db
	pod_add "$h" t2web t2 web
done
# the same network without the agent's socket: ADD returns before the agent acts
sed 's/"agent_socket": "[^"]*", *//' "$DIR/net-h11.conflist" >"$DIR/net-h11-feed.conflist"
grep -q agent_socket "$DIR/net-h11-feed.conflist" && { echo "converge: agent_socket still in the conflist" >&2; exit 1; }

machine
echo "# $PODS pods added on h11 one at a time, alternating nudge and feed; probes every 1 ms"
python3 bench/converge.py run "$NSP" "$DIR" "$BIN" "$CNI_DRIVER" "$PODS"
