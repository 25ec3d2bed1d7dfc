"""Datasets that never lose a bad video silently (training skips, testing reports).

A video that cannot be used (missing, empty, truncated or corrupt file, a
decoder error, a transform that raises or returns None) is handled by the
``bad_video_policy`` of the dataset:

``'skip'`` (default)
    * training (``test_mode=False``): the failure is logged as a warning
      ``skipped <path>: <reason>`` and another random video is loaded in its
      place, with the same Flux grid ``(T, R)`` so the batch still stacks. The
      replacement carries the skipped ``(path, reason)`` pairs in its data
      sample's metainfo (``skipped_videos``), so
      :class:`~mmflux.engine.BadVideoCountHook` counts them in the main process
      whatever the number of dataloader workers.
    * testing / validation (``test_mode=True``): the video is *never* replaced.
      The dataset returns a placeholder sample with the shape of a real one (the
      pipeline run on a black video) whose metainfo says ``failed=True``,
      ``fail_reason`` and ``filename``; :class:`~mmflux.evaluation.RobustAccMetric`
      excludes it, names it in the log and reports ``num_failed`` /
      ``num_evaluated`` and the accuracy over the evaluated videos.
``'raise'``
    the first bad video raises :class:`BadVideoError` naming the file and the
    reason (training and testing).

Every line of the annotation file is checked when the dataset is built
(:mod:`mmflux.datasets.annotation_check`): a non-integer or negative label, a
wrong number of fields, an empty line or an empty file is refused with the
file, the line number, its text and the fix, before any iteration.

Besides, the pipeline runs through :class:`RobustCompose`, which

* upscales frames that are smaller than the crop of a ``CenterCrop``,
  ``ThreeCrop``, ``TenCrop`` or ``RandomCrop`` (keeping the aspect ratio, with
  a warning once per file) instead of letting the crop return smaller or
  misplaced frames, and checks that every crop has the requested size;
* runs decord in a child process (``isolate_decoder=True``, the default), so
  that a file on which the decoder crashes (a segfault, not an exception) is a
  bad video like any other instead of the end of the run; see
  :mod:`mmflux.datasets.isolated_decoder`;
* decodes with OpenCV what decord (``DecordInit`` / ``DecordDecode``) cannot:
  a valid file that decord 0.6.0 misdecodes is logged once, counted (the data
  sample's metainfo ``decoder_fallback`` says why) and used, not excluded; see
  :mod:`mmflux.datasets.video_fallback`. Only a file no decoder reads is bad;
* turns single-channel or RGBA frames from other decoders into 3-channel frames
  and refuses a decoder that returned no frames;
* names the transform that returned None.

:class:`RobustVideoDataset` / :class:`RobustRawframeDataset` are MMAction2's
``VideoDataset`` / ``RawframeDataset`` with this behaviour;
:class:`~mmflux.datasets.FluxVideoDataset` and
:class:`~mmflux.datasets.FluxRawframeDataset` have it as well.
"""
import copy
import logging
import os.path as osp
import re
from typing import Any, Callable, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine import fileio
from mmengine.dataset import Compose
from mmengine.logging import print_log

from mmaction.datasets import RawframeDataset, VideoDataset
from mmaction.datasets.transforms import (CenterCrop, DecordDecode, DecordInit,
                                          MultiScaleCrop, RandomCrop, RandomResizedCrop,
                                          TenCrop, ThreeCrop)
from mmaction.registry import DATASETS

from mmflux.utils.event_log import log_event
from .annotation_check import AnnotationError, check_annotation_lines, label_location
from .video_fallback import DECODER_FALLBACK_KEY, DecoderFallback

BAD_VIDEO_POLICIES = ('skip', 'raise')
#: metainfo key of a training sample: the (path, reason) pairs it replaced
SKIPPED_KEY = 'skipped_videos'
#: metainfo keys of a test-mode placeholder for a video that failed
FAILED_KEY = 'failed'
FAIL_REASON_KEY = 'fail_reason'
FILENAME_KEY = 'filename'

