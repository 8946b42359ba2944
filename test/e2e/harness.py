"""End-to-end test harness for the webhook extension (Python standard library only).

Pieces:

* ``Cluster``   a throwaway PostgreSQL 15 cluster (own data dir, free port on
                127.0.0.1, socket dir in its temp dir) with the webhook library
                preloaded, database ``webhook_test`` and the extension created.
* ``Receiver``  a threaded HTTP/1.1 (optionally HTTPS, optionally mutual TLS)
                server on 127.0.0.1 that records every request and answers with
                scripted responses per path.
* ``make_certs`` a CA, a server certificate for 127.0.0.1 and a client
                certificate with an encrypted key, made with the openssl CLI.
* verifiers     Standard Webhooks, hmac-sha256 (hex) and hmac-sha1 (base64),
                written independently of the extension; and ``node_verifier``,
                the Standard Webhooks reference library (npm standardwebhooks,
                test/verifier) run under node.
* sanitizers    with WEBHOOK_E2E_SANITIZER_DIR set (test/run-sanitized), every
                server runs with AddressSanitizer and UBSan preloaded and leaves
                their reports in that directory (sanitizer_env).

Run ``python3 harness.py`` for the self-tests of the pieces that need no
extension (verifier vector, receiver, certificates, TLS).
"""

import atexit
import base64
import collections
import hashlib
import hmac
import http.server
import itertools
import json
import re
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import weakref

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import log_secrets  # noqa: E402  (test/log_secrets.py)

DEFAULT_TIMEOUT = 30.0
DB_NAME = 'webhook_test'
KEEP = os.environ.get('WEBHOOK_E2E_KEEP') == '1'   # keep temp dirs for debugging
# With the extension built by `make SANITIZE=1` (test/run-sanitized): the
# directory the servers' AddressSanitizer and UBSan reports are written to,
# and libraries to preload after the sanitizer runtimes (test/asan-preload.c).
SANITIZER_DIR = os.environ.get('WEBHOOK_E2E_SANITIZER_DIR') or None
SANITIZER_PRELOAD = os.environ.get('WEBHOOK_E2E_SANITIZER_PRELOAD', '').split()
# PostgreSQL programs to use instead of pg_config --bindir's (a private copy
# of the installation with the sanitized build in it)
PG_BINDIR = os.environ.get('WEBHOOK_E2E_PG_BINDIR') or None

_live = weakref.WeakSet()   # clusters and receivers not yet stopped
# the extension's version, as webhook.control installs it
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                       'webhook.control')) as _f:
    VERSION = re.search(r"default_version = '([^']+)'", _f.read()).group(1)

# what test/log_secrets.py found in the server logs of closed clusters, and
# how many logs it read: test/e2e/run.py reports them as one test
LOG_LEAKS = []
LOGS_SCANNED = [0]


def stop_all():
    """Stop every Cluster and Receiver still running (called by run.py and at exit)."""
    for obj in list(_live):
        try:
            obj.close()
        except Exception as e:  # pragma: no cover - best effort
            print('harness: could not stop %r: %s' % (obj, e))


atexit.register(stop_all)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_until(cond, timeout=DEFAULT_TIMEOUT, what='the condition', interval=0.1,
               detail=None):
    """Poll cond() until it returns something true, and return that; past the
    deadline raise AssertionError naming what (and detail(), if given).

    The one way the end-to-end tests wait for a state: a bound that is not the
    behaviour under test is a deadline to meet, never a time to sleep."""
    assert timeout <= 120
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %ss waiting for %s%s' % (
                timeout, what, ('\n' + detail()) if detail else ''))
        time.sleep(interval)


_uniq = itertools.count(1)


def uniq(prefix='T'):
    """A name unique within this test run (upper case, usable as an event type)."""
    return '%s_%d_%d' % (prefix.upper(), os.getpid(), next(_uniq))


# --------------------------------------------------------------------------
# SQL literals
# --------------------------------------------------------------------------

def lit(v):
    """A SQL literal for a Python value (standard_conforming_strings = on)."""
    if v is None:
        return 'NULL'
    if v is True:
        return 'true'
    if v is False:
        return 'false'
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (dict,)):
        return lit(json.dumps(v)) + '::jsonb'
    if isinstance(v, (list, tuple)):
        # a text[] literal; elements quoted
        inner = ','.join('"%s"' % str(x).replace('\\', '\\\\').replace('"', '\\"') for x in v)
        return lit('{' + inner + '}')
    s = str(v)
    if '\x00' in s:
        raise ValueError('NUL in SQL literal')
    return "'" + s.replace("'", "''") + "'"


def named_args(**kw):
    return ', '.join('%s => %s' % (k, lit(v)) for k, v in kw.items())


# --------------------------------------------------------------------------
# Sanitizers
# --------------------------------------------------------------------------

