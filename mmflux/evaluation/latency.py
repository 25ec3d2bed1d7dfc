"""Latency of one view on this machine, per setting, for latency-aware plans.

Why measured, not derived from GMACs: at small budgets attention, the selector
and Python overhead do not scale with MACs, and a deployment target is in
milliseconds. This module holds the eager PyTorch call and the machine facts;
the runtimes (eager or exported) and the timing loop live in
:mod:`mmflux.deployment.latency`, which sits above evaluation.
"""
import platform
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
