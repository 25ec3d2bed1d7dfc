"""The one owner of Token Optimization at test time: the switch, the plan, the choice rule
and the selector swap.

Why one module: the switch (the top-level config key ``token_optimization``) is
read by the runner (:class:`mmflux.engine.FluxRunner`), by
``mmaction.apis.init_recognizer`` (through :func:`apply_to_model`, installed as
:attr:`FluxRecognizer.config_handover`), by every tool and by export; the search
(:mod:`mmflux.evaluation.token_optimization`) and the plan must pick a setting
by the same rule. Everything they share lives here, once:

* the keys (:data:`TO_FIELDS`) and their validation (:func:`to_settings`);
* the budget sentinel: ``None`` means every token, everywhere; ``'all'`` is only a
  command-line spelling, turned into None at the edge by :func:`parse_budget`;
  a key that is absent (or None, for the other keys) is "not set";
* the plan file (:class:`TOPlan`) and the choice rule (:func:`choice_key`, used
  by the search and by :meth:`TOPlan.choose`);
* :func:`swap_selector`, the one way to change a model's (or a config's)
  selector, keeping every argument of the configured one;
* :func:`apply_token_optimization` (a config) and :func:`apply_to_model` (a model
  built before the switch was applied).

Adding a key: add it to :data:`TO_FIELDS`, check it in :func:`to_settings`, carry it
through :func:`resolve`, and apply it in :func:`apply_token_optimization` /
:func:`apply_to_model`; nothing else reads the switch. The per-video adaptive budget
(``cascade``, :mod:`mmflux.evaluation.cascade`) is such a key: :func:`resolve` turns
it into ``model.test_cfg.cascade`` (and the cascade's grid), from which the
recognizer builds the test-time component.
"""
import copy
import inspect
import json
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mmaction.registry import MODELS
from ..models.recognizers import FluxRecognizer
from ..models.selectors import BaseTokenSelector
from .cascade import resolve_cascade
from .grid_config import set_test_grid

#: the top-level config key of the switch
TO_KEY = 'token_optimization'
#: its keys: ``budget`` plus ``grid=(frames, side)`` or ``plan=FILE`` (optionally a
#: ``selector`` type, a ``head`` and, with a plan, ``max_latency_ms`` / ``max_gmacs``);
#: ``cascade``: a per-video adaptive budget (True: the plan's, for the targets
#: ``max_gmacs`` / ``max_latency_ms`` / ``min_top1``; or a cascade of one's own)
TO_FIELDS = ('budget', 'grid', 'plan', 'selector', 'head', 'max_latency_ms', 'max_gmacs',
             'cascade', 'min_top1')
#: command-line spellings of "every token" (turned into None by :func:`parse_budget`)
ALL_TOKENS_SPELLINGS = ('all', 'none')

PLAN_FORMAT = 'mmflux-to-plan/1'
SETTING_KEYS = ('budget', 'frames', 'side', 'selector')