def _gcc_runtime(name):
    """The path of one of gcc's runtime libraries (libasan.so), or None."""
    try:
        path = subprocess.run(['gcc', '-print-file-name=' + name], capture_output=True,
                              text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return os.path.realpath(path) if os.path.isabs(path) and os.path.exists(path) else None


def sanitizer_env(report_dir):
    """Environment for a server whose webhook library was built with `make SANITIZE=1`.

    postgres itself is not instrumented, so AddressSanitizer's runtime must be
    the first library loaded: LD_PRELOAD (then UBSan's, then
    WEBHOOK_E2E_SANITIZER_PRELOAD: test/asan-preload.c, without which this
    postgres hangs at start).  AddressSanitizer writes its reports to files
    <report_dir>/sanitizer.<pid>.  UBSan's go to the server log: libubsan sets
    its report file through a function libasan interposes, so its own stays
    stderr; Cluster.close() copies them out (sanitizer_log_reports).  Any file
    in report_dir is a failure (test/run-sanitized).  Leak detection is off:
    a server's processes exit with their memory contexts still allocated.
    """
    asan = _gcc_runtime('libasan.so')
    if asan is None:
        raise RuntimeError('WEBHOOK_E2E_SANITIZER_DIR is set but gcc -print-file-name='
                           'libasan.so finds no AddressSanitizer runtime')
    preload = [asan]
    ubsan = _gcc_runtime('libubsan.so')
    if ubsan:
        preload.append(ubsan)
    log_path = 'log_path=' + os.path.join(report_dir, 'sanitizer')
    return {
        'LD_PRELOAD': ' '.join(preload + SANITIZER_PRELOAD),
        'ASAN_OPTIONS': ':'.join([log_path, 'detect_leaks=0', 'abort_on_error=0',
                                  'halt_on_error=1', 'print_stacktrace=1']),
        'UBSAN_OPTIONS': ':'.join([log_path, 'print_stacktrace=1', 'halt_on_error=1']),
    }


# what a sanitizer writes to stderr, as found in a server log
_SANITIZER_MARKS = ('runtime error:', 'Sanitizer', '==ERROR:')


def sanitizer_log_reports(log_text):
    """The sanitizer reports in a server log: each marked line and the stack
    frames and summary that follow it; '' when there are none."""
    lines = log_text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        if any(m in lines[i] for m in _SANITIZER_MARKS):
            out.append(lines[i])
            i += 1
            while i < len(lines) and len(out) < 2000 and (
                    lines[i][:1] in (' ', '\t', '#', '') or lines[i].startswith('SUMMARY')):
                out.append(lines[i])
                i += 1
        else:
            i += 1
    return '\n'.join(out)


# --------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------

class PsqlError(Exception):
    pass


Hook = collections.namedtuple('Hook', 'transport_id hook_id event_type')

NOTES = []   # measurements tests want reported; run.py prints them at the end


def note(text):
    NOTES.append(text)


FIELD_SEP = '\x1f'
RECORD_SEP = '\x1e'
NULL_MARK = '\x1dNULL\x1d'


class Cluster:
    """A throwaway PostgreSQL cluster with the webhook extension.

    c = Cluster(extra_conf=['webhook.batch_size = 50']); c.start()
    c.psql("SELECT 1")  -> [['1']]
    c.close()
    """

    def __init__(self, extra_conf=(), dbname=DB_NAME, create_extension=True):
        if os.geteuid() == 0:
            raise RuntimeError(
                'the e2e harness must not run as root (initdb refuses it): run it as '
                'the postgres user, e.g. runuser -u postgres -- python3 test/e2e/run.py')
        self.bindir = self._bindir()
        self.extra_conf = list(extra_conf)
        self.dbname = dbname
        self.create_extension = create_extension
        self.dir = tempfile.mkdtemp(prefix='webhook-e2e-pg-')
        os.chmod(self.dir, 0o755)
        self.datadir = os.path.join(self.dir, 'data')
        self.sockdir = os.path.join(self.dir, 'sock')
        os.mkdir(self.sockdir)
        self.logfile = os.path.join(self.dir, 'server.log')
        self.port = None
        self.running = False
        self.initialized = False
        self.started = False       # once started, it has a log to scan
        _live.add(self)

    # -- binaries ---------------------------------------------------------
    @staticmethod
    def _bindir():
        if PG_BINDIR:
            if not os.path.exists(os.path.join(PG_BINDIR, 'initdb')):
                raise RuntimeError('WEBHOOK_E2E_PG_BINDIR=%s has no initdb' % PG_BINDIR)
            return PG_BINDIR
        try:
            out = subprocess.run(['pg_config', '--bindir'], capture_output=True,
                                 text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out = ''
        for d in (out, '/usr/lib/postgresql/15/bin'):
            if d and os.path.exists(os.path.join(d, 'initdb')):
                return d
        raise RuntimeError('cannot find PostgreSQL binaries (pg_config --bindir)')

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    @staticmethod
    def _env(server=False):
        env = {k: v for k, v in os.environ.items() if not k.startswith('PG')}
        env['LC_ALL'] = 'C'
        env['LANG'] = 'C'
        if server and SANITIZER_DIR:
            env.update(sanitizer_env(SANITIZER_DIR))
        return env

    def _run(self, args, timeout=120, check=True, server=False):
        """Run a PostgreSQL program; server=True for the ones that start the server
        (they get the sanitizer runtime when WEBHOOK_E2E_SANITIZER_DIR is set)."""
        p = subprocess.run(args, capture_output=True, text=True, env=self._env(server),
                           timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError('%s failed (%d):\n%s%s' % (
                ' '.join(args), p.returncode, p.stdout, p.stderr))
        return p

    # -- lifecycle ----------------------------------------------------------
    def initdb(self):
        self._run([self._bin('initdb'), '-D', self.datadir, '--auth=trust',
                   '--no-sync', '-E', 'UTF8', '--locale=C'])
        self.initialized = True

    def _write_conf(self):
        lines = [
            '',
            '# --- webhook e2e harness ---',
            "listen_addresses = '127.0.0.1'",
            'port = %d' % self.port,
            "unix_socket_directories = '%s'" % self.sockdir,
            "shared_preload_libraries = 'webhook'",
            "webhook.database_name = '%s'" % self.dbname,
            "log_line_prefix = '%m [%p] %b: '",
            'log_min_messages = info',
            'max_connections = 50',
        ] + self.extra_conf
        with open(os.path.join(self.datadir, 'postgresql.conf'), 'a') as f:
            f.write('\n'.join(lines) + '\n')

    def _set_port(self, port):
        conf = os.path.join(self.datadir, 'postgresql.conf')
        with open(conf) as f:
            text = f.read()
        text = text.replace('port = %d\n' % self.port, 'port = %d\n' % port)
        with open(conf, 'w') as f:
            f.write(text)
        self.port = port

    def start(self):
        """initdb (first time), start with pg_ctl -w, create the database and extension."""
        first = not self.initialized
        if first:
            self.initdb()
            self.port = free_port()
            self._write_conf()
        for attempt in range(3):
            p = self._run([self._bin('pg_ctl'), '-D', self.datadir, '-l', self.logfile,
                           '-w', '-t', '60', 'start'], check=False, server=True)
            if p.returncode == 0:
                break
            if first and 'could not bind' in self.log() and attempt < 2:
                self._set_port(free_port())      # lost the race for the port
                continue
            raise RuntimeError('pg_ctl start failed:\n%s%s\n--- server log ---\n%s' % (
                p.stdout, p.stderr, self.log_tail(40)))
        self.running = True
        self.started = True
        if SANITIZER_DIR:
            self._check_sanitized()
        if first:
            self.psql('CREATE DATABASE %s' % self.dbname, db='postgres')
            if self.create_extension:
                self.psql('CREATE EXTENSION webhook')
        return self

    def _check_sanitized(self):
        """With WEBHOOK_E2E_SANITIZER_DIR: the postmaster runs with AddressSanitizer
        preloaded, and the webhook library it preloads (if any) is built with it;
        else a run that reports nothing would prove nothing."""
        with open(os.path.join(self.datadir, 'postmaster.pid')) as f:
            pid = int(f.readline())
        with open('/proc/%d/maps' % pid) as f:
            paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
        if not any(os.path.basename(p).startswith('libasan') for p in paths):
            raise RuntimeError('sanitized run: the server has no libasan loaded: %r'
                               % sorted(paths))
        for lib in paths:
            if os.path.basename(lib) == 'webhook.so':
                with open(lib, 'rb') as f:
                    if b'__asan_report' not in f.read():
                        raise RuntimeError('sanitized run: %s is not built with SANITIZE=1'
                                           % lib)

    def stop(self, mode='fast'):
        if not self.running:
            return
        assert mode in ('smart', 'fast', 'immediate')
        self._run([self._bin('pg_ctl'), '-D', self.datadir, '-m', mode, '-w', '-t', '60',
                   'stop'])
        self.running = False

    def restart(self, mode='fast'):
        assert mode in ('smart', 'fast', 'immediate')
        self._run([self._bin('pg_ctl'), '-D', self.datadir, '-l', self.logfile,
                   '-m', mode, '-w', '-t', '60', 'restart'], server=True)
        self.running = True

    def close(self):
        """Stop the server (immediate if fast fails) and remove the temp dir."""
        try:
            if self.running:
                try:
                    self.stop('fast')
                except Exception:
                    self.stop('immediate')
        finally:
            self.running = False
            _live.discard(self)
            self._scan_log_for_secrets()
            if SANITIZER_DIR:
                found = sanitizer_log_reports(self.log())
                if found:
                    with open(os.path.join(SANITIZER_DIR, 'server-log.%s'
                                           % os.path.basename(self.dir)), 'w') as f:
                        f.write(found + '\n')
            if not KEEP:
                shutil.rmtree(self.dir, ignore_errors=True)
            else:
                print('harness: kept cluster dir %s' % self.dir)

    def _scan_log_for_secrets(self):
        try:
            with open(self.logfile, errors='replace') as f:
                lines = f.readlines()
        except OSError as e:
            if self.started:     # a scan of nothing must not pass as a clean log
                LOGS_SCANNED[0] += 1
                LOG_LEAKS.append('%s: the server log could not be read: %s' % (self.logfile, e))
            return
        LOGS_SCANNED[0] += 1
        LOG_LEAKS.extend('%s:%d: %s' % (self.logfile, no, line)
                         for no, line in log_secrets.leaks(lines, []))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- SQL --------------------------------------------------------------
    def psql(self, sql, db=None, timeout=60, stderr=False, user=None):
        """Run SQL with psql -X -At -q -v ON_ERROR_STOP=1; return rows (lists of str/None).

        user: log in as that role instead of the cluster's superuser.

        Multi-statement strings run as one implicit transaction; PostgreSQL 15's
        psql prints the rows of every statement, concatenated here (use single
        statements when the rows matter).  Raises PsqlError with stderr.
        With stderr=True returns (rows, stderr_text).
        """
        args = [self._bin('psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
                '-h', self.sockdir, '-p', str(self.port), '-d', db or self.dbname,
                '-F', FIELD_SEP, '-R', RECORD_SEP, '-P', 'null=' + NULL_MARK,
                '-c', sql] + (['-U', user] if user else [])
        try:
            p = subprocess.run(args, capture_output=True, env=self._env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PsqlError('psql timed out after %ss: %s' % (timeout, sql[:200]))
        out = p.stdout.decode('utf-8', 'replace')
        err = p.stderr.decode('utf-8', 'replace')
        if p.returncode != 0:
            raise PsqlError('psql failed (%d) for %r:\n%s' % (p.returncode, sql[:500], err))
        rows = self._parse(out)
        return (rows, err) if stderr else rows

    @staticmethod
    def _parse(out):
        if out.endswith('\n'):
            out = out[:-1]
        if out == '':
            return []
        rows = []
        # results of several statements are separated by a newline instead of RECORD_SEP
        for rec in out.split(RECORD_SEP):
            rows.append([None if f == NULL_MARK else f for f in rec.split(FIELD_SEP)])
        return rows

    def one(self, sql, **kw):
        """The single value of a one-row, one-column query (None for SQL NULL)."""
        rows = self.psql(sql, **kw)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise AssertionError('expected one value from %r, got %r' % (sql, rows))
        return rows[0][0]

    def call(self, fn, **kw):
        """SELECT webhook.<fn>(name => value, ...) and return the single value."""
        return self.one('SELECT webhook.%s(%s)' % (fn, named_args(**kw)))

    def wait_for(self, sql, expected, timeout=DEFAULT_TIMEOUT, interval=0.1, tolerate_errors=True):
        """Poll until the single value of sql equals expected (or expected(value) is true).

        Errors (e.g. during crash recovery) are retried when tolerate_errors;
        no row yet is a value of None (a delivery is made when the worker
        reads its event from the log, a moment after the commit).
        Returns the value; raises AssertionError with the last value and the
        server log tail on timeout.
        """
        assert timeout <= 60
        deadline = time.monotonic() + timeout
        last = last_err = None
        while True:
            try:
                rows = self.psql(sql)
                if len(rows) > 1 or (rows and len(rows[0]) != 1):
                    raise AssertionError('expected at most one value from %r, got %r'
                                         % (sql, rows))
                last = rows[0][0] if rows else None
                last_err = None
                ok = expected(last) if callable(expected) else last == expected
                if ok:
                    return last
            except PsqlError as e:
                if not tolerate_errors:
                    raise
                last_err = e
            if time.monotonic() >= deadline:
                raise AssertionError(
                    'timed out after %ss waiting for %r == %r; last value %r%s\n'
                    '--- server log tail ---\n%s' % (
                        timeout, sql, expected, last,
                        ('; last error %s' % last_err) if last_err else '',
                        self.log_tail(30)))
            time.sleep(interval)

    def worker_pid(self):
        v = self.one("SELECT min(pid) FROM pg_stat_activity "
                     "WHERE backend_type = 'webhook worker'")
        return int(v) if v is not None else None

    def wait_worker(self, timeout=DEFAULT_TIMEOUT, other_than=None):
        """Wait until a webhook worker runs (with a pid other than other_than); return its pid."""
        def running():
            try:
                pid = self.worker_pid()
            except PsqlError:
                return None
            return pid if pid is not None and pid != other_than else None
        return wait_until(running, timeout, 'a webhook worker',
                          detail=lambda: '--- server log tail ---\n' + self.log_tail(30))

    def config_generations(self):
        """{(database, worker number, pid): configuration generation} of every
        running delivery worker, all databases together (webhook_internal.workers())."""
        gens = {}
        for (db,) in self.psql("SELECT DISTINCT datname FROM pg_stat_activity "
                               "WHERE backend_type = 'webhook worker'"):
            try:
                rows = self.psql('SELECT worker, pid, config_generation '
                                 'FROM webhook_internal.workers() WHERE up', db=db)
            except PsqlError:   # the database went away, or its extension
                continue
            for w, pid, gen in rows:
                gens[(db, int(w), int(pid))] = int(gen)
        return gens

    def reload_and_wait(self, timeout=DEFAULT_TIMEOUT):
        """pg_reload_conf(), then wait until every delivery worker that ran
        before has taken the reload: its configuration generation advanced
        (webhook_internal.workers()), or it is gone (a worker started since read the
        new configuration when it started)."""
        before = self.config_generations()
        self.psql('SELECT pg_reload_conf()')

        def reloaded():
            now = self.config_generations()
            return all(now.get(k, gen + 1) > gen for k, gen in before.items())
        wait_until(reloaded, timeout, 'the workers to take the reload',
                   detail=lambda: 'generations before %r, now %r\n--- server log tail ---\n%s'
                   % (before, self.config_generations(), self.log_tail(30)))

    def set_setting(self, name, value):
        """ALTER SYSTEM SET name (RESET with value None), reload, and wait
        until the workers run with it (reload_and_wait)."""
        if value is None:
            self.psql('ALTER SYSTEM RESET %s' % name)
        else:
            self.psql('ALTER SYSTEM SET %s = %s' % (name, lit(value)))
        self.reload_and_wait()

    def workers_went_round(self, timeout=DEFAULT_TIMEOUT):
        """A positive signal that every worker has gone once round its loop
        (claim, chores, wait) since the call: it takes a reload at the top
        of the loop, so two reloads taken, one after the other, mean a whole
        turn between them."""
        self.reload_and_wait(timeout)
        self.reload_and_wait(timeout)

    def worker_passed(self, rx, idle=True, timeout=DEFAULT_TIMEOUT):
        """A positive signal for "nothing else happened": a marker event, to
        a hook of its own on receiver rx, emitted now, delivered and
        recorded; with idle, the workers then hold nothing and have nothing
        in flight.  So every claim the worker would have made of what was
        due before the call has been made (claims take what is due in due
        order), and anything it would have sent has been recorded.  One
        marker for each worker: a transport is worker transport_id %
        webhook.workers's."""
        n = int(self.one('SELECT count(*) FROM webhook_internal.workers()'))
        markers = []
        for _ in range(max(1, n)):   # transport ids are consecutive: one of each worker
            path = '/marker-' + uniq('m').lower()
            hook = self.hook_on(rx.url(), path)
            markers.append((path, self.emit(hook.event_type, {'marker': True})))
        for path, uid in markers:
            rx.wait_requests(1, path=path, timeout=timeout)
            self.wait_state(uid, 'succeeded', timeout=timeout)
        if idle:
            self.wait_for('SELECT coalesce(sum(held + in_flight), 0) FROM webhook_internal.workers()',
                          '0', timeout=timeout)

    def wait_until_running(self, timeout=DEFAULT_TIMEOUT):
        v = self.one("SELECT webhook.wait_until_running(%s)" % lit('%d s' % timeout),
                     timeout=timeout + 30)
        if v != 't':
            raise AssertionError('webhook.wait_until_running returned %r\n--- log ---\n%s'
                                 % (v, self.log_tail(30)))

    # -- log ---------------------------------------------------------------
    def log(self, since=0):
        """The server log text (from byte offset since)."""
        try:
            with open(self.logfile, 'rb') as f:
                f.seek(since)
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def log_offset(self):
        try:
            return os.path.getsize(self.logfile)
        except FileNotFoundError:
            return 0

    def log_tail(self, n=30):
        return '\n'.join(self.log().splitlines()[-n:])

    # -- webhook helpers -----------------------------------------------------
    def create_transport(self, name=None, base_url=None, **kw):
        return int(self.call('create_transport', name=name or uniq('tr').lower(),
                             base_url=base_url, **kw))

    def create_hook(self, transport_id, event_types, **kw):
        return int(self.call('create_hook', transport_id=transport_id,
                             event_types=event_types, **kw))

    def emit(self, event_type, payload, **kw):
        return self.call('emit', event_type=event_type, payload=payload, **kw)

    def emit_many(self, event_type, n):
        """n events of event_type ({"n": 1} to {"n": n}) in one transaction;
        returns their uids."""
        rows = self.psql("SELECT webhook.emit(%s, jsonb_build_object('n', g))"
                         " FROM generate_series(1, %d) g" % (lit(event_type), n))
        return [r[0] for r in rows]

    def hook_on(self, base_url, path='', transport=None, **hook_kw):
        """A new transport (base_url, transport kwargs) and hook (path, hook kwargs) for a
        fresh event type; returns a Hook with transport_id, hook_id, event_type."""
        event_type = hook_kw.pop('event_type', None) or uniq('EV')
        tid = self.create_transport(base_url=base_url, **(transport or {}))
        hid = self.create_hook(tid, [event_type], path=path, **hook_kw)
        return Hook(tid, hid, event_type)

    def delivery(self, uid, hook_id=None):
        """The delivery of event uid (for hook_id) as a dict, or None."""
        where = 'e.uid = %s' % lit(uid)
        if hook_id is not None:
            where += ' AND d.hook_id = %d' % hook_id
        rows = self.psql(
            'SELECT d.id, d.state, d.attempts, d.last_status, d.last_error, '
            'd.finished_at IS NOT NULL, d.hook_id '
            'FROM webhook.deliveries d JOIN webhook.event e ON e.id = d.event_id '
            'WHERE %s ORDER BY d.id' % where)
        if not rows:
            return None
        if len(rows) > 1:
            raise AssertionError('several deliveries for %s: %r' % (uid, rows))
        r = rows[0]
        return {'id': int(r[0]), 'state': r[1], 'attempts': int(r[2]),
                'last_status': None if r[3] is None else int(r[3]), 'last_error': r[4],
                'finished': r[5] == 't', 'hook_id': int(r[6])}

    def unread(self, hook_id):
        """How many events of the log the hook's cursor has not read yet
        (webhook_internal.cursor: none read without one)."""
        return int(self.one(
            "SELECT count(*) FROM webhook.event e"
            " LEFT JOIN webhook_internal.cursor c ON c.hook_id = %d"
            " WHERE e.txid IS NOT NULL AND %d = ANY (e.hook_ids)"
            " AND NOT coalesce(pg_visible_in_snapshot(e.txid, c.lo)"
            "                  OR (pg_visible_in_snapshot(e.txid, c.hi)"
            "                      AND (e.txid, e.id) <= (c.last_txid, c.last_id)), false)"
            % (hook_id, hook_id)))

    def wait_state(self, uid, state, timeout=DEFAULT_TIMEOUT):
        return self.wait_for(
            'SELECT string_agg(d.state, \',\') FROM webhook.deliveries d '
            'JOIN webhook.event e ON e.id = d.event_id WHERE e.uid = %s' % lit(uid),
            state, timeout)

    def attempts(self, delivery_id):
        """Attempt rows of a delivery, in order, as dicts."""
        rows = self.psql(
            'SELECT attempt_no, status_code, url, duration_ms, error, started_at '
            'FROM webhook.attempt WHERE delivery_id = %d ORDER BY attempt_no'
            % delivery_id)
        return [{'attempt_no': int(r[0]),
                 'status_code': None if r[1] is None else int(r[1]),
                 'url': r[2], 'duration_ms': None if r[3] is None else float(r[3]),
                 'error': r[4], 'started_at': r[5]} for r in rows]


class Session:
    """A psql session of the cluster kept open on stdin, for a transaction
    left open while the test goes on (in database db, or the cluster's)."""

    def __init__(self, cluster, db=None):
        self.p = subprocess.Popen(
            [cluster._bin('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', cluster.sockdir,
             '-p', str(cluster.port), '-d', db or cluster.dbname],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=cluster._env(), text=True)

    def send(self, sql):
        self.p.stdin.write(sql + '\n')
        self.p.stdin.flush()

    def close(self):
        try:
            self.p.communicate('\\q\n', timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.communicate()


def cluster_and_receiver(module, extra_conf=()):
    """setUpModule and tearDownModule for a test module that shares one
    cluster (with extra_conf lines) and one plain receiver, as its globals
    `cluster` and `rx`."""
    def set_up():
        module['cluster'] = start_cluster(extra_conf)
        module['rx'] = Receiver()
    return set_up, stop_all


def start_cluster(extra_conf=()):
    """Start a Cluster for a test module and wait (bounded) for the delivery worker.

    A worker that does not come up is reported on stdout but not raised, so the
    module's tests run and fail each with its own precise reason.  On any other
    error everything started so far is stopped before re-raising.
    """
    c = Cluster(extra_conf=extra_conf)
    try:
        c.start()
        try:
            c.wait_until_running(30)
        except (AssertionError, PsqlError) as e:
            print('harness: webhook worker not running: %s' % str(e).splitlines()[0])
        return c
    except BaseException:
        c.close()
        raise


ISO_8601 = r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:?\d\d)?)$'


class RawServer:
    """A TCP server on 127.0.0.1 for a receiver that does not speak HTTP
    as it should: it accepts at most max_conns connections and, with
    serve, runs serve(conn, stopping) for each in a thread of its own (a
    threading.Event set at close()), or else holds them, never answering.
    close() stops it and closes them all."""

    def __init__(self, serve=None, max_conns=2000):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(512)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.serve, self.max_conns = serve, max_conns
        self.conns = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set() and len(self.conns) < self.max_conns:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            if self.serve is not None:
                threading.Thread(target=self.serve, args=(conn, self.stopping),
                                 daemon=True).start()

    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


# --------------------------------------------------------------------------
# Receiver
# --------------------------------------------------------------------------

class Headers:
    """Request headers as received: ordered (name, value) pairs, case-insensitive lookup."""

    def __init__(self, pairs):
        self.pairs = list(pairs)

    def get(self, name, default=None):
        n = name.lower()
        for k, v in self.pairs:
            if k.lower() == n:
                return v
        return default

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.pairs if k.lower() == n]

    def __getitem__(self, name):
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __contains__(self, name):
        return self.get(name) is not None

    def names(self):
        return [k for k, _ in self.pairs]

    def __repr__(self):
        return 'Headers(%r)' % self.pairs


class Request:
    """One request as the receiver saw it."""

    def __init__(self, method, target, version, headers, body, arrived, arrived_wall,
                 client, conn_id, peer_cert):
        self.method = method
        self.target = target                       # raw request target
        parts = urllib.parse.urlsplit(target)
        self.path = parts.path
        self.query = parts.query                   # raw query string
        self.query_args = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        self.version = version
        self.headers = headers
        self.body = body                           # raw bytes
        self.arrived = arrived                     # time.monotonic()
        self.arrived_wall = arrived_wall           # time.time()
        self.client = client                       # (host, port)
        self.conn_id = conn_id                     # same for requests on one connection
        self.peer_cert = peer_cert                 # client certificate (dict) with mutual TLS
        self.finished = None                       # monotonic time the answer was sent
        self.response = None                       # the Response it was answered with

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return '<Request %s %s %d bytes>' % (self.method, self.target, len(self.body))


class Response:
    """A scripted answer.

    status, headers (dict), body (bytes/str), delay (seconds before answering),
    drop (close the connection without answering), times (how many requests
    this entry answers before the next entry of the sequence takes over;
    the last entry of a sequence answers all remaining requests).
    """

    def __init__(self, status=200, headers=None, body=b'', delay=0.0, drop=False, times=1):
        self.status = status
        self.headers = dict(headers or {})
        self.body = body.encode() if isinstance(body, str) else body
        self.delay = delay
        self.drop = drop
        self.times = times

    def __repr__(self):
        return '<Response %s%s>' % ('drop' if self.drop else self.status,
                                    ' delay %s' % self.delay if self.delay else '')


def R(*a, **kw):
    return Response(*a, **kw)


class _Script:
    def __init__(self, responses):
        self.seq = []
        for r in responses:
            if isinstance(r, int):
                r = Response(r)
            self.seq.extend([r] * max(1, r.times))

    def next(self):
        if len(self.seq) > 1:
            return self.seq.pop(0)
        return self.seq[0]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'webhook-e2e-receiver'
    sys_version = ''

    def setup(self):
        super().setup()
        self.conn_id = next(self.server.receiver._conn_ids)
        self.server.receiver._register_conn(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.receiver._unregister_conn(self.connection)

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        te = (self.headers.get('Transfer-Encoding') or '').lower()
        if 'chunked' in te:
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b''.join(chunks)
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def _handle(self):
        rx = self.server.receiver
        arrived, arrived_wall = time.monotonic(), time.time()
        body = self._read_body()
        peer = None
        if rx.tls:
            try:
                peer = self.connection.getpeercert()
            except Exception:
                peer = None
        req = Request(self.command, self.path, self.request_version,
                      Headers(self.headers.items()), body, arrived, arrived_wall,
                      self.client_address, self.conn_id, peer)
        resp = rx._record(req)
        try:
            if resp.delay:
                rx._stopping.wait(resp.delay)
            if resp.drop or rx._stopping.is_set():
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self.send_response(resp.status)
            hdrs = {k.lower(): (k, v) for k, v in resp.headers.items()}
            for k, v in hdrs.values():
                if k.lower() != 'content-length':
                    self.send_header(k, v)
            body_out = resp.body if self.command != 'HEAD' else b''
            self.send_header('Content-Length', str(len(resp.body)))
            if 'content-type' not in hdrs and resp.body:
                self.send_header('Content-Type', 'text/plain')
            self.end_headers()
            if body_out:
                self.wfile.write(body_out)
            self.wfile.flush()
        finally:
            req.finished = time.monotonic()
            rx._done(req)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn): skip it
        socketserver.TCPServer.server_bind(self)
        self.server_name = '127.0.0.1'
        self.server_port = self.server_address[1]

    def finish_request(self, request, client_address):
        # TLS handshake in the connection's own thread, not in the accept loop
        ctx = self.receiver.ssl_context
        if ctx is not None:
            try:
                request.settimeout(10)
                request = ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError) as e:
                self.receiver._tls_error(e)
                try:
                    request.close()
                except OSError:
                    pass
                return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        pass  # connections reset by the client are fine


class Receiver:
    """A recording HTTP(S) server on 127.0.0.1.

    rx = Receiver()                       # or Receiver(tls=(certfile, keyfile), client_ca=ca)
    rx.script('/p', R(500), R(500), R(200))   # first two 500, then 200 for ever
    rx.script('/slow', R(200, delay=3))
    rx.respond(lambda req: R(500) if rng.random() < 0.1 else None)   # before the scripts
    rx.url('/p') -> 'http://127.0.0.1:PORT/p'
    rx.wait_requests(3, path='/p')
    rx.close()
    """

    def __init__(self, tls=None, client_ca=None, default=None):
        self.tls = tls is not None
        self.ssl_context = None
        if tls is not None:
            certfile, keyfile = tls
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            if client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(cafile=client_ca)
            self.ssl_context = ctx
        self._lock = threading.Condition()
        self._requests = []
        self._scripts = {}
        self._default = _Script([default or Response(200, body=b'ok')])
        self._responder = None
        self._stopping = threading.Event()
        self._conn_ids = itertools.count(1)
        self._conns = set()
        self.tls_errors = []
        self.in_flight = collections.Counter()       # path -> requests being answered
        self.max_in_flight = collections.Counter()   # path -> most at once
        self.server = _Server(('127.0.0.1', 0), _Handler)
        self.server.receiver = self
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                         kwargs={'poll_interval': 0.05},
                                         name='receiver-%d' % self.port, daemon=True)
        self._thread.start()
        self._closed = False
        _live.add(self)

    # -- configuration -------------------------------------------------------
    @property
    def base_url(self):
        return '%s://127.0.0.1:%d' % ('https' if self.tls else 'http', self.port)

    def url(self, path=''):
        return self.base_url + path

    def script(self, path, *responses):
        """Answer requests to path with responses in sequence (the last one repeats)."""
        with self._lock:
            self._scripts[path] = _Script(responses)

    def default(self, *responses):
        with self._lock:
            self._default = _Script(responses)

    def respond(self, fn):
        """Answer each request with fn(request) when that is a Response; when it
        is None, as scripted.  fn runs under the receiver's lock, once per
        request in arrival order, so a seeded random.Random in it gives the
        same answers to the same sequence of requests.  None removes it."""
        with self._lock:
            self._responder = fn

    # -- recorded requests ------------------------------------------------------
    def _record(self, req):
        with self._lock:
            self._requests.append(req)
            self.in_flight[req.path] += 1
            self.max_in_flight[req.path] = max(self.max_in_flight[req.path],
                                               self.in_flight[req.path])
            resp = self._responder(req) if self._responder else None
            if resp is None:
                resp = self._scripts.get(req.path, self._default).next()
            req.response = resp
            self._lock.notify_all()
            return resp

    def _done(self, req):
        with self._lock:
            self.in_flight[req.path] -= 1
            self._lock.notify_all()

    def _tls_error(self, e):
        with self._lock:
            self.tls_errors.append(e)
            self._lock.notify_all()

    def _register_conn(self, sock):
        with self._lock:
            self._conns.add(sock)

    def _unregister_conn(self, sock):
        with self._lock:
            self._conns.discard(sock)

    def requests(self, path=None, method=None):
        with self._lock:
            return [r for r in self._requests
                    if (path is None or r.path == path)
                    and (method is None or r.method == method)]

    def count(self, path=None, method=None):
        return len(self.requests(path, method))

    def clear(self):
        with self._lock:
            self._requests = []

    def wait_requests(self, n, timeout=DEFAULT_TIMEOUT, path=None, method=None):
        """Wait until at least n matching requests arrived; return them all."""
        assert timeout <= 60
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self._requests
                       if (path is None or r.path == path)
                       and (method is None or r.method == method)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        'timed out after %ss waiting for %d request(s)%s; got %d: %r' % (
                            timeout, n, ' to %s' % path if path else '', len(got), got[:5]))
                self._lock.wait(min(left, 0.2))

    def wait_idle(self, timeout=DEFAULT_TIMEOUT):
        """Wait until no request is being answered."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while sum(self.in_flight.values()) > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('receiver still busy after %ss' % timeout)
                self._lock.wait(min(left, 0.2))

    # -- lifecycle -------------------------------------------------------------
    def close(self):
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------

Certs = collections.namedtuple('Certs', 'dir ca_cert ca_key server_cert server_key '
                                        'client_cert client_key client_key_password')

_CA_CNF = """[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = webhook e2e test CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""

_SERVER_EXT = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_CLIENT_EXT = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_certs(dir, password='e2e-key-pass'):
    """CA, server cert for 127.0.0.1, client cert with an encrypted key; returns Certs."""
    os.makedirs(dir, exist_ok=True)
    os.chmod(dir, 0o755)
    P = lambda name: os.path.join(dir, name)

    def run(*args):
        p = subprocess.run(('openssl',) + args, capture_output=True, text=True, cwd=dir)
        if p.returncode != 0:
            raise RuntimeError('openssl %s failed:\n%s%s' % (' '.join(args), p.stdout, p.stderr))

    for name, text in (('ca.cnf', _CA_CNF), ('server.ext', _SERVER_EXT),
                       ('client.ext', _CLIENT_EXT)):
        with open(P(name), 'w') as f:
            f.write(text)
    run('req', '-x509', '-config', P('ca.cnf'), '-newkey', 'rsa:2048', '-nodes',
        '-keyout', P('ca.key'), '-out', P('ca.crt'), '-days', '30', '-sha256')
    # server: CN and SAN 127.0.0.1
    run('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', P('server.key'),
        '-subj', '/CN=127.0.0.1', '-out', P('server.csr'))
    run('x509', '-req', '-in', P('server.csr'), '-CA', P('ca.crt'), '-CAkey', P('ca.key'),
        '-set_serial', str(int.from_bytes(os.urandom(8), 'big')), '-days', '30', '-sha256',
        '-extfile', P('server.ext'), '-out', P('server.crt'))
    # client: key encrypted with password
    run('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-aes-256-cbc',
        '-pass', 'pass:' + password, '-out', P('client.key'))
    run('req', '-new', '-key', P('client.key'), '-passin', 'pass:' + password,
        '-subj', '/CN=webhook-e2e-client', '-out', P('client.csr'))
    run('x509', '-req', '-in', P('client.csr'), '-CA', P('ca.crt'), '-CAkey', P('ca.key'),
        '-set_serial', str(int.from_bytes(os.urandom(8), 'big')), '-days', '30', '-sha256',
        '-extfile', P('client.ext'), '-out', P('client.crt'))
    for name in os.listdir(dir):
        os.chmod(P(name), 0o644)     # readable by the server (same user in test runs)
    return Certs(dir, P('ca.crt'), P('ca.key'), P('server.crt'), P('server.key'),
                 P('client.crt'), P('client.key'), password)


# --------------------------------------------------------------------------
# Signature verifiers (independent of the extension)
# --------------------------------------------------------------------------

def standard_key(secret):
    """The HMAC key of a Standard Webhooks secret: base64-decode after whsec_."""
    if secret.startswith('whsec_'):
        secret = secret[len('whsec_'):]
    return base64.b64decode(secret, validate=True)


def standard_signature(secret, msg_id, timestamp, body):
    """'v1,<base64 HMAC-SHA256 of "id.timestamp.body">'."""
    if isinstance(body, str):
        body = body.encode('utf-8')
    msg = ('%s.%s.' % (msg_id, timestamp)).encode('utf-8') + body
    mac = hmac.new(standard_key(secret), msg, hashlib.sha256).digest()
    return 'v1,' + base64.b64encode(mac).decode('ascii')


def verify_standard(secret, headers, body, tolerance=300, now=None):
    """Check Standard Webhooks headers over the exact body bytes.

    headers: anything with .get(name) (case-insensitive for Headers) or a dict.
    Returns the timestamp (int); raises AssertionError with the reason.
    """
    get = headers.get
    msg_id = get('webhook-id')
    ts = get('webhook-timestamp')
    sig = get('webhook-signature')
    if not msg_id or not ts or not sig:
        raise AssertionError('missing Standard Webhooks header(s): id=%r ts=%r sig=%r'
                             % (msg_id, ts, sig))
    if not ts.isdigit():
        raise AssertionError('webhook-timestamp is not Unix seconds: %r' % ts)
    if tolerance is not None:
        now = time.time() if now is None else now
        if abs(now - int(ts)) > tolerance:
            raise AssertionError('webhook-timestamp %s too far from now %d' % (ts, now))
    expected = standard_signature(secret, msg_id, ts, body)
    given = sig.split(' ')
    if not any(hmac.compare_digest(expected, g) for g in given):
        raise AssertionError('webhook-signature %r does not verify (expected %r)'
                             % (sig, expected))
    return int(ts)


def hmac_sha256_hex(secret, body):
    if isinstance(body, str):
        body = body.encode('utf-8')
    return hmac.new(secret.encode('utf-8'), body, hashlib.sha256).hexdigest()


def hmac_sha1_base64(secret, body):
    if isinstance(body, str):
        body = body.encode('utf-8')
    return base64.b64encode(hmac.new(secret.encode('utf-8'), body, hashlib.sha1).digest()
                            ).decode('ascii')


def verify_hmac_sha256(secret, header_value, body):
    expected = hmac_sha256_hex(secret, body)
    if header_value is None or not hmac.compare_digest(expected, header_value):
        raise AssertionError('hmac-sha256 signature %r, expected %r' % (header_value, expected))


def verify_hmac_sha1(secret, header_value, body):
    expected = hmac_sha1_base64(secret, body)
    if header_value is None or not hmac.compare_digest(expected, header_value):
        raise AssertionError('hmac-sha1 signature %r, expected %r' % (header_value, expected))


VERIFIER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            'verifier')


def _node_missing(what):
    """Skip outside CI; in CI (CI=true), where test/install-deps installs node
    and npm, a missing one is a failure."""
    if os.environ.get('CI') == 'true':
        raise AssertionError('%s is not installed (CI=true): test/install-deps installs '
                             "Debian's nodejs and npm" % what)
    raise unittest.SkipTest('%s is not installed: the Standard Webhooks reference '
                            'library (test/verifier) cannot run; install nodejs and npm, '
                            'or run test/install-deps as root' % what)


def _node_with_modules():
    """The node program, with test/verifier's npm packages (pinned in its
    package-lock.json) installed: with `npm ci` (quietly) the first time, or
    when package.json names one that node_modules does not have yet.  Without
    node, or without npm when a package is missing, raises unittest.SkipTest,
    or AssertionError in CI (CI=true)."""
    node = shutil.which('node') or shutil.which('nodejs')
    if node is None:
        _node_missing('node')
    with open(os.path.join(VERIFIER_DIR, 'package.json')) as f:
        wanted = json.load(f)['dependencies']
    if not all(os.path.exists(os.path.join(VERIFIER_DIR, 'node_modules', name, 'package.json'))
               for name in wanted):
        npm = shutil.which('npm')
        if npm is None:
            _node_missing('npm')
        cache = tempfile.mkdtemp(prefix='webhook-e2e-npm-')
        try:
            p = subprocess.run([npm, 'ci', '--silent', '--no-audit', '--no-fund',
                                '--ignore-scripts'],
                               cwd=VERIFIER_DIR, capture_output=True, text=True, timeout=300,
                               env=dict(os.environ, npm_config_cache=cache,
                                        npm_config_update_notifier='false'))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if p.returncode != 0:
            raise AssertionError('npm ci in %s failed (%d):\n%s%s'
                                 % (VERIFIER_DIR, p.returncode, p.stdout, p.stderr))
    return node


def node_verifier():
    """A function verify(secret, headers, body) -> (ok, text) that runs the
    Standard Webhooks reference library (npm package standardwebhooks, pinned in
    test/verifier/package-lock.json) under node on one received request
    (_node_with_modules installs it)."""
    node = _node_with_modules()

    def verify(secret, headers, body):
        """(True, 'ok') when the library accepts the request with secret, else
        (False, 'fail: <its reason>')."""
        if isinstance(headers, Headers):
            headers = {name.lower(): value for name, value in headers.pairs}
        msg = json.dumps({'secret': secret, 'headers': headers,
                          'body': base64.b64encode(body).decode('ascii')})
        p = subprocess.run([node, os.path.join(VERIFIER_DIR, 'verify.js')], input=msg,
                           capture_output=True, text=True, timeout=60)
        out = p.stdout.strip()
        if p.returncode not in (0, 1) or out == '':
            raise AssertionError('verify.js failed (%d): %s%s' % (p.returncode, out, p.stderr))
        return p.returncode == 0 and out == 'ok', out
    return verify


def prometheus_parser():
    """A function parse(text) -> {'families': [{name, help, type}], 'samples':
    [{name, labels, value}]} that reads Prometheus' text exposition format
    with an independent parser (npm package parse-prometheus-text-format,
    test/verifier/parse-metrics.js) under node; a text it refuses is an
    AssertionError."""
    node = _node_with_modules()

    def parse(text):
        p = subprocess.run([node, os.path.join(VERIFIER_DIR, 'parse-metrics.js')],
                           input=text, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError('parse-metrics.js refused the text (%d): %s%s\n--- text ---\n%s'
                                 % (p.returncode, p.stdout, p.stderr, text))
        return json.loads(p.stdout)
    return parse


STANDARD_VECTOR = {
    'secret': 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    'id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'timestamp': 1614265330,
    'body': b'{"test": 2432232314}',
    'signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
}


def selftest_verifiers():
    v = STANDARD_VECTOR
    got = standard_signature(v['secret'], v['id'], v['timestamp'], v['body'])
    assert got == v['signature'], (got, v['signature'])
    hdrs = {'webhook-id': v['id'], 'webhook-timestamp': str(v['timestamp']),
            'webhook-signature': 'v1,bm9wZQ== ' + v['signature']}
    assert verify_standard(v['secret'], hdrs, v['body'], tolerance=None) == v['timestamp']
    bad = dict(hdrs, **{'webhook-signature': v['signature']})
    try:
        verify_standard(v['secret'], bad, v['body'] + b' ', tolerance=None)
    except AssertionError:
        pass
    else:
        raise AssertionError('a tampered body verified')
    try:
        verify_standard(v['secret'], bad, v['body'])        # 2021 timestamp: too old
    except AssertionError:
        pass
    else:
        raise AssertionError('an old timestamp verified')
    # RFC 2202 / 4231 style known answers for the plain HMACs
    assert hmac_sha256_hex('key', b'The quick brown fox jumps over the lazy dog') == \
        'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8'
    assert hmac_sha1_base64('key', b'The quick brown fox jumps over the lazy dog') == \
        base64.b64encode(bytes.fromhex('de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9')).decode()
    return True


def _selftest():
    selftest_verifiers()
    print('verifiers: ok')
    with Receiver() as rx:
        rx.script('/seq', R(500, times=2), R(200, headers={'X-A': 'b'}, body='fine'))
        rx.script('/drop', R(drop=True))
        import http.client
        c = http.client.HTTPConnection('127.0.0.1', rx.port, timeout=5)
        statuses = []
        for i in range(3):
            c.request('POST', '/seq?key=k', body=b'{"n":%d}' % i,
                      headers={'Content-Type': 'application/json', 'WebHook-Id': 'x'})
            r = c.getresponse()
            statuses.append(r.status)
            r.read()
        assert statuses == [500, 500, 200], statuses
        reqs = rx.wait_requests(3, path='/seq', timeout=5)
        assert len({r.conn_id for r in reqs}) == 1, 'keep-alive not used'
        assert reqs[0].headers['webhook-id'] == 'x' and reqs[2].body == b'{"n":2}'
        assert reqs[0].query == 'key=k'
        c.request('POST', '/drop', body=b'x')
        try:
            c.getresponse()
            raise AssertionError('drop answered')
        except (http.client.RemoteDisconnected, ConnectionError):
            pass
        c.close()
    print('receiver: ok')
    tmp = tempfile.mkdtemp(prefix='webhook-e2e-certs-')
    try:
        certs = make_certs(tmp)
        import http.client
        with Receiver(tls=(certs.server_cert, certs.server_key), client_ca=certs.ca_cert) as rx:
            ctx = ssl.create_default_context(cafile=certs.ca_cert)
            ctx.load_cert_chain(certs.client_cert, certs.client_key,
                                password=certs.client_key_password)
            c = http.client.HTTPSConnection('127.0.0.1', rx.port, context=ctx, timeout=5)
            c.request('POST', '/tls', body=b'{}')
            assert c.getresponse().status == 200
            c.close()
            req = rx.wait_requests(1, path='/tls', timeout=5)[0]
            cn = dict(x[0] for x in req.peer_cert['subject'])['commonName']
            assert cn == 'webhook-e2e-client', cn
            ctx2 = ssl.create_default_context(cafile=certs.ca_cert)
            c = http.client.HTTPSConnection('127.0.0.1', rx.port, context=ctx2, timeout=5)
            try:
                c.request('POST', '/tls', body=b'{}')
                c.getresponse()
                raise AssertionError('no client cert accepted')
            except (ssl.SSLError, ConnectionError, http.client.HTTPException):
                pass
            c.close()
        # curl, if present, agrees the server cert is valid for 127.0.0.1
        if shutil.which('curl'):
            with Receiver(tls=(certs.server_cert, certs.server_key)) as rx:
                p = subprocess.run(['curl', '-sS', '--cacert', certs.ca_cert, '-d', '{}',
                                    rx.url('/curl')], capture_output=True, text=True)
                assert p.returncode == 0, p.stderr
                p = subprocess.run(['curl', '-sS', '-d', '{}', rx.url('/curl')],
                                   capture_output=True, text=True)
                assert p.returncode != 0 and 'certificate' in p.stderr, p.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('certificates and TLS: ok')


if __name__ == '__main__':
    _selftest()
