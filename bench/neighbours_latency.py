#!/usr/bin/env python3
"""What another tenant's configuration costs one tenant's latency: tenant
"a" emits one event per transaction, one at a time (each waits for the
previous to arrive), to a hook on a local receiver; its commit-to-arrival
latency is measured (wall clock, the receiver and PostgreSQL on the same
machine), first alone, then beside tenant "b"'s N idle hooks (written
directly, 20 event-type patterns each, nothing to send), then beside an
ordered hook of tenant "b" with a backlog of M deliveries that wait (its
receiver answers 503 to all, each retried in an hour; the measure starts
once 100 of its resources' first deliveries have failed), in the same run.
Prints p50/p99 per case and the ratio of each p50 to the first.

    python3 bench/neighbours_latency.py [events=200] [hooks=20000] [backlog=100000]

Run it as a user that may run PostgreSQL (postgres), after make install.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'e2e'))
import harness  # noqa: E402
from harness import R  # noqa: E402

events = int(sys.argv[1]) if len(sys.argv) > 1 else 200
n_hooks = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
backlog = int(sys.argv[3]) if len(sys.argv) > 3 else 100000


def measure(c, rx, label):
    lat = []
    for i in range(events):
        before = rx.count(path='/a')
        t0 = time.time()
        c.psql("SELECT webhook.emit('A_EVENT', '{\"n\": %d}', tenant => 'a')" % i)
        rx.wait_requests(before + 1, path='/a', timeout=30)
        lat.append((rx.requests(path='/a')[-1].arrived_wall - t0) * 1000)
    lat.sort()
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print('%-48s p50 %7.2f ms  p99 %7.2f ms' % (label, p50, p99), flush=True)
    return p50


def main():
    c = harness.Cluster()
    c.start()
    rx = harness.Receiver()
    try:
        t = c.create_transport(base_url=rx.url(), tenant='a')
        c.create_hook(t, ['A_EVENT'], path='/a')
        c.wait_worker()
        base = measure(c, rx, 'alone')
        c.psql("""
            SELECT webhook.create_transport('b-idle', 'http://127.0.0.1:9', tenant => 'b');
            SET session_replication_role = replica;
            INSERT INTO webhook.hook (transport_id, event_types, secret)
            SELECT (SELECT id FROM webhook.transport WHERE name = 'b-idle'),
                   ARRAY(SELECT 'B_IDLE_' || g || '_' || p FROM generate_series(1, 20) p),
                   'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
              FROM generate_series(1, %d) g;
            RESET session_replication_role;
            ANALYZE webhook.hook;""" % n_hooks)
        idle = measure(c, rx, "beside b's %d idle hooks" % n_hooks)
        c.psql("DELETE FROM webhook.hook h USING webhook.transport t"
               " WHERE t.id = h.transport_id AND t.name = 'b-idle'")
        rx.script('/b-ordered', R(503))
        tb = c.create_transport(base_url=rx.url(), tenant='b', name='b-ordered')
        hb = c.create_hook(tb, ['B_ORDERED'], path='/b-ordered', ordered='resource',
                           retry_schedule='{1 h}')
        c.set_setting('webhook.enabled', 'off')
        c.psql("SELECT count(webhook.emit('B_ORDERED', jsonb_build_object('n', g), tenant => 'b',"
               "                          resource => 'order', resource_id => (g %% 1000)::text))"
               "  FROM generate_series(1, %d) g" % backlog)
        c.set_setting('webhook.enabled', None)
        # the first of each resource is tried (and fails): the rest wait
        c.wait_for("SELECT count(*) >= 100 FROM webhook.delivery WHERE hook_id = %d"
                   " AND state = 'failed'" % hb, 't', timeout=60)
        ordered = measure(c, rx, "beside b's ordered backlog of %d" % backlog)
        print('ratios to alone: idle hooks %.2f, ordered backlog %.2f'
              % (idle / base, ordered / base))
    finally:
        harness.stop_all()


if __name__ == '__main__':
    main()
