"""Endpoint health: webhook.disable_after disables a hook whose every
delivery has died for that long (shortened here to 2 s), keeps its waiting
deliveries, and update_hook(active => true) re-enables it."""

import re
import subprocess
import time
import unittest

import harness
from harness import R, lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(
    globals(), extra_conf=["webhook.disable_after = '2 s'"])


def hook_row(hook_id):
    """(active, disabled_reason, failing_since IS NOT NULL, failing_deaths)"""
    r = cluster.psql('SELECT active, disabled_reason, failing_since IS NOT NULL, failing_deaths '
                     'FROM webhook.hook WHERE id = %d' % hook_id)[0]
    return r[0] == 't', r[1], r[2] == 't', int(r[3])


def emit_until(hook, stop, timeout=30, every=0.3):
    """Emit an event for hook every `every` seconds until stop() is true;
    returns how many were emitted.  Fails after timeout."""
    deadline = time.monotonic() + timeout
    n = 0
    while not stop():
        if time.monotonic() > deadline:
            raise AssertionError('still not so after %ss of events; hook %r; log:\n%s'
                                 % (timeout, hook_row(hook.hook_id), cluster.log_tail(20)))
        n += 1
        cluster.emit(hook.event_type, '{"n": %d}' % n)
        # the pace is the behaviour: deaths spread over time, as a failing
        # receiver's come, until the hook is (or is not) disabled
        time.sleep(every)
    return n