#: side of the black frames of a test-mode placeholder (before Resize / crops)
BLANK_SIDE = 256
_MAX_REASON = 300
_DECORD_PREFIX = re.compile(r'^\[\d\d:\d\d:\d\d\]\s+\S+:\d+:\s*')


class BadVideoError(RuntimeError):
    """A video could not be used and the policy does not allow skipping it."""


def describe_error(err: BaseException) -> str:
    """One line: ``<ExceptionType>: <first line of the message>``."""
    text = str(err).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = _DECORD_PREFIX.sub('', lines[0]) if lines else ''
    if len(first) > _MAX_REASON:
        first = first[:_MAX_REASON] + '...'
    text = f'{type(err).__name__}: {first}' if first else type(err).__name__
    notes = [str(note) for note in getattr(err, '__notes__', None) or []]
    return '; '.join([text] + notes)  # e.g. that the OpenCV fallback failed too


# --------------------------------------------------------------------------- pipeline
def crop_size_of(transform: Any) -> Optional[Tuple[int, int]]:
    """``(w, h)`` a crop transform outputs, or None for other transforms."""
    if isinstance(transform, (CenterCrop, ThreeCrop, TenCrop)):
        w, h = transform.crop_size
        return int(w), int(h)
    if isinstance(transform, RandomCrop) and not isinstance(
            transform, (RandomResizedCrop, MultiScaleCrop)):
        size = getattr(transform, 'size', None)
        if isinstance(size, (int, np.integer)):
            return int(size), int(size)
    return None


def _frames(results: Any) -> Optional[list]:
    if not isinstance(results, dict) or results.get('lazy'):
        return None
    imgs = results.get('imgs')
    if isinstance(imgs, (list, tuple)) and imgs and isinstance(imgs[0], np.ndarray):
        return list(imgs)
    return None


