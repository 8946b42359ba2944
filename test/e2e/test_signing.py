"""Signing: every scheme verified over the exact bytes received, and retries re-signed."""

import base64
import hashlib
import hmac
import json
import re
import time
import unittest

import harness
from harness import R, lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(globals())


SIG_HEADERS = ('webhook-signature', 'X-Signature', 'Poynt-Webhook-Signature')


class SigningTest(unittest.TestCase):
    maxDiff = None

    def send(self, path, **hook_kw):
        hook = cluster.hook_on(rx.url(), path, **hook_kw)
        uid = cluster.emit(hook.event_type, {'amount': 12.5, 'note': 'caf\u00e9 \u2713',
                                             'nested': {'k': [1, 'two']}})
        req = rx.wait_requests(1, path=path)[0]
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(req.headers.get('webhook-id'), uid)
        return hook, uid, req

    def test_verifier_vector(self):
        self.assertTrue(harness.selftest_verifiers())

    def test_sql_sign_matches_vector(self):
        v = harness.STANDARD_VECTOR
        got = cluster.one('SELECT webhook.sign(%s, %s, %s, %d, %s)' % (
            lit('standard'), lit(v['secret']), lit(v['id']), v['timestamp'],
            lit(v['body'].decode())))
        self.assertEqual(got, v['signature'])

    def test_sql_sign_each_call_under_its_own_secret(self):
        # the HMAC keys kept from call to call (src/signing.c): one session
        # signs under secrets and schemes that follow each other, the same
        # secret again, one secret's text under another scheme, and each
        # value is the one Python computes from that call's own secret
        a = harness.STANDARD_VECTOR['secret']
        b = 'whsec_' + base64.b64encode(bytes(range(1, 33))).decode()
        calls = [('standard', a), ('standard', a), ('standard', b), ('standard', a),
                 ('hmac-sha256', a), ('standard', a), ('hmac-sha256', 'k1'),
                 ('hmac-sha256', 'k2'), ('hmac-sha1', 'k1'), ('hmac-sha256', 'k1')]
        body = '{"n": 1}'
        got = cluster.one('SELECT array_to_json(array_agg(webhook.sign(s, k, %s, 1614265330, %s)'
                          ' ORDER BY i)) FROM (VALUES %s) v(i, s, k)' % (
                              lit('msg_1'), lit(body),
                              ', '.join('(%d, %s, %s)' % (i, lit(s), lit(k))
                                        for i, (s, k) in enumerate(calls))))
        want = []
        for scheme, key in calls:
            if scheme == 'standard':
                want.append(harness.standard_signature(key, 'msg_1', 1614265330, body.encode()))
            elif scheme == 'hmac-sha256':
                want.append(hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest())
            else:
                want.append(base64.b64encode(
                    hmac.new(key.encode(), body.encode(), hashlib.sha1).digest()).decode())
        self.assertEqual(json.loads(got), want)
        # a secret that encodes no key is refused after a good one was used
        with self.assertRaisesRegex(Exception, 'invalid secret'):
            cluster.one("SELECT count(webhook.sign('standard', k, 'm', 1, 'x'))"
                        " FROM (VALUES (%s), ('whsec_short')) v(k)" % lit(a))

    def test_standard_generated_secret(self):
        hook, uid, req = self.send('/sig-standard')   # signature 'standard' is the default
        secret = cluster.one('SELECT webhook.hook_secret(%d)' % hook.hook_id)
        self.assertRegex(secret, r'^whsec_[A-Za-z0-9+/]+={0,2}$')
        self.assertEqual(len(harness.standard_key(secret)), 24)
        # the secret is never shown back by the catalog views / listings
        self.assertNotIn(secret, str(cluster.psql(
            'SELECT * FROM webhook.hooks() AS h')))
        ts = harness.verify_standard(secret, req.headers, req.body)
        self.assertLessEqual(abs(ts - time.time()), 60)
        self.assertRegex(req.headers['webhook-signature'], r'^v1,[A-Za-z0-9+/]{43}=$')
        self.assertRegex(req.headers['webhook-timestamp'], r'^[0-9]{10}$')
        self.assertNotIn('X-Signature', req.headers)
        self.assertNotIn(secret, cluster.log())

    def test_standard_given_secret(self):
        secret = harness.STANDARD_VECTOR['secret']
        hook, uid, req = self.send('/sig-standard-given', secret=secret)
        harness.verify_standard(secret, req.headers, req.body)

    def test_hmac_sha256_default_header(self):
        secret = 'plain text secret \u00e9'
        hook, uid, req = self.send('/sig-sha256', signature='hmac-sha256', secret=secret)
        value = req.headers.get('X-Signature')
        self.assertRegex(value or '', r'^[0-9a-f]{64}$')
        harness.verify_hmac_sha256(secret, value, req.body)
        self.assertNotIn('webhook-signature', req.headers)
        self.assertNotIn('Poynt-Webhook-Signature', req.headers)

    def test_hmac_sha1_poynt_header(self):
        secret = 'poynt-secret'
        hook, uid, req = self.send('/sig-sha1', signature='hmac-sha1', secret=secret,
                                   signature_header='Poynt-Webhook-Signature')
        value = req.headers.get('Poynt-Webhook-Signature')
        self.assertRegex(value or '', r'^[A-Za-z0-9+/]{27}=$')
        harness.verify_hmac_sha1(secret, value, req.body)
        self.assertNotIn('webhook-signature', req.headers)
        self.assertNotIn('X-Signature', req.headers)

    def test_none(self):
        hook, uid, req = self.send('/sig-none', signature='none')
        for h in SIG_HEADERS:
            self.assertNotIn(h, req.headers)
        self.assertEqual(req.headers.get('webhook-id'), uid)

    def test_retries_same_id_signed_afresh(self):
        path = '/sig-retry'
        rx.script(path, R(500), R(500), R(200))
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{1s,1s}')
        secret = cluster.one('SELECT webhook.hook_secret(%d)' % hook.hook_id)
        uid = cluster.emit(hook.event_type, {'retry': True})
        reqs = rx.wait_requests(3, path=path)
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual([r.headers.get('webhook-id') for r in reqs], [uid] * 3)
        stamps = [harness.verify_standard(secret, r.headers, r.body) for r in reqs]
        self.assertEqual(len({r.body for r in reqs}), 1, 'the body changed between attempts')
        self.assertLessEqual(stamps[0], stamps[1])
        self.assertLessEqual(stamps[1], stamps[2])
        # attempts 1 and 3 are >= 1.6 s apart: different seconds, different signatures
        self.assertGreater(stamps[2], stamps[0])
        self.assertNotEqual(reqs[0].headers['webhook-signature'],
                            reqs[2].headers['webhook-signature'])
        for r in reqs:
            # the time of signing, in whole seconds: current, within what a
            # loaded machine takes from signing to arrival
            self.assertLessEqual(abs(int(r.headers['webhook-timestamp']) - r.arrived_wall), 5)

    def test_retries_hmac_sha256_same_id(self):
        path = '/sig-retry-sha256'
        rx.script(path, R(503), R(200))
        secret = 'k'
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{1s}',
                               signature='hmac-sha256', secret=secret)
        uid = cluster.emit(hook.event_type, {'retry': 1})
        reqs = rx.wait_requests(2, path=path)
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual([r.headers.get('webhook-id') for r in reqs], [uid] * 2)
        for r in reqs:
            harness.verify_hmac_sha256(secret, r.headers.get('X-Signature'), r.body)


if __name__ == '__main__':
    unittest.main()
