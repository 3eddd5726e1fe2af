#!/bin/sh
# make demo: larchd on loopback with a throw-away SQLite file, an example
# topology (two racks of three hosts, two tenants), some allocations (one of
# them deferred until its host is known), the hierarchy as `larchctl tree`.
# Non-interactive; everything is removed on exit, whatever happens.
set -eu
cd "$(dirname "$0")/.."
BIN=$(pwd)/build/bin
DIR=$(mktemp -d /tmp/larch-demo.XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export LARCH_SERVER=http://127.0.0.1:$PORT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ larchctl %s\n' "$*"; "$BIN/larchctl" "$@"; }

say "starting larchd on $LARCH_SERVER (database in $DIR)"
"$BIN/larchd" --listen "127.0.0.1:$PORT" --db "$DIR/larch.db" 2>"$DIR/larchd.log" &
PID=$!
i=0
until "$BIN/larchctl" health >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 100 ] && { cat "$DIR/larchd.log"; echo "larchd did not start" >&2; exit 1; }
	sleep 0.1
done

say "apply the example topology"
run apply -f examples/topology.yaml
run group list

say "allocate: 18 pods over six hosts and three segments"
n=0
for host in h1 h2 h3 h4 h5 h6; do
	for ts in blue/web blue/db red/app; do
		n=$((n + 1))
		"$BIN/larchctl" endpoint create "pod-$n:eth0" --tenant "${ts%/*}" \
			--segment "${ts#*/}" --host "$host" --kind pod >/dev/null
	done
done
run endpoint list --host h1

say "the same handle again is the same address (idempotent)"
run endpoint create pod-1:eth0 --tenant blue --segment web --host h1

say "deferred allocation: a VM port before the VM has a host, then bound"
run endpoint create vm-42:eth0 --tenant red --segment app --kind vm
run endpoint bind vm-42:eth0 h5

say "the hierarchy: every address sits in its host's block, every block in its rack"
run tree

say "release two pods: their addresses go back (an emptied block cools down first)"
run endpoint delete pod-1:eth0
run endpoint delete pod-2:eth0
run block list --host h1

say "done; stopping larchd and removing $DIR"
