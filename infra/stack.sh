#!/usr/bin/env bash
# The local stack without Docker: `stack.sh up [infra]`, `stack.sh down`, `stack.sh status`.
# Everything it starts keeps its data under .state/ and its pid under .state/pids/; down stops exactly those.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/infra/versions.sh"
state="$root/.state"
pids="$state/pids"
logs="$state/logs"
bin="$root/.cache/bin"
mkdir -p "$pids" "$logs"

S3_ADDR=${S3_ADDR:-127.0.0.1:9000}
S3_CONSOLE_ADDR=${S3_CONSOLE_ADDR:-127.0.0.1:9001}
NATS_PORT=${NATS_PORT:-4222}
NATS_MONITOR_PORT=${NATS_MONITOR_PORT:-8222}
PG_PORT=${PG_PORT:-5432}
export MINIO_ACCESS_KEY=${MINIO_ACCESS_KEY:-minioadmin}
export MINIO_SECRET_KEY=${MINIO_SECRET_KEY:-minioadmin123}
export NATS_SUBJECT=${NATS_SUBJECT:-storage.events}
# NATS_CLUSTER=3: three nats-servers with routes and JetStream on NATS_PORT.. (monitoring NATS_MONITOR_PORT..,
# routes NATS_CLUSTER_PORT..), and the event stream replicated on all three (NATS_STREAM_REPLICAS).
NATS_CLUSTER=${NATS_CLUSTER:-1}
NATS_CLUSTER_PORT=${NATS_CLUSTER_PORT:-6222}
if [ "$NATS_CLUSTER" -gt 1 ]; then
  if [ -z "${NATS_URL:-}" ]; then
    NATS_URL=$(for i in $(seq 0 $((NATS_CLUSTER - 1))); do printf 'nats://127.0.0.1:%s,' $((NATS_PORT + i)); done)
    NATS_URL=${NATS_URL%,}
  fi
  export NATS_STREAM_REPLICAS=${NATS_STREAM_REPLICAS:-3}
fi
export NATS_URL=${NATS_URL:-nats://127.0.0.1:$NATS_PORT}
export MINIO_NATS_ARN=${MINIO_NATS_ARN:-arn:minio:sqs::PRIMARY:nats}
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9095}
PG_EXPORTER_PORT=${PG_EXPORTER_PORT:-9187}
NATS_EXPORTER_PORT=${NATS_EXPORTER_PORT:-7777}
CONVERT_REPLICAS=${CONVERT_REPLICAS:-2}
THUMBNAIL_REPLICAS=${THUMBNAIL_REPLICAS:-1}
WEBHOOKS_REPLICAS=${WEBHOOKS_REPLICAS:-1}
PACKAGE_REPLICAS=${PACKAGE_REPLICAS:-1}
CLIP_REPLICAS=${CLIP_REPLICAS:-1}

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

