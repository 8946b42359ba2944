"""One cluster, many order databases: with webhook.database_name = '*', the
launcher starts workers in every database where the extension is installed,
and stops them when the extension or the database is dropped, and while
ALTER DATABASE RENAME TO or SET TABLESPACE, or CREATE DATABASE ... TEMPLATE,
needs the database alone."""

import os
import signal
import time
import unittest

import harness
from harness import lit

cluster = rx = None


setUpModule, tearDownModule = harness.cluster_and_receiver(
    globals(), ["webhook.database_name = '*'", 'webhook.workers = 2',
                # the launcher, and two workers in each of up to five databases
                'max_worker_processes = 16'])


def workers_in(db):
    return int(cluster.one("SELECT count(*) FROM pg_stat_activity"
                           " WHERE backend_type = 'webhook worker' AND datname = %s" % lit(db),
                           db='postgres'))


def deliver_in(db, path):
    """A hook and an event in database db; returns the request received."""
    tid = cluster.one("SELECT webhook.create_transport(%s, %s)"
                      % (lit(db + path), lit(rx.url())), db=db)
    event_type = harness.uniq('DB')
    cluster.one("SELECT webhook.create_hook(%s, %s, path => %s)"
                % (tid, lit([event_type]), lit(path)), db=db)
    uid = cluster.one("SELECT webhook.emit(%s, '{\"db\": \"%s\"}')" % (lit(event_type), db), db=db)
    req = rx.wait_requests(1, path=path, timeout=15)[0]
    assert req.headers['webhook-id'] == uid, (req.headers, uid)
    return req


def worker_pids(db):
    return cluster.psql("SELECT pid FROM pg_stat_activity WHERE backend_type ="
                        " 'webhook worker' AND datname = %s ORDER BY pid" % lit(db),
                        db='postgres')


def drop_later(test, *dbs):
    """Drop databases dbs when test ends, whatever it did."""
    for db in dbs:
        test.addCleanup(cluster.psql, 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % db,
                        db='postgres')


def served_database(test, db):
    """A new database db with the extension, its workers running."""
    drop_later(test, db)
    cluster.psql('CREATE DATABASE %s' % db, db='postgres')
    cluster.psql('CREATE EXTENSION webhook', db=db)
    assert cluster.one("SELECT webhook.wait_until_running('20 s')", db=db, timeout=40) == 't'
    assert workers_in(db) == 2, db


def hook_in(db, path):
    """A hook in database db sending to path; returns its event type."""
    tid = cluster.one("SELECT webhook.create_transport(%s, %s)"
                      % (lit(db + path), lit(rx.url())), db=db)
    event_type = harness.uniq('DB')
    cluster.one("SELECT webhook.create_hook(%s, %s, path => %s)"
                % (tid, lit([event_type]), lit(path)), db=db)
    return event_type


def emit_in(db, event_type, n):
    return cluster.one("SELECT webhook.emit(%s, '{\"n\": %d}')" % (lit(event_type), n), db=db)


def delivered(path, uids):
    """Wait until every event of uids was received on path."""
    def got():
        return {r.headers['webhook-id'] for r in rx.requests(path)}
    harness.wait_until(lambda: set(uids) <= got(), 40, 'events %r on %s' % (uids, path),
                       detail=lambda: 'got %r\n--- log ---\n%s'
                       % (sorted(got()), cluster.log_tail(30)))


