#!/bin/sh
# make bench: the allocator in-process, and larchd through HTTP with durable
# acknowledgements, then larchd's memory with 10k, 100k and 1M endpoints.
# Everything on 127.0.0.1 with a throw-away database; results to stdout
# (copy them into docs/benchmarks.md with the machine they ran on).
set -eu
cd "$(dirname "$0")/.."
BIN=build/bin
DIR=$(mktemp -d)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
echo "# disk under $DIR: $(df -h "$DIR" | awk 'NR==2 {print $1, $2}')"

echo "## in-process allocator"
build/bench/alloc_inproc 10000 100000 1000000

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
post() { curl -sf -o /dev/null -XPOST "$URL$1" -H 'Content-Type: application/json' -d "$2"; }
rss() { awk '/VmRSS/ {print $2}' /proc/$PID/status; }
endpoints() { curl -sf "$URL/metrics" | awk '/^larch_endpoints / {print $2}'; }

# start larchd on a fresh database (or the existing one with "keep")
start() {
	[ "${1:-}" = keep ] || rm -f "$DIR"/larch.db*
	"$BIN/larchd" --listen "127.0.0.1:$PORT" --db "$DIR/larch.db" 2>>"$DIR/larchd.log" &
	PID=$!
	until curl -sf "$URL/healthz" >/dev/null; do sleep 0.05; done
}
stop() { kill "$PID"; wait "$PID" || true; PID=; }
topology() {
	post /v1/spaces '{"name":"v4","cidr":"10.0.0.0/8","block_size":26}'
	post /v1/groups '{"name":"bench","capacity":8388608}'
	i=0
	while [ $i -lt 100 ]; do
		post /v1/hosts "{\"name\":\"bh$i\",\"address\":\"192.0.2.$((i + 1))\",\"group\":\"bench\"}"
		i=$((i + 1))
	done
	post /v1/tenants '{"name":"bench"}'
	post /v1/tenants/bench/segments '{"name":"a"}'
	post /v1/tenants/bench/segments '{"name":"b"}'
}

echo "## HTTP, 8 concurrent clients, every answer after fsync (fresh database)"
start
topology
echo "rss_kb_at_start $(rss)"
# one allocation per request (twice), then bulk requests of 8 and 32
build/bench/http_alloc "$URL" 8 40000 s1 1
build/bench/http_alloc "$URL" 8 40000 s2 1
build/bench/http_alloc "$URL" 8 160000 k8 8
build/bench/http_alloc "$URL" 8 160000 k32 32
stop

echo "## scaling: fill a fresh larchd to 10k, 100k, 1M endpoints (bulk 8, 8 clients)"
start
topology
total=0
for target in 10000 100000 1000000; do
	build/bench/http_alloc "$URL" 8 $((target - total)) m$target 8
	total=$target
	echo "endpoints=$(endpoints) rss_kb=$(rss) db_bytes=$(du -cb "$DIR"/larch.db* | tail -1 | cut -f1)"
done
echo "## one allocation per request with 1M endpoints present"
build/bench/http_alloc "$URL" 8 40000 s3 1
echo "## restart: load time with $(endpoints) endpoints"
stop
t0=$(date +%s.%N)
start keep
echo "restart_to_ready_s $(python3 -c "print(round($(date +%s.%N) - $t0, 2))") rss_kb=$(rss)"
grep loaded "$DIR/larchd.log" | tail -1 | sed 's/^.*info: /# /'
