"""Random resized crop to the per-batch square side of Flux training.

One box per clip (all frames): area ``U[0.08, 1.0]`` of the frame, aspect ratio
log-uniform in ``[3/4, 4/3]``, up to 10 tries; the fallback is the reference's
(torchvision's) central crop clipped to the ratio range — not MMAction2's
min-side square. The crop is resized to ``S x S`` with bilinear interpolation
(cv2, half-pixel centres, no antialias — like ``F.interpolate(bilinear,
align_corners=False)`` of the reference). ``S = results['flux_side']`` when
present, else ``size``.

Reuses MMAction2's :class:`~mmaction.datasets.transforms.RandomResizedCrop`
(crop bookkeeping: ``crop_bbox``, ``crop_quadruple``, ``img_shape``) and
:class:`~mmaction.datasets.transforms.Resize` (``scale_factor``). The reference
crops the normalized float clip; cropping uint8 frames differs only by rounding.
"""
import math
import random
from typing import Dict, Tuple

import numpy as np

from mmaction.datasets.transforms import RandomResizedCrop, Resize
from mmaction.registry import TRANSFORMS
from ..flux_video_dataset import FLUX_SIDE_KEY


@TRANSFORMS.register_module()
class FluxRandomResizedCrop(RandomResizedCrop):
    """Random resized crop whose output side comes from the Flux grid.

    Required keys: ``imgs``, ``img_shape``; optional ``flux_side``.
    Modified keys: ``imgs``, ``img_shape``, ``crop_bbox``, ``crop_quadruple``,
    ``scale_factor``, ``keep_ratio``.

    Args:
        size (int): output side without ``flux_side``. Defaults to 224.
        area_range (tuple[float]): crop area fraction. Defaults to (0.08, 1.0).
        aspect_ratio_range (tuple[float]): w/h range, sampled log-uniformly.
            Defaults to (3/4, 4/3).
        interpolation (str): resize interpolation. Defaults to ``'bilinear'``.
        max_attempts (int): tries before the fallback. Defaults to 10.
    """

    def __init__(self,
                 size: int = 224,
                 area_range: Tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3 / 4, 4 / 3),
                 interpolation: str = 'bilinear',
                 max_attempts: int = 10) -> None:
        super().__init__(area_range=tuple(float(v) for v in area_range),
                         aspect_ratio_range=tuple(float(v) for v in aspect_ratio_range),
                         lazy=False)
        self.size = int(size)
        self.interpolation = interpolation
        self.max_attempts = int(max_attempts)
        self._resizers: Dict[int, Resize] = {}

    def get_crop_bbox(self, img_shape, area_range, aspect_ratio_range,
                      max_attempts=None):
        """``(left, top, right, bottom)`` of the crop (reference semantics)."""
        max_attempts = self.max_attempts if max_attempts is None else max_attempts
        img_h, img_w = img_shape
        area = img_h * img_w
        log_ratio = (math.log(aspect_ratio_range[0]),
                     math.log(aspect_ratio_range[1]))
        target_areas = np.random.uniform(*area_range, size=max_attempts) * area
        ratios = np.exp(np.random.uniform(*log_ratio, size=max_attempts))
        for target_area, ratio in zip(target_areas, ratios):
            w = int(round(math.sqrt(target_area * ratio)))
            h = int(round(math.sqrt(target_area / ratio)))
            if 0 < w <= img_w and 0 < h <= img_h:
                top = random.randint(0, img_h - h)
                left = random.randint(0, img_w - w)
                return left, top, left + w, top + h
        in_ratio = img_w / img_h
        if in_ratio < min(aspect_ratio_range):
            w = img_w
            h = int(round(w / min(aspect_ratio_range)))
        elif in_ratio > max(aspect_ratio_range):
            h = img_h
            w = int(round(h * max(aspect_ratio_range)))
        else:
            w, h = img_w, img_h
        top = (img_h - h) // 2
        left = (img_w - w) // 2
        return left, top, left + w, top + h

    def transform(self, results: Dict) -> Dict:
        side = int(results.get(FLUX_SIDE_KEY, self.size))
        results = super().transform(results)
        resizer = self._resizers.get(side)
        if resizer is None:
            resizer = Resize(scale=(side, side), keep_ratio=False,
                             interpolation=self.interpolation)
            self._resizers[side] = resizer
        return resizer(results)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'area_range={self.area_range}, '
                f'aspect_ratio_range={self.aspect_ratio_range}, '
                f'interpolation={self.interpolation!r}, '
                f'max_attempts={self.max_attempts})')
