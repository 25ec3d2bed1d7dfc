"""Catch Flux settings that cannot work together, on the objects they configure.

Each constructor checks its own arguments (the batch sampler its ranges, the
backbone its selector and patch sizes, the head its budgets, the recognizer its
train/test budgets and heads). What spans objects is checked here, on the
*built* objects, by :func:`check_built`:

* training budgets against the budgets the head declares for each trained head;
* the batch sampler's patch / tubelet size against the backbone's;
* training budgets above the token count of the sampler's largest grid (such a
  budget never selects anything);
* val/test crops that the backbone cannot cut into patches, and a test budget
  above the tokens of the val/test grid;
* labels of the annotation lists against ``cls_head.num_classes``.

:class:`~mmflux.engine.FluxConfigCheckHook` runs it in ``before_run`` on the
runner's model and train batch sampler, so MMAction2's own tools get it too.
:func:`check_flux_config` builds the objects of a merged config (the model on
the meta device) and runs the same checks, collecting every constructor's error,
so ``tools/train.py`` / ``tools/test.py`` refuse a config before a runner
exists. Every problem reads ``<key>=<value>: <problem>; fix: <what to change>``.
"""
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine.registry import DefaultScope

from mmaction.registry import DATA_SAMPLERS, DATASETS, MODELS
from ..datasets.annotation_check import AnnotationError
from ..datasets.flux_batch_sampler import FluxBatchSampler, with_backbone_geometry
from ..evaluation.grid_config import view_grids
from ..models.backbones.base import BaseFluxBackbone
from ..models.recognizers import FluxRecognizer

Grid = Tuple[str, int, int, int]  # (where, frames, crop height, crop width)


def _registered(registry, cfg: Any) -> Optional[type]:
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    if isinstance(kind, type):
        return kind
    try:
        return registry.get(kind) if isinstance(kind, str) else None
    except Exception:  # noqa: BLE001 - unknown scope or name
        return None


# ------------------------------------------------------------------ built objects
def crop_grids(cfg: Any, backbone, errors: List[str]) -> List[Grid]:
    """The val/test view grids (read by :func:`mmflux.evaluation.grid_config.view_grids`)
    whose crops the backbone can cut into patches; the others are reported with the
    nearest size it can."""
    grids, seen = [], set()
    for grid in view_grids(cfg):
        frames, crop = grid['frames'], grid['crop']
        # a split's top-level pipeline is usually the one its dataloader uses: report once
        view = (grid['where'].split('_')[0], frames, grid['crop_size'], grid['crop_type'])
        if crop is None or view in seen:
            continue
        seen.add(view)
        try:
            backbone.token_grid(backbone.tubelet_size, *crop)
        except ValueError:
            p = backbone.patch_size
            bad = next(s for s in crop if s < p or s % p)
            near = max(p, round(bad / p) * p)
            errors.append(
                f'{grid["where"]}[{grid["crop_index"]}].crop_size={grid["crop_size"]!r} '
                f'({grid["crop_type"]}): {bad} is not a multiple of the patch size {p}; fix: use '
                f'{near} (and resize to match), e.g. tools/test.py --grid FRAMES {near}.')
            continue
        if isinstance(frames, int):
            grids.append((grid['where'], frames, crop[0], crop[1]))
    return grids


def _check_sampler(model, batch_sampler, errors: List[str]) -> None:
    backbone = model.backbone
    for name in ('patch_size', 'tubelet_size'):
        mine, theirs = getattr(batch_sampler, name), getattr(backbone, name)
        if mine != theirs:
            errors.append(
                f'train_dataloader.batch_sampler.{name}={mine!r}: differs from the backbone\'s '
                f'{name.replace("_", " ")} {theirs}, so the token window counts the wrong '
                f'tokens; fix: set batch_sampler.{name}={theirs}.')
    if errors:
        return
    tokens = {pair: backbone.num_tokens(pair[0], pair[1], pair[1]) for pair in batch_sampler.pairs}
    (top_t, top_r), top = max(tokens.items(), key=lambda item: item[1])
    budgets = model.train_budgets
    for b in budgets:
        if b is not None and b > top:
            errors.append(
                f'model.train_cfg.budgets={budgets}: {b} is above the {top} tokens of the largest '
                f'training grid ({top_t} frames x {top_r} px), so it never selects tokens; fix: '
                f'use budgets <= {top} (or None to keep every token), or admit larger grids with '
                'train_dataloader.batch_sampler.frames/sides/token_window.')


