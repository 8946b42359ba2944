"""pg_dump and pg_restore keep the work not yet done: events queued while
their receiver was down (failed deliveries, with their attempts) or while
sending was paused (webhook.enabled = off), dumped, restored into a new
database of the same cluster (custom format with pg_restore, plain format
with psql), arrive from there once the receiver is back: each with the same
webhook-id and body as in the original database, the failed ones going on
with their attempt numbers, and a retry due in an hour still due then.  What
had finished (the history) is not dumped, so not sent again; a rolled-back
event is never anywhere."""

import os
import shutil
import tempfile
import unittest

import harness
from harness import R, lit

cluster = rx = None
# the launcher serves every database with the extension, so the restored ones
setUpModule, tearDownModule = harness.cluster_and_receiver(
    globals(), ["webhook.database_name = '*'", 'max_worker_processes = 16'])

SECRET = 'whsec_' + 'ZHVtcC10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWJj'
DOWN = '/dump-down'        # the receiver fails there until the restore
LATER = '/dump-later'      # fails once before the dump; the retry is an hour away
DONE = '/dump-done'        # answers: its first events are history at the dump
UNFINISHED = "state IN ('pending', 'failed')"


def set_enabled(value):
    cluster.set_setting('webhook.enabled', value)
    cluster.wait_for("SELECT current_setting('webhook.enabled')", value, timeout=10)


def drop_later(test, db):
    test.addCleanup(cluster.psql, 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % db, db='postgres')


def rows(sql, db):
    return cluster.psql(sql, db=db)


def value(sql, db):
    """The single value of sql in database db; None while there is no row
    (a delivery is made when the worker reads its event from the log)."""
    got = rows(sql, db)
    return cluster.one(sql, db=db) if got else None


def wait_value(sql, expected, db, timeout=30):
    """Wait until the single value of sql in database db is expected."""
    return harness.wait_until(lambda: value(sql, db) == expected, timeout,
                              '%s == %r in %s' % (sql, expected, db),
                              detail=lambda: 'last %r\n--- log ---\n%s'
                              % (value(sql, db), cluster.log_tail(30)))


def dump(test, src, name):
    """A custom-format dump of database src, in a temp dir the test removes
    (unless kept): its path."""
    tmp = tempfile.mkdtemp(prefix='webhook-e2e-dump-')
    if not harness.KEEP:
        test.addCleanup(shutil.rmtree, tmp, True)
    path = os.path.join(tmp, name)
    cluster._run([cluster._bin('pg_dump'), '-h', cluster.sockdir, '-p', str(cluster.port),
                  '-Fc', '-f', path, src])
    return path


def restore(test, path, dst):
    """pg_restore of the dump at path into a new database dst."""
    cluster.psql('CREATE DATABASE %s' % dst, db='postgres')
    out = cluster._run([cluster._bin('pg_restore'), '-h', cluster.sockdir,
                        '-p', str(cluster.port), '--exit-on-error', '-d', dst, path])
    test.assertNotIn('ERROR', out.stderr)


def kept_state(db):
    """What a dump of db keeps: the transports and hooks, the unfinished
    deliveries with their events and attempts, and the sequences; every
    column, as text, in id order."""
    return {
        'transports': rows("SELECT t::text FROM webhook.transport t ORDER BY id", db),
        'hooks': rows("SELECT h::text FROM webhook.hook h ORDER BY id", db),
        'deliveries': rows("SELECT d::text FROM webhook.delivery d WHERE %s ORDER BY id"
                           % UNFINISHED, db),
        'events': rows("SELECT e::text FROM webhook.event e WHERE EXISTS (SELECT 1 FROM"
                       " webhook.delivery d WHERE d.event_id = e.id AND d.%s) ORDER BY id"
                       % UNFINISHED, db),
        'attempts': rows("SELECT a::text FROM webhook.attempt a JOIN webhook.delivery d"
                         " ON d.id = a.delivery_id WHERE d.%s ORDER BY 1" % UNFINISHED, db),
        'sequences': rows("SELECT (SELECT last_value FROM webhook.event_id_seq),"
                          " (SELECT last_value FROM webhook.delivery_id_seq),"
                          " (SELECT last_value FROM webhook.hook_id_seq)", db),
    }


