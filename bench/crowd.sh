#!/usr/bin/env bash
# What a tenant's many busy hooks cost another tenant's one hook: the rate
# (req/s) at which one worker delivers $events queued events of tenant
# "lone" (one transport, one hook), alone and then beside a backlog of
# tenant "crowd" (one transport, N hooks, each subscribed to every event
# of the crowd, which has as many events as it takes for N hooks to have
# twice the lone's deliveries), for each N asked; every request answered
# 204 by a local nginx.  The worker shares its claims between the tenants
# with work, so the lone hook's fair rate beside the crowd is about half
# its rate alone; less means the crowd's hooks cost the worker more than
# the requests they were given.
#
# With "replay", the crowd's events are first delivered, then replayed to
# each of its hooks (webhook.replay()): its backlog is of due deliveries,
# rows of webhook.delivery, instead of events its hooks' cursors have not
# read.
#
#   bench/crowd.sh [runs=3] [events=10000] [hook counts="10 100 1000"] [log|replay]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-3}; events=${2:-10000}; counts=${3:-10 100 1000}; backlog=${4:-log}
port=${BENCH_HTTP_PORT:-18200}

bench_start_cluster "webhook.enabled = off"
bench_start_nginx "$port"
bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
SELECT webhook.create_hook(webhook.create_transport('lone', 'http://127.0.0.1:$port',
                                                    tenant => 'lone'),
                           '{ORDER_*}', path => '/lone', signature => 'none');
SELECT webhook.create_transport('crowd', 'http://127.0.0.1:$port', tenant => 'crowd');
SQL

# the crowd's hooks: $1 of them
crowd_hooks() {
    bench_psql <<SQL
\o /dev/null
SELECT webhook.delete_hook(h.id) FROM webhook.hook h JOIN webhook.transport t ON t.id = h.transport_id
 WHERE t.tenant = 'crowd';
SELECT webhook.create_hook(t.id, '{INVOICE_*}', path => '/crowd/' || g, signature => 'none')
  FROM webhook.transport t, generate_series(1, $1) g WHERE t.name = 'crowd';
SQL
}

# the lone hook's rate with $1 crowd events queued (0: alone)
run() {
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    bench_psql -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt" \
        -c "SELECT count(webhook.emit('INVOICE_PAID', jsonb_build_object('n', g), tenant => 'crowd'))
              FROM generate_series(1, $1) g" >/dev/null
    if [ "$backlog" = replay ] && [ "$1" -gt 0 ]; then
        bench_psql -c "ALTER SYSTEM SET webhook.enabled = on" -c "SELECT pg_reload_conf()" >/dev/null
        local until=$((SECONDS + 300))
        while [ "$(bench_psql -c "SELECT count(*) FROM webhook.attempt WHERE status_code = 204")" -lt \
                "$(bench_psql -c "SELECT $1 * count(*) FROM webhook.hook WHERE path LIKE '/crowd/%'")" ] &&
              [ "$SECONDS" -lt "$until" ]; do
            sleep 0.2
        done
        bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" \
            -c "SELECT count(webhook.replay(id, '-infinity')) FROM webhook.hook
                 WHERE path LIKE '/crowd/%'" -c "TRUNCATE webhook.attempt" >/dev/null
    fi
    bench_psql -c "SELECT count(webhook.emit('ORDER_CREATE', jsonb_build_object('n', g), tenant => 'lone'))
              FROM generate_series(1, $events) g" >/dev/null
    local lone="SELECT count(*) FROM webhook.attempt a JOIN webhook.hook h ON h.id = a.hook_id
                 WHERE h.path = '/lone' AND a.status_code = 204"
    bench_psql -c "CHECKPOINT" -c "ALTER SYSTEM SET webhook.enabled = on" >/dev/null
    local start end sent until=$((SECONDS + 120))
    start=$(date +%s.%N)
    bench_psql -c "SELECT pg_reload_conf()" >/dev/null
    while :; do
        sent=$(bench_psql -c "$lone")
        [ "$sent" -ge "$events" ] || [ "$SECONDS" -ge "$until" ] && break
        sleep 0.05
    done
    end=$(date +%s.%N)
    echo "$sent $start $end" | awk '{printf "%.0f", $1 / ($3 - $2)}'
}

for n in $counts; do
    crowd_hooks "$n"
    # the runs alone first: a crowd run's hooks stay on the worker's list
    # for 10 s with their backlog truncated, marked as having more to read
    for i in $(seq "$runs"); do
        echo "alone $n $(run 0)" | tee -a "$BENCH_DIR/results"
    done
    for i in $(seq "$runs"); do
        echo "crowd $n $(run $(( (2 * events + n - 1) / n )))" | tee -a "$BENCH_DIR/results"
    done
    a=$(awk -v n="$n" '$1=="alone" && $2==n {print $3}' "$BENCH_DIR/results" | median)
    c=$(awk -v n="$n" '$1=="crowd" && $2==n {print $3}' "$BENCH_DIR/results" | median)
    echo "median: $n crowd hooks ($backlog): the lone hook alone $a req/s, beside them $c; ratio $(echo "$c $a" | awk '{printf "%.2f", $1/$2}')"
done
