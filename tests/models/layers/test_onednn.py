"""The oneDNN CPU-inference fast path: where it runs, and that it matches the eager ops.

Both branches are exercised on any CPU: the eager fallback is forced (a
monkeypatched CPU profile, ``disabled()``, ``MMFLUX_ONEDNN=0``); oneDNN bf16
kernels run only where this CPU has them (never assumed).
"""
import logging
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS

from conftest import REPO_ROOT, tiny_backbone_cfg
from mmflux.models.layers import onednn
from mmflux.utils.cpu_info import onednn_bf16_supported

pytestmark = pytest.mark.skipif(onednn._LINEAR_POINTWISE is None,
                                reason='oneDNN linear not available in this torch build')

FP32, BF16 = torch.float32, torch.bfloat16
needs_onednn_bf16 = pytest.mark.skipif(not onednn_bf16_supported(),
                                       reason='oneDNN has no bf16 kernels for this CPU')

# CPU profiles as cpu_info() reports them
ZEN2 = dict(model='AMD EPYC 7B12', vendor='AuthenticAMD', machine='x86_64', cores=2,
            capability='AVX2', onednn=True, onednn_bf16=False, avx512_bf16=False, amx=False,
            native_bf16=False)
SAPPHIRE_RAPIDS = dict(ZEN2, model='Intel(R) Xeon(R) Platinum 8480+', vendor='GenuineIntel',
                       capability='AVX512', onednn_bf16=True, avx512_bf16=True, amx=True,
                       native_bf16=True)
NO_AVX2 = dict(ZEN2, model='some CPU', capability='DEFAULT')


@pytest.fixture
def cpu_profile(monkeypatch):
    """Pretend to run on the given CPU (the per-process decision is redone)."""
    def use(info):
        monkeypatch.setattr(onednn, 'cpu_info', lambda: dict(info))
        onednn.fast_dtypes.cache_clear()
        onednn.fast_attention_dtypes.cache_clear()
    yield use
    onednn.fast_dtypes.cache_clear()
    onednn.fast_attention_dtypes.cache_clear()


@pytest.fixture
def fast_dtypes(monkeypatch):
    """Force the dtypes the fast path may use (linears and attention alike)."""
    def use(*dtypes):
        monkeypatch.setattr(onednn, 'fast_dtypes', lambda: frozenset(dtypes))
        monkeypatch.setattr(onednn, 'fast_attention_dtypes', lambda: frozenset(dtypes))
    return use


@pytest.fixture
def op_calls(monkeypatch):
    """dtypes of every oneDNN matmul call."""
    calls = []
    real = onednn._LINEAR_POINTWISE

    def spy(x, weight, *args):
        calls.append(x.dtype)
        return real(x, weight, *args)

    monkeypatch.setattr(onednn, '_LINEAR_POINTWISE', spy)
    return calls


def eager(fn):
    """Run ``fn`` with the fast path switched off."""
    with onednn.disabled():
        return fn()


def tiny_backbone():
    torch.manual_seed(0)
    return MODELS.build(tiny_backbone_cfg(arch=dict(pos_frames=8, pos_side=16),
                                          layer_scale_init_value=0.5)).eval()


# ------------------------------------------------------------------ the decision
@pytest.mark.parametrize('info, expected', [(ZEN2, {FP32}), (SAPPHIRE_RAPIDS, {FP32, BF16}),
                                            (NO_AVX2, set())])
def test_decision_per_cpu(cpu_profile, info, expected):
    cpu_profile(info)
    assert onednn.fast_dtypes() == expected
    x = torch.randn(2, 3)
    with torch.no_grad():
        assert onednn.onednn_dtype(x) == (FP32 if FP32 in expected else None)
        with torch.autocast('cpu', dtype=BF16):
            assert onednn.onednn_dtype(x) == (BF16 if BF16 in expected else None)
        assert onednn.onednn_dtype(x.bfloat16()) == (BF16 if BF16 in expected else None)
        assert onednn.onednn_dtype(x.double()) is None


@pytest.mark.parametrize('info, expected', [(ZEN2, {FP32}), (SAPPHIRE_RAPIDS, {BF16}),
                                            (NO_AVX2, set())])
def test_attention_decision_per_cpu(cpu_profile, op_calls, info, expected):
    """fp32 attention is blocked through oneDNN only off Intel (MKL's SDPA wins there)."""
    cpu_profile(info)
    assert onednn.fast_attention_dtypes() == expected
    q, k, v = (torch.randn(1, 2, 7, 8) for _ in range(3))
    with torch.no_grad():
        out = onednn.attention(q, k, v)
    assert (FP32 in op_calls) == (FP32 in expected)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v).transpose(1, 2),
                               atol=1e-5, rtol=1e-5)


def test_decision_is_logged_once_at_debug(cpu_profile, monkeypatch):
    logged = []
    monkeypatch.setattr(onednn, 'print_log',
                        lambda msg, logger=None, level=None: logged.append((msg, level)))
    cpu_profile(ZEN2)
    x = torch.randn(2, 3)
    with torch.no_grad():
        for _ in range(3):
            onednn.onednn_dtype(x)
            with torch.autocast('cpu', dtype=BF16):
                onednn.onednn_dtype(x)
    assert len(logged) == 1 and logged[0][1] == logging.DEBUG
    msg = logged[0][0]
    assert 'fp32 oneDNN' in msg and 'bf16 eager' in msg
    assert 'AMD EPYC 7B12' in msg and 'ISA AVX2' in msg


