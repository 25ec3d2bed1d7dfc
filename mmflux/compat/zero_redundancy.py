"""ZeRO-1 (mmengine's ZeroRedundancyOptimizer) with checkpoints that can be saved.

Upstream (mmengine 0.10.7, since ZeRO support in open-mmlab/mmengine pull 551):
``ZeroRedundancyOptimizer.state_dict`` calls ``consolidate_state_dict``, a
collective in which every rank must take part, but ``Runner.save_checkpoint`` is
``master_only``: rank 0 alone enters the collective and the run hangs or breaks
its process group at the first checkpoint.

Fix, scoped: :class:`mmflux.engine.FluxRunner` saves inside
:func:`zero_state_gathered`, which runs the same steps on every rank: gather the
shards on rank 0, let ``state_dict`` return them (rank 0) or ``{}`` (other ranks)
without a second collective, and restore the optimizer's own ``state_dict``.
Neither mmengine's classes nor plain runners are changed.
"""
import contextlib
import types
from typing import Iterator, List

from mmengine.config import Config


def use_zero_redundancy(cfg: Config) -> Config:
    """ZeRO stage 1: the config's optimizer wrapped in mmengine's ZeroRedundancyOptimizer."""
    optimizer = dict(cfg.optim_wrapper.optimizer)
    if optimizer['type'] != 'ZeroRedundancyOptimizer':
        optimizer['optimizer_type'] = optimizer.pop('type')
        optimizer['type'] = 'ZeroRedundancyOptimizer'
    cfg.optim_wrapper.optimizer = optimizer
    return cfg


def zero_optimizers(optim_wrapper) -> List:
    """The ZeroRedundancyOptimizers inside an optim wrapper (or a dict of wrappers)."""
    try:
        from torch.distributed.optim import ZeroRedundancyOptimizer
    except ImportError:  # torch built without distributed
        return []
    if optim_wrapper is None:
        return []
    inner = getattr(optim_wrapper, 'optim_wrappers', None)
    wrappers = inner.values() if isinstance(inner, dict) else [optim_wrapper]
    return [w.optimizer for w in wrappers
            if isinstance(getattr(w, 'optimizer', None), ZeroRedundancyOptimizer)]


def _gathered_state_dict(self) -> dict:
    """``state_dict`` after a consolidation: the gathered state on rank 0, ``{}`` elsewhere."""
    from mmengine.dist import is_main_process
    from torch.distributed.optim import ZeroRedundancyOptimizer
    return ZeroRedundancyOptimizer.state_dict(self) if is_main_process() else {}


@contextlib.contextmanager
def zero_state_gathered(optim_wrapper) -> Iterator[None]:
    """Within the block, ZeRO optimizers' ``state_dict`` needs no collective.

    Must be entered on every rank (it gathers the shards on rank 0 on entry).
    """
    optimizers = zero_optimizers(optim_wrapper)
    for optimizer in optimizers:
        optimizer.consolidate_state_dict(to=0)
        optimizer.state_dict = types.MethodType(_gathered_state_dict, optimizer)
    try:
        yield
    finally:
        for optimizer in optimizers:
            del optimizer.state_dict  # the class's method again, on every rank
