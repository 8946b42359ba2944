"""Delivery policies in the worker: filters and transforms (the body a
receiver built for another system expects), as the role that set them,
and a failing or slow transform failing its own attempts only."""

import time
import unittest

import harness
from harness import lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(globals())

ORDER_ID = '07c6ad8c-d1ba-4e73-9bbf-c70a085a449c'


class TransformTest(unittest.TestCase):
    maxDiff = None

    def test_automation_body_bytes(self):
        # an order-automation receiver: {"orderId", "eventType"}, X-Signature, ?key=
        cluster.psql("""
            CREATE FUNCTION automation_body(e webhook.event) RETURNS jsonb
                LANGUAGE sql IMMUTABLE AS $$
                SELECT jsonb_build_object(
                    'orderId', e.resource_id,
                    'eventType', replace(initcap(replace(e.event_type, '_', ' ')), ' ', ''))
            $$;
            CREATE TABLE automation_orders (id uuid PRIMARY KEY, state text NOT NULL);
            SELECT webhook.watch('automation_orders', resource => 'order', state_column => 'state');""")
        t = cluster.create_transport(base_url=rx.url('/automation/'), query_key='QueryParameterKey')
        hook = cluster.create_hook(t, ['ORDER_ACCEPTED'], signature='hmac-sha256',
                                   secret='HeaderSecret-SECRET',
                                   transform='automation_body(webhook.event)')
        cluster.psql("INSERT INTO automation_orders VALUES (%s, 'created')" % lit(ORDER_ID))
        cluster.psql("UPDATE automation_orders SET state = 'accepted'")
        req = rx.wait_requests(1, path='/automation/')[0]
        expected = ('{"orderId": "%s", "eventType": "OrderAccepted"}' % ORDER_ID).encode()
        self.assertEqual(req.body, expected)
        self.assertEqual(req.query, 'key=QueryParameterKey')
        self.assertEqual(req.headers.get('Content-Type'), 'application/json')
        harness.verify_hmac_sha256('HeaderSecret-SECRET', req.headers.get('X-Signature'), req.body)
        # preview() showed the very same body
        event = int(cluster.one("SELECT id FROM webhook.event WHERE event_type = 'ORDER_ACCEPTED'"))
        self.assertEqual(cluster.one('SELECT body FROM webhook.preview(%d, %d)' % (hook, event)),
                         expected.decode())
        cluster.psql("SELECT webhook.unwatch('automation_orders'); DROP TABLE automation_orders")

    def test_runs_as_the_role_that_set_it(self):
        cluster.psql("""
            CREATE ROLE wh_setter LOGIN IN ROLE webhook_admin;
            CREATE FUNCTION who_body(e webhook.event) RETURNS jsonb LANGUAGE plpgsql AS $$
            BEGIN
                BEGIN
                    EXECUTE 'ALTER ROLE wh_setter SUPERUSER';
                EXCEPTION WHEN OTHERS THEN
                    NULL;
                END;
                RETURN jsonb_build_object('user', current_user, 'n', e.payload->'n');
            END $$;""")
        t = cluster.create_transport(base_url=rx.url())
        hook = int(cluster.psql("SELECT webhook.create_hook(%d, '{WHO_*}', path => '/who',"
                                " transform => 'who_body(webhook.event)')" % t,
                                user='wh_setter')[0][0])
        cluster.emit('WHO_AM_I', {'n': 1})
        req = rx.wait_requests(1, path='/who')[0]
        self.assertEqual(req.json(), {'user': 'wh_setter', 'n': 1})
        self.assertEqual(cluster.one("SELECT rolsuper FROM pg_roles WHERE rolname = 'wh_setter'"), 'f')
        self.assertEqual(cluster.one('SELECT transform_role::text FROM webhook.hook WHERE id = %d'
                                     % hook), 'wh_setter')

    def test_error_fails_its_attempt_and_is_retried(self):
        cluster.psql("""
            CREATE FUNCTION flaky_body(e webhook.event) RETURNS jsonb LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'no body for event %', e.payload->>'n';
            END $$;""")
        t = cluster.create_transport(base_url=rx.url())
        bad = cluster.create_hook(t, ['FLAKY_EV'], path='/flaky', retry_schedule='{1s,1s}',
                                  transform='flaky_body(webhook.event)')
        good = cluster.hook_on(rx.url(), '/fine')
        uid = cluster.emit('FLAKY_EV', {'n': 7})
        fine = cluster.emit_many(good.event_type, 20)
        rx.wait_requests(20, path='/fine')
        for u in fine:
            cluster.wait_state(u, 'succeeded')
        cluster.wait_for("SELECT attempts FROM webhook.deliveries d JOIN webhook.event e"
                         " ON e.id = d.event_id WHERE e.uid = %s" % lit(uid), '1')
        d = cluster.delivery(uid, hook_id=bad)
        self.assertEqual(d['state'], 'failed')
        a = cluster.attempts(d['id'])[0]
        self.assertIsNone(a['status_code'])
        self.assertEqual(a['error'], 'transform failed: no body for event 7')
        self.assertEqual(rx.requests(path='/flaky'), [])
        # fixed, the retry goes out
        cluster.psql("""CREATE OR REPLACE FUNCTION flaky_body(e webhook.event) RETURNS jsonb
                        LANGUAGE sql AS $$ SELECT jsonb_build_object('n', e.payload->'n') $$""")
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(rx.wait_requests(1, path='/flaky')[0].json(), {'n': 7})

    def test_slow_transform_times_out_alone(self):
        cluster.psql("""
            -- the sleep is the behaviour: a transform that takes too long
            CREATE FUNCTION slow_body(e webhook.event) RETURNS jsonb LANGUAGE sql AS $$
                SELECT jsonb_build_object('slept', pg_sleep(30)::text) $$;""")
        t = cluster.create_transport(base_url=rx.url())
        slow = cluster.create_hook(t, ['SLOW_EV'], path='/slow', retry_schedule='{30s}',
                                   transform='slow_body(webhook.event)')
        good = cluster.hook_on(rx.url(), '/quick')
        uids = [cluster.emit('SLOW_EV', {'n': n}) for n in range(3)]
        started = time.monotonic()
        fine = cluster.emit_many(good.event_type, 20)
        rx.wait_requests(20, path='/quick', timeout=15)
        self.assertLess(time.monotonic() - started, 10)
        for u in uids:
            cluster.wait_for("SELECT d.last_error FROM webhook.deliveries d JOIN webhook.event e"
                             " ON e.id = d.event_id WHERE e.uid = %s AND d.hook_id = %d"
                             % (lit(u), slow),
                             'transform failed: canceling statement due to statement timeout')
        self.assertEqual(rx.requests(path='/slow'), [])
        for u in fine:
            cluster.wait_state(u, 'succeeded')