# ----------------------------------------------------------------- budget
def parse_budget(value: Any, where: str = f'{TO_KEY}.budget') -> Optional[int]:
    """A token budget from a config or command line: a positive int, or None (every token).

    ``'all'`` / ``'none'`` (any case) are accepted as command-line spellings of None.
    Raises ``ValueError`` naming ``where`` for anything else.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in ALL_TOKENS_SPELLINGS:
            return None
        try:
            value = int(value)
        except ValueError:
            value = value.strip()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{where}={value!r}: expected a positive number of patch tokens per '
                         'view, or None (every token; "all" on the command line).')
    return int(value)


# ----------------------------------------------------------------- choice rule
def choice_key(top1: float, gmacs: Optional[float], grid_tokens: int) -> Tuple:
    """The one rule for "the best setting": the most accurate; ties go to the cheaper
    one (fewer GMACs, then fewer sampled tokens). Unknown GMACs count as equal.

    Used by the search (:meth:`TokenOptimizer.choose`) and the plan
    (:meth:`TOPlan.choose`), so both pick the same setting from the same numbers.
    """
    return (float(top1), -float(gmacs or 0.0), -int(grid_tokens or 0))


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


# ----------------------------------------------------------------- the plan
class TOPlan:
    """What a search measured, and which setting to run.

    Why a file: the search (tools/token_optimize.py) is slow and machine-specific
    (latency), testing and deployment are not. The plan records every candidate
    setting (budget, grid, selector) with its selection-split top-1, GMACs and
    latency, so the switch (``token_optimization.plan=FILE``) or a tool picks a
    setting without searching again. ``settings``: one dict per measured setting;
    ``meta``: facts about the run.
    """

    def __init__(self, settings: List[Dict], meta: Optional[Dict] = None,
                 path: Optional[str] = None) -> None:
        self.settings = list(settings)
        self.meta = dict(meta or {})
        self.path = path

    @classmethod
    def load(cls, path: str) -> 'TOPlan':
        if not osp.isfile(path):
            raise FileNotFoundError(f'{TO_KEY}.plan={path}: no such file; write one with '
                                    'tools/token_optimize.py CONFIG CKPT --budgets ... --out-dir DIR '
                                    '(DIR/to_plan.json).')
        try:
            with open(path) as f:
                data = json.load(f)
        except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
            raise ValueError(f'{TO_KEY}.plan={path}: not a readable JSON plan ({err}; truncated or '
                             'overwritten?); fix: write it again with tools/token_optimize.py '
                             'CONFIG CKPT --budgets ... --out-dir DIR.') from None
        if not isinstance(data, dict) or data.get('format') != PLAN_FORMAT or not isinstance(
                data.get('settings'), list):
            found = data.get('format') if isinstance(data, dict) else type(data).__name__
            raise ValueError(f'{path} is not a Token Optimization plan (format {PLAN_FORMAT!r} '
                             f'with a "settings" list); got format {found!r}.')
        for i, s in enumerate(data['settings']):
            missing = [k for k in SETTING_KEYS + ('val_top1', ) if k not in s]
            if missing:
                raise ValueError(f'{path}: settings[{i}] lacks {missing}.')
        meta = {k: v for k, v in data.items() if k not in ('settings', 'format')}
        return cls(data['settings'], meta, path)

    def save(self, path: str) -> str:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(dict(format=PLAN_FORMAT, **self.meta, settings=self.settings), f, indent=1)
        self.path = path
        return path

    def budgets(self) -> List[int]:
        return sorted({s['budget'] for s in self.settings if s['budget'] is not None}, reverse=True)

    def choose(self, budget: Optional[int] = None, max_latency_ms: Optional[float] = None,
               max_gmacs: Optional[float] = None, selector: Optional[str] = None) -> Dict:
        """The best setting (:func:`choice_key` on the selection-split top-1) that meets
        every given limit. ``budget`` / ``selector`` restrict the candidates to that
        budget / selector (None: any of the plan's, whose budgets are all finite)."""
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
        return max(fits, key=lambda s: choice_key(s['val_top1'], s.get('gmacs'),
                                                  s.get('grid_tokens', 0)))


# ----------------------------------------------------------------- selector swap
def _constructor_args(cls: type) -> List[str]:
    """Named constructor arguments of a selector class, through ``**kwargs`` to its bases."""
    names: List[str] = []
    for klass in cls.__mro__:
        if klass is object or '__init__' not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names += [p.name for p in params
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                  and p.name not in ('self', 'init_cfg') and p.name not in names]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names


def _selector_class(kind: Any) -> type:
    cls = kind if isinstance(kind, type) else MODELS.get(kind) if isinstance(kind, str) else None
    if not (isinstance(cls, type) and issubclass(cls, BaseTokenSelector)):
        known = sorted(n for n, c in MODELS.module_dict.items()
                       if isinstance(c, type) and issubclass(c, BaseTokenSelector))
        raise ValueError(f'{TO_KEY}.selector={kind!r} is not a registered token selector; use one '
                         f'of {known}.')
    return cls


def _swapped_cfg(current: Mapping, selector: Union[str, Mapping], seed: Optional[int]) -> Dict:
    """The config of ``selector`` built with every argument of ``current`` it accepts."""
    wanted = dict(selector) if isinstance(selector, Mapping) else dict(type=selector)
    cls = _selector_class(wanted.get('type', current.get('type')))
    accepted = _constructor_args(cls)
    out = {k: v for k, v in current.items() if k in accepted}
    out.update({k: v for k, v in wanted.items() if k != 'type'})
    if seed is not None and 'seed' in accepted:  # deterministic selectors take no seed
        out['seed'] = int(seed)
    unknown = sorted(set(out) - set(accepted))
    if unknown:
        raise ValueError(f'{cls.__name__} takes no {unknown}; its arguments are {accepted}.')
    return dict(type=wanted.get('type', current.get('type')), **out)


def built_selector_cfg(selector: BaseTokenSelector) -> Dict:
    """The config a built selector would be rebuilt from (its constructor arguments)."""
    args = _constructor_args(type(selector))
    return dict(type=type(selector).__name__,
                **{k: getattr(selector, k) for k in args if hasattr(selector, k)})


def swap_selector(target: Any, selector: Union[str, Mapping, BaseTokenSelector],
                  seed: Optional[int] = None):
    """Change the token selector of ``target``, keeping every argument of the configured one.

    ``target``: a built recognizer or backbone (its selector module is replaced and
    the new one returned), or a model config (``model.backbone.selector`` is replaced
    in place and the model config returned). ``selector``: a registered type name,
    a config dict (its arguments override the kept ones) or a built selector (used
    as it is). Arguments the new type does not take (``stable`` of the
    group-dynamic selector for the random one) are left out; ``seed`` is given to
    selectors that draw at random and ignored by deterministic ones.
    """
    if isinstance(target, Mapping) and not hasattr(target, 'parameters'):
        backbone = target.get('backbone')
        if not isinstance(backbone, Mapping) or not isinstance(backbone.get('selector'), Mapping):
            raise ValueError(f'model.backbone has no selector to set to {selector!r}; set '
                             'model.backbone.selector=dict(type=...).')
        backbone['selector'] = _swapped_cfg(backbone['selector'], selector, seed)
        return target
    backbone = getattr(target, 'backbone', target)
    current = getattr(backbone, 'selector', None)
    if isinstance(selector, BaseTokenSelector):
        new = selector
    else:
        if current is None:
            raise ValueError(f'{type(backbone).__name__} has no selector to swap for '
                             f'{selector!r}; set model.backbone.selector=dict(type=...).')
        new = MODELS.build(_swapped_cfg(built_selector_cfg(current), selector, seed))
    device = next((p.device for p in backbone.parameters()), None)
    backbone.selector = new.to(device) if device is not None else new
    return backbone.selector


# ----------------------------------------------------------------- the switch
def to_settings(cfg) -> Optional[Dict]:
    """The validated ``token_optimization`` switch of a config, or None when it is off.

    The result holds only the keys the switch sets; ``budget`` (when set) is already
    parsed (a positive int or None for every token). The switch is off when it sets
    none of ``budget``, ``grid`` and ``plan``.
    """
    value = cfg.get(TO_KEY)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f'{TO_KEY}={value!r}: expected a dict, e.g. --cfg-options '
                        f'{TO_KEY}.budget=64 {TO_KEY}.plan=plan.json')
    unknown = sorted(set(value) - set(TO_FIELDS))
    if unknown:
        raise KeyError(f'{TO_KEY} has unknown keys {unknown}; the keys are {list(TO_FIELDS)}.')
    settings = {k: v for k, v in value.items() if v is not None or k == 'budget'}
    if not settings.get('cascade', True):  # cascade=False: off, like None
        settings.pop('cascade')
    if not any(k in settings for k in ('budget', 'grid', 'plan', 'cascade')):
        return None
    if 'budget' in settings:
        settings['budget'] = parse_budget(settings['budget'])
    if 'grid' in settings:
        grid = settings['grid']
        if isinstance(grid, Mapping):
            grid = (grid.get('frames'), grid.get('side'))
        if (not isinstance(grid, (list, tuple)) or len(grid) != 2
                or not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid)):
            raise ValueError(f'{TO_KEY}.grid={settings["grid"]!r}: expected (frames, side), e.g. '
                             f'--cfg-options "{TO_KEY}.grid=(12,56)"')
        settings['grid'] = (int(grid[0]), int(grid[1]))
    return settings


