"""Name lookups: a receiver's host name is looked up without the worker ever
waiting for it.  A tenant whose name server never answers holds its own
requests (each fails at its connect_timeout), never the worker: libcurl
would end such a request only once its lookup thread returned, every
tenant's delivery stopped meanwhile.  Names that resolve are reached as
before, under the same address policy.

The worker here runs with a name server of the test's own: each scenario
runs in a child process (this file, run as a program) that enters user,
mount, network and PID namespaces of its own (no privilege needed where
the kernel allows unprivileged user namespaces; the test is skipped where
it does not), where /etc/resolv.conf, /etc/hosts and /etc/nsswitch.conf
are the test's (no name service cache nor systemd-resolved answers in
their stead) and 127.0.0.1:53 is a name server that answers NXDOMAIN, or
nothing at all for the names that begin with "never".  Killed, the child
takes everything it started with it (its PID namespace ends)."""

import ctypes
import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import sys
import threading
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import lit  # noqa: E402

# how long the resolver waits for the silent name server: the worker
# stalled this long at each request that timed out in its lookup
RESOLVER_TIMEOUT_S = 10
RESOLV_CONF = 'nameserver 127.0.0.1\noptions timeout:%d attempts:1\n' % RESOLVER_TIMEOUT_S
HOSTS = ('127.0.0.1 localhost\n'
         '::1 localhost\n'
         '127.0.0.1 shop.test\n'
         '169.254.169.254 metadata.test\n')
NSSWITCH = 'hosts: files dns\n'
# the silent names, as the worker asks for them (a search domain may follow
# once they time out)
SILENT_NAME = re.compile(r'^never-\d+\.test$')

# another tenant's event must arrive within this (it took the resolver's
# timeout, 10 s, with the lookups in libcurl)
PROMPT = 5.0


