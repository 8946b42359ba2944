#!/usr/bin/env bash
# The worker's memory over many deliveries: batches of N deliveries to a
# local nginx; after each, the worker's memory contexts (the "Grand total"
# that pg_log_backend_memory_contexts logs) and its resident set size.
#
#   bench/memory.sh [batches=5] [events=200000]
cd "$(dirname "$0")/.."
source test/cluster.sh
batches=${1:-5}; events=${2:-200000}
port=${BENCH_HTTP_PORT:-18205}

bench_start_cluster "webhook.enabled = off"
bench_start_nginx "$port"
bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
SELECT webhook.create_hook(webhook.create_transport('nginx', 'http://127.0.0.1:$port',
                                                    max_in_flight => 64),
                           '{ORDER_*}', path => '/hook');
SQL

total=0
for i in $(seq "$batches"); do
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    bench_psql -c "SELECT count(webhook.emit('ORDER_CREATE', jsonb_build_object('n', g)))
                     FROM generate_series(1, $events) g" >/dev/null
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = on" -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 12000); do
        [ "$(bench_psql -c "SELECT count(*) FROM webhook.delivery
                             WHERE state IN ('pending', 'failed')")" = 0 ] && break
        sleep 0.05
    done
    total=$((total + events))
    pid=$(bench_psql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'webhook worker'")
    offset=$(stat -c %s "$BENCH_DIR/log")
    bench_psql -c "SELECT pg_log_backend_memory_contexts($pid)" >/dev/null
    sleep 1
    contexts=$(tail -c +"$offset" "$BENCH_DIR/log" | grep -o 'Grand total: [0-9]* bytes' | tail -1)
    rss=$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$pid/status")
    anon=$(awk '/^RssAnon/ {print $2 " " $3}' "/proc/$pid/status")
    echo "after $total deliveries: worker $pid contexts ${contexts#Grand total: }, RSS $rss (anonymous $anon)"
    # keep the tables small: the finished deliveries are not the subject here
    bench_psql -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt" >/dev/null
done