class RobustCompose(Compose):
    """:class:`mmengine.dataset.Compose` with crop guards and decoder checks.

    ``transforms`` are the same objects as in a plain ``Compose`` (so code that
    indexes ``pipeline.transforms`` keeps working); :meth:`run` executes any
    slice of them with the guards. ``last_none`` names the transform that made
    the last run return None.
    """

    def __init__(self, transforms: Optional[Sequence[Any]], isolate_decoder: bool = True) -> None:
        super().__init__(transforms)
        self.last_none: Optional[str] = None
        self.last_error: Optional[str] = None
        self._warned: set = set()
        #: OpenCV behind DecordInit / DecordDecode (``fallback.last``: this sample)
        self.fallback = DecoderFallback(isolate=isolate_decoder)

    def __call__(self, data: dict) -> Optional[dict]:
        self.fallback.reset()
        return self.run(self.transforms, data)

    def run(self, transforms: Sequence[Callable], data: Any) -> Any:
        """Run ``transforms`` in order; ``last_none`` / ``last_error`` name the
        transform that returned None / raised."""
        self.last_none = self.last_error = None
        for transform in transforms:
            try:
                data = self.step(transform, data)
            except Exception:
                self.last_error = type(transform).__name__
                raise
            if data is None:
                self.last_none = type(transform).__name__
                return None
        return data

    def step(self, transform: Callable, data: Any) -> Any:
        """Run one transform with the guards."""
        crop = crop_size_of(transform)
        if crop is not None:
            data = self._fit_to_crop(transform, data, crop)
        if isinstance(transform, DecordInit) and isinstance(data, dict):
            data = self.fallback.init(transform, data)
        elif isinstance(transform, DecordDecode) and isinstance(data, dict):
            data = self.fallback.decode(transform, data)
        else:
            data = transform(data)
        if data is None:
            return None
        name = type(transform).__name__
        if crop is not None:
            self._check_crop(name, data, crop)
        elif name.endswith('Decode'):
            self._check_decoded(name, data)
        return data

    # ------------------------------------------------------------------ guards
    def _warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        if len(self._warned) > 10000:
            self._warned.clear()
        self._warned.add(key)
        print_log(message, logger='current', level=logging.WARNING)

    def _fit_to_crop(self, transform: Any, results: dict,
                     crop: Tuple[int, int]) -> dict:
        """Upscale (keeping the aspect ratio) frames smaller than the crop."""
        imgs = _frames(results)
        if imgs is None:
            return results
        crop_w, crop_h = crop
        h, w = imgs[0].shape[:2]
        if h >= crop_h and w >= crop_w:
            if isinstance(transform, ThreeCrop) and h != crop_h and w != crop_w:
                raise ValueError(
                    f'ThreeCrop(crop_size={crop_w}x{crop_h}) needs frames whose height or '
                    f'width equals the crop, got {h}x{w}; put Resize(scale=(-1, '
                    f'{min(crop_w, crop_h)})) before it.')
            return results
        if h < 1 or w < 1:
            raise ValueError(f'frames of size {h}x{w} cannot be cropped.')
        scale = max(crop_w / w, crop_h / h)
        new_w = max(crop_w, int(round(w * scale)))
        new_h = max(crop_h, int(round(h * scale)))
        results['imgs'] = [mmcv.imresize(img, (new_w, new_h), interpolation='bilinear')
                           for img in imgs]
        results['img_shape'] = (new_h, new_w)
        factor = np.array([new_w / w, new_h / h], dtype=np.float32)
        results['scale_factor'] = np.asarray(
            results.get('scale_factor', np.ones(2, dtype=np.float32)),
            dtype=np.float32) * factor
        name = results.get('filename', results.get('frame_dir', '<video>'))
        self._warn_once(
            f'{name}|{type(transform).__name__}',
            f'upscaled {name}: its {h}x{w} frames are smaller than the {crop_h}x{crop_w} '
            f'crop of {type(transform).__name__}; resized to {new_h}x{new_w} (put a '
            'Resize before the crop to control this).')
        return results

    @staticmethod
    def _check_crop(name: str, results: Any, crop: Tuple[int, int]) -> None:
        imgs = _frames(results)
        if imgs is None:
            return
        crop_w, crop_h = crop
        bad = {img.shape[:2] for img in imgs if img.shape[:2] != (crop_h, crop_w)}
        if bad:
            raise ValueError(f'{name} returned frames of size {sorted(bad)} instead of '
                             f'{crop_h}x{crop_w}; the crop does not fit the frames.')

    @staticmethod
    def _check_decoded(name: str, results: Any) -> None:
        if not isinstance(results, dict) or 'imgs' not in results:
            return
        imgs = results['imgs']
        if imgs is None or len(imgs) == 0:
            raise ValueError(f'{name} decoded no frames.')
        if not isinstance(imgs[0], np.ndarray):
            return
        fixed: List[np.ndarray] = []
        changed = False
        for img in imgs:
            if img.ndim == 2:
                img, changed = np.repeat(img[..., None], 3, axis=2), True
            elif img.ndim == 3 and img.shape[2] == 1:
                img, changed = np.repeat(img, 3, axis=2), True
            elif img.ndim == 3 and img.shape[2] == 4:
                img, changed = np.ascontiguousarray(img[..., :3]), True
            elif img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f'{name} decoded frames of shape {img.shape}; expected '
                                 '(H, W, 3).')
            fixed.append(img)
        if changed:
            results['imgs'] = fixed
        if min(img.shape[0] for img in fixed) < 1 or min(img.shape[1] for img in fixed) < 1:
            raise ValueError(f'{name} decoded empty frames of shape {fixed[0].shape}.')

    # -------------------------------------------------------------- placeholder
    def run_blank(self, results: dict, side: int = BLANK_SIDE) -> Any:
        """The pipeline on a black video instead of the file (test placeholder).

        Loading transforms (type names ending in ``Init`` or ``Decode``) are
        replaced: ``*Init`` declares a video of ``total_frames`` (kept from the
        annotation when positive, else 1) frames, ``*Decode`` makes one black
        ``side x side`` frame per sampled index. Every other transform runs as
        usual, so the output has the shape of a real sample.
        """
        for transform in self.transforms:
            name = type(transform).__name__
            if name.endswith('Init'):
                total = results.get('total_frames')
                results['total_frames'] = total if isinstance(
                    total, (int, np.integer)) and total > 0 else 1
                results['avg_fps'] = 30.0
                results['video_reader'] = None
                continue
            if name.endswith('Decode'):
                inds = np.asarray(results.get('frame_inds', [0])).reshape(-1)
                results['imgs'] = [np.zeros((side, side, 3), dtype=np.uint8)
                                   for _ in range(max(len(inds), 1))]
                results['original_shape'] = results['img_shape'] = (side, side)
                results['video_reader'] = None
                continue
            results = self.step(transform, results)
            if results is None:
                raise ValueError(f'{name} returned None on the placeholder video.')
        return results


