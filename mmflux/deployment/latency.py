"""Latency through an exported runtime: the factory behind ``--runtime onnxruntime|openvino``.

A latency plan should be measured with the runtime that will serve the model, so
each candidate grid is exported in memory exactly as
``tools/deployment/export.py`` would export it (same wrapper, same exporter; one
file for every budget, exported once per grid and reused), loaded into ONNX
Runtime or OpenVINO, and timed on one view at the candidate's budget. The files live in a
temporary folder that is removed once the returned call is garbage collected.
"""
import json
import os.path as osp
import tempfile
import weakref
from typing import Callable, Optional

import torch

from .export import budget_table_meta, export_onnx, onnx_to_openvino
from .exportable import ExportableRecognizer
from .runtime import RuntimeModel

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