def test_fast_path_only_without_grad_and_outside_tracing(fast_dtypes):
    fast_dtypes(FP32)
    x = torch.randn(2, 3)
    assert onednn.onednn_dtype(x) is None  # grad enabled: eager ops (autograd)
    with torch.no_grad():
        assert onednn.onednn_dtype(x) == FP32
        with onednn.disabled():
            assert onednn.onednn_dtype(x) is None
            with onednn.disabled():
                assert onednn.onednn_dtype(x) is None
            assert onednn.onednn_dtype(x) is None
        assert onednn.onednn_dtype(x) == FP32


def test_traced_graph_has_no_onednn_ops(fast_dtypes):
    fast_dtypes(FP32)
    x, w, b = torch.randn(4, 8), torch.randn(16, 8), torch.randn(16)
    with torch.no_grad():
        traced = torch.jit.trace(lambda x: onednn.linear(x, w, b, gelu='tanh'), x)
    graph = str(traced.graph)
    assert 'mkldnn' not in graph and 'aten::linear' in graph
    torch.testing.assert_close(traced(x), F.gelu(F.linear(x, w, b), approximate='tanh'))


def test_env_switch_disables_the_fast_path():
    code = ('import torch; from mmflux.models.layers import onednn; '
            'assert onednn._LINEAR_POINTWISE is None; '
            'torch.set_grad_enabled(False); '
            'assert onednn.onednn_dtype(torch.randn(2, 3)) is None; print("eager")')
    env = dict(os.environ, MMFLUX_ONEDNN='0', PYTHONPATH=REPO_ROOT)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0 and 'eager' in result.stdout, result.stderr


# ------------------------------------------------------------- same numbers
@pytest.mark.parametrize('gelu', [None, 'tanh'])
def test_linear_matches_eager(fast_dtypes, op_calls, gelu):
    fast_dtypes(FP32)
    x, w, b = torch.randn(2, 37, 48), torch.randn(96, 48) * 0.1, torch.randn(96)
    with torch.no_grad():
        fast = onednn.linear(x, w, b, gelu=gelu)
        ref = eager(lambda: onednn.linear(x, w, b, gelu=gelu))
    assert op_calls == [FP32]  # one fused call on the fast path, none in eager
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('n', [5, 300])
def test_attention_matches_sdpa(fast_dtypes, monkeypatch, n):
    fast_dtypes(FP32)
    monkeypatch.setattr(onednn, '_MAX_SCORE_ELEMENTS', 64 * n)  # several row chunks
    q, k, v = (torch.randn(2, n, 3, 16).transpose(1, 2) for _ in range(3))  # (B, H, N, d) views
    with torch.no_grad():
        fast = onednn.attention(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
    assert fast.shape == (2, n, 3, 16)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('dtype', [FP32, pytest.param(BF16, marks=needs_onednn_bf16)])
def test_attention_weights_are_dense(fast_dtypes, monkeypatch, dtype):
    # a strided weight makes oneDNN ~1000x slower: every "weight" must be contiguous
    fast_dtypes(FP32, BF16)
    calls = []
    real = onednn._LINEAR_POINTWISE

    def checked(x, weight, *args):
        calls.append(weight.is_contiguous())
        return real(x, weight, *args)

    monkeypatch.setattr(onednn, '_LINEAR_POINTWISE', checked)
    q, k, v = (torch.randn(2, 9, 3, 16).transpose(1, 2) for _ in range(3))
    with torch.no_grad():
        onednn.attention(q.to(dtype), k.to(dtype), v)
    assert calls and all(calls)


def test_backbone_fp32_matches_eager(fast_dtypes, op_calls):
    fast_dtypes(FP32)
    model = tiny_backbone()
    x = torch.randn(2, 3, 4, 56, 56)
    with torch.inference_mode():
        fast = model(x, budget=32)
        assert op_calls and set(op_calls) == {FP32}
        ref = eager(lambda: model(x, budget=32))
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('fast', [pytest.param({FP32, BF16}, marks=needs_onednn_bf16, id='onednn'),
                                  pytest.param({FP32}, id='eager-bf16')])
def test_backbone_bf16_autocast(fast_dtypes, op_calls, fast):
    """bf16 autocast runs on oneDNN where it can, else eager: finite, close to fp32."""
    fast_dtypes(*fast)
    model = tiny_backbone()
    x = torch.randn(2, 3, 4, 56, 56)
    with torch.inference_mode():
        ref = eager(lambda: model(x, budget=32))
        del op_calls[:]
        with torch.autocast('cpu', dtype=BF16):
            low = model(x, budget=32)
            assert set(op_calls) == ({BF16} if BF16 in fast else set())
            low_eager = eager(lambda: model(x, budget=32))
    assert low.dtype == low_eager.dtype and torch.isfinite(low).all()
    torch.testing.assert_close(low, low_eager, atol=3e-2, rtol=3e-2)
    assert ((low.float() - ref).norm() / ref.norm()).item() < 2e-2


def test_avx2_only_cpu_runs_bf16_eager():
    """This CPU limited to AVX2 the way Zen 2 is (oneDNN then has no bf16 primitive)."""
    code = f'''
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope
import mmflux
from mmflux.models.layers import onednn
init_default_scope('mmaction')
assert torch.bfloat16 not in onednn.fast_dtypes(), onednn.fast_dtypes()
torch.manual_seed(0)
model = MODELS.build({tiny_backbone_cfg(arch=dict(pos_frames=8, pos_side=16))!r}).eval()
x = torch.randn(1, 3, 4, 56, 56)
with torch.inference_mode():
    ref = model(x, budget=32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = model(x, budget=32)
assert torch.isfinite(low).all()
print('rel', ((low.float() - ref).norm() / ref.norm()).item())
'''
    env = dict(os.environ, ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2',
               PYTHONPATH=REPO_ROOT)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    rel = float(result.stdout.split('rel')[-1])
    assert rel < 2e-2