alive() { local f="$pids/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

port_busy() { # host:port
  (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}

wait_for() { # what seconds command...
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not become healthy in ${secs}s; see $logs/"
    sleep 0.2
  done
}

spawn() { # name logfile command... : starts in the background, records the pid
  local name=$1 log=$2; shift 2
  nohup "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$pids/$name.pid"
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

start_nats() {
  [ "$NATS_CLUSTER" -gt 1 ] && { start_nats_cluster; return; }
  alive nats-1 && die "a NATS cluster runs; 'make down' before starting a single NATS (or set NATS_CLUSTER=3)"
  alive nats && return 0
  port_busy "127.0.0.1:$NATS_PORT" && die "port $NATS_PORT is taken by another process; stop it or set NATS_PORT"
  mkdir -p "$state/nats"
  spawn nats "$logs/nats.log" "$bin/nats-server" -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" -js -sd "$state/nats" -n vod-local
  wait_for "NATS" 20 curl -fsS "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true"
}

start_nats_cluster() {
  local i port mon routes=""
  alive nats && die "a single NATS runs; 'make down' before starting NATS_CLUSTER=$NATS_CLUSTER"
  for i in $(seq 1 "$NATS_CLUSTER"); do routes="$routes${routes:+,}nats://127.0.0.1:$((NATS_CLUSTER_PORT + i - 1))"; done
  for i in $(seq 1 "$NATS_CLUSTER"); do
    alive "nats-$i" && continue
    port=$((NATS_PORT + i - 1)); mon=$((NATS_MONITOR_PORT + i - 1))
    port_busy "127.0.0.1:$port" && die "port $port is taken by another process; stop it or set NATS_PORT"
    mkdir -p "$state/nats-$i"
    # Every node gets every route (its own is recognised and skipped), so any node can start first.
    spawn "nats-$i" "$logs/nats-$i.log" "$bin/nats-server" -a 127.0.0.1 -p "$port" -m "$mon" -js -sd "$state/nats-$i" -n "vod-local-$i" \
      --cluster_name vod-local --cluster "nats://127.0.0.1:$((NATS_CLUSTER_PORT + i - 1))" --routes "$routes"
  done
  # /healthz (not js-enabled-only) answers once the nodes elected a JetStream meta leader.
  for i in $(seq 1 "$NATS_CLUSTER"); do
    wait_for "NATS node $i (log $logs/nats-$i.log)" 60 curl -fsS "http://127.0.0.1:$((NATS_MONITOR_PORT + i - 1))/healthz"
  done
  say "NATS cluster: $NATS_CLUSTER nodes, event stream replicas $NATS_STREAM_REPLICAS"
}

start_postgres() {
  local b; b=$(pg_bin); [ -n "$b" ] || die "PostgreSQL is not installed; run infra/install.sh"
  local data="$state/postgres" sock="$state/pgsock"
  if [ -f "$data/postmaster.pid" ] && kill -0 "$(head -n 1 "$data/postmaster.pid")" 2>/dev/null; then
    head -n 1 "$data/postmaster.pid" >"$pids/postgres.pid"; return 0
  fi
  port_busy "127.0.0.1:$PG_PORT" && die "port $PG_PORT is taken by another PostgreSQL; stop it (pg_lsclusters; pg_ctlcluster 15 main stop) or set PG_PORT"
  mkdir -p "$data" "$sock"
  chown postgres:postgres "$data" "$sock"
  chmod 700 "$data"
  touch "$logs/postgres.log"; chown postgres:postgres "$logs/postgres.log"
  if [ ! -f "$data/PG_VERSION" ]; then
    local pw; pw=$(mktemp); echo postgres >"$pw"; chown postgres "$pw"
    # initdb refuses root: PostgreSQL runs as the postgres user.
    runuser -u postgres -- "$b/initdb" -D "$data" -U postgres --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$logs/initdb.log" 2>&1 \
      || { rm -f "$pw"; die "initdb failed; see $logs/initdb.log"; }
    rm -f "$pw"
  fi
  runuser -u postgres -- "$b/pg_ctl" -D "$data" -l "$logs/postgres.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $sock -c max_connections=200" start >/dev/null \
    || die "PostgreSQL did not start; see $logs/postgres.log"
  head -n 1 "$data/postmaster.pid" >"$pids/postgres.pid"
}

minio_binary() {
  if [ -n "${MINIO_BIN:-}" ]; then [ -x "$MINIO_BIN" ] && { echo "$MINIO_BIN"; return; }; fi
  command -v minio 2>/dev/null && return
  [ -x "$bin/minio" ] && echo "$bin/minio"
}

choose_store() {
  local want=${OBJECT_STORE:-auto} m; m=$(minio_binary || true)
  case "$want" in
    minio)
      [ -n "$m" ] || die "OBJECT_STORE=minio but no MinIO binary: set MINIO_BIN=/path/to/minio, put minio on PATH, or build it with 'go install $MINIO_MODULE@$MINIO_COMMIT'"
      echo "minio $m (OBJECT_STORE=minio)";;
    versitygw) echo "versitygw $bin/versitygw (OBJECT_STORE=versitygw)";;
    auto)
      if [ -n "$m" ]; then echo "minio $m (auto: MinIO binary found)"
      else echo "versitygw $bin/versitygw (auto: no MinIO binary here; set MINIO_BIN to use MinIO)"; fi;;
    *) die "OBJECT_STORE must be auto, minio or versitygw (got '$want')";;
  esac
}

