"""CPU inference fast paths: linear layers and attention through oneDNN.

PyTorch runs fp32 ``F.linear`` / ``matmul`` on CPU through its BLAS (MKL), and the
fused CPU ``scaled_dot_product_attention`` kernel through the same BLAS (fp32) or
a generic bf16 GEMM. On CPUs where that BLAS is not the fastest GEMM (measured:
AMD EPYC with MKL, whose fp32 SGEMM runs at about half of oneDNN's speed; the bf16
SDPA kernel without AMX), oneDNN's matmul primitives (``torch.ops.mkldnn.
_linear_pointwise``, the op TorchInductor uses for frozen CPU linears) are
faster. They have no autograd formula, so the fast path is taken only when no
gradient is recorded, on CPU, in fp32 or bf16 (incl. bf16 autocast, whose casts
are reproduced); everything else takes the eager ops. Results match the eager ops
to fp32 / bf16 rounding (different summation order).

Set ``MMFLUX_ONEDNN=0`` to disable the fast path.
"""
import os
from typing import Optional

import torch
import torch.nn.functional as F

_LINEAR_POINTWISE = None
if torch.backends.mkldnn.is_available() and os.environ.get('MMFLUX_ONEDNN', '1') != '0':
    _LINEAR_POINTWISE = getattr(getattr(torch.ops, 'mkldnn', None), '_linear_pointwise', None)

# query rows per attention chunk: keeps one head's score block (rows x N) small
_MAX_SCORE_ELEMENTS = 1 << 20


def _exporting() -> bool:
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())


def onednn_dtype(x: torch.Tensor) -> Optional[torch.dtype]:
    """dtype the oneDNN fast path computes in for ``x``, or None (use eager ops)."""
    if _LINEAR_POINTWISE is None or x.device.type != 'cpu' or torch.is_grad_enabled():
        return None
    if _exporting():  # exporters and compilers get the plain ops (private oneDNN ops do not export)
        return None
    if torch.is_autocast_enabled('cpu'):
        dtype = torch.get_autocast_dtype('cpu')
        return dtype if dtype == torch.bfloat16 else None
    return x.dtype if x.dtype in (torch.float32, torch.bfloat16) else None


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
           gelu: Optional[str] = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, then ``F.gelu(approximate=gelu)`` if ``gelu``.

    On the fast path the bias and the GELU are fused into the oneDNN matmul.
    """
    dtype = onednn_dtype(x)
    if dtype is None:
        y = F.linear(x, weight, bias)
        return F.gelu(y, approximate=gelu) if gelu is not None else y
    bias = bias.to(dtype) if bias is not None else None
    if gelu is None:
        return _LINEAR_POINTWISE(x.to(dtype), weight.to(dtype), bias, 'none', [], None)
    return _LINEAR_POINTWISE(x.to(dtype), weight.to(dtype), bias, 'gelu', [], gelu)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for (B, H, N, d) inputs; returns (B, N, H, d).

    Fast path: one head (and up to ``_MAX_SCORE_ELEMENTS / N`` query rows) at a
    time, scores and output through oneDNN matmuls, softmax in between. Otherwise
    ``F.scaled_dot_product_attention``.
    """
    dtype = onednn_dtype(q)
    if dtype is None:
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype))
        return out.transpose(1, 2)
    B, H, N, d = q.shape
    query = q.new_empty(q.shape, dtype=dtype)
    torch.mul(q, d**-0.5, out=query)  # scaled, cast and made head-major in one pass
    # oneDNN needs dense "weights" (a strided one is ~1000x slower); .to() alone keeps
    # the strides when the dtype does not change, hence .contiguous()
    key = k.to(dtype, memory_format=torch.contiguous_format).contiguous()  # (B, H, Nk, d)
    value_t = v.transpose(-1, -2).to(dtype, memory_format=torch.contiguous_format).contiguous()
    out = query.new_empty(B, N, H, d)
    rows = max(1, min(N, _MAX_SCORE_ELEMENTS // max(key.shape[2], 1)))
    for b in range(B):
        for h in range(H):
            for start in range(0, N, rows):
                scores = _LINEAR_POINTWISE(query[b, h, start:start + rows], key[b, h], None,
                                           'none', [], None)
                probs = torch.softmax(scores, dim=-1)
                out[b, start:start + rows, h] = _LINEAR_POINTWISE(probs, value_t[b, h], None,
                                                                  'none', [], None)
    return out
