"""Video / rawframe datasets that accept Flux ``(index, T, R[, seed])`` samples.

:class:`FluxVideoDataset` (a :class:`mmaction.datasets.VideoDataset`) and
:class:`FluxRawframeDataset` (a :class:`mmaction.datasets.RawframeDataset`)
behave exactly like their parents for an ``int`` index (validation, test, any
ordinary sampler). For an ``(index, T, R, seed)`` tuple, as yielded by
:class:`~mmflux.datasets.FluxBatchSampler`, they put ``results['flux_frames'] = T``
and ``results['flux_side'] = R`` into the data info before the pipeline; the
Flux transforms (``FluxUniformSample``, ``SSv2Sample``, ``ClipRandAugment``,
``FluxRandomResizedCrop``) read those keys and fall back to their own
``clip_len`` / ``size`` when they are absent.

Keyed augmentation: with a ``seed`` (the sampler's ``sample_seed(seed, epoch,
index)``) the whole loading of the sample, refetches of bad videos and repeated
augmentation included, runs with ``random``, ``numpy.random`` and torch seeded
from it (:func:`~mmflux.utils.keyed_random.keyed_global_rngs`; the previous
states are restored afterwards). Every transform that draws from the global
generators, MMAction2's and mmcv's included, then gives the same output in any
worker, with any number of workers and after a resume. A 3-tuple
``(index, T, R)`` is still accepted and draws from the process's generators.

Bad videos (``bad_video_policy``, see :mod:`mmflux.datasets.robust_dataset`):
with ``'skip'`` (default) a video that fails to load in training (an exception
or a None from the pipeline) is logged as ``skipped <path>: <reason>``, counted
and replaced by a random other index (at most ``max_refetch`` times), loaded
with the *same* ``(T, R)`` so the batch still stacks; in testing it is never
replaced but returned as a placeholder marked ``failed`` for
:class:`~mmflux.evaluation.RobustAccMetric`. ``'raise'`` stops at the first one.

Repeated augmentation (the released scripts' ``--num_sample 2``): ``num_repeats=k``
(training only) runs the pipeline up to and including the frame decoder
(``DecordDecode``, ``RawFrameDecode``, ... — the last transform whose type
name ends with ``Decode``; or the transform index ``repeat_from`` names) once,
then runs the rest of the pipeline ``k`` times on copies of the decoded
frames: same frame indices, independent spatial augmentation. The sample is
then a *list* of ``k`` packed results, so the dataloader must flatten it with
MMAction2's ``collate_fn=dict(type='repeat_pseudo_collate')``. A loader batch of
``b`` videos then reaches the model as ``b * k`` ordinary clips, each with its
own (identical) label, ordered ``[v0_a, v0_b, v1_a, v1_b, ...]`` as the
reference's collate; the recognizer and batch augments need nothing special.

mmengine's index-arithmetic dataset wrappers (``ConcatDataset``,
``RepeatDataset``, ``ClassBalancedDataset``) expect int indices and cannot be
put between :class:`FluxBatchSampler` and these datasets; concatenate the
annotation files instead.
"""
import copy
from typing import Any, Callable, Optional, Sequence, Tuple, Union

from mmaction.datasets import RawframeDataset, VideoDataset
from mmaction.registry import DATASETS
from mmflux.utils.keyed_random import keyed_global_rngs
from .robust_dataset import RobustDatasetMixin

FLUX_FRAMES_KEY = 'flux_frames'
FLUX_SIDE_KEY = 'flux_side'

FluxIndex = Union[int, Tuple[int, int, int], Tuple[int, int, int, int]]


def parse_flux_index(idx: Any) -> Tuple[int, Optional[Tuple[int, int]]]:
    """``int`` -> ``(idx, None)``; ``(idx, T, R[, seed])`` -> ``(idx, (T, R))``."""
    if isinstance(idx, (tuple, list)):
        if len(idx) not in (3, 4):
            raise ValueError(
                f'A Flux sample index must be (dataset_index, frames, side[, seed]), got '
                f'{idx!r}; use FluxBatchSampler or an int index.')
        return int(idx[0]), (int(idx[1]), int(idx[2]))
    return idx, None


def sample_seed_of(idx: Any) -> Optional[int]:
    """The augmentation seed of a ``(index, T, R, seed)`` sample, else None."""
    if isinstance(idx, (tuple, list)) and len(idx) == 4:
        return int(idx[3])
    return None


