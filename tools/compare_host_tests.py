#!/usr/bin/env python
"""Run MMAction2's own unit tests without and with ``import mmflux``; compare outcomes.

    git clone --depth 1 -b v1.2.0 https://github.com/open-mmlab/mmaction2 /tmp/mmaction2
    python tools/compare_host_tests.py /tmp/mmaction2 [--subset ...] [--markdown docs/compat_host_tests.md]

MMAction2's tests run from its checkout (they read ``tests/data`` and ``configs/``)
against the installed mmaction2 package, twice:

* ``host``: MMAction2 alone. The mmaction2 1.2.0 wheel cannot ``import
  mmaction.models`` (mmaction2 issue 2714), so this run first registers the same DRN
  placeholder that mmflux registers, loaded from ``mmflux/compat/mmaction_drn.py``
  by file path: mmflux itself is never imported (checked).

Both runs read ``mmaction.testing``'s configs from the checkout (the wheel has them
only under ``mmaction/.mim``, where the helper does not look).
* ``with mmflux``: ``-p mmflux`` imports mmflux before any test is collected, as a
  config's ``custom_imports`` would.

Every test id's outcome (passed, failed, error, skipped) is compared; the script
exits non-zero if any differs.
"""
import argparse
import collections
import os
import os.path as osp
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from typing import Dict, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SUBSET = ('tests/apis', 'tests/models/recognizers', 'tests/models/heads',
          'tests/models/backbones/test_vit_mae.py', 'tests/models/data_preprocessors',
          'tests/datasets', 'tests/evaluation', 'tests/engine')

_PROBE = '''
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location(
    'mmflux_compat_mmaction_drn', os.path.join({root!r}, 'mmflux', 'compat', 'mmaction_drn.py'))
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.register_missing_drn()

# mmaction.testing reads configs from <site-packages>/configs, which a wheel install
# lacks; both runs read them from the checkout instead (same for both, so fair)
import copy
from mmengine.config import Config
import mmaction.testing._utils as testing_utils


def get_cfg(config_type, fname):
    return copy.deepcopy(Config.fromfile(os.path.join({checkout!r}, 'configs', config_type, fname)))


testing_utils.get_cfg = get_cfg


def pytest_sessionfinish(session):
    with open({marker!r}, 'w') as f:
        f.write(str('mmflux' in sys.modules))
'''


def outcomes(junit: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """Test id -> passed / failed / error / skipped, and test id -> first line of the
    failure message, from a JUnit XML report."""
    result, reasons = {}, {}
    for case in ET.parse(junit).getroot().iter('testcase'):
        name = f'{case.get("classname")}::{case.get("name")}'
        kinds = [child for child in case if child.tag in ('failure', 'error', 'skipped')]
        result[name] = {'failure': 'failed'}.get(kinds[0].tag, kinds[0].tag) if kinds else 'passed'
        if kinds and kinds[0].tag != 'skipped':
            reasons[name] = (kinds[0].get('message') or '').strip().splitlines()[0][:160] \
                if (kinds[0].get('message') or '').strip() else '(no message)'
    return result, reasons


def run(checkout: str, subset, with_mmflux: bool, workdir: str):
    tag = 'mmflux' if with_mmflux else 'host'
    marker = osp.join(workdir, f'{tag}_imported_mmflux.txt')
    with open(osp.join(workdir, f'host_probe_{tag}.py'), 'w') as f:
        f.write(_PROBE.format(root=REPO_ROOT, marker=marker, checkout=osp.abspath(checkout)))
    junit = osp.join(workdir, f'{tag}.xml')
    cmd = [sys.executable, '-m', 'pytest', '-q', '-p', f'host_probe_{tag}', '-p', 'no:cacheprovider',
           f'--junitxml={junit}', *subset]
    if with_mmflux:
        cmd[3:3] = ['-p', 'mmflux']
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([workdir, REPO_ROOT]))
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    print(f'[{tag}] ' + (proc.stdout.strip().splitlines() or ['(no output)'])[-1], flush=True)
    with open(marker) as f:
        imported = f.read() == 'True'
    if imported != with_mmflux:
        raise SystemExit(f'[{tag}] mmflux imported: {imported}, expected {with_mmflux}')
    return outcomes(junit)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('checkout', help='an MMAction2 checkout (its tests/ and configs/)')
    parser.add_argument('--subset', nargs='+', default=list(SUBSET))
    parser.add_argument('--markdown', help='write the comparison table to this file')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        host, host_reasons = run(args.checkout, args.subset, False, workdir)
        flux, _ = run(args.checkout, args.subset, True, workdir)
    differ = sorted(k for k in set(host) | set(flux) if host.get(k) != flux.get(k))
    counts = {name: collections.Counter(result.values()) for name, result in
              (('MMAction2 alone', host), ('after import mmflux', flux))}
    lines = ['| run | passed | failed | error | skipped |', '|---|---|---|---|---|']
    lines += [f'| {name} | ' + ' | '.join(str(c[k]) for k in ('passed', 'failed', 'error', 'skipped'))
              + ' |' for name, c in counts.items()]
    lines.append(f'\nTests whose outcome differs: {len(differ)}')
    lines += [f'- `{k}`: {host.get(k)} -> {flux.get(k)}' for k in differ]
    by_reason = collections.Counter(host_reasons.values())
    lines.append('\nWhy tests fail in both runs (MMAction2 alone; count, first line of the message):')
    lines += [f'- {count} x `{reason}`' for reason, count in by_reason.most_common()]
    text = '\n'.join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(text + '\n')
    return 1 if differ else 0


if __name__ == '__main__':
    sys.exit(main())
