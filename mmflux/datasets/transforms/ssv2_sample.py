"""TSN-style segment sampling of the SSv2 Flux loader.

For a video of ``n`` frames and ``T`` wanted frames:

* train: ``avg = n // T``; if ``avg > 0`` frame ``i`` is ``i*avg + randint[0, avg-1]``;
  elif ``n > T`` sorted random ints in ``[0, n)``; else ``T`` zeros.
  (As in the reference the ``elif`` branch can never run — ``avg == 0`` means
  ``n < T`` — so a video shorter than ``T`` frames gives ``T`` copies of frame 0.)
* val (``test_mode=True, num_clips=1``): ``int(tick/2 + tick*i)``, ``tick = n/T``.
* test (``test_mode=True, num_clips=2``): the sorted concatenation of
  ``{int(tick*i)}`` and ``{int(tick/2 + tick*i)}`` (2T indices, duplicates kept);
  clip ``k`` takes every second element from ``k``: clip 0 = segment starts,
  clip 1 = segment middles. The reference hard-codes this stride of 2, so only
  ``num_clips`` 1 and 2 exist in test mode.

``results['flux_frames']`` (per-batch grid) overrides ``clip_len`` when present.
"""
from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS
from ..flux_video_dataset import FLUX_FRAMES_KEY


def ssv2_indices(num_frames: int, clip_len: int, num_clips: int = 1,
                 test_mode: bool = False) -> np.ndarray:
    """0-based frame indices, shape ``(num_clips * clip_len,)`` (clip-major)."""
    if not test_mode:
        avg = num_frames // clip_len
        if avg > 0:
            return np.arange(clip_len) * avg + np.random.randint(avg, size=clip_len)
        if num_frames > clip_len:  # unreachable, kept to mirror the reference
            return np.sort(np.random.randint(num_frames, size=clip_len))
        return np.zeros(clip_len, dtype=np.int64)
    tick = num_frames / float(clip_len)
    mids = [int(tick / 2.0 + tick * i) for i in range(clip_len)]
    if num_clips == 1:
        return np.array(mids, dtype=np.int64)
    starts = [int(tick * i) for i in range(clip_len)]
    merged = np.sort(np.array(mids + starts, dtype=np.int64))
    return np.concatenate([merged[k::2] for k in range(num_clips)])


@TRANSFORMS.register_module()
class SSv2Sample(BaseTransform):
    """SSv2 segment sampler with a per-sample frame count.

    Required keys: ``total_frames``, ``start_index``; optional ``flux_frames``.
    Added keys: ``frame_inds`` (int32), ``clip_len``, ``frame_interval`` (None),
    ``num_clips``.

    Args:
        clip_len (int): frames per clip without ``flux_frames``. Defaults to 8.
        num_clips (int): 1 (val, or training) or 2 (test: start and middle
            views). Defaults to 1.
        test_mode (bool): deterministic val/test formulas. Defaults to False.
    """

    def __init__(self, clip_len: int = 8, num_clips: int = 1,
                 test_mode: bool = False) -> None:
        if clip_len < 1:
            raise ValueError(f'SSv2Sample: clip_len={clip_len} must be >= 1.')
        if (test_mode and num_clips not in (1, 2)) or (not test_mode
                                                       and num_clips != 1):
            raise ValueError(
                f'SSv2Sample: num_clips={num_clips} (test_mode={test_mode}) is not '
                'defined; use num_clips=1 for training/val and num_clips=2 for '
                'the 2-view test protocol.')
        self.clip_len = clip_len
        self.num_clips = num_clips
        self.test_mode = test_mode

    def transform(self, results: Dict) -> Optional[Dict]:
        clip_len = int(results.get(FLUX_FRAMES_KEY, self.clip_len))
        num_frames = int(results['total_frames'])
        if num_frames < 1:
            if self.test_mode:
                raise ValueError(f'SSv2Sample: video {results.get("filename")} '
                                 'has no frames.')
            return None
        inds = ssv2_indices(num_frames, clip_len, self.num_clips, self.test_mode)
        results['frame_inds'] = (inds + results['start_index']).astype(np.int32)
        results['clip_len'] = clip_len
        results['frame_interval'] = None
        results['num_clips'] = self.num_clips
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'num_clips={self.num_clips}, test_mode={self.test_mode})')
