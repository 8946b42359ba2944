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
bench_orders_tables
bench_pgbench -n -c 1 -T "$secs" -P 10 -f "$BENCH_DIR/watched.sql" 2>&1 |
    awk '/^progress:/ {tps = $4; n++; if (n == 1) first = tps; last = tps;
                       if (min == "" || tps < min) min = tps; if (tps > max) max = tps}
         END {printf "10-second rates over %d intervals: first %s, last %s, lowest %s, highest %s TPS; last/first %.2f\n",
                     n, first, last, min, max, last / first}'
echo "deliveries queued: $(bench_psql -c "SELECT count(*) FROM webhook.delivery")"
