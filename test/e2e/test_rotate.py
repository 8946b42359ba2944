"""Secret rotation: webhook.rotate_secret(), and what receivers see during and after the overlap.

Signatures are checked over the exact bytes received, three ways: the Standard
Webhooks reference library (npm standardwebhooks, test/verifier) under node,
the openssl command line, and the harness's own Python verifiers.
"""

import base64
import subprocess
import time
import unittest

import harness
from harness import lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(globals())

_verify = None


def node_verify(secret, req):
    """(ok, text) of the reference library on request req with secret."""
    global _verify
    if _verify is None:
        _verify = harness.node_verifier()
    return _verify(secret, req.headers, req.body)


def openssl(args, data):
    p = subprocess.run(['openssl'] + args, input=data, capture_output=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError('openssl %s failed: %s' % (' '.join(args[:2]), p.stderr.decode()))
    return p.stdout


def openssl_standard(secret, req):
    """'v1,<base64>' over "id.timestamp.body" with the whsec_ secret's key, by `openssl mac`."""
    key = harness.standard_key(secret)
    data = ('%s.%s.' % (req.headers['webhook-id'], req.headers['webhook-timestamp'])
            ).encode('ascii') + req.body
    mac = openssl(['mac', '-digest', 'SHA256', '-macopt', 'hexkey:' + key.hex(),
                   '-binary', 'HMAC'], data)
    return 'v1,' + base64.b64encode(mac).decode('ascii')


def openssl_hmac_sha256(secret, body):
    """Lower-case hex HMAC-SHA256 of body with the secret's bytes, by `openssl dgst -hmac`."""
    out = openssl(['dgst', '-sha256', '-hmac', secret], body).decode('ascii')
    return out.strip().split('= ')[-1]


def error_of(sql):
    """'SQLSTATE|message|hint' of the error sql raises, or 'no error'."""
    return cluster.one('SELECT public.error_of(%s)' % lit(sql))


class RotateTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cluster.psql('''
            CREATE OR REPLACE FUNCTION public.error_of(q text) RETURNS text
                LANGUAGE plpgsql AS $$
            DECLARE st text; msg text; hint text;
            BEGIN
                EXECUTE q;
                RETURN 'no error';
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                        hint = PG_EXCEPTION_HINT;
                RETURN st || '|' || msg || '|' || coalesce(hint, '');
            END $$''')

    def secret(self, hook_id):
        return cluster.one('SELECT webhook.hook_secret(%d)' % hook_id)

    def rotate(self, hook_id, overlap):
        return cluster.one('SELECT webhook.rotate_secret(%d, %s)' % (hook_id, lit(overlap)))

    def previous(self, hook_id):
        """(previous_secret, seconds from now to previous_secret_until) of the catalog row."""
        row = cluster.psql('SELECT previous_secret, extract(epoch FROM previous_secret_until - now())'
                           ' FROM webhook.hook WHERE id = %d' % hook_id)[0]
        return row[0], None if row[1] is None else float(row[1])

    def row(self, hook_id):
        return cluster.psql('SELECT secret, previous_secret, previous_secret_until, updated_at'
                            ' FROM webhook.hook WHERE id = %d' % hook_id)

    def send(self, hook, path):
        uid = cluster.emit(hook.event_type, {'amount': 12.5, 'note': 'caf\u00e9 \u2713'})
        cluster.wait_state(uid, 'succeeded')
        reqs = [r for r in rx.requests(path=path) if r.headers.get('webhook-id') == uid]
        self.assertEqual(len(reqs), 1, reqs)
        return reqs[0]

    def test_rotate_returns_new_secret(self):
        hook = cluster.hook_on(rx.url(), '/rot-new')
        old = self.secret(hook.hook_id)
        new = self.rotate(hook.hook_id, '1 hour')
        self.assertNotEqual(new, old)
        self.assertEqual(cluster.one('SELECT webhook_internal.secret_is_valid(%s)' % lit(new)), 't')
        self.assertEqual(len(harness.standard_key(new)), 24)
        self.assertEqual(self.secret(hook.hook_id), new)
        prev, left = self.previous(hook.hook_id)
        self.assertEqual(prev, old)
        self.assertTrue(3590 < left <= 3600, left)
        # shown nowhere else
        listing = str(cluster.psql('SELECT * FROM webhook.hooks() AS h'))
        self.assertNotIn(new, listing)
        self.assertNotIn(old, listing)
        self.assertNotIn(new, cluster.log())

        # again while the overlap runs: only the secret replaced stays previous
        newer = self.rotate(hook.hook_id, '2 hours')
        self.assertNotIn(newer, (old, new))
        prev, left = self.previous(hook.hook_id)
        self.assertEqual(prev, new)
        self.assertTrue(7190 < left <= 7200, left)

        # overlap 0: the old secret is dropped at once; so is an expired one
        newest = self.rotate(hook.hook_id, '0')
        self.assertEqual(self.secret(hook.hook_id), newest)
        self.assertEqual(self.previous(hook.hook_id), (None, None))

    def test_the_next_request_is_made_as_the_hook_is_now(self):
        """The worker keeps what a hook's requests are made of from claim to
        claim: a rotation, and an admin's direct UPDATE of the hook and of
        its transport, make the very next request as the hook is now (the
        new secret alone after a rotation without overlap, the new path,
        the new header), not as it was at the last request; so does a
        change made with session_replication_role = replica."""
        hook = cluster.hook_on(rx.url(), '/rot-next')
        old = self.secret(hook.hook_id)
        req = self.send(hook, '/rot-next')
        harness.verify_standard(old, req.headers, req.body)
        new = self.rotate(hook.hook_id, '0')
        req = self.send(hook, '/rot-next')
        harness.verify_standard(new, req.headers, req.body)
        with self.assertRaises(AssertionError):
            harness.verify_standard(old, req.headers, req.body)
        # each alone: a change to either reaches the next request
        cluster.psql("UPDATE webhook.transport SET headers = '{\"X-Now\": \"yes\"}'"
                     " WHERE id = %d" % hook.transport_id)
        self.assertEqual(self.send(hook, '/rot-next').headers.get('X-Now'), 'yes')
        cluster.psql("UPDATE webhook.hook SET path = '/rot-next-2' WHERE id = %d" % hook.hook_id)
        req = self.send(hook, '/rot-next-2')
        self.assertEqual(req.headers.get('X-Now'), 'yes')
        harness.verify_standard(new, req.headers, req.body)
        # a change made as a subscription's apply makes it (replica role,
        # where only ALWAYS triggers fire): the same
        cluster.psql("SET session_replication_role = replica;"
                     " UPDATE webhook.hook SET path = '/rot-next-3' WHERE id = %d" % hook.hook_id)
        self.send(hook, '/rot-next-3')
        # an overlap restored by hand: the previous secret signs too (and
        # from now on the hook's row is asked for at every claim)
        cluster.psql("UPDATE webhook.hook SET previous_secret = %s,"
                     " previous_secret_until = now() + interval '1 hour' WHERE id = %d"
                     % (lit(old), hook.hook_id))
        req = self.send(hook, '/rot-next-3')
        harness.verify_standard(new, req.headers, req.body)
        harness.verify_standard(old, req.headers, req.body)

    def test_a_change_the_triggers_miss_reaches_requests_soon(self):
        """A change made with the triggers disabled (an admin's, or a
        data-only restore's --disable-triggers) tells the worker nothing:
        the rows it keeps are asked for again at every full look, at least
        once a second, so a backlog's requests are soon made as the hook is
        now (they were made as it was for as long as the worker held the
        hook's position: the whole backlog but its last few)."""
        hook = cluster.hook_on(rx.url(), '/rot-missed')
        cluster.psql('ALTER TABLE webhook.hook DISABLE TRIGGER hooks_changed')
        self.addCleanup(cluster.psql, 'ALTER TABLE webhook.hook ENABLE ALWAYS TRIGGER hooks_changed')
        # (the ALTER TABLE itself is a change the worker hears of: the
        # backlog's first requests keep its row again)
        cluster.psql("SELECT webhook.emit(%s, jsonb_build_object('n', g))"
                     "  FROM generate_series(1, 3000) g" % lit(hook.event_type))
        rx.wait_requests(100, path='/rot-missed')
        cluster.psql("UPDATE webhook.hook SET path = '/rot-missed-2' WHERE id = %d" % hook.hook_id)
        t0 = time.monotonic()
        rx.wait_requests(1, path='/rot-missed-2', timeout=10)
        took = time.monotonic() - t0
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries d WHERE d.hook_id = %d"
                         " AND d.state = 'succeeded'" % hook.hook_id, '3000')
        old, new = rx.count(path='/rot-missed'), rx.count(path='/rot-missed-2')
        self.assertEqual(old + new, 3000)
        # not the backlog's tail alone, once the position went (18 of 2,000
        # without the full looks' asking again; the python receiver takes
        # some 500 a second here, and a full look comes within a second)
        self.assertGreater(new, 300, '%d requests made as the hook was' % old)
        harness.note('a change the triggers missed: made as the hook is now after %.1f s'
                     ' (%d requests as it was, %d as it is)' % (took, old, new))

    def test_rotate_plain_hmac_and_default_overlap(self):
        hook = cluster.hook_on(rx.url(), '/rot-plain', signature='hmac-sha256', secret='plain')
        new = cluster.one('SELECT webhook.rotate_secret(%d)' % hook.hook_id)
        self.assertNotEqual(new, 'plain')
        self.assertEqual(self.secret(hook.hook_id), new)
        prev, left = self.previous(hook.hook_id)
        self.assertEqual(prev, 'plain')
        self.assertTrue(86390 < left <= 86400, left)    # 24 hours by default

    def test_update_hook_secret_clears_previous(self):
        hook = cluster.hook_on(rx.url(), '/rot-update')
        old = self.secret(hook.hook_id)
        self.rotate(hook.hook_id, '1 hour')
        # a change that keeps the secret keeps the rotation going
        cluster.psql('SELECT webhook.update_hook(%d, path => %s)' % (hook.hook_id, lit('/rot-upd2')))
        self.assertEqual(self.previous(hook.hook_id)[0], old)
        # a secret set explicitly replaces it outright
        cluster.psql("SELECT webhook.update_hook(%d, secret => '')" % hook.hook_id)
        self.assertEqual(self.previous(hook.hook_id), (None, None))

    def test_errors_change_nothing(self):
        hook = cluster.hook_on(rx.url(), '/rot-errors')
        self.rotate(hook.hook_id, '1 hour')
        none = cluster.hook_on(rx.url(), '/rot-errors-none', signature='none')
        before = self.row(hook.hook_id)
        before_none = self.row(none.hook_id)
        secret, previous = before[0][0], before[0][1]
        cases = [
            ('SELECT webhook.rotate_secret(%d, NULL)' % hook.hook_id,
             '22004', 'argument "overlap" must not be null'),
            ("SELECT webhook.rotate_secret(%d, '-1 second')" % hook.hook_id,
             '22023', 'overlap must not be negative'),
            ("SELECT webhook.rotate_secret(%d, '1 day -25 hours')" % hook.hook_id,
             '22023', 'overlap must not be negative'),
            ("SELECT webhook.rotate_secret(%d, '1000000 years')" % hook.hook_id,
             '22023', 'overlap is too long'),
            ("SELECT webhook.rotate_secret(NULL, '1 hour')",
             '22004', 'argument "hook_id" must not be null'),
            ('SELECT webhook.rotate_secret(%d)' % none.hook_id,
             '55000', 'hook %d has no secret to rotate' % none.hook_id),
            ('SELECT webhook.rotate_secret(999999999)',
             'P0002', 'hook 999999999 does not exist'),
        ]
        for sql, state, message in cases:
            with self.subTest(sql=sql):
                got = error_of(sql).split('|')
                self.assertEqual(got[:2], [state, message])
                if state != '22004' and state != 'P0002':
                    self.assertNotEqual(got[2], '', 'no hint')
                self.assertNotIn(secret, '|'.join(got))
                self.assertNotIn(previous, '|'.join(got))
        self.assertEqual(self.row(hook.hook_id), before)
        self.assertEqual(self.row(none.hook_id), before_none)

    def test_standard_overlap_both_secrets_verify(self):
        path = '/rot-standard'
        hook = cluster.hook_on(rx.url(), path)
        old = self.secret(hook.hook_id)
        new = self.rotate(hook.hook_id, '1 hour')
        req = self.send(hook, path)

        entries = req.headers['webhook-signature'].split(' ')
        self.assertEqual(len(entries), 2, entries)
        # newest first, each computed independently by openssl over the bytes received
        self.assertEqual(entries, [openssl_standard(new, req), openssl_standard(old, req)])
        # the reference library accepts the request with either secret alone
        for name, secret in (('old', old), ('new', new)):
            ok, text = node_verify(secret, req)
            self.assertTrue(ok, '%s secret: %s' % (name, text))
            harness.verify_standard(secret, req.headers, req.body)
        ok, text = node_verify(cluster.one('SELECT webhook_internal.generate_secret()'), req)
        self.assertFalse(ok, 'an unrelated secret verified')
        self.assertNotIn('X-Signature-Previous', req.headers)

    def test_hmac_overlap_previous_header(self):
        path = '/rot-sha256'
        hook = cluster.hook_on(rx.url(), path, signature='hmac-sha256', secret='old secret')
        new = self.rotate(hook.hook_id, '1 hour')
        req = self.send(hook, path)
        self.assertEqual(req.headers.get('X-Signature'), openssl_hmac_sha256(new, req.body))
        self.assertEqual(req.headers.get('X-Signature-Previous'),
                         openssl_hmac_sha256('old secret', req.body))
        self.assertEqual(len(req.headers.get_all('X-Signature')), 1)
        self.assertNotIn('webhook-signature', req.headers)

        # hmac-sha1, a header of its own: "<header>-Previous", same format
        path = '/rot-sha1'
        hook = cluster.hook_on(rx.url(), path, signature='hmac-sha1', secret='poynt-old',
                               signature_header='Poynt-Webhook-Signature')
        new = self.rotate(hook.hook_id, '1 hour')
        req = self.send(hook, path)
        harness.verify_hmac_sha1(new, req.headers.get('Poynt-Webhook-Signature'), req.body)
        harness.verify_hmac_sha1('poynt-old', req.headers.get('Poynt-Webhook-Signature-Previous'),
                                 req.body)

    def test_previous_secret_that_cannot_sign_is_left_out(self):
        # only a direct write to the catalog stores one: the request goes out
        # signed with the current secret alone, and is delivered
        path = '/rot-bad-previous'
        hook = cluster.hook_on(rx.url(), path)
        cluster.psql("UPDATE webhook.hook SET previous_secret = 'not a whsec secret',"
                     " previous_secret_until = now() + '1 hour' WHERE id = %d" % hook.hook_id)
        req = self.send(hook, path)
        secret = self.secret(hook.hook_id)
        self.assertEqual(req.headers['webhook-signature'], openssl_standard(secret, req))

    def test_after_overlap_only_new_secret(self):
        std = cluster.hook_on(rx.url(), '/rot-after-std')
        sha = cluster.hook_on(rx.url(), '/rot-after-sha', signature='hmac-sha256', secret='before')
        old = self.secret(std.hook_id)
        new_std = self.rotate(std.hook_id, '2 seconds')
        new_sha = self.rotate(sha.hook_id, '2 seconds')
        until = float(cluster.one('SELECT extract(epoch FROM max(previous_secret_until))'
                                  ' FROM webhook.hook WHERE id IN (%d, %d)'
                                  % (std.hook_id, sha.hook_id)))
        # what arrived before the overlap's end was signed (earlier) with both
        during = self.send(std, '/rot-after-std')
        if during.arrived_wall < until:
            self.assertEqual(len(during.headers['webhook-signature'].split(' ')), 2)
        during = self.send(sha, '/rot-after-sha')
        if during.arrived_wall < until:
            self.assertIn('X-Signature-Previous', during.headers)

        # the worker drops the previous secrets (it looks once a second)
        cluster.wait_for('SELECT count(*) FROM webhook.hook WHERE id IN (%d, %d)'
                         ' AND (previous_secret IS NOT NULL OR previous_secret_until IS NOT NULL)'
                         % (std.hook_id, sha.hook_id), '0', timeout=15)
        self.assertGreaterEqual(time.time(), until)

        after = self.send(std, '/rot-after-std')
        self.assertEqual(after.headers['webhook-signature'], openssl_standard(new_std, after))
        ok, text = node_verify(new_std, after)
        self.assertTrue(ok, text)
        ok, text = node_verify(old, after)
        self.assertFalse(ok, 'the old secret still verifies after the overlap')

        after_sha = self.send(sha, '/rot-after-sha')
        self.assertEqual(after_sha.headers.get('X-Signature'),
                         openssl_hmac_sha256(new_sha, after_sha.body))
        self.assertNotIn('X-Signature-Previous', after_sha.headers)


if __name__ == '__main__':
    unittest.main()
