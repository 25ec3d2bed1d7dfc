"""The runner of mmflux configs: MMAction2's, plus the Token Optimization switch,
the batch sampler's token geometry, and checkpoints and work dirs that survive
kills, full disks and a second run.

Why a runner: ``--cfg-options`` edits the config after it is read, and the runner
is the first thing (in MMAction2's tools/test.py, ``RUNNERS.build(cfg)`` when the
config has ``runner_type``) that sees the whole edited config. Applying the
switch here turns ``token_optimization.budget=64 token_optimization.plan=P``
into the test grid, budget and selector before the dataloader and model exist.
It is also the first thing that holds both the built model and the (not yet
built) train dataloader, so the Flux batch sampler counts tokens with the
backbone's own patch and tubelet sizes instead of a copy in every config.

Being what MMAction2's own tools/train.py builds for these configs, it is also
where checkpoints are made safe (mmengine writes them in place and rotates old
ones first):

* :meth:`save_checkpoint` writes through ``<name>.partial``, fsyncs and renames
  atomically; a failed write (full disk) names the file and the cause, removes
  the partial file and leaves the previous checkpoints as they were;
* ``CheckpointHook`` is replaced by
  :class:`~mmflux.engine.hooks.AtomicCheckpointHook` (same arguments), which
  updates ``last_checkpoint`` atomically and rotates only after the save;
* :meth:`load_or_resume`: ``--resume`` continues from the newest *complete*
  checkpoint: a missing, empty or truncated one (named or in
  ``last_checkpoint``) is reported and the newest complete one in the work
  dir taken instead; with none, it refuses rather than restart from epoch 1;
* :meth:`train` holds the work dir's lock
  (:class:`~mmflux.engine.runner.work_dir_lock.WorkDirLock`): a second training
  run on the same work dir is refused.
"""
import copy
import logging
import os.path as osp
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmaction.registry import RUNNERS
from ...compat.runner_workarounds import RunnerWorkarounds
from ...datasets.flux_batch_sampler import with_backbone_geometry
from ...evaluation.to_switch import apply_token_optimization
from .checkpoint_files import (CheckpointWriteError, checkpoint_problem, commit_partial,
                               describe_os_error, first_complete, partial_path,
                               remove_quietly, resumable_checkpoints, write_text_atomic)
from .work_dir_lock import WorkDirLock


class CheckpointResumeError(RuntimeError):
    """``--resume`` found checkpoints, but none is complete."""


class CheckpointFileError(RuntimeError):
    """A checkpoint to load is missing, empty, truncated or not a checkpoint."""


def _is_local(path: str) -> bool:
    return '://' not in str(path)


