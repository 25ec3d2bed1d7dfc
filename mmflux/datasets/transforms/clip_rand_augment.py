"""Clip-consistent RandAugment of Flux training.

The ops come from timm (:func:`timm.data.auto_augment.rand_augment_transform`),
default ``'rand-m7-n4-mstd0.5-inc1'``: 4 ops per clip, drawn with replacement
from the 15 "increasing" ops, each applied with p=0.5 at a magnitude
~ N(7, 0.5) clipped to [0, 10]. Every frame of a clip gets the *same* ops, gates,
magnitudes and signs, as the reference (which applies each op to the list of
frames with one draw):

1. the ops are chosen once per clip with ``np.random`` (as timm's
   ``RandAugment``), i.e. the pipeline RNG that mmengine seeds per worker;
2. timm's ops draw their gate/magnitude/sign from Python's ``random``. A per-clip
   seed is drawn from ``np.random``, and ``random`` is re-seeded with it before
   each frame, so every frame replays the same draws; ``random``'s previous state
   is restored afterwards (the transform leaves no trace in it).

Hyper-parameters as the reference: ``translate_const = int(0.45 * S)`` with S the
crop side (``results['flux_side']`` when present, else ``size``; the
"increasing" set uses relative translation, so it does not matter there),
bicubic interpolation. The reference passes no ``img_mean``, so the fill colour
of geometric ops is timm's grey (128, 128, 128); set ``img_mean`` to change it.

Input: ``results['imgs']``, a list of HxWx3 uint8 RGB frames (as decoded).
RandAugment runs on the full-resolution frames before the random resized crop.
"""
import random
from typing import Dict, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image
from timm.data.auto_augment import rand_augment_transform
from timm.data.transforms import str_to_pil_interp

from mmaction.registry import TRANSFORMS
from ..flux_video_dataset import FLUX_SIDE_KEY


@TRANSFORMS.register_module()
class ClipRandAugment(BaseTransform):
    """RandAugment with one draw per clip, applied to every frame.

    Required keys: ``imgs`` (list of HxWx3 uint8 RGB); optional ``flux_side``.
    Modified keys: ``imgs``.

    Args:
        config_str (str): timm RandAugment string.
            Defaults to ``'rand-m7-n4-mstd0.5-inc1'``.
        size (int): crop side used for ``translate_const`` when ``results``
            has no ``flux_side``. Defaults to 224.
        translate_factor (float): ``translate_const = int(factor * side)``.
            Defaults to 0.45.
        interpolation (str): PIL interpolation of geometric ops.
            Defaults to ``'bicubic'``.
        img_mean (Sequence[int], optional): fill colour of geometric ops;
            None keeps timm's (128, 128, 128) like the reference.
        hparams (dict, optional): extra timm hparams (override the above).
    """

    def __init__(self,
                 config_str: str = 'rand-m7-n4-mstd0.5-inc1',
                 size: int = 224,
                 translate_factor: float = 0.45,
                 interpolation: str = 'bicubic',
                 img_mean: Optional[Sequence[int]] = None,
                 hparams: Optional[Dict] = None) -> None:
        if not isinstance(config_str, str) or not config_str.startswith('rand'):
            raise ValueError(f'ClipRandAugment: config_str={config_str!r} must be a '
                             "timm RandAugment string such as 'rand-m7-n4-mstd0.5-inc1'.")
        self.config_str = config_str
        self.size = size
        self.translate_factor = translate_factor
        self.interpolation = interpolation
        self.img_mean = None if img_mean is None else tuple(int(v) for v in img_mean)
        self.hparams = dict(hparams or {})
        self._cache: Dict[int, object] = {}
        self._build(int(size))  # fail early on a bad config string

    def _build(self, side: int):
        ra = self._cache.get(side)
        if ra is None:
            hparams = dict(translate_const=int(self.translate_factor * side),
                           interpolation=str_to_pil_interp(self.interpolation))
            if self.img_mean is not None:
                hparams['img_mean'] = self.img_mean
            hparams.update(self.hparams)
            ra = rand_augment_transform(self.config_str, hparams)
            self._cache[side] = ra
        return ra

    def transform(self, results: Dict) -> Dict:
        side = int(results.get(FLUX_SIDE_KEY, self.size))
        ra = self._build(side)
        imgs = results['imgs']
        if len(imgs) == 0:
            return results
        first = np.asarray(imgs[0])
        if first.dtype != np.uint8 or first.ndim != 3 or first.shape[2] != 3:
            raise ValueError(
                'ClipRandAugment expects uint8 HxWx3 RGB frames (put it right after '
                f'the decoder); got dtype {first.dtype}, shape {first.shape}.')
        choice = np.random.choice(len(ra.ops), ra.num_layers,
                                  replace=ra.choice_weights is None,
                                  p=ra.choice_weights)
        ops = [ra.ops[i] for i in choice]
        clip_seed = int(np.random.randint(2**31 - 1))
        state = random.getstate()
        try:
            out = []
            for frame in imgs:
                random.seed(clip_seed)
                img = Image.fromarray(np.ascontiguousarray(frame))
                for op in ops:
                    img = op(img)
                out.append(np.asarray(img.convert('RGB'), dtype=np.uint8))
        finally:
            random.setstate(state)
        results['imgs'] = out
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(config_str={self.config_str!r}, '
                f'size={self.size}, translate_factor={self.translate_factor}, '
                f'interpolation={self.interpolation!r}, img_mean={self.img_mean})')
