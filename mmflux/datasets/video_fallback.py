"""A second video decoder (OpenCV) for valid files that decord 0.6.0 cannot decode.

decord 0.6.0 misdecodes some valid videos, depending on the frame width and not
on the file being damaged (dmlc/decord issues 93 and 336). Measured with mp4v,
MJPG and FFV1 files written by OpenCV 4.11 (this repo's tests make such files):
for widths 2, 3, 4, 6, 8, 12, 16, 24, 48 ``get_batch`` raises ``DECORDArrayCopyFromTo:
The size must exactly match`` and ``vr[i]`` / ``next()`` (``DecordDecode(mode=
'efficient')``) return (H, W, 4) or (H, W, 8) arrays of garbage; widths 10, 14,
18, 20, 32, 50, 64, 96 decode fine. Both failures are caught here.
decord also segfaults on some damaged files (a truncated MJPG AVI opened from
bytes, as ``DecordInit`` opens it), which no ``except`` can catch: decord
therefore runs in a child process (:mod:`mmflux.datasets.isolated_decoder`, on
by default), where a crash raises :class:`DecoderCrashError` and the file is a
bad video (skipped or excluded, named and counted; not retried with OpenCV).
OpenCV's *writer* aborts the process on 2-3 pixel wide frames (tests write
widths >= 4). A file decord cannot open at all
may still be readable by OpenCV (another FFmpeg build).

:class:`DecoderFallback` wraps MMAction2's ``DecordInit`` / ``DecordDecode``
(:class:`~mmflux.datasets.RobustCompose` uses it for every pipeline, no config
change): when decord raises, or returns frames that are not (H, W, 3) uint8 of
one size, the same frame indices are decoded with :class:`OpenCVVideo`, the
file is logged once (per process) and counted, and the video is used. Only a
file that no backend decodes is a bad video.

OpenCV's ``CAP_PROP_FRAME_COUNT`` comes from the container header and can be
wrong (a truncated AVI still reports all its frames), so :class:`OpenCVVideo`
counts the frames it can actually read, and reads sequentially (exact frames,
no seek). Indices past the last readable frame (decord reported more frames
than there are) take the last frame, which the log line says.
"""
import logging
import os
import os.path as osp
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import print_log

from mmaction.datasets.transforms import DecordInit
from .isolated_decoder import DEFAULT_TIMEOUT, DecoderCrashError, IsolatedDecoder

#: data-sample metainfo key: why the video was decoded by the fallback decoder
DECODER_FALLBACK_KEY = 'decoder_fallback'


class OpenCVVideo:
    """Exact random access to a video's frames through OpenCV (RGB uint8).

    Args:
        path (str): local file. Files a ``file_client`` serves (``io_backend``
            other than disk) are copied to a temporary file first.
        file_client: mmengine ``FileClient`` used to fetch a non-local file.
    """

    def __init__(self, path: str, file_client: Any = None) -> None:
        import cv2
        self.path = path
        self._tmp: Optional[str] = None
        local = path
        if not osp.isfile(path):
            if file_client is None:
                raise FileNotFoundError(f'{path} is not a local file')
            data = file_client.get(path)
            suffix = osp.splitext(path)[1] or '.mp4'
            fd, self._tmp = tempfile.mkstemp(suffix=suffix, prefix='mmflux_video_')
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
            local = self._tmp
        self._local = local
        cap = cv2.VideoCapture(local)
        try:
            if not cap.isOpened():
                raise RuntimeError('OpenCV cannot open it')
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.reported_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            count = 0
            while cap.grab():
                count += 1
        finally:
            cap.release()
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 30.0
        #: frames OpenCV can actually read (the header's count may differ)
        self.num_frames = count
        if count == 0:
            self.close()
            raise RuntimeError('OpenCV reads no frame from it')

    def __len__(self) -> int:
        return self.num_frames

    def frames(self, indices: Sequence[int]) -> List[np.ndarray]:
        """RGB uint8 frames at ``indices`` (any order, repeats allowed); an index
        past the end takes the last frame (see :attr:`clamped`)."""
        import cv2
        wanted = [min(max(int(i), 0), self.num_frames - 1) for i in indices]
        #: how many indices were past the last readable frame
        self.clamped = sum(1 for i in indices if int(i) >= self.num_frames)
        needed = set(wanted)
        last = max(needed)
        got: Dict[int, np.ndarray] = {}
        cap = cv2.VideoCapture(self._local)
        try:
            for index in range(last + 1):
                if index in needed:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    got[index] = self._to_rgb(frame)
                elif not cap.grab():
                    break
        finally:
            cap.release()
        if not got:
            raise RuntimeError('OpenCV decoded no frame')
        if len(got) < len(needed):  # the file ended earlier on this pass
            read = sorted(got)
            self.clamped += sum(1 for i in wanted if i not in got)
            wanted = [i if i in got else max((r for r in read if r <= i), default=read[0])
                      for i in wanted]
        return [got[i].copy() for i in wanted]

    @staticmethod
    def _to_rgb(frame: np.ndarray) -> np.ndarray:
        import cv2
        if frame.ndim == 2:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if frame.shape[2] == 4:
            return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
        return np.ascontiguousarray(frame[..., ::-1])

    def close(self) -> None:
        if self._tmp is not None:
            try:
                os.remove(self._tmp)
            except OSError:
                pass
            self._tmp = None

    def __del__(self) -> None:
        self.close()