@RUNNERS.register_module()
class FluxRunner(RunnerWorkarounds, Runner):
    """:class:`mmengine.runner.Runner` that applies ``cfg.token_optimization``, gives
    a :class:`~mmflux.datasets.FluxBatchSampler` the backbone's geometry, saves
    checkpoints atomically, resumes from the newest complete one and locks its
    work dir while training."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        loader = self._train_dataloader
        if isinstance(loader, dict) and isinstance(loader.get('batch_sampler'), dict):
            loader['batch_sampler'] = with_backbone_geometry(loader['batch_sampler'],
                                                             getattr(model, 'backbone', None))

    @classmethod
    def from_cfg(cls, cfg) -> 'Runner':
        cfg = copy.deepcopy(cfg)  # the caller's config stays as it was
        apply_token_optimization(cfg)
        return super().from_cfg(cfg)

    # ------------------------------------------------------------ training
    def train(self):
        lock = WorkDirLock(self.work_dir) if is_main_process() else None
        if lock is not None:
            lock.acquire()
        try:
            return super().train()
        finally:
            if lock is not None:
                lock.release()

    def register_default_hooks(self, hooks=None) -> None:
        from ..hooks.atomic_checkpoint_hook import AtomicCheckpointHook  # hooks import this package
        hooks = dict(hooks or {})
        spec = hooks.get('checkpoint', dict(type='CheckpointHook', interval=1))  # mmengine's default
        if isinstance(spec, dict) and spec.get('type') in ('CheckpointHook', 'mmengine.CheckpointHook',
                                                           CheckpointHook):
            hooks['checkpoint'] = dict(spec, type=AtomicCheckpointHook)
        super().register_default_hooks(hooks)

    # ---------------------------------------------------------- checkpoints
    def save_checkpoint(self, out_dir: str, filename: str, file_client_args=None, *args,
                        backend_args=None, **kwargs) -> None:
        """mmengine's, written to ``<name>.partial`` and renamed when complete."""
        final = osp.join(out_dir, filename)
        if not (_is_local(out_dir) and file_client_args is None and not backend_args):
            return super().save_checkpoint(out_dir, filename, file_client_args, *args,
                                           backend_args=backend_args, **kwargs)
        partial = partial_path(final)
        try:
            super().save_checkpoint(out_dir, osp.basename(partial), file_client_args, *args,
                                    backend_args=backend_args, **kwargs)
            if is_main_process():
                commit_partial(partial, final)
        except OSError as err:
            if is_main_process():
                remove_quietly(partial)
            kept = [osp.basename(p) for p in resumable_checkpoints([out_dir])]
            raise CheckpointWriteError(
                err.errno, f'could not write checkpoint {final}: {describe_os_error(err)}. Nothing '
                f'was replaced or deleted; the checkpoints already in {out_dir} are complete '
                f'({", ".join(kept) or "none yet"}). Fix the cause (free space, permissions), '
                'then continue with --resume.') from err

    def _resume_dirs(self, *paths: Optional[str]) -> List[str]:
        dirs = [self.work_dir]
        for path in paths:
            if path and _is_local(path):
                dirs.append(osp.dirname(osp.abspath(path)))
        return list(dict.fromkeys(osp.abspath(d) for d in dirs))

    def _choose_resume_checkpoint(self) -> Optional[str]:
        """The checkpoint ``--resume`` continues from (see the module docstring)."""
        named = self._load_from
        source = 'named by --resume'
        if named is None:
            record = osp.join(self.work_dir, 'last_checkpoint')
            if osp.isfile(record):
                with open(record) as f:
                    named = f.read().strip() or None
                source = f'named by {record}'
                if named is None:
                    print_log(f'{record} is empty (a save was interrupted); looking for the '
                              'newest complete checkpoint.', logger='current', level=logging.WARNING)
        if named is not None and not _is_local(named):
            return named  # a URL: mmengine's to load
        dirs = self._resume_dirs(named)
        ordered = resumable_checkpoints(dirs)  # newest first
        named_abs = osp.abspath(named) if named else None
        problem = checkpoint_problem(named, thorough=True) if named else None
        if named and problem is None:
            if self._load_from is not None or named_abs not in ordered:
                return named
            # auto: a newer complete one exists if the run died between its save and
            # the update of last_checkpoint
            newest, _ = first_complete(ordered[:ordered.index(named_abs)])
            if newest is None:
                return named
            print_log(f'resuming from {newest}, newer than {named} ({source}): the run was '
                      'stopped after that save, before last_checkpoint was updated.',
                      logger='current', level=logging.WARNING)
            return newest
        newest, broken = first_complete(p for p in ordered if p != named_abs)
        for path, why in broken:
            print_log(f'not resuming from {path}: {why}.', logger='current', level=logging.WARNING)
        if named:
            if newest is None:
                raise CheckpointResumeError(
                    f'cannot resume: the checkpoint {named} ({source}) is {problem}, and no complete '
                    f'checkpoint (epoch_N.pth / iter_N.pth) is in {", ".join(dirs)}. Fix: name a '
                    'complete checkpoint with --resume CKPT, or train from the start without '
                    '--resume (in another --work-dir to keep these files).')
            print_log(f'the checkpoint {named} ({source}) is {problem}; resuming from the newest '
                      f'complete checkpoint {newest} instead.', logger='current',
                      level=logging.WARNING)
            return newest
        if newest is not None:
            print_log(f'no last_checkpoint in {self.work_dir}; resuming from the newest complete '
                      f'checkpoint {newest}.', logger='current', level=logging.WARNING)
            return newest
        if broken:
            raise CheckpointResumeError(
                f'cannot resume: no checkpoint in {", ".join(dirs)} is complete '
                f'({"; ".join(f"{p}: {w}" for p, w in broken)}). Fix: name a complete checkpoint '
                'with --resume CKPT, or train from the start without --resume (in another '
                '--work-dir to keep these files).')
        print_log(f'--resume: no checkpoint in {self.work_dir} yet; training starts from the '
                  'beginning.', logger='current', level=logging.WARNING)
        return None

    def load_or_resume(self) -> None:
        if self._has_loaded or not self._resume:
            return super().load_or_resume()
        chosen = self._choose_resume_checkpoint()
        if chosen is None:
            self._resume = False
            return super().load_or_resume()
        self._load_from = chosen
        self.resume(chosen)
        self._has_loaded = True
        record = osp.join(self.work_dir, 'last_checkpoint')
        if is_main_process() and _is_local(chosen) and osp.dirname(
                osp.abspath(chosen)) == osp.abspath(self.work_dir):
            # the next resume starts from here too, even if no checkpoint is saved before it
            current = open(record).read().strip() if osp.isfile(record) else None
            if current != chosen:
                write_text_atomic(record, chosen)

    def load_checkpoint(self, filename: str, *args, **kwargs):
        """mmengine's, refusing a missing, empty or truncated file by name first."""
        if isinstance(filename, str) and _is_local(filename):
            problem = checkpoint_problem(filename)
            if problem is not None:
                raise CheckpointFileError(
                    f'checkpoint {filename} is {problem}; fix: pass a complete checkpoint (an '
                    'interrupted download or copy: fetch it again).')
        return super().load_checkpoint(filename, *args, **kwargs)
