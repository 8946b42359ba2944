#!/usr/bin/env python3
"""How punctual retries are: N hooks in turn, each answered 500 then 200,
with a retry schedule of one second; for each, the time from when its retry
was due (next_attempt_at) to when it arrived at a local receiver (wall
clock, the receiver and PostgreSQL on the same machine), against, in the
same run, the time from an event's emit() to its first attempt's arrival.
A worker that sent retries only at its once-a-second poll would spread
their lateness over that second; it wakes when one is due instead.
Prints p50/p99/max of each.  (test_retry.test_retry_leaves_on_time checks,
without a sub-second bound, that no retry is early.)

    python3 bench/retry_lateness.py [retries=20]

Run it as a user that may run PostgreSQL (postgres), after make install.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'e2e'))
import harness  # noqa: E402
from harness import R, lit  # noqa: E402

retries = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def summary(label, ms):
    ms = sorted(ms)
    print('%-40s p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms'
          % (label, statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))], ms[-1]),
          flush=True)


def main():
    c = harness.Cluster()
    c.start()
    rx = harness.Receiver()
    try:
        c.wait_worker()
        first, late = [], []
        for i in range(retries):
            path = '/retry-%d' % i
            rx.script(path, R(500), R(200))
            hook = c.hook_on(rx.url(), path, retry_schedule='{1s}')
            uid = c.emit(hook.event_type, {'n': i})
            emitted = float(c.one("SELECT extract(epoch FROM created_at) FROM webhook.event"
                                  " WHERE uid = %s" % lit(uid)))
            c.wait_state(uid, 'failed')
            due = float(c.one(
                "SELECT extract(epoch FROM d.next_attempt_at) FROM webhook.deliveries d"
                " JOIN webhook.event e ON e.id = d.event_id WHERE e.uid = %s" % lit(uid)))
            got = rx.wait_requests(2, path=path)
            first.append((got[0].arrived_wall - emitted) * 1000)
            late.append((got[1].arrived_wall - due) * 1000)
        summary('first attempt, from the event', first)
        summary('retry, from when it was due', late)
    finally:
        harness.stop_all()


if __name__ == '__main__':
    main()
