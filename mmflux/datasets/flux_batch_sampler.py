"""Per-batch flexible spatio-temporal grid for Flux training.

:class:`FluxBatchSampler` wraps an index sampler (normally mmengine's
``DefaultSampler``), chunks its indices into mini-batches and gives every
mini-batch one grid ``(T, R)`` = (frames, square side in pixels). It yields
lists of ``(dataset_index, T, R, sample_seed)`` tuples;
:class:`~mmflux.datasets.FluxVideoDataset` puts ``T``/``R`` into the pipeline as
``results['flux_frames']`` / ``results['flux_side']``, so all clips of a batch
have the same shape, and runs the pipeline with the global random generators
seeded from ``sample_seed``, a pure function of ``(seed, epoch, dataset_index)``
(:func:`sample_seed`). A sample's augmentation therefore does not depend on the
number of dataloader workers nor on a restart.

Accepted grids (Python ``range`` semantics, end exclusive)::

    T in range(*frames), R in range(*sides),
    token_window[0] <= (T // tubelet_size) * (R // patch_size) ** 2 <= token_window[1]

The defaults ``frames=(6, 26, 2)``, ``sides=(112, 364, 28)``,
``token_window=(2048, 6144)`` (the window every released script uses) give, with
the released backbones' 14 px x 1 frame patches, the 41 pairs listed in the spec; each batch draws one of them uniformly, which is
the distribution of the reference's rejection sampling.

Differences from the reference, on purpose:

* The draw is a pure function of ``(seed, epoch, batch index within the epoch)``
  (:func:`mmflux.utils.keyed_random.keyed_generator`), not of the global RNG.
  Every rank therefore runs the same ``(T, R)`` at the same step (the reference
  lets ranks differ), and the sequence of grids is reproducible and can be
  resumed mid-epoch.
* ``seed=None`` takes the wrapped sampler's ``seed`` when it has one (mmengine's
  ``DefaultSampler`` receives the runner's ``randomness.seed``, identical on all
  ranks), else :func:`mmengine.dist.sync_random_seed`.

Epoch: mmengine's ``DistSamplerSeedHook`` calls ``set_epoch`` on the *wrapped*
sampler (``dataloader.batch_sampler.sampler``), not on this object, so the epoch
used for the draws is read from ``sampler.epoch`` when the wrapped sampler has
one; :meth:`FluxBatchSampler.set_epoch` sets both.

Mid-epoch resume: :meth:`FluxBatchSampler.skip_batches` makes the next
``__iter__`` drop the first ``n`` batches of the epoch (their indices and their
grids), so the remaining batches are exactly those of an uninterrupted run.
:class:`~mmflux.engine.FluxSamplerResumeHook` calls it after a resume.
``__len__`` is the number of batches the next ``__iter__`` yields (the full
epoch once the skip is consumed); :attr:`FluxBatchSampler.num_batches_per_epoch`
is always the full count.

All ranks must produce the same number of batches per epoch (true for
``DefaultSampler(round_up=True)``, the default) or distributed training hangs,
as with any batch sampler.

Usage::

    train_dataloader = dict(
        batch_size=8,
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=dict(type='FluxBatchSampler', frames=(6, 26, 2),
                           sides=(112, 364, 28), token_window=(2048, 6144)),
        ...)
    custom_hooks = [dict(type='FluxSamplerResumeHook')]

A fixed grid (baseline) is ``frames=8, sides=224`` (ints); set
``token_window=None`` to disable the token filter.

Patch and tubelet size have no default: they are the backbone's.
:class:`~mmflux.engine.FluxRunner` (``runner_type`` of mmflux's configs) fills
them from the built model (:func:`with_backbone_geometry`); with any other
runner the config sets them, and building the sampler without them is refused
with that fix, never counted with a guessed 14 px x 1 frame.
"""
import math
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dist import sync_random_seed
from torch.utils.data import BatchSampler, Sampler

from mmaction.registry import DATA_SAMPLERS
from mmflux.utils.token_geometry import num_tokens, token_geometry
from mmflux.utils.keyed_random import keyed_generator, keyed_seed

RangeSpec = Union[int, Sequence[int], range]

