#!/usr/bin/env bash
# Automatic pruning on a long history: H finished deliveries (with their
# events and one attempt each), half of them older than webhook.retention
# (30 days), pruned by the worker (webhook.auto_prune): the deliveries
# deleted in its batches (where they have rows), then the old slot of the
# attempts and events emptied at once (the events still needed copied
# first); the round's duration from the worker's log line, and the delivery
# rate of batches of N events while it prunes, against the rate on the same
# tables before (auto_prune off).
#
#   bench/prune.sh [history=10000000] [events=20000] [runs=3]
# (runs: batches without pruning; the batch while pruning is one)
cd "$(dirname "$0")/.."
source test/cluster.sh
history=${1:-10000000}; events=${2:-20000}; runs=${3:-3}
port=${BENCH_HTTP_PORT:-18207}

bench_start_cluster "webhook.enabled = off" "webhook.auto_prune = off"
bench_start_nginx "$port"
bench_nginx_hook "$port"

echo "adding $history finished deliveries with their events and attempts, half 40 days old"
fill_start=$(date +%s)
bench_fill_history "$history" $((history / 2))
echo "filled in $(( $(date +%s) - fill_start )) s; attempts: $(bench_psql -c "SELECT count(*) FROM webhook.attempt")"
# a partitioned table's size is its partitions'
echo "sizes: $(bench_psql -c "SELECT string_agg(c || ' ' || pg_size_pretty(pg_total_relation_size(t)
                                 + coalesce((SELECT sum(pg_total_relation_size(i.inhrelid))
                                               FROM pg_inherits i WHERE i.inhparent = t), 0)::bigint), ', ')
                             FROM unnest('{event,delivery,attempt}'::text[]) c,
                                  LATERAL (SELECT ('webhook.' || c)::regclass AS t) x")"

# the worker's rounds walk the tables in id order and stop at the first rows
# newer than the bound: the history goes in first, as time would have
# written it, and the rate without pruning is measured on the same tables
for i in $(seq "$runs"); do
    echo "not pruning: $(bench_batch_rate "$events") req/s" | tee -a "$BENCH_DIR/results"
done

# a round ends with the rotation (its LOG line: the old slot emptied), and
# says what it pruned (at LOG when it deleted deliveries)
round_over() { grep -q "emptied log slot\|pruned [0-9]* deliveries" "$BENCH_DIR/log"; }

# The round runs while a batch drains: the batch queued with sending
# paused, then sending resumed and auto_prune turned on by one reload (the
# worker starts a round at once).  A round empties the old slot in a
# second or so: one batch holds it, so the figure is of one run (run the
# bench again for another).
bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
bench_psql -c "SELECT count(webhook.emit('ORDER_CREATE', jsonb_build_object('n', g)))
                 FROM generate_series(1, $events) g" >/dev/null
bench_psql -c "ALTER SYSTEM SET webhook.auto_prune = on" >/dev/null
prune_start=$(date +%s.%N)
rate=$(bench_drain_rate "$events")
drained=$(date +%s.%N)
for _ in $(seq 7200); do
    round_over && break
    sleep 0.5
done
grep "emptied .*slot\|pruned [0-9]* deliveries" "$BENCH_DIR/log" || true
# the round's end: the rotation's log line (its timestamp, the server's
# clock, which is this machine's)
emptied=$(grep -m1 "emptied log slot" "$BENCH_DIR/log" | awk '{print $1 " " $2 " " $3}')
prune_end=$(date -d "${emptied:-now}" +%s.%N)
if [ "$(echo "$prune_end $drained" | awk '{print ($1 > $2)}')" = 1 ]; then
    echo "pruning: $rate req/s (the round outlasted the batch: a part of it)" | tee -a "$BENCH_DIR/results"
else
    echo "pruning: $rate req/s (the whole round within the batch)" | tee -a "$BENCH_DIR/results"
fi
echo "round: $(echo "$prune_start $prune_end" | awk '{printf "%.1f", $2 - $1}') s from the reload to the slot emptied;" \
     "attempts left: $(bench_psql -c "SELECT count(*) FROM webhook.attempt")," \
     "events left: $(bench_psql -c "SELECT count(*) FROM webhook.event")"
n=$(awk '$1=="not" {print $3}' "$BENCH_DIR/results" | median)
p=$(awk '$1=="pruning:" {print $2}' "$BENCH_DIR/results" | median)
echo "median: not pruning $n req/s, while pruning ${p:-?} req/s; ratio $(echo "${p:-0} $n" | awk '{printf "%.2f", $1/$2}')"
