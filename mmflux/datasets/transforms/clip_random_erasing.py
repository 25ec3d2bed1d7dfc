"""Clip ("cube") random erasing on normalized batches.

The reference erases after normalization, writing N(0, 1) noise (mode
``pixel``) into one box that is the same for every frame of a clip. MMAction2
normalizes in the data preprocessor, after the pipeline, so erasing uint8
frames in the pipeline could not write noise in normalized space. This module
therefore runs on the normalized batch inside the data preprocessor: either
through :class:`~mmflux.datasets.transforms.FluxBatchAugment` (``erasing=...``,
which erases before Mixup/CutMix, the reference order) or alone as the
preprocessor's ``blending``.

Per clip (every ``(C, T, H, W)`` slice of the batch), timm ``RandomErasing``
semantics: with probability ``prob``; ``count`` boxes (1 by default); for each,
up to 10 tries of area ``U[min_area, max_area] * H * W / count`` and aspect
``exp(U[log min_aspect, log max_aspect])``, accepted when ``w < W`` and ``h < H``;
the box is filled per frame with independent values: ``pixel`` per-pixel
N(0, 1), ``rand`` per-channel N(0, 1), ``const`` zeros. Box draws use Python's
``random`` (the main process RNG that mmengine seeds), noise uses torch on the
input's device.
"""
import math
import random
from typing import Optional, Tuple

import torch

from mmaction.registry import MODELS


@MODELS.register_module()
class ClipRandomErasing:
    """Random erasing with one box per clip shared by all its frames.

    Args:
        prob (float): probability of erasing a clip. Defaults to 0.25.
        mode (str): ``'pixel'``, ``'rand'`` or ``'const'``. Defaults to
            ``'pixel'``.
        min_area (float): minimum box area fraction. Defaults to 0.02.
        max_area (float): maximum box area fraction. Defaults to 1/3.
        min_aspect (float): minimum aspect ratio. Defaults to 0.3.
        max_aspect (float, optional): maximum aspect ratio; None = 1/min_aspect.
        min_count (int): minimum number of boxes. Defaults to 1.
        max_count (int, optional): maximum number of boxes; None = min_count.
        max_attempts (int): tries per box. Defaults to 10.

    Call ``erase(inputs)`` on a tensor ``(..., C, T, H, W)`` (modified in place
    and returned), or use it as a preprocessor ``blending``:
    ``__call__(inputs, data_samples) -> (inputs, data_samples)``.
    """

    def __init__(self,
                 prob: float = 0.25,
                 mode: str = 'pixel',
                 min_area: float = 0.02,
                 max_area: float = 1 / 3,
                 min_aspect: float = 0.3,
                 max_aspect: Optional[float] = None,
                 min_count: int = 1,
                 max_count: Optional[int] = None,
                 max_attempts: int = 10) -> None:
        if mode not in ('pixel', 'rand', 'const'):
            raise ValueError(f"ClipRandomErasing: mode={mode!r}; use 'pixel', "
                             "'rand' or 'const'.")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'ClipRandomErasing: prob={prob} must be in [0, 1].')
        if not 0.0 < min_area <= max_area <= 1.0:
            raise ValueError(f'ClipRandomErasing: need 0 < min_area <= max_area <= 1, '
                             f'got ({min_area}, {max_area}).')
        max_aspect = max_aspect or 1.0 / min_aspect
        self.prob = prob
        self.mode = mode
        self.min_area = min_area
        self.max_area = max_area
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
        self.min_count = min_count
        self.max_count = max_count or min_count
        self.max_attempts = max_attempts

    def _boxes(self, img_h: int, img_w: int):
        count = (self.min_count if self.min_count == self.max_count else
                 random.randint(self.min_count, self.max_count))
        area = img_h * img_w
        for _ in range(count):
            for _ in range(self.max_attempts):
                target_area = random.uniform(self.min_area, self.max_area) * area / count
                aspect = math.exp(random.uniform(*self.log_aspect_ratio))
                h = int(round(math.sqrt(target_area * aspect)))
                w = int(round(math.sqrt(target_area / aspect)))
                if w < img_w and h < img_h:
                    top = random.randint(0, img_h - h)
                    left = random.randint(0, img_w - w)
                    yield top, left, h, w
                    break

    def _fill(self, shape: Tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        chans, frames, h, w = shape
        if self.mode == 'pixel':
            return torch.randn((chans, frames, h, w), dtype=like.dtype, device=like.device)
        if self.mode == 'rand':
            return torch.randn((chans, frames, 1, 1), dtype=like.dtype,
                               device=like.device).expand(chans, frames, h, w)
        return torch.zeros((chans, frames, h, w), dtype=like.dtype, device=like.device)

    @torch.no_grad()
    def erase(self, inputs: torch.Tensor) -> torch.Tensor:
        """Erase clips of ``inputs`` ``(..., C, T, H, W)`` in place; returns it."""
        if inputs.dim() < 4:
            raise ValueError('ClipRandomErasing expects (..., C, T, H, W) inputs, '
                             f'got shape {tuple(inputs.shape)}.')
        clips = inputs.reshape((-1, ) + tuple(inputs.shape[-4:]))
        chans, frames, img_h, img_w = clips.shape[1:]
        for clip in clips:
            if random.random() > self.prob:
                continue
            for top, left, h, w in self._boxes(img_h, img_w):
                clip[:, :, top:top + h, left:left + w] = self._fill(
                    (chans, frames, h, w), clip)
        if clips.data_ptr() != inputs.data_ptr():  # reshape had to copy
            inputs.copy_(clips.reshape(inputs.shape))
        return inputs

    def __call__(self, inputs: torch.Tensor, data_samples=None, **kwargs):
        inputs = self.erase(inputs)
        return inputs, data_samples

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, mode={self.mode!r}, '
                f'area=({self.min_area}, {self.max_area}), '
                f'count=({self.min_count}, {self.max_count}))')
