#!/usr/bin/env bash
# Where one worker's time goes while it drains a batch: N events of one hook
# (ordered as asked, over R resources), signed and logged, sent 64 in flight
# to a local nginx that answers 204 (as bench/delivery.sh), with
# pg_stat_statements on.  Prints the drain's rate and, per call, the time
# of the worker's statements: the claim (at a full look; between them, the
# claim of listed logs runs two small ones: the listed hooks and, for the
# positions it does not hold, the stored cursors) and the record (of a
# batch read from the log and all answered with a 2xx, only its hooks'
# counters: its attempt rows are appended without a statement).  With perf
# (Debian's linux-perf) and the rights to use it, the worker is sampled
# through the drain too: the share of its CPU in each object (postgres is
# PostgreSQL; libcurl, libc and the kernel are mostly the requests), and
# in the claim and the record (queue_claim, queue_record, with what
# PostgreSQL does for them).  And the worker's CPU time over the drain
# (/proc), which moves less with the machine's load than the rate does.
# Then, as the baseline of the same run, the bare libcurl client of
# bench/ceiling.sh driven as the worker drives libcurl (its socket
# interface), sending as many requests to the same nginx, 64 in flight,
# sampled alike: the CPU a request of each, in microseconds, by object,
# side by side (what the worker spends beyond the bare client is its
# database work, signing, and the requests' own options and headers).
# Then the bare client driven plainly, and the worker against it, with
# what it could reach at most were its exchange with PostgreSQL free.
# Its figures move with the machine's load: alternate it with another
# build (PATH) to compare two.
#
# With tenants > 1, that many tenants of one transport and hook each
# share the events (unordered).
#
# PROFILE_KEEP=DIR keeps the two profiles there (worker.data, bare.data),
# for perf report; with the extension built by make CURL_SYMBOLS=1, the
# worker's profile names libcurl's own functions (the Makefile says how).
#
#   bench/profile.sh [events=20000] [ordered=none] [resources=1000] [tenants=1]
cd "$(dirname "$0")/.."
source test/cluster.sh
events=${1:-20000}; ordered=${2:-none}; resources=${3:-1000}; tenants=${4:-1}
port=${BENCH_HTTP_PORT:-18210}

bench_start_cluster "webhook.enabled = off" "webhook.max_in_flight = 64" "webhook.workers = 1" \
    "shared_preload_libraries = 'webhook,pg_stat_statements'" "pg_stat_statements.track = all"
bench_start_nginx "$port"
bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook; CREATE EXTENSION pg_stat_statements;
SELECT webhook.create_hook(webhook.create_transport('nginx' || t, 'http://127.0.0.1:$port',
                                                    max_in_flight => 64, tenant => 't' || t),
                           '{ORDER_*}', path => '/hook', ordered => '$ordered')
  FROM generate_series(1, $tenants) t;
SELECT count(webhook.emit('ORDER_UPDATED', jsonb_build_object('orderId', g % $resources, 'n', g),
                          resource => 'order', resource_id => (g % $resources)::text,
                          tenant => 't' || (g % $tenants + 1)))
  FROM generate_series(1, $events) g;
SELECT pg_stat_statements_reset();
SQL