start_object_store() {
  local choice kind path why
  choice=$(choose_store); kind=${choice%% *}; path=$(echo "$choice" | cut -d' ' -f2); why=${choice#* * }
  if alive objectstore; then
    [ "$(cat "$state/object-store")" = "$kind" ] || die "a $(cat "$state/object-store") object store is running; 'make down' before switching to $kind"
    say "object store: $kind, already running"; return 0
  fi
  port_busy "$S3_ADDR" && die "$S3_ADDR is taken by another process; stop it or set S3_ADDR"
  say "object store: $kind $why"
  echo "$kind" >"$state/object-store"
  if [ "$kind" = minio ]; then
    mkdir -p "$state/minio" "$state/minio-events"
    # The NATS target publishes with JetStream acks and keeps events on disk while NATS is down.
    MINIO_ROOT_USER=$MINIO_ACCESS_KEY MINIO_ROOT_PASSWORD=$MINIO_SECRET_KEY \
    MINIO_NOTIFY_NATS_ENABLE_PRIMARY=on \
    MINIO_NOTIFY_NATS_ADDRESS_PRIMARY="127.0.0.1:$NATS_PORT" \
    MINIO_NOTIFY_NATS_SUBJECT_PRIMARY="$NATS_SUBJECT" \
    MINIO_NOTIFY_NATS_JETSTREAM_PRIMARY=on \
    MINIO_NOTIFY_NATS_QUEUE_DIR_PRIMARY="$state/minio-events" \
    MINIO_API_CORS_ALLOW_ORIGIN="${CORS_ORIGINS:-*}" \
    MINIO_BROWSER=on \
      spawn objectstore "$logs/objectstore.log" "$path" server "$state/minio" --address "$S3_ADDR" --console-address "$S3_CONSOLE_ADDR"
    wait_for "MinIO" 60 curl -fsS "http://$S3_ADDR/minio/health/live"
  else
    mkdir -p "$state/versitygw"
    spawn objectstore "$logs/objectstore.log" "$path" --port "$S3_ADDR" --access "$MINIO_ACCESS_KEY" --secret "$MINIO_SECRET_KEY" \
      --quiet --event-nats-url "$NATS_URL" --event-nats-topic "$NATS_SUBJECT" --event-filter "$root/infra/versitygw-events.json" \
      posix "$state/versitygw"
    wait_for "the Versity S3 Gateway" 30 curl -sS -o /dev/null "http://$S3_ADDR/"
  fi
}

tsx() { node --import tsx "$@"; }

# App services: one process per replica, like a container per replica under docker-compose.
# Replica i of a function serves /health, /ready and /metrics on base_port + i.
start_app() { # name replicas entry port [fixed]: fixed = the service's own port, else port + replica number
  local name=$1 n=$2 entry=$3 base=$4 fixed=${5:-} i port
  [ -f "$root/$entry" ] || { say "$name: $entry is not built yet, not started"; return 0; }
  for i in $(seq 1 "$n"); do
    if [ -n "$fixed" ]; then port=$base; else port=$((base + i)); fi
    echo "$port" >"$state/$name-$i.port"
    alive "$name-$i" && continue
    REPLICA_ID="$name-$i" METRICS_PORT="$port" spawn "$name-$i" "$logs/$name-$i.log" node --import tsx "$root/$entry"
  done
  # Fewer replicas asked for than run: stop the extra ones.
  for f in "$pids/$name"-*.pid; do
    [ -e "$f" ] || continue
    i=${f##*-}; i=${i%.pid}
    [ "$i" -le "$n" ] || { stop_pid "$(basename "$f" .pid)"; rm -f "$state/$name-$i.port"; }
  done
}

wait_apps() {
  local f name port
  for f in "$pids"/*.pid; do
    name=$(basename "$f" .pid)
    [ -f "$state/$name.port" ] || continue
    port=$(cat "$state/$name.port")
    wait_for "$name (http://127.0.0.1:$port/ready; log $logs/$name.log)" 60 curl -fsS "http://127.0.0.1:$port/ready"
  done
}

# Each service's scrape targets as Prometheus file_sd JSON (infra/prometheus/prometheus.yml reads them).
write_targets() {
  local dir="$state/prometheus/targets" name f list
  mkdir -p "$dir"
  for name in api gateway convert thumbnail webhooks package clip; do
    list=""
    for f in "$state/$name"-*.port; do
      [ -e "$f" ] || continue
      list="$list${list:+, }\"127.0.0.1:$(cat "$f")\""
    done
    printf '[{"targets": [%s], "labels": {"stack": "local"}}]\n' "$list" >"$dir/$name.json.tmp"
    mv "$dir/$name.json.tmp" "$dir/$name.json"
  done
  printf '[{"targets": ["127.0.0.1:%s"], "labels": {"stack": "local"}}]\n' "$PROMETHEUS_PORT" >"$dir/prometheus.json"
  printf '[{"targets": ["127.0.0.1:%s"], "labels": {"stack": "local"}}]\n' "$PG_EXPORTER_PORT" >"$dir/postgres.json"
  printf '[{"targets": ["127.0.0.1:%s"], "labels": {"stack": "local"}}]\n' "$NATS_EXPORTER_PORT" >"$dir/nats.json"
}

# NATS's monitoring port answers JSON, not Prometheus: one exporter reads every node's /varz and /jsz.
# The official prometheus-nats-exporter when install.sh could build it, else its stand-in (same flags, same metrics).
start_nats_exporter() {
  alive nats-exporter && return 0
  port_busy "127.0.0.1:$NATS_EXPORTER_PORT" && die "port $NATS_EXPORTER_PORT is taken by another process; stop it or set NATS_EXPORTER_PORT"
  local urls=() i cmd=(node --import tsx "$root/infra/prometheus/nats-exporter.ts")
  for i in $(seq 1 "$NATS_CLUSTER"); do urls+=("http://127.0.0.1:$((NATS_MONITOR_PORT + i - 1))"); done
  if [ -x "$bin/prometheus-nats-exporter" ]; then cmd=("$bin/prometheus-nats-exporter")
  elif command -v prometheus-nats-exporter >/dev/null; then cmd=(prometheus-nats-exporter); fi
  (cd "$root" && spawn nats-exporter "$logs/nats-exporter.log" "${cmd[@]}" -varz -jsz=all -a 127.0.0.1 -p "$NATS_EXPORTER_PORT" "${urls[@]}")
  wait_for "the NATS exporter (log $logs/nats-exporter.log)" 30 curl -fsS "http://127.0.0.1:$NATS_EXPORTER_PORT/metrics"
}

# PostgreSQL speaks no Prometheus itself: Debian's exporter reads its statistics views.
start_postgres_exporter() {
  command -v prometheus-postgres-exporter >/dev/null || { say "prometheus-postgres-exporter is not installed; PostgreSQL is not scraped"; return 0; }
  alive postgres-exporter && return 0
  port_busy "127.0.0.1:$PG_EXPORTER_PORT" && die "port $PG_EXPORTER_PORT is taken by another process; stop it or set PG_EXPORTER_PORT"
  DATA_SOURCE_NAME="postgresql://postgres:postgres@127.0.0.1:$PG_PORT/recording_db?sslmode=disable" \
    spawn postgres-exporter "$logs/postgres-exporter.log" prometheus-postgres-exporter --web.listen-address="127.0.0.1:$PG_EXPORTER_PORT"
}

start_prometheus() {
  start_postgres_exporter
  start_nats_exporter
  write_targets
  command -v prometheus >/dev/null || { say "prometheus is not installed (Debian package prometheus); not started"; return 0; }
  if alive prometheus; then kill -HUP "$(cat "$pids/prometheus.pid")"; return 0; fi
  port_busy "127.0.0.1:$PROMETHEUS_PORT" && die "port $PROMETHEUS_PORT is taken by another process; stop it or set PROMETHEUS_PORT"
  mkdir -p "$state/prometheus/data"
  spawn prometheus "$logs/prometheus.log" prometheus --config.file="$root/infra/prometheus/prometheus.yml" \
    --storage.tsdb.path="$state/prometheus/data" --storage.tsdb.retention.time=7d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle
  wait_for "Prometheus (log $logs/prometheus.log)" 30 curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
}

stop_pid() { # name
  local f="$pids/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # Longer than a function's SHUTDOWN_GRACE_SECONDS, so in-flight jobs finish or are handed back first.
    local grace=${SHUTDOWN_GRACE_SECONDS:-30}; local wait=$(( (${grace%.*} + 15) * 5 ))
    for _ in $(seq 1 "$wait"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# The SRT gateway's callers share its few UDP sockets (SRT_LISTENERS); 100 streams need ~32 MB of kernel buffer (SRT_UDP_RCVBUF_MB)
# where Linux caps it at net.core.rmem_max. Raised, never lowered, and only where we may (root, writable /proc/sys).
raise_udp_buffers() {
  local want=$(( ${SRT_UDP_RCVBUF_MB:-32} * 1048576 )) key have
  for key in net.core.rmem_max net.core.wmem_max; do
    have=$(sysctl -n "$key" 2>/dev/null) || continue
    [ "$have" -ge "$want" ] && continue
    if [ "$(id -u)" = 0 ] && sysctl -q -w "$key=$want" 2>/dev/null; then say "$key $have -> $want (SRT ingest)"
    else say "warning: $key is $have (< $want): run 'sysctl -w $key=$want' as root, or many SRT streams lose packets"; fi
  done
}

up() {
  local scope=${1:-all} t0=$SECONDS
  bash "$root/infra/install.sh"
  raise_udp_buffers
  start_nats
  (cd "$root" && tsx infra/provision.ts --jetstream)
  start_postgres
  start_object_store
  (cd "$root" && tsx infra/provision.ts)
  if [ "$scope" = all ]; then
    # Writes to the API and the gateway need a token; the local stack makes one once and keeps it.
    if [ -z "${API_TOKEN:-}" ]; then
      [ -s "$state/api-token" ] || { head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$state/api-token"; chmod 600 "$state/api-token"; }
      export API_TOKEN; API_TOKEN=$(cat "$state/api-token")
    fi
    start_app convert "$CONVERT_REPLICAS" functions/convert/main.ts 9100
    start_app thumbnail "$THUMBNAIL_REPLICAS" functions/thumbnail/main.ts 9200
    start_app webhooks "$WEBHOOKS_REPLICAS" functions/webhooks/main.ts 9300
    start_app package "$PACKAGE_REPLICAS" functions/package/main.ts 9400
    start_app clip "$CLIP_REPLICAS" functions/clip/main.ts 9500
    start_app api 1 functions/api/main.ts "${API_PORT:-8080}" fixed
    start_app gateway 1 ingest-gateway/main.ts "${GATEWAY_HTTP_PORT:-9090}" fixed
    wait_apps
    start_prometheus
  fi
  (cd "$root" && tsx functions/sweep/main.ts --once) || say "sweep failed; see above"
  say "ready in $((SECONDS - t0))s"
  status
}

down() {
  local f name
  for f in "$pids"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    case "$name" in nats|nats-*|postgres|objectstore) continue;; esac
    stop_pid "$name"
  done
  stop_pid objectstore
  if [ -f "$pids/postgres.pid" ]; then
    runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$state/postgres" -m fast -w stop >/dev/null 2>&1 || true
    rm -f "$pids/postgres.pid"
  fi
  stop_pid nats
  for f in "$pids"/nats-*.pid; do [ -e "$f" ] && stop_pid "$(basename "$f" .pid)"; done
  say "stopped"
}

status() {
  local f name
  printf '  %-14s %s\n' "S3 ($(cat "$state/object-store" 2>/dev/null || echo '?'))" "http://$S3_ADDR  (access key $MINIO_ACCESS_KEY)"
  [ "$(cat "$state/object-store" 2>/dev/null)" = minio ] && printf '  %-14s %s\n' "MinIO console" "http://$S3_CONSOLE_ADDR"
  printf '  %-14s %s\n' "NATS" "$NATS_URL  (monitoring http://127.0.0.1:$NATS_MONITOR_PORT)"
  printf '  %-14s %s\n' "PostgreSQL" "postgres://postgres:postgres@127.0.0.1:$PG_PORT/recording_db"
  [ -s "$state/api-token" ] && [ "${API_TOKEN:-$(cat "$state/api-token")}" = "$(cat "$state/api-token")" ] && printf '  %-14s %s\n' "API token" "$(cat "$state/api-token")  (Authorization: Bearer …; kept in .state/api-token)"
  for f in "$pids"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if kill -0 "$(cat "$f")" 2>/dev/null; then
      if [ "$name" = prometheus ]; then printf '  %-14s http://127.0.0.1:%s  (pid %s; alerts at /alerts)\n' "$name" "$PROMETHEUS_PORT" "$(cat "$f")"
      elif [ -f "$state/$name.port" ]; then printf '  %-14s http://127.0.0.1:%s  (pid %s)\n' "$name" "$(cat "$state/$name.port")" "$(cat "$f")"
      else printf '  %-14s pid %s\n' "$name" "$(cat "$f")"; fi
    else printf '  %-14s not running (see %s)\n' "$name" "$logs/$name.log"; fi
  done
}

case "${1:-}" in
  up) case "${2:-all}" in
        # make test-unit: PostgreSQL alone (claim races), nothing else started.
        postgres) start_postgres;;
        *) up "${2:-all}";;
      esac;;
  down) down;;
  status) status;;
  restart-nats) stop_pid nats; start_nats;;
  *) echo "usage: infra/stack.sh up [all|infra|postgres] | down | status" >&2; exit 2;;
esac
