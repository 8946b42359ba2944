#!/usr/bin/env bash
# What ordering per resource costs delivery: a batch of N events of one
# hook, each signed (Standard Webhooks) and logged as an attempt, sent by
# one worker, 64 in flight, to a local nginx that answers 204 (as
# bench/delivery.sh), the events spread over R resources (resource
# 'order', resource_id g % R: with R = 1,000 and N = 20,000, 1,000 orders
# each changed 20 times), with the hook's ordered = 'none', then 'resource'
# for each R asked, alternated in each run by update_hook().  A batch is
# timed until none of it is left, or for two minutes at most (the rate is
# then of those sent).  Prints each rate, the medians and each median's ratio to the median of 'none'.  (The
# writer's path is the same for an ordered hook: capture.c and enqueue.c
# never read ordered, so it is not measured here.)
#
#   bench/ordered.sh [runs=5] [events=20000] [resource counts="1000 10"]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-5}; events=${2:-20000}; counts=${3:-1000 10}
port=${BENCH_HTTP_PORT:-18200}

bench_start_cluster "webhook.enabled = off" "webhook.max_in_flight = 64" "webhook.workers = 1"
bench_start_nginx "$port"
bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
SELECT webhook.create_hook(webhook.create_transport('nginx', 'http://127.0.0.1:$port',
                                                    max_in_flight => 64),
                           '{ORDER_*}', path => '/hook');
SQL

# the rate (req/s) of a batch of $events events over $2 resources, the
# hook's ordered being $1
deliver() {
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    bench_psql -c "SELECT webhook.update_hook(h.id, ordered => '$1') FROM webhook.hook h" \
        -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt" \
        -c "SELECT count(webhook.emit('ORDER_UPDATED', jsonb_build_object('orderId', g % $2, 'n', g),
                                      resource => 'order', resource_id => (g % $2)::text))
              FROM generate_series(1, $events) g" >/dev/null
    bench_drain_rate "$events"
}

for i in $(seq "$runs"); do
    echo "none $(deliver none 1000)" | tee -a "$BENCH_DIR/results"
    for r in $counts; do
        echo "resource$r $(deliver resource "$r")" | tee -a "$BENCH_DIR/results"
    done
done

base=$(awk '$1=="none" {print $2}' "$BENCH_DIR/results" | median)
line="median req/s: ordered none $base"
for r in $counts; do
    m=$(awk -v k="resource$r" '$1==k {print $2}' "$BENCH_DIR/results" | median)
    line="$line; ordered resource, $r resources $m ($(echo "$m $base" | awk '{printf "%.2f", $1/$2}'))"
done
echo "$line"
