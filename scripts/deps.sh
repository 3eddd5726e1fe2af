#!/bin/sh
# Install the Debian packages Larch builds and tests with, where missing.
# Runs apt-get only when something is missing, so a second `make check` is quick.
set -eu
PKGS="build-essential pkg-config libmicrohttpd-dev libjansson-dev libyaml-dev
      libsqlite3-dev sqlite3 libcurl4-openssl-dev libcmocka-dev python3 python3-pytest
      curl jq iproute2 procps libmnl-dev libnftnl-dev golang-go golang-github-appc-cni-dev
      containernetworking-plugins iperf3 iputils-ping netcat-openbsd
      nftables iptables ipset"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
