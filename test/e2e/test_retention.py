"""Retention: with webhook.auto_prune the worker deletes, in batches, the
finished deliveries (with their attempts) and the events older than
webhook.retention (shortened here to 2 s), never pending or failed work,
and keeps delivering meanwhile; auto_prune = off keeps everything."""

import re
import time
import unittest

import harness
from harness import R, lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(
    globals(), extra_conf=["webhook.retention = '2 s'"])

# more than one batch (PRUNE_BATCH_ROWS, src/housekeeping.h)
HISTORY = 12000


def add_history(hook_id, n):
    """n old finished deliveries of hook_id with their events and attempts,
    and n/10 old events no hook wanted."""
    cluster.psql("""
        WITH e AS (
            INSERT INTO webhook.event (event_type, payload, created_at)
            SELECT 'OLD_EVENT', jsonb_build_object('n', g), now() - interval '1 day'
              FROM generate_series(1, %(n)d) g RETURNING id, created_at
        ), d AS (
            INSERT INTO webhook.delivery (event_id, hook_id, state, attempts, last_status,
                                          next_attempt_at, created_at, finished_at)
            SELECT e.id, %(hook)d, 'succeeded', 2, 204, e.created_at, e.created_at,
                   e.created_at + interval '1 minute'
              FROM e RETURNING id, created_at
        )
        INSERT INTO webhook.attempt (delivery_id, attempt_no, started_at, url, status_code)
        SELECT d.id, a, d.created_at, 'http://127.0.0.1:9/old', 204
          FROM d, generate_series(1, 2) a""" % {'n': n, 'hook': hook_id})
    cluster.psql("""
        INSERT INTO webhook.event (event_type, payload, created_at)
        SELECT 'UNWANTED', '{}', now() - interval '1 day' FROM generate_series(1, %d)"""
                 % (n // 10))


def history_left():
    return cluster.psql("""
        SELECT (SELECT count(*) FROM webhook.event WHERE event_type IN ('OLD_EVENT', 'UNWANTED')),
               (SELECT count(*) FROM webhook.delivery WHERE state = 'succeeded'
                   AND created_at < now() - interval '1 hour'),
               (SELECT count(*) FROM webhook.attempt WHERE url = 'http://127.0.0.1:9/old')""")[0]


class RetentionTest(unittest.TestCase):
    maxDiff = None

    def test_worker_prunes_old_history_only(self):
        path = '/retention'
        rx.script(path, R(200))
        hook = cluster.hook_on(rx.url(), path)
        # old work that is not finished: pending, and failed waiting for a retry
        cluster.psql("""
            WITH e AS (
                INSERT INTO webhook.event (event_type, payload, created_at)
                VALUES ('KEPT', '{"n": 1}', now() - interval '1 day'),
                       ('KEPT', '{"n": 2}', now() - interval '1 day') RETURNING id
            )
            INSERT INTO webhook.delivery (event_id, hook_id, state, attempts,
                                          next_attempt_at, created_at)
            SELECT e.id, %d, s, a, now() + interval '1 hour', now() - interval '1 day'
              FROM (SELECT id, row_number() OVER (ORDER BY id) AS i FROM e) e,
                   LATERAL (SELECT CASE WHEN e.i = 1 THEN 'pending' ELSE 'failed' END AS s,
                                   (e.i - 1)::int AS a) x""" % hook.hook_id)
        offset = cluster.log_offset()
        add_history(hook.hook_id, HISTORY)

        # delivery goes on while the worker prunes
        sent = 0
        deadline = time.monotonic() + 40
        while history_left() != ['0', '0', '0']:
            self.assertLess(time.monotonic(), deadline,
                            'history left: %r\n%s' % (history_left(), cluster.log_tail(20)))
            sent += 1
            cluster.emit(hook.event_type, '{"n": %d}' % sent)
            # the pace is the behaviour: deliveries go on all through the
            # pruning, one every 0.2 s (and history_left() is the poll)
            time.sleep(0.2)
        rx.wait_requests(sent, path=path)
        self.assertEqual(cluster.psql(
            "SELECT d.state, e.event_type FROM webhook.delivery d "
            "JOIN webhook.event e ON e.id = d.event_id "
            "WHERE d.created_at < now() - interval '1 hour' ORDER BY d.id"),
            [['pending', 'KEPT'], ['failed', 'KEPT']])
        log = cluster.log(offset)
        self.assertRegex(log, r'LOG:  webhook worker 1 pruned \d+ deliveries with \d+ attempts, '
                         r'and \d+ events, older than webhook.retention \(2 s\), in \d+ batches')
        pruned = sum(int(m) for m in re.findall(
            r'pruned (\d+) deliveries', log))
        self.assertGreaterEqual(pruned, HISTORY)

        # auto_prune off keeps everything; on again, it goes
        cluster.set_setting('webhook.auto_prune', 'off')
        self.addCleanup(cluster.set_setting, 'webhook.auto_prune', None)
        added_at = cluster.one('SELECT clock_timestamp()')
        add_history(hook.hook_id, 100)
        # a round would be due within the chore interval (1 s with retention
        # 2 s) of the last, which ended before auto_prune went off; once that
        # is past, the worker goes round its loop (prune_step and all)
        cluster.wait_for("SELECT clock_timestamp() > %s::timestamptz + interval '1.5 s'"
                         % lit(added_at), 't')
        cluster.workers_went_round()
        self.assertEqual(history_left(), ['110', '100', '200'])
        cluster.set_setting('webhook.auto_prune', None)
        cluster.wait_for("SELECT count(*) FROM webhook.attempt "
                         "WHERE url = 'http://127.0.0.1:9/old'", '0', timeout=30)
        cluster.wait_for("SELECT count(*) FROM webhook.event "
                         "WHERE event_type IN ('OLD_EVENT', 'UNWANTED')", '0', timeout=30)
        # prune() still works by hand
        self.assertEqual(cluster.one("SELECT webhook.prune('1 hour')"), '0')


if __name__ == '__main__':
    unittest.main()
