"""Save and restore the global random states, so that a resumed run continues
exactly as the uninterrupted one.

What mmengine 0.10.7 restores on ``--resume``: model, optimizer, parameter
schedulers, message hub, epoch/iter and the *seed* (it re-seeds from it). It
does not save the *states* of Python's ``random``, ``numpy.random`` and torch's
generators, so after a resume every random draw differs from the uninterrupted
run: the transforms (in the main process when ``num_workers=0``), Mixup/CutMix
and clip erasing (``np.random`` / ``random`` / torch), drop-path and the random
selector (torch). Two more things shift the torch stream between the two runs:
each new dataloader iterator draws its base seed from the global torch
generator, and validation (run after the epoch's checkpoint in the
uninterrupted run only) draws from all of them.

This hook

* ``before_save_checkpoint``: stores the states of ``random``, ``np.random``,
  torch (and CUDA when initialized) in ``checkpoint['meta']['rng_state']``,
  as plain ints, strings and tensors (loadable with safe loading);
* ``before_train``: gives the train dataloader a private ``torch.Generator``
  (seeded from the runner's seed) for its iterators' base seeds, so creating an
  iterator no longer draws from the global stream; then, when resuming
  (``runner.iter > 0``), restores the saved states. For an
  ``IterBasedTrainLoop`` the restore is deferred until mmengine has advanced
  the dataloader past the trained batches (that advance runs the pipeline);
* ``before_val`` / ``after_val``: saves and restores the states around every
  validation, so validating (or not, or at another interval) never changes the
  training randomness.

Together with :class:`~mmflux.engine.FluxSamplerResumeHook` (same batches and
grids) a run resumed mid-epoch or at an epoch boundary reproduces the
uninterrupted run's losses exactly on CPU with ``num_workers=0``. With
dataloader workers, the states restored are the main process's (batch
augmentation, drop-path, selector, sample order, grids); the workers' own
transform draws restart from mmengine's per-worker seed, so they match only
when the workers would have restarted anyway (an epoch boundary with
``persistent_workers=False``).

In distributed runs only rank 0 saves a checkpoint; its states are restored on
every rank when ``randomness.diff_rank_seed`` is False (all ranks then share
the same streams), else on rank 0 only, with a warning.

Usage: ``custom_hooks = [dict(type='RandomStateHook')]``.
"""
import logging
import random
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from mmaction.registry import HOOKS

META_KEY = 'rng_state'


def capture_random_state() -> Dict[str, Any]:
    """The global random states as safe-loadable plain data."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: Dict[str, Any] = dict(
        python=dict(version=int(version), internal=[int(v) for v in internal], gauss=gauss),
        numpy=dict(name=str(name), keys=torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                   pos=int(pos), has_gauss=int(has_gauss), cached_gaussian=float(cached)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`capture_random_state`."""
    py = state['python']
    random.setstate((py['version'], tuple(int(v) for v in py['internal']), py['gauss']))
    npy = state['numpy']
    # tensors may come back on the GPU (mmengine resumes with map_location='default')
    np.random.set_state((npy['name'], npy['keys'].cpu().numpy().astype(np.uint32), npy['pos'],
                         npy['has_gauss'], npy['cached_gaussian']))
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])
        except Exception as err:  # noqa: BLE001 - another number of devices
            print_log(f'RandomStateHook: CUDA random states not restored ({err}).',
                      logger='current', level=logging.WARNING)


class _RestoreBeforeFetch:
    """Iterator proxy: calls ``restore`` right before fetch number ``skip + 1``."""

    def __init__(self, iterator: Any, skip: int, restore: Callable[[], None]) -> None:
        self._iterator = iterator
        self._skip = int(skip)
        self._calls = 0
        self._restore: Optional[Callable[[], None]] = restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._restore is not None and self._calls >= self._skip:
            restore, self._restore = self._restore, None
            restore()
        self._calls += 1
        return next(self._iterator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Checkpoint the global random states; keep validation random-neutral.

    Args:
        isolate_val (bool): save/restore the states around validation.
            Defaults to True.
        private_loader_generator (bool): give the train dataloader its own
            generator for iterator base seeds. Defaults to True.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, isolate_val: bool = True, private_loader_generator: bool = True) -> None:
        self.isolate_val = isolate_val
        self.private_loader_generator = private_loader_generator
        self._loaded: Optional[Dict[str, Any]] = None
        self._val_state: Optional[Dict[str, Any]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # during validation (a best-checkpoint save) the training state is the
        # one captured before validation started
        state = self._val_state if self._val_state is not None else capture_random_state()
        checkpoint.setdefault('meta', {})[META_KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = (checkpoint.get('meta') or {}).get(META_KEY)
        self._loaded = state if isinstance(state, dict) else None

    def _restore_loaded(self, runner, state: Dict[str, Any]) -> None:
        restore_random_state(state)
        print_log(f'RandomStateHook: random states restored from the checkpoint (iter '
                  f'{runner.iter}).', logger='current')

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        loader = getattr(loop, 'dataloader', None)
        if (self.private_loader_generator and isinstance(loader, torch.utils.data.DataLoader)
                and loader.generator is None):
            generator = torch.Generator()
            generator.manual_seed(int(getattr(runner, 'seed', 0) or 0))
            loader.generator = generator
        state, self._loaded = self._loaded, None
        if runner.iter <= 0:
            return  # a fresh run, or load_from without resume
        if state is None:
            print_log('RandomStateHook: the checkpoint has no random states (saved without '
                      'this hook); the resumed run continues with freshly seeded random '
                      'streams, so its losses differ from an uninterrupted run.',
                      logger='current', level=logging.WARNING)
            return
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        if get_rank() != 0 and randomness.get('diff_rank_seed', False):
            print_log('RandomStateHook: diff_rank_seed=True and only rank 0 saved its random '
                      'states; this rank continues with a fresh stream.', logger='current',
                      level=logging.WARNING)
            return
        iterator = getattr(loop, 'dataloader_iterator', None)  # IterBasedTrainLoop only
        skip = runner.iter if isinstance(loop, IterBasedTrainLoop) else 0
        if skip > 0 and iterator is not None:
            # IterBasedTrainLoop: mmengine advances the iterator by `iter`
            # batches after before_train; restore right before the first new one.
            loop.dataloader_iterator = _RestoreBeforeFetch(
                iterator, skip, lambda: self._restore_loaded(runner, state))
        else:
            self._restore_loaded(runner, state)

    def before_val(self, runner) -> None:
        if self.isolate_val:
            self._val_state = capture_random_state()

    def after_val(self, runner) -> None:
        if self._val_state is not None:
            restore_random_state(self._val_state)
            self._val_state = None
