"""Latency plans measured through an exported runtime (``--runtime onnxruntime|openvino``)."""
import pytest
import torch

pytest.importorskip('onnxruntime', reason='deployment extra not installed (requirements/deploy.txt)')
pytest.importorskip('openvino', reason='deployment extra not installed (requirements/deploy.txt)')

from mmflux.deployment import build_recognizer  # noqa: E402
from mmflux.deployment import latency as exported_latency  # noqa: E402
from mmflux.deployment.latency import RUNTIMES, measure_latency  # noqa: E402
from conftest import (EXPORT_BUDGET as BUDGET, EXPORT_FRAMES as FRAMES,  # noqa: E402
                      EXPORT_SIDE as SIDE, export_fixture_cfg)


@pytest.fixture(scope='module')
def model():
    _, recognizer = build_recognizer(export_fixture_cfg(), None, FRAMES, SIDE, BUDGET)
    return recognizer.eval()


@pytest.mark.parametrize('runtime', ['onnxruntime', 'openvino'])
def test_latency_runs_the_exported_model(model, runtime, monkeypatch):
    """The call being timed is the exported graph (its outputs equal eager's), not eager PyTorch."""
    seen = {}
    real = exported_latency.RuntimeModel.__call__

    def spy(self, clips, budget=None):
        seen['backend'], seen['out'] = self.backend, real(self, clips, budget)
        return seen['out']
    monkeypatch.setattr(exported_latency.RuntimeModel, '__call__', spy)
    result = measure_latency(model, FRAMES, SIDE, BUDGET, runs=2, warmup=1, runtime=runtime)
    assert result['runs'] == 2 and 0 < result['min_ms'] <= result['median_ms']
    assert seen['backend'] == runtime
    logits, kept = seen['out']
    x = torch.randn(1, 3, FRAMES, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        eager, info = model.extract_feat(x, stage='head', budget=BUDGET)
    assert kept.shape == (1, info['num_tokens'])
    assert abs(logits - eager.numpy()).max() < 1e-4


def test_unknown_runtime_and_device_are_refused(model):
    assert {'pytorch', 'onnxruntime', 'openvino'} <= set(RUNTIMES)
    with pytest.raises(ValueError, match='not available'):
        measure_latency(model, FRAMES, SIDE, BUDGET, runtime='tensorrt')
    with pytest.raises(ValueError, match='measures on the CPU'):
        measure_latency(model, FRAMES, SIDE, BUDGET, runtime='onnxruntime', device='cuda')


class _CountingModel:
    """Stands in for a recognizer: counts the one-view calls."""

    def __init__(self):
        self.calls = 0

    def extract_feat(self, x, stage, budget):
        self.calls += 1


def test_eager_latency_runs_warmup_plus_runs_views():
    counting = _CountingModel()
    result = measure_latency(counting, frames=2, side=28, budget=8, runs=4, warmup=2)
    assert counting.calls == 6
    assert set(result) == {'median_ms', 'min_ms', 'p90_ms', 'runs'} and result['runs'] == 4
    assert 0 <= result['min_ms'] <= result['median_ms'] <= result['p90_ms']


def test_eager_latency_is_timed_by_the_harness(monkeypatch):
    """warmup + runs one-view calls; the statistics are the harness's (a fake 5 ms per call)."""
    from mmflux.utils import timing
    now, calls = [0.0], []

    def factory(model, frames, side, budget, device):
        def call():
            calls.append((frames, side, budget))
            now[0] += 0.005
        return call
    monkeypatch.setitem(RUNTIMES, 'fake', factory)
    monkeypatch.setattr(timing.time, 'perf_counter', lambda: now[0])
    monkeypatch.setattr(timing.time, 'process_time', lambda: now[0])
    result = measure_latency(None, 2, 28, 8, runs=4, warmup=2, runtime='fake')
    assert calls == [(2, 28, 8)] * 6
    assert result == dict(median_ms=pytest.approx(5.0), min_ms=pytest.approx(5.0),
                          p90_ms=pytest.approx(5.0), runs=4)
