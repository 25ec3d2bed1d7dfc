"""Catch Flux configuration mistakes before a runner starts (training or testing).

:func:`check_flux_config` looks at a merged config and raises one
``ValueError`` listing every problem found, each as
``<key>=<value>: <problem>; fix: <what to change>``:

* the Flux batch sampler (``train_dataloader.batch_sampler``): empty frame or
  side ranges, sides that are not multiples of the patch size, a token window
  that admits no ``(frames, side)`` pair, a patch size that differs from the
  backbone's;
* the token selector (``model.backbone.selector.type``) is not a registered
  :class:`~mmflux.models.selectors.BaseTokenSelector`;
* training budgets (``model.train_cfg.budgets``): below 1, or above the token
  count of the largest training grid (such a budget never selects anything);
  budgets and heads that do not pair up, heads out of range, and heads whose
  declared budget (``model.cls_head.head_budgets``) differs from the budget
  they are trained at;
* the test budget (``model.test_cfg.token_budget``): below 1, or above the
  token count of the val/test grid (frames of the sampler x crop side);
  crop sides of the val/test pipelines that are not multiples of the patch
  size; ``model.test_cfg.head`` out of range.

It is called by ``tools/train.py`` and ``tools/test.py`` right after the config
is merged, and by :class:`~mmflux.engine.FluxConfigCheckHook` (``before_run``)
for runners started any other way (e.g. MMAction2's own tools).
"""
import inspect
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmaction.registry import DATA_SAMPLERS, MODELS, TRANSFORMS

#: frame samplers whose ``clip_len`` gives the frames of a test view
SAMPLER_TYPES = ('FluxUniformSample', 'SSv2Sample', 'UniformSample', 'SampleFrames')
#: crops whose ``crop_size`` gives the side of a test view
CROP_TYPES = ('CenterCrop', 'ThreeCrop', 'TenCrop')
FLUX_RECOGNIZERS = ('FluxRecognizer', )
FLUX_BACKBONES = ('FluxViT', )
#: backbones whose ``selector`` is a token selector config
SELECTOR_BACKBONES = ('FluxViT', 'SelectiveVisionTransformer')


def _type_name(cfg: Any) -> Optional[str]:
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    if isinstance(kind, str):
        return kind.split('.')[-1]
    if isinstance(kind, type):
        return kind.__name__
    return None


def _registered(registry, cfg: Dict) -> Optional[type]:
    kind = cfg.get('type')
    if isinstance(kind, type):
        return kind
    if isinstance(kind, str):
        try:
            return registry.get(kind)
        except Exception:  # noqa: BLE001 - unknown scope or name
            return None
    return None


def _default(cls: Optional[type], arg: str, fallback: Any) -> Any:
    if cls is None:
        return fallback
    try:
        param = inspect.signature(cls.__init__).parameters.get(arg)
    except (TypeError, ValueError):
        return fallback
    if param is None or param.default is inspect.Parameter.empty:
        return fallback
    return param.default


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


# ---------------------------------------------------------------------------- parts
def _check_selector(backbone: Dict, errors: List[str]) -> None:
    from mmflux.models.selectors import BaseTokenSelector
    if 'selector' not in backbone or backbone['selector'] is None:
        return
    selector = backbone['selector']
    known = sorted(name for name, cls in MODELS.module_dict.items()
                   if isinstance(cls, type) and issubclass(cls, BaseTokenSelector))
    if not isinstance(selector, dict) or 'type' not in selector:
        errors.append(f'model.backbone.selector={selector!r}: not a selector config; fix: '
                      f"use dict(type=...) with one of {known}, or None for no selection.")
        return
    cls = _registered(MODELS, selector)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, BaseTokenSelector)):
        what = 'is not a registered model' if cls is None else 'is not a token selector'
        errors.append(f'model.backbone.selector.type={selector["type"]!r}: {what}; fix: '
                      f'use one of {known} (or register your BaseTokenSelector subclass in '
                      "MMAction2's MODELS and import it via custom_imports).")