class DumpTest(unittest.TestCase):
    maxDiff = None

    def test_dump_and_restore_keep_undelivered_events(self):
        c = cluster
        src = 'dump_src'
        drop_later(self, src)
        c.psql('CREATE DATABASE %s' % src, db='postgres')
        c.psql('CREATE EXTENSION webhook', db=src)
        self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", db=src,
                               timeout=40), 't')
        down = [True]
        rx.respond(lambda req: R(500) if down[0] and req.path in (DOWN, LATER) else None)
        self.addCleanup(rx.respond, None)
        self.addCleanup(set_enabled, 'on')

        # the original: a watched table, three hooks, a tenant with its role
        c.psql("""
            CREATE TABLE orders (id int PRIMARY KEY, state text NOT NULL DEFAULT 'created');
            SELECT webhook.watch('orders', resource => 'order', state_column => 'state');
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dump_acme') THEN
                    CREATE ROLE dump_acme LOGIN;
                END IF;
            END $$;
            SELECT webhook.grant_tenant('dump_acme', 'acme');""", db=src)
        t = c.one("SELECT webhook.create_transport('main', %s)" % lit(rx.url()), db=src)
        acme = c.one("SELECT webhook.create_transport('acme', %s, tenant => 'acme')"
                     % lit(rx.url()), db=src)
        hooks = {}
        hooks[DOWN] = c.one(
            "SELECT webhook.create_hook(%s, '{ORDER_*}', path => %s, secret => %s,"
            " retry_schedule => %s)"
            # a retry every second, 40 of them: none dies before the dump
            % (t, lit(DOWN), lit(SECRET), lit('{%s}' % ','.join(['1s'] * 40))), db=src)
        hooks[DONE] = c.one(
            "SELECT webhook.create_hook(%s, '{ORDER_*,DONE}', path => %s, secret => %s)"
            % (t, lit(DONE), lit(SECRET)), db=src)
        hooks[LATER] = c.one(
            "SELECT webhook.create_hook(%s, '{LATER}', path => %s, secret => %s,"
            " payload_format => 'envelope', retry_schedule => '{1h}')"
            % (acme, lit(LATER), lit(SECRET)), db=src)

        # the receiver down: deliveries to DOWN fail, again and again, and
        # LATER's once; DONE's are sent: history at the dump
        c.psql("INSERT INTO orders SELECT g FROM generate_series(1, 3) g", db=src)
        done_only = c.one("SELECT webhook.emit('DONE', '{\"only\": \"done\"}')", db=src)
        later = c.one("SELECT webhook.emit('LATER', '{\"n\": 1}', tenant => 'acme',"
                      " resource => 'invoice', resource_id => '7')", db=src)
        # rolled back: never an event, anywhere
        rolled = c.one("BEGIN; SELECT webhook.emit('LATER', '{\"rolled\": \"back\"}',"
                       " tenant => 'acme'); INSERT INTO orders VALUES (99); ROLLBACK", db=src)
        wait_value("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %s"
                   " AND state = 'failed' AND attempts >= 2" % hooks[DOWN], '3', src)
        wait_value("SELECT state || ' ' || attempts FROM webhook.deliveries WHERE hook_id = %s"
                   % hooks[LATER], 'failed 1', src)
        wait_value("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %s"
                   " AND state = 'succeeded'" % hooks[DONE], '4', src)
        history = {r.headers['webhook-id'] for r in rx.requests(DONE)}
        self.assertEqual(len(history), 4)

        # sending paused: what comes now waits, pending, with no attempt
        set_enabled('off')
        wait_value('SELECT coalesce(sum(held + in_flight), 0) FROM webhook_internal.workers()',
                   '0', src)
        c.psql("UPDATE orders SET state = 'accepted' WHERE id <= 2", db=src)
        # their deliveries made, as the worker would make them when it reads
        # the log (test_events_not_read_yet_are_dumped dumps events unread)
        c.one("SELECT webhook_internal.spill(true)", db=src)

        # what the original holds, and would send: every unfinished delivery
        # with its event's uid and the body preview() renders of it
        state = kept_state(src)
        expected = {}
        for did, hook, uid, attempts, body in rows(
                "SELECT d.id, d.hook_id, e.uid, d.attempts, (webhook.preview(d.hook_id, e.id)).body"
                "  FROM webhook.deliveries d JOIN webhook.event e ON e.id = d.event_id"
                " WHERE d.%s ORDER BY d.id" % UNFINISHED, src):
            expected[int(did)] = (hook, uid, int(attempts), body)
        # DONE: the two updates, waiting; DOWN: those two, and the three
        # inserts failed twice or more; LATER: failed once
        kinds = sorted((h, 'waiting' if a == 0 else 'failed' if a == 1 else 'failed again')
                       for h, _, a, _ in expected.values())
        self.assertEqual(kinds, sorted([(hooks[DONE], 'waiting')] * 2
                                       + [(hooks[DOWN], 'waiting')] * 2
                                       + [(hooks[DOWN], 'failed again')] * 3
                                       + [(hooks[LATER], 'failed')]))
        # the bodies the receiver got while down are the ones that are due
        sent_down = {r.headers['webhook-id']: r.body for r in rx.requests(DOWN)}
        for hook, uid, attempts, body in expected.values():
            if attempts > 0 and hook == hooks[DOWN]:
                self.assertEqual(sent_down[uid], body.encode())
        later_due = c.one("SELECT next_attempt_at FROM webhook.deliveries WHERE hook_id = %s"
                          % hooks[LATER], db=src)

        tmp = tempfile.mkdtemp(prefix='webhook-e2e-dump-')
        if not harness.KEEP:
            self.addCleanup(shutil.rmtree, tmp, True)
        custom, plain = os.path.join(tmp, 'src.dump'), os.path.join(tmp, 'src.sql')
        conn = ['-h', c.sockdir, '-p', str(c.port)]
        c._run([c._bin('pg_dump')] + conn + ['-Fc', '-f', custom, src])
        c._run([c._bin('pg_dump')] + conn + ['-f', plain, src])
        # from here on the original sends nothing: it is gone
        c.psql('DROP DATABASE %s WITH (FORCE)' % src, db='postgres')

        # custom format with pg_restore while sending is paused, the rows
        # compared before anything is sent; plain format with psql while the
        # workers send, serving the database as soon as CREATE EXTENSION
        # commits, in the middle of the restore
        restores = [
            ('dump_custom', False, [c._bin('pg_restore')] + conn + [
                '--exit-on-error', '-d', 'dump_custom', custom]),
            ('dump_plain', True, [c._bin('psql')] + conn + [
                '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dump_plain', '-f', plain]),
        ]
        for db, sending, restore in restores:
            with self.subTest(db=db):
                drop_later(self, db)
                down[0] = not sending
                set_enabled('on' if sending else 'off')
                rx.clear()
                c.psql('CREATE DATABASE %s' % db, db='postgres')
                out = c._run(restore)
                self.assertNotIn('ERROR', out.stderr)
                if not sending:
                    # restored as the original had them, row for row: the
                    # triggers on the hooks and transports changed nothing
                    self.assertEqual(kept_state(db), state)
                    self.assertEqual(c.one('SELECT count(*) FROM webhook.deliveries', db=db),
                                     str(len(expected)))
                    self.assertEqual(rx.requests(), [])
                self.assertEqual(c.one('SELECT count(*) FROM webhook.event', db=db),
                                 str(len(state['events'])))
                self.assertEqual(c.one("SELECT count(*) FROM webhook.event"
                                       " WHERE payload @> '{\"rolled\": \"back\"}'"
                                       " OR resource_id = '99' OR uid IN (%s, %s)"
                                       % (lit(rolled), lit(done_only)),
                                       db=db), '0')
                # the tenant's role sees its tenant's event, as in the original
                self.assertEqual(c.psql('SELECT e.uid, e.tenant FROM webhook.event e',
                                        db=db, user='dump_acme'), [[later, 'acme']])
                # the receiver is back, sending resumes: the workers serve the
                # restored database
                down[0] = False
                set_enabled('on')
                self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", db=db,
                                       timeout=40), 't')
                due = {did: v for did, v in expected.items() if v[0] != hooks[LATER]}
                for did, (hook, uid, attempts, body) in due.items():
                    wait_value("SELECT state FROM webhook.deliveries WHERE id = %d" % did,
                               'succeeded', db)
                    path = [p for p, h in hooks.items() if h == hook][0]
                    got = [r for r in rx.requests(path) if r.headers['webhook-id'] == uid]
                    self.assertTrue(got, (path, uid))
                    for r in got:
                        self.assertEqual(r.body, body.encode())
                        harness.verify_standard(SECRET, r.headers, r.body)
                    # the attempts go on from where the original left them
                    self.assertEqual(rows('SELECT attempt_no, status_code FROM webhook.attempt'
                                          ' WHERE delivery_id = %d ORDER BY attempt_no'
                                          % did, db),
                                     [[str(n), '500'] for n in range(1, attempts + 1)]
                                     + [[str(attempts + 1), '200']])
                # a later event, sent, is the signal that nothing else came:
                # no history sent again, no rolled-back event, and the retry
                # due in an hour not sent early
                marker = c.one("SELECT webhook.emit('DONE', '{\"marker\": true}')", db=db)
                wait_value("SELECT d.state FROM webhook.event e JOIN webhook.deliveries d"
                           " ON d.event_id = e.id WHERE e.uid = %s" % lit(marker),
                           'succeeded', db)
                received = {r.headers['webhook-id'] for r in rx.requests()}
                self.assertEqual(received - {marker}, {v[1] for v in due.values()})
                self.assertFalse({r.headers['webhook-id'] for r in rx.requests(DONE)} & history)
                self.assertNotIn(done_only, received)
                self.assertNotIn(rolled, received)
                self.assertEqual(rows("SELECT state, attempts, next_attempt_at FROM"
                                      " webhook.delivery WHERE hook_id = %s" % hooks[LATER], db),
                                 [['failed', '1', later_due]])
                # new rows take new ids
                self.assertGreater(int(c.one("SELECT id FROM webhook.event WHERE uid = %s"
                                             % lit(marker), db=db)),
                                   int(state['sequences'][0][0]))
                c.psql('DROP DATABASE %s WITH (FORCE)' % db, db='postgres')


    def test_disabled_hook_keeps_its_place_across_a_dump(self):
        """A hook disabled before the dump, and the events it missed, are
        restored: re-enabled in the restored database, it is sent them, with
        their webhook-ids, oldest first."""
        c = cluster
        src, dst = 'dump_place_src', 'dump_place_dst'
        for db in (src, dst):
            drop_later(self, db)
        c.psql('CREATE DATABASE %s' % src, db='postgres')
        c.psql('CREATE EXTENSION webhook', db=src)
        t = c.one("SELECT webhook.create_transport('main', %s)" % lit(rx.url()), db=src)
        hook = c.one("SELECT webhook.create_hook(%s, '{MISSED}', path => '/dump-place',"
                     " secret => %s)" % (t, lit(SECRET)), db=src)
        c.psql("SELECT webhook.update_hook(%s, active => false)" % hook, db=src)
        missed = [c.one("SELECT webhook.emit('MISSED', '{\"n\": %d}')" % n, db=src)
                  for n in (1, 2)]
        custom = dump(self, src, 'place.dump')
        c.psql('DROP DATABASE %s WITH (FORCE)' % src, db='postgres')
        restore(self, custom, dst)
        # the hook keeps its place, and the log the events after it
        self.assertEqual(c.psql("SELECT uid FROM webhook.event ORDER BY id", db=dst),
                         [[u] for u in missed])
        self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", db=dst,
                               timeout=40), 't')
        rx.clear()
        c.psql("SELECT webhook.update_hook(%s, active => true)" % hook, db=dst)
        harness.wait_until(lambda: len(rx.requests('/dump-place')) >= 2, 30,
                           'the missed events sent from the restored database')
        got = rx.requests('/dump-place')
        # an unordered hook: both sent at once, in either order
        self.assertEqual(sorted(r.headers['webhook-id'] for r in got), sorted(missed))
        for r in got:
            harness.verify_standard(SECRET, r.headers, r.body)
        c.psql('DROP DATABASE %s WITH (FORCE)' % dst, db='postgres')

    def test_events_not_read_yet_are_dumped(self):
        """Events a hook's cursor has not read yet (a session holds the
        cursor, so the worker's claims leave the hook alone), in the event
        log's slots, are dumped with the cursor; restored, the new
        database's worker adopts the cursor, makes them deliveries, and
        sends each once, and not again the one it had read and sent
        before."""
        c = cluster
        src, dst = 'dump_cursor_src', 'dump_cursor_dst'
        path = '/dump-cursor'
        for db in (src, dst):
            drop_later(self, db)
        c.psql('CREATE DATABASE %s' % src, db='postgres')
        c.psql('CREATE EXTENSION webhook', db=src)
        self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", db=src,
                               timeout=40), 't')
        t = c.one("SELECT webhook.create_transport('main', %s)" % lit(rx.url()), db=src)
        hook = c.one("SELECT webhook.create_hook(%s, '{CURSOR}', path => %s, secret => %s)"
                     % (t, lit(path), lit(SECRET)), db=src)
        rx.clear()
        # read and sent
        first = c.one("SELECT webhook.emit('CURSOR', '{\"n\": 1}')", db=src)
        harness.wait_until(lambda: len(rx.requests(path)) >= 1, 30, 'the first event sent')
        wait_value("SELECT count(*) FROM webhook.deliveries WHERE state = 'succeeded'", '1', src)
        # its stored cursor moved past it (a moment after the record): the
        # worker holds no read position of its own any more
        wait_value("SELECT count(*) FROM webhook.event e, webhook_internal.cursor c"
                   " WHERE c.hook_id = %s AND NOT pg_visible_in_snapshot(e.txid, c.lo)"
                   " AND NOT (pg_visible_in_snapshot(e.txid, c.hi)"
                   "          AND (e.txid, e.id) <= (c.last_txid, c.last_id))" % hook,
                   '0', src)
        # then the cursor held: later events stay in the log alone
        holder = harness.Session(c, db=src)
        self.addCleanup(holder.close)
        holder.send('BEGIN; SELECT FROM webhook_internal.cursor WHERE hook_id = %s FOR UPDATE;'
                    % hook)
        wait_value("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                   " WHERE l.relation = 'webhook_internal.cursor'::regclass"
                   " AND l.granted AND a.backend_type = 'client backend'"
                   " AND a.state = 'idle in transaction'", '1', src)
        # each in a slot of the event log of its own, neither webhook.event's
        # own rows (prune('0') makes the next slot current): the dump reads
        # every slot
        later = []
        for n in (2, 3):
            c.psql("SELECT webhook.prune('0')", db=src)
            later.append(c.one("SELECT webhook.emit('CURSOR', '{\"n\": %d}')" % n, db=src))
        self.assertEqual(c.psql("SELECT tableoid::regclass FROM webhook.event"
                                " WHERE uid IN (%s) ORDER BY id" % ', '.join(map(lit, later)),
                                db=src),
                         [['webhook_internal.event_1'], ['webhook_internal.event_2']])
        c.workers_went_round()
        self.assertEqual(c.one("SELECT count(*) FROM webhook.deliveries", db=src), '1')
        custom = dump(self, src, 'cursor.dump')
        holder.send('ROLLBACK;')
        c.psql('DROP DATABASE %s WITH (FORCE)' % src, db='postgres')
        self.assertEqual([r.headers['webhook-id'] for r in rx.requests(path)], [first])
        rx.clear()
        restore(self, custom, dst)
        self.assertEqual(c.psql("SELECT uid FROM webhook.event ORDER BY id", db=dst),
                         [[u] for u in later])
        self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", db=dst,
                               timeout=40), 't')
        wait_value("SELECT count(*) FROM webhook.deliveries WHERE state = 'succeeded'", '2', dst)
        # a later event, sent, is the signal that nothing else came
        marker = c.one("SELECT webhook.emit('CURSOR', '{\"marker\": true}')", db=dst)
        harness.wait_until(lambda: marker in {r.headers['webhook-id']
                                              for r in rx.requests(path)}, 30,
                           'the marker sent')
        got = [r.headers['webhook-id'] for r in rx.requests(path)]
        self.assertEqual(sorted(got), sorted(later + [marker]))
        for r in rx.requests(path):
            harness.verify_standard(SECRET, r.headers, r.body)
        c.psql('DROP DATABASE %s WITH (FORCE)' % dst, db='postgres')


if __name__ == '__main__':
    unittest.main()
