#!/usr/bin/env bash
# Capture benchmark: one-order-per-transaction INSERTs into a watched table
# (one matching active hook) against an identical unwatched table, with 2
# clients, alternated in one run.  Prints each run's TPS, the medians and
# their ratio.  Sending is paused (webhook.enabled = off) so that the figure
# is the trigger's cost alone, not the worker's competing for the 2 cores.
#
#   bench/capture.sh [runs=5] [seconds=10] [synchronous_commit=on]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-5}; secs=${2:-10}; sync=${3:-on}

bench_start_cluster "webhook.enabled = off" "synchronous_commit = $sync"
bench_psql <<'SQL'
\o /dev/null
CREATE EXTENSION webhook;
CREATE TABLE orders_plain (
    id bigserial PRIMARY KEY, tenant text NOT NULL DEFAULT 'default',
    state text NOT NULL DEFAULT 'created', total numeric(12,2) NOT NULL,
    items jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders_watched (LIKE orders_plain INCLUDING ALL);
SELECT webhook.watch('orders_watched', resource => 'order',
                     tenant_column => 'tenant', state_column => 'state');
SELECT webhook.create_hook(webhook.create_transport('shop', 'http://127.0.0.1:9'),
                           '{ORDER_*}', signature => 'none');
SQL
for t in plain watched; do
    cat > "$BENCH_DIR/$t.sql" <<SQL
INSERT INTO orders_$t (total, items)
VALUES (random() * 100, '[{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]');
SQL
done
chmod a+r "$BENCH_DIR"/*.sql

for i in $(seq "$runs"); do
    for t in plain watched; do
        tps=$(bench_pgbench -n -c 2 -j 2 -T "$secs" -f "$BENCH_DIR/$t.sql" 2>/dev/null |
              awk '/^tps/ {print $3}')
        echo "$t $tps" | tee -a "$BENCH_DIR/results"
    done
done
plain=$(awk '$1=="plain" {print $2}' "$BENCH_DIR/results" | median)
watched=$(awk '$1=="watched" {print $2}' "$BENCH_DIR/results" | median)
events=$(bench_psql -c "SELECT count(*) FROM webhook.delivery")
echo "median TPS: plain $plain, watched $watched; ratio $(echo "$watched $plain" | awk '{printf "%.2f", $1/$2}') (synchronous_commit=$sync, $events deliveries queued)"
