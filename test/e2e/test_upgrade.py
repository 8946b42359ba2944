"""Upgrades: every released version (each rebuilt from its release commit,
sql/releases, by sql/build-script), filled with
work, updated in place with ALTER EXTENSION webhook UPDATE: nothing lost,
the worker goes on; and each updated is the very catalog a fresh install
makes.  The worker of a newer library waits, saying why, while the catalog
is older."""

import os
import unittest

import harness
from harness import lit

HERE = os.path.dirname(os.path.abspath(__file__))
CURRENT = open(os.path.join(HERE, '..', '..', 'webhook.control')).read() \
    .split("default_version = '")[1].split("'")[0]
RELEASED = [line.split()[0] for line in
                      open(os.path.join(HERE, '..', '..', 'sql', 'releases'))
                      if line.strip() and not line.startswith('#')]
CATALOG_SQL = open(os.path.join(HERE, '..', 'catalog.sql')).read()

cluster = rx = None


def setUpModule():
    global cluster, rx
    cluster = harness.Cluster(create_extension=False)
    cluster.start()
    rx = harness.Receiver()


def tearDownModule():
    harness.stop_all()


def wait_log(text, timeout=20):
    harness.wait_until(lambda: text in cluster.log(), timeout,
                       '%r in the server log' % text)


def version(db=None):
    return cluster.psql("SELECT extversion FROM pg_extension WHERE extname = 'webhook'",
                        db=db)[0][0]


class UpgradeTest(unittest.TestCase):
    maxDiff = None

    def test_a_update_keeps_everything(self):
        c = cluster
        c.psql("CREATE EXTENSION webhook VERSION '0.1'")
        self.assertEqual(version(), '0.1')
        # the current library's worker does not touch a 0.1 catalog, and says why
        wait_log('waits: the extension in this database is version 0.1, '
                 "this library's is %s" % CURRENT)
        # work of every kind, made and partly sent under 0.1
        c.psql("""
            CREATE TABLE up_orders (id int PRIMARY KEY, state text NOT NULL DEFAULT 'created');
            SELECT webhook.watch('up_orders', resource => 'order', state_column => 'state');
            CREATE ROLE up_acme LOGIN;
            SELECT webhook.grant_tenant('up_acme', 'default');""")
        t = c.create_transport(base_url=rx.url(), auth={'type': 'bearer', 'token': 'up-SECRET-1'})
        hook = c.create_hook(t, ['ORDER_*'], path='/up', signature='hmac-sha256',
                             secret='up-SECRET-2', retry_schedule='{1s,1s,1s}')
        c.psql("INSERT INTO up_orders SELECT g FROM generate_series(1, 20) g")
        c.psql("UPDATE up_orders SET state = 'accepted' WHERE id <= 5")
        self.assertEqual(rx.requests(path='/up'), [])
        before = c.psql("SELECT (SELECT count(*) FROM webhook.event),"
                        "       (SELECT count(*) FROM webhook.delivery),"
                        "       (SELECT count(*) FROM webhook.tenant_grant),"
                        "       (SELECT count(*) FROM webhook.watch)")[0]
        self.assertEqual(before, ['25', '25', '1', '1'])

        c.psql('ALTER EXTENSION webhook UPDATE')
        self.assertEqual(version(), CURRENT)
        # the worker goes on and sends what 0.1 queued, and what comes next
        rx.wait_requests(25, path='/up', timeout=30)
        c.psql("UPDATE up_orders SET state = 'settled' WHERE id = 1")
        reqs = rx.wait_requests(26, path='/up', timeout=30)
        for r in reqs:
            harness.verify_hmac_sha256('up-SECRET-2', r.headers.get('X-Signature'), r.body)
            self.assertEqual(r.headers.get('Authorization'), 'Bearer up-SECRET-1')
        c.wait_for("SELECT count(*) FROM webhook.deliveries WHERE state = 'succeeded'", '26')
        self.assertEqual(c.one('SELECT webhook.hook_secret(%d)' % hook), 'up-SECRET-2')
        self.assertEqual(c.psql("SELECT count(*) FROM webhook.transports()", user='up_acme'),
                         [['1']])
        wait_log('goes on: the extension is version %s' % CURRENT)

    def test_b_updated_catalog_is_a_fresh_one(self):
        cluster.psql('CREATE DATABASE fresh')
        cluster.psql('CREATE EXTENSION webhook', db='fresh')
        fresh = [r[0] for r in cluster.psql(CATALOG_SQL, db='fresh')]
        self.assertGreater(len(fresh), 300)
        self.assertIn('0.2', RELEASED)
        for old in RELEASED:
            db = 'updated_' + old.replace('.', '_')
            with self.subTest(old=old):
                cluster.psql('CREATE DATABASE %s' % db)
                cluster.psql("CREATE EXTENSION webhook VERSION '%s'" % old, db=db)
                cluster.psql('ALTER EXTENSION webhook UPDATE', db=db)
                self.assertEqual(version(db), version('fresh'))
                updated = [r[0] for r in cluster.psql(CATALOG_SQL, db=db)]
                self.assertEqual(updated, fresh)

if __name__ == '__main__':
    unittest.main()
