#!/bin/sh
# build.sh OUTPUT: builds the libcni test driver from Debian's
# golang-github-appc-cni-dev in GOPATH mode (no module proxy needed).
set -eu
out=$(realpath -m "$1")
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/larch/cni-driver" "$(dirname "$out")"
cp "$src/main.go" "$tmp/src/larch/cni-driver/"
cd "$tmp/src/larch/cni-driver"
GO111MODULE=off GOPATH="$tmp:/usr/share/gocode" GOCACHE="${GOCACHE:-$tmp/cache}" GOFLAGS= \
	go build -o "$out" .
