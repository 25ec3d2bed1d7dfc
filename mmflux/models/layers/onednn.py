"""CPU inference fast paths: linear layers and attention through oneDNN.

PyTorch runs fp32 ``F.linear`` / ``matmul`` on CPU through its BLAS (MKL), and the
fused CPU ``scaled_dot_product_attention`` kernel through the same BLAS (fp32) or
a generic bf16 GEMM. oneDNN's matmul primitives (``torch.ops.mkldnn.
_linear_pointwise``, the op TorchInductor uses for frozen CPU linears) are often
faster and fuse the bias and GELU. They have no autograd formula, so the fast
path is taken only when no gradient is recorded, on CPU, in fp32 or bf16 (incl.
bf16 autocast, whose casts are reproduced); everything else takes the eager ops.
Results match the eager ops to fp32 / bf16 rounding (different summation order).

Where it runs is decided in ONE place, :func:`onednn_dtype` (the per-CPU part
once per process by :func:`fast_dtypes`, logged at debug level):

* bf16 only where oneDNN has bf16 kernels (``torch.ops.mkldnn.
  _is_mkldnn_bf16_supported()``: AVX-512 and newer). On AVX2-only CPUs (AMD EPYC
  Zen 2) oneDNN cannot create a bf16 primitive at all ("could not create a
  primitive descriptor for the inner product forward propagation primitive"),
  so bf16 there takes the eager ops (slow generic kernels, but correct).
* fp32 on x86 CPUs with AVX2 or AVX-512 (``torch.backends.cpu.
  get_cpu_capability()``), where oneDNN's JIT matmul was measured at least as
  fast as MKL's SGEMM and the fused bias+GELU saves a pass over the MLP hidden
  activations: AMD EPYC with MKL, about 2x (MKL's SGEMM runs at about half of
  oneDNN's speed there); Intel Xeon (AVX512, AVX512_BF16, AMX; 2 logical cores
  shared with other jobs; torch 2.14.1), ``F.linear`` vs ``_linear_pointwise``,
  best of 40 interleaved calls, ViT-S linears on 2049 rows: qkv 384->1152 1.29x,
  proj 384->384 4.3x (noisy), fc1 384->1536 + tanh-GELU 3.4x, fc2 1536->384 1.09x,
  the four together 2.2x; 4098 rows: 1.33x / 1.01x / 3.1x / 1.02x, 1.8x; the same
  CPU limited to AVX2 (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
  MKL_ENABLE_INSTRUCTIONS=AVX2``) 1.6x. Other CPUs (no AVX2, ARM: not measured)
  take the eager ops. The rule is static, not a timing calibration, so a model
  gives the same numbers in every process on a machine.
* never while tracing or exporting (``torch.jit`` tracing, ONNX export,
  ``torch.compile`` / ``torch.export``): exported graphs must not contain
  oneDNN private ops; nor inside :func:`disabled`.

Set ``MMFLUX_ONEDNN=0`` to disable the fast path for the whole process.
"""
import contextlib
import functools
import logging
import os
import threading
from typing import FrozenSet, Iterator, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import print_log

from mmflux.utils.cpu_info import cpu_info, describe_cpu

_LINEAR_POINTWISE = None
if torch.backends.mkldnn.is_available() and os.environ.get('MMFLUX_ONEDNN', '1') != '0':
    _LINEAR_POINTWISE = getattr(getattr(torch.ops, 'mkldnn', None), '_linear_pointwise', None)

# query rows per attention chunk: keeps one head's score block (rows x N) small
_MAX_SCORE_ELEMENTS = 1 << 20
# ATen vector ISAs (get_cpu_capability()) on which oneDNN fp32 matmul is used
_FP32_CAPABILITIES = ('AVX2', 'AVX512')

_local = threading.local()


@functools.lru_cache(maxsize=None)
def fast_dtypes() -> FrozenSet[torch.dtype]:
    """dtypes oneDNN runs the fast path in on this CPU (decided once, logged)."""
    info = cpu_info()
    dtypes = set()
    if info['capability'] in _FP32_CAPABILITIES:
        dtypes.add(torch.float32)
    if info['onednn_bf16']:
        dtypes.add(torch.bfloat16)
    if _LINEAR_POINTWISE is None:
        state = ('off (MMFLUX_ONEDNN=0)' if os.environ.get('MMFLUX_ONEDNN', '1') == '0'
                 else 'off (no oneDNN linear in this torch build)')
    else:
        state = ', '.join(f"{name} {'oneDNN' if dt in dtypes else 'eager'}"
                          for name, dt in (('fp32', torch.float32), ('bf16', torch.bfloat16)))
    print_log(f'mmflux CPU inference fast path: {state}; {describe_cpu(info)}',
              logger='current', level=logging.DEBUG)
    return frozenset(dtypes)


@functools.lru_cache(maxsize=None)
def fast_attention_dtypes() -> FrozenSet[torch.dtype]:
    """dtypes in which attention runs blocked through oneDNN instead of SDPA (decided once).

    fp32 only off Intel CPUs: there the fused SDPA kernel's BLAS is MKL, which runs
    at about half speed on AMD EPYC; on Intel it is the faster one. Measured on an
    Intel Xeon (AVX-512, AMX, 2 cores, quiet), FluxViT-S 8x224 batch 1 fp32, median
    of 5, two rounds: eager 861 / 933 ms, oneDNN linears + blocked attention 1046 /
    1001 ms, oneDNN linears + SDPA 830 / 783 ms. bf16 follows :func:`fast_dtypes`.
    """
    dtypes = set(fast_dtypes())
    if cpu_info()['vendor'] == 'GenuineIntel':
        dtypes.discard(torch.float32)
    print_log(f'mmflux CPU attention: blocked oneDNN for {sorted(str(d) for d in dtypes) or "none"}, '
              'SDPA otherwise', logger='current', level=logging.DEBUG)
    return frozenset(dtypes)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Use the eager ops inside this block (this thread), e.g. around an export."""
    depth = getattr(_local, 'disabled', 0)
    _local.disabled = depth + 1
    try:
        yield
    finally:
        _local.disabled = depth


def _tracer_checks() -> tuple:
    import torch.fx._symbolic_trace as fx_trace
    checks = [torch.jit.is_tracing, torch.onnx.is_in_onnx_export,
              getattr(getattr(torch, 'compiler', None), 'is_compiling', None),
              getattr(fx_trace, 'is_fx_symbolic_tracing', None)]
    return tuple(check for check in checks if check is not None)


_TRACER_CHECKS = _tracer_checks()


def _tracing() -> bool:
    """True while a tracer / exporter / compiler records the ops."""
    return any(check() for check in _TRACER_CHECKS)


def onednn_dtype(x: torch.Tensor) -> Optional[torch.dtype]:
    """dtype the oneDNN fast path computes in for ``x``, or None (use eager ops).

    The single decision point of the fast path (see the module docstring).
    """
    if (_LINEAR_POINTWISE is None or x.device.type != 'cpu' or torch.is_grad_enabled()
            or getattr(_local, 'disabled', 0) or _tracing()):
        return None
    if torch.is_autocast_enabled('cpu'):
        dtype = torch.get_autocast_dtype('cpu')
    else:
        dtype = x.dtype
    return dtype if dtype in fast_dtypes() else None


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
    if dtype is not None and dtype not in fast_attention_dtypes():
        dtype = None
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
