"""mmflux.evaluation.latency: eager latency through the one timing harness; runtimes registered from above."""
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from mmflux.evaluation import latency


class CountingModel:
    """Stands in for a recognizer: counts the one-view calls and their budgets."""

    def __init__(self):
        self.calls = []

    def extract_feat(self, x, stage, budget):
        self.calls.append((tuple(x.shape), stage, budget))


def test_eager_latency_runs_warmup_plus_runs_views():
    model = CountingModel()
    result = latency.measure_latency(model, frames=2, side=28, budget=8, runs=4, warmup=2)
    assert model.calls == [((1, 3, 2, 28, 28), 'head', 8)] * 6
    assert set(result) == {'median_ms', 'min_ms', 'p90_ms', 'runs'} and result['runs'] == 4
    assert 0 <= result['min_ms'] <= result['median_ms'] <= result['p90_ms']


def test_machine_info_names_the_runtime_and_threads():
    info = latency.machine_info('pytorch')
    assert info['runtime'] == 'pytorch' and info['torch_threads'] == info['threads'] >= 1
    assert info['cpu'] and 'ISA' in info['cpu_line']


def test_exported_runtimes_come_from_the_deployment_layer():
    """Importing evaluation does not import deployment; an unregistered runtime says where it lives."""
    code = ('import sys, mmflux.evaluation.latency as lat; '
            'print(sorted(lat.RUNTIMES), any(m.startswith("mmflux.deployment") for m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120,
                         env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split('\n')[0] == "['pytorch'] False"
    if 'onnxruntime' not in latency.RUNTIMES:
        with pytest.raises(ValueError, match='import mmflux.deployment.latency'):
            latency.measure_latency(CountingModel(), 2, 28, 8, runtime='onnxruntime')
