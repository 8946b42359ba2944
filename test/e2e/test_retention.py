"""Retention: with webhook.auto_prune the worker deletes, in batches, the
finished deliveries older than webhook.retention (shortened here to 2 s),
never pending or failed work, and keeps delivering meanwhile; the events
and attempts go by whole slots, each emptied at once when every row in it
is older than the retention, never deleted row by row, but an event a
delivery left or an active hook's cursor still needs stays (copied to the
current slot); an inactive hook is owed what the log holds; auto_prune =
off keeps everything.  A session reading a slot keeps it from being
emptied, and the worker records and delivers meanwhile."""

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
# more than two steps of a slot's emptying (PRUNE_MOVED_EVENTS)
FAR_BEHIND = 3000


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


# the retention of the module's cluster, in seconds
RETENTION = 2

def log_tables(log):
    """A query of a log's tables (webhook.attempt or webhook.event, and
    the tables of its slots)."""
    return ("SELECT %s::regclass UNION ALL SELECT inhrelid::regclass"
            "  FROM pg_inherits WHERE inhparent = %s::regclass" % (lit(log), lit(log)))


def log_deletes(log):
    """Rows deleted from a log and from the tables of its slots, as the
    statistics count them: [tables, deletes]."""
    return cluster.psql("SELECT count(*), sum(n_tup_del) FROM pg_stat_user_tables"
                        " WHERE relid IN (%s)" % log_tables(log))[0]


def attempts_to(path):
    """{(delivery_id, attempt_no): (slot, started_at)} of the attempts made to
    a path of the receiver, whatever became of their deliveries, and the
    time of the read (epoch seconds, the server's clock)."""
    rows = cluster.psql(
        "SELECT a.delivery_id, a.attempt_no, a.slot, extract(epoch FROM a.started_at),"
        "       extract(epoch FROM clock_timestamp())"
        "  FROM webhook.attempt a WHERE a.url = %s"
        " UNION ALL SELECT NULL, NULL, NULL, NULL, extract(epoch FROM clock_timestamp())"
        % lit(rx.url() + path))
    return ({(r[0], r[1]): (r[2], float(r[3])) for r in rows if r[0] is not None},
            float(rows[-1][4]))


def history_left():
    return cluster.psql("""
        SELECT (SELECT count(*) FROM webhook.event WHERE event_type IN ('OLD_EVENT', 'UNWANTED')),
               (SELECT count(*) FROM webhook.deliveries WHERE state = 'succeeded'
                   AND created_at < now() - interval '1 hour'),
               (SELECT count(*) FROM webhook.attempt WHERE url = 'http://127.0.0.1:9/old')""")[0]


