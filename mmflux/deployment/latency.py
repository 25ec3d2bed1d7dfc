"""Latency through an exported runtime: the factory behind ``--runtime onnxruntime|openvino``.

A latency plan should be measured with the runtime that will serve the model, so
each candidate grid is exported in memory exactly as
``tools/deployment/export.py`` would export it (same wrapper, same exporter; one
file for every budget, exported once per grid and reused), loaded into ONNX
Runtime or OpenVINO, and timed on one view at the candidate's budget. The files live in a
temporary folder that is removed once the returned call is garbage collected.
:func:`measure_latency` times one view (batch 1, median of ``runs`` after
``warmup`` runs) with any of :data:`RUNTIMES`.
"""
import json
import os.path as osp
import tempfile
import weakref
from typing import Callable, Dict, Optional

import torch

from ..evaluation.latency import eager_pytorch
from .export import budget_table_meta, export_onnx, onnx_to_openvino
from .exportable import ExportableRecognizer
from .runtime import RuntimeModel
from ..utils.timing import time_call

BACKENDS = ('onnxruntime', 'openvino')


_EXPORTED = weakref.WeakKeyDictionary()  # model -> {(frames, side, backend): RuntimeModel}


def _runtime_for_grid(model: torch.nn.Module, frames: int, side: int, backend: str) -> RuntimeModel:
    cache = _EXPORTED.setdefault(model, {})
    key = (frames, side, backend)
    if key not in cache:
        module = ExportableRecognizer(model, frames, side).eval()
        example = torch.randn(1, 3, frames, side, side, generator=torch.Generator().manual_seed(0))
        folder = tempfile.TemporaryDirectory(prefix='mmflux_latency_')
        path = osp.join(folder.name, 'model.onnx')
        export_onnx(module, example, path)
        if backend == 'openvino':
            onnx_path, path = path, osp.join(folder.name, 'model.xml')
            onnx_to_openvino(onnx_path, path)
        with open(path + '.json', 'w') as f:  # the sidecar RuntimeModel reads
            json.dump(dict(grid=[frames, side], budget=None, **budget_table_meta(module)), f)
        runtime = RuntimeModel(path, num_threads=torch.get_num_threads())
        weakref.finalize(runtime, folder.cleanup)
        cache[key] = runtime
    return cache[key]


def exported_forward(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                     backend: str = 'onnxruntime') -> Callable[[], None]:
    """A no-argument call running one (1, 3, frames, side, side) view at ``budget`` in ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f'backend {backend!r}: use one of {BACKENDS}.')
    model.eval()
    runtime = _runtime_for_grid(model, frames, side, backend)
    clips = torch.randn(1, 3, frames, side, side, generator=torch.Generator().manual_seed(0)).numpy()

    def forward() -> None:
        runtime(clips, budget)

    return forward


def _exported(backend: str) -> Callable:
    """Factory of a one-view call in an exported runtime (same signature as eager)."""

    def factory(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                device: str = 'cpu') -> Callable[[], None]:
        if device != 'cpu':
            raise ValueError(f'--runtime {backend} measures on the CPU; drop --device {device}.')
        return exported_forward(model, frames, side, budget, backend)
    return factory


#: runtime name -> factory of a one-view forward call (same signature for all):
#: eager PyTorch, or the model exported at that grid (one file, every budget)
RUNTIMES: Dict[str, Callable] = {'pytorch': eager_pytorch,
                                 'onnxruntime': _exported('onnxruntime'),
                                 'openvino': _exported('openvino')}


def measure_latency(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                    runs: int = 10, warmup: int = 3, runtime: str = 'pytorch',
                    device: str = 'cpu') -> Dict:
    """``median_ms``, ``min_ms``, ``p90_ms``, ``runs`` of one view at a setting (batch 1)."""
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime {runtime!r} is not available; known: {sorted(RUNTIMES)}.')
    call = RUNTIMES[runtime](model, frames, side, budget, device)
    timing = time_call(call, warmup=warmup, repeats=runs, device=device)
    return dict(median_ms=timing.median_ms, min_ms=timing.min_ms, p90_ms=timing.percentile(90),
                runs=runs)
