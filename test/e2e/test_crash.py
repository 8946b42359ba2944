"""Crashes: at-least-once delivery through kill -9 of the worker and an immediate restart;
a rolled-back emit is never sent."""

import os
import signal
import unittest

import harness
from harness import R, lit

cluster = rx = None
N = 2000


def setUpModule():
    global cluster, rx
    cluster = harness.start_cluster()
    rx = harness.Receiver(default=R(200, delay=0.02))


def tearDownModule():
    harness.stop_all()


def emit_batches(event_type, n=N, batches=4):
    per = n // batches
    for b in range(batches):
        cluster.psql('SELECT count(webhook.emit(%s, jsonb_build_object(\'batch\', %d, \'n\', g), '
                     'resource => \'crash\', resource_id => g::text)) '
                     'FROM generate_series(1, %d) g' % (lit(event_type), b, per))


class CrashTest(unittest.TestCase):
    maxDiff = None

    def check_all_arrived(self, event_type, path, label):
        # every event's delivery succeeded, none is left: one sent again
        # after the crash (its cursor had not moved past it) has a second
        # delivery row, succeeded too
        cluster.wait_for(
            "SELECT count(DISTINCT d.event_id) FILTER (WHERE d.state = 'succeeded') || '/' ||"
            " count(*) FILTER (WHERE d.state <> 'succeeded') "
            'FROM webhook.deliveries d JOIN webhook.event e ON e.id = d.event_id '
            'WHERE e.event_type = %s' % lit(event_type), '%d/0' % N, timeout=30,
            interval=0.5)
        uids = {r[0] for r in cluster.psql('SELECT uid FROM webhook.event WHERE event_type = %s'
                                           % lit(event_type))}
        self.assertEqual(len(uids), N)
        got = [r.headers.get('webhook-id') for r in rx.requests(path=path)]
        missing = uids - set(got)
        self.assertEqual(missing, set(), '%d event(s) never arrived' % len(missing))
        self.assertEqual(set(got) - uids, set(), 'unknown webhook-ids arrived')
        harness.note('%s: %d events, %d requests (%d duplicates)'
                     % (label, N, len(got), len(got) - len(set(got))))

    def test_kill_9_worker_mid_flight(self):
        path = '/crash-kill'
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{1s,1s,1s,1s}')
        emit_batches(hook.event_type)
        rx.wait_requests(200, path=path)
        pid = cluster.worker_pid()
        self.assertIsNotNone(pid, 'no worker')
        before = rx.count(path=path)
        self.assertLess(before, N, 'all delivered before the kill: not mid-flight')
        os.kill(pid, signal.SIGKILL)
        harness.note('kill -9 of the worker after %d of %d requests' % (before, N))
        newpid = cluster.wait_worker(other_than=pid)
        self.assertNotEqual(newpid, pid)
        self.check_all_arrived(hook.event_type, path, 'kill -9')

    def test_immediate_restart_mid_flight(self):
        path = '/crash-restart'
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{1s,1s,1s,1s}')
        emit_batches(hook.event_type)
        rx.wait_requests(200, path=path)
        before = rx.count(path=path)
        self.assertLess(before, N, 'all delivered before the restart: not mid-flight')
        cluster.restart('immediate')
        harness.note('restart -m immediate after %d of %d requests' % (before, N))
        cluster.wait_worker()
        self.check_all_arrived(hook.event_type, path, 'restart -m immediate')

    def test_an_ordered_event_waiting_as_a_row_goes_after_those_read_again(self):
        """An ordered hook's event that waits as a row behind its resource's
        earlier one, in flight for long when the cluster restarts, goes
        after it: the new worker reads the earlier one again (the stored
        cursor had not moved past it) and sends it first."""
        path = '/crash-ordered'
        answered = []

        def slow_first(req):
            if req.path == path and req.json()['data']['n'] == 1 and not answered:
                answered.append(req)
                return R(200, delay=30)
            return None
        rx.respond(slow_first)
        self.addCleanup(rx.respond, None)
        hook = cluster.hook_on(rx.url(), path, ordered='resource')
        emit = ("SELECT webhook.emit(%s, '{\"n\": %%d}', resource => 'order', resource_id => '7')"
                % lit(hook.event_type))
        cluster.psql(emit % 1)
        rx.wait_requests(1, path=path)
        cluster.psql(emit % 2)
        # behind the first, in flight for over a second, the second waits as a row
        cluster.wait_for("SELECT count(*) FROM webhook.delivery d JOIN webhook.event e"
                         " ON e.id = d.event_id WHERE d.hook_id = %d AND e.payload->>'n' = '2'"
                         % hook.hook_id, '1')
        # the worker commits asynchronously: its row made durable first
        cluster.psql('CHECKPOINT')
        cluster.restart('immediate')
        cluster.wait_worker()
        reqs = rx.wait_requests(3, path=path, timeout=60)
        self.assertEqual([r.json()['data']['n'] for r in reqs[1:3]], [1, 2])

    def test_rolled_back_emit_never_sent(self):
        path = '/crash-rollback'
        hook = cluster.hook_on(rx.url(), path)
        rolled = cluster.one("BEGIN; SELECT webhook.emit(%s, '{\"rolled\": true}'); ROLLBACK;"
                             % lit(hook.event_type))
        self.assertRegex(rolled, r'^[0-9a-f-]{36}$')
        # also a savepoint rolled back inside a committed transaction
        rows = cluster.psql("BEGIN; SAVEPOINT s; SELECT webhook.emit(%s, '{\"sp\": true}'); "
                            "ROLLBACK TO SAVEPOINT s; SELECT webhook.emit(%s, '{\"kept\": true}'); "
                            "COMMIT;" % (lit(hook.event_type), lit(hook.event_type)))
        sp_uid, kept_uid = rows[0][0].split('\n')
        req = rx.wait_requests(1, path=path)[0]
        self.assertEqual(req.headers['webhook-id'], kept_uid)
        cluster.wait_state(kept_uid, 'succeeded')
        # a marker event emitted after them went out and the workers hold
        # nothing: whatever they would have sent of the rolled-back ones is here
        cluster.worker_passed(rx)
        self.assertEqual([r.headers['webhook-id'] for r in rx.requests(path=path)], [kept_uid])
        self.assertEqual(cluster.one('SELECT count(*) FROM webhook.event WHERE uid IN (%s, %s)'
                                     % (lit(rolled), lit(sp_uid))), '0')
        self.assertEqual(cluster.one('SELECT count(*) FROM webhook.event WHERE event_type = %s'
                                     % lit(hook.event_type)), '1')


if __name__ == '__main__':
    unittest.main()
