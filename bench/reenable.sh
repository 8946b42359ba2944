#!/usr/bin/env bash
# A hook re-enabled after N events: how long the re-enabling takes, how
# fast the hook catches up, and what its catch-up leaves another tenant.
# Two tenants, "a" and "b", each with one signed (Standard Webhooks) hook
# of ORDER_* on its own transport (64 in flight) to the same local nginx
# that answers 204, sent by one worker, 64 in flight (as
# bench/delivery.sh); the worker shares itself between tenants that both
# hold requests.  In each run, from an empty queue after a CHECKPOINT:
#   - alone: a batch of M events of b, then one of a (its hook active),
#     each queued while sending is paused and timed until none is left
#     (bench_drain_rate): each hook's rate alone; then N events of a, its
#     hook active, timed the same way (a batch of the catch-up's size,
#     queued as usual);
#   - batch: a's hook disabled (update_hook(a, active => false)), N events
#     of a emitted (logged with a's hook, whose cursor stays where it
#     stopped), then update_hook(a, active => true) timed, with its commit,
#     as the client sees it (it writes the hook row only: the worker reads
#     on from the cursor); then M events of b queued; all this while
#     sending is paused.  Sending resumed, each hook is timed
#     until it has sent them all (its successes in webhook.hook_metrics):
#     a's catch-up rate (N over that time) and b's rate beside it (M over
#     its time);
#   - paced: b's events written at a steady P a second (pgbench --rate, one
#     event a transaction) for S seconds, once alone, once from the moment
#     sending resumes on a's N missed events (re-enabled as above, that
#     re-enabling timed too): b's deliveries that were sent, a second, and
#     the delay from each event's transaction (its created_at; a delivery
#     read from the log gets its row when its attempt is recorded) to its
#     request's start
#     (median and 99th percentile) -- the case of a hook catching up while
#     the others go on at their usual pace.
# Every wait is bounded: a batch of M alone two minutes (the rate is then
# of those sent), one of N and a catch-up 120 s plus a second for every
# 2,000 events of N (the rate is then N over that bound, less than it
# was); either says so on stderr.  Every batch of N is checked to be sent
# each event exactly once.
# Prints each figure, the medians, and the ratios: a's catch-up rate to a's
# rate alone (on M events, and on N), b's rate beside the catch-up to b's
# alone (batch: the worker is CPU-bound and shared between the two tenants,
# so about half is what sharing gives), and paced b's sent rate and delays
# beside the catch-up against alone.
#
#   bench/reenable.sh [runs=3] [N=200000] [M=20000] [P=1000] [S=10]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-3}; missed=${2:-200000}; batch=${3:-20000}; pace=${4:-1000}; secs=${5:-10}
port=${BENCH_HTTP_PORT:-18200}
catchup_limit=$((120 + missed / 2000))

bench_start_cluster "webhook.enabled = off" "webhook.max_in_flight = 64" \
    "webhook.workers = 1" "synchronous_commit = off"
bench_start_nginx "$port"
bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
SELECT webhook.create_hook(webhook.create_transport('nginx-' || t, 'http://127.0.0.1:$port',
                                                    tenant => t, max_in_flight => 64),
                           '{ORDER_*}', path => '/' || t)
  FROM unnest('{a,b}'::text[]) t;
SQL
hook_a=$(bench_psql -c "SELECT h.id FROM webhook.hook h JOIN webhook.transport t
                         ON t.id = h.transport_id WHERE t.tenant = 'a'")
hook_b=$(bench_psql -c "SELECT h.id FROM webhook.hook h JOIN webhook.transport t
                         ON t.id = h.transport_id WHERE t.tenant = 'b'")
cat > "$BENCH_DIR/paced.sql" <<'SQL'
SELECT webhook.emit('ORDER_CREATE', '{"orderId": 1, "total": 12.5}', tenant => 'b');
SQL
chmod a+r "$BENCH_DIR/paced.sql"

pause() {
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
}

resume() {
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = on" -c "SELECT pg_reload_conf()" >/dev/null
}

# $2 events of tenant $1
emit() {
    bench_psql -c "SELECT count(webhook.emit('ORDER_CREATE', jsonb_build_object('orderId', g, 'total', 12.5),
                                             tenant => '$1'))
                     FROM generate_series(1, $2) g" >/dev/null
}

# the successes hook $1 has had
successes() {
    bench_psql -c "SELECT coalesce(sum(m.successes), 0) FROM webhook.hook_metrics m WHERE m.hook_id = $1"
}

