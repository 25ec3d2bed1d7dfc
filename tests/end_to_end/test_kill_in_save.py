"""A run killed (SIGKILL) at any moment of a checkpoint save resumes from the newest
complete checkpoint and finishes; nothing of the interrupted save is left.

The kill is placed by file-system operation (kill_in_save.py), not by a timer: half
the bytes written, before the checkpoint's rename, before ``last_checkpoint``'s
rename, before the rotation deletes the old checkpoint. ``max_keep_ckpts=1``: the
setting in which mmengine's own hook deletes the only checkpoint before writing the
next one.
"""
import glob
import os
import os.path as osp
import signal

import mmaction
import pytest

from conftest import write_tiny_train_config
from robust_utils import build_video_set, run_tool

pytestmark = pytest.mark.slow

HERE = osp.dirname(osp.abspath(__file__))  # kill_in_save.py, imported by the config
MMACTION_TRAIN = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools', 'train.py')

# 4 videos, batch 2: 2 iterations per epoch, 2 epochs, a checkpoint per epoch, no validation
EXTRA = """
custom_imports = dict(imports=['mmflux', 'kill_in_save'], allow_failed_imports=False)
train_cfg = dict(max_epochs=2, val_begin=100, val_interval=100)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=1, save_best=None))
custom_hooks = [dict(type='FluxSamplerResumeHook'), dict(type='KeyedRandomHook'),
                dict(type='KillInSaveHook')]
"""

# moment of the kill in the 2nd save -> the checkpoint the resumed run must start from
CASES = {
    'write': 'epoch_1.pth',  # the new file half written
    'replace1': 'epoch_1.pth',  # complete but not yet renamed
    'replace2': 'epoch_2.pth',  # renamed, last_checkpoint still names epoch_1
    'remove': 'epoch_2.pth',  # all done but the rotation
}


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('killsave'))
    build_video_set(root, num_plain=4, bad=(), good=())
    return root


@pytest.mark.parametrize('moment,tool', [(m, 'tools/train.py') for m in sorted(CASES)] +
                         [('write', MMACTION_TRAIN)], ids=lambda v: 'mmaction_train' if v == MMACTION_TRAIN else v)
def test_resume_after_a_kill_inside_a_save(data_root, moment, tool):
    """With mmflux's tools/train.py, and with MMAction2's own (the config's FluxRunner)."""
    name = moment + ('_mmaction' if tool == MMACTION_TRAIN else '')
    config = write_tiny_train_config(osp.join(data_root, f'{name}.py'), data_root,
                                     lists='list.txt', extra=EXTRA)
    work = osp.join(data_root, name)
    env = dict(PYTHONPATH=HERE + ':' + osp.dirname(osp.dirname(HERE)))
    killed = run_tool([tool, config, '--work-dir', work, '--seed', '0'],
                      env=dict(env, MMFLUX_TEST_KILL_IN_SAVE=f'{moment}@2'), check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # the first checkpoint survived the kill whatever the moment
    assert osp.isfile(osp.join(work, 'epoch_1.pth')) or osp.isfile(osp.join(work, 'epoch_2.pth'))
    resumed = run_tool([tool, config, '--work-dir', work, '--seed', '0', '--resume'], env=env)
    log = resumed.stdout + resumed.stderr
    start = osp.join(work, CASES[moment])
    assert f'Load checkpoint from {start}' in log or f'resumed from {start}' in log.lower() \
        or f'resuming from {start}' in log, log[-4000:]
    assert 'taking over the lock of a run that is no longer running' in log
    # finished: the last epoch's checkpoint is there and complete, nothing else is left
    names = sorted(os.listdir(work))
    assert 'epoch_2.pth' in names, names
    assert not glob.glob(osp.join(work, '*.partial')), names
    assert 'run.lock' not in names
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work, 'epoch_2.pth')
    if CASES[moment] == 'epoch_1.pth':  # epoch 2 was trained again after the resume
        assert 'Epoch(train) [2][2/2]' in log
        assert 'epoch_1.pth' not in names  # and the rotation then ran, after the save
    else:  # nothing left to train (an unrotated epoch_1.pth may stay: nothing is lost)
        assert 'Epoch(train)' not in log


def test_full_disk_during_a_save_keeps_the_previous_checkpoint(data_root):
    """The 2nd save fails with ENOSPC: the error names the file and the cause, nothing is
    left half written, and --resume with room again continues from epoch 1."""
    extra = EXTRA.replace("'kill_in_save'", "'kill_in_save', 'full_disk'")
    config = write_tiny_train_config(osp.join(data_root, 'full.py'), data_root, lists='list.txt',
                                     extra=extra)
    work = osp.join(data_root, 'full')
    env = dict(PYTHONPATH=HERE + ':' + osp.dirname(osp.dirname(HERE)))
    # epoch_1 saves with room; the disk is "full" for epoch_2 only
    full = run_tool(['tools/train.py', config, '--work-dir', work, '--seed', '0'],
                    env=dict(env, MMFLUX_TEST_FULL_DISK='epoch_2.pth.partial'), check=False)
    assert full.returncode == 1
    target = osp.join(work, 'epoch_2.pth')
    assert (f'error: could not write checkpoint {target}: No space left on device (ENOSPC). '
            f'Nothing was replaced or deleted; the checkpoints already in {work} are complete '
            '(epoch_1.pth)') in full.stderr
    assert sorted(n for n in os.listdir(work) if '.pth' in n) == ['epoch_1.pth']
    assert 'run.lock' not in os.listdir(work)  # released on the way out
    resumed = run_tool(['tools/train.py', config, '--work-dir', work, '--seed', '0', '--resume'],
                       env=env)
    assert f'Load checkpoint from {osp.join(work, "epoch_1.pth")}' in resumed.stdout + resumed.stderr
    assert 'Epoch(train) [2][2/2]' in resumed.stdout + resumed.stderr
    assert sorted(n for n in os.listdir(work) if '.pth' in n) == ['epoch_2.pth']
