"""Latency of one view on this machine, per setting, for latency-aware plans.

Why measured, not derived from GMACs: at small budgets attention, the selector
and Python overhead do not scale with MACs, and a deployment target is in
milliseconds. Batch 1, one view, median of ``runs`` after ``warmup`` runs
(:mod:`mmflux.utils.timing`), with the runtime that will run the model: eager
PyTorch here; the exported runtimes (``onnxruntime``, ``openvino``) are
registered into :data:`RUNTIMES` by :mod:`mmflux.deployment.latency`, which sits
above this layer.
"""
from typing import Callable, Dict, Optional

import torch

from mmflux.utils.cpu_info import machine_info as _machine_info
from mmflux.utils.timing import time_call


def eager_pytorch(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                  device: str = 'cpu') -> Callable[[], None]:
    """A no-argument call that runs one view through backbone and head."""
    x = torch.randn(1, 3, frames, side, side, device=device)

    def forward() -> None:
        with torch.no_grad():
            model.extract_feat(x, stage='head', budget=budget)
    return forward


#: runtime name -> factory ``(model, frames, side, budget, device) -> one-view call``
RUNTIMES: Dict[str, Callable] = {'pytorch': eager_pytorch}

#: runtimes that another module registers (named in the error when it was not imported)
_REGISTERED_BY = {'onnxruntime': 'mmflux.deployment.latency',
                  'openvino': 'mmflux.deployment.latency'}


def register_runtime(name: str, factory: Callable) -> None:
    """Make ``runtime=name`` available to :func:`measure_latency` (and the tools' choices)."""
    RUNTIMES[name] = factory


def machine_info(runtime: str = 'pytorch', device: str = 'cpu') -> Dict:
    """What a latency was measured on (:func:`mmflux.utils.cpu_info.machine_info`) and with
    which runtime; ``torch_threads`` repeats ``threads`` under the key plan files carry."""
    info = _machine_info(device)
    info.update(runtime=runtime, torch_threads=info['threads'])
    return info


def measure_latency(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                    runs: int = 10, warmup: int = 3, runtime: str = 'pytorch',
                    device: str = 'cpu') -> Dict:
    """``median_ms``, ``min_ms``, ``p90_ms``, ``runs`` of one view at a setting (batch 1)."""
    if runtime not in RUNTIMES:
        hint = (f'; import {_REGISTERED_BY[runtime]} to register it' if runtime in _REGISTERED_BY
                else '')
        raise ValueError(f'runtime {runtime!r} is not available; known: {sorted(RUNTIMES)}{hint}.')
    call = RUNTIMES[runtime](model, frames, side, budget, device)
    timing = time_call(call, warmup=warmup, repeats=runs, device=device)
    return dict(median_ms=timing.median_ms, min_ms=timing.min_ms, p90_ms=timing.percentile(90),
                runs=runs)
