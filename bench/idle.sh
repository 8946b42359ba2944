#!/usr/bin/env bash
# What other tenants' idle hooks cost one tenant: its delivery rate (a batch
# of N events, each signed (Standard Webhooks) and logged as an attempt,
# sent by one worker, 64 in flight, to a local nginx that answers 204, as
# bench/delivery.sh) and its CPU-bound writer's TPS (one-order-per-
# transaction INSERTs into a watched table, 2 clients, sending paused, as
# bench/neighbours.sh), while 100 other tenants hold no hook (the
# baseline), then 1,000, 10,000 and 100,000 hooks in all (spread evenly
# over them, 20 event-type patterns each that no event matches: nothing to
# send; written directly, as bench/neighbours.sh does), in turn in each
# run, each run starting one count further.  The cluster runs with
# synchronous_commit off (the writer is CPU-bound; the worker's own
# commits are asynchronous anyway).  Every batch and every writer run
# starts from an empty queue after a CHECKPOINT; a batch is timed until
# none of it is left, or for two minutes at most (the rate is then of
# those sent).
# Prints each figure, the medians, and each median's ratio to the
# baseline's median of the same run.
#
#   bench/idle.sh [runs=3] [events=30000] [seconds=10]
#                 [hook counts="1000 10000 100000"]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-3}; events=${2:-30000}; secs=${3:-10}; counts=${4:-1000 10000 100000}
port=${BENCH_HTTP_PORT:-18200}

bench_start_cluster "webhook.enabled = off" "webhook.max_in_flight = 64" \
    "webhook.workers = 1" "synchronous_commit = off"
bench_start_nginx "$port"

# tenant "default": a watched orders table, and one signed hook of its
# ORDER_* events to the nginx; the 100 other tenants' transports
bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
CREATE TABLE orders_watched (
    id bigserial PRIMARY KEY, tenant text NOT NULL DEFAULT 'default',
    state text NOT NULL DEFAULT 'created', total numeric(12,2) NOT NULL,
    items jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
SELECT webhook.watch('orders_watched', resource => 'order',
                     tenant_column => 'tenant', state_column => 'state');
SELECT webhook.create_hook(webhook.create_transport('nginx', 'http://127.0.0.1:$port',
                                                    max_in_flight => 64),
                           '{ORDER_*}', path => '/hook');
SELECT webhook.create_transport('idle', 'http://127.0.0.1:9', tenant => 'idle' || t)
  FROM generate_series(1, 100) t;
SQL
cat > "$BENCH_DIR/watched.sql" <<SQL
INSERT INTO orders_watched (total, items)
VALUES (random() * 100, '[{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]');
SQL
chmod a+r "$BENCH_DIR/watched.sql"

# the other tenants' $1 idle hooks, in place of those there were
idle_hooks() {
    bench_psql <<SQL
\o /dev/null
DELETE FROM webhook.hook h USING webhook.transport t
 WHERE t.id = h.transport_id AND t.tenant <> 'default';
SET session_replication_role = replica;
INSERT INTO webhook.hook (transport_id, path, event_types, signature)
SELECT t.id, '/' || g,
       (SELECT array_agg('INVOICE_' || g || '_' || p) FROM generate_series(1, 20) p),
       'none'
  FROM generate_series(1, $1) g
  JOIN webhook.transport t ON t.tenant = 'idle' || (g % 100 + 1);
RESET session_replication_role;
VACUUM ANALYZE webhook.hook;
SQL
}

# the rate (req/s) of a batch of $events events of tenant "default"
deliver() {
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    bench_psql -c "TRUNCATE orders_watched, webhook.event, webhook.delivery, webhook.attempt" \
        -c "SELECT count(webhook.emit('ORDER_CREATE', jsonb_build_object('orderId', g, 'total', 12.5)))
              FROM generate_series(1, $events) g" >/dev/null
    bench_drain_rate "$events"
}

# the writer's TPS for $secs seconds, sending paused, from an empty queue
write() {
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    bench_psql -c "TRUNCATE orders_watched, webhook.event, webhook.delivery, webhook.attempt" \
               -c "CHECKPOINT"
    bench_pgbench -n -c 2 -j 2 -T "$secs" -f "$BENCH_DIR/watched.sql" 2>/dev/null |
        awk '/^tps/ {print $3}'
}

# each run takes the counts in another order (rotated by one), so that no
# count is always measured first, or after the largest
cases=(0 $counts)
for i in $(seq "$runs"); do
    for c in $(seq 0 $((${#cases[@]} - 1))); do
        n=${cases[$(( (c + i - 1) % ${#cases[@]} ))]}
        idle_hooks "$n"
        echo "delivery$n $(deliver)" | tee -a "$BENCH_DIR/results"
        echo "writer$n $(write)" | tee -a "$BENCH_DIR/results"
    done
done

for what in delivery writer; do
    base=$(awk -v k="${what}0" '$1==k {print $2}' "$BENCH_DIR/results" | median)
    line="median $what ($([ $what = delivery ] && echo req/s || echo TPS)): no idle hooks $base"
    for n in $counts; do
        m=$(awk -v k="$what$n" '$1==k {print $2}' "$BENCH_DIR/results" | median)
        line="$line; $n idle hooks $m ($(echo "$m $base" | awk '{printf "%.2f", $1/$2}'))"
    done
    echo "$line"
done
