#!/usr/bin/env bash
# pg_net beside webhook, in one cluster, against the same local nginx: N
# POSTs queued in one transaction by each, then the time until all were
# answered.  pg_net runs at its defaults (its batch size and TTL), webhook at
# its own (signed, every attempt logged).  Skipped, with exit status 0, when
# pg_net is not installed (it is not packaged by Debian: build it from its
# sources and `make install` it first).
#
#   bench/pgnet.sh [runs=3] [requests=5000]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-3}; n=${2:-5000}
port=${BENCH_HTTP_PORT:-18202}

if [ ! -f "$(pg_config --pkglibdir)/pg_net.so" ]; then
    echo "pg_net is not installed ($(pg_config --pkglibdir)/pg_net.so): skipped"
    exit 0
fi

bench_start_cluster "shared_preload_libraries = 'webhook,pg_net'" \
    "pg_net.database_name = 'bench'" "webhook.database_name = 'bench'"
bench_start_nginx "$port"

bench_psql <<SQL
\o /dev/null
CREATE EXTENSION pg_net;
CREATE EXTENSION webhook;
SELECT webhook.create_hook(webhook.create_transport('nginx', 'http://127.0.0.1:$port'),
                           '{ORDER_*}', path => '/hook');
SQL
echo "pg_net $(bench_psql -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_net'"), webhook $(bench_psql -c "SELECT extversion FROM pg_extension WHERE extname = 'webhook'")"

# seconds until the query's single value reaches n (at most 5 minutes)
wait_for() {
    local start end
    start=$(date +%s.%N)
    for _ in $(seq 6000); do
        [ "$(bench_psql -c "$1")" -ge "$n" ] && break
        sleep 0.05
    done
    end=$(date +%s.%N)
    echo "$start $end" | awk '{printf "%.3f", $2 - $1}'
}

for i in $(seq "$runs"); do
    bench_psql -c "TRUNCATE net._http_response" >/dev/null
    bench_psql -c "SELECT count(net.http_post(url := 'http://127.0.0.1:$port/hook',
                         body := jsonb_build_object('orderId', g, 'total', 12.5)))
                     FROM generate_series(1, $n) g" >/dev/null
    secs=$(wait_for "SELECT count(*) FROM net._http_response")
    failed=$(bench_psql -c "SELECT count(*) FROM net._http_response
                             WHERE status_code IS NULL OR status_code >= 300")
    echo "pg_net $(echo "$n $secs" | awk '{printf "%.0f", $1 / $2}') req/s ($n requests, $failed failed)" |
        tee -a "$BENCH_DIR/results"

    bench_psql -c "TRUNCATE webhook.event, webhook.delivery, webhook.attempt" >/dev/null
    bench_psql -c "SELECT count(webhook.emit('ORDER_CREATE', jsonb_build_object('orderId', g, 'total', 12.5)))
                     FROM generate_series(1, $n) g" >/dev/null
    secs=$(wait_for "SELECT count(*) FROM webhook.attempt WHERE status_code BETWEEN 200 AND 299")
    echo "webhook $(echo "$n $secs" | awk '{printf "%.0f", $1 / $2}') req/s ($n requests)" |
        tee -a "$BENCH_DIR/results"
done
p=$(awk '$1=="pg_net" {print $2}' "$BENCH_DIR/results" | median)
w=$(awk '$1=="webhook" {print $2}' "$BENCH_DIR/results" | median)
echo "median: pg_net $p req/s, webhook $w req/s; webhook/pg_net $(echo "$w $p" | awk '{printf "%.1f", $1/$2}')"