def resolve(settings: Mapping) -> Dict:
    """What the switch sets, the plan looked up: ``budget`` (only when set), ``frames``,
    ``side``, ``selector``, ``head`` (None: unchanged), ``plan_entry`` and ``cascade``
    (the ``model.test_cfg.cascade`` config; None: a fixed budget)."""
    out = dict(frames=None, side=None, selector=settings.get('selector'),
               head=settings.get('head'), plan_entry=None, cascade=None)
    if 'budget' in settings:
        out['budget'] = settings['budget']
    if settings.get('cascade'):
        # the cascade's own grid, stages and selector (the targets choose among cascades);
        # token_budget becomes its last stage, what a caller that ignores cascades sees
        entry = resolve_cascade(settings['cascade'], settings)
        out.update(budget=entry['cascade']['budgets'][-1], cascade=entry['cascade'],
                   frames=entry.get('frames'), side=entry.get('side'),
                   selector=out['selector'] or entry.get('selector'), plan_entry=entry)
    elif settings.get('min_top1') is not None:
        raise ValueError(f'{TO_KEY}.min_top1 chooses among the cascades of a plan; fix: add '
                         f'{TO_KEY}.cascade=True (and {TO_KEY}.plan=PLAN).')
    elif settings.get('plan'):
        if 'budget' in settings and settings['budget'] is None:
            raise ValueError(f'{TO_KEY}.budget=None (every token) with {TO_KEY}.plan: a plan '
                             'holds reduced budgets only; give a budget or a target '
                             '(max_latency_ms / max_gmacs), or drop the plan.')
        entry = TOPlan.load(settings['plan']).choose(
            budget=settings.get('budget'), max_latency_ms=settings.get('max_latency_ms'),
            max_gmacs=settings.get('max_gmacs'), selector=out['selector'])
        out.update(budget=entry['budget'], frames=entry['frames'], side=entry['side'],
                   selector=out['selector'] or entry['selector'], plan_entry=entry)
    if 'grid' in settings:
        out['frames'], out['side'] = settings['grid']
    return out