class TransformSafetyTest(unittest.TestCase):
    """What a transform must not be able to do (the code is an admin's, but
    it runs inside the worker, for every tenant)."""

    def test_cannot_act_through_the_api(self):
        # inside the worker the session's role is the superuser: the API
        # refuses to act at all there, rather than for that role
        victim = cluster.hook_on(rx.url(), '/victim')
        cluster.psql("""
            CREATE FUNCTION spy_body(e webhook.event) RETURNS jsonb LANGUAGE plpgsql AS $$
            BEGIN
                RETURN jsonb_build_object('stolen', webhook.hook_secret(%d));
            END $$;""" % victim.hook_id)
        t = cluster.create_transport(base_url=rx.url())
        spy = cluster.create_hook(t, ['SPY_EV'], path='/spy', retry_schedule='{}',
                                  transform='spy_body(webhook.event)')
        uid = cluster.emit('SPY_EV', {'n': 1})
        cluster.wait_state(uid, 'dead')
        error = cluster.attempts(cluster.delivery(uid, hook_id=spy)['id'])[0]['error']
        self.assertIn('cannot be used within a security-restricted operation', error)
        self.assertEqual(rx.requests(path='/spy'), [])
        # nor through an admin's preview
        event = int(cluster.one('SELECT id FROM webhook.event WHERE uid = %s' % lit(uid)))
        with self.assertRaisesRegex(harness.PsqlError, 'security-restricted operation'):
            cluster.psql('SELECT webhook.preview(%d, %d)' % (spy, event))

    def test_settings_and_writes_do_not_stick(self):
        cluster.psql("""
            CREATE TABLE sticky (n int);
            CREATE FUNCTION sticky_body(e webhook.event) RETURNS jsonb LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM set_config('default_transaction_read_only', 'on', false);
                PERFORM set_config('search_path', 'nowhere', false);
                INSERT INTO public.sticky VALUES (1);
                RETURN jsonb_build_object('n', e.payload->'n');
            END $$;""")
        t = cluster.create_transport(base_url=rx.url())
        cluster.create_hook(t, ['STICKY_EV'], path='/sticky',
                            transform='sticky_body(webhook.event)')
        uids = cluster.emit_many('STICKY_EV', 3)
        # the worker records (so it still writes) and goes on with others
        for u in uids:
            cluster.wait_state(u, 'succeeded')
        other = cluster.hook_on(rx.url(), '/after-sticky')
        cluster.wait_state(cluster.emit(other.event_type, {'n': 1}), 'succeeded')
        self.assertEqual(cluster.one('SELECT count(*) FROM sticky'), '0')
        # and preview leaves the caller's session as it was
        event = int(cluster.one("SELECT id FROM webhook.event WHERE uid = %s" % lit(uids[0])))
        hook = int(cluster.one("SELECT id FROM webhook.hook WHERE path = '/sticky'"))
        rows = cluster.psql('SELECT body FROM webhook.preview(%d, %d); SHOW search_path; '
                            'SHOW default_transaction_read_only' % (hook, event))
        # (psql prints several statements' rows on lines of their own)
        self.assertEqual('\n'.join(r[0] for r in rows).split('\n'),
                         ['{"n": 1}', '"$user", public', 'off'])


class FilterTest(unittest.TestCase):

    def test_only_matching_events_are_sent(self):
        hook = cluster.hook_on(rx.url(), '/big', filter='$.total > 100')
        uids = {n: cluster.emit(hook.event_type, {'total': n * 30}) for n in range(1, 9)}
        # 4 * 30 = 120 and up match
        rx.wait_requests(5, path='/big')
        cluster.worker_passed(rx)       # and nothing more is coming
        got = sorted(r.json()['data']['total'] for r in rx.requests(path='/big'))
        self.assertEqual(got, [120, 150, 180, 210, 240])
        for n, uid in uids.items():
            self.assertEqual(cluster.delivery(uid) is not None, n * 30 > 100)


if __name__ == '__main__':
    unittest.main()
