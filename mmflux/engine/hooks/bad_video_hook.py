"""Per-epoch count of the bad videos skipped in training."""
import logging
from collections import Counter
from typing import Any, List, Optional, Tuple

from mmengine.dist import all_gather_object, get_world_size, is_main_process
from mmengine.hooks import Hook

from mmaction.registry import HOOKS
from mmflux.datasets.robust_dataset import SKIPPED_KEY
from mmflux.utils.event_log import log_event


def skipped_in_batch(data_batch: Any) -> List[Tuple[str, str]]:
    """The ``(path, reason)`` pairs carried by the data samples of a batch."""
    samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
    found: List[Tuple[str, str]] = []
    for sample in samples or []:
        metainfo = getattr(sample, 'metainfo', None) or {}
        for record in metainfo.get(SKIPPED_KEY) or []:
            found.append((str(record[0]), str(record[1])))
    return found


@HOOKS.register_module()
class BadVideoCountHook(Hook):
    """Log how many videos were skipped in each training epoch, and which.

    How the counts reach the main process: a robust training dataset
    (:class:`~mmflux.datasets.FluxVideoDataset`,
    :class:`~mmflux.datasets.RobustVideoDataset`, ...) that replaces a bad
    video puts the skipped ``(path, reason)`` pairs into the metainfo
    (``skipped_videos``) of the sample it returns instead. The records thus
    travel with the batch from whichever dataloader worker loaded it, and this
    hook reads them in ``before_train_iter``: the counts are exact for any
    ``num_workers`` (no files, no shared state), and ranks are summed with
    ``all_gather_object`` at the end of the epoch. Each skip is also logged
    as a warning (``skipped <path>: <reason>``) by the process that met it.

    At the end of every training epoch it logs (rank 0)
    ``skipped N videos this epoch: [paths]`` (a warning when N > 0), and at the
    end of training the total. ``runner.message_hub`` info
    ``bad_videos/epoch`` and ``bad_videos/total`` hold the counts.

    Args:
        max_names (int): paths listed in the epoch line (the count is always
            complete). Defaults to 50.
    """

    priority = 'NORMAL'

    def __init__(self, max_names: int = 50) -> None:
        self.max_names = int(max_names)
        self._epoch_records: List[Tuple[str, str]] = []
        self._total = 0

    def before_train_epoch(self, runner) -> None:
        self._epoch_records = []

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[Any] = None) -> None:
        self._epoch_records.extend(skipped_in_batch(data_batch))

    def _gather(self) -> List[Tuple[str, str]]:
        if get_world_size() <= 1:
            return list(self._epoch_records)
        gathered = all_gather_object(list(self._epoch_records))
        return [record for part in gathered for record in part]

    def after_train_epoch(self, runner) -> None:
        records = self._gather()
        self._epoch_records = []
        count = len(records)
        self._total += count
        runner.message_hub.update_info('bad_videos/epoch', count)
        runner.message_hub.update_info('bad_videos/total', self._total)
        if not is_main_process():
            return
        if count == 0:
            log_event(f'skipped 0 videos this epoch (epoch {runner.epoch + 1})', logging.INFO)
            return
        times = Counter(path for path, _ in records)
        names = [f'{path} (x{n})' if n > 1 else path for path, n in times.items()]
        shown = names[:self.max_names]
        more = f' and {len(names) - len(shown)} more' if len(names) > len(shown) else ''
        log_event(f'skipped {count} videos this epoch: {shown}{more} (epoch {runner.epoch + 1})')

    def after_train(self, runner) -> None:
        if is_main_process():
            level = logging.WARNING if self._total else logging.INFO
            log_event(f'skipped {self._total} videos in this training run', level)
