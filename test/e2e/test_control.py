"""Control: webhook.enabled, SIGTERM of the worker, register(), ping()."""

import json
import os
import re
import signal
import time
import unittest

import harness
from harness import lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(globals())


def set_enabled(value):
    cluster.set_setting('webhook.enabled', value)
    cluster.wait_for("SELECT current_setting('webhook.enabled')", value, timeout=10)


class ControlTest(unittest.TestCase):
    maxDiff = None

    def test_enabled_off_pauses_sending(self):
        path = '/ctl-enabled'
        hook = cluster.hook_on(rx.url(), path)
        self.addCleanup(set_enabled, 'on')
        set_enabled('off')     # and the workers have taken it (reload_and_wait)
        uid = cluster.emit(hook.event_type, {'paused': True})
        # the commit woke the worker; it has gone round its loop, claim and
        # all, at least once since
        cluster.workers_went_round()
        self.assertEqual(cluster.one('SELECT sum(held + in_flight) FROM webhook_internal.workers()'),
                         '0', 'claimed while webhook.enabled = off')
        self.assertEqual(rx.count(path=path), 0, 'sent while webhook.enabled = off')
        # the event waits in the log, not read by the hook's cursor: no
        # delivery made of it yet
        self.assertIsNone(cluster.delivery(uid), 'read from the log while paused')
        self.assertEqual(cluster.unread(hook.hook_id), 1)
        t0 = time.monotonic()
        set_enabled('on')
        req = rx.wait_requests(1, path=path, timeout=10)[0]
        harness.note('webhook.enabled on -> delivery after %.2f s' % (req.arrived - t0))
        self.assertEqual(req.headers['webhook-id'], uid)
        cluster.wait_state(uid, 'succeeded')

    def test_sigterm_worker_restarts_cleanly(self):
        offset = cluster.log_offset()
        pid = cluster.wait_worker()
        os.kill(pid, signal.SIGTERM)
        t0 = time.monotonic()
        newpid = cluster.wait_worker(other_than=pid, timeout=30)
        harness.note('worker restarted %.1f s after SIGTERM' % (time.monotonic() - t0))
        # the old process is gone
        harness.wait_until(lambda: not os.path.exists('/proc/%d' % pid), 10,
                           'the old worker %d to be gone' % pid)
        log = cluster.log(offset)
        for bad in ('terminated by signal', 'reinitializing', 'PANIC', 'server process'):
            self.assertNotIn(bad, log, 'after SIGTERM of the worker the log says:\n' + log)
        # and it still delivers
        path = '/ctl-after-term'
        hook = cluster.hook_on(rx.url(), path)
        uid = cluster.emit(hook.event_type, {'after': 'sigterm'})
        self.assertEqual(rx.wait_requests(1, path=path)[0].headers['webhook-id'], uid)
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(cluster.worker_pid(), newpid)

    def test_register_reachable(self):
        path = '/ctl-register'
        url = rx.url(path)
        ev = harness.uniq('REG')
        res = json.loads(cluster.one('SELECT webhook.register(%s, event_types => %s)'
                                     % (lit(url), lit([ev]))))
        self.assertEqual(set(res), {'status', 'message', 'hook_id'}, res)
        self.assertEqual(res['status'], 200)
        self.assertEqual(res['message'], 'Registered client at: %s' % url)
        self.assertIsInstance(res['hook_id'], int)
        heads = rx.wait_requests(1, path=path, method='HEAD', timeout=5)
        self.assertEqual(len(heads), 1)
        row = cluster.psql('SELECT t.base_url, h.path, h.event_types::text, h.active '
                           'FROM webhook.hook h JOIN webhook.transport t ON t.id = h.transport_id '
                           'WHERE h.id = %d' % res['hook_id'])
        self.assertEqual(row, [[rx.url(), path, '{%s}' % ev, 't']])
        uid = cluster.emit(ev, {'registered': True})
        req = rx.wait_requests(1, path=path, method='POST')[0]
        self.assertEqual(req.headers['webhook-id'], uid)
        cluster.wait_state(uid, 'succeeded')
        # the one-call path signs with a generated Standard Webhooks secret
        secret = cluster.one('SELECT webhook.hook_secret(%d)' % res['hook_id'])
        harness.verify_standard(secret, req.headers, req.body)
        # registering another path on the same origin reuses the transport
        res2 = json.loads(cluster.one('SELECT webhook.register(%s, event_types => %s)'
                                      % (lit(rx.url(path + '-2')), lit([ev]))))
        self.assertEqual(res2['status'], 200, res2)
        self.assertEqual(cluster.one(
            'SELECT count(DISTINCT transport_id) FROM webhook.hook WHERE id IN (%d, %d)'
            % (res['hook_id'], res2['hook_id'])), '1')

    def test_register_unreachable(self):
        port = harness.free_port()
        url = 'http://127.0.0.1:%d/nobody-home' % port
        before = cluster.one('SELECT count(*) FROM webhook.hook') + '/' + \
            cluster.one('SELECT count(*) FROM webhook.transport')
        res = json.loads(cluster.one('SELECT webhook.register(%s, event_types => %s)'
                                     % (lit(url), lit([harness.uniq('REG')]))))
        self.assertEqual(res, {'status': 404, 'message': 'Client not responding at %s' % url})
        after = cluster.one('SELECT count(*) FROM webhook.hook') + '/' + \
            cluster.one('SELECT count(*) FROM webhook.transport')
        self.assertEqual(after, before, 'an unreachable register() registered something')
        self.assertEqual(cluster.one("SELECT count(*) FROM webhook.transport "
                                     "WHERE base_url LIKE %s" % lit('%:' + str(port) + '%')), '0')

    def test_ping(self):
        path = '/ctl-ping'
        hook = cluster.hook_on(rx.url(), path, event_type='NEVER_EMITTED_' + harness.uniq('P'))
        secret = cluster.one('SELECT webhook.hook_secret(%d)' % hook.hook_id)
        delivery_id = int(cluster.one('SELECT webhook.ping(%d)' % hook.hook_id))
        req = rx.wait_requests(1, path=path)[0]
        self.assertEqual(req.method, 'POST')
        body = req.json()
        self.assertEqual(body.get('type'), 'WEBHOOK_PING', body)
        harness.verify_standard(secret, req.headers, req.body)
        cluster.wait_for("SELECT state FROM webhook.deliveries WHERE id = %d" % delivery_id,
                         'succeeded')
        # answered 2xx at once: its row went, its attempt shows it
        self.assertEqual(cluster.one(
            'SELECT e.uid::text FROM webhook.deliveries d JOIN webhook.event e '
            'ON e.id = d.event_id WHERE d.id = %d' % delivery_id), req.headers['webhook-id'])
        self.assertEqual(cluster.one('SELECT hook_id FROM webhook.deliveries WHERE id = %d'
                                     % delivery_id), str(hook.hook_id))

    def test_deny_networks(self):
        path = '/ctl-denied'
        self.addCleanup(cluster.set_setting, 'webhook.deny_networks', None)
        cluster.set_setting('webhook.deny_networks', '10.0.0.0/8,127.0.0.0/8')
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{1h}')
        uid = cluster.emit(hook.event_type, {'denied': True})
        cluster.wait_state(uid, 'failed')
        att = cluster.attempts(cluster.delivery(uid)['id'])
        self.assertEqual(len(att), 1, att)
        self.assertIsNone(att[0]['status_code'])
        self.assertRegex(att[0]['error'] or '', re.compile(r'den(y|ied)', re.I))
        harness.note('deny_networks error: %r' % att[0]['error'])
        self.assertEqual(rx.count(path=path), 0)

        # the same address written as IPv4-mapped IPv6 is refused too
        mapped = rx.url().replace('127.0.0.1', '[::ffff:127.0.0.1]')
        hook6 = cluster.hook_on(mapped, path + '-mapped', retry_schedule='{1h}')
        uid6 = cluster.emit(hook6.event_type, {'denied': 'mapped'})
        cluster.wait_state(uid6, 'failed')
        att6 = cluster.attempts(cluster.delivery(uid6)['id'])
        self.assertIn('webhook.deny_networks', att6[0]['error'] or '')
        self.assertEqual(rx.count(path=path + '-mapped'), 0)

        # and register()'s reachability check does not reach it either
        answer = json.loads(cluster.one(
            'SELECT webhook.register(%s)' % lit(rx.url() + path + '-register')))
        self.assertEqual(answer['status'], 404, answer)
        self.assertEqual(rx.count(path=path + '-register'), 0)

    def test_max_response_bytes(self):
        path = '/ctl-big-answer'
        self.addCleanup(cluster.set_setting, 'webhook.max_response_bytes', None)
        cluster.set_setting('webhook.max_response_bytes', '16')
        rx.script(path, harness.R(200, body=b'0123456789' * 100))
        hook = cluster.hook_on(rx.url(), path)
        uid = cluster.emit(hook.event_type, {'n': 1})
        cluster.wait_state(uid, 'succeeded')
        body = cluster.one('SELECT response_body FROM webhook.attempt WHERE delivery_id = %d'
                           % cluster.delivery(uid)['id'])
        self.assertEqual(body, '0123456789012345')