class DatabasesTest(unittest.TestCase):

    def test_workers_follow_the_extension_and_the_database(self):
        for db in ('shop_a', 'shop_b', 'shop_plain'):
            cluster.psql('CREATE DATABASE %s' % db, db='postgres')
        for db in ('shop_a', 'shop_b'):
            cluster.psql('CREATE EXTENSION webhook', db=db)
            self.assertEqual(cluster.one("SELECT webhook.wait_until_running('20 s')", db=db,
                                         timeout=40), 't', db)
            self.assertEqual(workers_in(db), 2, db)
            self.assertEqual(deliver_in(db, '/' + db).json()['data'], {'db': db})

        # DROP EXTENSION: the database's workers exit
        cluster.psql('DROP EXTENSION webhook', db='shop_a')
        cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE backend_type ="
                         " 'webhook worker' AND datname = 'shop_a'", '0', timeout=15)
        # ... and come back with it
        cluster.psql('CREATE EXTENSION webhook', db='shop_a')
        self.assertEqual(cluster.one("SELECT webhook.wait_until_running('20 s')", db='shop_a',
                                     timeout=40), 't')
        deliver_in('shop_a', '/shop_a-again')

        # DROP DATABASE is not held up by the database's workers
        t0 = time.monotonic()
        cluster.psql('DROP DATABASE shop_b', db='postgres')
        harness.note('DROP DATABASE with 2 webhook workers took %.2f s' % (time.monotonic() - t0))
        self.assertLess(time.monotonic() - t0, 5)
        # it is gone: nothing can be connected to it
        self.assertEqual(workers_in('shop_b'), 0)
        # a database without the extension keeps no worker: the launcher
        # probed it (worker 1 comes and exits) when it first saw it, and has
        # served shop_a twice since
        cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE backend_type ="
                         " 'webhook worker' AND datname = 'shop_plain'", '0', timeout=15)
        # the other databases are served as before
        self.assertEqual(workers_in('shop_a'), 2)
        self.assertEqual(workers_in(harness.DB_NAME), 2)
        log = cluster.log()
        self.assertNotIn('database "shop_b" does not exist', log)
        cluster.psql('DROP DATABASE shop_a', db='postgres')
        cluster.psql('DROP DATABASE shop_plain', db='postgres')

    def test_rename_while_workers_run(self):
        drop_later(self, 'shop_new', 'shop_taken')
        served_database(self, 'shop_old')
        event_type = hook_in('shop_old', '/renamed')
        before = emit_in('shop_old', event_type, 1)
        cluster.psql('ALTER DATABASE shop_old RENAME TO shop_new', db='postgres')
        # '*' names the new name too: the workers come back, and lose nothing
        self.assertEqual(cluster.one("SELECT webhook.wait_until_running('20 s')", db='shop_new',
                                     timeout=40), 't')
        after = emit_in('shop_new', event_type, 2)
        delivered('/renamed', [before, after])

        # a rename that fails (the name is taken) and one rolled back give the
        # workers back too
        cluster.psql('CREATE DATABASE shop_taken', db='postgres')
        with self.assertRaises(harness.PsqlError) as cm:
            cluster.psql('ALTER DATABASE shop_new RENAME TO shop_taken', db='postgres')
        self.assertIn('already exists', str(cm.exception))
        cluster.psql('BEGIN; ALTER DATABASE shop_new RENAME TO shop_newer; ROLLBACK',
                     db='postgres')
        self.assertEqual(cluster.one("SELECT webhook.wait_until_running('20 s')", db='shop_new',
                                     timeout=40), 't')
        delivered('/renamed', [emit_in('shop_new', event_type, 3)])
        cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE backend_type ="
                         " 'webhook worker' AND datname = 'shop_new'", '2', timeout=20)

        # a role that does not own the database cannot stop its workers by
        # trying what it may not do
        cluster.psql('CREATE ROLE shop_intruder LOGIN CREATEDB', db='postgres')
        self.addCleanup(cluster.psql, 'DROP ROLE shop_intruder', db='postgres')
        pids = worker_pids('shop_new')
        for sql in ('ALTER DATABASE shop_new RENAME TO shop_mine', 'DROP DATABASE shop_new',
                    'CREATE DATABASE shop_mine TEMPLATE shop_new'):
            with self.assertRaises(harness.PsqlError) as cm:
                cluster.psql(sql, db='postgres', user='shop_intruder')
            self.assertRegex(str(cm.exception), 'must be owner|permission denied', sql)
        self.assertEqual(worker_pids('shop_new'), pids)

    def test_set_tablespace_while_workers_run(self):
        location = os.path.join(cluster.dir, 'tablespace')
        os.mkdir(location)
        cluster.psql('CREATE TABLESPACE shop_space LOCATION %s' % lit(location), db='postgres')
        self.addCleanup(cluster.psql, 'DROP TABLESPACE shop_space', db='postgres')
        served_database(self, 'shop_moved')
        event_type = hook_in('shop_moved', '/moved')
        before = emit_in('shop_moved', event_type, 1)
        cluster.psql('ALTER DATABASE shop_moved SET TABLESPACE shop_space', db='postgres')
        self.assertEqual(cluster.one("SELECT spcname FROM pg_database d JOIN pg_tablespace t"
                                     " ON t.oid = d.dattablespace WHERE datname = 'shop_moved'",
                                     db='postgres'), 'shop_space')
        self.assertEqual(cluster.one("SELECT webhook.wait_until_running('20 s')",
                                     db='shop_moved', timeout=40), 't')
        delivered('/moved', [before, emit_in('shop_moved', event_type, 2)])

    def test_template_copy_while_workers_run(self):
        drop_later(self, 'shop_copy_wal', 'shop_copy_file')
        served_database(self, 'shop_model')
        event_type = hook_in('shop_model', '/model')
        before = emit_in('shop_model', event_type, 1)
        delivered('/model', [before])
        cluster.psql('CREATE DATABASE shop_copy_wal TEMPLATE shop_model', db='postgres')
        cluster.psql('CREATE DATABASE shop_copy_file TEMPLATE shop_model STRATEGY FILE_COPY',
                     db='postgres')
        # the template is served again ...
        self.assertEqual(cluster.one("SELECT webhook.wait_until_running('20 s')",
                                     db='shop_model', timeout=40), 't')
        delivered('/model', [emit_in('shop_model', event_type, 2)])
        # ... and so are its copies ('*' names them), each with its own events
        for db in ('shop_copy_wal', 'shop_copy_file'):
            self.assertEqual(cluster.one("SELECT webhook.wait_until_running('20 s')",
                                         db=db, timeout=40), 't', db)
            delivered('/model', [emit_in(db, event_type, 3)])

    def test_served_again_when_connections_are_allowed_again(self):
        served_database(self, 'shop_closed')
        self.addCleanup(cluster.psql, 'ALTER DATABASE shop_closed ALLOW_CONNECTIONS true',
                        db='postgres')
        cluster.psql('ALTER DATABASE shop_closed ALLOW_CONNECTIONS false', db='postgres')
        cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
                     " backend_type = 'webhook worker' AND datname = 'shop_closed'",
                     db='postgres')
        harness.wait_until(lambda: workers_in('shop_closed') == 0, 15,
                           'the workers of shop_closed to exit')
        # none comes back while the database refuses connections: the
        # launcher leaves it alone (it starts no worker that would fail)
        quiet_until = time.monotonic() + 2
        while time.monotonic() < quiet_until:
            self.assertEqual(workers_in('shop_closed'), 0)
            time.sleep(0.1)
        # allowed again: served again at once, not after the launcher's nap
        t0 = time.monotonic()
        cluster.psql('ALTER DATABASE shop_closed ALLOW_CONNECTIONS true', db='postgres')
        harness.wait_until(lambda: workers_in('shop_closed') == 2, 20,
                           'the workers of shop_closed to come back',
                           detail=lambda: cluster.log_tail(30))
        harness.note('workers back %.2f s after ALLOW_CONNECTIONS true'
                     % (time.monotonic() - t0))
        deliver_in('shop_closed', '/shop_closed')


