#!/usr/bin/env bash
# Commit-to-arrival latency: orders INSERTed one per transaction by pgbench
# (1 client, --rate R for S seconds) into a watched table; a python3 receiver
# on 127.0.0.1 (standard library, keep-alive, answers 204) records, for every
# POST, its arrival time minus the row's committed_at_epoch, and reports the
# percentiles.  Runs at 10, 100 and 1000 orders/s, after two "idle" runs of
# 20 single INSERTs 200 ms apart.  One summary line per run, then a check of
# the queue, the attempts and the server log.
#
# committed_at_epoch is clock_timestamp() taken inside the INSERT, which is
# the commit time to within the rest of the statement and the commit itself
# (its WAL flush with synchronous_commit = on): the figure slightly
# overstates commit-to-arrival, never understates it.  The receiver and
# PostgreSQL read the same wall clock.  The receiver's own time (python, on
# the same 2 cores) is included.
#
#   bench/latency.sh [seconds=10] [rates="10 100 1000"]
cd "$(dirname "$0")/.."
source test/cluster.sh
secs=${1:-10}; rates=${2:-10 100 1000}

receiver_pid=
cleanup() {
    if [ -n "$receiver_pid" ]; then
        kill "$receiver_pid" 2>/dev/null || true
        wait "$receiver_pid" 2>/dev/null || true
    fi
    bench_stop_cluster
}
bench_start_cluster
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat > "$BENCH_DIR/receiver.py" <<'PY'
import http.server, json, math, sys, threading, time

lock = threading.Lock()
lat = []          # ms, one per first arrival of an order id
seen = set()
dups = bad = 0

def pct(sorted_vals, p):
    # nearest rank
    return sorted_vals[max(0, math.ceil(p / 100 * len(sorted_vals)) - 1)]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive

    def log_message(self, *args):
        pass

    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_HEAD(self):                     # webhook.register's reachability check
        self.reply(204)

    def do_POST(self):
        global dups, bad
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        now = time.time()
        try:
            data = json.loads(body)["data"]
            key, ms = data["id"], (now - float(data["committed_at_epoch"])) * 1000
        except (ValueError, KeyError, TypeError):
            key = None
        with lock:
            if key is None:
                bad += 1
            elif key in seen:
                dups += 1                  # a retry or curl's silent re-send
            else:
                seen.add(key)
                lat.append(ms)
        self.reply(204)

    def do_GET(self):                      # /stats, /reset: the script's controls
        global dups, bad
        with lock:
            s = sorted(lat)
            out = {"received": len(s), "duplicates": dups, "bad": bad}
            if s:
                out.update({k: round(pct(s, p), 1) for k, p in
                            (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))})
            if self.path == "/reset":
                lat.clear(); seen.clear(); dups = bad = 0
        self.reply(200, json.dumps(out).encode())

class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True

srv = Server(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
PY
python=$(python3 -c 'import sys; print(sys.executable)')
"$python" "$BENCH_DIR/receiver.py" "$BENCH_DIR/receiver.port" &
receiver_pid=$!
for _ in $(seq 100); do
    [ -s "$BENCH_DIR/receiver.port" ] && break
    kill -0 "$receiver_pid" 2>/dev/null || { echo "receiver died" >&2; exit 1; }
    sleep 0.05
done
port=$(cat "$BENCH_DIR/receiver.port")
control() { curl -sf --max-time 5 "http://127.0.0.1:$port/$1"; }

bench_psql <<SQL >/dev/null
CREATE EXTENSION webhook;
CREATE TABLE orders (id bigserial PRIMARY KEY, total numeric, committed_at_epoch double precision);
SELECT webhook.watch('orders', resource => 'order');
SELECT webhook.register('http://127.0.0.1:$port/hook', '{ORDER_*}');
SQL
[ "$(bench_psql -c "SELECT count(*) FROM webhook.hook WHERE active")" = 1 ] ||
    { echo "hook not registered" >&2; exit 1; }

insert="INSERT INTO orders(total, committed_at_epoch) VALUES (1, extract(epoch from clock_timestamp()));"
echo "$insert" > "$BENCH_DIR/insert.sql"
chmod a+r "$BENCH_DIR/insert.sql"

# wait (at most 30 s) until the receiver has every order inserted since the
# last collect, then print the receiver's figures and reset them (not in a
# subshell: last_id must persist)
last_id=0
collect() {
    local inserted received=0
    inserted=$(bench_psql -c "SELECT count(*) FROM orders WHERE id > $last_id")
    for _ in $(seq 600); do
        received=$(control stats | sed -E 's/.*"received": ([0-9]+).*/\1/')
        [ "$received" -ge "$inserted" ] && break
        sleep 0.05
    done
    last_id=$(bench_psql -c "SELECT coalesce(max(id), 0) FROM orders")
    control reset | python3 -c '
import json, sys
s = json.load(sys.stdin)
lat = " ".join("%s %s" % (k, s[k]) for k in ("p50", "p95", "p99", "max") if k in s)
print("inserted %s, received %d (%d duplicates, %d unparsable); ms %s"
      % (sys.argv[1], s["received"], s["duplicates"], s["bad"], lat or "-"), end="")' "$inserted"
}

# warm-up (not counted): the worker's first connection to the receiver
for _ in 1 2 3; do bench_psql -c "$insert"; sleep 0.1; done
collect >/dev/null

# idle: the worker has been asleep for 200 ms before each order; once from one
# session, once from a new psql session per INSERT (whose first trigger call
# in the session loads the hook cache and prepares its plans, before commit)
for _ in $(seq 20); do printf '%s\nSELECT pg_sleep(0.2);\n' "$insert"; done |
    bench_psql >/dev/null
printf 'idle (20 INSERTs 200 ms apart, one session): '; collect; echo
for _ in $(seq 20); do bench_psql -c "$insert"; sleep 0.2; done
printf 'idle (20 INSERTs 200 ms apart, a psql session each): '; collect; echo

for rate in $rates; do
    out=$(bench_pgbench -n -c 1 -j 1 --rate "$rate" -T "$secs" -f "$BENCH_DIR/insert.sql" 2>&1) ||
        { echo "$out" >&2; exit 1; }
    tps=$(awk '/^tps/ {printf "%.1f", $3}' <<<"$out")
    lag=$(awk '/schedule lag/ {print $6}' <<<"$out")
    printf 'rate %s/s, %ss: ' "$rate" "$secs"; collect
    echo "; pgbench $tps tps, schedule lag avg $lag ms"
done

not_ok=$(bench_psql -c "SELECT coalesce(string_agg(state || ' ' || n, ', '), 'none')
                        FROM (SELECT state, count(*) n FROM webhook.delivery
                              WHERE state <> 'succeeded' GROUP BY state) s")
attempts=$(bench_psql -c "SELECT count(*) FROM webhook.attempt WHERE status_code IS DISTINCT FROM 204")
errors=$(grep -cE 'ERROR|WARNING|FATAL|PANIC' "$BENCH_DIR/log" || true)
echo "deliveries not succeeded: $not_ok; attempts not answered 204: $attempts; server log ERROR/WARNING/FATAL lines: $errors"
grep -E 'ERROR|WARNING|FATAL|PANIC' "$BENCH_DIR/log" | head -5 || true
