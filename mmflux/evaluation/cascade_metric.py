"""How a budget cascade spent its tokens on a test split, next to the accuracy."""
from typing import Any, Dict, List, Sequence

from mmengine.evaluator import BaseMetric

from mmaction.registry import METRICS


def _meta(sample: Any, key: str, default: Any = None) -> Any:
    if isinstance(sample, dict):
        return sample.get(key, default)
    return (getattr(sample, 'metainfo', None) or {}).get(key, default)


@METRICS.register_module()
class CascadeUsageMetric(BaseMetric):
    """Share of videos answered by each stage, share that ran it, and tokens per view.

    Reads what :class:`~mmflux.evaluation.cascade.BudgetCascade` writes into each
    prediction's metainfo; the Token Optimization switch adds this metric to
    ``test_evaluator`` when it turns a cascade on, so MMAction2's own
    tools/test.py prints it. Keys (prefix ``cascade``): ``answered_stage<k>``,
    ``ran_stage<k>``, ``mean_tokens`` (tokens through the blocks per view, every
    stage a video ran), ``mean_answer_tokens`` (the answering stage's only),
    ``mean_confidence``; videos that failed to load or carry no cascade
    metainfo are not counted.
    """
    default_prefix = 'cascade'

    def process(self, data_batch: Sequence[Any], data_samples: Sequence[Any]) -> None:
        for sample in data_samples:
            stage = _meta(sample, 'cascade_stage')
            if stage is None or _meta(sample, 'failed', False):
                continue
            self.results.append(dict(stage=int(stage), stages=len(_meta(sample, 'cascade_budgets')),
                                     ran=list(_meta(sample, 'cascade_ran')),
                                     tokens_run=float(_meta(sample, 'tokens_run')),
                                     tokens=float(_meta(sample, 'num_tokens')),
                                     confidence=float(_meta(sample, 'confidence'))))

    def compute_metrics(self, results: List[Dict]) -> Dict[str, float]:
        if not results:
            return {}
        n = len(results)
        out = {}
        for k in range(max(r['stages'] for r in results)):
            out[f'answered_stage{k}'] = sum(r['stage'] == k for r in results) / n
            out[f'ran_stage{k}'] = sum(k in r['ran'] for r in results) / n
        out['mean_tokens'] = sum(r['tokens_run'] for r in results) / n
        out['mean_answer_tokens'] = sum(r['tokens'] for r in results) / n
        out['mean_confidence'] = sum(r['confidence'] for r in results) / n
        return out