class QueueFailureTest(unittest.TestCase):
    """An attempt the database refuses to store is recorded without the
    receiver's answer, or failing that as a failure of its delivery alone:
    the same worker goes on, and the delivery is retried per its schedule."""

    def test_failed_record_is_retried(self):
        path = '/ctl-record-fails'
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{1s,1s}')
        pid = cluster.wait_worker()
        cluster.psql('ALTER TABLE webhook.attempt ADD CONSTRAINT refuse_2xx'
                     ' CHECK (status_code NOT BETWEEN 200 AND 299) NOT VALID')
        dropped = []

        def drop():
            if not dropped:
                cluster.psql('ALTER TABLE webhook.attempt DROP CONSTRAINT refuse_2xx')
                dropped.append(True)
        self.addCleanup(drop)
        offset = cluster.log_offset()
        uid = cluster.emit(hook.event_type, {'record': 'fails'})
        rx.wait_requests(1, path=path, timeout=10)
        cluster.wait_for("SELECT d.attempts FROM webhook.deliveries d JOIN webhook.event e"
                         " ON e.id = d.event_id WHERE e.uid = %s" % lit(uid), '1')
        drop()
        d = cluster.delivery(uid)
        self.assertIn('refuse_2xx', d['last_error'] or '')
        self.assertIn('violates check constraint "refuse_2xx"', cluster.log(offset))
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(cluster.worker_pid(), pid, 'the worker was restarted')
        self.assertEqual(rx.count(path=path), 2)
        # the first attempt left no row: only the retry's is there
        self.assertEqual([(a['attempt_no'], a['status_code']) for a in cluster.attempts(d['id'])],
                         [(2, 200)])


