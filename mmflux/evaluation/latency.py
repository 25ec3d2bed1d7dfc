"""Latency of one view on this machine, per setting, for latency-aware plans.

Why measured, not derived from GMACs: at small budgets attention, the selector
and Python overhead do not scale with MACs, and a deployment target is in
milliseconds. This module holds the eager PyTorch call and the machine facts;
the runtimes (eager or exported) and the timing loop live in
:mod:`mmflux.deployment.latency`, which sits above evaluation.
"""
from typing import Callable, Dict, Optional

import torch

from mmflux.utils.cpu_info import machine_info as _machine_info


def eager_pytorch(model: torch.nn.Module, frames: int, side: int, budget: Optional[int],
                  device: str = 'cpu') -> Callable[[], None]:
    """A no-argument call that runs one view through backbone and head."""
    x = torch.randn(1, 3, frames, side, side, device=device)

    def forward() -> None:
        with torch.no_grad():
            model.extract_feat(x, stage='head', budget=budget)
    return forward


def machine_info(runtime: str = 'pytorch', device: str = 'cpu') -> Dict:
    """What a latency was measured on (:func:`mmflux.utils.cpu_info.machine_info`) and with
    which runtime; ``torch_threads`` repeats ``threads`` under the key plan files carry."""
    info = _machine_info(device)
    info.update(runtime=runtime, torch_threads=info['threads'])
    return info
