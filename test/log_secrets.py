#!/usr/bin/env python3
"""Fail if a PostgreSQL server log shows a secret in the extension's messages.

    python3 test/log_secrets.py LOGFILE [SECRET ...]

A secret is any of the given strings, any text containing "SECRET" (the
tests' own credentials are marked so), and any Standard Webhooks secret
("whsec_" and 20 or more base64 characters: the extension generates them).
PostgreSQL's own STATEMENT entries are skipped, with their continuation
lines: a failed statement is logged whole, its arguments included, by the
server itself (log_min_error_statement); the README says how to keep
secrets out of them.  Prints every offending line; exits 1 if there is one.
"""

import re
import sys

WHSEC = re.compile(r'whsec_[A-Za-z0-9+/=]{20,}')
# an entry starts with the log_line_prefix's timestamp; a STATEMENT entry's
# statement may go on over lines of its own
ENTRY = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d')


def leaks(lines, secrets):
    in_statement = False
    for no, line in enumerate(lines, 1):
        if ENTRY.match(line):
            in_statement = ' STATEMENT:  ' in line
        if in_statement:
            continue
        if 'SECRET' in line or WHSEC.search(line) or any(s in line for s in secrets):
            yield no, line.rstrip('\n')


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[1], errors='replace') as f:
        found = list(leaks(f, [s for s in argv[2:] if s]))
    for no, line in found:
        print('%s:%d: a secret in the server log: %s' % (argv[1], no, line))
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
