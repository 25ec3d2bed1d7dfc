"""Latency through an exported runtime: the factory behind ``--runtime onnxruntime|openvino``.

A latency plan should be measured with the runtime that will serve the model, so
each candidate (grid, budget) is exported in memory exactly as
``tools/deployment/export.py`` would export it (same wrapper, same exporter),
loaded into ONNX Runtime or OpenVINO, and timed on one view. The files live in a
temporary folder that is removed once the returned call is garbage collected.
"""
import json
import os.path as osp
import tempfile
import weakref
from typing import Callable, Optional

import torch

from .export import export_onnx, onnx_to_openvino
from .exportable import ExportableRecognizer
from .runtime import RuntimeModel
from ..evaluation.latency import register_runtime

BACKENDS = ('onnxruntime', 'openvino')


def exported_forward(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                     backend: str = 'onnxruntime') -> Callable[[], None]:
    """A no-argument call running one (1, 3, frames, side, side) view in ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f'backend {backend!r}: use one of {BACKENDS}.')
    model.eval()
    module = ExportableRecognizer(model, frames, side, budget).eval()
    example = torch.randn(1, 3, frames, side, side, generator=torch.Generator().manual_seed(0))
    folder = tempfile.TemporaryDirectory(prefix='mmflux_latency_')
    path = osp.join(folder.name, 'model.onnx')
    export_onnx(module, example, path)
    if backend == 'openvino':
        onnx_path, path = path, osp.join(folder.name, 'model.xml')
        onnx_to_openvino(onnx_path, path)
    with open(path + '.json', 'w') as f:  # the sidecar RuntimeModel reads
        json.dump(dict(grid=[frames, side], budget=budget, head=module.head,
                       num_tokens=module.num_tokens), f)
    runtime = RuntimeModel(path, num_threads=torch.get_num_threads())
    clips = example.numpy()

    def forward() -> None:
        runtime(clips)

    weakref.finalize(forward, folder.cleanup)
    return forward


# importing this module registers both backends as runtimes of
# mmflux.evaluation.latency.measure_latency (the evaluation layer does not import this one)
def _runtime_factory(backend: str) -> Callable:
    """``measure_latency``'s factory signature for one backend (CPU only)."""

    def factory(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                device: str = 'cpu') -> Callable[[], None]:
        if device != 'cpu':
            raise ValueError(f'--runtime {backend} measures on the CPU; drop --device {device}.')
        return exported_forward(model, frames, side, budget, backend)
    return factory


for _backend in BACKENDS:
    register_runtime(_backend, _runtime_factory(_backend))
