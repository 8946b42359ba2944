#!/usr/bin/env bash
# What a watched INSERT's cost is made of, CPU-bound (synchronous_commit =
# off, 2 clients, sending paused): one-order INSERTs into identical tables,
# alternated in one run, each a ratio to the unwatched table's:
#   plain    no trigger
#   noop     an AFTER ROW trigger in C that does nothing (bench/floor_triggers.c):
#            the trigger machinery alone
#   append   an AFTER ROW trigger in C that appends the row as row_to_json()
#            text to an unindexed table (bench/floor_triggers.c): the least
#            a log written in the writer's transaction holds
#   pgq      PgQ's own trigger (pgq.logutriga into a pgq queue)
#   bare     ours, with the event log's current slot stripped of its indexes:
#            the event row alone (its jsonb, heap tuple and WAL)
#   watched  ours, as shipped: the event row and its index entries
# Every run starts from empty tables after a CHECKPOINT, as bench/capture.sh.
#
#   bench/writer_floor.sh [runs=5] [seconds=10]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-5}; secs=${2:-10}

bench_start_cluster "webhook.enabled = off" "synchronous_commit = off"
bench_orders_tables
[ -f "$(pg_config --sharedir)/extension/pgq.control" ] ||
    apt-get install -y -qq postgresql-15-pgq3 >/dev/null
gcc -O2 -Wall -Wextra -Wno-unused-parameter -fPIC -shared -I"$(pg_config --includedir-server)" \
    -o "$BENCH_DIR/floor_triggers.so" bench/floor_triggers.c
chmod a+r "$BENCH_DIR/floor_triggers.so"
bench_psql -v lib="$BENCH_DIR/floor_triggers.so" >/dev/null <<'SQL'
CREATE EXTENSION pgq;
SELECT pgq.create_queue('orders');
CREATE TABLE orders_pgq (LIKE orders_plain INCLUDING ALL);
CREATE TRIGGER orders_pgq AFTER INSERT OR UPDATE OR DELETE ON orders_pgq
    FOR EACH ROW EXECUTE FUNCTION pgq.logutriga('orders');
CREATE FUNCTION noop_trigger() RETURNS trigger LANGUAGE c AS :'lib';
CREATE FUNCTION append_trigger() RETURNS trigger LANGUAGE c AS :'lib';
CREATE TABLE orders_noop (LIKE orders_plain INCLUDING ALL);
CREATE TRIGGER orders_noop AFTER INSERT ON orders_noop
    FOR EACH ROW EXECUTE FUNCTION noop_trigger();
CREATE TABLE orders_append (LIKE orders_plain INCLUDING ALL);
CREATE TABLE append_log (payload text);
CREATE TRIGGER orders_append AFTER INSERT ON orders_append
    FOR EACH ROW EXECUTE FUNCTION append_trigger('public.append_log');
-- the writers write a slot of the event log that inherits webhook.event,
-- as they do three rotations in four
SELECT webhook.prune('0');
SQL
for t in pgq noop append; do
    sed "s/orders_plain/orders_$t/" "$BENCH_DIR/plain.sql" > "$BENCH_DIR/$t.sql"
done
cp "$BENCH_DIR/watched.sql" "$BENCH_DIR/bare.sql"
chmod a+r "$BENCH_DIR"/*.sql
slot=$(bench_psql -c "SELECT 'webhook_internal.event_' || webhook_internal.current_log_slot()")
# the slot's indexes, to drop before a bare run and make again after it
bench_psql -c "SELECT pg_get_indexdef(indexrelid) || ';' FROM pg_index
               WHERE indrelid = '$slot'::regclass AND NOT indisprimary" > "$BENCH_DIR/indexes.sql"
echo "ALTER TABLE $slot ADD PRIMARY KEY (id);" >> "$BENCH_DIR/indexes.sql"
drop_indexes="SELECT format('DROP INDEX %s', indexrelid::regclass) FROM pg_index
              WHERE indrelid = '$slot'::regclass AND NOT indisprimary \\gexec
              SELECT format('ALTER TABLE $slot DROP CONSTRAINT %I', conname) FROM pg_constraint
              WHERE conrelid = '$slot'::regclass AND contype = 'p' \\gexec"

for i in $(seq "$runs"); do
    for t in plain noop append pgq bare watched; do
        bench_psql -c "TRUNCATE orders_plain, orders_watched, orders_pgq, orders_noop, orders_append, append_log,
                                 webhook.event, webhook.delivery, webhook.attempt,
                                 pgq.event_template" >/dev/null
        if [ "$t" = bare ]; then echo "$drop_indexes" | bench_psql >/dev/null; fi
        bench_psql -c "CHECKPOINT" >/dev/null
        tps=$(bench_pgbench -n -c 2 -j 2 -T "$secs" -f "$BENCH_DIR/$t.sql" 2>/dev/null |
              awk '/^tps/ {print $3}')
        if [ "$t" = bare ]; then bench_psql -f "$BENCH_DIR/indexes.sql" >/dev/null; fi
        echo "$t $tps" | tee -a "$BENCH_DIR/results"
    done
done
# the floor's trigger did append: one more order, one more line
appended=$(bench_psql -c "INSERT INTO orders_append (total, items) VALUES (1, '[]')" \
                      -c "SELECT count(*) FROM append_log WHERE payload LIKE '{\"id\":%'")
[ "$appended" = 1 ] || { echo "append_trigger appended $appended rows, not 1" >&2; exit 1; }
plain=$(awk '$1=="plain" {print $2}' "$BENCH_DIR/results" | median)
line="median TPS: plain $plain"
for t in noop append pgq bare watched; do
    m=$(awk -v t=$t '$1==t {print $2}' "$BENCH_DIR/results" | median)
    line="$line, $t $m ($(echo "$m $plain" | awk '{printf "%.2f", $1/$2}') ×)"
done
echo "$line"
