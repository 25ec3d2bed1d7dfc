"""decord in a child process, so that a decoder crash costs one video, not the run.

decord 0.6.0 segfaults inside FFmpeg on some damaged files (a truncated MJPG
AVI, opened from bytes as MMAction2's ``DecordInit`` opens it, crashes in
``VideoReader.__init__``). A segfault raises no Python exception: it kills the
dataloader worker (and with it the run), and the file is never named. Here
decord runs in a small child process (:mod:`.isolated_decoder_child`, started
once per process that loads data, i.e. once per dataloader worker, and
restarted after a crash); the pipeline gets an :class:`IsolatedVideoReader`
that answers ``DecordDecode``'s calls (``get_batch``, ``seek``, ``next``)
through a pipe. When the child dies (any signal or exit) or does not answer
within ``timeout`` seconds, :class:`DecoderCrashError` is raised in the parent,
and the dataset skips (training) or excludes (testing) that video like any
unreadable one, naming it. Nothing here depends on the container or on where
the decoder crashes: every decord call on the file runs in the child.

The cost on normal videos (the frames cross a pipe) is measured in
docs/robustness.md.
"""
import itertools
import os
import os.path as osp
import signal
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any, Dict, Optional, Sequence

import numpy as np

_CHILD_FILE = osp.join(osp.dirname(osp.abspath(__file__)), 'isolated_decoder_child.py')
_CHILD_CODE = ('import importlib.util as u, sys\n'
               's = u.spec_from_file_location("mmflux_isolated_decoder_child", sys.argv[1])\n'
               'm = u.module_from_spec(s); s.loader.exec_module(m); m.main(sys.argv[2:])\n')
#: seconds a decoder may take for one request before it is taken as hung
DEFAULT_TIMEOUT = 300.0


class DecoderCrashError(RuntimeError):
    """The decoder process died (or hung) on this file: the video is unusable.

    Not retried with another decoder in the same process: a file that crashes
    one FFmpeg-based decoder may crash another.
    """


class IsolatedDecoderError(RuntimeError):
    """decord raised an exception in the child (an ordinary, recoverable failure);
    ``kind`` is its type name there (``DECORDError``, ``FileNotFoundError`` ...)."""

    def __init__(self, message: str, kind: str = '') -> None:
        super().__init__(message)
        self.kind = kind


_ERROR_CLASSES: Dict[str, type] = {}


def _error_class(kind: str) -> type:
    """An :class:`IsolatedDecoderError` subclass named as the child's exception
    (``RuntimeError``, ``DECORDError`` ...), so messages read as without isolation."""
    if not kind.isidentifier():
        return IsolatedDecoderError
    if kind not in _ERROR_CLASSES:
        _ERROR_CLASSES[kind] = type(kind, (IsolatedDecoderError, ), {})
    return _ERROR_CLASSES[kind]


def _signal_name(returncode: Optional[int]) -> str:
    if returncode is None:
        return 'no exit status'
    if returncode < 0:
        try:
            return f'{signal.Signals(-returncode).name}, signal {-returncode}'
        except ValueError:
            return f'signal {-returncode}'
    return f'exit status {returncode}'


