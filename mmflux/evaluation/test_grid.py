"""The one owner of the test grid: read it from a config, set it, say it as ``--cfg-options``.

Why one module: the grid (frames sampled per view x resize/crop side) lives in
several pipeline steps of several config keys (``test_dataloader``,
``test_pipeline`` used by ``mmaction.apis.inference_recognizer``, ``val_*``).
Every tool that needs the grid reads or edits it here, so the sampler and crop
types are named once and no tool edits pipeline steps by index.

The documented switch is the top-level key ``token_optimization`` (see
:data:`TO_KEY`), applied by :func:`apply_token_optimization` when the runner is
built (:class:`mmflux.engine.FluxRunner`) or when ``init_recognizer`` hands the
model its config (:class:`mmflux.evaluation.TokenOptimizationConfigMixin`).
"""
import copy
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from .cascade import resolve_cascade
from .to_plan import TOPlan

#: frame samplers whose ``clip_len`` is the number of frames of a view
SAMPLER_TYPES = ('FluxUniformSample', 'SSv2Sample', 'UniformSample', 'SampleFrames')
#: crops whose ``crop_size`` is the side of a view
CROP_TYPES = ('CenterCrop', 'ThreeCrop', 'TenCrop')
#: resizes of the short side that go with the crop
RESIZE_TYPES = ('Resize', )
#: frame decoders end with this (DecordDecode, PyAVDecode, RawFrameDecode, ...)
DECODER_SUFFIX = 'Decode'
#: the top-level config key of the Token Optimization switch
TO_KEY = 'token_optimization'
#: its keys; ``budget`` plus ``grid=(frames, side)`` or ``plan=FILE``; ``cascade``: a
#: per-video adaptive budget (mmflux/evaluation/cascade.py)
TO_FIELDS = ('budget', 'grid', 'plan', 'selector', 'head', 'max_latency_ms', 'max_gmacs',
             'cascade', 'min_top1')


class ViewGrid(NamedTuple):
    """Frames per view and the square crop side; ``num_clips`` temporal views."""
    frames: int
    side: int
    num_clips: Optional[int] = None
    crop: Optional[str] = None


def type_name(step: Any) -> str:
    kind = step.get('type', '') if isinstance(step, dict) else ''
    return kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))


def pipelines(cfg, split: str = 'test') -> List[Tuple[str, list]]:
    """``(key, pipeline)`` of a split: its dataloader's dataset (through wrappers) and
    the top-level ``<split>_pipeline`` (what ``inference_recognizer`` uses)."""
    found = []
    loader = cfg.get(f'{split}_dataloader')
    if isinstance(loader, dict):
        dataset, key = loader.get('dataset'), f'{split}_dataloader.dataset'
        while isinstance(dataset, dict) and 'pipeline' not in dataset and 'dataset' in dataset:
            dataset, key = dataset['dataset'], key + '.dataset'
        if isinstance(dataset, dict) and isinstance(dataset.get('pipeline'), (list, tuple)):
            found.append((key + '.pipeline', dataset['pipeline']))
    if isinstance(cfg.get(f'{split}_pipeline'), (list, tuple)):
        found.append((f'{split}_pipeline', cfg[f'{split}_pipeline']))
    return found


def is_decoder(step: Any) -> bool:
    return type_name(step).endswith(DECODER_SUFFIX)


def grid_steps(pipeline: Sequence) -> Dict[str, List[Tuple[int, dict]]]:
    """The steps of a pipeline that carry the grid, by role: sampler, resize, crop."""
    roles = dict(sampler=[], resize=[], crop=[])
    for i, step in enumerate(pipeline):
        name = type_name(step)
        if name in SAMPLER_TYPES:
            roles['sampler'].append((i, step))
        elif name in RESIZE_TYPES:
            roles['resize'].append((i, step))
        elif name in CROP_TYPES:
            roles['crop'].append((i, step))
    return roles


def crop_hw(step: dict) -> Optional[Tuple[int, int]]:
    """(h, w) of a crop step; mmaction crop sizes are ``int`` or ``(w, h)``."""
    size = step.get('crop_size')
    if isinstance(size, int) and not isinstance(size, bool):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return int(size[1]), int(size[0])
    return None


