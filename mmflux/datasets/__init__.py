"""Datasets, Flux sampling and transforms (registered into MMAction2).

* :class:`FluxBatchSampler` (``DATA_SAMPLERS``): one ``(T, R)`` grid per batch.
* :class:`FluxVideoDataset`, :class:`FluxRawframeDataset` (``DATASETS``): accept
  ``(index, T, R)`` samples; optional repeated augmentation.
* :class:`RobustVideoDataset`, :class:`RobustRawframeDataset` (``DATASETS``):
  MMAction2's datasets with ``bad_video_policy`` (bad videos skipped and
  counted in training, reported and excluded in testing); the Flux datasets
  have it too.
* :mod:`.transforms`: ``FluxUniformSample``, ``SSv2Sample``, ``ClipRandAugment``,
  ``FluxRandomResizedCrop`` (``TRANSFORMS``); ``ClipRandomErasing``,
  ``FluxBatchAugment`` (``MODELS``, data-preprocessor blending).
"""
from .flux_batch_sampler import FluxBatchSampler, flux_grid_pairs
from .flux_video_dataset import (FLUX_FRAMES_KEY, FLUX_SIDE_KEY,
                                 FluxRawframeDataset, FluxVideoDataset)
from .annotation_check import AnnotationError
from .robust_dataset import (BadVideoError, RobustRawframeDataset,
                             RobustVideoDataset)
from .transforms import *  # noqa: F401,F403
from .transforms import __all__ as _transforms_all

__all__ = [
    'AnnotationError', 'BadVideoError', 'FLUX_FRAMES_KEY', 'FLUX_SIDE_KEY', 'FluxBatchSampler',
    'FluxRawframeDataset', 'FluxVideoDataset', 'RobustRawframeDataset',
    'RobustVideoDataset', 'flux_grid_pairs'
] + list(_transforms_all)
