# A throwaway PostgreSQL cluster with the extension preloaded, for the demos,
# the benchmarks and test/check; run as the postgres user when started by root.  It is
# stopped and removed when the sourcing script exits.
# Usage: source test/cluster.sh; bench_start_cluster [conf lines]; bench_psql ...
set -euo pipefail

BENCH_BIN=$(pg_config --bindir)
BENCH_DIR=$(mktemp -d /tmp/webhook-bench.XXXXXX)
BENCH_PORT=${BENCH_PORT:-55432}

as_pg() {
    # from /: the caller's directory (root's home, say) may be closed to postgres
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

bench_start_cluster() {
    trap bench_stop_cluster EXIT
    if [ "$(id -u)" = 0 ]; then chown postgres: "$BENCH_DIR"; fi
    as_pg "$BENCH_BIN/initdb" -D "$BENCH_DIR/data" --auth=trust >/dev/null
    as_pg tee -a "$BENCH_DIR/data/postgresql.conf" >/dev/null <<CONF
port = $BENCH_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$BENCH_DIR'
shared_preload_libraries = 'webhook'
webhook.database_name = 'bench'
shared_buffers = '512MB'
max_wal_size = '4GB'
CONF
    printf '%s\n' "$@" | as_pg tee -a "$BENCH_DIR/data/postgresql.conf" >/dev/null
    as_pg "$BENCH_BIN/pg_ctl" -D "$BENCH_DIR/data" -l "$BENCH_DIR/log" -w start >/dev/null ||
        { cat "$BENCH_DIR/log"; return 1; }
    as_pg "$BENCH_BIN/createdb" -h "$BENCH_DIR" -p "$BENCH_PORT" bench
}

bench_stop_cluster() {
    as_pg "$BENCH_BIN/pg_ctl" -D "$BENCH_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$BENCH_DIR"
}

# nginx on 127.0.0.1:$1 answering 204 to every request over kept-alive
# connections; stopped with the cluster.  Call after bench_start_cluster.
# With $2, it writes there a line per request: its arrival (epoch seconds,
# to the millisecond) and its path.
bench_start_nginx() {
    local access_log="access_log off;"
    [ -z "${2:-}" ] || access_log="log_format arrival '\$msec \$uri'; access_log $2 arrival;"
    command -v nginx >/dev/null || apt-get install -y -qq nginx-light >/dev/null
    cat > "$BENCH_DIR/nginx.conf" <<CONF
worker_processes 1;
pid $BENCH_DIR/nginx.pid;
error_log $BENCH_DIR/nginx.err;
events { worker_connections 4096; }
http {
    $access_log
    client_body_temp_path $BENCH_DIR/nginx-body;
    server { listen 127.0.0.1:$1; keepalive_requests 1000000; location / { return 204; } }
}
CONF
    nginx -c "$BENCH_DIR/nginx.conf"
    trap 'kill $(cat "$BENCH_DIR/nginx.pid") 2>/dev/null; bench_stop_cluster' EXIT
}

# The extension, with one hook to the nginx of bench_start_nginx $1: transport
# "nginx" (max_in_flight 64), path /hook, event types ORDER_*.
bench_nginx_hook() {
    bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
SELECT webhook.create_hook(webhook.create_transport('nginx', 'http://127.0.0.1:$1',
                                                    max_in_flight => 64),
                           '{ORDER_*}', path => '/hook');
SQL
}

# The extension, two identical orders tables, orders_plain and
# orders_watched (watched, with one matching hook that signs nothing), and
# $BENCH_DIR/plain.sql and watched.sql: one INSERT each, for pgbench.
bench_orders_tables() {
    bench_psql <<'SQL'
\o /dev/null
CREATE EXTENSION webhook;
CREATE TABLE orders_plain (
    id bigserial PRIMARY KEY, tenant text NOT NULL DEFAULT 'default',
    state text NOT NULL DEFAULT 'created', total numeric(12,2) NOT NULL,
    items jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders_watched (LIKE orders_plain INCLUDING ALL);
SELECT webhook.watch('orders_watched', resource => 'order',
                     tenant_column => 'tenant', state_column => 'state');
SELECT webhook.create_hook(webhook.create_transport('shop', 'http://127.0.0.1:9'),
                           '{ORDER_*}', signature => 'none');
SQL
    for t in plain watched; do
        cat > "$BENCH_DIR/$t.sql" <<SQL
INSERT INTO orders_$t (total, items)
VALUES (random() * 100, '[{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]');
SQL
    done
    chmod a+r "$BENCH_DIR"/*.sql
}

# $1 finished (succeeded) deliveries to the existing hook, with their events
# and attempts, as history; the first $2 of them (default none) 40 days old,
# the others a day old.  Each as the worker leaves a success at the first
# attempt: an attempt naming its event and hook, and no delivery row (where
# attempts name them: 0.5 on), else an attempt of a succeeded delivery row.
# The attempts in the slots of webhook.attempt as the worker would have left
# them, and the events (where they have slots): the old ones in a slot
# that stopped being current 40 days ago, the others in the current one.
# Vacuumed and analysed.
bench_fill_history() {
    bench_psql <<SQL
\o /dev/null
CREATE TEMP TABLE history (id bigint, event_id bigint, hook_id bigint, created_at timestamptz,
                           old boolean);
-- the old events, or the young ones, into the event log's current slot
-- (where it has slots), and their deliveries (to every hook) into history
CREATE FUNCTION pg_temp.events(old boolean) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
    slot smallint := CASE WHEN to_regclass('webhook_internal.event_1') IS NOT NULL
                          THEN webhook_internal.current_log_slot() ELSE 0 END;
BEGIN
    EXECUTE format('INSERT INTO %s (id, tenant, event_type, payload, created_at)'
                   ' SELECT nextval(%L), %L, %L, jsonb_build_object(%L, g), now() - %L::interval'
                   '   FROM generate_series(1, \$1) g',
                   CASE WHEN slot = 0 THEN 'webhook.event'
                        ELSE format('webhook_internal.event_%s', slot) END,
                   'webhook.event_id_seq', 'default', 'ORDER_CREATE', 'n',
                   CASE WHEN old THEN '40 days' ELSE '1 day' END)
      USING CASE WHEN old THEN ${2:-0} ELSE $1 - ${2:-0} END;
    INSERT INTO history
    SELECT nextval('webhook.delivery_id_seq'), e.id, h.id, e.created_at, events.old
      FROM webhook.event e, webhook.hook h
     WHERE e.created_at < now() - interval '1 hour'
       AND (e.created_at < now() - interval '30 days') = events.old;
END
\$\$;
CREATE FUNCTION pg_temp.attempts(old boolean) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
    named boolean := EXISTS (SELECT FROM pg_attribute a
                              WHERE a.attrelid = 'webhook.attempt'::regclass
                                AND a.attname = 'hook_id');
BEGIN
    EXECUTE format('INSERT INTO webhook.attempt (delivery_id, attempt_no, started_at,'
                   '                             duration_ms, url, status_code%s)'
                   ' SELECT x.id, 1, x.created_at, 0.5, %L, 204%s FROM history x'
                   '  WHERE x.old = \$1',
                   CASE WHEN named THEN ', event_id, hook_id' ELSE '' END,
                   'http://127.0.0.1/hook',
                   CASE WHEN named THEN ', x.event_id, x.hook_id' ELSE '' END) USING old;
    IF NOT named THEN
        INSERT INTO webhook.delivery (id, event_id, hook_id, state, attempts, last_status,
                                      next_attempt_at, created_at, finished_at)
        SELECT x.id, x.event_id, x.hook_id, 'succeeded', 1, 204, x.created_at, x.created_at,
               x.created_at
          FROM history x WHERE x.old = attempts.old;
    END IF;
END
\$\$;
SELECT pg_temp.events(true);
SELECT pg_temp.attempts(true);
DO \$\$
BEGIN
    IF to_regclass('webhook_internal.log_slot') IS NOT NULL THEN
        UPDATE webhook_internal.log_slot
           SET current_from = now() - interval '41 days', current_until = now() - interval '40 days'
         WHERE slot = webhook_internal.current_log_slot();
        UPDATE webhook_internal.log_slot
           SET current_from = now() - interval '40 days', current_until = NULL
         WHERE slot = (SELECT (s.slot + 1) % 4 FROM webhook_internal.log_slot s
                        WHERE s.current_until = now() - interval '40 days');
    END IF;
END
\$\$;
SELECT pg_temp.events(false);
SELECT pg_temp.attempts(false);
VACUUM ANALYZE webhook.event, webhook.delivery, webhook.attempt;
SQL
}

# SQL: the deliveries left to make and send, condition $1 on the delivery
# rows d, plus one for each hook whose cursor has not read all of the log
# (sending was paused, and the worker reads it only when it sends): the
# claim's four index reads (src/queue.c, FRESH), a row each at most
bench_left_sql() {
    local arm="SELECT FROM webhook.event e WHERE e.tenant = t.tenant AND e.txid IS NOT NULL
                 AND c.hook_id = ANY (e.hook_ids) AND"
    local key="(e.txid, e.id) > (coalesce(c.last_txid, '0'), coalesce(c.last_id, 0))
                 AND pg_visible_in_snapshot(e.txid, c.hi)"
    echo "SELECT (SELECT count(*) FROM webhook.delivery d WHERE $1)
                 + (SELECT count(*) FROM webhook_internal.cursor c
                      JOIN webhook.hook h ON h.id = c.hook_id
                      JOIN webhook.transport t ON t.id = h.transport_id
                     WHERE EXISTS ($arm e.txid = ANY (ARRAY(SELECT pg_snapshot_xip(c.lo))) AND $key)
                        OR EXISTS ($arm e.txid >= pg_snapshot_xmax(c.lo)
                                        AND e.txid < pg_snapshot_xmax(c.hi) AND $key LIMIT 1)
                        OR EXISTS ($arm e.txid = ANY (ARRAY(SELECT pg_snapshot_xip(c.hi))))
                        OR EXISTS ($arm e.txid >= pg_snapshot_xmax(c.hi) LIMIT 1))"
}

# The rate (req/s) of one batch of $1 ORDER_CREATE events, queued while
# sending is paused, from the moment sending resumes until none is left.
bench_batch_rate() {
    bench_psql -c "ALTER SYSTEM SET webhook.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    bench_psql -c "SELECT count(webhook.emit('ORDER_CREATE', jsonb_build_object('n', g)))
                     FROM generate_series(1, $1) g" >/dev/null
    bench_drain_rate "$1"
}

# With sending paused and $1 events queued: resume sending and print the
# rate (req/s) at which they are delivered, waiting until none is left, or
# two minutes at most (the rate of those sent then, and a word on stderr).
# It counts the hooks' successes (webhook.hook_metrics, a row per hook),
# every nginx answer being a 204: polling the deliveries left, through the
# cursors' arms of the log (bench_left_sql), cost the worker up to a third
# of a core, and more for an unordered hook than for an ordered one.
bench_drain_rate() {
    local events=$1 start end before sent
    before=$(bench_successes)
    bench_psql -c "CHECKPOINT" -c "ALTER SYSTEM SET webhook.enabled = on" >/dev/null
    start=$(date +%s.%N)
    bench_psql -c "SELECT pg_reload_conf()" >/dev/null
    bench_wait_successes $((before + events)) 120
    end=$(date +%s.%N)
    sent=$(( $(bench_successes) - before ))
    [ "$sent" -ge "$events" ] || echo "($((events - sent)) deliveries left after two minutes)" >&2
    echo "$sent $start $end" | awk '{printf "%.0f", $1 / ($3 - $2)}'
}

# Wait until every hook's successes (webhook.hook_metrics) number at least
# $1, or $2 seconds passed: polled every 10 ms inside one session, each
# look a transaction of its own (one snapshot kept for the whole wait
# would hold back the horizon that the worker's dead rows wait on).  A
# psql started every 50 ms instead, as the benches did until then, took 15
# to 30 % of the rate measured on a 2-core machine: its processes' CPU,
# which is no work of the worker's (docs/performance.md).
bench_wait_successes() {
    bench_psql <<SQL
DO \$\$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '$2 s';
BEGIN
    WHILE clock_timestamp() < deadline LOOP
        EXIT WHEN (SELECT coalesce(sum(m.successes), 0) FROM webhook.hook_metrics m) >= $1;
        COMMIT;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
\$\$;
SQL
}

# The attempts answered 2xx so far, of every hook.
bench_successes() {
    bench_psql -c "SELECT coalesce(sum(m.successes), 0) FROM webhook.hook_metrics m"
}

bench_psql() {
    as_pg "$BENCH_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$BENCH_DIR" -p "$BENCH_PORT" bench "$@"
}

bench_pgbench() {
    as_pg "$BENCH_BIN/pgbench" -h "$BENCH_DIR" -p "$BENCH_PORT" "$@" bench
}

# Raw HTTP to the nginx of bench_start_nginx at URL $1: wrk (1 thread, 16
# connections, 5 s) POSTing the delivery benchmarks' body; prints its rate
# (requests a second).
bench_raw_http() {
    command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
    cat > "$BENCH_DIR/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"type":"ORDER_CREATE","timestamp":"2026-11-23T12:00:00.000Z","data":{"orderId":1,"total":12.5}}'
wrk.headers["Content-Type"] = "application/json"
LUA
    wrk -t1 -c16 -d5s -s "$BENCH_DIR/post.lua" "$1" | awk '/^Requests\/sec/ {printf "%.0f\n", $2}'
}

# bench/curl_ceiling.c, the bare libcurl client, built as $BENCH_DIR/curl_ceiling
bench_build_curl_ceiling() {
    gcc -O2 -Wall -Wextra -o "$BENCH_DIR/curl_ceiling" bench/curl_ceiling.c -lcurl
}

# median of the numbers on stdin
median() {
    sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'
}