def view_grids(cfg, splits: Sequence[str] = ('val', 'test')) -> List[Dict]:
    """Every view grid the config tests with, for checks (e.g. config_check).

    One dict per pipeline: ``where`` (config key), ``frames`` and its step index
    ``sampler_index``, ``crop`` (h, w), ``crop_index``, ``crop_type`` and the raw
    ``crop_size``; values the pipeline does not set are None.
    """
    grids = []
    for split in splits:
        for where, pipeline in pipelines(cfg, split):
            roles = grid_steps(pipeline)
            out = dict(where=where, frames=None, sampler_index=None, crop=None, crop_index=None,
                       crop_type=None, crop_size=None, num_clips=None)
            if roles['sampler']:
                i, step = roles['sampler'][0]
                out.update(frames=step.get('clip_len'), sampler_index=i,
                           num_clips=step.get('num_clips'))
            if roles['crop']:
                i, step = roles['crop'][0]
                out.update(crop=crop_hw(step), crop_index=i, crop_type=type_name(step),
                           crop_size=step.get('crop_size'))
            grids.append(out)
    return grids


def read_test_grid(cfg, split: str = 'test') -> Optional[ViewGrid]:
    """The grid a split tests with, after the Token Optimization switch; None if the
    pipeline does not say (no sampler with ``clip_len`` or no square crop)."""
    cfg = resolved_config(cfg)
    for grid in view_grids(cfg, (split, )):
        frames, crop = grid['frames'], grid['crop']
        if isinstance(frames, int) and crop is not None and crop[0] == crop[1]:
            return ViewGrid(frames, crop[0], grid['num_clips'], grid['crop_type'])
    return None


def set_test_grid(cfg, frames: Optional[int] = None, side: Optional[int] = None,
                  budget: Optional[int] = -1, head: Optional[int] = -1, split: str = 'test',
                  num_clips: Optional[int] = None, selector: Optional[str] = None,
                  crop: Optional[str] = None):
    """Edit ``cfg`` in place: sampled frames, resize/crop side, test budget, head, selector.

    ``budget``/``head`` left at -1 are not touched; None sets "all tokens" /
    "nearest head". Views (``num_clips``, the crop type) are kept unless given,
    so K400's 4x3 and SSv2's 2x3 testing stay as they are; ``crop`` (one of
    :data:`CROP_TYPES`) replaces the crop type, e.g. ``CenterCrop`` for one view.
    """
    if crop is not None and crop not in CROP_TYPES:
        raise ValueError(f'crop={crop!r}: use one of {CROP_TYPES}.')
    for where, pipeline in pipelines(cfg, split):
        roles = grid_steps(pipeline)
        if frames is not None and not roles['sampler']:
            raise ValueError(f'{where} has no frame sampler ({", ".join(SAMPLER_TYPES)}) to set '
                             f'{frames} frames on; add one or test another config.')
        if side is not None and not roles['crop']:
            raise ValueError(f'{where} has no crop ({", ".join(CROP_TYPES)}) to set the side '
                             f'{side} on; add one or test another config.')
        for _, step in roles['sampler']:
            if frames is not None:
                step['clip_len'] = int(frames)
            if num_clips is not None:
                step['num_clips'] = int(num_clips)
        if side is not None:
            for _, step in roles['resize']:
                step['scale'] = (-1, int(side))
                step['keep_ratio'] = True
            for _, step in roles['crop']:
                step['crop_size'] = int(side)
        for _, step in roles['crop'] if crop is not None else ():
            step['type'] = crop
    if 'model' in cfg:
        test_cfg = dict(cfg.model.get('test_cfg') or {})
        if budget != -1:
            test_cfg['token_budget'] = budget
        if head != -1:
            test_cfg['head'] = head
        cfg.model['test_cfg'] = test_cfg
        if selector is not None:
            backbone = cfg.model.get('backbone', {})
            if not isinstance(backbone.get('selector'), dict):
                raise ValueError(f'model.backbone has no selector to set to {selector}; '
                                 'set model.backbone.selector=dict(type=...).')
            backbone['selector'] = dict(backbone['selector'], type=selector)
    return cfg


# ----------------------------------------------------------------- the switch
def to_settings(cfg) -> Optional[Dict]:
    """The ``token_optimization`` switch of a config, or None when it is off."""
    value = cfg.get(TO_KEY)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f'{TO_KEY}={value!r}: expected a dict, e.g. --cfg-options '
                        f'{TO_KEY}.budget=64 {TO_KEY}.plan=plan.json')
    unknown = sorted(set(value) - set(TO_FIELDS) - {'applied'})
    if unknown:
        raise KeyError(f'{TO_KEY} has unknown keys {unknown}; the keys are {list(TO_FIELDS)}.')
    settings = {k: value.get(k) for k in TO_FIELDS}
    if all(settings[k] is None for k in ('budget', 'grid', 'plan')) and not settings['cascade']:
        return None
    return settings