def apply_setting(cfg, setting: Mapping, splits: Sequence[str] = ('test', )):
    """Set one test setting in ``cfg`` in place (no switch involved) and return ``cfg``.

    ``setting`` as :func:`resolve` gives it: ``frames`` / ``side`` (the grid of the
    ``splits``' pipelines), ``selector`` and ``head``, each None or absent to leave it,
    and ``budget`` (``model.test_cfg.token_budget``; None: every token) only if it
    is to be set.
    """
    for split in splits:
        set_test_grid(cfg, setting.get('frames'), setting.get('side'), split=split)
    if 'model' in cfg:
        test_cfg = dict(cfg.model.get('test_cfg') or {})
        if 'budget' in setting:
            test_cfg['token_budget'] = parse_budget(setting['budget'], 'budget')
        if setting.get('head') is not None:
            test_cfg['head'] = setting['head']
        if 'cascade' in setting:
            test_cfg['cascade'] = setting['cascade']
        cfg.model['test_cfg'] = test_cfg
        if setting.get('selector') is not None:
            swap_selector(cfg.model, setting['selector'])
    return cfg


def _apply(cfg, splits: Sequence[str]) -> Optional[Dict]:
    """Apply the switch to ``cfg`` in place; what it resolved to (None: switch off)."""
    settings = to_settings(cfg)
    if settings is None:
        return None
    r = resolve(settings)
    apply_setting(cfg, r, splits)
    evaluator = cfg.get('test_evaluator')
    if r['cascade'] and evaluator is not None:  # the cascade's token use beside the accuracy
        metrics = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
        if not any(isinstance(m, Mapping) and m.get('type') == 'CascadeUsageMetric'
                   for m in metrics):
            cfg['test_evaluator'] = metrics + [dict(type='CascadeUsageMetric')]
    return r


