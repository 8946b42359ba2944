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
bench_nginx_hook "$port"

total=0
for i in $(seq "$batches"); do
    rate=$(bench_batch_rate "$events")
    total=$((total + events))
    pid=$(bench_psql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'webhook worker'")
    offset=$(stat -c %s "$BENCH_DIR/log")
    bench_psql -c "SELECT pg_log_backend_memory_contexts($pid)" >/dev/null
    sleep 1
    contexts=$(tail -c +"$offset" "$BENCH_DIR/log" | grep -o 'Grand total: [0-9]* bytes' | tail -1)
    rss=$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$pid/status")
    anon=$(awk '/^RssAnon/ {print $2 " " $3}' "/proc/$pid/status")
    echo "after $total deliveries ($rate req/s): worker $pid contexts ${contexts#Grand total: }, RSS $rss (anonymous $anon)"
    # keep the tables small: the finished deliveries are not the subject here
    bench_psql -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt" >/dev/null
done
