#!/usr/bin/env bash
# The writer's rate over time: one connection INSERTs orders into a watched
# table (one matching hook, sending paused) for S seconds; pgbench reports
# every 10 s.  Prints the first, last, lowest and highest 10-second rate.
#
#   bench/steady.sh [seconds=300] [synchronous_commit=on]
cd "$(dirname "$0")/.."
source test/cluster.sh
secs=${1:-300}; sync=${2:-on}

bench_start_cluster "webhook.enabled = off" "synchronous_commit = $sync"
bench_psql <<'SQL'
\o /dev/null
CREATE EXTENSION webhook;
CREATE TABLE orders_watched (
    id bigserial PRIMARY KEY, tenant text NOT NULL DEFAULT 'default',
    state text NOT NULL DEFAULT 'created', total numeric(12,2) NOT NULL,
    items jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
SELECT webhook.watch('orders_watched', resource => 'order',
                     tenant_column => 'tenant', state_column => 'state');
SELECT webhook.create_hook(webhook.create_transport('shop', 'http://127.0.0.1:9'),
                           '{ORDER_*}', signature => 'none');
SQL
cat > "$BENCH_DIR/watched.sql" <<'SQL'
INSERT INTO orders_watched (total, items)
VALUES (random() * 100, '[{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]');
SQL
chmod a+r "$BENCH_DIR/watched.sql"
bench_pgbench -n -c 1 -T "$secs" -P 10 -f "$BENCH_DIR/watched.sql" 2>&1 |
    awk '/^progress:/ {tps = $4; n++; if (n == 1) first = tps; last = tps;
                       if (min == "" || tps < min) min = tps; if (tps > max) max = tps}
         END {printf "10-second rates over %d intervals: first %s, last %s, lowest %s, highest %s TPS; last/first %.2f\n",
                     n, first, last, min, max, last / first}'
echo "deliveries queued: $(bench_psql -c "SELECT count(*) FROM webhook.delivery")"
