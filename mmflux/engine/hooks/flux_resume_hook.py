"""Exact mid-epoch resume for :class:`~mmflux.datasets.FluxBatchSampler`.

mmengine 0.10.7's ``EpochBasedTrainLoop`` restores ``epoch`` and ``iter`` from a
checkpoint but restarts the epoch's dataloader from its first batch, so a run
resumed from a mid-epoch (iteration-interval) checkpoint replays batches and its
epochs end at other iteration counts. Besides, the index sampler's seed is
fixed when the dataloader is built, *before* the checkpoint is loaded; without
``randomness.seed`` in the config the resumed run shuffles with a fresh seed.

This hook makes a resumed run see the same remaining batches and grids as an
uninterrupted run:

* ``before_save_checkpoint``: stores the grid seed of the batch sampler and the
  seed of the wrapped index sampler in ``checkpoint['meta']['flux_sampler']``;
* ``after_load_checkpoint``: remembers them;
* ``before_train`` (runs after ``load_or_resume``): if training resumes
  (``runner.iter > 0``), puts the seeds back and, for an epoch-based loop, calls
  ``skip_batches(runner.iter - runner.epoch * num_batches_per_epoch)``; the
  epoch then ends at the same iteration as without the interruption. The
  skipped batches are not loaded (only their indices are drawn).

An iteration-based loop (``InfiniteSampler``) needs no skip: mmengine advances
its dataloader by ``runner.iter`` batches itself, and the grids follow the batch
index. No random state needs restoring: the sampler keys each sample's
augmentation by (seed, epoch, index) and :class:`KeyedRandomHook` keys the
training step's draws by (seed, iteration).

Usage: ``custom_hooks = [dict(type='FluxSamplerResumeHook')]``.
"""
from typing import Optional

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmaction.registry import HOOKS
from mmflux.datasets.flux_batch_sampler import FluxBatchSampler

META_KEY = 'flux_sampler'


def _flux_batch_sampler(runner) -> Optional[FluxBatchSampler]:
    loop = getattr(runner, 'train_loop', None)
    dataloader = getattr(loop, 'dataloader', None)
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    return batch_sampler if isinstance(batch_sampler, FluxBatchSampler) else None


@HOOKS.register_module()
class FluxSamplerResumeHook(Hook):
    """Restore sampler seeds and skip the done batches after a resume."""

    def __init__(self) -> None:
        self._loaded_meta: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        batch_sampler = _flux_batch_sampler(runner)
        if batch_sampler is None:
            return
        meta = dict(seed=batch_sampler.seed)
        sampler_seed = getattr(batch_sampler.sampler, 'seed', None)
        if isinstance(sampler_seed, (int, np.integer)) and not isinstance(
                sampler_seed, bool):
            meta['sampler_seed'] = int(sampler_seed)
        checkpoint.setdefault('meta', {})[META_KEY] = meta

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = (checkpoint.get('meta') or {}).get(META_KEY)
        self._loaded_meta = dict(meta) if isinstance(meta, dict) else None

    def before_train(self, runner) -> None:
        batch_sampler = _flux_batch_sampler(runner)
        if batch_sampler is None:
            print_log('FluxSamplerResumeHook: the train dataloader has no '
                      'FluxBatchSampler; nothing to do.', logger='current',
                      level=30)
            return
        if runner.iter <= 0:
            return  # fresh run (or load_from without resume)
        meta = self._loaded_meta or {}
        if not meta:
            print_log('FluxSamplerResumeHook: the checkpoint has no sampler seeds '
                      '(saved without this hook); the remaining batches match the '
                      'interrupted run only if the seeds are fixed in the config '
                      '(randomness.seed or batch_sampler.seed).',
                      logger='current', level=30)
        if 'seed' in meta and meta['seed'] != batch_sampler.seed:
            print_log(f'FluxSamplerResumeHook: grid seed {batch_sampler.seed} -> '
                      f"{meta['seed']} (from the checkpoint).", logger='current')
            batch_sampler.seed = int(meta['seed'])
        sampler = batch_sampler.sampler
        if 'sampler_seed' in meta and hasattr(sampler, 'seed') \
                and sampler.seed != meta['sampler_seed']:
            print_log(f'FluxSamplerResumeHook: index sampler seed {sampler.seed} -> '
                      f"{meta['sampler_seed']} (from the checkpoint).",
                      logger='current')
            sampler.seed = int(meta['sampler_seed'])
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return  # iteration-based loop: mmengine skips the batches itself
        per_epoch = batch_sampler.num_batches_per_epoch
        done = runner.iter - runner.epoch * per_epoch
        if done <= 0:
            return
        # done == per_epoch: checkpoint written after the epoch's last batch but
        # before its end-of-epoch hooks; the epoch is replayed empty so those run.
        if done > per_epoch:
            print_log(f'FluxSamplerResumeHook: iter {runner.iter} is beyond epoch '
                      f'{runner.epoch} ({per_epoch} batches per epoch); the number '
                      'of batches per epoch changed since the checkpoint? Not '
                      'skipping.', logger='current', level=30)
            return
        batch_sampler.skip_batches(done)
        print_log(f'FluxSamplerResumeHook: resuming epoch {runner.epoch + 1} at '
                  f'batch {done + 1}/{per_epoch}; skipping the {done} batches '
                  'already trained.', logger='current')
