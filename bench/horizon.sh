#!/usr/bin/env bash
# Delivery under a pinned xmin horizon: batches of N deliveries, first with
# nothing else running, then while another session holds a REPEATABLE READ
# transaction open (so no dead row version can be removed); each batch's
# rate, and the dead tuples of the webhook tables after the runs.
#
#   bench/horizon.sh [events=20000] [batches=4]
cd "$(dirname "$0")/.."
source test/cluster.sh
events=${1:-20000}; batches=${2:-4}
port=${BENCH_HTTP_PORT:-18204}

bench_start_cluster "webhook.enabled = off"
bench_start_nginx "$port"
bench_nginx_hook "$port"

# the dead tuples of the extension's tables, in all and by table
dead() {
    bench_psql -c "SELECT sum(n_dead_tup) || ' (' || string_agg(relname || ' ' || n_dead_tup, ', '
                                                  ORDER BY n_dead_tup DESC) || ')'
                     FROM pg_stat_user_tables
                    WHERE schemaname IN ('webhook', 'webhook_internal') AND n_dead_tup > 0"
}

for i in $(seq "$batches"); do
    echo "clean batch $i: $(bench_batch_rate "$events") req/s" | tee -a "$BENCH_DIR/results"
done
bench_psql -c "VACUUM webhook.delivery, webhook.event, webhook.attempt" >/dev/null
echo "dead tuples before the pinned runs: $(dead)"

# a session that holds a snapshot for as long as the batches run
fifo="$BENCH_DIR/pin"
mkfifo "$fifo"
chmod 666 "$fifo"
as_pg "$BENCH_BIN/psql" -X -q -h "$BENCH_DIR" -p "$BENCH_PORT" bench < "$fifo" >/dev/null &
pin=$!
exec 3> "$fifo"
echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM webhook.hook;" >&3
sleep 0.5
for i in $(seq "$batches"); do
    echo "pinned batch $i: $(bench_batch_rate "$events") req/s" | tee -a "$BENCH_DIR/results"
done
sleep 1
echo "dead tuples after the pinned runs: $(dead)"
echo "COMMIT;" >&3
exec 3>&-
wait "$pin"

c=$(awk '$1=="clean" {print $4}' "$BENCH_DIR/results" | median)
p=$(awk '$1=="pinned" {print $4}' "$BENCH_DIR/results" | median)
last=$(awk '$1=="pinned" {v = $4} END {print v}' "$BENCH_DIR/results")
echo "median: clean $c req/s, pinned $p req/s (last pinned batch $last); ratio $(echo "$p $c" | awk '{printf "%.2f", $1/$2}'), last $(echo "$last $c" | awk '{printf "%.2f", $1/$2}')"
