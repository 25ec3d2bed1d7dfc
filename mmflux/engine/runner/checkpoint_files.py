"""Checkpoint files that are complete or absent: atomic writes, checks, the newest valid one.

A checkpoint is written to ``<name>.partial`` in its own directory, flushed and
fsynced, then renamed over ``<name>`` (``os.replace`` is atomic on one file
system) and the directory fsynced: a kill or a full disk at any moment leaves
either the previous file or the new complete one, plus at most a ``.partial``
leftover that the next run removes. :func:`checkpoint_problem` tells a complete
PyTorch checkpoint from a truncated, empty or foreign file without unpickling
it (a zip archive's central directory sits at its end, so truncation is seen at
once; ``thorough=True`` also checks every member's CRC).
"""
import os
import os.path as osp
import re
import zipfile
from typing import Iterable, List, Optional, Tuple

PARTIAL_SUFFIX = '.partial'
#: checkpoints a training run can resume from (best_* ones hold no optimizer state)
RESUMABLE = re.compile(r'^(epoch|iter)_(\d+)\.pth$')
_LEGACY_TORCH_MAGIC = b'\x80\x02'  # torch.save(_use_new_zipfile_serialization=False)


class CheckpointWriteError(OSError):
    """A checkpoint (or another result file) could not be written completely."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()  # the message names the file: no "[Errno N]"


def partial_path(path: str) -> str:
    return path + PARTIAL_SUFFIX


def fsync_dir(directory: str) -> None:
    """Make a rename inside ``directory`` durable (no-op where unsupported)."""
    try:
        fd = os.open(directory or '.', os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit_partial(partial: str, final: str) -> None:
    """fsync ``partial`` and rename it over ``final`` atomically."""
    with open(partial, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(partial, final)
    fsync_dir(osp.dirname(osp.abspath(final)))


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a partial file: complete or not at all.

    Raises :class:`CheckpointWriteError` naming the path and the cause; no
    partial or empty file is left behind.
    """
    partial = partial_path(path)
    try:
        with open(partial, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
        fsync_dir(osp.dirname(osp.abspath(path)))
    except OSError as err:
        remove_quietly(partial)
        raise CheckpointWriteError(err.errno, f'could not write {path}: {describe_os_error(err)}') \
            from err


def write_text_atomic(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode('utf-8'))


def remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def describe_os_error(err: BaseException) -> str:
    """``'No space left on device (ENOSPC)'`` style: the cause a user can act on."""
    if isinstance(err, CheckpointWriteError) and isinstance(err.__cause__, OSError):
        err = err.__cause__  # its own message already names the file
    if isinstance(err, OSError) and err.errno is not None:
        import errno
        name = errno.errorcode.get(err.errno, str(err.errno))
        return f'{err.strerror or os.strerror(err.errno)} ({name})'
    return f'{type(err).__name__}: {err}'


def checkpoint_problem(path: str, thorough: bool = False) -> Optional[str]:
    """Why ``path`` is not a complete PyTorch checkpoint, or None if it is.

    Reads the zip directory only (``thorough``: and every member's CRC); never
    unpickles. A legacy (non-zip) ``torch.save`` file is accepted unchecked.
    """
    try:
        size = osp.getsize(path)
    except FileNotFoundError:
        return 'missing'
    except OSError as err:
        return f'unreadable ({describe_os_error(err)})'
    if osp.isdir(path):
        return 'a directory, not a checkpoint file'
    if size == 0:
        return 'empty (0 bytes)'
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
        if not zipfile.is_zipfile(path):
            if head[:2] == _LEGACY_TORCH_MAGIC:
                return None
            if head[:2] == b'PK':
                return f'truncated or damaged ({size} bytes; its zip directory is missing)'
            return f'not a PyTorch checkpoint ({size} bytes, starts with {head!r})'
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if not infos:
                return 'an empty zip archive'
            for info in infos:
                if info.header_offset + info.compress_size > size:
                    return f'truncated ({size} bytes; member {info.filename} ends past the end)'
            if not any(info.filename.endswith('data.pkl') for info in infos):
                return 'a zip archive without data.pkl, not a PyTorch checkpoint'
            if thorough:
                bad = archive.testzip()
                if bad is not None:
                    return f'damaged (member {bad} fails its CRC check)'
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
        return f'unreadable or damaged ({type(err).__name__}: {err})'
    return None


def _step(name: str) -> int:
    match = RESUMABLE.match(name)
    return int(match.group(2)) if match else -1


def resumable_checkpoints(directories: Iterable[str]) -> List[str]:
    """``epoch_N.pth`` / ``iter_N.pth`` files of ``directories``, newest first
    (by N, then by modification time: a copied work dir loses the times)."""
    found = {}
    for directory in directories:
        if not directory or not osp.isdir(directory):
            continue
        for name in os.listdir(directory):
            if RESUMABLE.match(name):
                path = osp.abspath(osp.join(directory, name))
                try:
                    found[path] = (_step(name), osp.getmtime(path))
                except OSError:
                    continue
    return sorted(found, key=lambda p: found[p], reverse=True)


def first_complete(paths: Iterable[str]) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """The first of ``paths`` that is a complete checkpoint, and ``(path, problem)``
    of those before it that are not."""
    broken: List[Tuple[str, str]] = []
    for path in paths:
        problem = checkpoint_problem(path, thorough=True)
        if problem is None:
            return path, broken
        broken.append((path, problem))
    return None, broken


def remove_partials(directory: str) -> List[str]:
    """Delete ``*.partial`` leftovers of interrupted writes in ``directory``."""
    removed = []
    if not directory or not osp.isdir(directory):
        return removed
    for name in os.listdir(directory):
        if name.endswith(PARTIAL_SUFFIX):
            path = osp.join(directory, name)
            if osp.isfile(path):
                remove_quietly(path)
                removed.append(path)
    return removed


__all__ = [
    'CheckpointWriteError', 'PARTIAL_SUFFIX', 'checkpoint_problem', 'commit_partial',
    'describe_os_error', 'fsync_dir', 'first_complete', 'partial_path',
    'remove_partials', 'resumable_checkpoints', 'write_bytes_atomic', 'write_text_atomic'
]
