#!/usr/bin/env bash
# Delivery with a long history: the rate of batches of N deliveries with
# empty tables, then after H finished deliveries (and their events and
# attempts) have been added, as a shop accumulates them between prunes.
#
#   bench/history.sh [history=10000000] [events=20000] [runs=3]
cd "$(dirname "$0")/.."
source test/cluster.sh
history=${1:-10000000}; events=${2:-20000}; runs=${3:-3}
port=${BENCH_HTTP_PORT:-18206}

bench_start_cluster "webhook.enabled = off"
bench_start_nginx "$port"
bench_nginx_hook "$port"

for i in $(seq "$runs"); do
    echo "empty history: $(bench_batch_rate "$events") req/s" | tee -a "$BENCH_DIR/results"
done

echo "adding $history finished deliveries with their events and attempts"
bench_fill_history "$history"
echo "attempts: $(bench_psql -c "SELECT count(*) FROM webhook.attempt")"
for i in $(seq "$runs"); do
    echo "with history: $(bench_batch_rate "$events") req/s" | tee -a "$BENCH_DIR/results"
done
e=$(awk '$1=="empty" {print $3}' "$BENCH_DIR/results" | median)
h=$(awk '$1=="with" {print $3}' "$BENCH_DIR/results" | median)
echo "median: empty $e req/s, with $history finished $h req/s; ratio $(echo "$h $e" | awk '{printf "%.2f", $1/$2}')"
