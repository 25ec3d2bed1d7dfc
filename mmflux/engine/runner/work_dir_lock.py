"""One training run per work dir: a lock file holding the owner's pid and host.

Two runs writing to one work dir overwrite each other's checkpoints,
``last_checkpoint`` and logs without an error. The first run holds an
exclusive ``flock`` on ``<work_dir>/run.lock`` (released by the kernel however
the process ends, so a run killed with SIGKILL leaves no live lock) and writes
its pid, host, start time and command line into it. A second run is refused
with those; a lock file left by a dead run is taken over with a warning. Where
the file system has no ``flock``, the pid is checked instead (same host only;
a lock from another host must then be removed by hand, as the message says).

A process may take the lock of a work dir it already holds (tools/train.py
takes it before building the runner, the runner again when training starts).
"""
import errno
import fcntl
import json
import logging
import os
import os.path as osp
import socket
import sys
import time
from typing import Dict, Optional

from mmengine.logging import print_log

LOCK_NAME = 'run.lock'
_held: Dict[str, 'WorkDirLock'] = {}  # real work dir path -> lock held by this process


class WorkDirBusyError(RuntimeError):
    """Another live run holds the work dir."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe_owner(owner: dict) -> str:
    when = owner.get('started')
    started = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(when)) if when else '?'
    return (f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')}, started {started}, "
            f"command: {owner.get('command', '?')}")


class WorkDirLock:
    """The lock of one work dir; :meth:`acquire` / :meth:`release` (or ``with``)."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self._fd: Optional[int] = None
        self._depth = 0

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 65536).decode('utf-8', 'replace').strip()
            return json.loads(text) if text else {}
        except (OSError, ValueError):
            return {}

    def _busy(self, owner: dict) -> WorkDirBusyError:
        return WorkDirBusyError(
            f'work dir {self.work_dir} is in use by another training run ({_describe_owner(owner)}); '
            'two runs in one work dir overwrite each other\'s checkpoints and logs. Fix: wait for '
            'it to end or use another --work-dir; if that run is gone (its machine crashed), '
            f'delete {self.path}.')

    def acquire(self) -> 'WorkDirLock':
        key = osp.realpath(self.work_dir)
        held = _held.get(key)
        if held is not None and held is not self:
            held._depth += 1
            self._fd, self._depth = None, -1  # released through ``held``
            self._shared = held
            return self
        if self._depth > 0:
            self._depth += 1
            return self
        os.makedirs(self.work_dir, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                flock = True
            except OSError as err:
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    owner = self._read(fd)
                    os.close(fd)
                    raise self._busy(owner) from None
                flock = False  # no flock on this file system: judge by the pid
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous owner removed the file meanwhile: lock the new one
        owner = self._read(fd)
        if owner:
            host, pid = owner.get('host'), owner.get('pid')
            if not flock and (host != socket.gethostname() or (isinstance(pid, int) and _pid_alive(pid))):
                os.close(fd)
                raise self._busy(owner)
            print_log(f'work dir {self.work_dir}: taking over the lock of a run that is no longer '
                      f'running ({_describe_owner(owner)}); it ended without releasing it '
                      '(killed?). Its partial files are cleaned up.', logger='current',
                      level=logging.WARNING)
        me = dict(pid=os.getpid(), host=socket.gethostname(), started=time.time(),
                  command=' '.join(sys.argv))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me).encode('utf-8'))
        os.fsync(fd)
        self._fd, self._depth = fd, 1
        _held[key] = self
        return self

    def release(self) -> None:
        if self._depth == -1:
            shared = self.__dict__.pop('_shared')
            self._depth = 0
            shared.release()
            return
        if self._depth <= 0:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        _held.pop(osp.realpath(self.work_dir), None)
        fd, self._fd = self._fd, None
        try:
            os.remove(self.path)  # while still locked: a waiting run then locks a new file
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ['LOCK_NAME', 'WorkDirBusyError', 'WorkDirLock']
