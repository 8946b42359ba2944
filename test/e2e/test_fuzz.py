"""Fuzz / property tests of the parsers and encoders, against a real cluster and receiver.

Every test draws its cases from its own random.Random seeded from one run
seed, printed at the end of the run (harness.note); WEBHOOK_FUZZ_SEED=<n>
replays a run, e.g.

    WEBHOOK_FUZZ_SEED=12345 python3 test/e2e/run.py test_fuzz.

Every test is bounded both in cases and in wall time (CASES, SECONDS), so
the module stays under a minute whatever the seed; a failure message names
the seed and the case.

The properties:
  sign         webhook.sign() equals the Python implementations of harness.py
               for standard, hmac-sha256 and hmac-sha1, over random secrets,
               message ids, timestamps and bodies; a bad secret or scheme is
               an error 22023, never a crash.
  urls         create_transport() accepts only http(s) URLs with a host and no
               user info, fragment, query, space or control character, stores
               them as given, and refuses the rest with 22023 (22004 for null).
  header       a transport's header values arrive byte-exact; a value with a
  values       control character other than TAB is refused with 22023.
  retry-after  whatever a 429/503 says in Retry-After (digits by the hundred,
               HTTP dates, garbage bytes), the delivery is failed and due again
               within [0.8, 2] x the schedule's step, and another hook's
               deliveries keep arriving.
  deny         a random webhook.deny_networks is either taken (and then obeyed,
  networks     to the address) or refused with the old value kept.
  timeouts     a transport timeout written as ISO-8601 or as a plain interval is
               the request timeout the worker applies.
  api          every API function (read from pg_proc), called as a tenant role
  arguments    and as a member of webhook_admin with odd values for each
               argument (megabyte strings, NULLs, roles that do not exist,
               extreme numbers, odd intervals and arrays), succeeds or fails
               with a SQLSTATE of class 22, 23, 42 or P0 (or 54000/55000: a
               limit reached, a hook not active) and a message of its own,
               never an internal one.
"""

import base64
import ipaddress
import json
import os
import random
import re
import subprocess
import time
import unittest

import harness
from harness import R, lit

cluster = rx = None

SEED = int(os.environ.get('WEBHOOK_FUZZ_SEED') or random.SystemRandom().randrange(1 << 32))

CASES = {'sign': 2000, 'urls': 1500, 'headers': 300, 'retry_after': 300,
         'deny_networks': 150, 'timeouts': 12, 'api': 1500}
SECONDS = {'sign': 8, 'urls': 6, 'headers': 8, 'retry_after': 10,
           'deny_networks': 8, 'timeouts': 8, 'api': 25}

# a psql -c argument must stay well under the kernel's 128 kB per argument
SQL_CHUNK_BYTES = 60000

STEP_S = 3600           # the retry step of the Retry-After hooks: no retry during the test


def setUpModule():
    global cluster, rx
    harness.note('fuzz seed %d (WEBHOOK_FUZZ_SEED=%d replays it)' % (SEED, SEED))
    cluster = harness.start_cluster()
    rx = harness.Receiver()
    # run one statement, and say how it went instead of failing: one psql call
    # tries a whole batch of cases
    cluster.psql(r"""
        CREATE FUNCTION public.fuzz_try(q text) RETURNS text LANGUAGE plpgsql AS $$
        DECLARE
            r text;
        BEGIN
            EXECUTE q INTO r;
            RETURN CASE WHEN r IS NULL THEN 'null' ELSE 'ok:' || r END;
        EXCEPTION WHEN OTHERS THEN
            RETURN 'error:' || SQLSTATE || ':' || translate(SQLERRM, E'\x1d\x1e\x1f\n', '    ');
        END
        $$""")


def tearDownModule():
    harness.stop_all()


def rng(name):
    """The random source of one test: the same cases for the same seed."""
    return random.Random('%d:%s' % (SEED, name))


class Budget:
    """Bounds a test in cases and in seconds; counts what it ran."""

    def __init__(self, name):
        self.name = name
        self.cases = CASES[name]
        self.deadline = time.monotonic() + SECONDS[name]
        self.done = 0

    def left(self):
        return self.cases - self.done if time.monotonic() < self.deadline else 0

    def note(self, extra=''):
        harness.note('fuzz %s: %d cases%s' % (self.name, self.done, extra))


