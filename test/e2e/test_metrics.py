"""Metrics: webhook.metrics() read with an independent Prometheus text-format
parser (test/verifier/parse-metrics.js) after deliveries that succeed, fail,
time out, cannot connect, die and wait; its counts equal the catalog's, to
the attempt; a tenant role sees its tenant's series only; the workers'
gauges show what is in flight."""

import collections
import time
import unittest

import harness
from harness import lit, R

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(globals())

FAMILIES = {
    'webhook_attempts_total': 'COUNTER',
    'webhook_attempt_duration_seconds': 'HISTOGRAM',
    'webhook_deliveries_dead_total': 'COUNTER',
    'webhook_deliveries': 'GAUGE',
    'webhook_oldest_due_seconds': 'GAUGE',
    'webhook_worker_up': 'GAUGE',
    'webhook_worker_in_flight': 'GAUGE',
    'webhook_worker_held': 'GAUGE',
}
BOUNDS = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']
TENANT_FAMILIES = ('webhook_attempts_total', 'webhook_deliveries_dead_total',
                   'webhook_attempt_duration_seconds_bucket', 'webhook_attempt_duration_seconds_sum',
                   'webhook_attempt_duration_seconds_count', 'webhook_deliveries',
                   'webhook_oldest_due_seconds')


def hook(tenant, path, transport=None, **kw):
    """A transport of tenant (to the receiver, or base_url) and a hook on it
    for a fresh event type; returns (hook id, event type)."""
    event_type = harness.uniq('MX')
    transport = dict(transport or {})
    base_url = transport.pop('base_url', rx.url())
    tid = cluster.create_transport(base_url=base_url, tenant=tenant, **transport)
    return cluster.create_hook(tid, [event_type], path=path, **kw), event_type


def emit(tenant, event_type, n=1):
    cluster.psql("SELECT webhook.emit(%s, jsonb_build_object('n', g), tenant => %s)"
                 " FROM generate_series(1, %d) g" % (lit(event_type), lit(tenant), n))


def samples(user=None):
    """The samples of metrics() (as user), by (name, frozenset of labels)."""
    text = cluster.one('SELECT webhook.metrics()', user=user)
    parsed = METRICS_PARSER(text)
    out = {}
    for s in parsed['samples']:
        out[(s['name'], frozenset(s['labels'].items()))] = float(s['value'])
    return text, parsed, out


def value(out, name, **labels):
    return out[(name, frozenset((k, str(v)) for k, v in labels.items()))]


METRICS_PARSER = None


class MetricsTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        global METRICS_PARSER
        METRICS_PARSER = harness.prometheus_parser()
        c = cluster
        c.psql("CREATE ROLE mx_acme LOGIN; CREATE ROLE mx_monitor LOGIN IN ROLE pg_monitor")
        c.psql("SELECT webhook.grant_tenant('mx_acme', 'acme')")
        rx.script('/mx-ok', R(200))
        rx.script('/mx-retry', R(500), R(200))
        rx.script('/mx-slow', R(200, delay=3))
        rx.script('/mx-500', R(500))
        rx.script('/mx-order', R(500))
        cls.hooks = {}
        # acme: 3 successes; one failure then a success; an ordered hook whose
        # first delivery fails and waits an hour, holding two more pending
        cls.hooks['ok'] = hook('acme', '/mx-ok')
        cls.hooks['retry'] = hook('acme', '/mx-retry', retry_schedule='{1s}')
        cls.hooks['order'] = hook('acme', '/mx-order', retry_schedule='{1h}', ordered='hook')
        # globex: a timeout, a 500, a refused connection, each dying at once
        cls.hooks['timeout'] = hook('globex', '/mx-slow', transport={'timeout': '1 s'},
                                    retry_schedule='{}')
        cls.hooks['fail'] = hook('globex', '/mx-500', retry_schedule='{}')
        cls.hooks['refused'] = hook('globex', '', retry_schedule='{}', transport={
            'base_url': 'http://127.0.0.1:%d' % harness.free_port()})
        emit('acme', cls.hooks['ok'][1], 3)
        emit('acme', cls.hooks['retry'][1])
        emit('acme', cls.hooks['order'][1], 3)
        for name in ('timeout', 'fail', 'refused'):
            emit('globex', cls.hooks[name][1])
        ids = ','.join(str(h) for h, _ in cls.hooks.values())
        # settled: every event read (an unordered hook's delivery row is made
        # with its first attempt's outcome), every delivery finished but the
        # ordered hook's three
        c.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id IN (%s)" % ids,
                   '10', timeout=40)
        c.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id IN (%s)"
                   " AND state IN ('pending', 'failed')" % ids, '3', timeout=40)
        c.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d AND state = 'failed'"
                   % cls.hooks['order'][0], '1', timeout=20)

    def by_hook(self, sql):
        """{(hook_id, key): count} from rows (hook_id, key, count)."""
        return {(int(h), k): int(n) for h, k, n in cluster.psql(sql)}

    def test_counts_equal_the_catalog(self):
        text, parsed, out = samples()
        # every family, typed, with its help
        self.assertEqual({f['name']: f['type'] for f in parsed['families']}, FAMILIES)
        self.assertTrue(all(f['help'] for f in parsed['families']))
        h = {name: hid for name, (hid, _) in self.hooks.items()}
        tenant = {'ok': 'acme', 'retry': 'acme', 'order': 'acme',
                  'timeout': 'globex', 'fail': 'globex', 'refused': 'globex'}
        expected = {'ok': {'success': 3}, 'retry': {'failure': 1, 'success': 1},
                    'order': {'failure': 1}, 'timeout': {'timeout': 1},
                    'fail': {'failure': 1}, 'refused': {'error': 1}}
        for name, outcomes in expected.items():
            for outcome in ('success', 'failure', 'timeout', 'error'):
                self.assertEqual(value(out, 'webhook_attempts_total', tenant=tenant[name],
                                       hook=h[name], outcome=outcome),
                                 outcomes.get(outcome, 0), (name, outcome, text))
        # the same from the catalog: attempts by hook and outcome
        catalog = self.by_hook(
            "SELECT d.hook_id, CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 'success'"
            "  WHEN a.status_code IS NOT NULL THEN 'failure'"
            "  WHEN a.error LIKE '%%timed out%%' THEN 'timeout' ELSE 'error' END, count(*)"
            "  FROM webhook.attempt a JOIN webhook.deliveries d ON d.id = a.delivery_id"
            " WHERE d.hook_id IN (%s) GROUP BY 1, 2" % ','.join(map(str, h.values())))
        for (hid, outcome), n in catalog.items():
            name = next(k for k, v in h.items() if v == hid)
            self.assertEqual(value(out, 'webhook_attempts_total', tenant=tenant[name],
                                   hook=hid, outcome=outcome), n, (name, outcome))
        # deaths, pending and failed as in the catalog
        states = self.by_hook("SELECT hook_id, state, count(*) FROM webhook.deliveries"
                              " WHERE hook_id IN (%s) GROUP BY 1, 2"
                              % ','.join(map(str, h.values())))
        for name, hid in h.items():
            self.assertEqual(value(out, 'webhook_deliveries_dead_total', tenant=tenant[name],
                                   hook=hid), states.get((hid, 'dead'), 0), name)
            for state in ('pending', 'failed'):
                self.assertEqual(value(out, 'webhook_deliveries', tenant=tenant[name],
                                       hook=hid, state=state),
                                 states.get((hid, state), 0), (name, state))
        self.assertEqual(states.get((h['order'], 'pending')), 2)
        self.assertEqual(states.get((h['order'], 'failed')), 1)
        for name in ('timeout', 'fail', 'refused'):
            self.assertEqual(states.get((h[name], 'dead')), 1, name)
        # the ordered hook's two pending deliveries are due and wait: their age
        # shows; a hook with nothing due shows 0
        age = value(out, 'webhook_oldest_due_seconds', tenant='acme', hook=h['order'])
        self.assertGreater(age, 0)
        self.assertEqual(value(out, 'webhook_oldest_due_seconds', tenant='acme', hook=h['ok']), 0)

    def test_histogram(self):
        text, parsed, out = samples()
        for tenant in ('acme', 'globex'):
            rows = cluster.psql(
                "SELECT a.duration_ms FROM webhook.attempt a"
                "  JOIN webhook.deliveries d ON d.id = a.delivery_id"
                "  JOIN webhook.hook h ON h.id = d.hook_id"
                "  JOIN webhook.transport t ON t.id = h.transport_id"
                " WHERE t.tenant = %s" % lit(tenant))
            durations = [float(r[0]) / 1000 for r in rows]
            count = value(out, 'webhook_attempt_duration_seconds_count', tenant=tenant)
            self.assertEqual(count, len(durations), text)
            self.assertEqual(count, {'acme': 6, 'globex': 3}[tenant])
            buckets = [value(out, 'webhook_attempt_duration_seconds_bucket', tenant=tenant, le=le)
                       for le in BOUNDS]
            self.assertEqual(buckets, sorted(buckets), 'cumulative')
            self.assertEqual(buckets[-1], count, '+Inf is the count')
            for le, n in zip(BOUNDS[:-1], buckets):
                self.assertEqual(n, sum(1 for d in durations if d <= float(le)), le)
            self.assertAlmostEqual(value(out, 'webhook_attempt_duration_seconds_sum',
                                         tenant=tenant), sum(durations), places=6)
        # the timeout took its second
        self.assertEqual(value(out, 'webhook_attempt_duration_seconds_bucket',
                               tenant='globex', le='0.5'), 2)

    def test_tenant_sees_its_own(self):
        _, _, admin = samples()
        _, _, acme = samples(user='mx_acme')
        _, _, monitor = samples(user='mx_monitor')
        self.assertEqual(monitor.keys(), admin.keys())
        tenants = {dict(labels).get('tenant') for name, labels in acme if name in TENANT_FAMILIES}
        self.assertEqual(tenants, {'acme'})
        # all of acme's series, and the workers'
        self.assertEqual(set(acme), {k for k in admin
                                     if k[0] not in TENANT_FAMILIES
                                     or dict(k[1]).get('tenant') == 'acme'})
        self.assertEqual(value(acme, 'webhook_worker_up', worker=1), 1)
        self.assertEqual(cluster.one("SELECT count(*) FROM webhook.metrics_rows()"
                                     " WHERE tenant <> 'acme'", user='mx_acme'), '0')
        # a role with no grant may not call it
        cluster.psql('CREATE ROLE mx_nobody LOGIN')
        with self.assertRaisesRegex(harness.PsqlError, 'permission denied'):
            cluster.psql('SELECT webhook.metrics()', user='mx_nobody')

    def test_workers_in_flight(self):
        hid, event_type = hook('other', '/mx-slow')
        emit('other', event_type)
        # while the receiver takes its 3 seconds, the request is in flight
        cluster.wait_for("SELECT value FROM webhook.metrics_rows()"
                         " WHERE metric = 'webhook_worker_in_flight' AND worker = 1", '1',
                         timeout=10)
        self.assertEqual(cluster.one("SELECT value FROM webhook.metrics_rows()"
                                     " WHERE metric = 'webhook_worker_held' AND worker = 1"), '1')
        cluster.wait_for("SELECT value FROM webhook.metrics_rows()"
                         " WHERE metric = 'webhook_worker_in_flight' AND worker = 1", '0',
                         timeout=10)
        cluster.wait_for("SELECT value FROM webhook.metrics_rows()"
                         " WHERE metric = 'webhook_attempts_total' AND hook_id = %d"
                         " AND outcome = 'success'" % hid, '1', timeout=10)
        _, _, out = samples()
        self.assertEqual(value(out, 'webhook_worker_up', worker=1), 1)

    def test_counters_over_many_batches(self):
        """A hook's counters, batch after batch of successes at the first
        attempt (the worker adds them without a statement from the
        second batch on: src/hook_counters.c; bench/profile.sh shows the
        statement gone), are its attempts exactly; and so they stay with an
        admin's trigger on the counters' table, which sees every update
        (the statement then adds them)."""
        rx.script('/mx-batches', R(200))
        hid, event_type = hook('batches', '/mx-batches')
        cluster.psql("CREATE TABLE mx_counted (hook_id bigint, successes bigint);"
                     "CREATE FUNCTION mx_count() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$BEGIN INSERT INTO public.mx_counted VALUES (NEW.hook_id, NEW.successes);"
                     " RETURN NULL; END$$")
        self.addCleanup(cluster.psql, "DROP TABLE mx_counted; DROP FUNCTION mx_count() CASCADE")
        offset = cluster.log_offset()
        sent = 0
        for phase in ('no trigger', 'trigger'):
            if phase == 'trigger':
                cluster.psql("CREATE TRIGGER mx_count AFTER UPDATE ON webhook.hook_metrics"
                             " FOR EACH ROW EXECUTE FUNCTION mx_count()")
            # batches one after the other: each recorded before the next is sent
            for size in (1, 7, 20, 3, 30):
                emit('batches', event_type, size)
                sent += size
                rx.wait_requests(sent, path='/mx-batches')
                cluster.wait_for("SELECT successes FROM webhook.hook_metrics"
                                 " WHERE hook_id = %d" % hid, str(sent), timeout=20)
            # the counters are the attempts recorded, bucket by bucket
            durations = [float(d) for d, in cluster.psql(
                "SELECT duration_ms FROM webhook.attempt WHERE hook_id = %d" % hid)]
            self.assertEqual(len(durations), sent, phase)
            bounds_ms = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
            expected = [sum(1 for d in durations if d <= b) for b in bounds_ms] + [sent]
            row = cluster.psql("SELECT successes, failures + timeouts + errors + deaths,"
                               " duration_sum, duration_buckets FROM webhook.hook_metrics"
                               " WHERE hook_id = %d" % hid)[0]
            self.assertEqual(row[0], str(sent), phase)
            self.assertEqual(row[1], '0', phase)
            self.assertAlmostEqual(float(row[2]), sum(durations) / 1000, places=6, msg=phase)
            self.assertEqual([int(b) for b in row[3].strip('{}').split(',')], expected, phase)
        # the trigger saw the updates of the second phase, the last one last
        counted = cluster.psql("SELECT successes FROM mx_counted WHERE hook_id = %d"
                               " ORDER BY successes" % hid)
        self.assertGreaterEqual(len(counted), 5)
        self.assertEqual(counted[-1], [str(sent)])
        # and no batch failed on the way (an AFTER trigger fired outside a
        # statement fails its record, which is then made again one by one)
        self.assertNotRegex(cluster.log(offset), r'webhook worker: (ERROR|WARNING):')

    def test_label_escaping(self):
        raw = 'a\\b"c\nd'
        escaped = cluster.one('SELECT webhook_internal.prometheus_label(%s)' % lit(raw))
        self.assertEqual(escaped, 'a\\\\b\\"c\\nd')
        parsed = METRICS_PARSER('# TYPE x gauge\nx{l="%s"} 1\n' % escaped)
        self.assertEqual(parsed['samples'], [{'name': 'x', 'labels': {'l': raw}, 'value': '1'}])


if __name__ == '__main__':
    unittest.main()