class NamedDatabasesTest(unittest.TestCase):
    """webhook.database_name as a list: a database renamed or copied out of
    it is not served, and the command says so."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.start_cluster(
            ["webhook.database_name = '%s, shop_listed'" % harness.DB_NAME])

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def workers_in(self, db):
        return self.cluster.one("SELECT count(*) FROM pg_stat_activity WHERE backend_type ="
                                " 'webhook worker' AND datname = %s" % lit(db), db='postgres')

    def test_renamed_out_of_the_list(self):
        c = self.cluster
        for db in ('shop_listed', 'shop_unlisted', 'shop_listed_copy'):
            self.addCleanup(c.psql, 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % db,
                            db='postgres')
        c.psql('CREATE DATABASE shop_listed', db='postgres')
        c.psql('CREATE EXTENSION webhook', db='shop_listed')
        self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", db='shop_listed',
                               timeout=40), 't')

        # a copy under a name the list lacks: made, and not served
        _, err = c.psql('CREATE DATABASE shop_listed_copy TEMPLATE shop_listed',
                        db='postgres', stderr=True)
        self.assertIn('the webhook workers will not serve database "shop_listed_copy"', err)
        self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", db='shop_listed',
                               timeout=40), 't')

        _, err = c.psql('ALTER DATABASE shop_listed RENAME TO shop_unlisted', db='postgres',
                        stderr=True)
        self.assertIn('the webhook workers will not serve database "shop_unlisted"', err)
        self.assertIn('HINT:  Add "shop_unlisted" to webhook.database_name', err)
        self.assertIn('the webhook workers will not serve database "shop_unlisted"', c.log())
        # no worker comes back, there or in the copy: the launcher, woken
        # when the rename ended its pause, left both alone (the setting names
        # neither); a worker of the listed database, stopped now, is started
        # again by a later pass of the launcher, by when it would have
        # started those too
        pid, n = map(int, c.psql("SELECT min(pid), count(*) FROM pg_stat_activity WHERE"
                                 " backend_type = 'webhook worker' AND datname = %s"
                                 % lit(harness.DB_NAME))[0])
        os.kill(pid, signal.SIGTERM)
        harness.wait_until(
            lambda: c.one("SELECT count(*) FROM pg_stat_activity WHERE backend_type ="
                          " 'webhook worker' AND datname = %s AND pid <> %d"
                          % (lit(harness.DB_NAME), pid)) == str(n),
            30, 'the listed database\'s workers to be started again')
        self.assertEqual(self.workers_in('shop_unlisted'), '0')
        self.assertEqual(self.workers_in('shop_listed_copy'), '0')
        # renamed back into the list, it is served again, without a warning
        _, err = c.psql('ALTER DATABASE shop_unlisted RENAME TO shop_listed', db='postgres',
                        stderr=True)
        self.assertNotIn('WARNING', err)
        self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", db='shop_listed',
                               timeout=40), 't')



class ProbeTest(unittest.TestCase):
    """A probe worker that dies before it can tell whether its database has
    the extension (here: terminated while it waits for a lock) is not one
    that found none: the launcher tries again within seconds, not after its
    nap.  One worker per database, so that the launcher's only worker there
    once the worker is gone is its probe."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.start_cluster(["webhook.database_name = '*'",
                                             'webhook.workers = 1'])

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def workers(self, where=''):
        return self.cluster.psql("SELECT pid FROM pg_stat_activity WHERE backend_type ="
                                 " 'webhook worker' AND datname = %s %s"
                                 % (lit(harness.DB_NAME), where), db='postgres')

    def test_probe_that_died_is_tried_again_soon(self):
        c = self.cluster
        c.wait_until_running()
        dboid = c.one("SELECT oid FROM pg_database WHERE datname = %s" % lit(harness.DB_NAME))
        offset = c.log_offset()
        # the probe's first look, for the extension, waits for this lock
        locker = harness.Session(c)
        self.addCleanup(locker.close)
        locker.send('BEGIN; LOCK TABLE pg_catalog.pg_extension IN ACCESS EXCLUSIVE MODE;')
        c.wait_for("SELECT count(*) FROM pg_locks WHERE locktype = 'relation'"
                   " AND relation = 'pg_catalog.pg_extension'::regclass AND database = %s"
                   " AND mode = 'AccessExclusiveLock' AND granted" % dboid, '1', timeout=15)
        (worker,), = self.workers()
        c.psql('SELECT pg_terminate_backend(%s)' % worker, db='postgres')
        # the launcher probes the database that lost its worker at once:
        # worker 1 comes, and waits for the lock; terminated, it dies with a
        # FATAL.  The next probe comes a second later, and waits; terminated
        # too, the next one comes two seconds later: a back-off, not a busy
        # loop, nor the launcher's nap
        gone = [worker]
        died_at = None
        for n in range(3):
            probe = harness.wait_until(
                lambda: self.workers("AND pid NOT IN (%s) AND wait_event_type = 'Lock'"
                                     % ', '.join(gone)), 15,
                'probe %d to wait for the lock' % (n + 1),
                detail=lambda: c.log_tail(30))[0][0]
            if died_at is not None:
                gap = time.monotonic() - died_at
                harness.note('probe %d started %.2f s after probe %d died' % (n + 1, gap, n))
                self.assertGreater(gap, 0.8 * n)
            c.psql('SELECT pg_terminate_backend(%s)' % probe, db='postgres')
            harness.wait_until(lambda: not self.workers('AND pid = %s' % probe), 15,
                               'probe %d to exit' % (n + 1))
            died_at = time.monotonic()
            gone.append(probe)
        t0 = time.monotonic()
        locker.send('ROLLBACK;')
        harness.wait_until(lambda: self.workers('AND pid NOT IN (%s)' % ', '.join(gone)),
                           20, 'a worker to come back', detail=lambda: c.log_tail(30))
        self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", timeout=40), 't')
        harness.note('worker back %.2f s after the lock was released' % (time.monotonic() - t0))
        # the launcher said once why it probed again sooner than its nap
        log = c.log(offset)
        self.assertEqual(log.count('webhook launcher will probe database %s again' % dboid),
                         1, log)


