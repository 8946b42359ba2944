#!/usr/bin/env bash
# ALTER EXTENSION webhook UPDATE from 0.4 over a long attempt log: N
# attempts (each with a URL, response headers and a short body) in 0.4's
# webhook.attempt, which the update makes slot 0 of the partitioned table
# (src/sql/migrations/0.4--0.5.sql: one read of it, no row written).  The
# update's duration, and the longest an insert into webhook.event (what
# the capture trigger writes) took meanwhile: pgbench inserting 50 a
# second from before the update to after it, its per-transaction log read.
#
#   bench/update.sh [attempts=5000000]
cd "$(dirname "$0")/.."
source test/cluster.sh
attempts=${1:-5000000}

# the workers of this library wait while the catalog is 0.4's
bench_start_cluster "webhook.enabled = off"
bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook VERSION '0.4';
INSERT INTO webhook.attempt (delivery_id, attempt_no, started_at, duration_ms, url, status_code,
                             response_headers, response_body)
SELECT g, 1, now() - interval '1 day' + g * interval '1 ms', 12.5,
       'https://shop.example.com/hooks/orders', 200,
       '{"content-type": "application/json", "date": "Thu, 03 Dec 2026 19:00:00 GMT", "server": "nginx"}',
       '{"ok": true, "received": "' || md5(g::text) || '"}'
  FROM generate_series(1, $attempts) g;
VACUUM ANALYZE webhook.attempt;
CHECKPOINT;
SQL
echo "0.4, $attempts attempts: $(bench_psql -c "SELECT pg_size_pretty(pg_total_relation_size('webhook.attempt'))")"

cat > "$BENCH_DIR/insert.sql" <<'SQL'
INSERT INTO webhook.event (event_type, payload) VALUES ('ORDER_CREATE', '{"n": 1}');
SQL
chmod a+r "$BENCH_DIR/insert.sql"
bench_pgbench -n -f "$BENCH_DIR/insert.sql" -R 50 -T 12 -l --log-prefix="$BENCH_DIR/latency" \
    >/dev/null 2>&1 &
writer=$!
sleep 3
start=$(date +%s.%N)
bench_psql -c "ALTER EXTENSION webhook UPDATE"
end=$(date +%s.%N)
wait "$writer"
echo "update: $(echo "$start $end" | awk '{printf "%.1f", $2 - $1}') s;" \
     "slot 0: $(bench_psql -c "SELECT count(*) FROM webhook_internal.attempt_0") attempts"
# pgbench's log: client, transaction, latency (us), ...
echo "inserts into webhook.event meanwhile: $(cat "$BENCH_DIR"/latency.* | wc -l)," \
     "longest $(cat "$BENCH_DIR"/latency.* | sort -k3 -n | tail -1 |
                awk '{printf "%.0f", $3 / 1000}') ms"
