"""Whole-video segment sampling of the Kinetics Flux loader.

For a video of ``n`` frames and ``T`` wanted frames, ``seg = max(0, (n-1)/T)``:

* train (``test_mode=False``): frame ``i`` is drawn uniformly from the
  inclusive range ``[round(seg*i), round(seg*(i+1))]`` and capped at ``n-1``;
* test (``test_mode=True``, ``num_clips=K``): ``duration = seg/(K+1)`` and clip
  ``k`` takes ``min(round(seg*i) + int(duration*(k+1)), n-1)``;
* val is the test formula with ``num_clips=1`` (``test_mode=True``).

The clip always spans the whole video; ``T`` changes the temporal density, not
the span. ``round`` is round-half-to-even as in Python and numpy.

``frames_per_segment=k`` (> 1) samples ``T / k`` segments with the formulas above
(on the first ``n - k + 1`` frames) and takes ``k`` *consecutive* frames from each.
With a backbone of ``k``-frame tubelets every token then sees ``k`` neighbouring
frames, i.e. local motion, while the clip still spans the whole video. With the
default ``k = 1`` a tubelet pairs frames of neighbouring segments instead; which
works better is a property of the data (the tiny synthetic recipe keeps ``k = 1``,
measured in its config).
This equals MMAction2's ``UniformSample`` apart from the ``n-1`` cap (a no-op
for ``n >= 1``) and the per-sample ``T``: when ``results['flux_frames']`` is
present (set by :class:`~mmflux.datasets.FluxVideoDataset` from the
:class:`~mmflux.datasets.FluxBatchSampler` grid) it overrides ``clip_len``.
"""
from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS
from ..flux_video_dataset import FLUX_FRAMES_KEY


def flux_uniform_indices(num_frames: int, clip_len: int, num_clips: int = 1,
                         test_mode: bool = False, frames_per_segment: int = 1) -> np.ndarray:
    """0-based frame indices, shape ``(num_clips * clip_len,)`` (clip-major)."""
    k = frames_per_segment
    if k > 1:
        if clip_len % k:
            raise ValueError(f'FluxUniformSample: clip_len {clip_len} is not a multiple of '
                             f'frames_per_segment={k}; sample a multiple of {k} frames.')
        starts = flux_uniform_indices(max(1, num_frames - k + 1), clip_len // k, num_clips,
                                      test_mode).reshape(-1, 1)
        inds = (starts + np.arange(k)[None]).reshape(-1)
        return np.minimum(inds, num_frames - 1)
    seg = max(0.0, (num_frames - 1) / clip_len)
    i = np.arange(clip_len)
    starts = np.round(seg * i).astype(np.int64)
    if not test_mode:
        ends = np.round(seg * (i + 1)).astype(np.int64)
        inds = np.random.randint(starts, ends + 1)
        return np.minimum(inds, num_frames - 1)
    duration = seg / (num_clips + 1)
    offsets = np.array([int(duration * (k + 1)) for k in range(num_clips)],
                       dtype=np.int64)
    inds = starts[None, :] + offsets[:, None]
    return np.minimum(inds, num_frames - 1).reshape(-1)


@TRANSFORMS.register_module()
class FluxUniformSample(BaseTransform):
    """Segment-based uniform sampling with a per-sample frame count.

    Required keys: ``total_frames``, ``start_index``; optional ``flux_frames``.
    Added keys: ``frame_inds`` (int32, ``num_clips * clip_len``), ``clip_len``,
    ``frame_interval`` (None), ``num_clips`` — as MMAction2's ``UniformSample``,
    so ``DecordDecode``/``RawFrameDecode`` and ``FormatShape`` work unchanged.

    Args:
        clip_len (int): frames per clip when ``results`` has no
            ``flux_frames``. Defaults to 8.
        num_clips (int): clips in test mode (4 for the K400 test protocol).
            Must be 1 in training. Defaults to 1.
        test_mode (bool): deterministic val/test formula. Defaults to False.
        frames_per_segment (int): consecutive frames taken per segment (e.g.
            the backbone's tubelet size, see above). Defaults to 1.
    """

    def __init__(self, clip_len: int = 8, num_clips: int = 1,
                 test_mode: bool = False, frames_per_segment: int = 1) -> None:
        if not isinstance(frames_per_segment, int) or frames_per_segment < 1:
            raise ValueError(f'FluxUniformSample: frames_per_segment={frames_per_segment!r} must be '
                             'a positive int.')
        if clip_len < 1 or num_clips < 1:
            raise ValueError(f'FluxUniformSample: clip_len={clip_len} and '
                             f'num_clips={num_clips} must be >= 1.')
        if num_clips != 1 and not test_mode:
            raise ValueError(f'FluxUniformSample: num_clips={num_clips} is only '
                             'defined in test mode; use num_clips=1 for training.')
        self.clip_len = clip_len
        self.num_clips = num_clips
        self.test_mode = test_mode
        self.frames_per_segment = frames_per_segment

    def transform(self, results: Dict) -> Optional[Dict]:
        clip_len = int(results.get(FLUX_FRAMES_KEY, self.clip_len))
        num_frames = int(results['total_frames'])
        if num_frames < 1:
            if self.test_mode:
                raise ValueError(f'FluxUniformSample: video {results.get("filename")} '
                                 'has no frames.')
            return None  # the dataset refetches another video in training
        inds = flux_uniform_indices(num_frames, clip_len, self.num_clips,
                                    self.test_mode, self.frames_per_segment)
        results['frame_inds'] = (inds + results['start_index']).astype(np.int32)
        results['clip_len'] = clip_len
        results['frame_interval'] = None
        results['num_clips'] = self.num_clips
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'num_clips={self.num_clips}, test_mode={self.test_mode}, '
                f'frames_per_segment={self.frames_per_segment})')
