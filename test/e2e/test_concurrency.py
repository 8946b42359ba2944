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
        # the fast ones all arrived before the first slow answer was even sent
        # (a time relative to the slow receiver's, which a loaded machine
        # stretches alike; fast_done, absolute, is only noted)
        self.assertLess(max(r.arrived for r in got), first_slow.arrived + 3.0)
        self.assertEqual(sorted(r.headers['webhook-id'] for r in got), sorted(fast_uids))
        cluster.wait_for(
            'SELECT count(*) FROM webhook.deliveries d JOIN webhook.event e ON e.id = d.event_id '
            "WHERE e.event_type = %s AND d.state = 'succeeded'" % lit(hf.event_type), '20',
            timeout=5)
        # the slow ones: all delivered, in parallel but at most max_in_flight (16) at once
        reqs = slow.wait_requests(20, path='/slow', timeout=30)
        cluster.wait_for(
            'SELECT count(*) FROM webhook.deliveries d JOIN webhook.event e ON e.id = d.event_id '
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
                'SELECT count(*) FROM webhook.deliveries d JOIN webhook.event e '
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
                uid = cluster.emit(h.event_type, {'i': i})
                rx.wait_requests(i + 1, path='/ka')
                # recorded: the request is over and its connection back in the pool
                cluster.wait_state(uid, 'succeeded')
            reqs = rx.requests(path='/ka')
            conns = {r.conn_id for r in reqs}
            harness.note('keep-alive: 3 sequential deliveries used %d connection(s)' % len(conns))
            self.assertEqual(len(conns), 1, 'no connection reuse')
        finally:
            rx.close()

    def test_connections_are_kept_across_bursts(self):
        """A burst's connections are kept for the next one, through the
        single requests between them (curl's default keeps four per request
        in flight when one ends: each single request closed one of the
        burst's, which the next burst opened again)."""
        rx = harness.Receiver(default=R(200, delay=0.3))
        try:
            h = cluster.hook_on(rx.url(), '/bursts', transport={'max_in_flight': 8})
            sent = 0
            for step in ('burst', 'single', 'single', 'single', 'single', 'burst'):
                n = 8 if step == 'burst' else 1
                cluster.emit_many(h.event_type, n)
                sent += n
                rx.wait_requests(sent, path='/bursts', timeout=20)
                cluster.wait_for(
                    'SELECT count(*) FROM webhook.deliveries d JOIN webhook.event e '
                    "ON e.id = d.event_id WHERE e.event_type = %s AND d.state = 'succeeded'"
                    % lit(h.event_type), str(sent), timeout=20)
            conns = {r.conn_id for r in rx.requests(path='/bursts')}
            harness.note('two bursts of 8 and 4 single requests between them used %d connections'
                         % len(conns))
            self.assertEqual(rx.max_in_flight['/bursts'], 8)
            self.assertLessEqual(len(conns), 8, 'the first burst\'s connections were closed')
        finally:
            rx.close()

    def test_backlog_read_a_room_at_a_time_with_late_writers(self):
        """The hook's cursor reads the log two events at a time (its room,
        max_in_flight 1), through batches committed meanwhile and two
        writers that began early and commit late, one before and one after
        a batch: every event is sent once, none skipped, none twice."""
        h = cluster.hook_on(fast.url(), '/room', transport={'max_in_flight': 1})
        early = harness.Session(cluster)
        later = harness.Session(cluster)
        self.addCleanup(early.close)
        self.addCleanup(later.close)
        sent = []

        def open_writer(session, n):
            session.send("BEGIN; SELECT webhook.emit(%s, '{\"late\": %d}');"
                         % (lit(h.event_type), n))
            cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE state ="
                             " 'idle in transaction' AND query LIKE '%%\"late\": %d%%'"
                             % n, '1')

        open_writer(early, 1)
        sent += cluster.emit_many(h.event_type, 30)
        open_writer(later, 2)
        sent += cluster.emit_many(h.event_type, 30)
        # the worker is reading the batches, a room at a time
        fast.wait_requests(10, path='/room', timeout=30)
        early.send('COMMIT;')
        later.send('COMMIT;')
        cluster.wait_for("SELECT count(*) FROM webhook.event WHERE event_type = %s"
                         " AND payload ? 'late'" % lit(h.event_type), '2')
        sent += [r[0] for r in cluster.psql("SELECT uid FROM webhook.event WHERE event_type = %s"
                                           " AND payload ? 'late'" % lit(h.event_type))]
        sent.append(cluster.emit(h.event_type, {'marker': True}))
        got = fast.wait_requests(len(sent), path='/room', timeout=60)
        ids = [r.headers['webhook-id'] for r in got]
        self.assertEqual(sorted(ids), sorted(sent))
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d"
                         " AND state = 'succeeded'" % h.hook_id, str(len(sent)))
        # the stored cursor moves a moment after the attempts are recorded
        harness.wait_until(lambda: cluster.unread(h.hook_id) == 0, 10, 'the cursor moved')
        # every attempt recorded: a request sent twice would be a row more
        self.assertEqual(len(fast.requests('/room')), len(sent))

    def test_late_writer_is_not_skipped(self):
        """A transaction that inserts long before it commits: its delivery
        leaves at once when it commits, though a steady stream of the same
        hook's others went meanwhile (a claim starts the hook's scan past
        what it took before, never past what a running transaction may
        still commit).

        One request at a time, in due order: the late event, due when it was
        inserted, goes before a marker event emitted after its commit.
        Skipped, it would wait for the floors to be forgotten (FLOOR_RESET_MS,
        a second) while the marker went first."""
        h = cluster.hook_on(fast.url(), '/late', transport={'max_in_flight': 1})
        s = harness.Session(cluster)
        gaps = []
        try:
            for i in range(5):
                s.send("BEGIN; SELECT webhook.emit(%s, '{\"late\": %d}');"
                       % (lit(h.event_type), i))
                # inserted, not committed: the session is idle in its transaction
                cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE state ="
                                 " 'idle in transaction' AND query LIKE '%%\"late\": %d%%'"
                                 % i, '1')
                for j in range(10):
                    uid = cluster.emit(h.event_type, {'stream': j})
                    # the stream's pace is the behaviour: claims one after
                    # another, past the late event's due time, while it is
                    # not yet committed
                    time.sleep(0.03)
                cluster.wait_state(uid, 'succeeded')
                t0 = time.monotonic()
                s.send('COMMIT;')
                cluster.wait_for("SELECT count(*) FROM webhook.event WHERE event_type = %s"
                                 " AND payload->'late' = '%d'" % (lit(h.event_type), i), '1')
                cluster.emit(h.event_type, {'marker': i})
                got = fast.wait_requests(12 * (i + 1), path='/late', timeout=30)
                data = [r.json()['data'] for r in got]
                late = [k for k, d in enumerate(data) if d.get('late') == i]
                self.assertEqual(len(late), 1, 'late event %d not delivered once' % i)
                marker = [k for k, d in enumerate(data) if d.get('marker') == i]
                self.assertLess(late[0], marker[0],
                                'the marker emitted after late event %d went first: %r'
                                % (i, data[-4:]))
                gaps.append(got[late[0]].arrived - t0)
        finally:
            s.close()
        harness.note('a late writer\'s event, commit -> arrival: %s s'
                     % ', '.join('%.3f' % g for g in gaps))


if __name__ == '__main__':
    unittest.main()
