#!/bin/bash
# Golden tests of the policy compiler: for each tests/policy/golden/NAME.json
# (larchd's lists plus "host"), `larch-agent --render` must print exactly
# NAME.nft, and nft must accept that ruleset (checked, then loaded twice, in
# a namespace of its own). UPDATE=1 rewrites the .nft files instead.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../netns/tap.sh"
bin=${LARCH_BIN:-$here/../../build/bin}
ns=${NSP:-lxt}-golden-$$
ip netns add "$ns" || exit 1
trap 'ip netns del "$ns" 2>/dev/null' EXIT

for json in "$here"/golden/*.json; do
	name=$(basename "$json" .json)
	want="$here/golden/$name.nft"
	host=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["host"])' "$json")
	got=$(mktemp)
	if ! "$bin/larch-agent" --host "$host" --render "$json" > "$got"; then
		not_ok "$name: larch-agent --render failed"
		rm -f "$got"
		continue
	fi
	if [ "${UPDATE:-0}" = 1 ]; then
		cp "$got" "$want"
		echo "# updated $want"
	fi
	if diff -u "$want" "$got"; then
		ok "$name: ruleset equals the golden file"
	else
		not_ok "$name: ruleset differs from $want (diff above)"
	fi
	if ip netns exec "$ns" nft -c -f "$got" && ip netns exec "$ns" nft -f "$got" &&
	   ip netns exec "$ns" nft -f "$got"; then
		ok "$name: nft accepts it (check, load, reload)"
	else
		not_ok "$name: nft refuses it"
	fi
	rm -f "$got"
done
tap_end
