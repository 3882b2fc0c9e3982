#!/usr/bin/env bash
# Builds MediaMTX v1.20.1 into .cache/bin/mediamtx for bench/gateway.bench.ts (bench only: CI's `make test` does
# not need it). Idempotent: a second run does nothing.
#
# `go install github.com/bluenviron/mediamtx@v1.20.1` fails on these machines: the Go module proxy answers 403
# for the module's version list, which `go install pkg@version` reads (for deprecation notices). The version's
# own zip is served, so it is fetched with `go mod download` and built from that copy. Two files its
# `go generate` step downloads from GitHub are made here instead: internal/core/VERSION (the tag) and
# internal/servers/hls/hls.min.js (from npm's hls.js at the version MediaMTX pins; the bench never uses HLS).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=v1.20.1
bin="${MEDIAMTX_BIN:-$root/.cache/bin/mediamtx}"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "$version"; then exit 0; fi

mkdir -p "$(dirname "$bin")"
work=$(mktemp -d /tmp/mediamtx-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/bluenviron/mediamtx@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "mediamtx-install: go mod download gave no folder for mediamtx@$version" >&2; exit 1; }
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
echo "$version" >"$work/src/internal/core/VERSION"
hlsjs=$(tr -d '[:space:]v' <"$work/src/internal/servers/hls/hlsjsdownloader/VERSION")
(cd "$work" && npm pack "hls.js@$hlsjs" --silent >/dev/null && tar xzf "hls.js-$hlsjs.tgz" package/dist/hls.min.js)
cp "$work/package/dist/hls.min.js" "$work/src/internal/servers/hls/hls.min.js"
(cd "$work/src" && go build -o "$bin.part" .)
mv "$bin.part" "$bin"
echo "mediamtx-install: $("$bin" --version) in $bin"