def _train_pairs(cfg: Dict, patch: Optional[int], errors: List[str],
                 tubelet: int = 1) -> Tuple[Optional[List[Tuple[int, int]]], int]:
    """Accepted (frames, side) pairs of a FluxBatchSampler (or None) and its patch size."""
    from mmflux.datasets.flux_batch_sampler import FluxBatchSampler, flux_grid_pairs
    loader = cfg.get('train_dataloader')
    batch_sampler = loader.get('batch_sampler') if isinstance(loader, dict) else None
    if not isinstance(batch_sampler, dict):
        return None, patch
    cls = _registered(DATA_SAMPLERS, batch_sampler)
    if cls is None or not issubclass(cls, FluxBatchSampler):
        return None, patch
    args = {
        name: batch_sampler.get(name, _default(cls, name, None))
        for name in ('frames', 'sides', 'token_window', 'patch_size', 'tubelet_size')
    }
    try:
        pairs = flux_grid_pairs(_as_tuple(args['frames']), _as_tuple(args['sides']),
                                _as_tuple(args['token_window']), args['patch_size'],
                                args['tubelet_size'] or 1)
    except ValueError as err:
        errors.append(f'train_dataloader.{err}')
        return None, patch
    if (args['tubelet_size'] or 1) != tubelet:
        errors.append(
            f'train_dataloader.batch_sampler.tubelet_size={args["tubelet_size"]!r}: differs from '
            f'the backbone\'s tubelet size {tubelet}, so the token window counts the wrong '
            f'tokens; fix: set batch_sampler.tubelet_size={tubelet}.')
    if patch is not None and args['patch_size'] != patch:
        errors.append(
            f'train_dataloader.batch_sampler.patch_size={args["patch_size"]!r}: differs from '
            f'the backbone\'s patch size {patch}, so the token window counts the wrong '
            f'tokens; fix: set batch_sampler.patch_size={patch}.')
    return pairs, args['patch_size']


def _check_budget_value(key: str, shown: Any, budget: Any, errors: List[str]) -> bool:
    if budget is None:
        return False
    if not _is_int(budget) or budget < 1:
        errors.append(f'{key}={shown!r}: {budget!r} is not a token count >= 1; fix: use a '
                      'positive int (patch tokens kept) or None to keep every token.')
        return False
    return True


