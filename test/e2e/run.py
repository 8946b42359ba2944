#!/usr/bin/env python3
"""Run the webhook end-to-end tests: test/e2e/test_*.py, with unittest.

    python3 test/e2e/run.py                      # everything
    python3 test/e2e/run.py retry tls.TLSTest    # tests whose id contains a filter

Prints one line per test, the failures with their tracebacks, then a last line
"N passed, N failed"; exits 1 on any failure.  Must run as a non-root user
(the postgres user when run from test/run-all).
"""

import importlib
import io
import os
import signal
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


class Result(unittest.TestResult):
    def __init__(self, out):
        super().__init__()
        self.out = out
        self.outcomes = {}       # test id -> 'pass' | 'FAIL' | 'ERROR' | 'skip'
        self.details = []        # (test id, kind, text)
        self.failed_subtests = set()    # ids of the tests a subtest of which failed
        self._start = {}

    def startTest(self, test):
        super().startTest(test)
        self._start[test.id()] = time.monotonic()
        self.out.write('%-70s ' % short(test.id()))
        self.out.flush()

    def _end(self, test, kind, text=None):
        dt = time.monotonic() - self._start.get(test.id(), time.monotonic())
        self.outcomes[test.id()] = kind
        self.out.write('%s (%.1fs)\n' % (kind, dt))
        self.out.flush()
        if text:
            self.details.append((test.id(), kind, text))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._end(test, 'pass')

    def stopTest(self, test):
        if test.id() in self.failed_subtests and test.id() not in self.outcomes:
            self._end(test, 'FAIL')
        super().stopTest(test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._end(test, 'FAIL', self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        text = self._exc_info_to_string(err, test)
        if isinstance(test, unittest.case._SubTest) or hasattr(test, '_testMethodName'):
            self._end(test, 'ERROR', text)
        else:   # setUpModule / setUpClass / tearDown* errors
            self.out.write('%-70s ERROR\n' % short(test.id() if hasattr(test, 'id') else str(test)))
            self.details.append((str(test), 'ERROR', text))
            self.fixture_errors.append(str(test))

    def addSubTest(self, test, subtest, err):
        """A failed subtest fails its test, with the subtest's traceback."""
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.details.append((subtest.id(), 'FAIL', self._exc_info_to_string(err, test)))
            self.failed_subtests.add(test.id())

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._end(test, 'skip', None)
        self.out.write('    skipped: %s\n' % reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._end(test, 'pass')

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._end(test, 'FAIL', 'unexpected success')

    fixture_errors = None


def short(test_id):
    return test_id


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main(argv):
    filters = [a for a in argv if not a.startswith('-')]
    if os.geteuid() == 0:
        print('run.py: refusing to run as root (initdb refuses it); run as the postgres user:\n'
              '  runuser -u postgres -- python3 %s' % os.path.abspath(__file__))
        print('0 passed, 1 failed')
        return 1

    def on_signal(signum, frame):
        raise KeyboardInterrupt('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_signal)

    out = sys.stdout
    modules = sorted(f[:-3] for f in os.listdir(HERE)
                     if f.startswith('test_') and f.endswith('.py'))
    loader = unittest.TestLoader()
    passed = failed = 0
    details = []
    started = time.monotonic()
    try:
        for name in modules:
            try:
                mod = importlib.import_module(name)
            except Exception:
                out.write('%-70s ERROR (import)\n' % name)
                details.append((name, 'ERROR', traceback.format_exc()))
                failed += 1
                continue
            tests = [t for t in iter_tests(loader.loadTestsFromModule(mod))
                     if not filters or any(f in t.id() for f in filters)]
            if not tests:
                continue
            out.write('== %s (%d tests)\n' % (name, len(tests)))
            out.flush()
            result = Result(out)
            result.fixture_errors = []
            suite = unittest.TestSuite(tests)
            try:
                suite.run(result)
            finally:
                # whatever happened, no cluster or receiver outlives its module
                harness.stop_all()
            for t in tests:
                kind = result.outcomes.get(t.id())
                if kind == 'pass':
                    passed += 1
                elif kind == 'skip':
                    pass
                else:
                    # FAIL, ERROR, or never ran because setUpModule/setUpClass failed
                    failed += 1
                    if kind is None:
                        out.write('%-70s NOT RUN (fixture error)\n' % t.id())
            if result.fixture_errors and all(result.outcomes.get(t.id()) for t in tests):
                failed += len(result.fixture_errors)   # e.g. tearDownModule errors
            details.extend(result.details)
    except KeyboardInterrupt as e:
        out.write('\ninterrupted (%s)\n' % e)
        failed += 1
    finally:
        harness.stop_all()

    # the extension's own messages never carry a secret (test/log_secrets.py)
    if harness.LOGS_SCANNED[0]:
        name = 'server logs free of secrets (%d logs)' % harness.LOGS_SCANNED[0]
        if harness.LOG_LEAKS:
            out.write('%-70s FAIL\n' % name)
            details.append((name, 'FAIL', '\n'.join(harness.LOG_LEAKS[:50])))
            failed += 1
        else:
            out.write('%-70s pass\n' % name)
            passed += 1

    for test_id, kind, text in details:
        out.write('\n' + '=' * 78 + '\n%s: %s\n' % (kind, test_id) + '-' * 78 + '\n')
        out.write(text.rstrip() + '\n')
    for text in harness.NOTES:
        out.write('note: %s\n' % text)
    out.write('\ne2e: %.1fs\n' % (time.monotonic() - started))
    out.write('%d passed, %d failed\n' % (passed, failed))
    out.flush()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
