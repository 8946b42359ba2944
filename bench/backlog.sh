#!/usr/bin/env bash
# A backlog does not slow other hooks: a hook's delivery rate with an empty
# queue, then with B due deliveries waiting behind a slow transport
# (max_in_flight 1) of another hook.  auto_explain logs, with its plan,
# every statement of the worker that takes longer than 5 ms: the claims
# must not be among them.
#
#   bench/backlog.sh [backlog=1000000] [events=20000] [runs=3]
cd "$(dirname "$0")/.."
source test/cluster.sh
backlog=${1:-1000000}; events=${2:-20000}; runs=${3:-3}
port=${BENCH_HTTP_PORT:-18203}

bench_start_cluster "shared_preload_libraries = 'webhook,auto_explain'" \
    "auto_explain.log_min_duration = '5ms'" "auto_explain.log_nested_statements = on" \
    "webhook.enabled = off"
bench_start_nginx "$port"

bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
SELECT webhook.create_hook(webhook.create_transport('fast', 'http://127.0.0.1:$port'),
                           '{FAST_*}', path => '/fast');
SELECT webhook.create_hook(webhook.create_transport('slow', 'http://127.0.0.1:$port',
                                                    max_in_flight => 1),
                           '{SLOW_*}', path => '/slow');
SQL

fast=$(bench_psql -c "SELECT id FROM webhook.hook WHERE path = '/fast'")

# the fast hook's rate over events deliveries, the queue as it is
fast_rate() {
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    bench_psql -c "DELETE FROM webhook.delivery d WHERE d.hook_id = $fast" >/dev/null
    bench_psql -c "SELECT count(webhook.emit('FAST_CREATE', jsonb_build_object('n', g)))
                     FROM generate_series(1, $events) g" >/dev/null
    bench_psql -c "CHECKPOINT" -c "ALTER SYSTEM SET webhook.enabled = on" >/dev/null
    local start end
    start=$(date +%s.%N)
    bench_psql -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 6000); do
        # through the queue's index: a scan of the backlog would take the cores
        [ "$(bench_psql -c "$(bench_left_sql "d.hook_id = $fast AND d.state IN ('pending', 'failed')")")" = 0 ] &&
            break
        sleep 0.05
    done
    end=$(date +%s.%N)
    echo "$events $start $end" | awk '{printf "%.0f", $1 / ($3 - $2)}'
}

for i in $(seq "$runs"); do
    echo "empty queue: $(fast_rate) req/s" | tee -a "$BENCH_DIR/results"
done

echo "queueing $backlog deliveries behind the slow transport"
bench_psql <<SQL
\o /dev/null
INSERT INTO webhook.event (tenant, event_type, payload)
SELECT 'default', 'SLOW_CREATE', jsonb_build_object('n', g) FROM generate_series(1, $backlog) g;
INSERT INTO webhook.delivery (event_id, hook_id)
SELECT e.id, h.id FROM webhook.event e, webhook.hook h
 WHERE e.event_type = 'SLOW_CREATE' AND h.path = '/slow';
VACUUM ANALYZE webhook.event, webhook.delivery;
SQL
offset=$(stat -c %s "$BENCH_DIR/log")
for i in $(seq "$runs"); do
    echo "$backlog waiting: $(fast_rate) req/s" | tee -a "$BENCH_DIR/results"
done
waiting=$(bench_psql -c "SELECT count(*) FROM webhook.delivery d JOIN webhook.hook h
                           ON h.id = d.hook_id WHERE h.path = '/slow' AND d.state = 'pending'")
slow=$(tail -c +"$offset" "$BENCH_DIR/log" | grep -c "duration: .* ms  plan:" || true)
e=$(awk '$1=="empty" {print $3}' "$BENCH_DIR/results" | median)
b=$(awk '$2=="waiting:" {print $3}' "$BENCH_DIR/results" | median)
echo "median: empty queue $e req/s, with $waiting still waiting $b req/s; ratio $(echo "$b $e" | awk '{printf "%.2f", $1/$2}'); statements of 5 ms or more logged: $slow"
if [ "$slow" != 0 ]; then
    echo "the slowest, with the start of their statements:"
    tail -c +"$offset" "$BENCH_DIR/log" | grep -A 1 "duration: .* ms  plan:" |
        awk '/duration:/ {d = $0; sub(/.*duration: /, "", d); sub(/ ms.*/, "", d)}
             /Query Text:/ {q = $0; sub(/.*Query Text: */, "", q); print d " ms: " substr(q, 1, 70)}' |
        sort -g -r | head -10
    tail -c +"$offset" "$BENCH_DIR/log" > "${BENCH_LOG_COPY:-/dev/null}"
fi