def _check_train(model: Dict, pairs: Optional[List[Tuple[int, int]]], patch: int, tubelet: int,
                 head_budgets: List[Any], errors: List[str]) -> None:
    train_cfg = model.get('train_cfg') or {}
    budgets = train_cfg.get('budgets', head_budgets)
    if not isinstance(budgets, (list, tuple)) or not budgets:
        errors.append(f'model.train_cfg.budgets={budgets!r}: expected a non-empty list of token '
                      'budgets; fix: e.g. budgets=(3072, 2048, 1024) (Flux-Multi) or (2048,).')
        return
    budgets = list(budgets)
    valid = [b for b in budgets
             if _check_budget_value('model.train_cfg.budgets', budgets, b, errors)]
    if pairs:
        top_t, top_r = max(pairs, key=lambda p: p[0] // tubelet * (p[1] // patch)**2)
        top = top_t // tubelet * (top_r // patch)**2
        for b in valid:
            if b > top:
                errors.append(
                    f'model.train_cfg.budgets={budgets}: {b} is above the {top} tokens of the '
                    f'largest training grid ({top_t} frames x {top_r} px), so it never selects '
                    f'tokens; fix: use budgets <= {top} (or None to keep every token), or '
                    'admit larger grids with train_dataloader.batch_sampler.frames/sides/'
                    'token_window.')
    heads = train_cfg.get('heads', list(range(len(budgets))))
    heads = list(heads) if isinstance(heads, (list, tuple)) else heads
    num_heads = len(head_budgets)
    if not isinstance(heads, list) or len(heads) != len(budgets):
        errors.append(f'model.train_cfg.heads={heads!r}: must give one head per budget of '
                      f'model.train_cfg.budgets={budgets}; fix: e.g. '
                      f'heads={tuple(range(len(budgets)))}.')
        return
    bad_heads = [h for h in heads if not _is_int(h) or not 0 <= h < num_heads]
    if bad_heads:
        errors.append(f'model.train_cfg.heads={heads}: {bad_heads} out of range for the '
                      f'{num_heads} heads of model.cls_head.head_budgets={head_budgets}; fix: '
                      f'use heads in 0..{num_heads - 1} or give cls_head one budget per head.')
        return
    trained: Dict[int, Any] = {}
    for b, h in zip(budgets, heads):
        if _is_int(b) and b >= 1:  # invalid budgets are reported above
            trained.setdefault(h, b)
    mismatched = [(h, b) for h, b in trained.items() if head_budgets[h] != b]
    if mismatched:
        wanted = list(head_budgets)
        for h, b in trained.items():
            wanted[h] = b
        detail = ', '.join(f'head {h} is trained at {b} but declared for {head_budgets[h]}'
                           for h, b in mismatched)
        errors.append(
            f'model.train_cfg.budgets={budgets} with heads={heads}: do not match '
            f'model.cls_head.head_budgets={head_budgets} ({detail}), so testing would pick '
            f'the wrong head for a budget; fix: set model.cls_head.head_budgets='
            f'{tuple(wanted)} or change model.train_cfg.budgets/heads.')


def _pipelines(cfg: Dict, split: str) -> List[Sequence[Dict]]:
    loader = cfg.get(f'{split}_dataloader')
    if not isinstance(loader, dict):
        return []
    dataset = loader.get('dataset')
    while isinstance(dataset, dict) and 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    if isinstance(dataset, dict) and isinstance(dataset.get('pipeline'), (list, tuple)):
        return [dataset['pipeline']]
    return []


def _view_grids(cfg: Dict, patch: int,
                errors: List[str]) -> List[Tuple[str, int, int, int]]:
    """``(where, frames, crop_h, crop_w)`` of the val/test pipelines."""
    grids = []
    for split in ('val', 'test'):
        for pipeline in _pipelines(cfg, split):
            where = f'{split}_dataloader.dataset.pipeline'
            frames, crop = None, None
            for i, step in enumerate(pipeline):
                name = _type_name(step)
                if name in SAMPLER_TYPES:
                    value = step.get('clip_len', _default(_registered(TRANSFORMS, step),
                                                          'clip_len', None))
                    frames = value if _is_int(value) else None
                elif name in CROP_TYPES:
                    size = step.get('crop_size')
                    size = (size, size) if _is_int(size) else tuple(size) if isinstance(
                        size, (list, tuple)) else None
                    if size is None or len(size) != 2 or not all(_is_int(s) for s in size):
                        continue
                    crop = (int(size[1]), int(size[0]))  # (h, w) from (w, h)
                    bad = [s for s in size if s < patch or s % patch]
                    if bad:
                        near = max(patch, round(bad[0] / patch) * patch)
                        errors.append(
                            f'{where}[{i}].crop_size={step.get("crop_size")!r} ({name}): '
                            f'{bad[0]} is not a multiple of the patch size {patch}; fix: use '
                            f'{near} (and resize to match), e.g. tools/test.py --grid FRAMES '
                            f'{near}.')
                        crop = None
            if frames is not None and crop is not None:
                grids.append((where, frames, crop[0], crop[1]))
    return grids


def _check_test(cfg: Dict, model: Dict, patch: Optional[int], head_budgets: List[Any],
                errors: List[str], tubelet: int = 1) -> None:
    test_cfg = model.get('test_cfg') or {}
    budget = test_cfg.get('token_budget')
    grids = _view_grids(cfg, patch, errors) if patch is not None else []
    if _check_budget_value('model.test_cfg.token_budget', budget, budget, errors) and (
            _type_name(model.get('backbone')) in FLUX_BACKBONES):
        for where, frames, crop_h, crop_w in grids:
            tokens = frames // tubelet * (crop_h // patch) * (crop_w // patch)
            if budget > tokens:
                errors.append(
                    f'model.test_cfg.token_budget={budget}: above the {tokens} patch tokens of '
                    f'the grid of {where} ({frames} frames x {crop_h}x{crop_w} px), so it '
                    f'selects nothing; fix: use a budget <= {tokens}, None (tools/test.py '
                    '--budget all) to keep every token, or a larger grid (tools/test.py '
                    '--grid FRAMES SIDE).')
    head = test_cfg.get('head')
    if head is not None and (not _is_int(head) or not 0 <= head < len(head_budgets)):
        errors.append(f'model.test_cfg.head={head!r}: out of range for the {len(head_budgets)} '
                      f'heads of model.cls_head.head_budgets={head_budgets}; fix: use 0..'
                      f'{len(head_budgets) - 1} or None (nearest budget).')


def _backbone_patch(backbone: Dict, errors: List[str]) -> Optional[int]:
    """Spatial patch size of the backbone config, None when it cannot be told."""
    if not isinstance(backbone, dict):
        return None
    if _type_name(backbone) in FLUX_BACKBONES:
        key = 'model.backbone.patch_size'
        value = backbone.get('patch_size', _default(_registered(MODELS, backbone),
                                                    'patch_size', 14))
    elif isinstance(backbone.get('vit'), dict):  # SelectiveVisionTransformer(vit=dict(...))
        key = 'model.backbone.vit.patch_size'
        value = backbone['vit'].get('patch_size', _default(_registered(MODELS, backbone['vit']),
                                                           'patch_size', 16))
    elif 'patch_size' in backbone:
        key, value = 'model.backbone.patch_size', backbone['patch_size']
    else:
        return None
    if not _is_int(value) or value < 1:
        errors.append(f'{key}={value!r}: must be a positive int; fix: the patch side in pixels '
                      '(14 for FluxViT).')
        return None
    return int(value)


def _backbone_tubelet(backbone: Dict, errors: List[str]) -> int:
    """Frames per patch of a FluxViT or wrapped MMAction2 ViT config (1 for any other)."""
    if not isinstance(backbone, dict):
        return 1
    if _type_name(backbone) in FLUX_BACKBONES:
        key = 'model.backbone.tubelet_size'
        value = backbone.get('tubelet_size', _default(_registered(MODELS, backbone), 'tubelet_size', 1))
    elif _type_name(backbone) in SELECTOR_BACKBONES and isinstance(backbone.get('vit'), dict):
        # SelectiveVisionTransformer(vit=dict(...)): MMAction2's ViT defaults to 2 frames per patch
        key = 'model.backbone.vit.tubelet_size'
        value = backbone['vit'].get('tubelet_size', _default(_registered(MODELS, backbone['vit']),
                                                             'tubelet_size', 2))
    else:
        return 1
    if not _is_int(value) or value < 1:
        errors.append(f'{key}={value!r}: must be a positive int; fix: frames per patch '
                      '(1 for the released FluxViT, 2 for MMAction2\'s ViT).')
        return 1
    return int(value)


def _max_label(ann_file: str) -> Optional[int]:
    """Largest integer label of an MMAction2 list file (last field of a line), or None."""
    top = None
    with open(ann_file) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 2 and fields[-1].lstrip('-').isdigit():
                top = int(fields[-1]) if top is None else max(top, int(fields[-1]))
    return top


def _check_labels(cfg: Dict, model: Dict, errors: List[str]) -> None:
    """Labels of the annotation lists must fit ``model.cls_head.num_classes``."""
    from .dataset_overrides import innermost_dataset
    head = model.get('cls_head')
    num_classes = head.get('num_classes') if isinstance(head, dict) else None
    if not _is_int(num_classes):
        return
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = innermost_dataset(cfg, loader)
        ann_file = dataset.get('ann_file') if isinstance(dataset, dict) else None
        if not isinstance(ann_file, str) or not ann_file.endswith('.txt') or not osp.isfile(ann_file):
            continue
        top = _max_label(ann_file)
        if top is not None and top >= num_classes:
            errors.append(
                f'{loader}.dataset.ann_file={ann_file!r}: has label {top} but '
                f'model.cls_head.num_classes={num_classes}; fix: --cfg-options '
                f'num_classes={top + 1} (or model.cls_head.num_classes={top + 1}).')


# ------------------------------------------------------------------------------- API
def check_flux_config(cfg: Any) -> None:
    """Raise ``ValueError`` naming every Flux setting of ``cfg`` that cannot work.

    ``cfg`` is an mmengine ``Config`` (or dict) after ``--cfg-options`` are
    merged. Configs whose model is not a Flux recognizer / backbone are only
    checked for the parts they use.
    """
    errors: List[str] = []
    model = cfg.get('model') or {}
    if not isinstance(model, dict):
        model = {}
    backbone = model.get('backbone') or {}
    patch = _backbone_patch(backbone, errors)
    tubelet = _backbone_tubelet(backbone, errors)
    if _type_name(backbone) in SELECTOR_BACKBONES:
        _check_selector(backbone, errors)
    pairs, train_patch = _train_pairs(cfg, patch, errors, tubelet)
    if _type_name(model) in FLUX_RECOGNIZERS:
        head = model.get('cls_head') or {}
        head_budgets = head.get('head_budgets', _default(_registered(MODELS, head),
                                                         'head_budgets', (3072, 2048, 1024)))
        head_budgets = list(head_budgets) if isinstance(head_budgets, (list, tuple)) else []
        bad = [b for b in head_budgets if not _is_int(b) or b < 1]
        if not head_budgets or bad:
            errors.append(f'model.cls_head.head_budgets={head_budgets!r}: must be one positive '
                          'token budget per head; fix: e.g. (3072, 2048, 1024).')
        else:
            _check_train(model, pairs, train_patch, tubelet, head_budgets, errors)
            _check_test(cfg, model, patch, head_budgets, errors, tubelet)
        _check_labels(cfg, model, errors)
    if errors:
        lines = '\n'.join(f'  - {e}' for e in errors)
        raise ValueError(f'{len(errors)} problem(s) in the Flux config:\n{lines}')


__all__ = ['check_flux_config']