def resolve(settings: Dict) -> Dict:
    """``budget, frames, side, selector, head`` of a switch, the plan looked up.

    ``budget`` is -1 when the switch does not set it (the config's stays) and
    None for all tokens; ``frames``/``side`` are None when the grid stays;
    ``cascade`` the ``model.test_cfg.cascade`` config when the switch sets one.
    """
    # budget: -1 = not given (the config's stays), None = all tokens
    budget = settings.get('budget')
    budget = -1 if budget is None else None if str(budget).lower() in ('all', 'none') else budget
    out = dict(budget=budget, frames=None, side=None,
               selector=settings.get('selector'), head=settings.get('head'), plan_entry=None,
               cascade=None)
    if settings.get('cascade'):
        # the cascade's own grid, stages and selector (the targets choose among cascades)
        entry = resolve_cascade(settings['cascade'], settings)
        out.update(budget=entry['cascade']['budgets'][-1], cascade=entry['cascade'],
                   frames=entry.get('frames'), side=entry.get('side'),
                   selector=out['selector'] or entry.get('selector'), plan_entry=entry)
    elif settings.get('min_top1') is not None:
        raise ValueError(f'{TO_KEY}.min_top1 chooses among the cascades of a plan; fix: add '
                         f'{TO_KEY}.cascade=True (and {TO_KEY}.plan=PLAN).')
    elif settings.get('plan'):
        plan = TOPlan.load(settings['plan'])
        entry = plan.choose(budget=None if budget == -1 else budget,
                            max_latency_ms=settings.get('max_latency_ms'),
                            max_gmacs=settings.get('max_gmacs'), selector=out['selector'])
        out.update(budget=entry['budget'], frames=entry['frames'], side=entry['side'],
                   selector=out['selector'] or entry['selector'], plan_entry=entry)
    grid = settings.get('grid')
    if grid is not None:
        if isinstance(grid, dict):
            grid = (grid.get('frames'), grid.get('side'))
        if (not isinstance(grid, (list, tuple)) or len(grid) != 2
                or not all(isinstance(g, int) and g > 0 for g in grid)):
            raise ValueError(f'{TO_KEY}.grid={grid!r}: expected (frames, side), e.g. '
                             f'--cfg-options "{TO_KEY}.grid=(12,56)"')
        out['frames'], out['side'] = int(grid[0]), int(grid[1])
    if out['budget'] not in (None, -1) and (isinstance(out['budget'], bool)
                                            or not isinstance(out['budget'], int)
                                            or out['budget'] < 1):
        raise ValueError(f'{TO_KEY}.budget={out["budget"]!r}: expected a positive number of '
                         'patch tokens per view, or "all".')
    return out


def apply_token_optimization(cfg, splits: Sequence[str] = ('test', )):
    """Apply the ``token_optimization`` switch to ``cfg`` in place and return it.

    Sets the grid of the test pipelines (``test_dataloader`` and
    ``test_pipeline``), ``model.test_cfg.token_budget`` / ``head`` / ``cascade``
    (None unless the switch sets one) and the backbone's selector. Idempotent; a
    config without the switch is unchanged.
    """
    settings = to_settings(cfg)
    if settings is None:
        return cfg
    r = resolve(settings)
    for split in splits:
        set_test_grid(cfg, r['frames'], r['side'], budget=r['budget'],
                      head=r['head'] if r['head'] is not None else -1, split=split,
                      selector=r['selector'])
    if 'model' in cfg:
        cfg.model['test_cfg'] = dict(cfg.model.get('test_cfg') or {}, cascade=r['cascade'])
    evaluator = cfg.get('test_evaluator')
    if r['cascade'] and evaluator is not None:  # the cascade's token use beside the accuracy
        metrics = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
        if not any(isinstance(m, dict) and m.get('type') == 'CascadeUsageMetric' for m in metrics):
            cfg['test_evaluator'] = metrics + [dict(type='CascadeUsageMetric')]
    return cfg


def set_switch(cfg, **fields):
    """Put command-line settings into ``cfg.token_optimization`` (None leaves a key as it is).

    The one place tools turn their ``--budget`` / ``--grid`` / ``--plan`` /
    ``--head`` / targets into the switch; ``budget='all'`` means every token.
    """
    unknown = sorted(set(fields) - set(TO_FIELDS))
    if unknown:
        raise KeyError(f'{TO_KEY} has no keys {unknown}; the keys are {list(TO_FIELDS)}.')
    switch = dict(cfg.get(TO_KEY) or {})
    switch.update({k: tuple(v) if k == 'grid' else v for k, v in fields.items() if v is not None})
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
    opts = [f'{TO_KEY}.budget={budget if budget is not None else "all"}']
    if plan is not None:
        opts.append(f'{TO_KEY}.plan={plan}')
    if frames is not None and side is not None:
        opts.append(f'{TO_KEY}.grid=({int(frames)},{int(side)})')
    if selector is not None:
        opts.append(f'{TO_KEY}.selector={selector}')
    return opts