def psql_verbose(sql):
    """Run sql in psql with VERBOSITY verbose: (True, '') or (False, SQLSTATE)."""
    p = subprocess.run([cluster._bin('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
                        '-v', 'VERBOSITY=verbose', '-h', cluster.sockdir,
                        '-p', str(cluster.port), '-d', cluster.dbname, '-c', sql],
                       capture_output=True, env=cluster._env(), timeout=60)
    if p.returncode == 0:
        return True, ''
    err = p.stderr.decode('utf-8', 'replace')
    m = re.search(r'ERROR:  ([0-9A-Z]{5}): ', err)
    if not m:
        raise AssertionError('psql failed without an SQLSTATE (a crash?) for %r:\n%s'
                             % (sql[:300], err))
    return False, m.group(1)


def try_all(queries, user=None):
    """Run each SQL query through fuzz_try, in as few psql calls as fit (as
    user, if given); returns per query ('ok', value) / ('null', None) /
    ('error', sqlstate, message)."""
    out = []
    i = 0
    while i < len(queries):
        chunk, size = [], 0
        while i < len(queries) and (not chunk or size + len(queries[i].encode()) * 2 < SQL_CHUNK_BYTES):
            chunk.append(queries[i])
            size += len(queries[i].encode()) * 2 + 20
            i += 1
        values = ', '.join('(%d, %s)' % (n, lit(q)) for n, q in enumerate(chunk))
        rows = cluster.psql('SELECT v.n, public.fuzz_try(v.q) FROM (VALUES %s) AS v(n, q) '
                            'ORDER BY v.n' % values, user=user)
        assert [int(r[0]) for r in rows] == list(range(len(chunk))), rows[:3]
        for r in rows:
            res = r[1]
            if res == 'null':
                out.append(('null', None))
            elif res.startswith('ok:'):
                out.append(('ok', res[3:]))
            else:
                _, state, msg = res.split(':', 2)
                out.append(('error', state, msg))
    return out


# --------------------------------------------------------------------------
# random text
# --------------------------------------------------------------------------

ASCII = ''.join(chr(c) for c in range(0x20, 0x7f))
C0 = ''.join(chr(c) for c in range(1, 0x20) if chr(c) not in '\x1d\x1e\x1f') + '\x7f'
C1 = ''.join(chr(c) for c in range(0x80, 0xa0))
ODD = ('\u2028\u2029\ufeff\ufffd\u200b\u200e\u202e\u00a0\u3000\u0301\u0308'
       '\U0001f600\U0001f4a9\U00010000\U0010fffd\uffff\ue000')
JSONISH = ['\\u0000', '\\ud800', '\\udfff', '\\"', '\\\\', '\\n', '\\', '"', '{', '}', '[',
           ']', ':', ',', 'null', 'true', '1e999', '-0', '\\/', '\\u00e9', "'", '$$', '%s',
           '%n', '\x08', '\x0c']


def rand_char(rnd, controls=True):
    k = rnd.random()
    if k < 0.55:
        return rnd.choice(ASCII)
    if k < 0.65:
        return rnd.choice(ODD)
    if k < 0.75 and controls:
        return rnd.choice(C0 + '\t\r\n')
    if k < 0.80:
        return rnd.choice(C1)
    if k < 0.90:
        return chr(rnd.randrange(0xa0, 0x800))
    c = rnd.randrange(0x800, 0x110000)
    return chr(c) if not 0xd800 <= c < 0xe000 else '\ufffd'


def rand_text(rnd, max_len, controls=True):
    n = rnd.choice([0, 1, rnd.randrange(0, max_len + 1), rnd.randrange(0, max_len + 1)])
    parts = []
    while sum(map(len, parts)) < n:
        if rnd.random() < 0.15:
            parts.append(rnd.choice(JSONISH) if controls else rnd.choice(JSONISH[:-2]))
        else:
            parts.append(rand_char(rnd, controls))
    return ''.join(parts)


def rand_json(rnd, depth=0):
    k = rnd.random()
    if depth > 3 or k < 0.3:
        return rnd.choice([None, True, False, rnd.randrange(-10**18, 10**18),
                           rnd.random() * 10 ** rnd.randrange(-300, 300), rand_text(rnd, 40)])
    if k < 0.65:
        return [rand_json(rnd, depth + 1) for _ in range(rnd.randrange(0, 5))]
    return {rand_text(rnd, 12): rand_json(rnd, depth + 1) for _ in range(rnd.randrange(0, 5))}


def rand_body(rnd):
    k = rnd.random()
    if k < 0.4:
        return json.dumps(rand_json(rnd), ensure_ascii=rnd.random() < 0.5)
    if k < 0.9:
        return rand_text(rnd, 600)
    return rand_text(rnd, 6000)


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------

def py_sign(scheme, secret, msg_id, ts, body):
    """('ok', signature) / ('null',) / ('error', '22023') as the extension must answer."""
    if scheme == 'none':
        return ('null',)
    if scheme not in ('standard', 'hmac-sha256', 'hmac-sha1') or not secret:
        return ('error', '22023')
    if scheme == 'standard':
        if not secret.startswith('whsec_'):
            return ('error', '22023')
        try:
            key = base64.b64decode(secret[len('whsec_'):], validate=True)
        except ValueError:
            return ('error', '22023')
        if not 24 <= len(key) <= 64:
            return ('error', '22023')
        return ('ok', harness.standard_signature(secret, msg_id, ts, body))
    if scheme == 'hmac-sha256':
        return ('ok', harness.hmac_sha256_hex(secret, body))
    return ('ok', harness.hmac_sha1_base64(secret, body))


URL_RE = re.compile(r'^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)$', re.S)


def url_acceptable(url):
    """Why a URL must not be taken as a base_url, or None when it may be."""
    if url is None:
        return 'null'
    if re.search(r'[\x00-\x20\x7f]', url):
        return 'space or control character'
    m = URL_RE.match(url)
    if not m or m.group(1).lower() not in ('http', 'https'):
        return 'not http(s)'
    authority, rest = m.group(2), m.group(3)
    if '@' in authority:
        return 'user info'
    if '#' in url:
        return 'fragment'
    if '?' in rest:
        return 'query'
    hp = re.match(r'^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::([0-9]{1,5}))?$', authority)
    if not hp or (hp.group(2) is not None and not 1 <= int(hp.group(2)) <= 65535):
        return 'host or port'
    return None


# --------------------------------------------------------------------------
# generators
# --------------------------------------------------------------------------

def rand_secret(rnd, scheme):
    if scheme != 'standard':
        return rnd.choice([None, '', rand_text(rnd, 80)]) if rnd.random() < 0.1 \
            else rand_text(rnd, 80) or 'k'
    k = rnd.random()
    if k < 0.6:          # the valid form
        return 'whsec_' + base64.b64encode(rnd.randbytes(rnd.randrange(24, 65))).decode()
    raw = base64.b64encode(rnd.randbytes(rnd.randrange(0, 120))).decode()
    return rnd.choice([
        None, '', 'whsec_', 'whsec', raw,
        'WHSEC_' + raw,
        'whsec_' + base64.b64encode(rnd.randbytes(rnd.randrange(0, 24))).decode(),
        'whsec_' + base64.b64encode(rnd.randbytes(rnd.randrange(65, 200))).decode(),
        'whsec_' + raw.rstrip('='),
        'whsec_' + raw[:max(0, len(raw) - 1)],
        'whsec_' + raw.replace('A', '!').replace('B', '\u00e9'),
        'whsec_' + '=' * rnd.randrange(1, 9) + raw,
        'whsec_' + raw[:8] + '=' + raw[8:],
        'whsec_' + base64.urlsafe_b64encode(rnd.randbytes(48)).decode(),
        'whsec_' + rand_text(rnd, 90, controls=False),
    ])


def rand_scheme(rnd):
    k = rnd.random()
    if k < 0.9:
        return rnd.choice(['standard', 'hmac-sha256', 'hmac-sha1'])
    return rnd.choice(['none', 'STANDARD', 'hmac-sha512', '', 'hmac_sha1', 'standard ',
                       'Hmac-Sha256'])


def rand_ts(rnd):
    return rnd.choice([0, 1, -1, 2 ** 63 - 1, -2 ** 63, 1614265330,
                       rnd.randrange(0, 2 ** 40), rnd.randrange(-2 ** 63, 2 ** 63)])


HOSTS = ['127.0.0.1', 'localhost', 'example.com', 'a-b.example.org', '[::1]', '[2001:db8::1]',
         'xn--bcher-kva.example', '10.0.0.1', 'b\u00fccher.example', 'h', '0']
URL_SAFE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/%!$&\'()*+,;=:@'


def rand_valid_url(rnd):
    url = rnd.choice(['http', 'https', 'HTTP', 'HttpS']) + '://' + rnd.choice(HOSTS)
    if rnd.random() < 0.5:
        url += ':%d' % rnd.randrange(1, 65536)
    if rnd.random() < 0.7:
        url += '/' + ''.join(rnd.choice(URL_SAFE) for _ in range(rnd.randrange(0, 40)))
    return url


def rand_url(rnd):
    if rnd.random() < 0.3:
        return rand_valid_url(rnd), True
    scheme = rnd.choice(['http', 'https', 'HTTP', 'ftp', '', 'h ttp', 'javascript', 'http+unix',
                         'file', 'https\t', '\u0068ttp', 'xhttp'])
    sep = rnd.choice(['://', '://', '://', ':/', ':', '', ':///', '://\\'])
    user = rnd.choice(['', '', '', 'user@', 'user:pw@', '@', ':@', 'a%40b@'])
    host = rnd.choice(HOSTS + ['', '[::1', '::1', '[]', '[::g]', 'exa mple.com', 'ex\tample',
                               '%41', rand_text(rnd, 20), 'a\u3000b', '[fe80::1%25eth0]'])
    port = rnd.choice(['', '', ':', ':0', ':1', ':80', ':65535', ':65536', ':99999', ':-1',
                       ':abc', ':123456', ':8080:90', ':\u0661'])
    path = rnd.choice(['', '/', '/a/b', '?q=1', '/p?x', '#frag', '/p#f', '/ sp', '/%00',
                       '/\r\nX: y', '/\x7f', rand_text(rnd, 30)])
    return scheme + sep + user + host + port + path, False


def header_value_class(v):
    """'refuse' (a C0 control other than TAB, or DEL), 'either' (a C1 control: the
    database's locale decides whether it counts as one) or 'accept'."""
    if re.search(r'[\x00-\x08\x0a-\x1f\x7f]', v):
        return 'refuse'
    if re.search(r'[\x80-\x9f]', v):
        return 'either'
    return 'accept'


def rand_header_value(rnd):
    k = rnd.random()
    if k < 0.3:
        return ''.join(rnd.choice(ASCII + '\t') for _ in range(rnd.randrange(0, 60)))
    if k < 0.45:   # an injection attempt
        inj = rnd.choice(['\r\n', '\n', '\r', '\r\n\r\n', '\x00', '\x0b', '\x1b[1m', '\x7f'])
        return 'v' + inj.replace('\x00', '\x01') + 'Injected: 1'
    return rand_text(rnd, 80, controls=rnd.random() < 0.3)


def rand_retry_after(rnd):
    """A Retry-After value, as the raw bytes of a latin-1 str (the receiver sends it so)."""
    k = rnd.random()
    if k < 0.3:
        return ''.join(rnd.choice('0123456789') for _ in range(rnd.randrange(1, 401)))
    if k < 0.4:
        return str(rnd.choice([0, 1, 2, 59, 3600, 7199, 7200, 7201, 86400, 2 ** 31, 2 ** 32,
                               2 ** 63, 2 ** 64, 10 ** 20]))
    if k < 0.65:
        t = rnd.randrange(-2 ** 31, 2 ** 34) if rnd.random() < 0.5 \
            else int(time.time()) + rnd.randrange(-10 ** 6, 10 ** 6)
        t = max(-62135596800, min(t, 253402300799))
        fmt = rnd.choice(['%a, %d %b %Y %H:%M:%S GMT', '%A, %d-%b-%y %H:%M:%S GMT',
                          '%a %b %d %H:%M:%S %Y', '%d %b %Y', '%Y-%m-%dT%H:%M:%SZ'])
        try:
            return time.strftime(fmt, time.gmtime(t))
        except (ValueError, OverflowError):
            return 'Thu, 01 Jan 1970 00:00:00 GMT'
    if k < 0.85:
        return rnd.choice(['', ' ', '-1', '-0', '+5', '1.5', '1e9', '0x10', '5 ', ' 5', '5,6',
                           'NaN', 'inf', '\u00ff', '9' * 2000, '1' + ' ' * 1500 + '1',
                           'Mon, 32 Jan 2024 25:61:61 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT',
                           'Sat, 01 Jan 0000 00:00:00 GMT', '2 2', '\t7'])
    # garbage bytes (no CR, LF: they would end the header; NUL is curl's to refuse)
    return ''.join(chr(rnd.choice([b for b in range(256) if b not in (10, 13)]))
                   for _ in range(rnd.randrange(0, 200)))


def rand_network(rnd):
    """(text, valid) of one entry of a deny list."""
    k = rnd.random()
    if k < 0.3:
        a = ipaddress.IPv4Address(rnd.getrandbits(32))
        return ('%s/%d' % (a, rnd.randrange(0, 33)) if rnd.random() < 0.8 else str(a)), True
    if k < 0.5:
        a = ipaddress.IPv6Address(rnd.getrandbits(128) >> rnd.choice([0, 64, 100, 120]))
        text = a.compressed if rnd.random() < 0.7 else a.exploded
        return ('%s/%d' % (text, rnd.randrange(0, 129)) if rnd.random() < 0.8 else text), True
    if k < 0.55:
        return rnd.choice(['127.0.0.0/8', '127.0.0.1', '0.0.0.0/0', '::/0', '::ffff:127.0.0.1',
                           '127.0.0.1/32', '127.0.0.1/031']), True
    return rnd.choice([
        '1.2.3.4/33', '::1/129', '1.2.3.4/-1', '1.2.3.4/', '1.2.3.4/1234', '1.2.3.4/3a',
        '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '::g', 'fe80::1%eth0', 'localhost',
        '*', '/8', '1.2.3.4/8/8', '\u0661.2.3.4', '1.2.3.4/+8', '1.2.3.4/ 8', '0x7f.1.1.1',
        '1' * 1000, '1.2.3.4/00000032', '::1::2', ':::', '1.2.3.4/\u0668',
        'a' + rand_text(rnd, 20, controls=False).replace(',', '').replace(' ', ''),
    ]), False


# values of each argument type, as SQL expressions: odd ones mostly
HUGE = "repeat('a', 2000000)"
ODD_VALUES = {
    'text': ['NULL', "''", HUGE, "repeat('\u00e9', 300)", "E'a\\nb'", "'fz'", "'default'",
             "'*'", "'http://127.0.0.1:9/x'", "'http://' || repeat('h', 3000)", "'-'",
             "'$'", "'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'", "'hmac-sha256'", "'none'",
             "'created_at'", "'id; DROP TABLE x'", "'\"q\"'", "'DESC'"],
    'bigint': ['NULL', '0', '-1', '9223372036854775807', '-9223372036854775808', '1', '2', '3'],
    'integer': ['NULL', '0', '-1', '1', '2147483647', '-2147483648', '50'],
    'interval': ['NULL', "'0'", "'-1 s'", "'0.0004 s'", "'178000000 years'",
                 "'-178000000 years'", "'1 mon'", "'1 day -86399.9999 s'", "'1 ms'", "'30 s'"],
    'jsonb': ['NULL', "'null'", "'[]'", "'{}'", "'\"x\"'", "'{\"type\": \"bearer\"}'",
              "(SELECT jsonb_object_agg('X-' || g, repeat('v', 100)) FROM generate_series(1, 5000) g)",
              "jsonb_build_object('X-A', %s)" % HUGE, "'{\"type\": \"basic\", \"username\": 1}'"],
    'text[]': ['NULL', "'{}'", "'{NULL}'", "'{*}'", "'{{A},{B}}'",
               "ARRAY(SELECT 'E' || g FROM generate_series(1, 1000000) g)",
               "ARRAY[%s]" % HUGE, "'{ORDER_*,a b}'", "'[0:1]={A,B}'"],
    'interval[]': ['NULL', "'{}'", "'{NULL}'", "'{1s}'", "'{{1s},{2s}}'", "'[0:0]={1s}'",
                   "array_fill('1 s'::interval, ARRAY[500000])", "'{-1s}'", "'{1000 years}'"],
    'regrole': ['NULL', '0', '4294967295', "'webhook_admin'", "'webhook_tenant'",
                "'pg_read_all_data'", "'fz_tenant'", "'fz_admin'"],
    'regclass': ['NULL', '0', "'pg_class'", "'public.fz_tbl'", "'webhook.hook'"],
    'regprocedure': ['NULL', '0', "'now()'", "'public.fz_body(webhook.event)'"],
    'timestamp with time zone': ['NULL', "'-infinity'", "'infinity'", "'4713-01-01 BC'",
                                 "now()", "'294276-12-31'"],
    'boolean': ['NULL', 'true', 'false'],
    'double precision': ['NULL', "'NaN'", "'infinity'", '-1', '0', '1e308', '0.5'],
    'jsonpath': ['NULL', "'$'", "'$.a ? (@ like_regex \"(a+)+b\")'", "'strict $.x'"],
}
INTERNAL = ('index row requires', 'syntax error', 'cache lookup failed', 'out of memory',
            'stack depth', 'unrecognized', 'could not find', 'invalid memory alloc')
# slow or disruptive with any argument: waiting, pruning every test's rows
API_SKIP = {'wait_until_running', 'prune', 'wake'}


# --------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------

class FuzzTest(unittest.TestCase):
    maxDiff = None

    def ctx(self, case):
        return 'seed %d, case %r' % (SEED, case)

    def test_sign(self):
        rnd, budget = rng('sign'), Budget('sign')
        kinds = {'ok': 0, 'null': 0, 'error': 0}
        while budget.left() > 0:
            cases = []
            for _ in range(min(40, budget.left())):
                scheme = rand_scheme(rnd)
                cases.append((scheme, rand_secret(rnd, scheme), rand_text(rnd, 40),
                              rand_ts(rnd), rand_body(rnd)))
            got = try_all(['SELECT webhook.sign(%s, %s, %s, %d, %s)' % (
                lit(s), lit(k), lit(m), t, lit(b)) for s, k, m, t, b in cases])
            for case, g in zip(cases, got):
                want = py_sign(*case)
                kinds[want[0]] += 1
                if want[0] == 'error':
                    self.assertEqual(g[:2], want, self.ctx(case))
                else:
                    self.assertEqual(g, want if want[0] == 'ok' else ('null', None),
                                     self.ctx(case))
            budget.done += len(cases)
        budget.note(' (%d signed, %d null, %d refused)' % (kinds['ok'], kinds['null'],
                                                           kinds['error']))
        self.assertGreater(kinds['ok'], 0)

    def test_urls(self):
        rnd, budget = rng('urls'), Budget('urls')
        accepted = refused = 0
        while budget.left() > 0:
            cases = [rand_url(rnd) for _ in range(min(50, budget.left()))]
            if budget.done == 0:
                cases.append((None, False))
            names = [harness.uniq('fz').lower() for _ in cases]
            got = try_all(['SELECT webhook.create_transport(%s, %s)' % (lit(n), lit(u))
                           for n, (u, _) in zip(names, cases)])
            ids = {}
            for name, (url, valid), g in zip(names, cases, got):
                why = url_acceptable(url)
                if g[0] == 'ok':
                    accepted += 1
                    self.assertIsNone(why, 'accepted a URL with %s: %s' % (why, self.ctx(url)))
                    ids[int(g[1])] = url
                else:
                    refused += 1
                    self.assertEqual(g[0], 'error', self.ctx(url))
                    self.assertIn(g[1], ('22023', '22004'), '%s: %s' % (g, self.ctx(url)))
                    self.assertFalse(valid, 'refused a valid URL (%s): %s' % (g, self.ctx(url)))
            if ids:
                rows = cluster.psql('SELECT id, base_url FROM webhook.transport WHERE id IN (%s)'
                                    % ','.join(map(str, ids)))
                self.assertEqual({int(r[0]): r[1] for r in rows}, ids)
                cluster.psql('SELECT webhook.delete_transport(id) FROM unnest(%s::bigint[]) id'
                             % lit(list(ids)))
            budget.done += len(cases)
        budget.note(' (%d accepted, %d refused)' % (accepted, refused))
        self.assertGreater(accepted, 0)
        self.assertGreater(refused, 0)

    def test_header_values(self):
        rnd, budget = rng('headers'), Budget('headers')
        counts = {'delivered': 0, 'refused': 0, 'c1_taken': 0, 'c1_refused': 0}
        while budget.left() > 0:
            values = [rand_header_value(rnd) for _ in range(min(30, budget.left()))]
            # every value alone: taken or refused as its class says
            names = [harness.uniq('fzh').lower() for _ in values]
            got = try_all(['SELECT webhook.create_transport(%s, %s, headers => %s)' % (
                lit(n), lit(rx.url()), lit({'X-Fuzz': v})) for n, v in zip(names, values)])
            taken = []
            for v, g in zip(values, got):
                cls = header_value_class(v)
                if cls == 'refuse':
                    self.assertEqual(g[:2], ('error', '22023'), self.ctx(v))
                    counts['refused'] += 1
                elif cls == 'accept':
                    self.assertEqual(g[0], 'ok', '%s: %s' % (g, self.ctx(v)))
                else:
                    self.assertIn(g[:2], (('ok', g[1]), ('error', '22023')), self.ctx(v))
                    counts['c1_taken' if g[0] == 'ok' else 'c1_refused'] += 1
                if g[0] == 'ok':
                    taken.append(v)
            cluster.psql("SELECT webhook.delete_transport(id) FROM webhook.transport "
                         "WHERE name LIKE 'fzh\\_%'")
            # the values taken, six to a transport, sent and compared on arrival
            expect = {}
            for i in range(0, len(taken), 6):
                group = {'X-Fuzz-%d' % j: v for j, v in enumerate(taken[i:i + 6])}
                path = '/fz-h-%d-%d' % (budget.done, i)
                hook = cluster.hook_on(rx.url(), path, transport={'headers': group},
                                       retry_schedule='{1h}')
                cluster.emit(hook.event_type, {'i': i})
                expect[path] = group
            for path, group in expect.items():
                req = rx.wait_requests(1, path=path, timeout=20)[0]
                for name, v in group.items():
                    want = v.encode('utf-8').strip(b' \t')
                    got_v = req.headers.get(name)
                    if want == b'':
                        # curl sends no header for an empty value
                        self.assertIn(got_v, (None, ''), self.ctx(v))
                        continue
                    self.assertIsNotNone(got_v, 'header missing: %s' % self.ctx(v))
                    self.assertEqual(got_v.encode('latin-1').strip(b' \t'), want, self.ctx(v))
                    counts['delivered'] += 1
            budget.done += len(values)
        budget.note(' (%(delivered)d values delivered byte-exact, %(refused)d with C0 controls '
                    'refused; with C1 controls %(c1_taken)d taken, %(c1_refused)d refused)'
                    % counts)
        self.assertGreater(counts['delivered'], 0)
        self.assertGreater(counts['refused'], 0)

    def test_retry_after(self):
        rnd, budget = rng('retry_after'), Budget('retry_after')
        other = cluster.hook_on(rx.url(), '/fz-ra-other', retry_schedule='{1s}')
        other_uids = []
        worst = 0.0
        round_no = 0
        while budget.left() > 0:
            round_no += 1
            values = [rand_retry_after(rnd) for _ in range(min(20, budget.left()))]
            path = '/fz-ra-%d' % round_no
            responses = [R(rnd.choice([503, 503, 429]),
                           headers={rnd.choice(['Retry-After', 'retry-after', 'RETRY-AFTER']): v})
                         for v in values]
            rx.script(path, *(responses + [R(200)]))
            hook = cluster.hook_on(rx.url(), path, retry_schedule='{%ds}' % STEP_S)
            uids = cluster.psql(
                "SELECT webhook.emit(%s, jsonb_build_object('n', g)) FROM generate_series(1, %d) g"
                % (lit(hook.event_type), len(values)))
            uids = [r[0] for r in uids]
            # meanwhile another hook's deliveries keep arriving
            other_uids += [r[0] for r in cluster.psql(
                "SELECT webhook.emit(%s, jsonb_build_object('round', %d, 'n', g)) "
                'FROM generate_series(1, 3) g' % (lit(other.event_type), round_no))]
            reqs = rx.wait_requests(len(values), path=path, timeout=20)
            rx.wait_requests(len(other_uids), path='/fz-ra-other', timeout=20)
            sent = {r.headers.get('webhook-id'): v for r, v in zip(reqs, values)}
            self.assertEqual(set(sent), set(uids))
            cluster.wait_for(
                "SELECT count(*) FILTER (WHERE d.state = 'failed' AND d.attempts = 1) "
                'FROM webhook.deliveries d WHERE d.hook_id = %d' % hook.hook_id,
                str(len(values)), timeout=20)
            rows = cluster.psql(
                'SELECT e.uid, d.state, a.status_code, a.error, '
                "extract(epoch FROM d.next_attempt_at - a.started_at) - a.duration_ms / 1000 "
                'FROM webhook.deliveries d JOIN webhook.event e ON e.id = d.event_id '
                'JOIN webhook.attempt a ON a.delivery_id = d.id AND a.attempt_no = 1 '
                'WHERE d.hook_id = %d' % hook.hook_id)
            self.assertEqual(len(rows), len(values))
            for uid, state, status, error, gap in rows:
                case = sent[uid]
                gap = float(gap)
                worst = max(worst, gap / STEP_S)
                self.assertEqual(state, 'failed', self.ctx(case))
                self.assertLessEqual(gap, 2 * STEP_S + 10,
                                     'due again after %.0f s (step %d s; status %s, error %r): %s'
                                     % (gap, STEP_S, status, error, self.ctx(case)))
                self.assertGreaterEqual(gap, 0.8 * STEP_S - 10,
                                        'due again after %.0f s (step %d s): %s'
                                        % (gap, STEP_S, self.ctx(case)))
            self.assertEqual(rx.count(path=path), len(values), 'a failed delivery was retried')
            budget.done += len(values)
        for uid in other_uids:
            cluster.wait_state(uid, 'succeeded', timeout=20)
        budget.note(' (next attempt at most %.2f x the step; %d deliveries of another hook '
                    'arrived meanwhile)' % (worst, len(other_uids)))

    def test_deny_networks(self):
        rnd, budget = rng('deny_networks'), Budget('deny_networks')
        default = cluster.one('SHOW webhook.deny_networks')
        self.addCleanup(self.reset_deny_networks, default)
        probe = rx.url('/fz-deny-probe')
        current = default
        taken = refused = 0
        t0 = cluster.one('SELECT pg_postmaster_start_time()')
        while budget.left() > 0:
            budget.done += 1
            n = rnd.choice([0, 1, 1, 2, 3, 5, 8, 300 if rnd.random() < 0.1 else 4])
            nets = [rand_network(rnd) for _ in range(n)]
            seps = [rnd.choice([',', ', ', ' ', '\t', ',,', ' ,\t']) for _ in nets]
            value = ''.join(text + sep for (text, _), sep in zip(nets, seps))
            if rnd.random() < 0.5:
                value = value.rstrip(', \t')
            valid = all(ok for _, ok in nets)
            altered, state = psql_verbose('ALTER SYSTEM SET webhook.deny_networks = %s'
                                          % lit(value))
            if not altered:
                self.assertFalse(valid, 'refused a valid list (%s): %s' % (state, self.ctx(value)))
                self.assertEqual(state, '22023', self.ctx(value))
            else:
                # the workers took the reload, so the postmaster had, and a
                # new session has the list (or, refused, the old one)
                cluster.reload_and_wait()
            check = ("SELECT current_setting('webhook.deny_networks'), "
                     'webhook_internal.http_head(%s, 3000, true, NULL, NULL, NULL, NULL)' % lit(probe))
            if valid:
                shown, status = cluster.psql(check)[0]
                self.assertEqual(shown, value, self.ctx(value))
                taken += 1
                current = value
                denied = any(ipaddress.ip_address('127.0.0.1') in net
                             for net in (ipaddress.ip_network(t, strict=False)
                                         for t in re.split(r'[, \t]+', value) if t)
                             if net.version == 4)
                self.assertEqual(status, None if denied else '200',
                                 'HEAD to 127.0.0.1 under %r: %s' % (value, self.ctx(value)))
            else:
                # refused: the old list stays in force
                refused += 1
                shown, status = cluster.psql(check)[0]
                self.assertEqual(shown, current, 'after refusing %s' % self.ctx(value))
                if altered:      # taken by ALTER SYSTEM, refused on reload: undo it
                    cluster.psql('ALTER SYSTEM SET webhook.deny_networks = %s' % lit(current))
        self.assertEqual(cluster.one('SELECT pg_postmaster_start_time()'), t0,
                         'the server restarted (a crash)')
        budget.note(' (%d taken, %d refused)' % (taken, refused))

    def reset_deny_networks(self, default):
        cluster.set_setting('webhook.deny_networks', None)
        self.assertEqual(cluster.one('SHOW webhook.deny_networks'), default)
        # and the worker still delivers
        hook = cluster.hook_on(rx.url(), '/fz-deny-after')
        uid = cluster.emit(hook.event_type, {'after': 'deny_networks'})
        cluster.wait_state(uid, 'succeeded', timeout=20)

    def test_api_arguments(self):
        rnd, budget = rng('api'), Budget('api')
        cluster.psql("""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fz_tenant') THEN
                    CREATE ROLE fz_tenant LOGIN;
                    CREATE ROLE fz_admin LOGIN IN ROLE webhook_admin;
                END IF;
            END $$;
            CREATE TABLE IF NOT EXISTS public.fz_tbl (id int PRIMARY KEY, state text);
            CREATE OR REPLACE FUNCTION public.fz_body(e webhook.event) RETURNS jsonb
                LANGUAGE sql AS $f$ SELECT e.payload $f$;
            SELECT webhook.grant_tenant('fz_tenant', 'fz');""")
        t = cluster.one("SELECT webhook.create_transport('fz-api', %s, tenant => 'fz')"
                        % lit(rx.url()))
        cluster.one("SELECT webhook.create_hook(%s, path => '/fz-api')" % t)
        funcs = cluster.psql(
            "SELECT p.proname, coalesce(array_to_string(p.proargnames[1:p.pronargs], ','), ''),"
            "       coalesce((SELECT string_agg(format_type(a, NULL), ',' ORDER BY n)"
            "                   FROM unnest(p.proargtypes) WITH ORDINALITY AS x(a, n)), '')"
            "  FROM pg_proc p WHERE p.pronamespace = 'webhook'::regnamespace"
            "   AND p.proname !~ '^_' AND p.prokind = 'f' ORDER BY 1, 2")
        funcs = [(f, names.split(',') if names else [], types.split(',') if types else [])
                 for f, names, types in funcs if f not in API_SKIP]
        self.assertGreater(len(funcs), 20)
        kinds = {}
        internal = []
        while budget.left() > 0:
            cases = []
            for _ in range(min(30, budget.left())):
                f, names, types = rnd.choice(funcs)
                args = []
                for n, ty in zip(names, types):
                    if n == 'check_reachable':
                        args.append('%s => false' % n)        # no HTTP from here
                    elif rnd.random() < 0.7 or ty not in ODD_VALUES:
                        if ty in ODD_VALUES:
                            args.append('%s => %s::%s' % (n, rnd.choice(ODD_VALUES[ty]), ty))
                    else:
                        args.append('%s => %s::%s' % (n, rnd.choice(ODD_VALUES[ty]), ty))
                q = 'SELECT count(*) FROM webhook.%s(%s) AS x' % (f, ', '.join(args))
                cases.append((rnd.choice(['fz_tenant', 'fz_admin']), q))
            for user in ('fz_tenant', 'fz_admin'):
                mine = [q for u, q in cases if u == user]
                for q, g in zip(mine, try_all(mine, user=user)):
                    kinds[g[0]] = kinds.get(g[0], 0) + 1
                    if g[0] != 'error':
                        continue
                    state, msg = g[1], g[2]
                    ok_state = state[:2] in ('22', '23', '42', 'P0') or state in ('54000', '55000')
                    if not ok_state or any(w in msg.lower() for w in INTERNAL):
                        internal.append('%s as %s: %s %s' % (q[:300], user, state, msg[:300]))
            # what succeeded is removed: the tenant never reaches its limits
            cluster.psql("SELECT webhook.delete_transport(id) FROM webhook.transport"
                         " WHERE id > %s AND name <> 'fz-api'" % t)
            cluster.psql("DELETE FROM webhook.hook WHERE transport_id = %s AND path <> '/fz-api'" % t)
            cluster.psql("SELECT webhook.unwatch(tbl) FROM webhook.watch")
            budget.done += len(cases)
        budget.note(' (%s)' % ', '.join('%d %s' % (v, k) for k, v in sorted(kinds.items())))
        self.assertEqual(internal, [], 'seed %d' % SEED)
        self.assertGreater(kinds.get('error', 0), 0)

    def test_timeouts(self):
        rnd, budget = rng('timeouts'), Budget('timeouts')
        cases = []
        for i in range(budget.cases):
            ms = rnd.randrange(500, 2500)
            s = ms / 1000
            text = rnd.choice([
                'PT%gS' % s, 'P0DT%gS' % s, 'PT0H0M%gS' % s, 'P0Y0M0DT0H0M%gS' % s,
                '%d ms' % ms, '%g s' % s, '%g seconds' % s, '00:00:%06.3f' % s,
                '%d milliseconds' % ms, '0.%05d min' % round(ms / 60000 * 100000),
            ])
            slow = rnd.random() < 0.5
            delay = s + 1.0 if slow else max(0.0, s - 0.4)
            path = '/fz-to-%d' % i
            rx.script(path, R(200, delay=delay))
            hook = cluster.hook_on(rx.url(), path, transport={'timeout': text},
                                   retry_schedule='{1h}')
            stored = float(cluster.one('SELECT extract(epoch FROM timeout) * 1000 FROM '
                                       'webhook.transport WHERE id = %d' % hook.transport_id))
            self.assertAlmostEqual(stored, ms, delta=1, msg='%r stored as %s ms' % (text, stored))
            cases.append((hook, text, stored, slow, delay))
            budget.done += 1
            if time.monotonic() > budget.deadline - 5:
                break
        uids = [cluster.emit(hook.event_type, {'timeout': text})
                for hook, text, ms, slow, delay in cases]
        for uid, (hook, text, ms, slow, delay) in zip(uids, cases):
            what = 'timeout %r (%d ms), receiver delay %.2f s' % (text, ms, delay)
            cluster.wait_for(
                "SELECT d.state FROM webhook.deliveries d JOIN webhook.event e "
                "ON e.id = d.event_id WHERE e.uid = %s" % lit(uid),
                lambda v: v in ('succeeded', 'failed'), timeout=20)
            d = cluster.delivery(uid)
            att = cluster.attempts(d['id'])
            self.assertEqual(len(att), 1, what)
            if slow:
                self.assertEqual(d['state'], 'failed', what)
                self.assertIsNone(att[0]['status_code'], what)
                self.assertRegex(att[0]['error'] or '', re.compile(r'time[d ]?\s*out', re.I), what)
                self.assertGreaterEqual(att[0]['duration_ms'], ms - 50, what)
                self.assertLess(att[0]['duration_ms'], ms + 900, what)
            else:
                self.assertEqual((d['state'], att[0]['status_code']), ('succeeded', 200),
                                 '%s: %r' % (what, att[0]))
        budget.note(' (%s)' % ', '.join('%r %s' % (text, 'slow' if slow else 'fast')
                                        for _, text, _, slow, _ in cases))


if __name__ == '__main__':
    unittest.main()