class HealthTest(unittest.TestCase):
    maxDiff = None

    def test_a_dying_hook_is_disabled_keeps_waiting_deliveries_and_is_reenabled(self):
        path = '/health-dying'
        rx.script(path, R(500))
        # each delivery fails, is retried once a second later, and dies
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{1s}')
        offset = cluster.log_offset()
        started = time.monotonic()
        emit_until(hook, lambda: not hook_row(hook.hook_id)[0])
        elapsed = time.monotonic() - started
        # the first death comes after about a second, the disabling 2 s later
        self.assertGreater(elapsed, 2.5)
        active, reason, failing, deaths_now = hook_row(hook.hook_id)
        self.assertFalse(active)
        m = re.match(r'^every delivery died for longer than webhook.disable_after '
                     r'\(00:00:02\): (\d+) deaths since .+, no success; re-enable with '
                     r'update_hook\(id, active => true\)$', reason)
        self.assertIsNotNone(m, reason)
        # those in flight when it was disabled may die after, and count too
        deaths = int(m.group(1))
        self.assertGreaterEqual(deaths, 2)
        self.assertGreaterEqual(deaths_now, deaths)
        log = cluster.log(offset)
        self.assertRegex(log, r'WARNING:  webhook: hook %d \(host 127\.0\.0\.1\) disabled: '
                         r'every delivery died for longer than webhook.disable_after, '
                         r'%d deaths since .+ and no success' % (hook.hook_id, deaths))
        self.assertNotIn(path, log, 'the log names more of the URL than its host')

        # its waiting deliveries are kept, and not sent: once those in flight
        # when it was disabled are recorded, and every waiting one is due, a
        # marker event goes out and the workers hold nothing: what they would
        # have sent of the hook's is sent by then
        cluster.wait_for('SELECT coalesce(sum(held + in_flight), 0) FROM webhook_internal.workers()', '0')
        sent = rx.count(path)
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                         "AND state IN ('pending', 'failed') AND next_attempt_at > now()"
                         % hook.hook_id, '0')
        cluster.worker_passed(rx)
        waiting = int(cluster.one("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                                  "AND state IN ('pending', 'failed')" % hook.hook_id))
        self.assertGreater(waiting, 0)
        self.assertEqual(rx.count(path), sent, 'a disabled hook was sent to')
        self.assertEqual(cluster.one("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                                     "AND state = 'cancelled'" % hook.hook_id), '0')

        # re-enabled, it sends them, and what comes next; its failures start
        # again from none
        rx.script(path, R(200))
        cluster.psql('SELECT webhook.update_hook(%d, active => true)' % hook.hook_id)
        self.assertEqual(hook_row(hook.hook_id), (True, None, False, 0))
        uid = cluster.emit(hook.event_type, '{"n": "after"}')
        cluster.wait_state(uid, 'succeeded')
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                         "AND state IN ('pending', 'failed')" % hook.hook_id, '0')
        # and it stays so past disable_after: a canary hook that fails from
        # now on is disabled by a look that came later than 2 s from now,
        # which would have disabled this one too had its failures not started
        # again from none
        canary_path = path + '-canary'
        rx.script(canary_path, R(500))
        canary = cluster.hook_on(rx.url(), canary_path, retry_schedule='{}')
        emit_until(canary, lambda: not hook_row(canary.hook_id)[0])
        self.assertEqual(hook_row(hook.hook_id), (True, None, False, 0))

    def test_b_a_success_in_the_window_keeps_the_hook(self):
        path = '/health-flaky'
        count = [0]

        def every_third_succeeds(req):
            if req.path != path:
                return None
            count[0] += 1
            return R(200) if count[0] % 3 == 0 else R(500)
        rx.respond(every_third_succeeds)
        self.addCleanup(rx.respond, None)
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{}')
        started = time.monotonic()
        emit_until(hook, lambda: time.monotonic() - started > 6)
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                         "AND state IN ('pending', 'failed')" % hook.hook_id, '0')
        dead = int(cluster.one("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                               "AND state = 'dead'" % hook.hook_id))
        self.assertGreater(dead, 5)
        active, reason, _, deaths = hook_row(hook.hook_id)
        self.assertTrue(active)
        self.assertIsNone(reason)
        self.assertLess(deaths, 4)

    def test_b2_a_held_hook_row_stalls_nobody(self):
        """A tenant's open update_hook() holds its hook's row: the worker
        neither waits for it nor loses attempt rows, whether its receiver's
        answers would count deaths (500) or disable it (410); another hook's
        deliveries go at once."""
        for status in (500, 410):
            with self.subTest(status=status):
                self.held_hook_row(status)

    def held_hook_row(self, status):
        rx.default(R(204))
        path = '/held-%d' % status
        rx.script(path, R(status))
        held = cluster.hook_on(rx.url(), path, retry_schedule='{}')
        other = cluster.hook_on(rx.url(), '/not-held-%d' % status)
        session = subprocess.Popen(
            [cluster._bin('psql'), '-X', '-q', '-h', cluster.sockdir, '-p', str(cluster.port),
             '-d', cluster.dbname, '-c',
             # holding the row is the behaviour: 10 s, well past the bound below
             "BEGIN; SELECT webhook.update_hook(%d, path => '%s'); "
             "SELECT pg_sleep(10); COMMIT;" % (held.hook_id, path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cluster._env())
        try:
            cluster.wait_for("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                             "WHERE c.relname = 'hook' AND l.mode = 'RowExclusiveLock'", '1',
                             timeout=10)
            dying = cluster.emit_many(held.event_type, 50)
            started = time.monotonic()
            cluster.emit_many(other.event_type, 100)
            rx.wait_requests(100, path='/not-held-%d' % status, timeout=10)
            # long before the row is let go (waiting for it, they would come
            # after the 10 s)
            self.assertLess(time.monotonic() - started, 6)
            for u in dying:
                cluster.wait_for("SELECT d.state IN ('dead', 'cancelled') FROM webhook.deliveries d "
                                 "JOIN webhook.event e ON e.id = d.event_id WHERE e.uid = %s"
                                 % lit(u), 't')
            self.assertEqual(cluster.one(
                "SELECT count(*) FROM webhook.deliveries d LEFT JOIN webhook.attempt a "
                "ON a.delivery_id = d.id WHERE d.hook_id = %d AND a.delivery_id IS NULL "
                "AND d.state <> 'cancelled'" % held.hook_id), '0')
        finally:
            session.wait(30)

    def test_c_zero_turns_it_off(self):
        for bad in ('bogus', '-1 s'):
            with self.assertRaises(harness.PsqlError) as cm:
                cluster.psql('ALTER SYSTEM SET webhook.disable_after = %s' % lit(bad))
            self.assertIn('invalid value for parameter "webhook.disable_after"', str(cm.exception))
        cluster.set_setting('webhook.disable_after', '0')
        self.addCleanup(cluster.set_setting, 'webhook.disable_after', None)
        path = '/health-off'
        rx.script(path, R(500))
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{}')
        started = time.monotonic()
        emit_until(hook, lambda: time.monotonic() - started > 6)
        active, reason, failing, deaths = hook_row(hook.hook_id)
        self.assertTrue(active)
        self.assertIsNone(reason)
        self.assertTrue(failing)
        self.assertGreater(deaths, 5)
        # back to 2 s, it goes at the next look
        cluster.set_setting('webhook.disable_after', '2 s')
        emit_until(hook, lambda: not hook_row(hook.hook_id)[0], timeout=15)


if __name__ == '__main__':
    unittest.main()