class RetentionTest(unittest.TestCase):
    maxDiff = None

    def test_attempts_go_by_whole_slots(self):
        """While deliveries go on, every slot in turn is emptied at once,
        every attempt in it older than the retention; no younger attempt
        goes, nor one alone."""
        path = '/slots'
        rx.script(path, R(200))
        hook = cluster.hook_on(rx.url(), path)
        present = {}        # what the last read saw: key -> (slot, started_at)
        emptied = set()     # the slots seen emptied of the path's attempts
        sent = 0
        deadline = time.monotonic() + 60
        while emptied != {'0', '1', '2', '3'}:
            self.assertLess(time.monotonic(), deadline,
                            'slots emptied: %r\n%s' % (emptied, cluster.log_tail(20)))
            sent += 1
            cluster.emit(hook.event_type, '{"n": %d}' % sent)
            now, read_at = attempts_to(path)
            for key, (slot, started_at) in present.items():
                if key in now:
                    continue
                # kept at least the retention
                self.assertLess(started_at, read_at - RETENTION, (key, slot))
                # and its slot went with it, whole
                self.assertEqual([k for k, v in present.items() if v[0] == slot and k in now],
                                 [], 'slot %s emptied in part' % slot)
                emptied.add(slot)
            present = now
            # the pace is the behaviour: an event every 0.1 s, each slot
            # current in turn for a round (a second at this retention)
            time.sleep(0.1)
        rx.wait_requests(sent, path=path)
        # what went, went by TRUNCATE; the events too, as their slots were
        # emptied: those of the first slots emptied are gone
        self.assertEqual(log_deletes('webhook.attempt'), ['5', '0'])
        self.assertEqual(log_deletes('webhook.event'), ['4', '0'])
        self.assertEqual(cluster.one("SELECT count(*) FROM webhook.event e"
                                     " WHERE e.hook_ids @> ARRAY[%d::bigint]"
                                     " AND (e.payload->>'n')::int <= 3" % hook.hook_id), '0')

    def test_recording_goes_on_while_a_reader_holds_the_slots(self):
        """A session reading the attempt log in an open transaction keeps its
        slots from being emptied: the worker's rotation waits a moment
        (lock_timeout), leaves the slot, says so once, and tries again at
        its next rounds; meanwhile the worker records and delivers, and
        other sessions read the log.  Once the reader's transaction ends,
        the slot is emptied."""
        path = '/held'
        rx.script(path, R(200))
        hook = cluster.hook_on(rx.url(), path)
        sent = []

        def send_one(read=True):
            """An event, delivered and recorded in good time; and the log
            read, unless not read (then the receiver's count is waited for)."""
            uid = cluster.emit(hook.event_type, '{"n": %d}' % len(sent))
            sent.append(uid)
            if read:
                t0 = time.monotonic()
                cluster.wait_state(uid, 'succeeded', timeout=10)
                self.assertLess(time.monotonic() - t0, 2.0, 'delivering and recording waited')
                t0 = time.monotonic()
                cluster.psql('SELECT count(*) FROM webhook.delivery_log')
                self.assertLess(time.monotonic() - t0, 2.0, 'reading the log waited')
            else:
                rx.wait_requests(len(sent), path=path)
            # the pace is the behaviour: an event every 0.1 s
            time.sleep(0.1)

        # attempts in the slots, a couple of rounds' worth, the log not read:
        # a read the rotation meets leaves its slot for a round, and says so
        # then, once for that slot and the reader's hold after it (CI, once)
        for _ in range(20):
            send_one(read=False)
        reader = harness.Session(cluster)
        self.addCleanup(reader.close)
        offset = cluster.log_offset()
        reader.send('BEGIN; SELECT count(*) FROM webhook.attempt;')
        held = ("SELECT count(DISTINCT l.relation) FROM pg_locks l JOIN pg_stat_activity a"
                " ON a.pid = l.pid WHERE a.state = 'idle in transaction' AND l.granted"
                " AND l.mode = 'AccessShareLock' AND l.relation IN"
                " (SELECT 'webhook.attempt'::regclass UNION ALL SELECT inhrelid::regclass"
                "  FROM pg_inherits WHERE inhparent = 'webhook.attempt'::regclass)")
        cluster.wait_for(held, '5')
        left = re.compile(r'LOG:  webhook worker 1 left log slot ([0-3]) as it is: '
                          r'another session holds a lock on it')
        # rounds of the rotation come every second or so: on a busy machine
        # the one that meets the held slot came after 30 s (CI, once)
        deadline = time.monotonic() + 60
        while not left.search(cluster.log(offset)):
            self.assertLess(time.monotonic(), deadline, cluster.log_tail(20))
            send_one()
        slot = left.search(cluster.log(offset)).group(1)
        said = len(left.findall(cluster.log(offset)))
        # three rounds more: the slot stays as it is, said no more (the log
        # line is for the first round it is left); deliveries go on
        for _ in range(30):
            send_one()
        self.assertEqual(cluster.one(held), '5')
        self.assertNotEqual(cluster.one('SELECT count(*) FROM webhook_internal.attempt_%s'
                                        % slot), '0')
        self.assertEqual(len(left.findall(cluster.log(offset))), said)
        self.assertNotRegex(cluster.log(offset), 'emptied log slot %s ' % slot)
        # the reader's transaction ends: the slot goes
        offset = cluster.log_offset()
        reader.send('COMMIT;')
        harness.wait_until(lambda: re.search('emptied log slot %s ' % slot,
                                             cluster.log(offset)),
                           20, 'slot %s emptied' % slot, detail=lambda: cluster.log_tail(20))
        self.assertEqual(rx.count(path=path), len(sent))
        self.assertEqual(log_deletes('webhook.attempt'), ['5', '0'])

    def test_worker_prunes_old_history_only(self):
        path = '/retention'
        rx.script(path, R(200))
        hook = cluster.hook_on(rx.url(), path)
        # the history is written while no pruning round runs: a round whose
        # walk of the deliveries ended just before it committed would find
        # its events kept by deliveries it did not see, and move them (the
        # sanitized build in CI, whose insert takes seconds)
        self.addCleanup(cluster.set_setting, 'webhook.auto_prune', None)
        cluster.set_setting('webhook.auto_prune', 'off')
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
        cluster.set_setting('webhook.auto_prune', None)

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
            "SELECT d.state, e.event_type FROM webhook.deliveries d "
            "JOIN webhook.event e ON e.id = d.event_id "
            "WHERE d.created_at < now() - interval '1 hour' ORDER BY d.id"),
            [['pending', 'KEPT'], ['failed', 'KEPT']])
        log = cluster.log(offset)
        self.assertRegex(log, r'LOG:  webhook worker 1 pruned \d+ deliveries, '
                         r'older than webhook.retention \(2 s\), in \d+ batches')
        self.assertRegex(log, r'LOG:  webhook worker 1 emptied log slot [0-3] '
                         r'\(\d+ (bytes|kB|MB)\), whose attempts and events were all older '
                         r'than webhook.retention \(2 s\)')
        pruned = sum(int(m) for m in re.findall(
            r'pruned (\d+) deliveries', log))
        self.assertGreaterEqual(pruned, HISTORY)
        # the attempts and events went by TRUNCATE: once the worker's
        # statistics show the deliveries it deleted, they show no attempt
        # nor event deleted
        cluster.wait_for("SELECT n_tup_del >= %d FROM pg_stat_user_tables"
                         " WHERE relid = 'webhook.delivery'::regclass" % HISTORY, 't')
        self.assertEqual(log_deletes('webhook.attempt'), ['5', '0'])
        self.assertEqual(log_deletes('webhook.event'), ['4', '0'])

        # auto_prune off keeps everything; on again, it goes
        cluster.set_setting('webhook.auto_prune', 'off')
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

    def test_worker_spreads_a_far_behind_hooks_events_over_steps(self):
        """A hook far behind (its transport limited to a request a second)
        keeps what it has yet to read when the slot that holds it is
        emptied: the worker moves those events to the current slot at most
        PRUNE_MOVED_EVENTS (src/housekeeping.h) a step, a short transaction
        each, and delivers to the others between the steps (the whole copy
        in one step kept every tenant waiting: 18 s for 1,000,000 events).
        None is lost, none is sent twice.  Moving deletes from the event
        log: so this test runs after those that count its deletes."""
        slow_path, path = '/far-behind', '/beside-far-behind'
        rx.script(slow_path, R(200))
        rx.script(path, R(200))
        slow = cluster.hook_on(rx.url(), slow_path, transport={'max_per_second': 1})
        beside = cluster.hook_on(rx.url(), path)
        offset = cluster.log_offset()
        deletes_before = int(log_deletes('webhook.event')[1])
        cluster.emit_many(slow.event_type, FAR_BEHIND)
        # delivery to the other hook goes on while the slot is emptied, a
        # step at a time
        moved = re.compile(r'LOG:  webhook worker 1 moved 1000 events of log slot ([0-3]) '
                           r'to the current slot')
        sent = 0
        deadline = time.monotonic() + 60
        while True:
            log = cluster.log(offset)
            m = moved.search(log)
            if m and re.search(r'emptied log slot %s ' % m.group(1), log[m.end():]):
                break
            self.assertLess(time.monotonic(), deadline, cluster.log_tail(20))
            sent += 1
            cluster.emit(beside.event_type, '{"n": %d}' % sent)
            # the pace is the behaviour: an event every 0.2 s beside the steps
            time.sleep(0.2)
        rx.wait_requests(sent, path=path)
        # every event the slow hook has not been sent is in the log still
        kept = int(cluster.one(
            "SELECT count(*) FROM webhook.event e WHERE e.hook_ids @> ARRAY[%d::bigint]"
            % slow.hook_id))
        self.assertGreaterEqual(kept + rx.count(path=slow_path), FAR_BEHIND)
        # moved, not copied: deleted from the old slot (once the worker's
        # statistics show it)
        cluster.wait_for("SELECT sum(n_tup_del) >= %d FROM pg_stat_user_tables"
                         " WHERE relid IN (%s)"
                         % (deletes_before + 1000, log_tables('webhook.event')), 't')
        # and is sent, once, when the hook catches up
        cluster.psql('SELECT webhook.update_transport(%d, max_per_second => 0)'
                     % slow.transport_id)
        reqs = rx.wait_requests(FAR_BEHIND, path=slow_path, timeout=60)
        cluster.worker_passed(rx)
        self.assertEqual(rx.count(path=slow_path), FAR_BEHIND)
        self.assertEqual(sorted(r.json()['data']['n'] for r in reqs),
                         list(range(1, FAR_BEHIND + 1)))

    def test_an_inactive_hook_is_owed_what_the_log_holds(self):
        """An event an active hook's cursor has yet to read stays, however
        old; what an inactive hook missed (its events in the log, ordered or
        not) goes once older than the retention,
        and re-enabled, the hook is sent what came after."""
        tenant = harness.uniq('retained')
        tid = cluster.create_transport(base_url=rx.url(), tenant=tenant)
        paths = {'off': '/retained-off', 'ordered': '/retained-ordered', 'held': '/retained-held'}
        off = cluster.create_hook(tid, ['RETOFF_*'], path=paths['off'], signature='none',
                                  active=False)
        ordered = cluster.create_hook(tid, ['RETOFF_*'], path=paths['ordered'],
                                      signature='none', ordered='hook', active=False)
        held = cluster.create_hook(tid, ['RETHELD_*'], path=paths['held'], signature='none')
        # a session holds the active hook's cursor: the worker's claims leave it alone
        holder = harness.Session(cluster)
        self.addCleanup(holder.close)
        holder.send("SET application_name = 'retained_holder'; BEGIN;"
                    " SELECT FROM webhook_internal.cursor WHERE hook_id = %d FOR UPDATE;" % held)
        cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                         "'retained_holder' AND state = 'idle in transaction'", '1')
        for n in (1, 2):
            cluster.emit('RETOFF_A', {'n': n}, tenant=tenant)
        kept = cluster.emit('RETHELD_A', {'n': 0}, tenant=tenant)
        self.assertEqual([cluster.unread(off), cluster.unread(ordered)], [2, 2])
        # older than the retention, what the inactive hooks missed goes
        cluster.wait_for("SELECT count(*) FROM webhook.event WHERE tenant = %s"
                         " AND event_type = 'RETOFF_A'" % lit(tenant), '0', timeout=30)
        self.assertEqual(cluster.one("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d"
                                     % ordered), '0')
        # what the held cursor has yet to read stays
        self.assertEqual(cluster.one("SELECT count(*) FROM webhook.event WHERE uid = %s"
                                     " AND created_at < now() - interval '%d s'"
                                     % (lit(kept), RETENTION)), '1')
        holder.send('ROLLBACK;')
        got = rx.wait_requests(1, path=paths['held'])
        self.assertEqual(got[0].headers.get('webhook-id'), kept)
        # re-enabled, the inactive hooks are sent what came after
        for h in (off, ordered):
            cluster.psql('SELECT webhook.update_hook(%d, active => true)' % h)
        after = cluster.emit('RETOFF_A', {'n': 3}, tenant=tenant)
        for name in ('off', 'ordered'):
            got = rx.wait_requests(1, path=paths[name])
            self.assertEqual(got[0].headers.get('webhook-id'), after)
        cluster.worker_passed(rx)
        self.assertEqual({name: rx.count(path) for name, path in paths.items()},
                         {'off': 1, 'ordered': 1, 'held': 1})


if __name__ == '__main__':
    unittest.main()
