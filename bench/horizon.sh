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
bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
SELECT webhook.create_hook(webhook.create_transport('nginx', 'http://127.0.0.1:$port',
                                                    max_in_flight => 64),
                           '{ORDER_*}', path => '/hook');
SQL

# the rate of one batch of events deliveries
batch() {
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    bench_psql -c "SELECT count(webhook.emit('ORDER_CREATE', jsonb_build_object('n', g)))
                     FROM generate_series(1, $events) g" >/dev/null
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = on" >/dev/null
    local start end
    start=$(date +%s.%N)
    bench_psql -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 6000); do
        [ "$(bench_psql -c "SELECT count(*) FROM webhook.delivery
                             WHERE state IN ('pending', 'failed')")" = 0 ] && break
        sleep 0.05
    done
    end=$(date +%s.%N)
    echo "$events $start $end" | awk '{printf "%.0f", $1 / ($3 - $2)}'
}

dead() {
    bench_psql -c "SELECT sum(n_dead_tup) FROM pg_stat_user_tables WHERE schemaname = 'webhook'"
}

for i in $(seq "$batches"); do
    echo "clean batch $i: $(batch) req/s" | tee -a "$BENCH_DIR/results"
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
    echo "pinned batch $i: $(batch) req/s" | tee -a "$BENCH_DIR/results"
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
