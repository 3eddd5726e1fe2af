#!/bin/bash
# make demo: a Larch cluster in network namespaces (2 racks x 2 hosts, a
# router holding only the rack aggregates; drawn in tests/netns/lib.sh):
# larchd on a unix socket, larch-agent on every host, pods wired by
# larch-cni through libcni. Prints the topology, every route table and a
# reachability matrix, then removes every namespace and file it made.
# Non-interactive; needs root (network namespaces).
set -eu
cd "$(dirname "$0")/.."
NSP=lxd
. tests/netns/lib.sh
trap cluster_down EXIT INT TERM
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "larchd, the fabric namespaces and an agent per host"
cluster_up
echo "larchd: unix:$DIR/larchd.sock; namespaces: $(ip netns list | awk '{print $1}' | grep -c "^$NSP-")"

say "pods through larch-cni (libcni): t1/web on every host, t1/db and t2/web on some"
PODS="h11:a:t1:web h11:b:t1:db h12:a:t1:web h12:c:t2:web h21:a:t1:web h21:b:t1:db h22:a:t1:web h22:c:t2:web"
for p in $PODS; do
	IFS=: read -r h name t s <<<"$p"
	pod_add "$h" "$name" "$t" "$s"
	printf '%-8s %-7s %-15s %s\n' "$h-$name" "$t/$s" "$(pod_ip "$h" "$name" 4)" "$(pod_ip "$h" "$name" 6)"
done

say "the topology: every pod address inside its host's block, every block inside its rack"
echo '$ larchctl tree'
larchctl tree

say "route tables (Larch's routes are proto 201)"
for h in $HOSTS; do
	echo "--- $h"
	ns "$h" ip -4 route show proto 201
	ns "$h" ip -6 route show proto 201
done
echo "--- router (one route per rack and family)"
ns rt ip route show | grep -v 'proto kernel'
ns rt ip -6 route show | grep -v 'proto kernel' | grep -v '^fe80'

say "reachability matrix (ICMP and TCP, IPv4): rows are sources; default isolation by segment"
printf '%-9s' ""
for dst in $PODS; do IFS=: read -r h name _ _ <<<"$dst"; printf '%-9s' "$h-$name"; done
echo
for src in $PODS; do
	IFS=: read -r sh sn st ss <<<"$src"
	printf '%-9s' "$sh-$sn"
	for dst in $PODS; do
		IFS=: read -r dh dn dt ds <<<"$dst"
		if [ "$src" = "$dst" ]; then printf '%-9s' "-"; continue; fi
		if probe "$sh" "$sn" "$(pod_ip "$dh" "$dn" 4)"; then got=ok; else got=denied; fi
		if [ "$st/$ss" = "$dt/$ds" ]; then want=ok; else want=denied; fi
		[ "$got" = "$want" ] || got="$got(WRONG)"
		printf '%-9s' "$got"
	done
	echo
done
echo "(each agent enforces the tenants' default isolation with nftables: same tenant and"
echo " segment pass, the rest is denied; see docs/policy.md for policies)"

say "no encapsulation anywhere"
for h in $HOSTS rt; do printf '%-4s %s\n' "$h" "$(ns "$h" ip -d -o link show | grep -Ec 'vxlan|ipip|gre|geneve' || true) tunnel interfaces"; done

say "done; removing every namespace and $DIR"
