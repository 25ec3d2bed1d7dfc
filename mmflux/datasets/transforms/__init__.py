"""Flux data transforms (registered in MMAction2's ``TRANSFORMS``) and batch
augments (registered in ``MODELS``, used as the data preprocessor's
``blending``)."""
from .batch_mixup import FluxBatchAugment
from .clip_rand_augment import ClipRandAugment
from .clip_random_erasing import ClipRandomErasing
from .flux_random_resized_crop import FluxRandomResizedCrop
from .flux_uniform_sample import FluxUniformSample, flux_uniform_indices
from .ssv2_sample import SSv2Sample, ssv2_indices

__all__ = [
    'ClipRandAugment', 'ClipRandomErasing', 'FluxBatchAugment',
    'FluxRandomResizedCrop', 'FluxUniformSample', 'SSv2Sample',
    'flux_uniform_indices', 'ssv2_indices'
]
