"""Test helper imported by a config: a disk that fills up while certain files are written.

``MMFLUX_TEST_FULL_DISK=<suffix>[,<suffix>...]``: a file opened for writing whose path
ends with one of the suffixes gets half of its first write, then ``OSError(ENOSPC)``,
as on a full disk: deterministic, no real disk needs filling.
"""
import builtins
import errno
import os

_open = builtins.open


class _FillingFile:

    def __init__(self, file) -> None:
        self._file = file

    def write(self, data):
        self._file.write(data[:len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


def _open_on_a_filling_disk(file, mode='r', *args, **kwargs):
    handle = _open(file, mode, *args, **kwargs)
    suffixes = [s for s in os.environ.get('MMFLUX_TEST_FULL_DISK', '').split(',') if s]
    if any(m in mode for m in 'wax') and isinstance(file, str) and file.endswith(tuple(suffixes)):
        return _FillingFile(handle)
    return handle


builtins.open = _open_on_a_filling_disk
