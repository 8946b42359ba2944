"""Retries: schedules, failures of every kind, Retry-After, redirects, 410, timeouts."""

import json
import re
import unittest

import harness
from harness import R, lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(globals())


class RetryTest(unittest.TestCase):
    maxDiff = None

    def setup_hook(self, path, responses, schedule='{1s,1s}', transport=None, **kw):
        rx.script(path, *responses)
        return cluster.hook_on(rx.url(), path, transport=transport, retry_schedule=schedule, **kw)

    def statuses(self, delivery_id):
        return [a['status_code'] for a in cluster.attempts(delivery_id)]

    def nothing_more(self, hook):
        """Wait until the worker has provably passed the point where it would
        send the hook anything more: a retry of its last attempt would be due
        (steps of 1 s, +-20 %), and after that a marker event goes out and
        the workers hold nothing.  Then the caller counts what arrived."""
        cluster.wait_for("SELECT coalesce(clock_timestamp() > max(a.started_at)"
                         " + interval '1.5 s', true) FROM webhook.attempt a"
                         " JOIN webhook.deliveries d ON d.id = a.delivery_id"
                         " WHERE d.hook_id = %d" % hook.hook_id, 't')
        cluster.worker_passed(rx)

    def test_500_twice_then_200(self):
        path = '/r-500-500-200'
        hook = self.setup_hook(path, [R(500, body='oops'), R(500), R(200)])
        uid = cluster.emit(hook.event_type, {'n': 1})
        reqs = rx.wait_requests(3, path=path)
        cluster.wait_state(uid, 'succeeded')
        d = cluster.delivery(uid)
        self.assertEqual((d['attempts'], d['last_status']), (3, 200))
        att = cluster.attempts(d['id'])
        self.assertEqual([a['attempt_no'] for a in att], [1, 2, 3])
        self.assertEqual([a['status_code'] for a in att], [500, 500, 200])
        self.assertEqual(cluster.one('SELECT response_body FROM webhook.attempt '
                                     'WHERE delivery_id = %d AND attempt_no = 1' % d['id']),
                         'oops')
        # schedule {1s,1s} with +-20 % jitter: gaps of 0.8 s or more
        for a, b in zip(reqs, reqs[1:]):
            self.assertGreaterEqual(b.arrived - a.arrived, 0.75)
        self.nothing_more(hook)
        self.assertEqual(rx.count(path=path), 3)

    def test_response_headers_are_recorded(self):
        """Each attempt's row holds its response's headers as a jsonb
        object: names in lower case, values as sent (quotes, backslashes
        and an empty one), a header whose bytes are not valid text left
        out.  Both ways an attempt is written: by the record's statement
        (a failure, then its retry) and directly (a success at the first
        attempt, which has no delivery row)."""
        sent = {'X-Quote': 'a "b" \\ c', 'X-Empty': '', 'X-Latin': 'caf\xe9',
                'Retry-After': '1'}
        kept = {'x-quote': 'a "b" \\ c', 'x-empty': '', 'retry-after': '1',
                'content-length': '0'}
        hook = self.setup_hook('/r-headers', [R(500, headers=sent), R(200, headers=sent)])
        first = cluster.hook_on(rx.url(), '/r-headers-first', retry_schedule='{1s}')
        rx.script('/r-headers-first', R(201, headers=sent))
        failed = cluster.emit(hook.event_type, {'n': 1})
        at_once = cluster.emit(first.event_type, {'n': 2})
        cluster.wait_state(failed, 'succeeded')
        cluster.wait_state(at_once, 'succeeded')
        rows = cluster.psql(
            "SELECT a.status_code, (SELECT jsonb_object_agg(k, a.response_headers->>k)"
            "                         FROM unnest(%s::text[]) k),"
            "       a.response_headers ? 'x-latin', a.response_headers ? 'X-Quote'"
            "  FROM webhook.attempt a JOIN webhook.event e ON e.id = a.event_id"
            " WHERE e.uid IN (%s, %s) ORDER BY a.started_at"
            % (lit('{%s}' % ','.join(kept)), lit(failed), lit(at_once)))
        self.assertEqual(sorted((r[0], json.loads(r[1]), r[2], r[3]) for r in rows),
                         [(s, kept, 'f', 'f') for s in ('200', '201', '500')])

    def test_dropped_connection_then_200(self):
        # Dropped twice: libcurl silently re-sends once when a *reused* keep-alive
        # connection closes without an answer, so a single drop may never reach the
        # worker as a failure; a second drop on the fresh connection always does.
        path = '/r-drop'
        hook = self.setup_hook(path, [R(drop=True, times=2), R(200)], schedule='{1s,1s,1s}')
        uid = cluster.emit(hook.event_type, {'n': 1})
        rx.wait_requests(3, path=path)
        cluster.wait_state(uid, 'succeeded')
        d = cluster.delivery(uid)
        att = cluster.attempts(d['id'])
        statuses = [a['status_code'] for a in att]
        self.assertIn(statuses, ([None, 200], [None, None, 200]), att)
        for a in att[:-1]:
            self.assertTrue(a['error'], 'no error text for a dropped connection: %r' % a)
        self.assertIsNone(att[-1]['error'])
        self.assertEqual(d['attempts'], len(att))
        harness.note('dropped connection: %d requests, attempts %r, error %r'
                     % (rx.count(path=path), statuses, att[0]['error']))

    def test_always_500_goes_dead(self):
        path = '/r-always-500'
        hook = self.setup_hook(path, [R(500)], schedule='{1s,1s}')
        uid = cluster.emit(hook.event_type, {'n': 1})
        rx.wait_requests(3, path=path)
        cluster.wait_state(uid, 'dead')
        d = cluster.delivery(uid)
        self.assertEqual((d['attempts'], d['last_status'], d['finished']), (3, 500, True))
        self.assertEqual(self.statuses(d['id']), [500, 500, 500])
        self.nothing_more(hook)
        self.assertEqual(rx.count(path=path), 3, 'a dead delivery was sent again')
        # a dead delivery does not disable the hook (only 410 does)
        self.assertEqual(cluster.one('SELECT active FROM webhook.hook WHERE id = %d'
                                     % hook.hook_id), 't')

    def test_empty_schedule_is_one_attempt(self):
        """retry_schedule '{}': one attempt, dead at its failure, no retry."""
        path = '/r-one-attempt'
        hook = self.setup_hook(path, [R(500)], schedule='{}')
        uid = cluster.emit(hook.event_type, {'n': 1})
        cluster.wait_state(uid, 'dead')
        d = cluster.delivery(uid)
        self.assertEqual((d['attempts'], d['last_status'], d['finished']), (1, 500, True))
        self.nothing_more(hook)
        self.assertEqual(rx.count(path=path), 1)

    def test_400_is_retried(self):
        path = '/r-400'
        hook = self.setup_hook(path, [R(400), R(408), R(200)])
        uid = cluster.emit(hook.event_type, {'n': 1})
        rx.wait_requests(3, path=path)
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(self.statuses(cluster.delivery(uid)['id']), [400, 408, 200])

    def test_2xx_other_than_200_is_success(self):
        path = '/r-204'
        hook = self.setup_hook(path, [R(204)])
        uid = cluster.emit(hook.event_type, {'n': 1})
        rx.wait_requests(1, path=path)
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(self.statuses(cluster.delivery(uid)['id']), [204])

    def test_429_retry_after_honoured(self):
        path = '/r-429'
        hook = self.setup_hook(path, [R(429, headers={'Retry-After': '2'}), R(200)],
                               schedule='{1s}')
        uid = cluster.emit(hook.event_type, {'n': 1})
        reqs = rx.wait_requests(2, path=path)
        cluster.wait_state(uid, 'succeeded')
        gap = reqs[1].arrived - reqs[0].arrived
        harness.note('429 Retry-After: 2 with schedule {1s}: second attempt after %.2f s' % gap)
        # Retry-After 2 within [step, 2*step] = [1 s, 2 s] -> 2 s, jitter +-20 % -> >= 1.6 s
        self.assertGreaterEqual(gap, 1.55)
        self.assertLess(gap, 10.0)      # a bound a loaded machine meets
        self.assertEqual(self.statuses(cluster.delivery(uid)['id']), [429, 200])

    def test_503_retry_after_clamped(self):
        path = '/r-503-clamp'
        hook = self.setup_hook(path, [R(503, headers={'Retry-After': '120'}), R(200)],
                               schedule='{1s}')
        uid = cluster.emit(hook.event_type, {'n': 1})
        reqs = rx.wait_requests(2, path=path, timeout=30)
        cluster.wait_state(uid, 'succeeded')
        gap = reqs[1].arrived - reqs[0].arrived
        harness.note('503 Retry-After: 120 with schedule {1s}: second attempt after %.2f s' % gap)
        # clamped to 2 * step = 2 s (+-20 %), not 120 s
        self.assertGreaterEqual(gap, 1.55)
        self.assertLess(gap, 10.0)

    def test_429_without_retry_after_follows_schedule(self):
        path = '/r-429-plain'
        hook = self.setup_hook(path, [R(429), R(200)], schedule='{1s}')
        uid = cluster.emit(hook.event_type, {'n': 1})
        reqs = rx.wait_requests(2, path=path)
        cluster.wait_state(uid, 'succeeded')
        gap = reqs[1].arrived - reqs[0].arrived
        # the schedule's 1 s (+-20 %); Retry-After's doubling would be 2 s
        # and more, which a loaded machine's delay could pass for: only the
        # lower bound is the behaviour
        self.assertGreaterEqual(gap, 0.75)
        self.assertLess(gap, 10.0)

    def test_retry_leaves_on_time(self):
        """A retry is sent when it is due, never before, and not long
        after: five retries, none early, each within 5 s of its due time (a
        loaded machine stalled one 1.03 s).  How punctual (whether at its
        due time or at the worker's once-a-second poll) is a figure for
        bench/retry_lateness.py, not a bound here."""
        late = []
        for i in range(5):
            path = '/r-on-time-%d' % i
            hook = self.setup_hook(path, [R(500), R(200)], schedule='{1s}')
            uid = cluster.emit(hook.event_type, {'n': i})
            cluster.wait_state(uid, 'failed')
            due = float(cluster.one(
                "SELECT extract(epoch FROM d.next_attempt_at) FROM webhook.deliveries d"
                " JOIN webhook.event e ON e.id = d.event_id WHERE e.uid = %s" % lit(uid)))
            req = rx.wait_requests(2, path=path)[1]
            late.append(req.arrived_wall - due)
        harness.note('retries sent %s ms after they were due'
                     % ', '.join('%.0f' % (x * 1000) for x in late))
        for x in late:
            self.assertGreaterEqual(x, -0.005, late)
            self.assertLess(x, 5.0, late)

    def test_redirect_not_followed(self):
        path, target = '/r-302', '/r-302-target'
        hook = self.setup_hook(path, [R(302, headers={'Location': rx.url(target)}), R(200)])
        uid = cluster.emit(hook.event_type, {'n': 1})
        rx.wait_requests(2, path=path)
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(self.statuses(cluster.delivery(uid)['id']), [302, 200])
        cluster.worker_passed(rx)
        self.assertEqual(rx.count(path=target), 0, 'the redirect was followed')

    def test_410_disables_hook(self):
        path = '/r-410'
        hook = self.setup_hook(path, [R(410)], schedule='{1s,1s}')
        uid = cluster.emit(hook.event_type, {'n': 1})
        rx.wait_requests(1, path=path)
        cluster.wait_state(uid, 'dead')
        d = cluster.delivery(uid)
        self.assertEqual((d['attempts'], d['last_status'], d['finished']), (1, 410, True))
        active, reason = cluster.psql('SELECT active, disabled_reason FROM webhook.hook '
                                      'WHERE id = %d' % hook.hook_id)[0]
        self.assertEqual(active, 'f')
        self.assertTrue(reason, 'no disabled_reason')
        harness.note('410 disabled_reason: %r' % reason)
        # nothing more to that hook: no retry, and new events are not sent
        cluster.emit(hook.event_type, {'n': 2})
        self.nothing_more(hook)
        self.assertEqual(rx.count(path=path), 1)

    def test_410_cancels_the_hooks_waiting_deliveries(self):
        path = '/r-410-queue'
        # one request at a time: the second event waits while the first is answered
        hook = self.setup_hook(path, [R(410, delay=1.0)], schedule='{1s,1s}',
                               transport={'max_in_flight': 1})
        first = cluster.emit(hook.event_type, {'n': 1})
        rx.wait_requests(1, path=path)
        second = cluster.emit(hook.event_type, {'n': 2})
        cluster.wait_state(first, 'dead')
        cluster.wait_state(second, 'cancelled')
        d = cluster.delivery(second)
        self.assertEqual(d['attempts'], 0)
        self.assertIn('410', d['last_error'] or '')
        self.nothing_more(hook)
        self.assertEqual(rx.count(path=path), 1)

    def test_410_in_a_backlog_stops_the_waiting_requests(self):
        """Working off a backlog, the worker holds twice a transport's
        max_in_flight, half of it waiting to be sent: the first 410 answers
        stop those at once, though they are recorded with the next claim,
        and the hook's cursor stops."""
        path = '/r-410-backlog'
        hook = self.setup_hook(path, [R(410, delay=0.3, times=1000)], schedule='{1s}',
                               transport={'max_in_flight': 64})
        cluster.emit_many(hook.event_type, 300)
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d"
                         " AND state IN ('pending', 'failed')" % hook.hook_id, '0', timeout=20)
        # every attempt recorded, nothing held, and the receiver done with them
        cluster.wait_for('SELECT coalesce(sum(held + in_flight), 0) FROM webhook_internal.workers()', '0')
        rx.wait_idle()
        sent = rx.count(path=path)
        states = {r[0]: int(r[1]) for r in cluster.psql(
            "SELECT state, count(*) FROM webhook.deliveries WHERE hook_id = %d"
            " GROUP BY state" % hook.hook_id)}
        # those the worker had read and not sent are cancelled, the others
        # wait in the log, where the disabled hook's cursor stopped (moved
        # a moment after the attempts were recorded)
        unread = harness.wait_until(
            lambda: (lambda n: n if states.get('cancelled', 0) + n == 300 - sent else None)(
                cluster.unread(hook.hook_id)), 10, 'the cursor moved past what was read')
        harness.note('410 in a backlog of 300: %d sent, deliveries %s, %d not read'
                     % (sent, states, unread))
        # those in flight when the first 410 came back, no more
        self.assertLessEqual(sent, 64)
        self.assertEqual(states.get('dead', 0), sent)

    def test_timeout(self):
        path = '/r-timeout'
        hook = self.setup_hook(path, [R(200, delay=3), R(200)], schedule='{1s}',
                               transport={'timeout': '1 s'})
        uid = cluster.emit(hook.event_type, {'n': 1})
        rx.wait_requests(2, path=path)
        cluster.wait_state(uid, 'succeeded')
        att = cluster.attempts(cluster.delivery(uid)['id'])
        self.assertEqual([a['status_code'] for a in att], [None, 200])
        self.assertRegex(att[0]['error'] or '', re.compile(r'time[d ]?\s*out', re.I))
        self.assertGreaterEqual(att[0]['duration_ms'], 900)
        self.assertLess(att[0]['duration_ms'], 2500)

    def test_connection_refused(self):
        port = harness.free_port()
        ev = harness.uniq('REFUSED')
        tr = cluster.create_transport(base_url='http://127.0.0.1:%d' % port)
        cluster.create_hook(tr, [ev], path='/nothing', retry_schedule='{1s}')
        uid = cluster.emit(ev, {'n': 1})
        cluster.wait_state(uid, 'dead')
        att = cluster.attempts(cluster.delivery(uid)['id'])
        self.assertEqual([a['status_code'] for a in att], [None, None])
        self.assertTrue(all(a['error'] for a in att), att)
        harness.note('connection refused error text: %r' % att[0]['error'])


if __name__ == '__main__':
    unittest.main()