class ProbeRequestTest(unittest.TestCase):
    """A command that may let the launcher serve a database, run by the
    database's owner, has the launcher probe that database alone, not every
    database it does not serve: ALTER DATABASE ... ALLOW_CONNECTIONS true
    or IS_TEMPLATE false, the end of a RENAME's pause, a CREATE EXTENSION.
    The probes are counted in the server's log at DEBUG1, where the
    postmaster names each worker it registers, and its database's oid."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.start_cluster(["webhook.database_name = '*'",
                                             'webhook.workers = 1',
                                             # a probe of each database at once
                                             'max_worker_processes = 16',
                                             'log_min_messages = debug1'])

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def oid(self, db):
        return self.cluster.one("SELECT oid FROM pg_database WHERE datname = %s" % lit(db),
                                db='postgres')

    def probes(self, oids, since):
        """How many times worker 1 was started in each database of oids
        (a probe, or the first worker of a database served) since offset
        since of the log."""
        log = self.cluster.log(since)
        return {oid: log.count('DEBUG:  registering background worker "webhook worker 1'
                               ' for database %s"' % oid) for oid in oids}

    def wait_probed(self, oid, since, what):
        harness.wait_until(lambda: self.probes([oid], since)[oid] > 0, 20, what,
                           detail=lambda: self.cluster.log_tail(30))

    def test_a_command_probes_its_own_database(self):
        c = self.cluster
        c.wait_until_running()
        dbs = ['probe_%s' % x for x in 'abcde']
        c.psql('CREATE ROLE probe_owner LOGIN', db='postgres')
        self.addCleanup(c.psql, 'DROP ROLE probe_owner', db='postgres')
        for db in dbs + ['probe_c_renamed']:
            self.addCleanup(c.psql, 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % db,
                            db='postgres')
        offset = c.log_offset()
        for db in dbs:
            c.psql('CREATE DATABASE %s OWNER probe_owner' % db, db='postgres')
        oids = {db: self.oid(db) for db in dbs}
        # the launcher probes each new database once it sees it
        for db in dbs:
            self.wait_probed(oids[db], offset, 'the first probe of ' + db)
        harness.wait_until(lambda: c.one("SELECT count(*) FROM pg_stat_activity WHERE"
                                         " backend_type = 'webhook worker' AND datname"
                                         " LIKE 'probe%'", db='postgres') == '0',
                           20, 'the first probes to exit')

        def probed_alone(db, sql, user='probe_owner', where='postgres'):
            """Run sql, and see that the launcher probed db, and no other."""
            since = c.log_offset()
            c.psql(sql, db=where, user=user)
            self.wait_probed(oids[db], since, 'a probe of %s after %s' % (db, sql))
            # a positive signal that the launcher went round: a command
            # naming probe_e, after which it is probed alone too
            marker = c.log_offset()
            c.psql('ALTER DATABASE probe_e ALLOW_CONNECTIONS true', db='postgres',
                   user='probe_owner')
            self.wait_probed(oids['probe_e'], marker, 'a probe of probe_e after ' + sql)
            counts = self.probes(oids.values(), since)
            expected = {oid: 0 for oid in oids.values()}
            expected[oids[db]] = 1
            expected[oids['probe_e']] = 1
            self.assertEqual(counts, expected, '%s: %r\n%s' % (sql, oids, c.log(since)))

        # the owner, no superuser, lets connections in (they were already)
        probed_alone('probe_a', 'ALTER DATABASE probe_a ALLOW_CONNECTIONS true')
        # a template no more (it was none)
        probed_alone('probe_b', 'ALTER DATABASE probe_b IS_TEMPLATE false')
        # a renamed database keeps its oid: the end of the rename's pause
        # has the launcher probe it under its new name
        c.psql('ALTER ROLE probe_owner CREATEDB', db='postgres')
        probed_alone('probe_c', 'ALTER DATABASE probe_c RENAME TO probe_c_renamed')
        # the rename back ends a pause too: its probe must come before the
        # next command's window opens
        back = c.log_offset()
        c.psql('ALTER DATABASE probe_c_renamed RENAME TO probe_c', db='postgres')
        self.wait_probed(oids['probe_c'], back, 'a probe of probe_c after its rename back')
        # the extension made in a database: probed, and served
        probed_alone('probe_d', 'CREATE EXTENSION webhook', user=None, where='probe_d')
        self.assertEqual(c.one("SELECT webhook.wait_until_running('20 s')", db='probe_d',
                               timeout=40), 't')


if __name__ == '__main__':
    unittest.main()
