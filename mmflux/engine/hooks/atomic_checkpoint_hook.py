"""mmengine's ``CheckpointHook`` with an order of operations that never loses a checkpoint.

mmengine 0.10.7's ``CheckpointHook`` deletes the checkpoints beyond
``max_keep_ckpts`` and the previous ``best_*`` *before* writing the new one,
and rewrites ``last_checkpoint`` in place after. Killed in between (seconds for
a large model), a work dir holds no usable checkpoint and ``last_checkpoint``
names a deleted file. Here the new checkpoint is written first (completely:
:class:`~mmflux.engine.FluxRunner` writes through a partial file and renames
it), then ``last_checkpoint`` is replaced atomically, and only then are the
old files deleted. Leftover ``*.partial`` files of an interrupted save are
removed when training starts. Same arguments as ``CheckpointHook``;
:class:`~mmflux.engine.FluxRunner` uses it in place of ``CheckpointHook``.
"""
import os.path as osp
from typing import Any, List

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mmaction.registry import HOOKS
from ..runner.checkpoint_files import remove_partials, write_text_atomic


class _DeferredRemoval:
    """A file backend whose ``remove`` / ``rmtree`` only note the path."""

    def __init__(self, backend: Any, removals: List[str]) -> None:
        self._backend, self._removals = backend, removals

    def remove(self, path: str) -> None:
        self._removals.append(path)

    def rmtree(self, path: str) -> None:
        self._removals.append(path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that deletes old checkpoints only after the new one is complete."""

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process():
            for path in remove_partials(self.out_dir):
                print_log(f'removed {path}: the leftover of a checkpoint save that was '
                          'interrupted', logger='current', level=30)

    def _remove_after(self, runner, removals: List[str], keep: List[str]) -> None:
        if not is_main_process():
            return
        keep_set = {osp.abspath(str(p)) for p in keep if p}
        for path in removals:
            if osp.abspath(str(path)) in keep_set:
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)

    def _kept(self) -> List[str]:
        kept = [self.last_ckpt, getattr(self, 'best_ckpt_path', None)]
        kept += list((getattr(self, 'best_ckpt_path_dict', None) or {}).values())
        return kept

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(self.keep_ckpt_ids.popleft())))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        # only now that the checkpoint is complete: point at it, then rotate
        write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        self._remove_after(runner, outdated, self._kept())

    def _save_best_checkpoint(self, runner, metrics) -> None:
        removals: List[str] = []
        backend = self.file_backend
        self.file_backend = _DeferredRemoval(backend, removals)
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        self._remove_after(runner, removals, self._kept())