class FluxDatasetMixin(RobustDatasetMixin):
    """``(index, T, R)`` indexing, grid-preserving refetch, bad-video handling
    and repeated aug.

    Mixed into an mmengine ``BaseDataset`` subclass (before it in the MRO).
    """

    def _init_flux(self, num_repeats: int,
                   repeat_from: Optional[Union[int, str]],
                   bad_video_policy: str = 'skip', isolate_decoder: bool = True) -> None:
        self._init_robust(bad_video_policy, isolate_decoder)
        if not isinstance(num_repeats, int) or num_repeats < 1:
            raise ValueError(f'dataset.num_repeats={num_repeats!r} must be an int '
                             '>= 1 (2 = repeated augmentation of the reference).')
        if num_repeats > 1 and self.test_mode:
            raise ValueError(
                f'dataset.num_repeats={num_repeats} is only for training; set '
                'num_repeats=1 for val/test datasets (test_mode=True).')
        self.num_repeats = num_repeats
        self.repeat_from = repeat_from
        self._repeat_start = (
            self._find_repeat_start(repeat_from) if num_repeats > 1 else None)

    def _find_repeat_start(self, repeat_from: Optional[Union[int, str]]) -> int:
        transforms = self.pipeline.transforms
        names = [type(t).__name__ for t in transforms]
        if isinstance(repeat_from, int):
            if not 0 < repeat_from <= len(transforms):
                raise ValueError(
                    f'dataset.repeat_from={repeat_from} must index the first '
                    f'repeated transform, in 1..{len(transforms)} (pipeline: {names}).')
            return repeat_from
        if isinstance(repeat_from, str):
            if repeat_from not in names:
                raise ValueError(f'dataset.repeat_from={repeat_from!r} is not a '
                                 f'transform of the pipeline {names}.')
            start = names.index(repeat_from)
            if start == 0:
                raise ValueError('dataset.repeat_from must not be the first '
                                 f'transform (pipeline: {names}).')
            return start
        decoders = [i for i, name in enumerate(names) if name.endswith('Decode')]
        if not decoders:
            raise ValueError(
                f'dataset.num_repeats={self.num_repeats} needs a frame decoder '
                f'(DecordDecode, RawFrameDecode, ...) in the pipeline {names}, or '
                'dataset.repeat_from = the first transform to repeat.')
        return decoders[-1] + 1

    # ------------------------------------------------------------- loading
    def prepare_data(self, idx: FluxIndex,
                     grid: Optional[Tuple[int, int]] = None) -> Any:
        """Run the pipeline on sample ``idx`` (int or ``(index, T, R)``).

        Returns the pipeline output (a list of ``num_repeats`` outputs when
        ``num_repeats > 1``) or None when any part of the pipeline returned None.
        """
        index, parsed = parse_flux_index(idx)
        grid = parsed if parsed is not None else grid
        data_info = self.get_data_info(index)
        if grid is not None:
            data_info[FLUX_FRAMES_KEY], data_info[FLUX_SIDE_KEY] = grid
        if self._repeat_start is None:
            return self.pipeline(data_info)
        transforms = self.pipeline.transforms
        shared = self._run(transforms[:self._repeat_start], data_info)
        if shared is None:
            return None
        outputs = []
        for _ in range(self.num_repeats):
            out = self._run(transforms[self._repeat_start:], copy.deepcopy(shared))
            if out is None:
                return None
            outputs.append(out)
        return outputs

    def _run(self, transforms: Sequence[Callable], results: Any) -> Any:
        run = getattr(self.pipeline, 'run', None)
        if run is not None:  # RobustCompose: crop guards, names a None
            return run(transforms, results)
        for transform in transforms:
            results = transform(results)
            if results is None:
                return None
        return results

    def __getitem__(self, idx: FluxIndex) -> Any:
        seed = sample_seed_of(idx)
        if seed is None:
            return super().__getitem__(idx)
        with keyed_global_rngs(seed):
            return super().__getitem__(idx)

    # RobustDatasetMixin's ``__getitem__`` skips / reports bad videos; these
    # three make it accept ``(index, T, R)`` and keep ``(T, R)`` on refetch.
    def _split_index(self, idx: FluxIndex) -> Tuple[int, Optional[Tuple[int, int]]]:
        return parse_flux_index(idx)

    def _load(self, index: int, grid: Optional[Tuple[int, int]]) -> Any:
        return self.prepare_data(index, grid)

    def _marker_info(self, index: int, grid: Optional[Tuple[int, int]]) -> dict:
        data_info = copy.deepcopy(self.get_data_info(index))
        if grid is not None:
            data_info[FLUX_FRAMES_KEY], data_info[FLUX_SIDE_KEY] = grid
        return data_info


@DATASETS.register_module()
class FluxVideoDataset(FluxDatasetMixin, VideoDataset):
    """:class:`~mmaction.datasets.VideoDataset` accepting ``(index, T, R)``.

    Args:
        num_repeats (int): pipeline outputs per video (repeated augmentation,
            training only; needs ``collate_fn=dict(type='repeat_pseudo_collate')``
            when > 1). Defaults to 1.
        repeat_from (int | str, optional): first transform to repeat (index in
            the pipeline or type name). Defaults to the one after the last
            ``*Decode`` transform.
        bad_video_policy (str): ``'skip'`` (default: log, count and replace a
            bad video in training; report and exclude it in testing) or
            ``'raise'``. See :mod:`mmflux.datasets.robust_dataset`.
        isolate_decoder (bool): decode with decord in a child process, so that
            a decoder crash skips the video instead of killing the run.
            Defaults to True.
        **kwargs: as :class:`~mmaction.datasets.VideoDataset`.
    """

    def __init__(self, *args, num_repeats: int = 1,
                 repeat_from: Optional[Union[int, str]] = None,
                 bad_video_policy: str = 'skip', isolate_decoder: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_flux(num_repeats, repeat_from, bad_video_policy, isolate_decoder)


@DATASETS.register_module()
class FluxRawframeDataset(FluxDatasetMixin, RawframeDataset):
    """:class:`~mmaction.datasets.RawframeDataset` accepting ``(index, T, R)``.

    Args: as :class:`FluxVideoDataset` plus those of
    :class:`~mmaction.datasets.RawframeDataset`.
    """

    def __init__(self, *args, num_repeats: int = 1,
                 repeat_from: Optional[Union[int, str]] = None,
                 bad_video_policy: str = 'skip', isolate_decoder: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_flux(num_repeats, repeat_from, bad_video_policy, isolate_decoder)


__all__ = [
    'FLUX_FRAMES_KEY', 'FLUX_SIDE_KEY', 'FluxDatasetMixin', 'FluxRawframeDataset',
    'FluxVideoDataset', 'parse_flux_index', 'sample_seed_of'
]
