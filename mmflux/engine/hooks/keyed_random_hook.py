"""Per-iteration random streams keyed by (seed, iteration): exact resume, any workers.

The per-sample augmentation is keyed by (seed, epoch, sample index) in the
dataset (see :mod:`mmflux.datasets.flux_video_dataset`). The draws made in the
main process during a training step (Mixup/CutMix and clip erasing in the data
preprocessor, the random selector, drop-path, anything else that uses the
global generators) are keyed here by (seed, iteration):

* ``before_train_iter``: seeds ``random``, ``numpy.random`` and torch (CPU and
  CUDA) from ``keyed_seed(runner.seed, runner.iter, 'iteration')``, and gives
  every module of the model that has a ``set_step_seed(seed)`` method (e.g.
  :class:`~mmflux.models.layers.block.KeyedDropPath`) its own seed keyed
  additionally by the module's name.

Nothing else is needed: a resumed run has the same seed (mmengine restores it
from the checkpoint) and iteration, so every draw after the resume equals the
uninterrupted run's, whatever happened before (validation, a dataloader
iterator created, another number of workers). No random state is saved in the
checkpoint. With ``randomness.diff_rank_seed=True`` the ranks have different
seeds and so different streams, as intended.

Usage: ``custom_hooks = [dict(type='KeyedRandomHook')]``, with
:class:`~mmflux.engine.FluxSamplerResumeHook` for the batches and grids.
"""
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmaction.registry import HOOKS
from mmflux.utils.keyed_random import keyed_seed, seed_global_rngs

#: message-hub info key with the current iteration's seed (for other consumers)
STEP_SEED_INFO = 'step_seed'


def iteration_seed(seed: int, iteration: int) -> int:
    """Seed of the global generators for training iteration ``iteration``."""
    return keyed_seed(seed, iteration, 'iteration')


@HOOKS.register_module()
class KeyedRandomHook(Hook):
    """Seed the main process's random draws from (seed, iteration) every step."""

    priority = 'ABOVE_NORMAL'

    def __init__(self) -> None:
        self._keyed_modules: Optional[Dict[str, object]] = None

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._keyed_modules = {
            name: module
            for name, module in model.named_modules()
            if callable(getattr(module, 'set_step_seed', None))
        }

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        seed = iteration_seed(int(runner.seed), int(runner.iter))
        seed_global_rngs(seed)
        runner.message_hub.update_info(STEP_SEED_INFO, seed)
        for name, module in (self._keyed_modules or {}).items():
            module.set_step_seed(keyed_seed(seed, name))


# The former hook saved the global random states in checkpoints and was exact with
# num_workers=0 only; configs naming it get this one.
RandomStateHook = HOOKS.register_module(name='RandomStateHook', module=KeyedRandomHook)