# ------------------------------------------------------------------------- dataset
class RobustDatasetMixin:
    """Bad-video handling for an mmengine ``BaseDataset`` (put it first in the MRO).

    Subclasses call :meth:`_init_robust` at the end of ``__init__``. Hooks for
    index formats other than ``int`` (Flux ``(index, T, R)``): override
    :meth:`_split_index`, :meth:`_load` and :meth:`_marker_info`.
    """

    def _init_robust(self, bad_video_policy: str = 'skip', isolate_decoder: bool = True) -> None:
        if bad_video_policy not in BAD_VIDEO_POLICIES:
            raise ValueError(
                f'dataset.bad_video_policy={bad_video_policy!r} is not one of '
                f"{BAD_VIDEO_POLICIES}; use 'skip' (log, count and replace in training, "
                "exclude and report in testing) or 'raise' (stop at the first bad video).")
        self.bad_video_policy = bad_video_policy
        if not isinstance(self.pipeline, RobustCompose):
            self.pipeline = RobustCompose(self.pipeline.transforms, isolate_decoder)
        #: bad videos met by this process (a dataloader worker counts its own)
        self.num_bad_videos = 0
        #: videos decoded by the OpenCV fallback in this process (they are used)
        self.num_decoder_fallbacks = 0

    # ---------------------------------------------------------- annotations
    def load_data_list(self) -> List[dict]:
        """The parent's list, after every line of the file passed
        :func:`~mmflux.datasets.annotation_check.check_annotation_lines`."""
        ann_file = getattr(self, 'ann_file', None)
        kind = 'rawframe' if isinstance(self, RawframeDataset) else 'video'
        checked = isinstance(ann_file, str) and isinstance(self, (VideoDataset, RawframeDataset)) \
            and not ann_file.endswith('.json')
        if checked:
            if not fileio.exists(ann_file):
                raise FileNotFoundError(f'annotation file {ann_file} does not exist; fix: set '
                                        'ann_file (or data_root=) to the list of this split.')
            #: ``(line number, text)`` of each sample, for messages about its label
            self.annotation_lines = check_annotation_lines(
                ann_file, fileio.list_from_file(ann_file), kind,
                delimiter=getattr(self, 'delimiter', ' '),
                multi_class=bool(getattr(self, 'multi_class', False)),
                with_offset=bool(getattr(self, 'with_offset', False)),
                num_classes=getattr(self, 'num_classes', None) if getattr(
                    self, 'multi_class', False) else None)
        data_list = super().load_data_list()
        if checked and len(data_list) != len(self.annotation_lines):
            self.annotation_lines = []  # a subclass parses differently: no line numbers
        for index, info in enumerate([] if checked else data_list):
            labels = info.get('label')
            for label in labels if isinstance(labels, (list, tuple)) else [labels]:
                if label is not None and (not isinstance(label, (int, np.integer)) or label < 0):
                    raise AnnotationError(
                        f'annotation file {ann_file}: sample {index} has label {label!r}; fix: '
                        'labels are class indices 0, 1, 2, ...')
        return data_list

    def label_location(self, index: int) -> str:
        """Where sample ``index`` is written: file, line number and text."""
        return label_location(str(getattr(self, 'ann_file', '?')),
                              getattr(self, 'annotation_lines', []), index)

    # ---------------------------------------------------------- overridable
    def _split_index(self, idx: Any) -> Tuple[int, Any]:
        return idx, None

    def _load(self, index: int, grid: Any) -> Any:
        return self.prepare_data(index)

    def _marker_info(self, index: int, grid: Any) -> dict:
        return copy.deepcopy(self.get_data_info(index))

    # ---------------------------------------------------------------- helpers
    def video_path(self, index: int) -> str:
        """The file (or frame folder) of sample ``index``, for messages."""
        try:
            info = self.get_data_info(index)
        except Exception:  # noqa: BLE001 - only used in messages
            return f'<sample {index}>'
        for key in ('filename', 'frame_dir', 'img_path'):
            if info.get(key):
                return str(info[key])
        return f'<sample {index}>'

    @staticmethod
    def _file_note(path: str) -> str:
        """``'missing file; '`` / ``'empty file (0 bytes); '`` for local paths."""
        try:
            if not osp.exists(path):
                return 'missing file; '
            if osp.isfile(path) and osp.getsize(path) == 0:
                return 'empty file (0 bytes); '
        except (OSError, TypeError, ValueError):
            pass
        return ''

    def _try_load(self, index: int, grid: Any) -> Tuple[Any, Optional[str],
                                                         Optional[BaseException]]:
        """``(data, None, None)`` or ``(None, reason, exception or None)``."""
        pipeline = self.pipeline
        if hasattr(pipeline, 'last_error'):
            pipeline.last_error = None
        fallback = getattr(pipeline, 'fallback', None)
        if fallback is not None:
            fallback.reset()
        try:
            data = self._load(index, grid)
        except Exception as err:  # noqa: BLE001 - every failure is reported by name
            where = getattr(pipeline, 'last_error', None)
            reason = self._file_note(self.video_path(index)) + describe_error(err)
            return None, reason + (f' (in {where})' if where else ''), err
        if data is None:
            where = getattr(self.pipeline, 'last_none', None)
            reason = (f'the pipeline returned None at {where}' if where else
                      'the pipeline returned None')
            return None, reason, None
        if fallback is not None and fallback.last:
            self.num_decoder_fallbacks += 1
            self._set_meta(data, {DECODER_FALLBACK_KEY: fallback.last})
        return data, None, None

    @staticmethod
    def _set_meta(data: Any, meta: dict) -> None:
        """Add ``meta`` to the data sample(s) of a pipeline output (or outputs)."""
        for target in data if isinstance(data, (list, tuple)) else [data]:
            sample = target.get('data_samples') if isinstance(target, dict) else None
            if sample is not None and hasattr(sample, 'set_metainfo'):
                sample.set_metainfo(meta)

    def _raise_bad(self, path: str, reason: str, err: Optional[BaseException]):
        raise BadVideoError(
            f'{path}: {reason} (dataset.bad_video_policy=\'raise\'; use \'skip\' to log, '
            'count and replace bad videos in training and exclude them in testing)'
        ) from err

    @staticmethod
    def _attach_skipped(data: Any, skipped: List[Tuple[str, str]]) -> None:
        target = data[0] if isinstance(data, (list, tuple)) and data else data
        sample = target.get('data_samples') if isinstance(target, dict) else None
        if sample is not None and hasattr(sample, 'set_metainfo'):
            sample.set_metainfo({SKIPPED_KEY: [tuple(s) for s in skipped]})

    def _failure_marker(self, index: int, grid: Any, path: str, reason: str) -> Any:
        """A placeholder with the shape of a real test sample, marked failed."""
        try:
            data = self.pipeline.run_blank(self._marker_info(index, grid))
        except Exception as err:  # noqa: BLE001
            raise BadVideoError(
                f'{path}: {reason}; no placeholder could be built for it '
                f'({describe_error(err)}), so it cannot be excluded from the metrics. '
                'Fix or remove the file, or check the test pipeline.') from err
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if sample is None or not hasattr(sample, 'set_metainfo'):
            raise BadVideoError(
                f'{path}: {reason}; the test pipeline does not end with '
                'PackActionInputs, so the failure cannot be marked for the metric.')
        sample.set_metainfo({FAILED_KEY: True, FAIL_REASON_KEY: reason, FILENAME_KEY: path})
        return data

    # ------------------------------------------------------------- __getitem__
    def __getitem__(self, idx: Any) -> Any:
        index, grid = self._split_index(idx)
        if not self._fully_initialized:
            self.full_init()
        if self.test_mode:
            data, reason, err = self._try_load(index, grid)
            if reason is None:
                return data
            path = self.video_path(index)
            self.num_bad_videos += 1
            if self.bad_video_policy == 'raise':
                self._raise_bad(path, reason, err)
            log_event(f'failed {path}: {reason} (test mode: not replaced; excluded from '
                      'the metrics)')
            return self._failure_marker(index, grid, path, reason)
        skipped: List[Tuple[str, str]] = []
        path, reason = '', ''
        for _ in range(self.max_refetch + 1):
            data, reason, err = self._try_load(index, grid)
            if reason is None:
                if skipped:
                    self._attach_skipped(data, skipped)
                return data
            path = self.video_path(index)
            self.num_bad_videos += 1
            if self.bad_video_policy == 'raise':
                self._raise_bad(path, reason, err)
            log_event(f'skipped {path}: {reason}')
            skipped.append((path, reason))
            index = self._rand_another()
        raise BadVideoError(
            f'no usable video after {self.max_refetch + 1} tries (grid {grid}); the last '
            f'was {path}: {reason}. The data or the pipeline is broken.')


