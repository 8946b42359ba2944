#!/usr/bin/env bash
# Delivery throughput: N queued events, each signed (Standard Webhooks) and
# logged as an attempt, sent to a local nginx that answers 204; against raw
# HTTP to the same nginx (wrk, 1 thread, 16 connections, same body) and
# against the bare libcurl client of bench/ceiling.sh driven plainly (as
# many requests, as many in flight, same body), each in the same run: the
# medians of each run's ratios.  With several workers, the events are
# spread over as many transports (one hook each) as asked, so that each
# worker has a share;
# the transports are spread over as many tenants as asked (a platform's
# merchants: seed 003).
#
# BENCH_HOST=localhost sends to nginx by that name instead of 127.0.0.1:
# the worker then looks the name up (src/lookup.c) and hands curl the
# addresses.
#
#   bench/delivery.sh [runs=3] [events=20000] [webhook.max_in_flight=64]
#                     [webhook.workers=1] [transports=1] [tenants=1]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-3}; events=${2:-20000}; inflight=${3:-64}; workers=${4:-1}; transports=${5:-1}
tenants=${6:-1}
port=${BENCH_HTTP_PORT:-18200}
host=${BENCH_HOST:-127.0.0.1}

bench_start_cluster "webhook.enabled = off" "webhook.max_in_flight = $inflight" \
    "webhook.workers = $workers"
bench_start_nginx "$port"
bench_build_curl_ceiling

bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
SELECT webhook.create_hook(
    webhook.create_transport('nginx-' || t, 'http://$host:$port', max_in_flight => $inflight,
                             tenant => 't' || t % $tenants),
    ARRAY['ORDER_' || t], path => '/hook')
  FROM generate_series(1, $transports) t;
SQL

for i in $(seq "$runs"); do
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    bench_psql -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt" \
        -c "SELECT count(webhook.emit('ORDER_' || (g % $transports + 1),
                                      jsonb_build_object('orderId', g, 'total', 12.5),
                                      tenant => 't' || (g % $transports + 1) % $tenants))
              FROM generate_series(1, $events) g" >/dev/null
    # every event has its attempt, answered 204 by nginx (a success at the
    # first attempt has no delivery row), so the hook's successes say when
    # all went (bench_wait_successes)
    before=$(bench_successes)
    bench_psql -c "CHECKPOINT" -c "ALTER SYSTEM SET webhook.enabled = on" >/dev/null
    start=$(date +%s.%N)
    bench_psql -c "SELECT pg_reload_conf()" >/dev/null
    bench_wait_successes $((before + events)) 300
    end=$(date +%s.%N)
    left=$(bench_psql -c "SELECT $events - count(*) FROM webhook.attempt
                           WHERE status_code BETWEEN 200 AND 299")
    attempts=$(bench_psql -c "SELECT count(*) FROM webhook.attempt")
    rate=$(echo "$events $start $end" | awk '{printf "%.0f", $1 / ($3 - $2)}')
    echo "webhook $rate req/s ($events events, $attempts attempts, $left left)" | tee -a "$BENCH_DIR/results"

    raw=$(bench_raw_http "http://127.0.0.1:$port/hook")
    echo "raw $raw req/s (wrk, 1 thread, 16 connections)" | tee -a "$BENCH_DIR/results"
    bare=$("$BENCH_DIR/curl_ceiling" "http://127.0.0.1:$port/hook" "$events" "$inflight" | awk '{print $2}')
    echo "bare $bare req/s (bench/curl_ceiling.c, $inflight in flight)" | tee -a "$BENCH_DIR/results"
    echo "$rate $raw $bare" | awk '{printf "ratios %.3f %.3f\n", $1 / $2, $1 / $3}' >> "$BENCH_DIR/results"
done
w=$(awk '$1=="webhook" {print $2}' "$BENCH_DIR/results" | median)
r=$(awk '$1=="raw" {print $2}' "$BENCH_DIR/results" | median)
b=$(awk '$1=="bare" {print $2}' "$BENCH_DIR/results" | median)
to_raw=$(awk '$1=="ratios" {print $2}' "$BENCH_DIR/results" | median)
to_bare=$(awk '$1=="ratios" {print $3}' "$BENCH_DIR/results" | median)
echo "median: webhook $w req/s, raw HTTP $r req/s, bare libcurl $b req/s; ratio to raw $to_raw, to bare libcurl $to_bare (webhook.max_in_flight=$inflight, webhook.workers=$workers, $transports transports, $tenants tenants)"
