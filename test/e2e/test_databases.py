"""One cluster, many order databases: with webhook.database_name = '*', the
launcher starts workers in every database where the extension is installed,
and stops them when the extension or the database is dropped."""

import time
import unittest

import harness
from harness import lit

cluster = rx = None


setUpModule, tearDownModule = harness.cluster_and_receiver(
    globals(), ["webhook.database_name = '*'", 'webhook.workers = 2'])


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
        # a database without the extension keeps no worker
        time.sleep(1)
        self.assertEqual(workers_in('shop_plain'), 0)

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
        time.sleep(1)
        self.assertEqual(workers_in('shop_b'), 0)
        # the other databases are served as before
        self.assertEqual(workers_in('shop_a'), 2)
        self.assertEqual(workers_in(harness.DB_NAME), 2)
        log = cluster.log()
        self.assertNotIn('database "shop_b" does not exist', log)
        cluster.psql('DROP DATABASE shop_a', db='postgres')
        cluster.psql('DROP DATABASE shop_plain', db='postgres')


if __name__ == '__main__':
    unittest.main()