# sample the worker (it runs while sending is paused) until the drain ends
worker=$(bench_psql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'webhook worker'")
perf_pid=
if command -v perf >/dev/null && [ -n "$worker" ]; then
    perf record -q -F 999 -g -p "$worker" -o "$BENCH_DIR/perf.data" -- sleep 130 \
        >/dev/null 2>"$BENCH_DIR/perf.err" &
    perf_pid=$!
fi
# the worker's CPU time (user and system, in clock ticks) so far
worker_ticks() { awk '{print $14 + $15}' "/proc/$worker/stat"; }
ticks=$(worker_ticks)
drain=$(bench_drain_rate "$events")
echo "drain: $drain req/s"
worker_cpu=$(echo "$ticks $(worker_ticks) $(getconf CLK_TCK)" | awk '{printf "%.3f", ($2 - $1) / $3}')
echo "the worker's CPU over the drain: $worker_cpu s"
bench_psql -F ' ' -c "
    SELECT CASE WHEN query LIKE 'WITH RECURSIVE busy%' THEN 'claim'
                WHEN query LIKE 'SELECT CASE WHEN h.id%' THEN 'claim_listed_hooks'
                WHEN query LIKE 'SELECT l.n, x.lo%' THEN 'claim_stored_cursors'
                ELSE 'record' END,
           sum(calls), round((sum(total_exec_time) / sum(calls))::numeric, 3)
      FROM pg_stat_statements
     WHERE query LIKE 'WITH RECURSIVE busy%' OR query LIKE 'WITH input AS%'
        OR query LIKE 'SELECT CASE WHEN h.id%' OR query LIKE 'SELECT l.n, x.lo%'
        OR query LIKE 'WITH r AS MATERIALIZED%'
        OR query LIKE 'WITH b AS MATERIALIZED%'
     GROUP BY 1 ORDER BY 1" |
    while read -r what calls ms; do echo "$what: $calls calls, $ms ms a call"; done

[ -n "$perf_pid" ] || { echo "(perf not run: install linux-perf)"; exit 0; }
kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true
if [ ! -s "$BENCH_DIR/perf.data" ]; then
    echo "(perf could not sample the worker: $(head -1 "$BENCH_DIR/perf.err"))"; exit 0
fi
[ -z "${PROFILE_KEEP:-}" ] || cp "$BENCH_DIR/perf.data" "$PROFILE_KEEP/worker.data"
echo "the worker's CPU, by object:"
perf report -q -i "$BENCH_DIR/perf.data" --no-children --sort dso -g none 2>/dev/null |
    awk '$1 + 0 >= 0.5 {printf "  %-8s %s\n", $1, $2}'
perf script -i "$BENCH_DIR/perf.data" 2>/dev/null | python3 -c '
import sys
# a sample is a header line and its frames, one a line, up to a blank line
samples = claim = record = exchange = 0
frames = []
for line in sys.stdin:
    if line.strip():
        frames.append(line)
        continue
    if frames:
        samples += 1
        claim += any(" queue_claim" in f for f in frames)
        record += any(" queue_record" in f for f in frames)
        exchange += any(" exchange+" in f and "webhook.so" in f for f in frames)
    frames = []
if samples:
    print("  in the claim %.1f%%, in the record %.1f%% (%d samples)"
          % (100 * claim / samples, 100 * record / samples, samples))
    print("  in the exchange with PostgreSQL (the claim, the record, their transaction) %.1f%%"
          % (100 * exchange / samples))
    open(sys.argv[1], "w").write("%f\n" % (exchange / samples))' "$BENCH_DIR/exchange"

# the bare client, the same requests to the same nginx, sampled alike;
# its CPU time (user and system) from time(1)
bench_build_curl_ceiling
perf record -q -F 999 -g -o "$BENCH_DIR/bare.data" -- \
    /usr/bin/time -f "%U %S" -o "$BENCH_DIR/bare.time" \
    "$BENCH_DIR/curl_ceiling" "http://127.0.0.1:$port/hook" "$events" 64 socket \
    > "$BENCH_DIR/bare.out" 2>>"$BENCH_DIR/perf.err" ||
    { echo "(the bare client failed: $(tail -3 "$BENCH_DIR/perf.err"))"; exit 0; }
# (time(1) counts in hundredths of a second: some ±0.5 us a request at 20,000)
[ -z "${PROFILE_KEEP:-}" ] || cp "$BENCH_DIR/bare.data" "$PROFILE_KEEP/bare.data"
bare_cpu=$(tail -1 "$BENCH_DIR/bare.time" | awk '{printf "%.3f", $1 + $2}')
echo "the bare client: $(awk '{print $2}' "$BENCH_DIR/bare.out") req/s, its CPU $bare_cpu s"
# each one's CPU time spread over the objects by its samples' shares
shares() {
    { perf report -q -i "$1" --no-children --sort dso -g none 2>/dev/null || true; } |
        awk -v who="$2" -v cpu="$3" '$1 + 0 > 0 {sub("%", "", $1); print who, $2, $1 / 100 * cpu}'
}
{ shares "$BENCH_DIR/perf.data" worker "$worker_cpu"; shares "$BENCH_DIR/bare.data" bare "$bare_cpu"; } |
    awk -v events="$events" '
        { us[$1, $2] += $3 * 1e6 / events; total[$1] += $3 * 1e6 / events; seen[$2] = 1 }
        END {
            print "CPU a request (us), by object: the worker, and the bare client driven alike"
            for (o in seen)
                if (us["worker", o] >= 0.5 || us["bare", o] >= 0.5)
                    printf "  %-22s %6.1f %6.1f\n", o, us["worker", o], us["bare", o] | "sort -k2,2nr"
            close("sort -k2,2nr")
            printf "  %-22s %6.1f %6.1f\n", "total", total["worker"], total["bare"]
        }'

# The goal's baseline: the bare client driven plainly (as bench/ceiling.sh
# drives it), the same requests, sampled as the worker was over its drain,
# the median of 3 runs (one moves with the machine's load more than the
# drain does).  And what a worker whose exchange with PostgreSQL cost
# nothing could reach at most: the drain's rate were the exchange's share
# of the worker's CPU spent sending (an upper bound: it supposes the
# worker as busy without it).
[ -s "$BENCH_DIR/exchange" ] || exit 0
plain=$(for _ in 1 2 3; do
            perf record -q -F 999 -g -o "$BENCH_DIR/plain.data" -- \
                "$BENCH_DIR/curl_ceiling" "http://127.0.0.1:$port/hook" "$events" 64 perform \
                2>>"$BENCH_DIR/perf.err"
        done | awk '{print $2}' | median)
echo "$drain $plain $(cat "$BENCH_DIR/exchange")" | awk '{
    printf "the worker at %.2f x of the bare client driven plainly (%d req/s);", $1 / $2, $2
    printf " with its exchange free, at most %.2f x\n", $1 / (1 - $3) / $2 }'
