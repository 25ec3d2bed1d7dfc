"""Latency of one view on this machine, per setting, for latency-aware plans.

Why measured, not derived from GMACs: at small budgets attention, the selector
and Python overhead do not scale with MACs, and a deployment target is in
milliseconds. Batch 1, one view, median of ``runs`` after ``warmup`` runs, with
the runtime that will run the model (eager PyTorch by default; exported
runtimes plug into :data:`RUNTIMES`).
"""
import platform
import statistics
import time
from typing import Callable, Dict, Optional

import torch


def eager_pytorch(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                  device: str = 'cpu') -> Callable[[], None]:
    """A no-argument call that runs one view through backbone and head."""
    x = torch.randn(1, 3, frames, side, side, device=device)

    def forward() -> None:
        with torch.no_grad():
            model.extract_feat(x, stage='head', budget=budget)
    return forward


def _exported(backend: str) -> Callable:
    """Factory for an exported runtime (imported lazily: the runtimes are optional)."""

    def factory(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                device: str = 'cpu') -> Callable[[], None]:
        if device != 'cpu':
            raise ValueError(f'--runtime {backend} measures on the CPU; drop --device {device}.')
        from mmflux.deployment.latency import exported_forward
        return exported_forward(model, frames, side, budget, backend)
    return factory


#: runtime name -> factory of a one-view forward call (same signature for all):
#: eager PyTorch, or the model exported at that grid and budget (mmflux.deployment)
RUNTIMES: Dict[str, Callable] = {'pytorch': eager_pytorch,
                                 'onnxruntime': _exported('onnxruntime'),
                                 'openvino': _exported('openvino')}


def machine_info(runtime: str = 'pytorch', device: str = 'cpu') -> Dict:
    """What a latency was measured on: CPU model, threads, runtime, versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return dict(cpu=cpu, torch_threads=torch.get_num_threads(), runtime=runtime,
                device=device, torch=torch.__version__, python=platform.python_version())


def measure_latency(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                    runs: int = 10, warmup: int = 3, runtime: str = 'pytorch',
                    device: str = 'cpu') -> Dict:
    """``median_ms``, ``min_ms``, ``runs`` of one view at a setting (batch 1)."""
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime {runtime!r} is not available; known: {sorted(RUNTIMES)}.')
    call = RUNTIMES[runtime](model, frames, side, budget, device)
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return dict(median_ms=statistics.median(times), min_ms=min(times), runs=runs)
