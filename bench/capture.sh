#!/usr/bin/env bash
# Capture benchmark: one-order-per-transaction INSERTs into a watched table
# (one matching active hook) against an identical unwatched table, with 2
# clients, alternated in one run.  Prints each run's TPS, the medians and
# their ratio.  Sending is paused (webhook.enabled = off) so that the figure
# is the trigger's cost alone, not the worker's competing for the 2 cores.
# Every run starts from empty tables after a CHECKPOINT: with sending paused
# the queue would otherwise grow by millions of deliveries over the runs,
# and the later runs measure that and the checkpoints it brings.
#
# With a jsonpath filter, the hook has that filter (the trigger's cost of
# evaluating it: '$.total >= 0' matches every order).  With an ordering
# ('resource' or 'hook'), the hook is ordered so (its events are appended as
# an unordered hook's are, read by its cursor; the writer stores next_txid
# either way).
#
# PgQ's own trigger runs beside ours, alternated in the same run: an
# identical table whose rows pgq.logutriga() puts into a pgq queue
# (Debian's postgresql-15-pgq3, installed if missing).
#
#   bench/capture.sh [runs=5] [seconds=10] [synchronous_commit=on] [filter] [ordering=none]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-5}; secs=${2:-10}; sync=${3:-on}; filter=${4:-}; ordering=${5:-none}

bench_start_cluster "webhook.enabled = off" "synchronous_commit = $sync"
bench_orders_tables
[ -f "$(pg_config --sharedir)/extension/pgq.control" ] ||
    apt-get install -y -qq postgresql-15-pgq3 >/dev/null
bench_psql >/dev/null <<'SQL'
CREATE EXTENSION pgq;
SELECT pgq.create_queue('orders');
CREATE TABLE orders_pgq (LIKE orders_plain INCLUDING ALL);
CREATE TRIGGER orders_pgq AFTER INSERT OR UPDATE OR DELETE ON orders_pgq
    FOR EACH ROW EXECUTE FUNCTION pgq.logutriga('orders');
SQL
sed 's/orders_plain/orders_pgq/' "$BENCH_DIR/plain.sql" > "$BENCH_DIR/pgq.sql"
chmod a+r "$BENCH_DIR/pgq.sql"
if [ -n "$filter" ]; then
    bench_psql -v filter="$filter" >/dev/null <<'SQL'
SELECT webhook.update_hook(id, filter => :'filter') FROM webhook.hooks();
SQL
fi
bench_psql -v ordering="$ordering" >/dev/null <<'SQL'
SELECT webhook.update_hook(id, ordered => :'ordering') FROM webhook.hooks();
SQL
# the writers write a slot of the event log that inherits webhook.event,
# as they do three rotations in four (a catalog with slots: 0.5 on)
bench_psql -c "SELECT webhook.prune('0')" >/dev/null

for i in $(seq "$runs"); do
    for t in plain pgq watched; do
        # each run from the same start: empty tables and queues, a checkpoint
        bench_psql -c "TRUNCATE orders_plain, orders_watched, orders_pgq, webhook.event,
                                 webhook.delivery, webhook.attempt, pgq.event_template" \
                   -c "CHECKPOINT"
        tps=$(bench_pgbench -n -c 2 -j 2 -T "$secs" -f "$BENCH_DIR/$t.sql" 2>/dev/null |
              awk '/^tps/ {print $3}')
        echo "$t $tps" | tee -a "$BENCH_DIR/results"
    done
done
plain=$(awk '$1=="plain" {print $2}' "$BENCH_DIR/results" | median)
watched=$(awk '$1=="watched" {print $2}' "$BENCH_DIR/results" | median)
pgq=$(awk '$1=="pgq" {print $2}' "$BENCH_DIR/results" | median)
events=$(bench_psql -c "SELECT coalesce(sum(cardinality(hook_ids)), 0)
                           + (SELECT count(*) FROM webhook.delivery) FROM webhook.event")
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1/$2}'; }
echo "median TPS: plain $plain, watched $watched, pgq $pgq; ratio $(ratio "$watched" "$plain"), PgQ's $(ratio "$pgq" "$plain") (synchronous_commit=$sync, filter ${filter:-none}, ordered $ordering, $events deliveries to make from the last run's events)"
