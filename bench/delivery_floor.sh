#!/usr/bin/env bash
# The most one worker could deliver, whatever its design: the least work a
# request costs outside PostgreSQL and inside it, each measured alone.
#
#   outside  a bare libcurl multi client (bench/curl_ceiling.c: kept-alive
#            connections, 64 in flight, no signing, no database) to a local
#            nginx: its CPU time (user and system, the kernel's TCP with it)
#            per request, and its rate
#   inside   what any log-shaped delivery must do in PostgreSQL for a
#            request, in its cheapest form, one backend, its CPU time per
#            row (/proc): read the event from the log by the cursors' index
#            and render its body (payload::text), in one statement for all;
#            append its attempt row to webhook.attempt, with the row's index
#            entries, in one COPY for all (PostgreSQL's fastest way to add
#            rows).  No statement per batch, no claim, no commit per batch,
#            no signing: a floor, not an estimate.
#
# One core doing both for each request delivers at most
# 1 / (outside + inside) requests a second, and never more than the bare
# client; PostgreSQL is then at least inside / (outside + inside) of it.
# Printed against raw HTTP (wrk, 1 thread, 16 connections) to the same nginx
# in the same run, and against the bare client.
#
#   bench/delivery_floor.sh [runs=3] [requests=200000]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-3}; requests=${2:-200000}
port=${BENCH_HTTP_PORT:-18240}

bench_start_cluster "webhook.enabled = off"
bench_start_nginx "$port"
bench_nginx_hook "$port"
bench_build_curl_ceiling
url="http://127.0.0.1:$port/hook"
# the events, as the writers log them, and their attempts as a worker
# records a first success, in a file for COPY
bench_psql -v n="$requests" -v file="$BENCH_DIR/attempts.copy" <<'SQL'
\o /dev/null
SELECT count(webhook.emit('ORDER_CREATED', jsonb_build_object('orderId', g, 'total', 12.5,
                                                              'items', '[{"sku": "A-1", "qty": 2}]'::jsonb),
                          resource => 'order', resource_id => g::text))
  FROM generate_series(1, :n) g;
COPY (SELECT e.id, 1, now(), 1.2::float8, 'http://127.0.0.1/hook', 204, NULL::jsonb,
             NULL::text, NULL::text, webhook_internal.current_log_slot(), e.id, h.id
        FROM webhook.event e, webhook.hook h)
  TO :'file' (FORMAT binary);
VACUUM ANALYZE webhook.event;
SQL
ticks=$(getconf CLK_TCK)
# $1: SQL run by one backend; prints its CPU time in microseconds per request
backend_cpu() {
    bench_psql -v sql="$1" -v ticks="$ticks" -v n="$requests" <<'SQL'
\set cpu '(SELECT f[14]::bigint + f[15]::bigint FROM string_to_array(pg_read_file(''/proc/self/stat''), '' '') f)'
SET enable_seqscan = off; SET enable_sort = off;
SELECT :cpu AS cpu0 \gset
\o /dev/null
:sql;
\o
SELECT round((:cpu - :cpu0) * 1e6 / :ticks / :n, 2);
SQL
}

for _ in $(seq "$runs"); do
    /usr/bin/time -f "%U %S" -o "$BENCH_DIR/time" "$BENCH_DIR/curl_ceiling" "$url" "$requests" 64 |
        awk '{print "curl", $2}' | tee -a "$BENCH_DIR/results"
    awk -v n="$requests" '{printf "curl_us %.2f\n", ($1 + $2) / n * 1e6}' "$BENCH_DIR/time" |
        tee -a "$BENCH_DIR/results"
    echo "read_us $(backend_cpu "SELECT sum(length(e.payload::text) + length(e.uid::text)
                                          + length(e.event_type))
                                   FROM webhook.event e
                                  WHERE e.tenant = 'default' AND e.txid IS NOT NULL")" |
        tee -a "$BENCH_DIR/results"
    bench_psql -c "TRUNCATE webhook.attempt" -c "CHECKPOINT"
    echo "write_us $(backend_cpu "COPY webhook.attempt (delivery_id, attempt_no, started_at,
                                      duration_ms, url, status_code, response_headers,
                                      response_body, error, slot, event_id, hook_id)
                                 FROM '$BENCH_DIR/attempts.copy' (FORMAT binary)")" |
        tee -a "$BENCH_DIR/results"
    echo "raw $(bench_raw_http "$url")" | tee -a "$BENCH_DIR/results"
done
attempts=$(bench_psql -c "SELECT count(*) FROM webhook.attempt")
[ "$attempts" = "$requests" ] || { echo "COPY added $attempts attempts, not $requests" >&2; exit 1; }
for k in curl curl_us read_us write_us raw; do
    declare "$k=$(awk -v k=$k '$1==k {print $2}' "$BENCH_DIR/results" | median)"
done
echo "$curl $curl_us $read_us $write_us $raw" | awk '{
    inside = $3 + $4; best = 1e6 / ($2 + inside); if (best > $1) best = $1
    printf "median: raw HTTP %d req/s; bare libcurl %d req/s (%.2f of raw), %.1f µs of CPU a request;\n", $5, $1, $1 / $5, $2
    printf "PostgreSQL at least %.1f µs a request (read %.1f, attempt row %.1f);\n", inside, $3, $4
    printf "one worker at most %d req/s = %.2f of raw, %.2f of the bare client; PostgreSQL at least %.0f %% of its CPU\n", best, best / $5, best / $1, 100 * inside / ($2 + inside)
}'
