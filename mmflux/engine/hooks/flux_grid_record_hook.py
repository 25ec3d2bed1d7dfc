"""Log the sampled grid (frames x side) of every training batch, per rank."""
import json
import os.path as osp
from typing import Optional

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmaction.registry import HOOKS


@HOOKS.register_module()
class FluxGridRecordHook(Hook):
    """Puts ``train/grid_frames`` and ``train/grid_side`` of each batch into the log.

    With ``save_jsonl=True`` every rank also appends ``{"iter", "frames", "height",
    "width", "batch"}`` lines to ``<work_dir>/flux_grids_rank<r>.jsonl``, which is
    how one checks that all ranks trained on the same grid at every step.
    """

    priority = 'LOW'

    def __init__(self, save_jsonl: bool = False) -> None:
        self.save_jsonl = save_jsonl
        self._path: Optional[str] = None

    def before_train(self, runner) -> None:
        if self.save_jsonl:
            self._path = osp.join(runner.work_dir, f'flux_grids_rank{get_rank()}.jsonl')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if not data_batch or 'inputs' not in data_batch:
            return
        inputs = data_batch['inputs']
        first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs[0]
        frames, height, width = (int(v) for v in first.shape[-3:])
        runner.message_hub.update_scalar('train/grid_frames', frames)
        runner.message_hub.update_scalar('train/grid_side', height)
        if self._path is not None:
            with open(self._path, 'a') as f:
                f.write(json.dumps(dict(iter=runner.iter, frames=frames, height=height, width=width,
                                        batch=len(inputs))) + '\n')
