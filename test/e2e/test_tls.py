"""TLS: verification with a CA file, failure without, tls_verify off, client certificates."""

import json
import os
import re
import shutil
import tempfile
import unittest

import harness

cluster = https = mtls = certs = None
certdir = None


def setUpModule():
    global cluster, https, mtls, certs, certdir
    certdir = tempfile.mkdtemp(prefix='webhook-e2e-certs-')
    os.chmod(certdir, 0o755)
    try:
        certs = harness.make_certs(certdir)
        cluster = harness.start_cluster()
        https = harness.Receiver(tls=(certs.server_cert, certs.server_key))
        mtls = harness.Receiver(tls=(certs.server_cert, certs.server_key),
                                client_ca=certs.ca_cert)
    except BaseException:
        harness.stop_all()
        shutil.rmtree(certdir, ignore_errors=True)
        raise


def tearDownModule():
    try:
        harness.stop_all()
    finally:
        shutil.rmtree(certdir, ignore_errors=True)


class TLSTest(unittest.TestCase):
    maxDiff = None

    def send(self, rx, path, transport, schedule='{1s}'):
        hook = cluster.hook_on(rx.url(), path, transport=transport, retry_schedule=schedule)
        uid = cluster.emit(hook.event_type, {'tls': True})
        return hook, uid

    def first_attempt(self, uid):
        cluster.wait_for(
            'SELECT count(*) FROM webhook.attempt a JOIN webhook.deliveries d '
            'ON d.id = a.delivery_id JOIN webhook.event e ON e.id = d.event_id '
            'WHERE e.uid = %s' % harness.lit(uid), lambda v: int(v) >= 1)
        return cluster.attempts(cluster.delivery(uid)['id'])[0]

    def test_register_checks_with_the_transports_tls_settings(self):
        """register() reuses the tenant's transport for the URL's origin: its
        HEAD check must trust that transport's CA, as the deliveries do."""
        tenant = harness.uniq('tls').lower().replace('_', '-')
        url = https.url('/tls-register')
        # without a transport that knows the private CA: not reachable
        answer = json.loads(cluster.one('SELECT webhook.register(%s, tenant => %s)'
                                        % (harness.lit(url), harness.lit(tenant))))
        self.assertEqual(answer['status'], 404, answer)
        cluster.create_transport(base_url=https.base_url, tenant=tenant,
                                 ca_file=certs.ca_cert)
        answer = json.loads(cluster.one('SELECT webhook.register(%s, tenant => %s)'
                                        % (harness.lit(url), harness.lit(tenant))))
        self.assertEqual(answer['status'], 200, answer)
        self.assertEqual(https.count(path='/tls-register', method='HEAD'), 1)

    def test_ca_file(self):
        hook, uid = self.send(https, '/tls-ca', {'ca_file': certs.ca_cert})
        req = https.wait_requests(1, path='/tls-ca')[0]
        cluster.wait_state(uid, 'succeeded')
        self.assertEqual(req.headers['webhook-id'], uid)
        att = cluster.attempts(cluster.delivery(uid)['id'])
        self.assertEqual([a['status_code'] for a in att], [200])
        self.assertEqual(att[0]['url'], https.url('/tls-ca'))

    def test_default_verification_fails_without_ca(self):
        hook, uid = self.send(https, '/tls-noca', {}, schedule='{1h}')
        att = self.first_attempt(uid)
        self.assertIsNone(att['status_code'])
        self.assertRegex(att['error'] or '', re.compile('certificate', re.I))
        harness.note('TLS without ca_file: %r' % att['error'])
        d = cluster.delivery(uid)
        self.assertNotEqual(d['state'], 'succeeded')
        self.assertEqual(d['state'], 'failed')
        self.assertEqual(https.count(path='/tls-noca'), 0)

    def test_tls_verify_off(self):
        hook, uid = self.send(https, '/tls-noverify', {'tls_verify': False})
        https.wait_requests(1, path='/tls-noverify')
        cluster.wait_state(uid, 'succeeded')

    def test_client_certificate(self):
        hook, uid = self.send(mtls, '/mtls', {
            'ca_file': certs.ca_cert, 'client_cert_file': certs.client_cert,
            'client_key_file': certs.client_key,
            'client_key_password': certs.client_key_password})
        req = mtls.wait_requests(1, path='/mtls')[0]
        cluster.wait_state(uid, 'succeeded')
        cn = dict(x[0] for x in req.peer_cert['subject'])['commonName']
        self.assertEqual(cn, 'webhook-e2e-client')
        self.assertNotIn(certs.client_key_password, cluster.log())

    def test_client_certificate_missing(self):
        hook, uid = self.send(mtls, '/mtls-none', {'ca_file': certs.ca_cert}, schedule='{1h}')
        att = self.first_attempt(uid)
        self.assertIsNone(att['status_code'])
        self.assertTrue(att['error'], att)
        harness.note('mutual TLS without a client certificate: %r' % att['error'])
        self.assertEqual(cluster.delivery(uid)['state'], 'failed')
        self.assertEqual(mtls.count(path='/mtls-none'), 0)

    def test_client_key_wrong_password(self):
        # a receiver of its own: no kept-alive connection of another test to reuse
        rx = harness.Receiver(tls=(certs.server_cert, certs.server_key), client_ca=certs.ca_cert)
        try:
            hook, uid = self.send(rx, '/mtls-badpw', {
                'ca_file': certs.ca_cert, 'client_cert_file': certs.client_cert,
                'client_key_file': certs.client_key, 'client_key_password': 'wrong'},
                schedule='{1h}')
            att = self.first_attempt(uid)
            self.assertIsNone(att['status_code'])
            self.assertTrue(att['error'], att)
            harness.note('client key with a wrong password: %r' % att['error'])
            self.assertEqual(cluster.delivery(uid)['state'], 'failed')
            self.assertEqual(rx.count(path='/mtls-badpw'), 0)
        finally:
            rx.close()

    def test_no_connection_sharing_across_transports(self):
        """A transport never rides on a connection another transport's client
        certificate opened: its own (here: unusable) TLS settings decide."""
        rx = harness.Receiver(tls=(certs.server_cert, certs.server_key), client_ca=certs.ca_cert)
        try:
            good, uid1 = self.send(rx, '/share-good', {
                'ca_file': certs.ca_cert, 'client_cert_file': certs.client_cert,
                'client_key_file': certs.client_key,
                'client_key_password': certs.client_key_password})
            rx.wait_requests(1, path='/share-good')
            cluster.wait_state(uid1, 'succeeded')
            bad, uid2 = self.send(rx, '/share-bad', {
                'ca_file': certs.ca_cert, 'client_cert_file': certs.client_cert,
                'client_key_file': certs.client_key, 'client_key_password': 'wrong'},
                schedule='{1h}')
            att = self.first_attempt(uid2)
            reqs = rx.requests()
            self.assertEqual(rx.count(path='/share-bad'), 0,
                             'sent over the other transport\'s connection %r (connections %r)'
                             % (att, [(r.path, r.conn_id) for r in reqs]))
            self.assertIsNone(att['status_code'])
            self.assertEqual(cluster.delivery(uid2)['state'], 'failed')
        finally:
            rx.close()

    def test_handles_keep_no_tls_setting_for_another_transport(self):
        """A curl handle keeps the TLS settings it was set up with from one
        request to the next (src/http.c): a request of another transport
        with other settings gets none of them (a client certificate, a CA
        file, verification off), however the requests follow each other."""
        rx = harness.Receiver(tls=(certs.server_cert, certs.server_key), client_ca=certs.ca_cert)
        try:
            with_cert = {'ca_file': certs.ca_cert, 'client_cert_file': certs.client_cert,
                         'client_key_file': certs.client_key,
                         'client_key_password': certs.client_key_password}
            for round_no in range(2):
                # the transport with the certificate first: its handles idle
                hook, uid = self.send(rx, '/keep-cert-%d' % round_no, with_cert)
                rx.wait_requests(1, path='/keep-cert-%d' % round_no)
                cluster.wait_state(uid, 'succeeded')
                # then the same receiver with the CA file alone: no certificate
                _, no_cert = self.send(rx, '/keep-nocert-%d' % round_no,
                                       {'ca_file': certs.ca_cert}, schedule='{1h}')
                # and the plain TLS receiver with no CA file: not verified
                _, no_ca = self.send(https, '/keep-noca-%d' % round_no, {}, schedule='{1h}')
                # and with verification off: no CA file needed
                _, off = self.send(https, '/keep-off-%d' % round_no, {'tls_verify': False})
                https.wait_requests(1, path='/keep-off-%d' % round_no)
                cluster.wait_state(off, 'succeeded')
                for uid in (no_cert, no_ca):
                    att = self.first_attempt(uid)
                    self.assertIsNone(att['status_code'], att)
                    self.assertEqual(cluster.delivery(uid)['state'], 'failed')
                self.assertEqual(rx.count(path='/keep-nocert-%d' % round_no), 0)
                self.assertEqual(https.count(path='/keep-noca-%d' % round_no), 0)
        finally:
            rx.close()


if __name__ == '__main__':
    unittest.main()