#: Mixed into the seed so that grid draws never share a stream with other
#: consumers of the same seed (e.g. the DefaultSampler's shuffling).
_GRID_STREAM_TAG = 0x466C7578  # 'Flux'
_SAMPLE_STREAM_TAG = 'sample'


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of the augmentation of dataset sample ``index`` in ``epoch``."""
    return keyed_seed(seed, epoch, index, _SAMPLE_STREAM_TAG)


def _as_range(value: RangeSpec, key: str, example: str) -> range:
    """``int`` -> one value; ``(start, stop[, step])`` or ``range`` -> range."""
    if isinstance(value, range):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return range(int(value), int(value) + 1)
    if isinstance(value, (tuple, list)) and 2 <= len(value) <= 3 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            for v in value):
        if len(value) == 3 and int(value[2]) == 0:
            raise ValueError(f'batch_sampler.{key}={tuple(value)!r}: the step '
                             f'must not be 0; use e.g. {key}={example}.')
        return range(*[int(v) for v in value])
    raise ValueError(
        f'batch_sampler.{key}={value!r} is not understood: give an int (fixed '
        f'value) or a (start, stop[, step]) tuple read as Python range(), '
        f'e.g. {key}={example}.')


def flux_grid_pairs(frames: RangeSpec = (6, 26, 2),
                    sides: RangeSpec = (112, 364, 28),
                    token_window: Optional[Sequence[int]] = (2048, 6144), *,
                    patch_size: int,
                    tubelet_size: int) -> List[Tuple[int, int]]:
    """All accepted ``(T, R)`` pairs, T-major then R, validated.

    Raises:
        ValueError: empty ranges, a side that is not a multiple of
            ``patch_size``, a frame count that is not a multiple of
            ``tubelet_size``, a malformed token window, or a window that admits
            no pair. The message names the offending key and a fix.
    """
    if not isinstance(patch_size, (int, np.integer)) or patch_size <= 0:
        raise ValueError(f'batch_sampler.patch_size={patch_size!r} must be a '
                         'positive int (14 for FluxViT).')
    if not isinstance(tubelet_size, (int, np.integer)) or tubelet_size <= 0:
        raise ValueError(f'batch_sampler.tubelet_size={tubelet_size!r} must be a '
                         'positive int (1 for the released FluxViT).')
    frame_range = _as_range(frames, 'frames', '(6, 26, 2)')
    side_range = _as_range(sides, 'sides', '(112, 364, 28)')
    if len(frame_range) == 0:
        raise ValueError(
            f'batch_sampler.frames={frames!r} is an empty range ({frame_range}); '
            'the stop is exclusive, e.g. frames=(6, 26, 2) gives 6, 8, ..., 24.')
    if len(side_range) == 0:
        raise ValueError(
            f'batch_sampler.sides={sides!r} is an empty range ({side_range}); '
            'the stop is exclusive, e.g. sides=(112, 364, 28) gives 112, ..., 336.')
    bad_frames = [t for t in frame_range if t <= 0]
    if bad_frames:
        raise ValueError(f'batch_sampler.frames={frames!r} contains non-positive '
                         f'frame counts {bad_frames}; use positive values.')
    bad_frames = [t for t in frame_range if t % tubelet_size]
    if bad_frames:
        raise ValueError(
            f'batch_sampler.frames={frames!r} contains {bad_frames}, which are not '
            f'multiples of tubelet_size={tubelet_size}; start and step the frame '
            f'range at multiples of {tubelet_size}.')
    bad_sides = [r for r in side_range if r <= 0 or r % patch_size]
    if bad_sides:
        raise ValueError(
            f'batch_sampler.sides={sides!r} contains {bad_sides}, which are not '
            f'positive multiples of patch_size={patch_size}; start and step the '
            f'side range at multiples of {patch_size} (e.g. (112, 364, 28)).')
    if token_window is None:
        lo, hi = 0, math.inf
    else:
        if (not isinstance(token_window, (tuple, list)) or len(token_window) != 2
                or token_window[0] > token_window[1]):
            raise ValueError(
                f'batch_sampler.token_window={token_window!r} must be a (min, max) '
                'pair with min <= max, e.g. (2048, 6144), or None for no limit.')
        lo, hi = token_window
    def tokens(t: int, r: int) -> int:
        return num_tokens(t, r, r, patch_size, tubelet_size)

    pairs = [(t, r) for t in frame_range for r in side_range if lo <= tokens(t, r) <= hi]
    if not pairs:
        counts = sorted({tokens(t, r) for t in frame_range for r in side_range})
        raise ValueError(
            f'batch_sampler.token_window={tuple(token_window)!r} admits no '
            f'(frames, side) pair: with frames={list(frame_range)} and '
            f'sides={list(side_range)} the token counts '
            f'(T//{tubelet_size})*(R//{patch_size})^2 '
            f'range from {counts[0]} to {counts[-1]}. Widen token_window, change '
            'the ranges, or set token_window=None.')
    return pairs


@DATA_SAMPLERS.register_module()
class FluxBatchSampler(BatchSampler):
    """Batch sampler that draws one ``(T, R)`` grid per mini-batch.

    Args:
        sampler (Sampler): index sampler to wrap (given by the runner from the
            dataloader's ``sampler`` config).
        batch_size (int): indices per batch (given by the runner from the
            dataloader's ``batch_size``).
        frames (int | tuple | range): frame counts, ``range(*frames)``; an int
            fixes T. Defaults to ``(6, 26, 2)``.
        sides (int | tuple | range): square input sides in pixels,
            ``range(*sides)``; an int fixes R. Each must be a multiple of
            ``patch_size``. Defaults to ``(112, 364, 28)``.
        token_window (tuple | None): inclusive ``(min, max)`` of
            ``(T // tubelet_size) * (R // patch_size) ** 2``; None disables the
            filter. Defaults to ``(2048, 6144)``.
        patch_size (int): the backbone's spatial patch size. Under
            :class:`~mmflux.engine.FluxRunner` (mmflux's configs) a config that
            leaves it out gets the backbone's (:func:`with_backbone_geometry`);
            elsewhere it is required.
        tubelet_size (int): frames per patch of the backbone; as ``patch_size``.
        seed (int, optional): seed of the grid draws; must be equal on all
            ranks. None: the wrapped sampler's ``seed`` if it has an int one,
            else ``sync_random_seed()``.
        drop_last (bool): drop the last incomplete batch. Defaults to True
            (as the reference; keeps every step at ``batch_size``).
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 frames: RangeSpec = (6, 26, 2),
                 sides: RangeSpec = (112, 364, 28),
                 token_window: Optional[Sequence[int]] = (2048, 6144),
                 patch_size: Optional[int] = None,
                 tubelet_size: Optional[int] = None,
                 seed: Optional[int] = None,
                 drop_last: bool = True) -> None:
        if not isinstance(batch_size, (int, np.integer)) or isinstance(
                batch_size, bool) or batch_size <= 0:
            raise ValueError(f'train_dataloader.batch_size={batch_size!r} must be '
                             'a positive int.')
        missing = [k for k, v in (('patch_size', patch_size), ('tubelet_size', tubelet_size))
                   if v is None]
        if missing:
            raise ValueError(
                f'batch_sampler.{" and ".join(missing)} not set: the sampler counts tokens with '
                "the backbone's patch and tubelet sizes. Use runner_type='FluxRunner' (set by "
                "mmflux's configs/_base_/default_runtime.py), which takes them from the built "
                'backbone, or set batch_sampler.patch_size / tubelet_size to the backbone\'s '
                '(14 and 1 for the released FluxViT).')
        super().__init__(sampler, int(batch_size), bool(drop_last))
        self.pairs: List[Tuple[int, int]] = flux_grid_pairs(
            frames, sides, token_window, patch_size=patch_size, tubelet_size=tubelet_size)
        self.patch_size = int(patch_size)
        self.tubelet_size = int(tubelet_size)
        self.token_window = None if token_window is None else tuple(token_window)
        if seed is None:
            inherited = getattr(sampler, 'seed', None)
            if isinstance(inherited, (int, np.integer)) and not isinstance(
                    inherited, bool):
                seed = int(inherited)
            else:
                seed = sync_random_seed()
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f'batch_sampler.seed={seed!r} must be an int or None.')
        self.seed = int(seed)
        self._epoch = 0
        self._skip = 0

    # ------------------------------------------------------------------ grid
    @property
    def epoch(self) -> int:
        """Epoch used for the draws (the wrapped sampler's, if it tracks one)."""
        epoch = getattr(self.sampler, 'epoch', None)
        if isinstance(epoch, (int, np.integer)) and not isinstance(epoch, bool):
            return int(epoch)
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch here and on the wrapped sampler."""
        self._epoch = int(epoch)
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def grid_for(self, epoch: int, batch_index: int) -> Tuple[int, int]:
        """The ``(T, R)`` of batch ``batch_index`` of ``epoch``.

        A pure function of ``(seed, epoch, batch_index)``: identical on every
        rank and across runs and resumes.
        """
        if len(self.pairs) == 1:
            return self.pairs[0]
        rng = keyed_generator(self.seed, int(epoch), int(batch_index), _GRID_STREAM_TAG)
        return self.pairs[int(rng.integers(len(self.pairs)))]

    # ---------------------------------------------------------------- resume
    def skip_batches(self, num_batches: int) -> None:
        """Make the next ``__iter__`` skip the first ``num_batches`` batches of
        the epoch (indices and grids), e.g. after a mid-epoch resume.

        Consumed by that one ``__iter__``; later epochs start at batch 0.
        """
        if not isinstance(num_batches, (int, np.integer)) or num_batches < 0:
            raise ValueError(f'skip_batches({num_batches!r}): expected an int >= 0.')
        self._skip = int(num_batches)

    @property
    def pending_skip(self) -> int:
        """Batches the next ``__iter__`` will skip."""
        return self._skip

    @property
    def num_batches_per_epoch(self) -> int:
        """Batches in a full epoch (ignores a pending skip)."""
        num_samples = len(self.sampler)
        if self.drop_last:
            return num_samples // self.batch_size
        return (num_samples + self.batch_size - 1) // self.batch_size

    # ------------------------------------------------------------- iteration
    def __iter__(self) -> Iterator[List[Tuple[int, int, int, int]]]:
        # The epoch is fixed when iter() is called; the resume skip is used up only
        # when the batches are actually drawn: torch's multi-worker DataLoader calls
        # iter() twice and discards the first iterator without running it.
        return self._batches(self.epoch)

    def _batches(self, epoch: int) -> Iterator[List[Tuple[int, int, int, int]]]:
        skip, self._skip = self._skip, 0
        batch: List[int] = []
        batch_index = 0
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                if batch_index >= skip:
                    yield self._attach(batch, epoch, batch_index)
                batch_index += 1
                batch = []
        if batch and not self.drop_last and batch_index >= skip:
            yield self._attach(batch, epoch, batch_index)

    def _attach(self, batch: List[int], epoch: int,
                batch_index: int) -> List[Tuple[int, int, int, int]]:
        frames, side = self.grid_for(epoch, batch_index)
        return [(index, frames, side, sample_seed(self.seed, epoch, index)) for index in batch]

    def __len__(self) -> int:
        return max(0, self.num_batches_per_epoch - self._skip)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(batch_size={self.batch_size}, '
                f'num_grids={len(self.pairs)}, token_window={self.token_window}, '
                f'patch_size={self.patch_size}, tubelet_size={self.tubelet_size}, seed={self.seed}, '
                f'drop_last={self.drop_last})')


def with_backbone_geometry(batch_sampler_cfg: dict, backbone) -> dict:
    """A ``FluxBatchSampler`` config that counts tokens as ``backbone`` cuts them.

    The backbone owns its patch and tubelet sizes (its ``geometry``); configs
    need not repeat them for the sampler. Sizes the config sets itself are kept
    (a mismatch is then reported by the config check, naming both). A sampler
    that leaves a size out and a backbone without a geometry are refused, naming
    the backbone: nothing falls back to a guessed size.
    """
    kind = batch_sampler_cfg.get('type')
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    keys = ('patch_size', 'tubelet_size')
    if name.split('.')[-1] != 'FluxBatchSampler' or all(k in batch_sampler_cfg for k in keys):
        return batch_sampler_cfg
    try:
        geometry = token_geometry(backbone)
    except TypeError as err:
        unset = ' and '.join(k for k in keys if k not in batch_sampler_cfg)
        raise ValueError(
            f'train_dataloader.batch_sampler.{unset} not set, and the model\'s backbone '
            f'({type(backbone).__name__}) cannot give them: {err} Fix: set '
            f'batch_sampler.patch_size and tubelet_size in the config.') from None
    out = dict(batch_sampler_cfg)
    out.setdefault('patch_size', geometry.patch_size)
    out.setdefault('tubelet_size', geometry.tubelet_size)
    return out
