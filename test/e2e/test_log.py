"""The event log's promises: every event some hook of its tenant subscribes
to is logged, active or not; a disabled hook keeps its place (its cursor)
and, re-enabled, reads on from there, oldest first, waiting for no writer
(or starts from now); replay() and create_hook(since)/register(since) send
from the log.  Each against a real
receiver, checking bodies, webhook-id and rows; webhook.disable_after is
shortened to 2 s."""

import subprocess
import time
import unittest

import harness
from harness import R, lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(
    globals(), extra_conf=["webhook.disable_after = '2 s'"])


class LogTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        rx.default(R(200))
        self.tenant = harness.uniq('log')

    def transport(self, **kw):
        """A transport of this test's tenant, one request in flight at a time
        (so that requests arrive in the order the worker claims them)."""
        kw.setdefault('max_in_flight', 1)
        return cluster.create_transport(base_url=rx.url(), tenant=self.tenant, **kw)

    def hook(self, tid, event_types, path, **kw):
        kw.setdefault('signature', 'none')
        return cluster.create_hook(tid, event_types, path=path, **kw)

    def emit(self, event_type, payload):
        return cluster.emit(event_type, payload, tenant=self.tenant)

    def received(self, path, n):
        """(webhook-id, type, data) of the first n requests to path, in
        arrival order, once n have come."""
        reqs = rx.wait_requests(n, path=path)
        return [(r.headers.get('webhook-id'), r.json()['type'], r.json()['data'])
                for r in reqs]

    def nothing_more(self, path, n):
        """Nothing but n requests went to path: every worker went past
        everything due (worker_passed) and sent it no other."""
        cluster.worker_passed(rx)
        self.assertEqual(rx.count(path), n, rx.requests(path=path))

    def deliveries(self, hook_id):
        """{event uid: [state, ...]} of the hook's deliveries."""
        out = {}
        for uid, state in cluster.psql(
                'SELECT e.uid, d.state FROM webhook.deliveries d '
                'JOIN webhook.event e ON e.id = d.event_id '
                'WHERE d.hook_id = %d ORDER BY d.id' % hook_id):
            out.setdefault(uid, []).append(state)
        return out

    def set_active(self, hook_id, active, **kw):
        cluster.psql('SELECT webhook.update_hook(%d, %s)'
                     % (hook_id, harness.named_args(active=active, **kw)))

    # -- 1: what the log keeps -------------------------------------------------
    def test_writers_follow_the_current_slot(self):
        """A writer writes the event log's current slot; a rotation that
        makes another current tells the writers already connected
        (log_slot_changed): the same session's next event is in the new
        slot's table, even when the rotation committed during the
        statement that writes it.  A slot emptied keeps what a cursor has
        yet to read: every event is sent, once."""
        tid = self.transport()
        path = '/log-slots'
        hook = self.hook(tid, ['SLOTS_*'], path)
        writer = harness.Session(cluster)
        self.addCleanup(writer.close)
        current = ("SELECT CASE s WHEN 0 THEN 'webhook.event'"
                   " ELSE 'webhook_internal.event_' || s END"
                   " FROM webhook_internal.current_log_slot() s")
        tables = []
        for n in range(4):
            writer.send("SELECT webhook.emit('SLOTS_A', '{\"n\": %d}', %s);" % (n, lit(self.tenant)))
            event = ("SELECT tableoid::regclass FROM webhook.event WHERE tenant = %s"
                     " AND payload->>'n' = '%d'" % (lit(self.tenant), n))
            harness.wait_until(lambda: cluster.psql(event), harness.DEFAULT_TIMEOUT,
                               'event %d logged' % n)
            table = cluster.one(event)
            self.assertEqual(table, cluster.one(current), 'event %d' % n)
            tables.append(table)
            cluster.psql("SELECT webhook.prune('0')")
        self.assertEqual(len(set(tables)), 4, tables)
        # a rotation that commits while a statement of the writer runs (its
        # snapshot taken before): the statement learns the new slot, read
        # as it is now, and so does the session's next transaction
        holder = harness.Session(cluster)
        self.addCleanup(holder.close)
        holder.send("SELECT pg_advisory_lock(4242);")
        cluster.wait_for("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                         " AND objid = 4242 AND granted", '1')
        writer.send("SELECT pg_advisory_lock(4242) IS NULL,"
                    " webhook.emit('SLOTS_A', '{\"n\": 4}', %s);" % lit(self.tenant))
        cluster.wait_for("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                         " AND objid = 4242 AND NOT granted", '1')
        cluster.psql("SELECT webhook.prune('0')")
        holder.send("SELECT pg_advisory_unlock(4242);")
        writer.send("SELECT pg_advisory_unlock(4242);"
                    " SELECT webhook.emit('SLOTS_A', '{\"n\": 5}', %s);" % lit(self.tenant))
        for n in (4, 5):
            event = ("SELECT tableoid::regclass FROM webhook.event WHERE tenant = %s"
                     " AND payload->>'n' = '%d'" % (lit(self.tenant), n))
            harness.wait_until(lambda: cluster.psql(event), harness.DEFAULT_TIMEOUT,
                               'event %d logged' % n)
            self.assertEqual(cluster.one(event), cluster.one(current), 'event %d' % n)
        got = self.received(path, 6)
        self.assertEqual([d['n'] for _, _, d in got], [0, 1, 2, 3, 4, 5])
        self.assertEqual(len({uid for uid, _, _ in got}), 6)
        self.nothing_more(path, 6)

    def test_events_of_inactive_and_filtered_hooks_are_logged(self):
        """The capture trigger logs an event when a hook of its tenant
        subscribes to its type, active or not, whatever its filter; it makes
        a delivery only to an active hook whose filter it passes."""
        table = harness.uniq('log_orders').lower()
        items = harness.uniq('log_items').lower()
        for t, resource in ((table, 'logorder'), (items, 'logitem')):
            cluster.psql('CREATE TABLE %s (id int PRIMARY KEY, shop text NOT NULL, '
                         "state text NOT NULL DEFAULT 'created', total numeric)" % t)
            cluster.psql("SELECT webhook.watch(%s, resource => %s, tenant_column => 'shop', "
                         "state_column => 'state')" % (lit(t), lit(resource)))
        tid = self.transport()
        path_off, path_on = '/log-inactive', '/log-filtered'
        self.hook(tid, ['LOGORDER_*'], path_off, active=False)
        on = self.hook(tid, ['LOGORDER_SETTLED'], path_on, filter='$.total >= 10')
        other = harness.uniq('nohooks')
        cluster.psql("INSERT INTO %s (id, shop, total) VALUES (1, %s, 5), (2, %s, 20), (3, %s, 30)"
                     % (table, lit(self.tenant), lit(self.tenant), lit(other)))
        cluster.psql("UPDATE %s SET state = 'settled'" % table)
        cluster.psql("INSERT INTO %s (id, shop, total) VALUES (1, %s, 5)" % (items, lit(self.tenant)))

        # logged: every order event of the tenant (the inactive hook's types),
        # the settled one of order 1 too (the active hook's filter refuses
        # it); not the other tenant's, which has no hook, nor the items,
        # which no hook subscribes to
        rows = cluster.psql("SELECT resource_id, event_type, uid FROM webhook.event "
                            "WHERE tenant IN (%s, %s)" % (lit(self.tenant), lit(other)))
        logged = {(r[0], r[1]): r[2] for r in rows}
        self.assertEqual(sorted(logged), [('1', 'LOGORDER_CREATE'), ('1', 'LOGORDER_SETTLED'),
                                          ('2', 'LOGORDER_CREATE'), ('2', 'LOGORDER_SETTLED')])
        settled_2 = logged[('2', 'LOGORDER_SETTLED')]
        got = self.received(path_on, 1)
        self.assertEqual(got[0][:2], (settled_2, 'LOGORDER_SETTLED'))
        self.assertEqual((got[0][2]['id'], got[0][2]['total']), (2, 20))
        cluster.wait_state(settled_2, 'succeeded')
        # one delivery: order 2's settling, to the active hook (a delivery
        # read from the log has no row until its attempt is recorded: the
        # state is waited for first, as a busy machine records it late)
        self.assertEqual(cluster.psql(
            'SELECT e.uid, d.hook_id FROM webhook.deliveries d JOIN webhook.event e '
            'ON e.id = d.event_id WHERE e.tenant = %s' % lit(self.tenant)),
            [[settled_2, str(on)]])
        self.nothing_more(path_on, 1)
        self.assertEqual(rx.count(path_off), 0)

    # -- 2: a disabled hook keeps its place ------------------------------------
    def test_a_disabled_hook_resumes_where_it_stopped(self):
        """update_hook(active => false), events while it is off, then
        active => true: the events of its types that pass its filter come,
        oldest first, each with its own webhook-id, then what comes next."""
        tid = self.transport()
        path = '/log-resume'
        h = self.hook(tid, ['LOGRES_*'], path, filter='$.n != 3')
        first = self.emit('LOGRES_A', {'n': 1})
        cluster.wait_state(first, 'succeeded')
        self.set_active(h, False)
        off = {n: self.emit('LOGRES_%s' % 'AB'[n % 2], {'n': n}) for n in range(2, 7)}
        self.emit('LOGOTHER_A', {'n': 99})      # not its type
        self.nothing_more(path, 1)
        self.assertEqual(self.deliveries(h), {first: ['succeeded']})
        # they wait in the log, its cursor stopped with the hook
        self.assertEqual(cluster.unread(h), 4)

        self.set_active(h, True)
        after = self.emit('LOGRES_A', {'n': 7})
        got = self.received(path, 6)
        self.assertEqual(got[1:], [(off[n], 'LOGRES_%s' % 'AB'[n % 2], {'n': n})
                                   for n in (2, 4, 5, 6)] + [(after, 'LOGRES_A', {'n': 7})])
        cluster.wait_state(after, 'succeeded')
        self.nothing_more(path, 6)
        self.assertEqual(self.deliveries(h),
                         dict([(first, ['succeeded']), (after, ['succeeded'])]
                              + [(off[n], ['succeeded']) for n in (2, 4, 5, 6)]))

    def test_a_hook_disabled_by_a_410_or_disable_after_keeps_its_place(self):
        """The worker's own disabling (a 410; webhook.disable_after) keeps
        the hook's place too: re-enabled, it is sent what was logged
        meanwhile."""
        tid = self.transport()
        for how in ('410', 'disable_after'):
            with self.subTest(how=how):
                path = '/log-gone-' + how
                event_type = harness.uniq('LOGGONE')
                h = self.hook(tid, [event_type], path, retry_schedule='{}')
                if how == '410':
                    rx.script(path, R(410))
                    self.emit(event_type, {'n': 0})
                else:
                    # every delivery dies, paced over more than disable_after
                    rx.script(path, R(500))
                    deadline = time.monotonic() + 30
                    while cluster.one('SELECT active FROM webhook.hook WHERE id = %d' % h) == 't':
                        self.assertLess(time.monotonic(), deadline, cluster.log_tail(20))
                        self.emit(event_type, {'n': 0})
                        time.sleep(0.3)    # the pace is the behaviour (test_health.py)
                cluster.wait_for('SELECT active FROM webhook.hook WHERE id = %d' % h, 'f')
                reason = cluster.one('SELECT disabled_reason FROM webhook.hook WHERE id = %d' % h)
                self.assertIn('410 Gone' if how == '410' else 'webhook.disable_after', reason)
                # what was in flight is recorded; what still waited stays
                # (disable_after keeps it), to go first once re-enabled
                cluster.worker_passed(rx)
                sent = rx.count(path)
                waiting = int(cluster.one("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                                          "AND state IN ('pending', 'failed')" % h))
                missed = [self.emit(event_type, {'n': n}) for n in (1, 2)]
                self.nothing_more(path, sent)
                rx.script(path, R(200))
                self.set_active(h, True)
                got = self.received(path, sent + waiting + 2)
                self.assertEqual(got[sent + waiting:], [(missed[0], event_type, {'n': 1}),
                                                        (missed[1], event_type, {'n': 2})])
                for uid in missed:
                    cluster.wait_state(uid, 'succeeded')
                self.nothing_more(path, sent + waiting + 2)

    def test_resume_now_skips_what_it_missed(self):
        """resume => 'now': the events logged while it was off are not sent,
        and its waiting deliveries are cancelled; the next event goes."""
        tid = self.transport()
        path = '/log-now'
        h = self.hook(tid, ['LOGNOW_*'], path, retry_schedule='{1h}')
        rx.script(path, R(500))
        waiting = self.emit('LOGNOW_A', {'n': 1})
        cluster.wait_state(waiting, 'failed')
        self.set_active(h, False)
        missed = self.emit('LOGNOW_A', {'n': 2})
        rx.script(path, R(200))
        with self.assertRaises(harness.PsqlError) as cm:
            self.set_active(h, True, resume='later')
        self.assertIn('unknown resume point "later"', str(cm.exception))
        self.assertIn('Valid values are "where_stopped" and "now"', str(cm.exception))
        self.assertEqual(cluster.one('SELECT active FROM webhook.hook WHERE id = %d' % h), 'f')
        self.set_active(h, True, resume='now')
        self.assertEqual(cluster.psql(
            "SELECT state, last_error FROM webhook.deliveries d JOIN webhook.event e "
            "ON e.id = d.event_id WHERE e.uid = %s" % lit(waiting)),
            [['cancelled', "skipped: the hook was re-enabled with resume => 'now'"]])
        self.assertEqual(self.deliveries(h), {waiting: ['cancelled']})
        nxt = self.emit('LOGNOW_A', {'n': 3})
        got = self.received(path, 2)
        self.assertEqual(got[1], (nxt, 'LOGNOW_A', {'n': 3}))
        cluster.wait_state(nxt, 'succeeded')
        self.nothing_more(path, 2)
        self.assertNotIn(missed, self.deliveries(h))

    def test_a_hook_made_in_the_writing_transaction_reads_its_later_events(self):
        """A hook created in a transaction that then writes an event it
        subscribes to gets that event: the new cursor shows the transaction
        itself in progress, even once a later one has committed (which
        pg_current_snapshot() alone would show it committed by)."""
        tid = self.transport()
        path = '/log-same-tx'
        s = harness.Session(cluster)
        self.addCleanup(s.close)
        s.send("SET application_name = 'log_same_tx'; BEGIN; SELECT pg_current_xact_id();")
        harness.wait_until(lambda: cluster.one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'log_same_tx'"
            " AND backend_xid IS NOT NULL AND state = 'idle in transaction'") == '1',
            20, 'the writer to take its id')
        # a later transaction commits first
        self.emit('LOGSAME_OTHER', {'n': 0})
        s.send("SELECT webhook.create_hook(%d, '{LOGSAME_A}', path => %s, signature => 'none');"
               " SELECT webhook.emit('LOGSAME_A', '{\"n\": 1}', tenant => %s); COMMIT;"
               % (tid, lit(path), lit(self.tenant)))
        got = self.received(path, 1)
        self.assertEqual(got[0][1:], ('LOGSAME_A', {'n': 1}))
        self.nothing_more(path, 1)

    def test_a_paused_hook_resumes_too(self):
        """An ordered hook that on_dead => 'stop' paused stays active, and
        its cursor stays where it stopped: resumed, what came meanwhile goes
        in order; with resume => 'now', it is skipped and the next event
        goes."""
        tid = self.transport(max_in_flight=4)
        for resume in ('where_stopped', 'now'):
            with self.subTest(resume=resume):
                path = '/log-paused-' + resume
                event_type = harness.uniq('LOGPAUSE')
                h = self.hook(tid, [event_type], path, ordered='hook', on_dead='stop',
                              retry_schedule='{}')
                rx.script(path, R(500), R(200))
                dead = self.emit(event_type, {'n': 0})
                cluster.wait_state(dead, 'dead')
                cluster.wait_for('SELECT disabled_reason IS NOT NULL AND active '
                                 'FROM webhook.hook WHERE id = %d' % h, 't')
                paused = [self.emit(event_type, {'n': n}) for n in (1, 2, 3)]
                self.nothing_more(path, 1)
                self.assertEqual(self.deliveries(h), {dead: ['dead']})
                self.assertEqual(cluster.unread(h), 3)
                self.set_active(h, True, resume=resume)
                nxt = self.emit(event_type, {'n': 4})
                expected = ([(u, event_type, {'n': n}) for n, u in zip((1, 2, 3), paused)]
                            if resume == 'where_stopped' else [])
                expected.append((nxt, event_type, {'n': 4}))
                got = self.received(path, 1 + len(expected))
                self.assertEqual(got[1:], expected)
                cluster.wait_state(nxt, 'succeeded')
                self.nothing_more(path, 1 + len(expected))
                self.assertEqual(cluster.one('SELECT disabled_reason FROM webhook.hook '
                                             'WHERE id = %d' % h), None)
                if resume == 'now':
                    self.assertEqual([self.deliveries(h).get(u) for u in paused], [None] * 3)

    # -- 2: writers still open while the hook is re-enabled --------------------
    def open_session(self, name, sql):
        """A session named name that ran sql and is idle in its transaction."""
        s = harness.Session(cluster)
        self.addCleanup(s.close)
        s.send("SET application_name = %s; %s" % (lit(name), sql))
        cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                         "AND state = 'idle in transaction'" % lit(name), '1')
        return s

    def test_a_writer_open_across_the_re_enabling_loses_nothing(self):
        """A transaction logs an event of the inactive hook and stays open
        while the hook is re-enabled, which waits for no writer; it logs
        another and commits: both go, in order."""
        tid = self.transport()
        path = '/log-late'
        h = self.hook(tid, ['LOGLATE_*'], path, active=False)
        name = harness.uniq('log_late')
        writer = self.open_session(name, "BEGIN; SELECT webhook.emit('LOGLATE_A', '{\"n\": 1}', "
                                         "tenant => %s);" % lit(self.tenant))
        # within psql's own timeout, though the writer holds its transaction
        cluster.psql('SELECT webhook.update_hook(%d, active => true)' % h, timeout=20)
        writer.send("SELECT webhook.emit('LOGLATE_A', '{\"n\": 2}', tenant => %s); COMMIT;"
                    % lit(self.tenant))
        cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                         "AND state = 'idle'" % lit(name), '1')
        uids = [r[0] for r in cluster.psql('SELECT uid FROM webhook.event WHERE tenant = %s '
                                           'ORDER BY id' % lit(self.tenant))]
        self.assertEqual(len(uids), 2)
        got = self.received(path, 2)
        self.assertEqual(got, [(uids[0], 'LOGLATE_A', {'n': 1}), (uids[1], 'LOGLATE_A', {'n': 2})])
        for uid in uids:
            cluster.wait_state(uid, 'succeeded')
        self.nothing_more(path, 2)

    def test_a_writer_open_across_the_disabling_is_sent_once(self):
        """A transaction that wrote an event while the hook was active (for
        its cursor to read) and commits after the hook was disabled: the
        event waits in the log, and once re-enabled the hook is sent it
        once, and the one logged while it was off."""
        tid = self.transport()
        path = '/log-late-disable'
        h = self.hook(tid, ['LOGLD_*'], path)
        writer = harness.Session(cluster)
        self.addCleanup(writer.close)
        writer.send("BEGIN; SELECT webhook.emit('LOGLD_A', '{\"n\": 1}', tenant => %s);"
                    % lit(self.tenant))
        cluster.wait_for("SELECT count(*) FROM pg_stat_activity "
                         "WHERE state = 'idle in transaction' "
                         "AND query LIKE 'SELECT webhook.emit(''LOGLD_A''%'", '1')
        self.set_active(h, False)
        writer.send('COMMIT;')
        cluster.wait_for("SELECT count(*) FROM webhook.event WHERE tenant = %s"
                         % lit(self.tenant), '1')
        late = cluster.one('SELECT uid FROM webhook.event WHERE tenant = %s' % lit(self.tenant))
        missed = self.emit('LOGLD_A', {'n': 2})
        self.nothing_more(path, 0)
        # both wait in the log, its cursor stopped with the hook
        self.assertEqual(self.deliveries(h), {})
        self.assertEqual(cluster.unread(h), 2)
        self.set_active(h, True)
        # an unordered hook: both at once, in either order
        self.assertEqual(sorted(self.received(path, 2)), sorted([(late, 'LOGLD_A', {'n': 1}),
                                                                 (missed, 'LOGLD_A', {'n': 2})]))
        for uid in (late, missed):
            cluster.wait_state(uid, 'succeeded')
        self.nothing_more(path, 2)
        self.assertEqual(self.deliveries(h), {late: ['succeeded'], missed: ['succeeded']})

    def test_a_writer_during_the_re_enabling_sends_to_the_hook(self):
        """While a re-enabling is open, a writer logs the hook's event: the
        re-enabling committed, both go once, oldest first; should it roll
        back, they wait, and go once when the hook is re-enabled."""
        tid = self.transport()
        for outcome in ('COMMIT', 'ROLLBACK'):
            with self.subTest(outcome=outcome):
                path = '/log-during-' + outcome.lower()
                event_type = harness.uniq('LOGDURING')
                h = self.hook(tid, [event_type], path, active=False)
                before = self.emit(event_type, {'n': 1})
                name = harness.uniq('log_enabling')
                enabling = self.open_session(
                    name, 'BEGIN; SELECT webhook.update_hook(%d, active => true);' % h)
                during = self.emit(event_type, {'n': 2})
                # logged for the hook, whose cursor reads it once it is active
                self.assertEqual(cluster.one(
                    "SELECT %d = ANY (hook_ids) FROM webhook.event WHERE uid = %s"
                    % (h, lit(during))), 't')
                enabling.send(outcome + ';')
                cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                                 "AND state = 'idle'" % lit(name), '1')
                if outcome == 'ROLLBACK':
                    self.nothing_more(path, 0)
                    self.assertEqual(self.deliveries(h), {})
                    self.assertEqual(cluster.unread(h), 2)
                    self.set_active(h, True)
                expected = [(before, event_type, {'n': 1}), (during, event_type, {'n': 2})]
                self.assertEqual(self.received(path, 2), expected)
                for uid in (before, during):
                    cluster.wait_state(uid, 'succeeded')
                self.nothing_more(path, 2)

    # -- 2: the log's matching is the writer's ---------------------------------
    def test_the_log_matches_types_and_filters_as_the_writer_does(self):
        """Twin hooks, one active all along (the capture's matching, in C),
        one made after the events to start before them (the log's, in SQL:
        create_hook(since)), for patterns
        *, PREFIX_*, exact names, and filters: one that compares keys, one
        that raises for some payloads (a WARNING, and the event goes). Each
        twin gets the same events."""
        tid = self.transport(max_in_flight=16)
        failing = '$.d.datetime("nonsense") == "x" || $.total >= 10'
        specs = [(['*'], None), (['LOGM_X_*'], None), (['LOGM_X_SETTLED'], None),
                 (['LOGM_X_*', 'LOGM_Y_CREATED'], '$.total >= 10'),
                 (['*'], failing)]
        lives = [self.hook(tid, types, '/log-live-%d' % i, filter=flt)
                 for i, (types, flt) in enumerate(specs)]
        since = cluster.one('SELECT clock_timestamp()')
        offset = cluster.log_offset()
        for event_type in ('LOGM_X_SETTLED', 'LOGM_X_CREATED', 'LOGM_XY_CREATED',
                           'LOGM_Y_CREATED', 'LOGM_Z'):
            for payload in ({'total': 5}, {'total': 20}, {'d': '2020-01-01', 'total': 1}):
                self.emit(event_type, payload)
        # the failing filter: a WARNING from the writer for each event
        # with a string "d", and the event goes
        warned = 'WARNING:  webhook: the filter of hook %d failed'
        harness.wait_until(lambda: cluster.log(offset).count(warned % lives[4]) == 5,
                           what='the writer\'s 5 warnings')
        twins = []
        for i, (types, flt) in enumerate(specs):
            rows, err = cluster.psql(
                'SELECT webhook.create_hook(%d, %s)'
                % (tid, harness.named_args(event_types=types, path='/log-late-%d' % i,
                                           filter=flt, signature='none', since=since)),
                stderr=True)
            late = int(rows[0][0])
            self.assertEqual(err.count(warned % late), 5 if i == 4 else 0, err)
            twins.append((i, lives[i], late))
        expected = {0: 15, 1: 6, 2: 3, 3: 3, 4: 10}
        for i, live, late in twins:
            live_got = self.received('/log-live-%d' % i, expected[i])
            late_got = self.received('/log-late-%d' % i, expected[i])
            self.assertEqual(sorted(live_got, key=str), sorted(late_got, key=str), specs[i])
            self.assertEqual(set(self.deliveries(live)), set(self.deliveries(late)))
        hooks = ','.join('%d,%d' % t[1:] for t in twins)
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id IN (%s) "
                         "AND state <> 'succeeded'" % hooks, '0')
        cluster.worker_passed(rx)
        for i, live, late in twins:
            self.assertEqual(rx.count('/log-live-%d' % i), expected[i])
            self.assertEqual(rx.count('/log-late-%d' % i), expected[i])

    # -- 3: replay -------------------------------------------------------------
    def test_replay_sends_again_from_the_log(self):
        """replay(hook, since): every logged event of the hook's tenant and
        types since then that passes its filter, oldest first, whether it
        was sent to the hook or not (these were logged before the hook
        existed, for another hook); one still queued for it is not queued
        twice."""
        tid = self.transport()
        self.hook(tid, ['*'], '/log-replay-other')
        since = cluster.one('SELECT clock_timestamp()')
        e1 = self.emit('LOGREP_A', {'n': 1})
        e2 = self.emit('LOGREP_A', {'n': 2})      # filtered out
        e3 = self.emit('LOGNOT_A', {'n': 3})      # not its type
        path = '/log-replay'
        rx.script(path, R(200), R(500), R(200))
        h = self.hook(tid, ['LOGREP_*'], path, filter='$.n != 2', retry_schedule='{1h}')
        e4 = self.emit('LOGREP_B', {'n': 4})
        cluster.wait_state(e4, 'succeeded,succeeded')
        e5 = self.emit('LOGREP_B', {'n': 5})      # fails, waits an hour
        cluster.wait_for("SELECT d.state FROM webhook.deliveries d JOIN webhook.event e "
                         "ON e.id = d.event_id WHERE e.uid = %s AND d.hook_id = %d"
                         % (lit(e5), h), 'failed')
        self.assertEqual(cluster.one('SELECT webhook.replay(%d, %s)' % (h, lit(since))), '2')
        got = self.received(path, 4)
        self.assertEqual(got[2:], [(e1, 'LOGREP_A', {'n': 1}), (e4, 'LOGREP_B', {'n': 4})])
        cluster.wait_state(e1, 'succeeded,succeeded')
        cluster.wait_state(e4, 'succeeded,succeeded,succeeded')
        self.nothing_more(path, 4)
        self.assertEqual(self.deliveries(h), {e1: ['succeeded'], e4: ['succeeded', 'succeeded'],
                                              e5: ['failed']})
        for uid in (e2, e3):
            self.assertNotIn(uid, self.deliveries(h))
        self.assertEqual(rx.count('/log-replay-other'), 5)

    # -- 4: a new hook from a point in the past --------------------------------
    def test_a_new_hook_starts_from_the_past(self):
        """create_hook(..., since) and register(..., since): the log's events
        of its types since then (filter applied), oldest first, then what
        comes next; not those before."""
        tid = self.transport()
        self.hook(tid, ['*'], '/log-since-other')
        old = self.emit('LOGSINCE_A', {'n': 0})
        since = cluster.one('SELECT clock_timestamp()')
        e1 = self.emit('LOGSINCE_A', {'n': 1})
        e2 = self.emit('LOGSINCE_B', {'n': 2})
        self.emit('LOGNOT_A', {'n': 3})
        path = '/log-since'
        h = self.hook(tid, ['LOGSINCE_*'], path, filter='$.n != 2', since=since)
        e4 = self.emit('LOGSINCE_B', {'n': 4})
        self.assertEqual(self.received(path, 2),
                         [(e1, 'LOGSINCE_A', {'n': 1}), (e4, 'LOGSINCE_B', {'n': 4})])
        for uid in (e1, e4):
            cluster.wait_state(uid, 'succeeded,succeeded')
        self.nothing_more(path, 2)
        self.assertEqual(set(self.deliveries(h)), {e1, e4})

        reg = '/log-since-register'
        result = cluster.one('SELECT webhook.register(%s, %s, tenant => %s, '
                             'check_reachable => false, since => %s)'
                             % (lit(rx.url(reg)), lit(['LOGSINCE_*']), lit(self.tenant),
                                lit(since)))
        self.assertIn('"status": 200', result)
        self.assertEqual(self.received(reg, 3),
                         [(e1, 'LOGSINCE_A', {'n': 1}), (e2, 'LOGSINCE_B', {'n': 2}),
                          (e4, 'LOGSINCE_B', {'n': 4})])
        cluster.worker_passed(rx)
        self.assertEqual(rx.count(reg), 3)
        self.assertNotIn(old, [r.headers.get('webhook-id') for r in rx.requests(reg)])

    # -- 5: what a delivery writes ---------------------------------------------
    def test_a_first_success_writes_its_attempt_alone(self):
        """A delivery answered 2xx at its first attempt has no row of
        webhook.delivery: its attempt, naming its event and hook, is all
        there is of it, and webhook.deliveries, delivery_log, hook_stats
        and notifications() show it as succeeded, to its tenant's role and
        to no other; redeliver() sends it again.  One that fails gets its
        row, due again."""
        tid = self.transport()
        path = '/log-first'
        rx.script(path, R(204), R(500), R(200))
        h = self.hook(tid, ['LOGFIRST_*'], path, retry_schedule='{1h}')
        ok = self.emit('LOGFIRST_A', {'n': 1})
        cluster.wait_state(ok, 'succeeded')
        failed = self.emit('LOGFIRST_A', {'n': 2})
        cluster.wait_state(failed, 'failed')
        self.assertEqual(cluster.psql(
            'SELECT e.uid, d.state, d.attempts FROM webhook.delivery d'
            ' JOIN webhook.event e ON e.id = d.event_id WHERE d.hook_id = %d' % h),
            [[failed, 'failed', '1']])
        self.assertEqual(cluster.psql(
            'SELECT e.uid, a.attempt_no, a.status_code FROM webhook.attempt a'
            ' JOIN webhook.event e ON e.id = a.event_id WHERE a.hook_id = %d'
            ' ORDER BY a.started_at' % h),
            [[ok, '1', '204'], [failed, '1', '500']])
        ok_id = cluster.delivery(ok, h)['id']
        self.assertEqual(cluster.psql(
            "SELECT state, attempt_no, status_code FROM webhook.delivery_log"
            " WHERE delivery_id = %d" % ok_id), [['succeeded', '1', '204']])
        self.assertEqual(cluster.psql(
            'SELECT pending, succeeded, failed, dead FROM webhook.hook_stats'
            ' WHERE hook_id = %d' % h), [['0', '1', '1', '0']])
        self.assertEqual(cluster.psql(
            'SELECT delivery_id, event_uid, state, attempts, last_status'
            ' FROM webhook.notifications(hook_id => %d, sort_by => %s)'
            % (h, lit('event_type'))),
            [[str(ok_id), ok, 'succeeded', '1', '204'],
             [str(cluster.delivery(failed, h)['id']), failed, 'failed', '1', '500']])
        # its tenant's role sees it; another tenant's sees nothing of it
        mine, other = harness.uniq('log_mine').lower(), harness.uniq('log_other').lower()
        cluster.psql('CREATE ROLE %s LOGIN; CREATE ROLE %s LOGIN;'
                     ' SELECT webhook.grant_tenant(%s, %s), webhook.grant_tenant(%s, %s)'
                     % (mine, other, lit(mine), lit(self.tenant), lit(other),
                        lit(harness.uniq('log_none'))))
        seen = ('SELECT (SELECT count(*) FROM webhook.attempt WHERE hook_id = %d),'
                ' (SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d),'
                ' (SELECT count(*) FROM webhook.delivery_log WHERE hook_id = %d)' % (h, h, h))
        self.assertEqual(cluster.psql(seen, user=mine), [['2', '2', '2']])
        self.assertEqual(cluster.psql(seen, user=other), [['0', '0', '0']])
        # sent again: a delivery of its own, the same webhook-id; its row
        # goes once it succeeds at its first attempt, as any such delivery's
        again = int(cluster.one('SELECT webhook.redeliver(%d)' % ok_id))
        self.assertEqual(self.received(path, 3)[2], (ok, 'LOGFIRST_A', {'n': 1}))
        cluster.wait_for('SELECT state FROM webhook.deliveries WHERE id = %d' % again,
                         'succeeded')
        self.assertEqual(cluster.one('SELECT count(*) FROM webhook.delivery WHERE id = %d'
                                     % again), '0')

    def test_first_successes_of_a_batch_keep_their_own_responses(self):
        """The attempt rows of a batch that all succeeded at once are
        written without a statement (src/attempt_log.c), one after another
        in memory the rows share: each keeps its own status, response body
        and headers (60 answers of 3 kB, to as many events of one
        commit)."""
        tid = self.transport(max_in_flight=64)
        path = '/log-batch'
        n = 60

        def body_of(uid):
            return ((uid + '.') * 100)[:3000]

        def answer(req):
            if req.path != path:
                return None
            uid = req.headers.get('webhook-id')
            return R(200 + req.json()['data']['n'] % 2, headers={'X-Echo': uid},
                     body=body_of(uid).encode())

        rx.respond(answer)
        self.addCleanup(rx.respond, None)
        h = self.hook(tid, ['LOGBATCH_*'], path)
        uids = [r[0] for r in cluster.psql(
            "SELECT webhook.emit('LOGBATCH_A', jsonb_build_object('n', g), tenant => %s)"
            " FROM generate_series(1, %d) g" % (lit(self.tenant), n))]
        cluster.wait_for('SELECT count(*) FROM webhook.attempt WHERE hook_id = %d' % h, str(n))
        rows = cluster.psql(
            "SELECT e.uid, (e.payload->>'n')::int, a.status_code, a.response_body,"
            "       a.response_headers->>'x-echo'"
            "  FROM webhook.attempt a JOIN webhook.event e ON e.id = a.event_id"
            " WHERE a.hook_id = %d" % h)
        self.assertEqual(sorted(r[0] for r in rows), sorted(uids))
        for uid, g, status, body, echo in rows:
            self.assertEqual((status, body, echo),
                             (str(200 + int(g) % 2), body_of(uid), uid), uid)
        self.assertEqual(cluster.one('SELECT count(*) FROM webhook.delivery WHERE hook_id = %d'
                                     % h), '0')

    def test_an_admins_trigger_on_the_attempt_log_fires_for_first_successes(self):
        """The worker appends a first success's attempt row straight into
        the attempt log's current slot (attempt_log.c), but only while the
        table is as the extension made it: with an admin's row trigger on
        webhook.attempt, it records through its statement, which fires
        the trigger for each row.  The rows are the same either way."""
        cluster.psql("CREATE TABLE public.log_audit (event_id bigint, hook_id bigint,"
                     "                               status integer);"
                     " CREATE FUNCTION public.log_audit() RETURNS trigger LANGUAGE plpgsql AS"
                     " 'BEGIN INSERT INTO public.log_audit"
                     "  VALUES (NEW.event_id, NEW.hook_id, NEW.status_code); RETURN NULL; END';"
                     " CREATE TRIGGER log_audit AFTER INSERT ON webhook.attempt"
                     " FOR EACH ROW EXECUTE FUNCTION public.log_audit()")
        self.addCleanup(cluster.psql, "DROP TABLE public.log_audit;"
                        " DROP FUNCTION public.log_audit() CASCADE")
        tid = self.transport(max_in_flight=4)
        path = '/log-audit'
        h = self.hook(tid, ['LOGAUDIT_*'], path)
        uids = [self.emit('LOGAUDIT_A', {'n': n}) for n in range(3)]
        for uid in uids:
            cluster.wait_state(uid, 'succeeded')
        rows = ('SELECT e.uid, %s FROM %s JOIN webhook.event e ON e.id = a.event_id'
                ' WHERE a.hook_id = %d ORDER BY e.id')
        self.assertEqual(cluster.psql(rows % ('a.status_code', 'webhook.attempt a', h)),
                         [[uid, '200'] for uid in uids])
        self.assertEqual(cluster.psql(rows % ('a.status', 'public.log_audit a', h)),
                         [[uid, '200'] for uid in uids])

    def test_an_admins_statement_trigger_on_the_attempt_log_fires_too(self):
        """A statement trigger on webhook.attempt is not inherited by its
        slots: the worker sees it on the table itself, and records first
        successes through its statement then, which fires it."""
        cluster.psql("CREATE TABLE public.log_statements (n integer);"
                     " CREATE FUNCTION public.log_statements() RETURNS trigger LANGUAGE plpgsql"
                     " AS 'BEGIN INSERT INTO public.log_statements VALUES (1); RETURN NULL; END';"
                     " CREATE TRIGGER log_statements AFTER INSERT ON webhook.attempt"
                     " FOR EACH STATEMENT EXECUTE FUNCTION public.log_statements()")
        self.addCleanup(cluster.psql, "DROP TABLE public.log_statements;"
                        " DROP FUNCTION public.log_statements() CASCADE")
        tid = self.transport()
        path = '/log-statements'
        h = self.hook(tid, ['LOGSTATEMENTS_*'], path)
        uid = self.emit('LOGSTATEMENTS_A', {'n': 1})
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(cluster.one('SELECT count(*) FROM webhook.attempt WHERE hook_id = %d'
                                     % h), '1')
        self.assertNotEqual(cluster.one('SELECT count(*) FROM public.log_statements'), '0')

    def test_a_hook_deleted_while_its_requests_are_in_flight_leaves_nothing(self):
        """Requests in flight when their hook is deleted are answered, and
        their record writes nothing of the hook: no attempt row, no
        counters (the first successes' rows written directly are those of
        hooks that still exist, as the statement's are), while the hook
        answered beside it, likely in the same batch, has its own.  The
        worker goes on."""
        tid = self.transport(max_in_flight=4)
        gone, kept = '/log-deleted', '/log-kept'
        rx.script(gone, R(200, delay=2), R(200, delay=2))
        rx.script(kept, R(200, delay=2))
        h = self.hook(tid, ['LOGDELETED_*'], gone)
        k = self.hook(tid, ['LOGKEPT_*'], kept)
        self.emit('LOGDELETED_A', {'n': 1})
        self.emit('LOGDELETED_A', {'n': 2})
        self.emit('LOGKEPT_A', {'n': 3})
        rx.wait_requests(2, path=gone)      # all in flight, answered in 2 s
        rx.wait_requests(1, path=kept)
        cluster.psql('SELECT webhook.delete_hook(%d)' % h)
        rx.wait_idle()                      # answered ...
        cluster.worker_passed(rx)           # ... and recorded by the marker's claim
        self.assertEqual(rx.count(gone), 2)
        self.assertEqual(cluster.psql(
            'SELECT x.id, (SELECT count(*) FROM webhook.attempt WHERE hook_id = x.id),'
            ' (SELECT coalesce(sum(successes), 0) FROM webhook.hook_metrics WHERE hook_id = x.id)'
            '  FROM unnest(ARRAY[%d, %d]) x(id)' % (h, k)),
            [[str(h), '0', '0'], [str(k), '1', '1']])

if __name__ == '__main__':
    unittest.main()
