"""Rate limits: a transport's max_per_second, the back-off after 429s, and
transports not slowing each other down.  The receiver measures the rate from
its own arrival times (Request.arrived)."""

import time
import unittest

import harness
from harness import R, lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(globals())

# the burst the worker allows: a tenth of a second's worth, at least one
def burst(rate):
    return max(1, int(rate / 10))


# arrivals in a window may bunch by a few when the receiver's threads or the
# worker are held up for a moment on a busy machine
JITTER = 3


def max_in_window(times, width=1.0):
    """The most arrival times within any window [t, t + width)."""
    times = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] < t - width + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best


class RateLimitTest(unittest.TestCase):

    def outcomes(self, event_type):
        """(deliveries, succeeded, attempts, 2xx attempts) of an event type."""
        return tuple(int(x) for x in cluster.psql(
            'SELECT count(DISTINCT d.id), count(DISTINCT d.id) FILTER '
            "(WHERE d.state = 'succeeded'), count(a.*), "
            'count(a.*) FILTER (WHERE a.status_code BETWEEN 200 AND 299) '
            'FROM webhook.deliveries d JOIN webhook.event e ON e.id = d.event_id '
            'LEFT JOIN webhook.attempt a ON a.delivery_id = d.id '
            'WHERE e.event_type = %s' % lit(event_type))[0])

    def wait_succeeded(self, event_type, n, timeout=30):
        cluster.wait_for(
            'SELECT count(*) FROM webhook.deliveries d JOIN webhook.event e '
            "ON e.id = d.event_id WHERE e.event_type = %s AND d.state = 'succeeded'"
            % lit(event_type), str(n), timeout=timeout)

    def test_20_per_second(self):
        """100 events at once to a 20/s transport: ~5 s, never more than
        20 + burst in a second, none failed, one attempt each."""
        path = '/rl-20'
        h = cluster.hook_on(rx.url(), path, transport={'max_per_second': 20})
        cluster.emit_many(h.event_type, 100)
        reqs = rx.wait_requests(100, path=path, timeout=60)
        self.wait_succeeded(h.event_type, 100)
        times = [r.arrived for r in reqs]
        span = max(times) - min(times)
        peak = max_in_window(times)
        harness.note('max_per_second 20: 100 deliveries over %.2f s, at most %d in a second'
                     % (span, peak))
        # (100 - burst) / 20 = 4.9 s; unlimited, they take well under a second
        self.assertGreaterEqual(span, 4.0)
        self.assertLess(span, 20.0, 'far slower than 20/s')
        self.assertLessEqual(peak, 20 + burst(20) + JITTER)
        # smooth: no second of the middle has much less than the rate either
        self.assertGreaterEqual(max_in_window(times[20:80]), 12)
        self.assertEqual(self.outcomes(h.event_type), (100, 100, 100, 100))

    def test_update_transport_applies_to_next_claims(self):
        """max_per_second => 0 lifts the limit; setting one on an unlimited
        transport applies to its next batch."""
        path = '/rl-update'
        h = cluster.hook_on(rx.url(), path, transport={'max_per_second': 5})
        cluster.emit_many(h.event_type, 10)
        reqs = rx.wait_requests(10, path=path, timeout=30)
        limited = reqs[-1].arrived - reqs[0].arrived
        self.wait_succeeded(h.event_type, 10)

        cluster.psql('SELECT webhook.update_transport(%d, max_per_second => 0)' % h.transport_id)
        self.assertIsNone(cluster.one('SELECT max_per_second FROM webhook.transport '
                                      'WHERE id = %d' % h.transport_id))
        rx.clear()
        cluster.emit_many(h.event_type, 100)
        reqs = rx.wait_requests(100, path=path, timeout=30)
        unlimited = reqs[-1].arrived - reqs[0].arrived
        self.wait_succeeded(h.event_type, 110)

        cluster.psql('SELECT webhook.update_transport(%d, max_per_second => 10)'
                     % h.transport_id)
        rx.clear()
        cluster.emit_many(h.event_type, 30)
        reqs = rx.wait_requests(30, path=path, timeout=30)
        relimited = reqs[-1].arrived - reqs[0].arrived
        self.wait_succeeded(h.event_type, 140)
        harness.note('update_transport: 10 at 5/s over %.2f s; then 100 unlimited over %.2f s; '
                     'then 30 at 10/s over %.2f s' % (limited, unlimited, relimited))
        self.assertGreaterEqual(limited, 1.4)       # (10 - 1) / 5 = 1.8 s
        self.assertLess(unlimited, 8.0)             # at 5/s it would be 20 s
        self.assertGreaterEqual(relimited, 2.2)     # (30 - 1) / 10 = 2.9 s
        self.assertEqual(self.outcomes(h.event_type), (140, 140, 140, 140))

    def test_backoff_on_429(self):
        """A receiver answering 429 for a while: the rate falls well below
        max_per_second, nothing is lost, and the rate recovers after."""
        path = '/rl-429'
        rx.script(path, R(200, times=40), R(429, times=6), R(200))
        h = cluster.hook_on(rx.url(), path, transport={'max_per_second': 20},
                            retry_schedule='{1s,1s,1s,1s,1s,1s,1s,1s}')
        cluster.emit_many(h.event_type, 100)
        reqs = rx.wait_requests(106, path=path, timeout=60)
        self.wait_succeeded(h.event_type, 100, timeout=30)
        times = [r.arrived for r in reqs]
        before = times[:40]
        too_many = times[40:46]
        after_429 = times[46]           # the first 200 after them
        tail = times[-20:]
        phase = after_429 - too_many[0]
        recovered = tail[-1] - tail[0]
        harness.note('429 back-off at 20/s: 40 answered 200 over %.2f s, then 6 answered 429 '
                     'over %.2f s (to the next request), the last 20 over %.2f s'
                     % (before[-1] - before[0], phase, recovered))
        # before: the limit (39 / 20 = 1.95 s)
        self.assertGreaterEqual(before[-1] - before[0], 1.5)
        # the 429s: 20/s would send the six in 0.3 s; halving 20 -> 10 -> 5 ...
        # -> 1/s takes some 3.5 s
        self.assertGreaterEqual(phase, 1.2)
        self.assertLessEqual(max_in_window(times[40:]), 20 + burst(20) + JITTER)
        # recovered: the last 20 at well above the floor (20/s: about 1 s;
        # at the floor of 1/s, 19 s)
        self.assertLess(recovered, 8.0)
        # nothing lost: every delivery succeeded, the six 429s were retried
        self.assertEqual(self.outcomes(h.event_type), (100, 100, 106, 100))
        self.assertEqual(cluster.one(
            'SELECT count(*) FROM webhook.attempt a JOIN webhook.deliveries d '
            'ON d.id = a.delivery_id JOIN webhook.event e ON e.id = d.event_id '
            'WHERE e.event_type = %s AND a.status_code = 429' % lit(h.event_type)), '6')

    def test_backoff_unlimited_on_timeout(self):
        """An unlimited transport whose receiver stops answering in time
        backs off from the rate it was sending at, and is unlimited again
        once it answers."""
        path = '/rl-timeout'
        rx.script(path, R(200, delay=1, times=14), R(200))
        h = cluster.hook_on(rx.url(), path, transport={'timeout': '300 ms', 'max_in_flight': 8},
                            retry_schedule='{1s,1s,1s,1s,1s,1s,1s,1s}')
        cluster.emit_many(h.event_type, 40)
        self.wait_succeeded(h.event_type, 40, timeout=60)
        times = [r.arrived for r in rx.requests(path=path)]
        hanging = times[13] - times[0]
        tail = times[-10:]
        harness.note('timeouts on an unlimited transport (8 in flight, 300 ms): 14 unanswered '
                     'requests over %.2f s, %d requests in all, the last 10 over %.2f s'
                     % (hanging, len(times), tail[-1] - tail[0]))
        # without back-off the 14 go out within 0.3 s: 8 at once, 6 more as
        # the first time out; halving 8 -> 4 -> 2 -> 1/s spreads them out
        self.assertGreaterEqual(hanging, 1.0)
        # and the rate recovers: not still at 1/s (the last 10 over 9 s)
        self.assertLess(tail[-1] - tail[0], 5.0)
        deliveries, succeeded, n_attempts, ok = self.outcomes(h.event_type)
        self.assertEqual((deliveries, succeeded, ok), (40, 40, 40))
        self.assertEqual(n_attempts, 40 + 14)

    def test_slow_limit_does_not_fill_the_worker(self):
        """A very slow transport with a large max_in_flight holds about a
        second's worth, not the worker's whole room: another hook's
        deliveries go at once."""
        slow_t = cluster.create_transport(base_url=rx.url(), max_in_flight=64,
                                          max_per_second=0.5)
        slow_type = harness.uniq('EV')
        cluster.create_hook(slow_t, [slow_type], path='/crawl')
        cluster.emit_many(slow_type, 200)
        # the worker has claimed for it (and sent the first): what it holds
        # now is what that claim took
        rx.wait_requests(1, path='/crawl', timeout=10)
        held = int(cluster.one('SELECT sum(held) FROM webhook_internal.workers()'))
        self.assertLessEqual(held, 2)
        other = cluster.hook_on(rx.url(), '/beside-crawl')
        started = time.monotonic()
        cluster.emit_many(other.event_type, 20)
        rx.wait_requests(20, path='/beside-crawl', timeout=10)
        self.assertLess(time.monotonic() - started, 5)
        cluster.psql('UPDATE webhook.delivery SET state = %s FROM webhook.hook h '
                     'WHERE h.id = hook_id AND h.transport_id = %d AND state = %s'
                     % (lit('cancelled'), slow_t, lit('pending')))

    def test_limited_transport_does_not_slow_others(self):
        """An unlimited transport's batch, and another limited one's, arrive
        at their own pace while a slow-limited transport is draining."""
        slow_path, fast_path, own_path = '/rl-slow', '/rl-fast', '/rl-own'
        slow = cluster.hook_on(rx.url(), slow_path, transport={'max_per_second': 4})
        fast = cluster.hook_on(rx.url(), fast_path)
        own = cluster.hook_on(rx.url(), own_path, transport={'max_per_second': 10})
        cluster.emit_many(slow.event_type, 40)
        rx.wait_requests(3, path=slow_path, timeout=10)
        t0 = time.monotonic()
        cluster.emit_many(fast.event_type, 100)
        cluster.emit_many(own.event_type, 20)
        fast_reqs = rx.wait_requests(100, path=fast_path, timeout=20)
        fast_done = fast_reqs[-1].arrived - t0
        own_reqs = rx.wait_requests(20, path=own_path, timeout=20)
        own_span = own_reqs[-1].arrived - own_reqs[0].arrived
        slow_by_then = rx.count(path=slow_path)
        harness.note('beside a 4/s transport draining 40: 100 unlimited arrived in %.2f s, '
                     '20 at 10/s over %.2f s; the 4/s one had sent %d'
                     % (fast_done, own_span, slow_by_then))
        self.assertLess(fast_done, 8.0)             # behind the 4/s one: 25 s
        self.assertGreaterEqual(own_span, 1.4)      # (20 - 1) / 10 = 1.9 s
        self.assertLess(own_span, 5.0)              # its own rate, not the 4/s one's
        self.assertLess(slow_by_then, 40, 'the limited transport was not still draining')
        rx.wait_requests(40, path=slow_path, timeout=30)
        self.wait_succeeded(slow.event_type, 40)
        self.assertEqual(self.outcomes(slow.event_type), (40, 40, 40, 40))


if __name__ == '__main__':
    unittest.main()
