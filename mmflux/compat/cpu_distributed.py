"""Distributed runs on machines without CUDA (torchrun + gloo on CPUs).

Upstream (mmengine 0.10.7; no upstream issue found): ``init_dist(launcher='pytorch')``
calls ``torch.cuda.set_device(local_rank)`` before ``init_process_group``, which
raises on a machine without CUDA; the runner also defaults to the NCCL backend and
wraps the model in DDP with ``device_ids=[local_rank]``, neither of which exists
without CUDA.

Fix, scoped: :func:`init_dist_without_cuda` is used by
:class:`mmflux.engine.FluxRunner` while it sets up its environment, and
:func:`adapt_distributed_cfg` by mmflux's tools/train.py and tools/test.py. Plain
mmengine runners and other tools are left as they are.
"""
import contextlib
from typing import Iterator

import torch
from mmengine.config import Config


@contextlib.contextmanager
def init_dist_without_cuda() -> Iterator[None]:
    """Within the block, ``torch.cuda.set_device`` is a no-op if CUDA is unavailable."""
    if torch.cuda.is_available():
        yield
        return
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda *args, **kwargs: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def adapt_distributed_cfg(cfg: Config, launcher: str) -> Config:
    """CPU-only distributed runs: gloo backend and a DDP wrapper without device ids.

    Nothing changes when CUDA is available or the run is not distributed.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    env_cfg = dict(cfg.get('env_cfg') or {})  # Config.setdefault returns a copy: set whole keys
    env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg') or {}, backend='gloo')
    cfg.env_cfg = env_cfg
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper.update(device_ids=None, broadcast_buffers=False)
    cfg.model_wrapper_cfg = wrapper
    return cfg
