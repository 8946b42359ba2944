#!/usr/bin/env bash
# The ceiling of the delivery benchmark: a bare libcurl multi client
# (bench/curl_ceiling.c: same body, kept-alive connections, no signing, no
# database), in one process and in two at once, against raw HTTP (wrk, 1
# thread, 16 connections) to the same nginx in the same run.
#
#   bench/ceiling.sh [runs=3] [requests=200000] [in_flight=64]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-3}; requests=${2:-200000}; inflight=${3:-64}
port=${BENCH_HTTP_PORT:-18230}

command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
bench_start_cluster
bench_start_nginx "$port"
gcc -O2 -Wall -Wextra -o "$BENCH_DIR/curl_ceiling" bench/curl_ceiling.c -lcurl
url="http://127.0.0.1:$port/hook"
cat > "$BENCH_DIR/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"type":"ORDER_CREATE","timestamp":"2026-11-23T12:00:00.000Z","data":{"orderId":1,"total":12.5}}'
wrk.headers["Content-Type"] = "application/json"
LUA

for _ in $(seq "$runs"); do
    "$BENCH_DIR/curl_ceiling" "$url" "$requests" "$inflight" |
        awk '{print "one", $2}' | tee -a "$BENCH_DIR/results"
    "$BENCH_DIR/curl_ceiling" "$url" "$requests" $((inflight / 2)) > "$BENCH_DIR/a" &
    "$BENCH_DIR/curl_ceiling" "$url" "$requests" $((inflight / 2)) > "$BENCH_DIR/b"
    wait
    cat "$BENCH_DIR/a" "$BENCH_DIR/b" | awk '{s += $2} END {print "two", s}' | tee -a "$BENCH_DIR/results"
    wrk -t1 -c16 -d5s -s "$BENCH_DIR/post.lua" "$url" |
        awk '/^Requests\/sec/ {printf "raw %.0f\n", $2}' | tee -a "$BENCH_DIR/results"
done
one=$(awk '$1=="one" {print $2}' "$BENCH_DIR/results" | median)
two=$(awk '$1=="two" {print $2}' "$BENCH_DIR/results" | median)
raw=$(awk '$1=="raw" {print $2}' "$BENCH_DIR/results" | median)
echo "median: libcurl 1 process $one req/s ($(echo "$one $raw" | awk '{printf "%.2f", $1/$2}') of raw), 2 processes $two req/s ($(echo "$two $raw" | awk '{printf "%.2f", $1/$2}')), raw HTTP $raw req/s"