class IsolatedDecoder:
    """Owner of one decoder child process (per loading process, fork-aware).

    Args:
        timeout (float): seconds one request may take before the child is
            killed and the video counted as bad.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = float(timeout)
        self._proc: Optional[subprocess.Popen] = None
        self._requests: Optional[Connection] = None
        self._answers: Optional[Connection] = None
        self._owner_pid: Optional[int] = None
        self._ids = itertools.count(1)
        #: children that died or hung in this process
        self.num_crashes = 0

    # ---------------------------------------------------------------- process
    def _start(self) -> None:
        child_read, parent_write = os.pipe()
        parent_read, child_write = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, '-c', _CHILD_CODE, _CHILD_FILE, str(child_read), str(child_write)],
                pass_fds=(child_read, child_write), stdin=subprocess.DEVNULL)
        finally:
            os.close(child_read)
            os.close(child_write)
        self._requests = Connection(parent_write, readable=False)
        self._answers = Connection(parent_read, writable=False)
        self._owner_pid = os.getpid()

    def _ensure(self) -> None:
        if self._owner_pid != os.getpid():
            # a forked dataloader worker inherits its parent's child: never share it
            self._proc = self._requests = self._answers = None
        if self._proc is None or self._proc.poll() is not None:
            self._discard()
            self._start()

    def _discard(self) -> None:
        for conn in (self._requests, self._answers):
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
        proc, self._proc, self._requests, self._answers = self._proc, None, None, None
        if proc is not None and self._owner_pid == os.getpid():
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        """Stop the child (it also stops by itself when this process exits)."""
        if self._owner_pid == os.getpid():
            self._discard()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __getstate__(self) -> Dict[str, Any]:
        # a dataset pickled to a spawned worker gets its own child, started on use
        return dict(timeout=self.timeout, num_crashes=self.num_crashes)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state['timeout'])
        self.num_crashes = state['num_crashes']

    # ---------------------------------------------------------------- requests
    def request(self, *message: Any) -> Any:
        """Send ``message``, return the child's value; raise its error or a crash."""
        self._ensure()
        proc = self._proc
        try:
            self._requests.send(message)
            if not self._answers.poll(self.timeout):
                proc.kill()
                proc.wait()
                self.num_crashes += 1
                self._discard()
                raise DecoderCrashError(
                    f'the decoder did not answer within {self.timeout:g} s and was killed; '
                    'the file is damaged or too large for the timeout')
            answer = self._answers.recv()
        except (EOFError, OSError):
            try:
                returncode = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                returncode = proc.wait()
            self.num_crashes += 1
            self._discard()
            raise DecoderCrashError(
                f'the decoder crashed ({_signal_name(returncode)}) in its own process; '
                'the file is damaged or in a form the decoder cannot read') from None
        if answer[0] == 'ok':
            return answer[1]
        raise _error_class(answer[1])(answer[2] or answer[1], kind=answer[1])

    def open(self, filename: str, data: Optional[bytes] = None,
             num_threads: int = 1) -> 'IsolatedVideoReader':
        """A reader of ``filename`` (read by the child) or of ``data`` (its bytes)."""
        reader_id = next(self._ids)
        kind, source = ('path', filename) if data is None else ('bytes', data)
        num_frames, fps = self.request('open', reader_id, kind, source, int(num_threads))
        return IsolatedVideoReader(self, reader_id, num_frames, fps)

    def decord_init(self, transform: Any, results: Dict, filename: str) -> Dict:
        """MMAction2's ``DecordInit.transform`` with the reader in the child."""
        if getattr(transform, 'io_backend', 'disk') == 'disk' and not getattr(
                transform, 'kwargs', None) and osp.isfile(filename):
            reader = self.open(filename, num_threads=transform.num_threads)
        else:  # another storage backend: fetched here, as DecordInit fetches it
            if getattr(transform, 'file_client', None) is None:
                from mmengine.fileio import FileClient
                transform.file_client = FileClient(transform.io_backend, **transform.kwargs)
            reader = self.open(filename, transform.file_client.get(filename),
                               num_threads=transform.num_threads)
        results['total_frames'] = len(reader)
        results['video_reader'] = reader
        results['avg_fps'] = reader.get_avg_fps()
        return results


class _Frames:
    """What decord's ``NDArray`` offers ``DecordDecode``: ``asnumpy()``."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def asnumpy(self) -> np.ndarray:
        return self._array


class IsolatedVideoReader:
    """A decord ``VideoReader`` living in the decoder's child process."""

    def __init__(self, decoder: IsolatedDecoder, reader_id: int, num_frames: int,
                 fps: float) -> None:
        self._decoder, self._id = decoder, reader_id
        self._num_frames, self._fps = int(num_frames), float(fps)

    def __len__(self) -> int:
        return self._num_frames

    def get_avg_fps(self) -> float:
        return self._fps

    def get_batch(self, indices: Sequence[int]) -> _Frames:
        inds = [int(i) for i in np.asarray(indices).reshape(-1)]
        return _Frames(self._decoder.request('get_batch', self._id, inds))

    def seek(self, index: int) -> None:
        self._decoder.request('seek', self._id, int(index))

    def next(self) -> _Frames:
        return _Frames(self._decoder.request('next', self._id))

    def __getitem__(self, index: int) -> _Frames:
        return _Frames(self._decoder.request('get_batch', self._id, [int(index)])[0])


__all__ = ['DEFAULT_TIMEOUT', 'DecoderCrashError', 'IsolatedDecoder', 'IsolatedDecoderError',
           'IsolatedVideoReader']
