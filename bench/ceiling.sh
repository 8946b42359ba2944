#!/usr/bin/env bash
# The ceiling of the delivery benchmark: a bare libcurl multi client
# (bench/curl_ceiling.c: same body, kept-alive connections, no signing, no
# database), in one process and in two at once, against raw HTTP (wrk, 1
# thread, 16 connections) to the same nginx in the same run.  And the one
# process driving libcurl through its socket interface, as the worker
# does (epoll and curl_multi_socket_action(), not curl_multi_perform()),
# with its CPU time a request beside the plain one's.
#
#   bench/ceiling.sh [runs=3] [requests=200000] [in_flight=64]
cd "$(dirname "$0")/.."
source test/cluster.sh
runs=${1:-3}; requests=${2:-200000}; inflight=${3:-64}
port=${BENCH_HTTP_PORT:-18230}

bench_start_cluster
bench_start_nginx "$port"
bench_build_curl_ceiling
url="http://127.0.0.1:$port/hook"

# a run of one process driven as asked (perform or socket): its rate, and
# its CPU time (user and system) a request, in microseconds
one_process() {
    /usr/bin/time -f "%U %S" -o "$BENCH_DIR/time" \
        "$BENCH_DIR/curl_ceiling" "$url" "$requests" "$inflight" "$1" |
        awk -v what="$1" '{print what, $2}'
    # (its last line: a failed run's exit status comes before it)
    tail -1 "$BENCH_DIR/time" | awk -v what="$1" -v requests="$requests" \
        '{printf "%s_us %.1f\n", what, ($1 + $2) * 1e6 / requests}'
}

for _ in $(seq "$runs"); do
    one_process perform | sed 's/^perform /one /' | tee -a "$BENCH_DIR/results"
    one_process socket | tee -a "$BENCH_DIR/results"
    "$BENCH_DIR/curl_ceiling" "$url" "$requests" $((inflight / 2)) > "$BENCH_DIR/a" &
    "$BENCH_DIR/curl_ceiling" "$url" "$requests" $((inflight / 2)) > "$BENCH_DIR/b"
    wait
    cat "$BENCH_DIR/a" "$BENCH_DIR/b" | awk '{s += $2} END {print "two", s}' | tee -a "$BENCH_DIR/results"
    echo "raw $(bench_raw_http "$url")" | tee -a "$BENCH_DIR/results"
done
one=$(awk '$1=="one" {print $2}' "$BENCH_DIR/results" | median)
two=$(awk '$1=="two" {print $2}' "$BENCH_DIR/results" | median)
raw=$(awk '$1=="raw" {print $2}' "$BENCH_DIR/results" | median)
socket=$(awk '$1=="socket" {print $2}' "$BENCH_DIR/results" | median)
one_us=$(awk '$1=="perform_us" {print $2}' "$BENCH_DIR/results" | median)
socket_us=$(awk '$1=="socket_us" {print $2}' "$BENCH_DIR/results" | median)
echo "median: libcurl 1 process $one req/s ($(echo "$one $raw" | awk '{printf "%.2f", $1/$2}') of raw), 2 processes $two req/s ($(echo "$two $raw" | awk '{printf "%.2f", $1/$2}')), raw HTTP $raw req/s"
echo "median: 1 process through libcurl's socket interface $socket req/s ($(echo "$socket $raw" | awk '{printf "%.2f", $1/$2}') of raw); CPU a request $socket_us us against $one_us us"
