"""A Token Optimization plan: what the search measured, and which setting to run.

Why a file: the search (tools/token_optimize.py) is slow and machine-specific
(latency), testing and deployment are not. The plan records every candidate
setting (budget, grid, selector) with its selection-split top-1, GMACs and
latency, so a config switch (``token_optimization.plan=FILE``) or a tool
(``tools/demo.py --plan FILE --max-latency-ms X``) picks a setting without
searching again.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

FORMAT = 'mmflux-to-plan/1'
SETTING_KEYS = ('budget', 'frames', 'side', 'selector')


def pareto_front(settings: Sequence[Dict], cost: str = 'latency_ms',
                 score: str = 'val_top1') -> List[Dict]:
    """Settings no other setting beats on both ``cost`` (lower) and ``score`` (higher),
    sorted by cost."""
    ranked = sorted((s for s in settings if s.get(cost) is not None and s.get(score) is not None),
                    key=lambda s: (s[cost], -s[score]))
    front, best = [], -float('inf')
    for s in ranked:
        if s[score] > best:
            front.append(s)
            best = s[score]
    return front


class TOPlan:
    """A plan: ``settings`` (one dict per measured setting) plus facts about the run."""

    def __init__(self, settings: List[Dict], meta: Optional[Dict] = None,
                 path: Optional[str] = None) -> None:
        self.settings = list(settings)
        self.meta = dict(meta or {})
        self.path = path

    # ------------------------------------------------------------ files
    @classmethod
    def load(cls, path: str) -> 'TOPlan':
        if not osp.isfile(path):
            raise FileNotFoundError(f'token_optimization.plan={path}: no such file; write one with '
                                    'tools/token_optimize.py CONFIG CKPT --budgets ... --out-dir DIR '
                                    '(DIR/to_plan.json).')
        try:
            with open(path) as f:
                data = json.load(f)
        except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
            raise ValueError(f'token_optimization.plan={path}: not a readable JSON plan ({err}; '
                             'truncated or overwritten?); fix: write it again with '
                             'tools/token_optimize.py CONFIG CKPT --budgets ... --out-dir DIR.') from None
        if not isinstance(data, dict) or data.get('format') != FORMAT or not isinstance(data.get('settings'), list):
            raise ValueError(f'{path} is not a Token Optimization plan (format {FORMAT!r} with a '
                             f'"settings" list); got format {data.get("format") if isinstance(data, dict) else type(data).__name__!r}.')
        for i, s in enumerate(data['settings']):
            missing = [k for k in SETTING_KEYS + ('val_top1', ) if k not in s]
            if missing:
                raise ValueError(f'{path}: settings[{i}] lacks {missing}.')
        meta = {k: v for k, v in data.items() if k not in ('settings', 'format')}
        return cls(data['settings'], meta, path)

    def save(self, path: str) -> str:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(dict(format=FORMAT, **self.meta, settings=self.settings), f, indent=1)
        self.path = path
        return path

    # ------------------------------------------------------------ choice
    def budgets(self) -> List[int]:
        return sorted({s['budget'] for s in self.settings if s['budget'] is not None}, reverse=True)

    def choose(self, budget: Optional[int] = None, max_latency_ms: Optional[float] = None,
               max_gmacs: Optional[float] = None, selector: Optional[str] = None) -> Dict:
        """The most accurate setting (selection-split top-1) that meets every given limit.

        Ties go to the cheaper setting (GMACs, then sampled tokens).
        """
        where = self.path or 'the plan'
        fits = [s for s in self.settings
                if (budget is None or s['budget'] == budget)
                and (selector is None or s['selector'] == selector)]
        if not fits:
            raise ValueError(f'{where} has no setting for budget={budget} selector={selector}; '
                             f'its budgets are {self.budgets()} and selectors '
                             f'{sorted({s["selector"] for s in self.settings})}.')
        for key, limit, unit in (('latency_ms', max_latency_ms, 'ms'), ('gmacs', max_gmacs, 'GMACs')):
            if limit is None:
                continue
            measured = [s for s in fits if s.get(key) is not None]
            if not measured:
                raise ValueError(f'{where} has no {key} for these settings; rerun the search with '
                                 + ('--latency' if key == 'latency_ms' else 'GMACs counting') + '.')
            under = [s for s in measured if s[key] <= limit]
            if not under:
                cheapest = min(measured, key=lambda s: s[key])
                raise ValueError(f'No setting in {where} meets {limit} {unit}: the cheapest is '
                                 f'{cheapest[key]:.3g} {unit} (budget {cheapest["budget"]}, grid '
                                 f'{cheapest["frames"]}x{cheapest["side"]}); raise the limit or add '
                                 'smaller budgets to the search.')
            fits = under
        return max(fits, key=lambda s: (s['val_top1'], -(s.get('gmacs') or 0),
                                        -s.get('grid_tokens', 0)))
