"""The one owner of the test grid of a config: read it, set it.

Why one module: the grid (frames sampled per view x resize/crop side) lives in
several pipeline steps of several config keys (``test_dataloader``,
``test_pipeline`` used by ``mmaction.apis.inference_recognizer``, ``val_*``).
Every tool that needs the grid reads or edits it here, so the sampler and crop
types are named once and no tool edits pipeline steps by index. The budget, head
and selector of a test setting belong to the Token Optimization switch
(:mod:`mmflux.evaluation.to_switch`), which sets the grid through this module.
"""
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

#: frame samplers whose ``clip_len`` is the number of frames of a view
SAMPLER_TYPES = ('FluxUniformSample', 'SSv2Sample', 'UniformSample', 'SampleFrames')
#: crops whose ``crop_size`` is the side of a view
CROP_TYPES = ('CenterCrop', 'ThreeCrop', 'TenCrop')
#: resizes of the short side that go with the crop
RESIZE_TYPES = ('Resize', )
#: frame decoders end with this (DecordDecode, PyAVDecode, RawFrameDecode, ...)
DECODER_SUFFIX = 'Decode'


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
    """The grid a split tests with; None if the pipeline does not say (no sampler with
    ``clip_len`` or no square crop). The config as it is: pass
    :func:`~mmflux.evaluation.to_switch.resolved_config` for the grid after the switch."""
    for grid in view_grids(cfg, (split, )):
        frames, crop = grid['frames'], grid['crop']
        if isinstance(frames, int) and crop is not None and crop[0] == crop[1]:
            return ViewGrid(frames, crop[0], grid['num_clips'], grid['crop_type'])
    return None


def set_test_grid(cfg, frames: Optional[int] = None, side: Optional[int] = None,
                  split: str = 'test', num_clips: Optional[int] = None,
                  crop: Optional[str] = None):
    """Edit ``cfg`` in place: sampled frames and resize/crop side of a split's pipelines.

    Arguments left at None are not touched. Views (``num_clips``, the crop type) are
    kept unless given, so K400's 4x3 and SSv2's 2x3 testing stay as they are; ``crop``
    (one of :data:`CROP_TYPES`) replaces the crop type, e.g. ``CenterCrop`` for one view.
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
    return cfg