# the rate (req/s) of a batch of $batch events of tenant $1 alone
alone() {
    pause
    bench_psql -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt"
    emit "$1" "$batch"
    bench_drain_rate "$batch"
}

# the rate (req/s) of $missed events of tenant a alone, its hook active
# when they are written (the catch-up's own size, queued as usual)
alone_missed() {
    local a0 start t
    pause
    bench_psql -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt"
    emit a "$missed"
    bench_psql -c "CHECKPOINT"
    a0=$(successes "$hook_a")
    start=$(date +%s.%N)
    resume
    t=$(wait_sent "$start" "$hook_a" "$missed" "$a0" 0 0 0)
    check_once
    echo "$missed ${t% *}" | awk '{printf "%.0f", $1 / $2}'
}

# From an empty queue, sending paused: a's hook disabled, $missed events of
# a, and the re-enabling timed (milliseconds, printed)
reenable() {
    local start end
    pause
    bench_psql -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt" \
               -c "SELECT webhook.update_hook($hook_a, active => false)" >/dev/null
    emit a "$missed"
    bench_psql -c "CHECKPOINT"
    start=$(date +%s.%N)
    bench_psql -c "SELECT webhook.update_hook($hook_a, active => true)" >/dev/null
    end=$(date +%s.%N)
    echo "$start $end" | awk '{printf "%.0f", 1000 * ($2 - $1)}'
}

