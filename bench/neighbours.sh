#!/usr/bin/env bash
# What another tenant's hooks cost a writer: one-order-per-transaction
# INSERTs into a watched table of tenant "default" (one matching hook), with
# 2 clients, CPU-bound (synchronous_commit off, sending paused), while
# tenant "other" has 1 hook, then N more (50 event-type patterns each), in
# turn in one run.  Then the same inserts (the other tenant with the first
# N hooks) alone, while another session updates the path of one of the
# other tenant's hooks 300 times (update_hook; nothing the trigger reads,
# so no cache is invalidated), and while it toggles the hook instead
# (active false/true, 300 times: every change invalidates every session's
# hook cache), the updates spread over the run.  Prints each run's TPS, the
# medians and their ratios.  Every run starts from an empty queue after a
# CHECKPOINT, and pgbench's new sessions start with an empty hook cache.
#
#   bench/neighbours.sh [runs=5] [seconds=10] [hook counts="20000 100000"]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-5}; secs=${2:-10}; counts=${3:-20000 100000}

bench_start_cluster "webhook.enabled = off" "synchronous_commit = off"
bench_orders_tables
bench_psql -c "SELECT webhook.create_transport('other', 'http://127.0.0.1:9', tenant => 'other')" >/dev/null

# the other tenant's hooks: $1 of them, written directly (the checking
# trigger would take minutes), then one hook more, through the API, that
# the toggling session updates
other_hooks() {
    bench_psql <<SQL
\o /dev/null
DELETE FROM webhook.hook h USING webhook.transport t
 WHERE t.id = h.transport_id AND t.tenant = 'other';
SET session_replication_role = replica;
INSERT INTO webhook.hook (transport_id, path, event_types, signature)
SELECT t.id, '/' || g,
       (SELECT array_agg('INVOICE_' || g || '_' || p) FROM generate_series(1, 50) p),
       'none'
  FROM webhook.transport t, generate_series(1, $1) g WHERE t.tenant = 'other';
RESET session_replication_role;
SELECT webhook.create_hook(t.id, '{INVOICE_*}', signature => 'none')
  FROM webhook.transport t WHERE t.tenant = 'other';
VACUUM ANALYZE webhook.hook;
SQL
}

# TPS of the watched table's inserts for $secs seconds, from an empty queue
run() {
    bench_psql -c "TRUNCATE orders_watched, webhook.event, webhook.delivery, webhook.attempt" \
               -c "CHECKPOINT"
    bench_pgbench -n -c 2 -j 2 -T "$secs" -f "$BENCH_DIR/watched.sql" 2>/dev/null |
        awk '/^tps/ {print $3}'
}

# 300 updates of the other tenant's API-made hook, one a transaction,
# spread over $secs seconds; bounded by their count.  $1 "active": toggles
# (each one invalidates every session's hook cache); "path": the same calls
# of update_hook, which change nothing the trigger reads (no invalidation),
# so that the figures tell the cache's cost from the updating session's own.
update() {
    bench_psql -v secs="$secs" -v what="$1" <<'SQL' >/dev/null
SELECT h.id AS hook FROM webhook.hook h JOIN webhook.transport t ON t.id = h.transport_id
 WHERE t.tenant = 'other' ORDER BY h.id DESC LIMIT 1 \gset
SELECT :secs / 300.0 AS pause \gset
SELECT format('SELECT webhook.update_hook(%s, %s => %L); SELECT pg_sleep(%s)', :hook,
              :'what', CASE :'what' WHEN 'active' THEN (g % 2 = 0)::text ELSE '/' || g END,
              :pause)
  FROM generate_series(1, 300) g \gexec
SQL
}

for i in $(seq "$runs"); do
    for n in 0 $counts; do
        other_hooks "$n"
        echo "hooks$n $(run)" | tee -a "$BENCH_DIR/results"
    done
    # toggling, with the other tenant's 20,000 hooks (the first count)
    first=${counts%% *}
    other_hooks "$first"
    echo "steady $(run)" | tee -a "$BENCH_DIR/results"
    update path & updater=$!
    echo "updated $(run)" | tee -a "$BENCH_DIR/results"
    wait "$updater"
    update active & updater=$!
    echo "toggled $(run)" | tee -a "$BENCH_DIR/results"
    wait "$updater"
done

base=$(awk '$1=="hooks0" {print $2}' "$BENCH_DIR/results" | median)
line="median TPS of tenant default's writer: other tenant with 1 hook $base"
for n in $counts; do
    m=$(awk -v k="hooks$n" '$1==k {print $2}' "$BENCH_DIR/results" | median)
    line="$line; with $n hooks $m ($(echo "$m $base" | awk '{printf "%.2f", $1/$2}'))"
done
echo "$line"
steady=$(awk '$1=="steady" {print $2}' "$BENCH_DIR/results" | median)
updated=$(awk '$1=="updated" {print $2}' "$BENCH_DIR/results" | median)
toggled=$(awk '$1=="toggled" {print $2}' "$BENCH_DIR/results" | median)
echo "median TPS with $first hooks of the other tenant: $steady; while one of them is toggled 300 times: $toggled ($(echo "$toggled $steady" | awk '{printf "%.2f", $1/$2}')); while its path is updated 300 times (no invalidation): $updated ($(echo "$updated $steady" | awk '{printf "%.2f", $1/$2}')); toggled against path updated: $(echo "$toggled $updated" | awk '{printf "%.2f", $1/$2}')"