def _check_heads(model, errors: List[str]) -> None:
    """Each head must be trained at the budget it declares (testing picks heads by it)."""
    budgets, heads = model.train_budgets, model.train_heads
    head_budgets = model.cls_head.head_budgets
    trained: Dict[int, int] = {}
    for b, h in zip(budgets, heads):
        if b is not None:
            trained.setdefault(h, b)
    wrong = {h: b for h, b in trained.items() if head_budgets[h] != b}
    if wrong:
        wanted = tuple(trained.get(h, b) for h, b in enumerate(head_budgets))
        detail = ', '.join(f'head {h} is trained at {b} but declared for {head_budgets[h]}'
                           for h, b in wrong.items())
        errors.append(f'model.train_cfg.budgets={budgets} with heads={heads}: do not match '
                      f'model.cls_head.head_budgets={head_budgets} ({detail}), so testing would '
                      f'pick the wrong head for a budget; fix: set model.cls_head.head_budgets='
                      f'{wanted} or change model.train_cfg.budgets/heads.')


def _check_test_budget(model, grids: List[Grid], errors: List[str]) -> None:
    budget = (model.test_cfg or {}).get('token_budget')
    if budget is None:
        return
    for where, frames, crop_h, crop_w in grids:
        try:
            tokens = model.backbone.num_tokens(frames, crop_h, crop_w)
        except ValueError as err:
            errors.append(f'{where}: {frames} frames x {crop_h}x{crop_w} px: {err}')
            continue
        if budget > tokens:
            errors.append(
                f'model.test_cfg.token_budget={budget}: above the {tokens} patch tokens of the '
                f'grid of {where} ({frames} frames x {crop_h}x{crop_w} px), so it selects '
                f'nothing; fix: use a budget <= {tokens}, None (tools/test.py --budget all) to '
                'keep every token, or a larger grid (tools/test.py --grid FRAMES SIDE).')


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _labels(dataset) -> List[int]:
    """Every integer label of a built (annotation-loaded) dataset, any file format."""
    labels = []
    for i in range(len(dataset)):
        label = dataset.get_data_info(i).get('label')
        if isinstance(label, (list, tuple)):
            labels += [int(v) for v in label]
        elif label is not None and not isinstance(label, torch.Tensor):
            labels.append(int(label))
        elif isinstance(label, torch.Tensor):
            labels += [int(v) for v in label.reshape(-1).tolist()]
    return labels


def _labels_of(dataset, index: int) -> List[int]:
    label = dataset.get_data_info(index).get('label')
    if isinstance(label, torch.Tensor):
        return [int(v) for v in label.reshape(-1).tolist()]
    return [int(v) for v in label] if isinstance(label, (list, tuple)) else \
        [] if label is None else [int(label)]


def _check_labels(datasets: Dict[str, Any], num_classes: int, errors: List[str]) -> None:
    for loader, dataset in datasets.items():
        labels = _labels(dataset)
        top = max(labels) if labels else None
        if top is not None and top >= num_classes:
            ann_file = getattr(dataset, 'ann_file', '?')
            where = getattr(dataset, 'label_location', None)  # file, line number and text
            first = next((i for i in range(len(dataset)) if top in _labels_of(dataset, i)), None)
            at = f' ({where(first)})' if where is not None and first is not None else ''
            errors.append(
                f'{loader}.dataset.ann_file={ann_file!r}: has label {top}{at} but '
                f'model.cls_head.num_classes={num_classes}; fix: --cfg-options '
                f'num_classes={top + 1} (or model.cls_head.num_classes={top + 1}).')


def check_built(model, batch_sampler=None, cfg: Any = None,
                datasets: Optional[Dict[str, Any]] = None) -> List[str]:
    """Problems between a built Flux recognizer, its train batch sampler, the
    val/test pipelines of ``cfg`` and the labels of the built ``datasets``
    (loader name -> dataset); [] for other models."""
    if not isinstance(model, FluxRecognizer):
        return []
    errors: List[str] = []
    _check_heads(model, errors)
    if isinstance(batch_sampler, FluxBatchSampler):
        _check_sampler(model, batch_sampler, errors)
    if cfg is not None:
        _check_test_budget(model, crop_grids(cfg, model.backbone, errors), errors)
    if datasets:
        _check_labels(datasets, model.cls_head.num_classes, errors)
    return errors


