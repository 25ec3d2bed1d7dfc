"""Accuracy over the videos that were actually evaluated, with failures reported."""
import logging
from collections import OrderedDict
from typing import Any, Dict, List, Sequence

from mmaction.evaluation import AccMetric
from mmaction.registry import METRICS
from ..datasets.robust_dataset import FAIL_REASON_KEY, FAILED_KEY, FILENAME_KEY
from ..utils.event_log import log_event
from ..datasets.video_fallback import DECODER_FALLBACK_KEY


def _meta(sample: Any, key: str, default: Any = None) -> Any:
    if isinstance(sample, dict):
        return sample.get(key, default)
    metainfo = getattr(sample, 'metainfo', None) or {}
    return metainfo.get(key, default)


@METRICS.register_module()
class RobustAccMetric(AccMetric):
    """:class:`~mmaction.evaluation.AccMetric` that leaves out failed videos.

    A test-mode :class:`~mmflux.datasets.RobustVideoDataset` (or a Flux
    dataset) returns a placeholder marked ``failed=True`` for a video it could
    not load. This metric does not score placeholders: it logs every excluded
    file with its reason, computes the accuracies over the evaluated videos
    only and adds ``num_evaluated`` and ``num_failed`` (prefixed like the
    accuracies, e.g. ``acc/num_failed``). With no evaluated video at all the
    accuracies are NaN and an error is logged. ``num_decoder_fallbacks`` counts
    the evaluated videos that OpenCV decoded because decord could not
    (:mod:`mmflux.datasets.video_fallback`); they are scored like the others.

    Args: as :class:`~mmaction.evaluation.AccMetric`, plus
        max_names (int): excluded files listed in the summary line (each is
            also logged on its own line). Defaults to 20.
    """

    def __init__(self, *args, max_names: int = 20, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_names = int(max_names)

    def process(self, data_batch: Sequence[Any], data_samples: Sequence[Any]) -> None:
        good = []
        for sample in data_samples:
            if _meta(sample, FAILED_KEY, False):
                self.results.append({
                    FAILED_KEY: True,
                    FILENAME_KEY: str(_meta(sample, FILENAME_KEY, '<unknown video>')),
                    FAIL_REASON_KEY: str(_meta(sample, FAIL_REASON_KEY, 'unknown reason')),
                })
            else:
                good.append(sample)
        if good:
            start = len(self.results)
            super().process(data_batch, good)
            if len(self.results) - start == len(good):  # one result per sample
                for result, sample in zip(self.results[start:], good):
                    result[DECODER_FALLBACK_KEY] = bool(_meta(sample, DECODER_FALLBACK_KEY))

    def _nan_metrics(self) -> Dict[str, float]:
        names: List[str] = []
        for metric in self.metrics:
            if metric == 'top_k_accuracy':
                topk = (self.metric_options or {}).get('top_k_accuracy', {}).get('topk', (1, 5))
                topk = (topk, ) if isinstance(topk, int) else topk
                names += [f'top{k}' for k in topk]
            elif metric == 'mean_class_accuracy':
                names.append('mean1')
            else:
                names.append(metric)
        return OrderedDict((name, float('nan')) for name in names)

    def compute_metrics(self, results: List) -> Dict:
        failed = [r for r in results if isinstance(r, dict) and r.get(FAILED_KEY)]
        evaluated = [r for r in results if not (isinstance(r, dict) and r.get(FAILED_KEY))]
        for record in failed:
            log_event(f'excluded {record[FILENAME_KEY]}: {record[FAIL_REASON_KEY]}')
        if evaluated:
            metrics = super().compute_metrics(evaluated)
        else:
            metrics = self._nan_metrics()
            log_event(f'no video could be evaluated: all {len(failed)} failed to load; the '
                      'accuracies are NaN.', logging.ERROR)
        metrics['num_evaluated'] = len(evaluated)
        metrics['num_failed'] = len(failed)
        fallbacks = sum(1 for r in evaluated if isinstance(r, dict) and r.get(DECODER_FALLBACK_KEY))
        metrics['num_decoder_fallbacks'] = fallbacks
        if fallbacks:
            log_event(f'{fallbacks} of the {len(evaluated)} evaluated videos were decoded by '
                      'OpenCV because decord could not decode them.', logging.INFO)
        total = len(evaluated) + len(failed)
        if failed:
            names = [r[FILENAME_KEY] for r in failed]
            shown = names[:self.max_names]
            more = f' and {len(names) - len(shown)} more' if len(names) > len(shown) else ''
            log_event(f'evaluated {len(evaluated)} of {total} videos; {len(failed)} failed to '
                      f'load and were excluded: {shown}{more}. The accuracies are over the '
                      f'{len(evaluated)} evaluated videos.')
        else:
            log_event(f'evaluated {len(evaluated)} of {total} videos; none failed.',
                      logging.INFO)
        return metrics
