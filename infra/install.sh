#!/usr/bin/env bash
# Installs what the local stack needs, once: a second run checks and does nothing.
# Debian packages system-wide; nats-server, versitygw (and MinIO when it can be built) into .cache/bin.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/infra/versions.sh"
bin="$root/.cache/bin"
mkdir -p "$bin"
say() { printf 'install: %s\n' "$*"; }

missing=()
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "install: need root to apt-get install ${missing[*]} (or install them yourself)" >&2; exit 1; }
  say "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts its own cluster on 5432; the stack runs its own PostgreSQL there instead.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r v c; do pg_ctlcluster "$v" "$c" stop || true; done
  fi
fi

go_install() { # name module version
  local name=$1 module=$2 version=$3 stamp="$bin/.$1.version"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then return 0; fi
  command -v go >/dev/null || { echo "install: Go is needed to build $name ($module@$version); install Go 1.22+ first" >&2; exit 1; }
  say "go install $module@$version"
  GOBIN="$bin" GOFLAGS=-mod=mod go install "$module@$version"
  echo "$version" >"$stamp"
}
go_install nats-server "$NATS_SERVER_MODULE" "$NATS_SERVER_VERSION"
go_install versitygw "$VERSITYGW_MODULE" "$VERSITYGW_VERSION"

# MinIO: only when asked for or when auto might pick it. A failed build is remembered so a
# second run does not try again (delete .cache/minio.unavailable to retry).
store=${OBJECT_STORE:-auto}
if [ "$store" != versitygw ] && [ -z "${MINIO_BIN:-}" ] && ! command -v minio >/dev/null && [ ! -x "$bin/minio" ]; then
  if [ ! -f "$root/.cache/minio.unavailable" ] && command -v go >/dev/null; then
    say "trying go install $MINIO_MODULE@$MINIO_COMMIT"
    if GOBIN="$bin" GOFLAGS=-mod=mod timeout 600 go install "$MINIO_MODULE@$MINIO_COMMIT" >"$root/.cache/minio-install.log" 2>&1; then
      say "MinIO built into $bin/minio"
    else
      say "MinIO cannot be built here ($(tail -n 1 "$root/.cache/minio-install.log")); the Versity S3 Gateway will serve S3"
      touch "$root/.cache/minio.unavailable"
    fi
  fi
fi

# NATS's Prometheus exporter: built once when the module proxy serves it; a refusal is remembered (delete
# .cache/nats-exporter.unavailable to retry) and stack.sh runs the stand-in infra/prometheus/nats-exporter.ts.
if [ "$(cat "$bin/.prometheus-nats-exporter.version" 2>/dev/null)" != "$NATS_EXPORTER_VERSION" ] && [ ! -f "$root/.cache/nats-exporter.unavailable" ] && command -v go >/dev/null; then
  say "trying go install $NATS_EXPORTER_MODULE@$NATS_EXPORTER_VERSION"
  if GOBIN="$bin" GOFLAGS=-mod=mod timeout 600 go install "$NATS_EXPORTER_MODULE@$NATS_EXPORTER_VERSION" >"$root/.cache/nats-exporter-install.log" 2>&1; then
    echo "$NATS_EXPORTER_VERSION" >"$bin/.prometheus-nats-exporter.version"
  else
    say "prometheus-nats-exporter cannot be built here ($(tail -n 1 "$root/.cache/nats-exporter-install.log")); its stand-in infra/prometheus/nats-exporter.ts exports NATS's metrics"
    touch "$root/.cache/nats-exporter.unavailable"
  fi
fi

# Schemathesis in its own venv (make test-fuzz and the fuzz test run it from there).
st_venv="$root/.cache/schemathesis"
if [ "$(cat "$st_venv/.version" 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ] || [ ! -x "$st_venv/bin/schemathesis" ]; then
  say "pip install schemathesis==$SCHEMATHESIS_VERSION (venv .cache/schemathesis)"
  python3 -m venv "$st_venv"
  "$st_venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  echo "$SCHEMATHESIS_VERSION" >"$st_venv/.version"
fi

# Node dependencies: reinstalled only when package-lock.json changed.
lock_sum=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
if [ ! -d "$root/node_modules" ] || [ "$(cat "$root/node_modules/.lock-sum" 2>/dev/null)" != "$lock_sum" ]; then
  say "npm ci"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$root/node_modules/.lock-sum"
fi

# >>> ingest-gateway SRT addon (issue 4): rebuilt only when its sources, Node or libsrt changed.
srt_dir="$root/ingest-gateway/srt"
if [ -f "$srt_dir/binding.gyp" ]; then
  srt_sum=$( { cat "$srt_dir/binding.gyp" "$srt_dir"/src/*; node -v; pkg-config --modversion srt; } | sha256sum | cut -d' ' -f1)
  srt_stamp="$srt_dir/build/.source-sum"
  if [ ! -f "$srt_dir/build/Release/srt_ingest.node" ] || [ "$(cat "$srt_stamp" 2>/dev/null)" != "$srt_sum" ]; then
    say "node-gyp rebuild (ingest-gateway/srt)"
    # Debian's nodejs ships its headers in /usr/include/node: build offline against them when present.
    nodedir=()
    [ -f /usr/include/node/node_api.h ] && nodedir=(--nodedir=/usr)
    (cd "$srt_dir" && "$root/node_modules/.bin/node-gyp" rebuild "${nodedir[@]}" --loglevel=error >"$root/.cache/srt-addon-build.log" 2>&1) \
      || { echo "install: building the SRT addon failed; see .cache/srt-addon-build.log (needs libsrt-openssl-dev, pkg-config, g++, make)" >&2; exit 1; }
    echo "$srt_sum" >"$srt_stamp"
  fi
fi
# <<< ingest-gateway SRT addon
