# shellcheck shell=bash
# TAP output for the namespace tests: `check DESCRIPTION CMD...` runs CMD and
# prints ok/not ok; `tap_end` prints the plan and returns the verdict.
tapn=0
fails=0
ok() { tapn=$((tapn + 1)); echo "ok $tapn - $1"; }
not_ok() { tapn=$((tapn + 1)); fails=$((fails + 1)); echo "not ok $tapn - $1"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
diag() { sed 's/^/# /'; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s, at most SECONDS
wait_for() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done; }
tap_end() { echo "1..$tapn"; [ $fails -eq 0 ]; }