def raise_problems(errors: List[str]) -> None:
    if errors:
        lines = '\n'.join(f'  - {e}' for e in errors)
        raise ValueError(f'{len(errors)} problem(s) in the Flux config:\n{lines}')


# ------------------------------------------------------------------ from a config
def _collect(errors: List[str], build, *args) -> Any:
    try:
        return build(*args)
    except ValueError as err:
        errors.extend(str(err).split('\n'))
        return None


def _build_batch_sampler(cfg: Any, backbone=None) -> Any:
    """The train batch sampler as the runner will build it: under ``FluxRunner``
    with the backbone's patch/tubelet sizes where the config leaves them out."""
    loader = cfg.get('train_dataloader')
    spec = loader.get('batch_sampler') if isinstance(loader, dict) else None
    if not isinstance(spec, dict) or _registered(DATA_SAMPLERS, spec) is None:
        return None
    if str(cfg.get('runner_type', '')).split('.')[-1] == 'FluxRunner':
        if backbone is None:  # the model's own errors are reported
            raise ValueError('train_dataloader.batch_sampler: not checked, since it counts tokens '
                             'with the backbone\'s patch and tubelet sizes and the model did not '
                             'build; fix the model, then check again.')
        spec = with_backbone_geometry(spec, backbone)
    try:
        return DATA_SAMPLERS.build(dict(spec, sampler=range(1), batch_size=1, seed=0))
    except ValueError as err:
        raise ValueError(f'train_dataloader.{err}') from None


def _build_model(model_cfg: Dict) -> Any:
    try:
        with torch.device('meta'):  # shapes only: no memory, no init
            return MODELS.build(dict(model_cfg))
    except (RuntimeError, NotImplementedError):  # a module that reads values at build time
        return MODELS.build(dict(model_cfg))


def check_flux_config(cfg: Any) -> None:
    """Raise ``ValueError`` naming every Flux setting of a merged config that cannot work.

    Builds what the config describes (each constructor's own error is collected),
    then runs :func:`check_built` on the built objects.
    """
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'mmaction'):
        raise_problems(_config_errors(cfg))


def _config_errors(cfg: Any) -> List[str]:
    errors: List[str] = []
    model = None
    model_cfg = cfg.get('model')
    recognizer = _registered(MODELS, model_cfg)
    flux = isinstance(recognizer, type) and issubclass(recognizer, FluxRecognizer)
    if flux:
        backbone = model_cfg.get('backbone') or {}
        backbone_cls = _registered(MODELS, backbone)
        if isinstance(backbone_cls, type) and issubclass(backbone_cls, BaseFluxBackbone):
            _collect(errors, BaseFluxBackbone.build_selector, backbone.get('selector'))
        errors += FluxRecognizer.cfg_errors(model_cfg.get('train_cfg'), model_cfg.get('test_cfg'))
        if not errors:
            model = _collect(errors, _build_model, model_cfg)
    # the sampler after the model: it counts tokens with the backbone's geometry
    batch_sampler = _collect(errors, _build_batch_sampler, cfg, getattr(model, 'backbone', None))
    if model is not None:
        errors += check_built(model, batch_sampler, cfg, _build_datasets(cfg))
    return errors


def _build_datasets(cfg: Any) -> Dict[str, Any]:
    """The datasets of the config's loaders that can be built here (annotations
    parsed, no video read); one whose files are missing is the runner's to report."""
    datasets = {}
    for loader in LOADERS:
        spec = cfg.get(loader)
        spec = spec.get('dataset') if isinstance(spec, dict) else None
        if not isinstance(spec, dict):
            continue
        try:
            datasets[loader] = DATASETS.build(spec)
        except AnnotationError:  # a bad line of a list: refused here, by file and line
            raise
        except Exception:  # noqa: BLE001 - missing files, a dataset needing a runner
            continue
    return datasets


__all__ = ['check_built', 'check_flux_config', 'crop_grids', 'raise_problems']
