"""Cosine annealing that ends with the training, whatever ``max_epochs`` is.

Give no ``end`` (and no ``T_max``): mmengine's runner then sets ``end`` to the
train loop's ``max_epochs`` (``max_iters`` for iteration schedules) and the
cosine's ``T_max`` defaults to ``end - begin``, so an overridden
``train_cfg.max_epochs`` (command line, ``tools/replicate_flux.py``) anneals over
the run it gets. The one addition to mmengine's ``CosineAnnealingLR``: a run that
ends before ``begin`` (e.g. 1 epoch after a 1-epoch warmup) has no cosine phase
instead of mmengine's ``end should be larger than begin`` error.

Usage::

    dict(type='CosineToEndLR', eta_min=1e-5, by_epoch=True, begin=warmup_epochs,
         convert_to_iter_based=True)
"""
from mmengine.logging import print_log
from mmengine.optim import CosineAnnealingLR

from mmaction.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class CosineToEndLR(CosineAnnealingLR):
    """mmengine's ``CosineAnnealingLR``; empty (never active) when ``end <= begin``."""

    def __init__(self, optimizer, *args, begin: int = 0, end: int = 10**9, **kwargs) -> None:
        if end <= begin:
            print_log(f'CosineToEndLR: the run ends at {end}, before the cosine begins '
                      f'({begin}); no cosine phase.', logger='current')
            end = begin + 1  # active only after the last step
        super().__init__(optimizer, *args, begin=begin, end=end, **kwargs)
