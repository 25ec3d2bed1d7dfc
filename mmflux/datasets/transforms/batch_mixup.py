"""Batch augmentation of Flux fine-tuning: erasing, then Mixup/CutMix.

Used as the ``blending`` of MMAction2's ``ActionDataPreprocessor`` (it runs on the
normalized ``(N, V, C, T, H, W)`` batch, in training only)::

    data_preprocessor=dict(
        type='ActionDataPreprocessor', format_shape='NCTHW',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        blending=dict(type='FluxBatchAugment', num_classes=400,
                      erasing=dict(prob=0.25, mode='pixel')))

Why not MMAction2's ``RandomBatchAugment([MixupBlending, CutmixBlending])``: it
has one lambda per batch, a CutMix box shared by all frames and the area-corrected
lambda, like timm, but (1) pairs each clip with a random permutation (a clip can
be mixed with itself) where the reference (timm ``mode='batch'``) pairs it with
the flipped batch, and (2) it has no place for random erasing, which the reference
applies per clip after normalization and before mixing. This class is timm's
``Mixup(mode='batch')`` on clips: with probability ``prob`` draw CutMix (with
``switch_prob``, alpha 1.0) or Mixup (alpha 0.8), ``lam ~ Beta(alpha, alpha)``
(``np.random``, one per batch), partner = ``inputs.flip(0)``; CutMix box of side
``sqrt(1 - lam)`` times H/W around a uniform centre, clipped, identical on every
frame and view, and ``lam`` corrected to the kept area.

Labels become soft ``(num_classes,)`` targets (``lam * y + (1 - lam) * y_flip``)
in each sample's ``gt_label``. ``label_smoothing`` defaults to 0 because
:class:`~mmflux.models.FluxRecognizer` applies its head's ``label_smooth_eps``
(0.1 in the reference) to the soft targets itself; the two are equivalent
(``y * (1 - s) + s / C`` after mixing), so use only one of them.
"""
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from mmaction.models.utils.blending_utils import BaseMiniBatchBlending
from mmaction.registry import MODELS
from .clip_random_erasing import ClipRandomErasing


def cutmix_box(img_h: int, img_w: int, lam: float) -> Tuple[int, int, int, int]:
    """timm ``rand_bbox`` (no margin): ``(y_low, y_high, x_low, x_high)``."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(img_h * ratio), int(img_w * ratio)
    cy = np.random.randint(0, img_h)
    cx = np.random.randint(0, img_w)
    yl = int(np.clip(cy - cut_h // 2, 0, img_h))
    yh = int(np.clip(cy + cut_h // 2, 0, img_h))
    xl = int(np.clip(cx - cut_w // 2, 0, img_w))
    xh = int(np.clip(cx + cut_w // 2, 0, img_w))
    return yl, yh, xl, xh


@MODELS.register_module()
class FluxBatchAugment(BaseMiniBatchBlending):
    """Clip random erasing + timm-style batch Mixup/CutMix for video batches.

    Args:
        num_classes (int): number of classes.
        mixup_alpha (float): Mixup Beta parameter; 0 disables Mixup.
            Defaults to 0.8.
        cutmix_alpha (float): CutMix Beta parameter; 0 disables CutMix.
            Defaults to 1.0.
        prob (float): probability of mixing a batch. Defaults to 1.0.
        switch_prob (float): probability of CutMix instead of Mixup when both
            are enabled. Defaults to 0.5.
        correct_lam (bool): CutMix lambda = kept area. Defaults to True.
        label_smoothing (float): smoothing folded into the soft targets.
            Defaults to 0.0 (the recognizer smooths; see the module docstring).
        partner (str): ``'flip'`` (timm batch mode, reference) or ``'perm'``
            (random permutation, as MMAction2). Defaults to ``'flip'``.
        erasing (dict | ClipRandomErasing, optional): random erasing applied per
            clip before mixing, e.g. ``dict(prob=0.25, mode='pixel')``.
            None disables it. Defaults to None.
    """

    def __init__(self,
                 num_classes: int,
                 mixup_alpha: float = 0.8,
                 cutmix_alpha: float = 1.0,
                 prob: float = 1.0,
                 switch_prob: float = 0.5,
                 correct_lam: bool = True,
                 label_smoothing: float = 0.0,
                 partner: str = 'flip',
                 erasing: Optional[Union[Dict, ClipRandomErasing]] = None) -> None:
        super().__init__(num_classes=num_classes)
        if partner not in ('flip', 'perm'):
            raise ValueError(f"FluxBatchAugment: partner={partner!r}; use 'flip' "
                             "or 'perm'.")
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError('FluxBatchAugment: mixup_alpha and cutmix_alpha must be '
                             f'>= 0, got {mixup_alpha}, {cutmix_alpha}.')
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.prob = float(prob)
        self.switch_prob = float(switch_prob)
        self.correct_lam = correct_lam
        self.label_smoothing = float(label_smoothing)
        self.partner = partner
        if isinstance(erasing, dict):
            cfg = dict(erasing)
            cfg.pop('type', None)
            erasing = ClipRandomErasing(**cfg)
        self.erasing = erasing

    def _draw(self) -> Tuple[float, bool]:
        """``(lam, use_cutmix)`` for one batch (timm ``_params_per_batch``)."""
        lam, use_cutmix = 1.0, False
        if (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and np.random.rand() < self.prob:
            if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
                use_cutmix = bool(np.random.rand() < self.switch_prob)
                alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
            elif self.mixup_alpha > 0:
                alpha = self.mixup_alpha
            else:
                use_cutmix, alpha = True, self.cutmix_alpha
            lam = float(np.random.beta(alpha, alpha))
        return lam, use_cutmix

    def do_blending(self, imgs: torch.Tensor, label: torch.Tensor,
                    **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
        """``imgs`` (N, ..., H, W) normalized; ``label`` (N, num_classes)."""
        if self.erasing is not None:
            imgs = self.erasing.erase(imgs)
        label = label.float()
        lam, use_cutmix = self._draw()
        if lam < 1.0:
            n = imgs.shape[0]
            index = (torch.arange(n - 1, -1, -1) if self.partner == 'flip' else
                     torch.randperm(n)).to(imgs.device)
            if use_cutmix:
                img_h, img_w = imgs.shape[-2:]
                yl, yh, xl, xh = cutmix_box(img_h, img_w, lam)
                imgs[..., yl:yh, xl:xh] = imgs[index, ..., yl:yh, xl:xh]
                if self.correct_lam:
                    lam = 1.0 - (yh - yl) * (xh - xl) / float(img_h * img_w)
            else:
                imgs = imgs[index].mul_(1.0 - lam).add_(imgs, alpha=lam)
            label = label * lam + label[index.to(label.device)] * (1.0 - lam)
        if self.label_smoothing > 0:
            label = label * (1.0 - self.label_smoothing) + (
                self.label_smoothing / self.num_classes)
        return imgs, label

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, '
                f'prob={self.prob}, switch_prob={self.switch_prob}, '
                f'label_smoothing={self.label_smoothing}, partner={self.partner!r}, '
                f'erasing={self.erasing})')