class NameServer:
    """A name server on 127.0.0.1:53 (UDP) that never answers for the names
    that begin with "never", and answers NXDOMAIN for any other; it notes
    each name it is asked for."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 53))
        self.sock.settimeout(0.2)
        self.asked = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @staticmethod
    def _question(packet):
        """The name asked and where the question ends."""
        labels, i = [], 12
        while i < len(packet) and packet[i] != 0:
            n = packet[i]
            labels.append(packet[i + 1:i + 1 + n].decode('ascii', 'replace'))
            i += 1 + n
        return '.'.join(labels).lower(), i + 5      # the root label, type, class

    def _serve(self):
        while not self._stop.is_set():
            try:
                packet, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            if len(packet) < 12:
                continue
            name, end = self._question(packet)
            self.asked.append(name)
            if name.startswith('never'):
                continue
            # the query's id, a response with recursion available, NXDOMAIN,
            # the question again and nothing else
            header = packet[:2] + struct.pack('!HHHHH', 0x8183, 1, 0, 0, 0)
            self.sock.sendto(header + packet[12:end], peer)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


LIBC = ctypes.CDLL(None, use_errno=True)


def libc_check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (what, os.strerror(err)))


def enter_namespaces(etc_files):
    """Make this process (single-threaded yet) the first of user, mount and
    network namespaces of its own, and its next child the first of a PID
    namespace: the user namespace maps our own user and group only
    (PostgreSQL refuses to run as root), the files of /etc named in
    etc_files are bind-mounted over with its texts, the sockets of name
    service caches are out of reach, loopback is up.  Raises OSError when
    the kernel refuses."""
    uid, gid = os.getuid(), os.getgid()
    libc_check(LIBC.unshare(0x10000000), 'unshare(CLONE_NEWUSER)')
    with open('/proc/self/setgroups', 'w') as f:
        f.write('deny')
    with open('/proc/self/uid_map', 'w') as f:
        f.write('%d %d 1' % (uid, uid))
    with open('/proc/self/gid_map', 'w') as f:
        f.write('%d %d 1' % (gid, gid))
    libc_check(LIBC.unshare(0x00020000 | 0x40000000 | 0x20000000),
               'unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID)')
    # nothing mounted here shows outside (MS_REC | MS_PRIVATE)
    libc_check(LIBC.mount(b'none', b'/', None, 0x4000 | (1 << 18), None),
               'mount --make-rprivate /')
    for cache in ('/run/nscd', '/run/systemd/resolve'):
        if os.path.isdir(cache):
            libc_check(LIBC.mount(b'none', cache.encode(), b'tmpfs', 0, None),
                       'mount -t tmpfs none %s' % cache)
    files = tempfile.mkdtemp(prefix='webhook-e2e-ns-')
    try:
        for name, text in etc_files.items():
            path = os.path.join(files, name)
            with open(path, 'w') as f:
                f.write(text)
            os.chmod(path, 0o644)
            # a file of /etc may be a link into a directory just hidden
            # (systemd-resolved's resolv.conf): its target is made there
            target = os.path.realpath('/etc/' + name)
            if not os.path.exists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                open(target, 'w').close()
            libc_check(LIBC.mount(path.encode(), target.encode(), None, 4096, None),
                       'mount --bind %s %s' % (path, target))
    finally:
        shutil.rmtree(files)     # (the mounts keep the files)
    # SIOCSIFFLAGS: lo up (IFF_UP | IFF_LOOPBACK | IFF_RUNNING)
    with socket.socket() as s:
        fcntl.ioctl(s, 0x8914, struct.pack('16sH14s', b'lo', 0x1 | 0x8 | 0x40, b''))


def scenarios():
    """The tests that run inside the namespaces (in the child process)."""

    class InNamespaces(unittest.TestCase):

        @classmethod
        def setUpClass(cls):
            cls.dns = NameServer()
            cls.cluster = harness.start_cluster()
            cls.rx = harness.Receiver()

        @classmethod
        def tearDownClass(cls):
            harness.stop_all()
            cls.dns.close()

        def hook_on(self, host, path, tenant):
            """A hook of tenant on the receiver by host: its id and event type."""
            hook = self.cluster.hook_on('http://%s:%d' % (host, self.rx.port), path,
                                        transport={'tenant': tenant})
            return hook.hook_id, hook.event_type

        def attempts(self, hook_id):
            return self.cluster.psql(
                "SELECT status_code, error, duration_ms FROM webhook.attempt"
                " WHERE hook_id = %d ORDER BY started_at" % hook_id)

        def test_a_name_server_that_never_answers_holds_only_its_tenant(self):
            cluster, rx = self.cluster, self.rx
            # 30 names of one tenant, none answered (more than glibc's
            # getaddrinfo_a() has threads: it would queue the others' names)
            silent_type = harness.uniq('EV')
            silent = []
            for n in range(30):
                t = cluster.create_transport(
                    base_url='http://never-%d.test:%d' % (n, rx.port), tenant='silent-dns',
                    connect_timeout='300 ms')
                silent.append(cluster.create_hook(t, [silent_type], path='/never'))
            victim, victim_type = self.hook_on('shop.test', '/victim', 'victim')
            cluster.emit(silent_type, {'silent': True}, tenant='silent-dns')
            asked = harness.wait_until(
                lambda: any(SILENT_NAME.match(name) for name in self.dns.asked), 30,
                'the worker to look a never-N.test name up')
            # the lookups hang for RESOLVER_TIMEOUT_S; their requests time out
            # after 0.3 s; another tenant's events, one after another, through
            # 3 s of that, the first one's name looked up then
            started = time.monotonic()
            slowest = 0.0
            for n in range(1, 200):
                t0 = time.monotonic()
                cluster.emit(victim_type, {'n': n}, tenant='victim')
                rx.wait_requests(n, path='/victim', timeout=RESOLVER_TIMEOUT_S * 3)
                slowest = max(slowest, time.monotonic() - t0)
                if time.monotonic() - started > 3:
                    break
            self.assertTrue(asked)
            print('note: another tenant beside 30 names never answered: its slowest'
                  ' event of %d in %.2f s' % (n, slowest))
            self.assertLess(slowest, PROMPT,
                            'another tenant waited %.1f s while names were looked up'
                            % slowest)
            # the silent tenant's requests failed at their connect_timeout,
            # every one, with nothing sent: those whose names were looked up
            # (no more than LOOKUPS_PER_TENANT, 2, at once) timed out, the
            # others, whose names waited for room, were ended (no step of
            # their schedules)
            sql = ("SELECT count(*) FROM webhook.attempt WHERE hook_id IN (%s)"
                   % ','.join(map(str, silent)))
            cluster.wait_for(sql, lambda v: int(v) >= 30, 30)
            errors = []
            for hook_id in silent:
                for status, error, duration_ms in self.attempts(hook_id):
                    self.assertEqual(status, None)
                    self.assertLess(float(duration_ms), RESOLVER_TIMEOUT_S * 1000 / 2)
                    errors.append(re.sub(r'\d+', 'N', error))
            self.assertEqual(
                set(errors),
                {'Resolving timed out after N milliseconds',
                 'ended after N ms waiting for its name to be looked up: tenant "silent-dns"'
                 ' had all the name lookups it may have under way'}, errors)
            self.assertEqual(rx.count(path='/never'), 0)
            self.assertLessEqual(
                len({name for name in self.dns.asked if SILENT_NAME.match(name)}), 2)

        def test_names_are_looked_up_under_the_address_policy(self):
            cluster, rx = self.cluster, self.rx
            shop, shop_type = self.hook_on('shop.test', '/shop', 'names')
            # the same name in capitals: the same addresses
            upper, upper_type = self.hook_on('Shop.TEST', '/upper', 'names')
            metadata, metadata_type = self.hook_on('metadata.test', '/metadata', 'names')
            missing, missing_type = self.hook_on('missing.test', '/missing', 'names')
            for event_type in (shop_type, upper_type, metadata_type, missing_type):
                cluster.emit(event_type, {'name': event_type}, tenant='names')
            req = rx.wait_requests(1, path='/shop')[0]
            self.assertEqual(req.headers['Host'], 'shop.test:%d' % rx.port)
            self.assertEqual(req.json()['data'], {'name': shop_type})
            req = rx.wait_requests(1, path='/upper')[0]
            self.assertEqual(req.json()['data'], {'name': upper_type})
            harness.wait_until(lambda: self.attempts(metadata) and self.attempts(missing), 30,
                               'the attempts of metadata.test and missing.test')
            status, error, _ = self.attempts(metadata)[0]
            self.assertEqual(status, None)
            self.assertIn('address 169.254.169.254 is in webhook.deny_networks', error)
            status, error, _ = self.attempts(missing)[0]
            self.assertEqual(status, None)
            self.assertEqual(error, 'Could not resolve host: missing.test')
            self.assertIn('missing.test', self.dns.asked)
            self.assertEqual(rx.count(path='/metadata') + rx.count(path='/missing'), 0)

    return InNamespaces


class LookupTest(unittest.TestCase):
    """Each test runs its scenario in a child process in namespaces of its own."""

    def in_namespaces(self):
        name = self.id().rsplit('.', 1)[1]
        p = subprocess.run([sys.executable, os.path.abspath(__file__), name],
                           capture_output=True, text=True, timeout=240)
        if p.returncode == 77:
            self.skipTest(p.stdout.strip().splitlines()[-1])
        for text in re.findall(r'note: (.*)', p.stdout):
            harness.note(text)
        self.assertEqual(p.returncode, 0, 'the scenario failed:\n%s%s' % (p.stdout, p.stderr))

    def test_a_name_server_that_never_answers_holds_only_its_tenant(self):
        self.in_namespaces()

    def test_names_are_looked_up_under_the_address_policy(self):
        self.in_namespaces()


def main(name):
    try:
        enter_namespaces({'resolv.conf': RESOLV_CONF, 'hosts': HOSTS,
                          'nsswitch.conf': NSSWITCH})
    except OSError as e:
        print('no namespaces of our own here: %s' % e)
        return 77
    child = os.fork()
    if child != 0:
        return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    # the first of the PID namespace: killed with this process (its
    # parent), it takes everything in the namespace with it
    code = 1
    try:
        libc_check(LIBC.prctl(1, signal.SIGKILL), 'prctl(PR_SET_PDEATHSIG)')
        # a /proc of the namespace's processes (the sanitized run reads the
        # server's maps by the pid it wrote)
        libc_check(LIBC.mount(b'proc', b'/proc', b'proc', 0, None), 'mount -t proc proc /proc')
        code = run_scenario(name)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_scenario(name):
    suite = unittest.TestSuite([scenarios()(name)])
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    harness.stop_all()
    if harness.LOG_LEAKS:
        print('secrets in the server log:\n' + '\n'.join(harness.LOG_LEAKS[:20]))
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
