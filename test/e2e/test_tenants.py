"""Tenants: roles that log in manage and see their own tenant only, their
hooks deliver, and grants and revokes take effect at the next statement,
also while the tenant's session is running."""

import subprocess
import threading
import unittest

import harness
from harness import lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(globals())


def as_role(role, sql):
    return cluster.psql(sql, user=role)


def one_as(role, sql):
    rows = as_role(role, sql)
    return rows[0][0] if rows else None


def lines_as(role, script, timeout=60):
    """Run a script of statements in one session of the role; its output
    lines, fields separated by commas."""
    p = subprocess.run(
        [cluster._bin('psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
         '-h', cluster.sockdir, '-p', str(cluster.port), '-d', cluster.dbname,
         '-U', role, '-F', ',', '-c', script],
        capture_output=True, timeout=timeout, env=cluster._env())
    if p.returncode != 0:
        raise harness.PsqlError(p.stderr.decode())
    return [line for line in p.stdout.decode().split('\n') if line]


class TenantsTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cluster.psql("CREATE ROLE wh_acme LOGIN; CREATE ROLE wh_globex LOGIN")
        cluster.psql("SELECT webhook.grant_tenant('wh_acme', 'acme'),"
                     "       webhook.grant_tenant('wh_globex', 'globex')")
        cls.acme_t = int(cluster.one("SELECT webhook.create_transport('erp', %s, tenant => 'acme')"
                                     % lit(rx.url())))
        cls.globex_t = int(cluster.one("SELECT webhook.create_transport('erp', %s, tenant => 'globex')"
                                       % lit(rx.url())))

    def test_tenant_role_manages_and_delivers(self):
        # the tenant's own login makes the hook, emits, and reads its log
        hook = int(one_as('wh_acme', "SELECT webhook.create_hook(%d, '{ACME_*}', path => '/acme',"
                                     " signature => 'hmac-sha256', secret => 'acme-SECRET-1')"
                          % self.acme_t))
        uid = one_as('wh_acme', """SELECT webhook.emit('ACME_ORDER', '{"n": 1}', tenant => 'acme')""")
        req = rx.wait_requests(1, path='/acme')[0]
        self.assertEqual(req.headers.get('webhook-id'), uid)
        harness.verify_hmac_sha256('acme-SECRET-1', req.headers.get('X-Signature'), req.body)
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(as_role('wh_acme', "SELECT hook_id, status_code, state FROM webhook.delivery_log"),
                         [[str(hook), '200', 'succeeded']])
        # the other tenant sees none of it, by the tables or the API
        self.assertEqual(as_role('wh_globex', "SELECT count(*) FROM webhook.delivery_log"
                                              " UNION ALL SELECT count(*) FROM webhook.event"
                                              " UNION ALL SELECT count(*) FROM webhook.hooks()"),
                         [['0'], ['0'], ['0']])
        with self.assertRaisesRegex(harness.PsqlError, 'hook %d does not exist' % hook):
            as_role('wh_globex', 'SELECT webhook.hook_secret(%d)' % hook)
        with self.assertRaisesRegex(harness.PsqlError, 'permission denied for tenant "acme"'):
            as_role('wh_globex', "SELECT webhook.emit('ACME_ORDER', '{}', tenant => 'acme')")

    def test_revoke_and_grant_apply_to_the_next_statement(self):
        # a session of the tenant is running while an admin revokes, then
        # grants again: each statement sees the grants as they are when it
        # starts.  The session waits for advisory locks the test holds, so
        # that each change comes between two of its statements, whatever
        # the machine's pace.
        first, second = 7431001, 7431002
        script = ("SELECT 'a', count(*) FROM webhook.transports();"
                  "SELECT pg_advisory_lock_shared(%d);"
                  "SELECT 'b', count(*) FROM webhook.transports();"
                  "BEGIN;"
                  "SELECT 'c', count(*) FROM webhook.transport;"
                  "SELECT pg_advisory_lock_shared(%d);"
                  "SELECT 'd', count(*) FROM webhook.transport;"
                  "COMMIT;" % (first, second))
        waiting = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                   " AND objid = %d AND NOT granted")
        holder = harness.Session(cluster)
        out = {}

        def session():
            out['lines'] = lines_as('wh_globex', script)
        t = threading.Thread(target=session)
        try:
            holder.send('SELECT pg_advisory_lock(%d), pg_advisory_lock(%d);' % (first, second))
            cluster.wait_for("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                             " AND objid IN (%d, %d) AND granted" % (first, second), '2')
            t.start()
            cluster.wait_for(waiting % first, '1')       # 'a' done, 'b' to come
            cluster.psql("SELECT webhook.revoke_tenant('wh_globex', 'globex')")
            holder.send('SELECT pg_advisory_unlock(%d);' % first)
            cluster.wait_for(waiting % second, '1')      # 'c' done, 'd' to come
            cluster.psql("SELECT webhook.grant_tenant('wh_globex', 'globex')")
            holder.send('SELECT pg_advisory_unlock(%d);' % second)
            t.join(30)
        finally:
            holder.close()
        self.assertFalse(t.is_alive())
        self.assertEqual(out['lines'], ['a,1', 'b,0', 'c,0', 'd,1'])

    def test_concurrent_grants_and_revokes(self):
        # an admin flips the grant while the tenant's session reads: every
        # read sees all of the tenant's rows or none, and never another's
        reads = 300
        script = ''.join("SELECT count(*) FILTER (WHERE tenant = 'acme'),"
                         "       count(*) FILTER (WHERE tenant <> 'acme')"
                         "  FROM webhook.transports(); SELECT pg_sleep(0.01);"   # reads
                         # spread over the flips: the pace is the behaviour
                         for _ in range(reads))
        stop = threading.Event()
        flips = [0]

        def flip():
            while not stop.is_set() and flips[0] < 200:
                cluster.psql("SELECT webhook.revoke_tenant('wh_acme', 'acme')")
                cluster.psql("SELECT webhook.grant_tenant('wh_acme', 'acme')")
                flips[0] += 1
        t = threading.Thread(target=flip)
        t.start()
        try:
            seen = lines_as('wh_acme', script)
        finally:
            stop.set()
            t.join(30)
        self.assertEqual(len(seen), reads)
        self.assertEqual(set(seen) - {'0,0', '1,0'}, set())
        harness.note('tenants: %d reads during %d revoke/grant pairs: %d saw the tenant, %d nothing'
                     % (reads, flips[0], seen.count('1,0'), seen.count('0,0')))
        self.assertGreater(flips[0], 0)


if __name__ == '__main__':
    unittest.main()