def frames_problem(imgs: Any, expected: Optional[int] = None) -> Optional[str]:
    """Why ``imgs`` are not usable decoded RGB frames, or None if they are."""
    if imgs is None or len(imgs) == 0:
        return 'no frames'
    if expected is not None and len(imgs) != expected:
        return f'{len(imgs)} frames for {expected} indices'
    shapes = set()
    for img in imgs:
        if not isinstance(img, np.ndarray):
            return f'frames of type {type(img).__name__}'
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or min(img.shape) < 1:
            return f'frames of shape {img.shape} and dtype {img.dtype}, not (H, W, 3) uint8'
        shapes.add(img.shape)
    if len(shapes) > 1:
        return f'frames of different sizes {sorted(shapes)}'
    return None


def _filename(results: Dict) -> str:
    name = str(results.get('filename', ''))
    if name and osp.splitext(name)[0] == name:
        name += '.mp4'  # as DecordInit does
    return name


def _describe(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    first = lines[0] if lines else ''
    # decord prefixes its messages with "[hh:mm:ss] /path/file.cc:123: "
    if first.startswith('[') and ': ' in first:
        first = first.split(': ', 1)[1]
    first = first[:200]
    return f'{type(err).__name__}: {first}' if first else type(err).__name__


class DecoderFallback:
    """Runs ``DecordInit`` / ``DecordDecode``, falling back to OpenCV.

    ``num_fallbacks`` counts the videos decoded by OpenCV in this process;
    ``last`` is the reason for the last sample (None when decord worked), which
    the dataset records in the sample's metainfo (:data:`DECODER_FALLBACK_KEY`).

    Args:
        isolate (bool): run decord in a child process
            (:class:`~mmflux.datasets.isolated_decoder.IsolatedDecoder`), so that
            a decoder crash raises :class:`DecoderCrashError` instead of killing
            the process. Such a file is not retried with OpenCV.
        timeout (float): seconds one decoder request may take (isolated only).
    """

    def __init__(self, isolate: bool = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.num_fallbacks = 0
        self.last: Optional[str] = None
        self._logged: set = set()
        self.isolated = IsolatedDecoder(timeout) if isolate else None

    def reset(self) -> None:
        self.last = None

    # ------------------------------------------------------------- transforms
    def init(self, transform: Any, results: Dict) -> Dict:
        """``DecordInit``; if decord cannot open the file, an :class:`OpenCVVideo`."""
        try:
            if self.isolated is not None and type(transform).transform is DecordInit.transform:
                out = self.isolated.decord_init(transform, results, _filename(results))
            else:
                out = transform(results)
            if int(out.get('total_frames', 0)) < 1:
                raise RuntimeError('decord reports no frames')
            return out
        except DecoderCrashError:
            raise
        except Exception as err:  # noqa: BLE001 - retried with OpenCV, re-raised if that fails
            filename = _filename(results)
            reader = self._open(filename, transform, err)
            results['video_reader'] = reader
            results['total_frames'] = reader.num_frames
            results['avg_fps'] = reader.fps
            self._record(filename, f'DecordInit failed ({_describe(err)})')
            return results

    def decode(self, transform: Any, results: Dict) -> Dict:
        """``DecordDecode``; if it raises or returns unusable frames, OpenCV."""
        reader = results.get('video_reader')
        inds = np.asarray(results.get('frame_inds', [])).reshape(-1)
        if isinstance(reader, OpenCVVideo):
            return self._decode_with(reader, results, inds, reason=None)
        filename = _filename(results)
        try:
            out = transform(results)
            problem = frames_problem(out.get('imgs'), expected=len(inds))
            if problem is None:
                return out
            reason = f'DecordDecode returned {problem}'
            err: Optional[BaseException] = None
        except DecoderCrashError:
            raise
        except Exception as exc:  # noqa: BLE001
            reason, err = f'DecordDecode failed ({_describe(exc)})', exc
        results['video_reader'] = None
        opened = self._open(filename, None, err, reason)
        return self._decode_with(opened, results, inds, reason)

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _open(filename: str, transform: Any, err: Optional[BaseException],
              reason: Optional[str] = None) -> OpenCVVideo:
        file_client = getattr(transform, 'file_client', None) if transform is not None else None
        try:
            return OpenCVVideo(filename, file_client=file_client)
        except Exception as cv_err:  # noqa: BLE001
            note = f'the OpenCV fallback failed too ({_describe(cv_err)})'
            if err is None:
                raise RuntimeError(f'{reason}; {note}') from cv_err
            if hasattr(err, 'add_note'):
                err.add_note(note)
            raise err

    def _decode_with(self, reader: OpenCVVideo, results: Dict, inds: np.ndarray,
                     reason: Optional[str]) -> Dict:
        try:
            imgs = reader.frames(inds.tolist() if inds.size else [0])
        finally:
            reader.close()
        results['video_reader'] = None
        results['imgs'] = imgs
        results['original_shape'] = results['img_shape'] = imgs[0].shape[:2]
        if reason is not None:
            self._record(_filename(results), reason)
        if reader.clamped:
            self.last = (self.last or 'decoded by OpenCV') + (
                f'; {reader.clamped} of {len(imgs)} frame indices were past the '
                f'{reader.num_frames} readable frames and took the last one')
            self._log(_filename(results), self.last, key='clamp')
        return results

    def _record(self, filename: str, reason: str) -> None:
        self.num_fallbacks += 1
        self.last = f'{reason}; decoded by OpenCV'
        self._log(filename, self.last)

    def _log(self, filename: str, message: str, key: str = '') -> None:
        if (filename, key) in self._logged:
            return
        if len(self._logged) > 10000:
            self._logged.clear()
        self._logged.add((filename, key))
        print_log(f'decoder fallback {filename}: {message} (logged once per file)',
                  logger='current', level=logging.WARNING)


__all__ = ['DECODER_FALLBACK_KEY', 'DecoderFallback', 'OpenCVVideo', 'frames_problem']
