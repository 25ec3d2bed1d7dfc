"""Set the test grid (frames x side) and the token budget of a config in one place."""
from typing import List, Optional

from mmengine.config import Config

SAMPLER_TYPES = ('FluxUniformSample', 'SSv2Sample', 'UniformSample', 'SampleFrames')
CROP_TYPES = ('CenterCrop', 'ThreeCrop', 'TenCrop')


def _pipelines(cfg: Config, split: str) -> List[list]:
    pipelines = []
    loader = cfg.get(f'{split}_dataloader')
    if loader is not None:
        dataset = loader['dataset']
        while 'pipeline' not in dataset and 'dataset' in dataset:  # wrappers
            dataset = dataset['dataset']
        pipelines.append(dataset['pipeline'])
    if cfg.get(f'{split}_pipeline') is not None:
        pipelines.append(cfg[f'{split}_pipeline'])
    return pipelines


def set_test_grid(cfg: Config, frames: Optional[int] = None, side: Optional[int] = None,
                  budget: Optional[int] = -1, head: Optional[int] = -1, split: str = 'test',
                  num_clips: Optional[int] = None) -> Config:
    """Edit ``cfg`` in place: sampled frames, resize/crop side, test budget and head.

    ``budget``/``head`` left at -1 are not touched; None sets "all tokens" /
    "nearest head". Raises if the pipeline has no sampler or crop to edit.
    """
    for pipeline in _pipelines(cfg, split):
        found_sampler = found_crop = False
        for step in pipeline:
            kind = step.get('type')
            if kind in SAMPLER_TYPES:
                found_sampler = True
                if frames is not None:
                    step['clip_len'] = int(frames)
                if num_clips is not None:
                    step['num_clips'] = int(num_clips)
            elif kind == 'Resize' and side is not None:
                step['scale'] = (-1, int(side))
                step['keep_ratio'] = True
            elif kind in CROP_TYPES:
                found_crop = True
                if side is not None:
                    step['crop_size'] = int(side)
        if frames is not None and not found_sampler:
            raise ValueError(f'{split} pipeline has no frame sampler ({", ".join(SAMPLER_TYPES)}) '
                             'to set the number of frames on.')
        if side is not None and not found_crop:
            raise ValueError(f'{split} pipeline has no crop ({", ".join(CROP_TYPES)}) to set the '
                             'side on.')
    test_cfg = cfg.model.setdefault('test_cfg', {}) or {}
    if budget != -1:
        test_cfg['token_budget'] = budget
    if head != -1:
        test_cfg['head'] = head
    cfg.model.test_cfg = test_cfg
    return cfg
