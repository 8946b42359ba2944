#!/usr/bin/env bash
# What a hook far behind costs the other tenants when the slot of the log
# that holds its backlog is emptied.  Tenant "slow" has a hook whose
# transport is limited to a request a second, and N events it has yet to
# read, older than webhook.retention (30 s here) by the time their slot is
# emptied: they must stay, and go to the current slot.  Meanwhile tenant
# "default"'s hook is sent R events a second (pgbench --rate, an emit() a
# transaction), both to a local nginx that logs when each request arrives.
# Prints, of the other tenant's requests, the longest gap between two
# arrivals and the 99th percentile of the gaps, before the retention is up
# (the first 25 s) and after (the slot emptied meanwhile), and the worker's
# lines about the rotation.
#
#   bench/behind.sh [events=1000000] [rate=200] [seconds=120]
cd "$(dirname "$0")/.."
source test/cluster.sh
events=${1:-1000000}; rate=${2:-200}; secs=${3:-120}
port=${BENCH_HTTP_PORT:-18211}

bench_start_cluster "webhook.retention = '30 s'" "log_line_prefix = '%m '"
bench_start_nginx "$port" "$BENCH_DIR/arrivals"
bench_psql <<SQL
\o /dev/null
CREATE EXTENSION webhook;
SELECT webhook.create_hook(webhook.create_transport('slow', 'http://127.0.0.1:$port',
                                                    tenant => 'slow', max_per_second => 1),
                           '{SLOW_*}', path => '/slow');
SELECT webhook.create_hook(webhook.create_transport('nginx', 'http://127.0.0.1:$port'),
                           '{ORDER_*}', path => '/other');
SQL
echo "queueing $events events for the slow hook"
bench_psql -c "SELECT count(webhook.emit('SLOW_EVENT', jsonb_build_object('n', g), tenant => 'slow'))
                 FROM generate_series(1, $events) g" >/dev/null
echo "SELECT webhook.emit('ORDER_CREATE', '{}');" > "$BENCH_DIR/other.sql"
start=$(date +%s.%N)
bench_pgbench -n -f "$BENCH_DIR/other.sql" -R "$rate" -T "$secs" >/dev/null
grep -E "moved|emptied log slot|writes attempts" "$BENCH_DIR/log" | grep -v DETAIL || true
python3 - "$BENCH_DIR/arrivals" "$start" <<'PY'
import sys
arrivals = sorted(float(t) for t, path in (l.split() for l in open(sys.argv[1]))
                  if path == '/other')
start = float(sys.argv[2])
for name, lo, hi in (('before the retention is up', start, start + 25),
                     ('after', start + 25, float('inf'))):
    ts = [t for t in arrivals if lo <= t < hi]
    gaps = sorted(b - a for a, b in zip(ts, ts[1:]))
    if gaps:
        print('%s: %d requests, longest gap %.0f ms, p99 gap %.0f ms'
              % (name, len(ts), gaps[-1] * 1000, gaps[int(0.99 * (len(gaps) - 1))] * 1000))
PY