def apply_token_optimization(cfg, splits: Sequence[str] = ('test', )):
    """Apply the switch to ``cfg`` in place and return it.

    Sets the grid of the test pipelines (``test_dataloader`` and ``test_pipeline``),
    ``model.test_cfg.token_budget`` / ``head`` / ``cascade`` (None unless the switch
    sets one; a cascade also adds ``CascadeUsageMetric`` to ``test_evaluator``) and
    the backbone's selector (:func:`swap_selector`). Idempotent; a config without
    the switch is unchanged.
    """
    _apply(cfg, splits)
    return cfg


def apply_to_model(model, cfg) -> None:
    """Apply ``cfg``'s switch to ``cfg`` and to ``model``, built before from ``cfg.model``.

    The hand-over of ``mmaction.apis.init_recognizer`` (``model.cfg = config``), where
    the switch could not reach the model yet: the config's test pipeline gets the
    grid, the model the config's new ``test_cfg`` (budget, head) and selector
    (:func:`swap_selector`). A config without the switch changes nothing.
    """
    r = _apply(cfg, ('test', ))
    if r is None:
        return
    model.test_cfg = dict(cfg.model.get('test_cfg') or {})
    if r['selector'] is not None:
        swap_selector(model, r['selector'])


FluxRecognizer.config_handover = apply_to_model


def set_switch(cfg, **fields):
    """Put command-line settings into ``cfg.token_optimization`` and return ``cfg``.

    The one place tools turn their ``--budget`` / ``--grid`` / ``--plan`` / ``--head``
    / targets into the switch. ``budget`` is set whenever it is passed (None or
    ``'all'``: every token), so a tool passes it only when the command line gave
    one; the other keys given as None are left as they are.
    """
    unknown = sorted(set(fields) - set(TO_FIELDS))
    if unknown:
        raise KeyError(f'{TO_KEY} has no keys {unknown}; the keys are {list(TO_FIELDS)}.')
    switch = dict(cfg.get(TO_KEY) or {})
    for key, value in fields.items():
        if key == 'budget':
            switch[key] = parse_budget(value, '--budget')
        elif value is not None:
            switch[key] = tuple(value) if key == 'grid' else value
    cfg[TO_KEY] = switch
    return cfg


def resolved_config(cfg):
    """A copy of ``cfg`` with the switch applied (``cfg`` itself when it is off)."""
    if to_settings(cfg) is None:
        return cfg
    return apply_token_optimization(copy.deepcopy(cfg))


def cfg_options(budget: Optional[int] = None, frames: Optional[int] = None,
                side: Optional[int] = None, plan: Optional[str] = None,
                selector: Optional[str] = None) -> List[str]:
    """The documented ``--cfg-options`` for a setting (no pipeline indices)."""
    opts = [f'{TO_KEY}.budget={budget}']  # None (every token) reads back as None
    if plan is not None:
        opts.append(f'{TO_KEY}.plan={plan}')
    if frames is not None and side is not None:
        opts.append(f'{TO_KEY}.grid=({int(frames)},{int(side)})')
    if selector is not None:
        opts.append(f'{TO_KEY}.selector={selector}')
    return opts


__all__ = [
    'PLAN_FORMAT', 'TOPlan', 'TO_FIELDS', 'TO_KEY', 'apply_setting', 'apply_to_model',
    'apply_token_optimization',
    'built_selector_cfg', 'cfg_options', 'choice_key', 'pareto_front', 'parse_budget', 'resolve',
    'resolved_config', 'set_switch', 'swap_selector', 'to_settings'
]