@DATASETS.register_module()
class RobustVideoDataset(RobustDatasetMixin, VideoDataset):
    """:class:`~mmaction.datasets.VideoDataset` that logs, counts and replaces bad
    videos in training and reports and excludes them in testing.

    Args:
        bad_video_policy (str): ``'skip'`` (default) or ``'raise'``; see
            :mod:`mmflux.datasets.robust_dataset`.
        isolate_decoder (bool): decode with decord in a child process, so that
            a decoder crash skips the video instead of killing the run.
            Defaults to True.
        **kwargs: as :class:`~mmaction.datasets.VideoDataset`.
    """

    def __init__(self, *args, bad_video_policy: str = 'skip', isolate_decoder: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_robust(bad_video_policy, isolate_decoder)


@DATASETS.register_module()
class RobustRawframeDataset(RobustDatasetMixin, RawframeDataset):
    """:class:`~mmaction.datasets.RawframeDataset` with ``bad_video_policy``
    (see :class:`RobustVideoDataset`)."""

    def __init__(self, *args, bad_video_policy: str = 'skip', isolate_decoder: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_robust(bad_video_policy, isolate_decoder)


__all__ = [
    'AnnotationError', 'BAD_VIDEO_POLICIES', 'BadVideoError', 'DECODER_FALLBACK_KEY', 'FAILED_KEY',
    'FAIL_REASON_KEY', 'FILENAME_KEY',
    'RobustCompose', 'RobustDatasetMixin', 'RobustRawframeDataset', 'RobustVideoDataset',
    'SKIPPED_KEY', 'crop_size_of', 'describe_error'
]
