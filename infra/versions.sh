# Pinned versions of what the local stack installs; sourced by install.sh and stack.sh.
NATS_SERVER_MODULE=github.com/nats-io/nats-server/v2
NATS_SERVER_VERSION=v2.12.8
VERSITYGW_MODULE=github.com/versity/versitygw/cmd/versitygw
VERSITYGW_VERSION=v1.8.0
# MinIO community edition ships as source only; RELEASE.2025-10-15T17-29-55Z is this commit.
MINIO_MODULE=github.com/minio/minio
MINIO_COMMIT=9e49d5e7a648f00e26f2246f4dc28e6b07f8c84a
# NATS's Prometheus exporter (compose and k8s run its image natsio/prometheus-nats-exporter:0.20.1). Debian does
# not package it; install.sh tries this go install once, and when the module proxy refuses it (as it does on
# these machines) infra/prometheus/nats-exporter.ts, a stand-in with the same flags and metric names, runs instead.
NATS_EXPORTER_MODULE=github.com/nats-io/prometheus-nats-exporter
NATS_EXPORTER_VERSION=v0.20.1
# Schemathesis (PyPI) fuzzes both OpenAPI documents (make test-fuzz); it lives in a venv under .cache.
SCHEMATHESIS_VERSION=4.32.5
# prometheus brings promtool, which tests the alert rules; prometheus-postgres-exporter gives PostgreSQL a
# /metrics; python3-venv lets Debian's python3 make the venv; xfsprogs makes the XFS (reflink) filesystem
# bench/live-assembly.bench.ts puts a second Versity gateway on (infra/reflink-store.sh).
APT_PACKAGES="postgresql ffmpeg libsrt-openssl-dev nlohmann-json3-dev pkg-config curl chromium prometheus prometheus-postgres-exporter python3-venv srt-tools gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav xfsprogs"
