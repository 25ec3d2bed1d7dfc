"""One training run per work dir."""
import json
import os
import socket
import subprocess
import sys

import pytest

from mmflux.engine.runner.work_dir_lock import LOCK_NAME, WorkDirBusyError, WorkDirLock
from conftest import REPO_ROOT


def test_lock_records_the_owner_and_is_removed_on_release(tmp_path):
    lock = WorkDirLock(str(tmp_path)).acquire()
    owner = json.loads((tmp_path / LOCK_NAME).read_text())
    assert owner['pid'] == os.getpid() and owner['host'] == socket.gethostname()
    again = WorkDirLock(str(tmp_path)).acquire()  # the same process may take it again
    again.release()
    assert (tmp_path / LOCK_NAME).exists()
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_live_owner_refuses_a_second_run(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\n'
         'from mmflux.engine.runner.work_dir_lock import WorkDirLock\n'
         'WorkDirLock(sys.argv[1]).acquire(); print("held", flush=True); time.sleep(600)',
         str(tmp_path)], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(WorkDirBusyError) as info:
            WorkDirLock(str(tmp_path)).acquire()
        message = str(info.value)
        assert f'is in use by another training run (pid {holder.pid} on host ' \
               f'{socket.gethostname()}' in message
        assert f'delete {tmp_path / LOCK_NAME}' in message
    finally:
        holder.kill()
        holder.wait()
    # killed (no release): its lock is stale and is taken over
    with WorkDirLock(str(tmp_path)):
        assert json.loads((tmp_path / LOCK_NAME).read_text())['pid'] == os.getpid()


def test_stale_lock_is_taken_over_with_a_warning(tmp_path, log_messages):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps(dict(pid=dead.pid, host=socket.gethostname(),
                                                      started=0, command='tools/train.py x')))
    with WorkDirLock(str(tmp_path)):
        pass
    assert any('taking over the lock of a run that is no longer running' in m
               and f'pid {dead.pid}' in m for m in log_messages)
