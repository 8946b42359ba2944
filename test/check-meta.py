#!/usr/bin/env python3
"""Check META.json, the PGXN distribution metadata, against the rules of the
PGXN Meta Spec 1.0.0 (https://pgxn.org/spec/) that apply to it, and against
the tree: its version and the extension's must be webhook.control's
default_version (as semver: 0.2 is 0.2.0), the files it names must be in the
tree (not made by make, as the install script is, nor ignored by git), and
the PostgreSQL it requires must be the major version the tests run on (15):
a range from 15.0.0 to below 16.0.0.  Prints "META.json: ok" or each
problem; exits 1 on any.  Run from anywhere: python3 test/check-meta.py
"""

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the spec's semantic versions (SemVer 1.0.0: X.Y.Z, an optional prerelease)
SEMVER = re.compile(r'^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+)?$')
# a version range: a version, or comma-separated operator-version pairs
RANGE = re.compile(r'^\s*(?:(?:[<>]=?|[=!]=)\s*)?(\S+)\s*$')
LICENSES = {'agpl_3', 'apache_1_1', 'apache_2_0', 'artistic_1', 'artistic_2', 'bsd',
            'freebsd', 'gfdl_1_2', 'gfdl_1_3', 'gpl_1', 'gpl_2', 'gpl_3', 'lgpl_2_1',
            'lgpl_3_0', 'mit', 'mozilla_1_0', 'mozilla_1_1', 'openssl', 'perl_5',
            'postgresql', 'qpl_1_0', 'ssleay', 'sun', 'zlib', 'open_source',
            'restricted', 'unrestricted', 'unknown'}
PHASES = {'configure', 'build', 'test', 'runtime', 'develop'}
RELATIONS = {'requires', 'recommends', 'suggests', 'conflicts'}
STATUSES = {'stable', 'testing', 'unstable'}


def problems():
    try:
        with open(os.path.join(ROOT, 'META.json'), encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        yield 'does not parse: %s' % e
        return
    if not isinstance(meta, dict):
        yield 'is not a JSON object'
        return

    for key in ('name', 'abstract', 'maintainer', 'license', 'provides', 'version',
                'meta-spec'):
        if key not in meta:
            yield 'lacks "%s"' % key
    if (meta.get('meta-spec') or {}).get('version') != '1.0.0':
        yield 'meta-spec.version is not 1.0.0'
    name = meta.get('name', '')
    if not isinstance(name, str) or len(name) < 2 or re.search(r'[\s/\\:\x00-\x1f]', name):
        yield 'name %r is not a valid term' % (name,)
    if not isinstance(meta.get('abstract'), str) or not meta.get('abstract'):
        yield 'abstract is not a non-empty string'
    maint = meta.get('maintainer')
    if isinstance(maint, str):
        maint = [maint]
    if not maint or not all(isinstance(m, str) and m for m in maint):
        yield 'maintainer is not a string or a list of strings'
    lic = meta.get('license')
    names = (lic if isinstance(lic, list) else [lic]) if not isinstance(lic, dict) else []
    if not isinstance(lic, dict) and not all(n in LICENSES for n in names):
        yield 'license %r is not one of the spec\'s' % (lic,)
    if lic == 'postgresql' and not os.path.exists(os.path.join(ROOT, 'LICENSE')):
        yield 'there is no LICENSE file'
    version = meta.get('version', '')
    if not SEMVER.match(str(version)):
        yield 'version %r is not a semantic version' % (version,)
    if meta.get('release_status', 'stable') not in STATUSES:
        yield 'release_status is not one of %s' % sorted(STATUSES)

    for phase, rels in (meta.get('prereqs') or {}).items():
        if phase not in PHASES:
            yield 'prereqs: unknown phase %r' % phase
            continue
        for rel, reqs in rels.items():
            if rel not in RELATIONS:
                yield 'prereqs.%s: unknown relation %r' % (phase, rel)
                continue
            for what, rng in reqs.items():
                parts = [RANGE.match(p) for p in str(rng).split(',')]
                if rng != 0 and not all(m and SEMVER.match(m.group(1)) for m in parts):
                    yield 'prereqs.%s.%s.%s: %r is not a version range' % (phase, rel, what, rng)
    # PostgreSQL: only the major version the tests run on
    for phase in ('runtime', 'test'):
        reqs = ((meta.get('prereqs') or {}).get(phase) or {}).get('requires') or {}
        if phase == 'test' and 'PostgreSQL' not in reqs:
            continue
        pg = reqs.get('PostgreSQL')
        bounds = sorted(re.sub(r'\s+', ' ', p.strip()) for p in str(pg).split(','))
        if bounds != ['< 16.0.0', '>= 15.0.0']:
            yield ('prereqs.%s.requires.PostgreSQL is %r, not the version tested: '
                   '">= 15.0.0, < 16.0.0"' % (phase, pg))

    # the tree's version: webhook.control's default_version
    with open(os.path.join(ROOT, 'webhook.control'), encoding='utf-8') as f:
        m = re.search(r"^default_version\s*=\s*'([^']*)'", f.read(), re.M)
    control = m.group(1) if m else None
    as_semver = control + '.0' if control and control.count('.') == 1 else control
    if version != as_semver:
        yield 'version %r is not webhook.control\'s default_version %r (%r)' % (
            version, control, as_semver)
    with open(os.path.join(ROOT, 'Makefile'), encoding='utf-8') as f:
        built = re.search(r'^DATA_built\s*=\s*(.*)$', f.read(), re.M)
    built = built.group(1).split() if built else []
    provides = meta.get('provides') or {}
    if name not in provides:
        yield 'provides does not name the extension %r' % name
    for ext, p in provides.items():
        if not SEMVER.match(str(p.get('version', ''))):
            yield 'provides.%s.version is not a semantic version' % ext
        if p.get('version') != version:
            yield 'provides.%s.version %r is not the version %r' % (ext, p.get('version'), version)
        f = p.get('file')
        if not f:
            yield 'provides.%s lacks "file"' % ext
        elif f in built:
            yield 'provides.%s.file %s is made by make, not in the tree' % (ext, f)
        elif not in_tree(f):
            yield 'provides.%s.file %s is not in the tree' % (ext, f)
        d = p.get('docfile')
        if d and not in_tree(d):
            yield 'provides.%s.docfile %s is not in the tree' % (ext, d)


def in_tree(path):
    """The file is there, and not one that git ignores (a build's output)."""
    if not os.path.isfile(os.path.join(ROOT, path)):
        return False
    try:
        ignored = subprocess.run(['git', '-C', ROOT, 'check-ignore', '-q', path],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:         # no git: a tree unpacked from a distribution
        return True
    return ignored.returncode != 0


def main():
    found = list(problems())
    for p in found:
        print('META.json: ' + p)
    if not found:
        print('META.json: ok')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