# Sending resumed at $1 (epoch seconds): wait until hook $2 has had $3 more
# successes than $4 and hook $5 $6 more than $7 ($5 may be 0: none), for
# $catchup_limit seconds at most; print the seconds each took (the limit
# for one that did not, with a word on stderr)
wait_sent() {
    local start=$1 t2="" t5="" until=$((SECONDS + catchup_limit)) now s
    [ "$5" != 0 ] || t5=0
    while :; do
        now=$(date +%s.%N)
        s=$(bench_psql -c "SELECT string_agg(coalesce(m.successes, 0)::text, ' ' ORDER BY h.id = $2 DESC)
                             FROM webhook.hook h LEFT JOIN webhook.hook_metrics m ON m.hook_id = h.id
                            WHERE h.id IN ($2, $5)")
        [ -n "$t2" ] || [ "${s%% *}" -lt $(($4 + $3)) ] ||
            t2=$(echo "$now $start" | awk '{printf "%.2f", $1 - $2}')
        [ -n "$t5" ] || [ "${s##* }" -lt $(($7 + $6)) ] ||
            t5=$(echo "$now $start" | awk '{printf "%.2f", $1 - $2}')
        { [ -n "$t2" ] && [ -n "$t5" ]; } || [ "$SECONDS" -ge "$until" ] && break
        sleep 0.1
    done
    [ -n "$t2" ] && [ -n "$t5" ] ||
        echo "(not all sent after $catchup_limit s: successes $s)" >&2
    echo "${t2:-$catchup_limit} ${t5:-$catchup_limit}"
}

# a's missed events each sent once (a word on stderr otherwise)
check_once() {
    local got
    got=$(bench_psql -c "SELECT count(*) || ' ' || count(DISTINCT event_id) FROM webhook.deliveries
                          WHERE hook_id = $hook_a AND state = 'succeeded'")
    [ "$got" = "$missed $missed" ] ||
        echo "(a's hook: $got succeeded deliveries and distinct events, not $missed)" >&2
}

# a catches up on $missed while $batch events of b are sent
beside_batch() {
    local took a0 b0 start t
    took=$(reenable)
    emit b "$batch"
    a0=$(successes "$hook_a"); b0=$(successes "$hook_b")
    start=$(date +%s.%N)
    resume
    t=$(wait_sent "$start" "$hook_a" "$missed" "$a0" "$hook_b" "$batch" "$b0")
    check_once
    echo "reenable_ms $took" >> "$BENCH_DIR/results"
    echo "catchup $(echo "$missed ${t% *}" | awk '{printf "%.0f", $1 / $2}')" >> "$BENCH_DIR/results"
    echo "b_beside $(echo "$batch ${t#* }" | awk '{printf "%.0f", $1 / $2}')" >> "$BENCH_DIR/results"
    echo "batch: re-enabling ${took} ms; a caught up on $missed in ${t% *} s," \
         "b sent $batch in ${t#* } s"
}

# paced b for $secs seconds from an empty queue, alone ($1 = alone) or from
# the moment sending resumes on a's $missed missed deliveries ($1 = beside):
# b's sent rate, delays p50 and p99 (ms)
paced() {
    local took="" a0 start t=""
    if [ "$1" = alone ]; then
        pause
        bench_psql -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt" -c "CHECKPOINT"
    else
        took=$(reenable)
    fi
    a0=$(successes "$hook_a")
    start=$(date +%s.%N)
    resume
    bench_pgbench -n -c 1 -j 1 --rate "$pace" -T "$secs" -f "$BENCH_DIR/paced.sql" >/dev/null 2>&1
    if [ "$1" = beside ]; then
        t=$(wait_sent "$start" "$hook_a" "$missed" "$a0" 0 0 0)
        check_once
        echo "reenable_ms $took" >> "$BENCH_DIR/results"
        echo "catchup_paced $(echo "$missed ${t% *}" | awk '{printf "%.0f", $1 / $2}')" >> "$BENCH_DIR/results"
    fi
    # b's last paced events: until none of them is left, bounded as above
    local until=$((SECONDS + catchup_limit))
    while [ "$(bench_psql -c "SELECT count(*) FROM webhook.delivery
                               WHERE hook_id = $hook_b AND state IN ('pending', 'failed')")" != 0 ] &&
          [ "$SECONDS" -lt "$until" ]; do
        sleep 0.1
    done
    # b's events written a second; its requests started in the paced
    # seconds, a second; the delays from event to request
    bench_psql -c "SELECT round(count(*) / $secs.0) || ' ' ||
                          round(count(*) FILTER (WHERE x.started_at < to_timestamp($start)
                                                     + interval '$secs s') / $secs.0) || ' ' ||
                          round((1000 * extract(epoch FROM percentile_cont(0.5)
                              WITHIN GROUP (ORDER BY x.started_at - e.created_at)))::numeric, 1) || ' ' ||
                          round((1000 * extract(epoch FROM percentile_cont(0.99)
                              WITHIN GROUP (ORDER BY x.started_at - e.created_at)))::numeric, 1)
                     FROM webhook.attempt x JOIN webhook.deliveries d ON d.id = x.delivery_id
                     JOIN webhook.event e ON e.id = d.event_id
                    WHERE d.hook_id = $hook_b" |
    while read -r offered rate p50 p99; do
        echo "paced_${1}_sent $rate" >> "$BENCH_DIR/results"
        echo "paced_${1}_p50 $p50" >> "$BENCH_DIR/results"
        echo "paced_${1}_p99 $p99" >> "$BENCH_DIR/results"
        echo "paced $1: ${took:+re-enabling $took ms; ${t% *} s to catch up on $missed; }b written" \
             "$offered/s, sent $rate/s in the $secs s, delay p50 $p50 ms, p99 $p99 ms"
    done
}

for i in $(seq "$runs"); do
    r=$(alone b); echo "b_alone $r" >> "$BENCH_DIR/results"; echo "alone: b $r req/s"
    r=$(alone a); echo "a_alone $r" >> "$BENCH_DIR/results"; echo "alone: a $r req/s"
    r=$(alone_missed); echo "a_alone_n $r" >> "$BENCH_DIR/results"; echo "alone: a, $missed events, $r req/s"
    beside_batch
    paced alone
    paced beside
done

m() { awk -v k="$1" '$1==k {print $2}' "$BENCH_DIR/results" | median; }
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1/$2}'; }
echo "median re-enabling of $missed missed events: $(m reenable_ms) ms"
echo "median req/s: a alone $(m a_alone), a alone on $missed events $(m a_alone_n);" \
     "a catching up beside b's batch $(m catchup) ($(ratio "$(m catchup)" "$(m a_alone)")," \
     "$(ratio "$(m catchup)" "$(m a_alone_n)") of the same size), beside paced b $(m catchup_paced)" \
     "($(ratio "$(m catchup_paced)" "$(m a_alone)"), $(ratio "$(m catchup_paced)" "$(m a_alone_n)"))"
echo "median req/s: b alone $(m b_alone), b's batch beside a's catch-up $(m b_beside)" \
     "($(ratio "$(m b_beside)" "$(m b_alone)"))"
echo "median paced b ($pace/s): sent $(m paced_alone_sent)/s alone, $(m paced_beside_sent)/s beside" \
     "the catch-up ($(ratio "$(m paced_beside_sent)" "$(m paced_alone_sent)")); delay p50" \
     "$(m paced_alone_p50) -> $(m paced_beside_p50) ms, p99 $(m paced_alone_p99) -> $(m paced_beside_p99) ms"
