"""Concurrency: a slow receiver does not hold up a fast one; max_in_flight is respected."""

import time
import unittest

import harness
from harness import R, lit

cluster = slow = fast = None


def setUpModule():
    global cluster, slow, fast
    cluster = harness.start_cluster()
    slow = harness.Receiver(default=R(200, delay=3))
    fast = harness.Receiver()


def tearDownModule():
    harness.stop_all()


class ConcurrencyTest(unittest.TestCase):

    def test_slow_receiver_does_not_block_fast(self):
        hs = cluster.hook_on(slow.url(), '/slow', retry_schedule='{1s,1s}')
        hf = cluster.hook_on(fast.url(), '/fast', retry_schedule='{1s,1s}')
        t0 = time.monotonic()
        slow_uids = cluster.emit_many(hs.event_type, 20)
        t1 = time.monotonic()
        fast_uids = cluster.emit_many(hf.event_type, 20)
        got = fast.wait_requests(20, path='/fast', timeout=10)
        fast_done = max(r.arrived for r in got) - t1
        first_slow = slow.wait_requests(1, path='/slow', timeout=10)[0]
        harness.note('20 fast deliveries all arrived %.2f s after emit, beside 20 slow (3 s) '
                     'ones; slow receiver saw at most %d at once'
                     % (fast_done, slow.max_in_flight['/slow']))
        self.assertLess(fast_done, 2.0)
        # the fast ones all arrived before the first slow answer was even sent
        self.assertLess(max(r.arrived for r in got), first_slow.arrived + 3.0)
        self.assertEqual(sorted(r.headers['webhook-id'] for r in got), sorted(fast_uids))
        cluster.wait_for(
            'SELECT count(*) FROM webhook.delivery d JOIN webhook.event e ON e.id = d.event_id '
            "WHERE e.event_type = %s AND d.state = 'succeeded'" % lit(hf.event_type), '20',
            timeout=5)
        # the slow ones: all delivered, in parallel but at most max_in_flight (16) at once
        reqs = slow.wait_requests(20, path='/slow', timeout=30)
        cluster.wait_for(
            'SELECT count(*) FROM webhook.delivery d JOIN webhook.event e ON e.id = d.event_id '
            "WHERE e.event_type = %s AND d.state = 'succeeded'" % lit(hs.event_type), '20',
            timeout=30)
        self.assertEqual(sorted({r.headers['webhook-id'] for r in reqs}), sorted(slow_uids))
        self.assertLessEqual(slow.max_in_flight['/slow'], 16)
        self.assertGreaterEqual(slow.max_in_flight['/slow'], 2, 'slow requests not concurrent')
        self.assertLess(reqs[19].arrived - t0, 15)

    def test_transport_max_in_flight(self):
        rx = harness.Receiver(default=R(200, delay=1))
        try:
            h = cluster.hook_on(rx.url(), '/limited', transport={'max_in_flight': 3})
            cluster.emit_many(h.event_type, 9)
            reqs = rx.wait_requests(9, path='/limited', timeout=20)
            cluster.wait_for(
                'SELECT count(*) FROM webhook.delivery d JOIN webhook.event e '
                "ON e.id = d.event_id WHERE e.event_type = %s AND d.state = 'succeeded'"
                % lit(h.event_type), '9', timeout=20)
            self.assertEqual(rx.max_in_flight['/limited'], 3)
            # 9 requests of 1 s, 3 at once: about 3 s, certainly more than 2
            self.assertGreaterEqual(reqs[-1].arrived - reqs[0].arrived, 1.8)
        finally:
            rx.close()

    def test_keep_alive(self):
        """Sequential deliveries to one origin reuse a connection."""
        rx = harness.Receiver()
        try:
            h = cluster.hook_on(rx.url(), '/ka', transport={'max_in_flight': 1})
            for i in range(3):
                cluster.emit(h.event_type, {'i': i})
                rx.wait_requests(i + 1, path='/ka')
                time.sleep(0.2)
            reqs = rx.requests(path='/ka')
            conns = {r.conn_id for r in reqs}
            harness.note('keep-alive: 3 sequential deliveries used %d connection(s)' % len(conns))
            self.assertEqual(len(conns), 1, 'no connection reuse')
        finally:
            rx.close()


    def test_late_writer_is_not_skipped(self):
        """A transaction that began long before it inserts: its delivery
        leaves at once, beside a steady stream of the same hook's others
        (a claim starts the hook's scan past what it took before, never
        past what a running transaction may still commit)."""
        h = cluster.hook_on(fast.url(), '/late')
        s = harness.Session(cluster)
        gaps = []
        try:
            for i in range(5):
                s.send('BEGIN; SELECT now();')      # begun, no transaction id yet
                for j in range(10):
                    cluster.emit(h.event_type, {'stream': j})
                    time.sleep(0.03)
                t0 = time.monotonic()
                s.send("SELECT webhook.emit(%s, '{\"late\": %d}'); COMMIT;"
                       % (lit(h.event_type), i))
                got = fast.wait_requests(11 * (i + 1), path='/late', timeout=10)
                late = [r for r in got if r.json()['data'].get('late') == i]
                self.assertEqual(len(late), 1, 'late event %d not delivered once' % i)
                gaps.append(late[0].arrived - t0)
        finally:
            s.close()
        harness.note('a late writer\'s event, commit -> arrival: %s s'
                     % ', '.join('%.3f' % g for g in gaps))
        # skipped, it would wait for the claim's scan from the start, when the
        # floors are forgotten: a second or so; five rounds all under 0.5 s
        self.assertLess(max(gaps), 0.5, gaps)


if __name__ == '__main__':
    unittest.main()
