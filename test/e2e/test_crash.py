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
