"""The oneDNN CPU-inference fast path matches the eager ops."""
import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS

from mmflux.models.layers import onednn

pytestmark = pytest.mark.skipif(onednn._LINEAR_POINTWISE is None,
                                reason='oneDNN linear not available in this torch build')


def eager(fn):
    """Run ``fn`` with the fast path switched off."""
    saved = onednn._LINEAR_POINTWISE
    onednn._LINEAR_POINTWISE = None
    try:
        return fn()
    finally:
        onednn._LINEAR_POINTWISE = saved


@pytest.mark.parametrize('gelu', [None, 'tanh'])
def test_linear_matches_eager(gelu):
    x, w, b = torch.randn(2, 37, 48), torch.randn(96, 48) * 0.1, torch.randn(96)
    with torch.no_grad():
        fast = onednn.linear(x, w, b, gelu=gelu)
        ref = eager(lambda: onednn.linear(x, w, b, gelu=gelu))
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('n', [5, 300])
def test_attention_matches_sdpa(monkeypatch, n):
    monkeypatch.setattr(onednn, '_MAX_SCORE_ELEMENTS', 64 * n)  # several row chunks
    q, k, v = (torch.randn(2, n, 3, 16).transpose(1, 2) for _ in range(3))  # (B, H, N, d) views
    with torch.no_grad():
        fast = onednn.attention(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
    assert fast.shape == (2, n, 3, 16)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


def test_attention_weights_are_dense(monkeypatch):
    # a strided weight makes oneDNN ~1000x slower: every "weight" must be contiguous
    calls = []
    real = onednn._LINEAR_POINTWISE

    def checked(x, weight, *args):
        calls.append(weight.is_contiguous())
        return real(x, weight, *args)

    monkeypatch.setattr(onednn, '_LINEAR_POINTWISE', checked)
    for dtype in (torch.float32, torch.bfloat16):
        q, k, v = (torch.randn(2, 9, 3, 16).transpose(1, 2) for _ in range(3))
        with torch.no_grad():
            onednn.attention(q, k.to(dtype), v)
    assert calls and all(calls)


def test_fast_path_only_without_grad():
    x = torch.randn(2, 3)
    assert onednn.onednn_dtype(x) is None  # grad enabled: eager ops (autograd)
    with torch.no_grad():
        assert onednn.onednn_dtype(x) == torch.float32
        assert onednn.onednn_dtype(x.double()) is None
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert onednn.onednn_dtype(x) == torch.bfloat16


@pytest.mark.parametrize('autocast', [False, True])
def test_backbone_matches_eager(autocast):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='FluxViT', arch=dict(embed_dims=64, depth=2, num_heads=2),
                              layer_scale_init_value=0.5)).eval()
    x = torch.randn(2, 3, 4, 56, 56)
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        fast = model(x, budget=32)
        ref = eager(lambda: model(x, budget=32))
    tol = 3e-2 if autocast else 1e-5
    assert fast.dtype == ref.dtype
    torch.testing.assert_close(fast, ref, atol=tol, rtol=tol)