class WorkerMemoryTest(unittest.TestCase):
    """The worker's memory stays flat across batches: its memory contexts
    total the same after 400 more deliveries, but the plans it keeps, of
    which a few more may come (a kind of claim a slow machine's pace calls
    for late: some 1.5 MB each), never one per batch."""

    def worker_memory(self, pid):
        """(bytes but the kept plans', the kept plans) of the worker."""
        offset = cluster.log_offset()
        cluster.psql('SELECT pg_log_backend_memory_contexts(%d)' % pid)
        m = harness.wait_until(lambda: re.search(r'Grand total: (\d+) bytes', cluster.log(offset)),
                               10, 'the worker to log its memory contexts')
        log = cluster.log(offset)
        plans = sum(int(n) for n in re.findall(
            r'level: \d+; CachedPlan(?:Source|Query)?: (\d+) total in', log))
        return int(m.group(1)) - plans, len(re.findall(r'level: \d+; CachedPlanSource: ', log))

    def deliver(self, hook, n):
        cluster.psql("SELECT count(webhook.emit(%s, jsonb_build_object('n', g)))"
                     " FROM generate_series(1, %d) g" % (lit(hook.event_type), n))
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries d"
                         " JOIN webhook.event e ON e.id = d.event_id"
                         " WHERE d.hook_id = %d AND d.state = 'succeeded'"
                         % hook.hook_id, str(n), timeout=60)

    def test_memory_is_flat(self):
        path = '/ctl-memory'
        hook = cluster.hook_on(rx.url(), path)
        pid = cluster.wait_worker()
        self.deliver(hook, 400)              # warm up: caches, plans, connections
        before, plans_before = self.worker_memory(pid)
        cluster.psql('DELETE FROM webhook.event e WHERE e.event_type = %s'
                     % lit(hook.event_type))
        self.deliver(hook, 400)
        after, plans_after = self.worker_memory(pid)
        harness.note('worker memory contexts but plans: %d bytes, then %d after 400 more'
                     ' deliveries; plans kept: %d, then %d'
                     % (before, after, plans_before, plans_after))
        self.assertEqual(cluster.worker_pid(), pid)
        self.assertLessEqual(after, before * 1.05 + 65536)
        self.assertLessEqual(plans_after, plans_before + 3)


class NotPreloadedTest(unittest.TestCase):
    """Without the library in shared_preload_libraries, CREATE EXTENSION still
    works, says that nothing will be sent, and no worker runs."""

    def test_create_extension_warns(self):
        c = harness.Cluster(extra_conf=["shared_preload_libraries = ''"],
                            create_extension=False)
        self.addCleanup(c.close)
        c.start()
        _, err = c.psql('CREATE EXTENSION webhook', stderr=True)
        self.assertIn('WARNING:  webhook is not in shared_preload_libraries: '
                      'no deliveries will be made', err)
        self.assertEqual(c.one("SELECT count(*) FROM pg_extension WHERE extname = 'webhook'"), '1')
        self.assertIsNone(c.worker_pid())
        uid = c.one("SELECT webhook.emit('ORDER_CREATE', '{}')")
        self.assertEqual(c.one('SELECT count(*) FROM webhook.event WHERE uid = %s' % lit(uid)), '1')


if __name__ == '__main__':
    unittest.main()
